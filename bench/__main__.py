"""`python -m bench`: the benchmark of issue 8 (see bench/run.py)."""

import sys

from .run import main

sys.exit(main())
