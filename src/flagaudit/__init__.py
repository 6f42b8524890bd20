"""flagaudit: audit automated flagging of social-media posts (the second auditor).

How often does a keyword list or classifier that "generates leads" fire on protected speech
(political opinion, hyperbole, religious expression, protest, talk of one's own papers,
reporting a threat, criticism of an agency), for whom, and what that means per day at a stated
volume and through network expansion. It reads test suites and the user's own files only;
it never monitors accounts or collects posts.

Pipeline: ``suites`` (cases) -> ``systems`` (flags) -> ``metrics`` (rates with template-cluster
bootstrap intervals, from :mod:`auditcore`) -> ``volume`` / ``network`` -> ``audit`` (results
folder) -> ``report`` (HTML from results) -> ``cli`` (thin).
"""

from auditcore.errors import InputError

__version__ = "0.1.0"

__all__ = ["InputError", "__version__"]
