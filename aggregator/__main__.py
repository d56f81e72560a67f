"""`python -m aggregator` is the same as the `aggregator` command."""

from .cli import main

raise SystemExit(main())
