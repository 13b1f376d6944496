"""`python -m qa`: the `qa` command."""
from .surfaces.cli import main

raise SystemExit(main())
