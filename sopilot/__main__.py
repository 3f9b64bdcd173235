"""`python -m sopilot`."""

import sys

from sopilot.cli import main

sys.exit(main())
