"""``python -m faceaudit.cli`` (as the ``faceaudit`` command)."""

from faceaudit.cli import main

main()
