"""paddle_hsoftmax: hierarchical softmax and the large-vocabulary models around it, in PaddlePaddle.

Public API (explicit re-exports):

- trees: :class:`Tree`, :func:`build_huffman_tree`, :func:`build_balanced_tree`,
  :func:`unigram_entropy`, :func:`information_table`
- output layers: :class:`OutputLayer`, :class:`HierarchicalSoftmax`
"""

import warnings

# Paddle warns "No ccache found" on stderr as it is imported (it matters only to people compiling
# custom ops with ccache); filtered before anything here imports Paddle, so that every entry point
# (train.py, python -m paddle_hsoftmax.selfcheck, ...) reports an error in one line.
warnings.filterwarnings("ignore", message="No ccache found")

from .tree import (  # noqa: E402
    Tree,
    build_balanced_tree,
    build_huffman_tree,
    format_information_table,
    information_table,
    unigram_entropy,
)

__version__ = "0.1.0"

# the layers import Paddle, so they load on first use: `import paddle_hsoftmax` (and a word-vector
# run on the CPU, which needs no Paddle) does not import Paddle
from .lazy import lazy_getattr  # noqa: E402

__getattr__ = lazy_getattr(__name__, {"OutputLayer": ".output", "TopK": ".output", "HierarchicalSoftmax": ".output"})

__all__ = [
    "Tree",
    "build_huffman_tree",
    "build_balanced_tree",
    "unigram_entropy",
    "information_table",
    "format_information_table",
    "OutputLayer",
    "TopK",
    "HierarchicalSoftmax",
]
