"""Corpora, vocabularies and batches (the start of the data path: corpus -> vocab -> tree)."""

from .datasets import CorpusError, peoples_daily_path, read_peoples_daily, word_counts

__all__ = ["CorpusError", "peoples_daily_path", "read_peoples_daily", "word_counts"]
