"""`python -m server` runs the dashboard-server command line."""
from server.cli import main

raise SystemExit(main())
