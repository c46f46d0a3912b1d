"""Models built on the output layers."""

from .word2vec import Word2Vec

__all__ = ["Word2Vec"]
