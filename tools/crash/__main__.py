"""``python -m tools.crash``."""

from tools.crash.runner import main

main()
