"""Models built on the output layers (loaded on first use: :mod:`.options` needs no Paddle)."""

import importlib

__all__ = ["Word2Vec"]


def __getattr__(name):
    if name != "Word2Vec":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = importlib.import_module(".word2vec", __name__).Word2Vec
    globals()[name] = value
    return value
