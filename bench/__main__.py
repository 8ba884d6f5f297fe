"""``python -m bench`` (``make bench``); ``--quick`` for the smoke."""

import sys

from bench.run import main

sys.exit(main())
