"""Face models: images in, templates out (the stage before an evaluation set exists).

* :mod:`~faceaudit.models.base`: the adapter interface (detect, align, embed) and :class:`Box`;
* :mod:`~faceaudit.models.registry`: models by name (built-ins and ``faceaudit.models`` plug-ins);
* :mod:`~faceaudit.models.images`: image reading, each model's makers' own way;
* :mod:`~faceaudit.models.dlib_adapter`, :mod:`~faceaudit.models.sface_adapter`,
  :mod:`~faceaudit.models.onnx_adapter`: the built-in adapters;
* :mod:`~faceaudit.models.embed`: a folder or manifest of images -> an evaluation set folder
  (templates, manifest, failures to enrol), with a template cache.

May import: :mod:`auditcore` only (never the engine, metrics or analyses).
"""
