"""Published benchmark protocols run on any system's templates: LFW View 2 and BLUFR.

Protocol evaluations are analyses over scores, kept apart from the loaders in
:mod:`faceaudit.data.datasets` (which only read ``pairs.txt`` and ``blufr_lfw_config.mat``):

* :mod:`~faceaudit.benchmarks.templates`: an evaluation set whose ``template_id`` values are
  LFW image names (``Name/Name_NNNN.jpg``), indexed by those names, with its failures to enrol;
* :mod:`~faceaudit.benchmarks.lfw`: View 2 ``pairs.txt`` 10-fold accuracy;
* :mod:`~faceaudit.benchmarks.blufr`: BLUFR verification and open-set identification, by
  BLUFR's own evaluation rule (and faceaudit's operating-point rule beside it, named so);
* :mod:`~faceaudit.benchmarks.run`: both as results folders (``faceaudit benchmark lfw|blufr``).
"""
