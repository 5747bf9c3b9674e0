"""`python -m kcp`: see `kcp.cli`."""

import sys

from .cli import main

sys.exit(main())
