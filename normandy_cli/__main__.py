"""``python -m normandy_cli`` runs the ``normandy`` command."""

from normandy_cli.app import main

if __name__ == "__main__":
    main()
