"""``python -m salesim``: the command line."""

from salesim.cli import main

main(prog_name="salesim")
