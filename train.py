#!/usr/bin/env python
"""paddle_hsoftmax command line: ``python train.py --help``. All logic lives in paddle_hsoftmax.cli."""

import sys

from paddle_hsoftmax.cli import main

if __name__ == "__main__":
    sys.exit(main())
