"""``python3 -m tx2setup.bench``: the entry point used on the boards."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
