#!/usr/bin/env python
"""paddle_hsoftmax command line: ``python train.py --help``. All logic lives in paddle_hsoftmax.cli."""

import sys
import warnings

# Paddle warns "No ccache found" on stderr as it is imported (it matters only when compiling
# custom ops); silence it before paddle_hsoftmax imports Paddle, so an error stays one line.
warnings.filterwarnings("ignore", message="No ccache found")

from paddle_hsoftmax.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
