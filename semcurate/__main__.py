"""``python -m semcurate`` runs the command line."""

from semcurate.cli import main

main()
