"""Black-box audits: systems that can only be queried, audited from the candidate lists they return.

The candidate-list schema is data (:mod:`faceaudit.data.candidates`) and the lists become the
engine's per-search counts in :mod:`faceaudit.engine.observed` (counts read instead of computed);
this package holds what is only the black box's:

* :mod:`~faceaudit.blackbox.adapters`: response bodies of common services (AWS Rekognition
  ``SearchFacesByImage``, Azure Face ``identify``, NIST FRTE 1:N style lists) into the schema;
* :mod:`~faceaudit.blackbox.audit`: the same metrics and results folder as a template audit;
* :mod:`~faceaudit.blackbox.groups`, :mod:`~faceaudit.blackbox.scale`: demographics and growth
  with gallery size from the lists;
* :mod:`~faceaudit.blackbox.query`: the live runner (``faceaudit query``).

May import: analyses, metrics, engine, data, report and :mod:`auditcore`; never the template
audit (:mod:`faceaudit.audit`) or the CLI.
"""
