"""`python -m flota` is the `flota` command."""

from flota.cli import main

main()
