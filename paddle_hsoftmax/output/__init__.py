"""Large-vocabulary output layers sharing one interface (see :mod:`.base`)."""

from .base import OutputLayer, TopK
from .hsoftmax import HierarchicalSoftmax

__all__ = ["OutputLayer", "TopK", "HierarchicalSoftmax"]
