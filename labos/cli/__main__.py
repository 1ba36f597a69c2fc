"""``python -m labos.cli``."""

import sys

from labos.cli import main

sys.exit(main())
