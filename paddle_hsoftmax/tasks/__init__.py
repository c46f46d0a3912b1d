"""Tasks the shared trainer runs: each owns its data, model and optimizer."""

from .word2vec import Word2VecConfig, Word2VecTask

__all__ = ["Word2VecConfig", "Word2VecTask"]
