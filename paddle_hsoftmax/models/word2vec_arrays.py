"""word2vec's parameters as NumPy arrays, for the C loop that trains them in place (no Paddle).

The same model as :class:`~paddle_hsoftmax.models.word2vec.Word2Vec` (skip-gram or CBOW, an
H-softmax over a tree or negative sampling), held the way word2vec.c holds it: ``syn0 [V, D]``
(the input vectors, word2vec.c's uniform(-0.5/D, 0.5/D) from ``seed``, the same draws as the
Paddle model), and ``syn1 [V-1, D]`` (the tree's inner nodes) or ``syn1neg [V, D]`` (zeros). Its
:meth:`state_dict` uses the Paddle model's names, so a checkpoint of one resumes in the other
(``--kernel fused`` and ``--kernel paddle`` train the same model; plain SGD keeps no optimizer
state).
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

from ..tree import Tree

__all__ = ["Word2VecArrays", "initial_vectors"]


def initial_vectors(vocab_size: int, dim: int, seed: int) -> np.ndarray:
    """word2vec.c's input vectors ``[V, D]``: uniform in ``(-0.5/D, 0.5/D)``, float32."""
    rng = np.random.default_rng(seed)
    return ((rng.random((vocab_size, dim)) - 0.5) / dim).astype(np.float32)


class Word2VecArrays:
    """Input vectors and output table as C-contiguous float32 arrays (updated in place).

    Args:
        vocab_size: V.
        dim: D.
        tree: the tree over the V words (``loss="hs"``); its path tables are kept as int64.
        seed: initialisation seed.
        loss: ``"hs"`` or ``"ns"``.
    """

    def __init__(self, vocab_size: int, dim: int, tree: Optional[Tree], seed: int = 0, loss: str = "hs") -> None:
        if loss not in ("hs", "ns"):
            raise ValueError(f"loss must be 'hs' or 'ns', got {loss!r}")
        if loss == "hs" and (tree is None or tree.num_leaves != vocab_size):
            raise ValueError(f"loss='hs' needs a tree over the {vocab_size} words")
        self.loss, self.dim = loss, dim
        self.syn0 = initial_vectors(vocab_size, dim, seed)  # (V, D)
        if loss == "ns":
            self.syn1 = np.zeros((vocab_size, dim), dtype=np.float32)  # syn1neg (V, D)
            self.path_nodes = self.path_codes = None
            self._out_key = "output.table.weight"
        else:
            self.syn1 = np.zeros((tree.num_inner, dim), dtype=np.float32)  # (V-1, D)
            self.path_nodes = np.ascontiguousarray(tree.path_nodes, dtype=np.int64)  # (V, L)
            self.path_codes = np.ascontiguousarray(tree.path_codes, dtype=np.int64)  # (V, L)
            self._out_key = "output.weight"

    def named_parameters(self) -> List[Tuple[str, np.ndarray]]:
        return [("embedding.weight", self.syn0), (self._out_key, self.syn1)]

    def state_dict(self) -> Dict[str, np.ndarray]:
        """The Paddle model's names: ``embedding.weight``, ``output.weight`` (+ the path tables)
        or ``output.table.weight``."""
        state = dict(self.named_parameters())
        if self.path_nodes is not None:
            state["output.path_nodes"], state["output.path_codes"] = self.path_nodes, self.path_codes
        return state

    def set_state_dict(self, state: Mapping[str, object]) -> None:
        """Copy the saved parameters in (NumPy arrays or Paddle tensors); the path tables are the
        tree's and are checked, not replaced."""
        for name, array in self.named_parameters():
            if name not in state:
                raise KeyError(f"the saved state has no {name!r}")
            value = state[name]
            value = np.asarray(value)  # a NumPy array, or a Paddle tensor (which converts itself)
            if value.shape != array.shape:
                raise ValueError(f"{name}: saved {list(value.shape)}, model {list(array.shape)}")
            np.copyto(array, value.astype(np.float32, copy=False))
        if self.path_nodes is not None and "output.path_nodes" in state:
            saved = np.asarray(state["output.path_nodes"])
            if saved.shape != self.path_nodes.shape or not np.array_equal(saved, self.path_nodes):
                raise ValueError("the saved tree's paths differ from this model's tree")

    def vectors(self) -> np.ndarray:
        """The input word vectors ``[V, D]`` (what gets exported): a copy."""
        return self.syn0.copy()
