"""``python -m hextrackr_cli``."""

from hextrackr_cli.cli import main

if __name__ == "__main__":
    main()
