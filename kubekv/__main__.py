"""`python -m kubekv ...` is the `kubekv` command (see kubekv/cli.py)."""

import sys

from kubekv.cli import main

sys.exit(main())
