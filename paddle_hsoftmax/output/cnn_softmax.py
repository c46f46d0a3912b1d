"""CNN-softmax: an exact softmax whose output embeddings are computed from the words' characters.

Paper: Jozefowicz, Vinyals, Schuster, Shazeer & Wu, "Exploring the Limits of Language Modeling"
(2016), section 3.2 (CNN Softmax); Kim, Jernite, Sontag & Rush, "Character-Aware Neural Language
Models" (AAAI 2016) for the character CNN.

Idea: a full softmax keeps one free vector ``e_w`` per word, ``|V| x D`` parameters. CNN-softmax
computes ``e_w = CNN(chars(w))`` instead: character embedding -> Conv1D (one or several widths)
-> tanh/relu -> max over the word's real characters -> linear projection to D. The output
parameters no longer grow with ``|V|`` (apart from one bias per word), and words that share
characters (经济, 经济学, 经济界) share structure. A character CNN is a smooth function of the
spelling, so it struggles with words that are spelled alike but mean different things; the
paper's fix is a small per-word correction vector ``corr[w]`` of size ``correction_dim``, mapped to
D by one shared matrix ``M``::

    e_w = CNN(chars(w)) + M corr[w]          # "halves the gap" to the full softmax
    logit_w = h . e_w + b_w
    log p(w | h) = logit_w - logsumexp over all V words of logit

The softmax is exact: every call needs all V logits, so every training step runs the CNN over the
whole vocabulary (``[V, W]`` characters; that cost is inherent in a full softmax over computed
embeddings). In eval mode the ``[V, D]`` embedding matrix is cached; see :class:`CNNSoftmax`.

Characters come from a ``[V, W]`` table (``word_chars``, 0 = padding) that the layer keeps as a
buffer; :func:`word_char_table` builds it from the vocabulary's word strings.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import paddle
import paddle.nn as nn

from .base import LogitOutputLayer

__all__ = ["CNNSoftmax", "word_char_table"]

# Below the activation's range, so a padded position never wins the max over characters.
_ACTIVATIONS = {"tanh": (paddle.tanh, -2.0), "relu": (paddle.nn.functional.relu, -1.0)}


def word_char_table(
    words: Sequence[str], max_chars: int = 16, specials: Iterable[str] = ()
) -> Tuple[np.ndarray, List[str]]:
    """Character-id table of a vocabulary, for :class:`CNNSoftmax`'s ``word_chars``.

    Args:
        words: the vocabulary in id order (``words[i]`` is word id i).
        max_chars: longest spelling kept; longer words keep their first ``max_chars`` characters.
            The table is as wide as the longest (truncated) word, at least 1.
        specials: words that are not spelled (``<unk>``, ``<eos>``, ...): each one gets a single
            character of its own, so it has its own learnable embedding instead of sharing the
            characters ``<``, ``>`` with every other special.

    Returns:
        ``(table, chars)``: ``table`` int64 ``[V, W]``, row i = character ids of ``words[i]``, 1..
        for characters, 0 for padding (an empty string is all padding); ``chars[j]`` is the
        character (or special word) with id j, ``chars[0] == ""`` being padding, so
        ``num_chars = len(chars)``. Ids follow first appearance in ``words``.
    """
    if isinstance(max_chars, bool) or not isinstance(max_chars, (int, np.integer)) or max_chars < 1:
        raise ValueError(f"max_chars must be an int >= 1, got {max_chars!r}")
    words = list(words)
    special_set = set(specials)
    for i, w in enumerate(words):
        if not isinstance(w, str):
            raise ValueError(f"words must be strings, got {type(w).__name__} {w!r} at index {i}")
    chars: List[str] = [""]
    ids: Dict[str, int] = {}
    rows: List[List[int]] = []
    for w in words:
        pieces = [w] if w in special_set else list(w[:max_chars])
        row = []
        for c in pieces:
            if c not in ids:
                ids[c] = len(chars)
                chars.append(c)
            row.append(ids[c])
        rows.append(row)
    width = max([1] + [len(r) for r in rows])
    table = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        table[i, : len(row)] = row
    return table, chars


class _Cache(NamedTuple):
    """Eval-mode output embeddings and the tensors they were computed from (copies)."""

    embeddings: paddle.Tensor  # (V, D), no gradient
    sources: Tuple[paddle.Tensor, ...]


class CNNSoftmax(LogitOutputLayer):
    """Exact softmax over V words whose output embeddings come from a character CNN.

    Args:
        feature_size: D, the size of the hidden state and of the output embeddings.
        word_chars: int ``[V, W]`` (NumPy array, nested list or tensor): character ids of each
            word, 0 = padding, ids < ``num_chars`` (see :func:`word_char_table`). Kept as the
            int64 buffer ``word_chars``, so it is saved in the ``state_dict``. V (>= 2) is the
            vocabulary size. A row of only padding (a word without characters) gets a CNN
            feature of 0, so its embedding is the correction term alone (0 without one).
        num_chars: the character vocabulary, padding included (id 0).
        char_dim: character embedding size.
        filters: filters per width: one int for every width, or one int per width.
        kernel_size: one odd width or a sequence of odd widths (each convolution is padded by
            ``width // 2``, so positions line up with the characters); the pooled features of all
            widths are concatenated before the projection.
        activation: ``"tanh"`` or ``"relu"``, applied after each convolution.
        correction_dim: size of the per-word correction vector (0 = no correction term).
        ignore_index, check_targets: see :class:`~paddle_hsoftmax.output.base.OutputLayer`.

    Parameters and buffers:
        char_embedding.weight: ``[num_chars, char_dim]`` (row 0, padding, is held at 0).
        convs.i.weight ``[filters_i, char_dim, width_i]``, convs.i.bias ``[filters_i]``.
        projection.weight: ``[sum(filters), D]`` (no bias: a vector added to every ``e_w``
            shifts all logits equally and cancels in the softmax).
        correction: ``[V, correction_dim]`` (zeros at the start) and correction_projection.weight
            ``[correction_dim, D]``, only when ``correction_dim > 0``.
        bias: ``[V]``, per-word bias.
        word_chars: int64 ``[V, W]`` buffer.

    Only ``bias`` (and ``correction``) grow with V.

    Eval-mode cache: with ``self.training == False`` (in dynamic mode) the ``[V, D]`` output
    embeddings are computed once, without gradient, and reused by later calls. They are
    recomputed when the cache is empty, after :meth:`train` (which clears it), after any call in
    training mode (which clears it: a parent's ``model.train()`` sets ``training`` without calling
    this layer's ``train``), and whenever a parameter or ``word_chars`` no longer equals the copy
    taken when the cache was filled (so ``set_state_dict``, ``set_value`` or an optimizer step in
    eval mode are caught; that check reads each parameter once and syncs once per call, far less
    than the CNN over V words). :meth:`clear_cache` drops it by hand. Consequence: in eval mode
    the output embeddings are constants, so gradients reach ``hidden`` and ``bias`` but not the
    CNN or the correction; train in training mode. Under ``paddle.jit.to_static`` nothing is
    cached.

    Shape:
        - forward: hidden ``[..., D]``, target ``[...]`` -> nll ``[...]``
        - full_log_prob: ``[..., D] -> [..., V]``; predict: ``-> ([..., k], [..., k])``
        - output_embeddings: ``[V, D]``
    """

    def __init__(
        self,
        feature_size: int,
        word_chars,
        num_chars: int,
        char_dim: int = 16,
        filters: Union[int, Sequence[int]] = 128,
        kernel_size: Union[int, Sequence[int]] = 3,
        activation: str = "tanh",
        correction_dim: int = 0,
        ignore_index: int = -100,
        check_targets: bool = True,
    ) -> None:
        table = _as_table(word_chars)
        super().__init__(feature_size, table.shape[0], ignore_index, check_targets)
        if num_chars < 2:
            raise ValueError(f"num_chars must be >= 2 (id 0 is padding), got {num_chars}")
        lo, hi = int(table.min()), int(table.max())
        if lo < 0 or hi >= num_chars:
            raise ValueError(
                f"word_chars ids must be in [0, {num_chars - 1}] (num_chars={num_chars}), "
                f"but values in range [{lo}, {hi}] were found"
            )
        if char_dim < 1:
            raise ValueError(f"char_dim must be >= 1, got {char_dim}")
        widths = [kernel_size] if isinstance(kernel_size, (int, np.integer)) else list(kernel_size)
        if not widths or any(int(k) < 1 or int(k) % 2 == 0 for k in widths):
            raise ValueError(f"kernel_size must be odd widths >= 1 (one or a sequence), got {kernel_size!r}")
        counts = [filters] * len(widths) if isinstance(filters, (int, np.integer)) else list(filters)
        if len(counts) != len(widths) or any(int(f) < 1 for f in counts):
            raise ValueError(
                f"filters must be one int >= 1 or one per width ({len(widths)} widths {widths}), got {filters!r}"
            )
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        if correction_dim < 0:
            raise ValueError(f"correction_dim must be >= 0 (0 = off), got {correction_dim}")
        self.num_chars, self.char_dim = int(num_chars), int(char_dim)
        self.widths, self.filters = [int(k) for k in widths], [int(f) for f in counts]
        self.activation, self.correction_dim = activation, int(correction_dim)

        self.char_embedding = nn.Embedding(num_chars, char_dim, padding_idx=0)
        self.convs = nn.LayerList(
            [nn.Conv1D(char_dim, f, k, padding=k // 2, data_format="NLC") for f, k in zip(self.filters, self.widths)]
        )
        self.projection = nn.Linear(sum(self.filters), feature_size, bias_attr=False)
        if self.correction_dim > 0:
            self.correction = self.create_parameter(
                [self.num_classes, self.correction_dim], default_initializer=nn.initializer.Constant(0.0)
            )
            self.correction_projection = nn.Linear(self.correction_dim, feature_size, bias_attr=False)
        else:
            self.correction = None
            self.correction_projection = None
        self.bias = self.create_parameter(
            [self.num_classes], is_bias=True, default_initializer=nn.initializer.Constant(0.0)
        )
        self.register_buffer("word_chars", paddle.to_tensor(table, dtype="int64"))
        self._cache: Optional[_Cache] = None

    def extra_repr(self) -> str:
        return (
            f"feature_size={self.feature_size}, num_classes={self.num_classes}, "
            f"num_chars={self.num_chars}, max_chars={self.word_chars.shape[1]}, char_dim={self.char_dim}, "
            f"filters={self.filters}, kernel_size={self.widths}, activation={self.activation}, "
            f"correction_dim={self.correction_dim}"
        )

    # -- the eval-mode cache -------------------------------------------------------------------
    def train(self, mode: bool = True):
        """Set training mode (``mode=False``: eval) and drop the cached output embeddings."""
        self._cache = None
        return super().train(mode)

    def clear_cache(self) -> None:
        """Forget the eval-mode output embeddings; the next eval call recomputes them."""
        self._cache = None

    def _cache_sources(self) -> Tuple[paddle.Tensor, ...]:
        """Every tensor the output embeddings depend on."""
        sources = [self.char_embedding.weight, self.projection.weight, self.word_chars]
        for conv in self.convs:
            sources += [conv.weight, conv.bias]
        if self.correction is not None:
            sources += [self.correction, self.correction_projection.weight]
        return tuple(sources)

    def _cache_is_current(self, sources: Tuple[paddle.Tensor, ...]) -> bool:
        cache = self._cache
        if cache is None or len(cache.sources) != len(sources):
            return False
        for old, new in zip(cache.sources, sources):
            if old.shape != new.shape or old.dtype != new.dtype or str(old.place) != str(new.place):
                return False
        same = paddle.stack([paddle.equal_all(old, new) for old, new in zip(cache.sources, sources)])
        return bool(same.all())  # one host read

    def output_embeddings(self) -> paddle.Tensor:
        """The ``[V, D]`` output embeddings ``e_w``: live (with gradient) in training mode, cached
        in eval mode (see the class docstring)."""
        if self.training or not paddle.in_dynamic_mode():
            self._cache = None
            return self._compute_embeddings()
        sources = self._cache_sources()
        if not self._cache_is_current(sources):
            with paddle.no_grad():
                self._cache = None
                embeddings = self._compute_embeddings()
                self._cache = _Cache(embeddings, tuple(s.detach().clone() for s in sources))
        return self._cache.embeddings

    # -- the character CNN ---------------------------------------------------------------------
    def _compute_embeddings(self) -> paddle.Tensor:
        chars = self.word_chars  # (V, W)
        x = self.char_embedding(chars)  # (V, W, C); padding -> 0
        real = (chars > 0).unsqueeze(-1)  # (V, W, 1)
        act, floor = _ACTIVATIONS[self.activation]
        pooled = []
        for conv in self.convs:
            a = act(conv(x))  # (V, W, F_i)
            masked = paddle.where(real, a, paddle.full_like(a, floor))  # pads below every real value
            # argmax + gather instead of max(): Paddle 3.3's CPU max-reduce backward is very slow
            where = masked.argmax(axis=1, keepdim=True)  # (V, 1, F_i)
            pooled.append(paddle.take_along_axis(masked, where, axis=1).squeeze(1))  # (V, F_i)
        features = pooled[0] if len(pooled) == 1 else paddle.concat(pooled, axis=-1)  # (V, F)
        has_chars = real.any(axis=1).astype(features.dtype)  # (V, 1): no characters -> 0
        embeddings = self.projection(features * has_chars)  # (V, D)
        if self.correction is not None:
            embeddings = embeddings + self.correction_projection(self.correction)  # (V, D)
        return embeddings

    # -- LogitOutputLayer ----------------------------------------------------------------------
    def logits(self, hidden: paddle.Tensor) -> paddle.Tensor:
        """``h . e_w + b_w`` for every word: flat ``hidden[N, D]`` -> ``[N, V]``."""
        return paddle.matmul(hidden, self.output_embeddings(), transpose_y=True) + self.bias  # (N, V)


def _as_table(word_chars) -> np.ndarray:
    """``word_chars`` as an int64 ``[V, W]`` array, or ValueError naming what was seen."""
    if isinstance(word_chars, paddle.Tensor):
        word_chars = word_chars.numpy()
    table = np.asarray(word_chars)
    if table.ndim != 2 or table.shape[1] < 1:
        raise ValueError(f"word_chars must be [V, W] with W >= 1, got shape {list(table.shape)}")
    if table.size and not np.issubdtype(table.dtype, np.integer):
        raise ValueError(f"word_chars must hold integer character ids, got dtype {table.dtype}")
    return table.astype(np.int64)
