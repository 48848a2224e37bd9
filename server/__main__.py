"""`python -m server` runs the dashboard-server command line."""
from server.ops.cli import main

raise SystemExit(main())
