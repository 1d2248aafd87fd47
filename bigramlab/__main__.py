"""``python -m bigramlab``: the same command line as ``bigramlab`` (``cli``).
Defined in Chapter 0."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
