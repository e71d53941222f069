"""``python -m neurenix.meta.cli``: the ``neurenix`` command, where the console script is not on the PATH."""

import sys

from . import main

sys.exit(main())
