"""``python -m semcurate`` runs the command line."""

from semcurate.cli import main

if __name__ == "__main__":  # not when a worker process started by spawn re-imports this module
    main()
