"""`python -m quotasync.cli`: the same command as `quotasync`."""

from quotasync.cli import main

main()
