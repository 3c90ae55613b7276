"""``python -m biostream_dev.broker ...``: see ``biostream_dev.broker``'s docstring."""

import sys

from biostream_dev.broker.cli import main

sys.exit(main())
