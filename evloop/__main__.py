"""``python -m evloop`` runs the demo server (the same as ``evloop-demo``)."""

import sys

from .demo import main

sys.exit(main(prog="python -m evloop"))
