"""Large-vocabulary output layers sharing one interface (see :mod:`.base`).

The layers (and Paddle) load on first use, so that :mod:`.registry`'s names and trees can be read
by code that needs no Paddle.
"""

from ..lazy import lazy_getattr

_WHERE = {
    "OutputLayer": ".base",
    "LogitOutputLayer": ".base",
    "TopK": ".base",
    "HierarchicalSoftmax": ".hsoftmax",
    "FullSoftmax": ".full",
    "DifferentiatedSoftmax": ".dsoftmax",
    "default_bands": ".dsoftmax",
    "AdaptiveSoftmax": ".adaptive",
    "CNNSoftmax": ".cnn_softmax",
    "word_char_table": ".cnn_softmax",
}

__all__ = list(_WHERE)


__getattr__ = lazy_getattr(__name__, _WHERE)
