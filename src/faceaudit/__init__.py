"""faceaudit: audit face identification (1:N search) systems.

The pipeline, one module each:

``evalset`` (templates + manifest) -> ``protocol`` (gallery, mated and non-mated probes)
-> ``engine`` (one blockwise pass: scores to counts) -> ``metrics`` (pure functions of counts)
-> ``audit`` (results folder) -> ``report`` (HTML from results) -> ``cli`` (thin).
"""

from faceaudit.errors import InputError

__version__ = "0.1.0"

__all__ = ["InputError", "__version__"]
