"""Large-vocabulary output layers sharing one interface (see :mod:`.base`).

The layers (and Paddle) load on first use, so that :mod:`.registry`'s names and trees can be read
by code that needs no Paddle.
"""

import importlib

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


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value
