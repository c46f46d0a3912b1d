"""Models built on the output layers (loaded on first use: :mod:`.options` needs no Paddle)."""

from ..lazy import lazy_getattr

__all__ = ["Word2Vec"]

__getattr__ = lazy_getattr(__name__, {"Word2Vec": ".word2vec"})
