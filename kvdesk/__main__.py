"""`python -m kvdesk` runs the same entry point as the `kvdesk` command."""

from kvdesk.cli import main

raise SystemExit(main())
