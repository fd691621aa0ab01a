"""Headless subcommands of the ``kvdesk`` executable (no Qt imports here)."""
