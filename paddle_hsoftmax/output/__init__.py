"""Large-vocabulary output layers sharing one interface (see :mod:`.base`)."""

from .adaptive import AdaptiveSoftmax
from .base import LogitOutputLayer, OutputLayer, TopK
from .cnn_softmax import CNNSoftmax, word_char_table
from .dsoftmax import DifferentiatedSoftmax, default_bands
from .full import FullSoftmax
from .hsoftmax import HierarchicalSoftmax

__all__ = [
    "OutputLayer",
    "LogitOutputLayer",
    "TopK",
    "HierarchicalSoftmax",
    "FullSoftmax",
    "DifferentiatedSoftmax",
    "default_bands",
    "AdaptiveSoftmax",
    "CNNSoftmax",
    "word_char_table",
]
