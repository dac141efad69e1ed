"""`python -m toolkit`: the same command as the `toolkit` console script."""

import sys

from toolkit.cli import main

if __name__ == "__main__":
    sys.exit(main())
