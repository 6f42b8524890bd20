"""``python -m flagaudit`` = the ``flagaudit`` command."""

from flagaudit.cli import main

main()
