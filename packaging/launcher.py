"""Entry script that PyInstaller freezes (packaging/kvdesk.spec): the same ``kvdesk.cli:main`` as the
``kvdesk`` / ``kvdeskw`` scripts of the wheel."""

from kvdesk.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
