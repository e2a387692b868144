"""`python -m mailbridge.cli` (what scripts/mailbridge runs)."""

import sys

from mailbridge.cli.app import main

sys.exit(main())
