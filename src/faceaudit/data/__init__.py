"""Loading: everything the audit reads, checked at the door, before any score is computed.

* :mod:`~faceaudit.data.evalset`: an evaluation set (templates + manifest), validated;
* :mod:`~faceaudit.data.protocol`: who is enrolled and who searches (seeded, or from a file);
* :mod:`~faceaudit.data.synthetic`: synthetic populations with exact truth (the demo, tests);
* :mod:`~faceaudit.data.candidates`: the candidate-list schema a black-box system's answers are read into;
* :mod:`~faceaudit.data.results`: reading a results folder an audit wrote;
* :mod:`~faceaudit.data.datasets`: public evaluation data read by path (LFW, BLUFR, ORL).

May import: :mod:`auditcore` only.
"""
