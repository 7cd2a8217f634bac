"""``python -m regions_cli`` runs the command line."""

from regions_cli.cli.app import main

if __name__ == "__main__":
    main()
