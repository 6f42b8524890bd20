"""Black-box audits: systems that can only be queried, audited from the candidate lists they return.

* :mod:`~faceaudit.blackbox.schema`: the candidate-list schema, reading and writing it;
* :mod:`~faceaudit.blackbox.adapters`: response bodies of common services (AWS Rekognition
  ``SearchFacesByImage``, Azure Face ``identify``, NIST FRTE 1:N style lists) into the schema;
* :mod:`~faceaudit.blackbox.observed`: lists -> the engine's per-search counts plus what was not
  observed; :mod:`~faceaudit.blackbox.audit`: the same metrics and results folder as a template audit;
* :mod:`~faceaudit.blackbox.scale`: FPIR against gallery size from the top of each list;
* :mod:`~faceaudit.blackbox.query`: the live runner (``faceaudit query``).
"""

from faceaudit.blackbox.schema import CandidateLists, from_frame, read_lists, records_to_lists, write_lists

__all__ = ["CandidateLists", "from_frame", "read_lists", "records_to_lists", "write_lists"]
