"""`python -m rft_trl` runs the rft-trl CLI."""

import sys

from rft_trl.cli import main

sys.exit(main())
