"""Corpora, vocabularies and batches (the start of the data path: corpus -> vocab -> tree)."""

from .batching import split_by_length
from .datasets import CorpusError, peoples_daily_path, read_peoples_daily, word_counts

__all__ = ["split_by_length", "CorpusError", "peoples_daily_path", "read_peoples_daily", "word_counts"]
