"""The language-modelling task: sentences -> one token stream -> LSTM LM over a chosen output layer.

Data: each sentence ends with ``</s>``; words seen fewer than ``min_count`` times in training
become ``<unk>`` (in every split, so perplexities stay comparable between output layers: all of
them see the same V). Word ids are sorted by training frequency, which the Huffman tree, the
D-softmax bands and the adaptive softmax clusters rely on. The training stream is cut into
``batch_size`` parallel columns and read in windows of ``bptt`` steps, the LSTM state carried
from window to window (reset at each epoch).

Perplexity is ``exp(mean NLL)`` over every token of a split (``</s>`` included, ``<unk>`` a word
like any other), from the output layer's exact, normalised probabilities.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Any, Dict, Iterator, List, Sequence, Tuple

import numpy as np
import paddle

from ..data.vocab import Vocab
from ..models.lm import LSTMLanguageModel
from ..output.registry import OUTPUT_LAYERS, TREES, build_output_layer, build_tree_for
from ..trainer import StepResult

__all__ = ["LMConfig", "LMTask", "lm_vocab", "batchify"]

log = logging.getLogger(__name__)

UNK, EOS = "<unk>", "</s>"


@dataclasses.dataclass
class LMConfig:
    """Language-model settings.

    Attributes:
        output: the output layer (``softmax``, ``hsoftmax``, ``dsoftmax``, ``cnn``, ``adaptive``).
        tree: the H-softmax tree (``huffman``, ``balanced``, ``clustered``: 2-means splits of
            word2vec vectors trained on the training split first).
        embed_dim, hidden_size, num_layers, dropout, tie: the model (``tie`` needs
            ``output=softmax``).
        output_dim: D, the output layer's input size (0: the hidden size).
        min_count: rarer training words become ``<unk>``.
        bptt, batch_size: training windows ``[batch_size, bptt]``.
        lr, grad_clip: Adam and global-norm clipping.
        correction_dim: CNN-softmax's per-word correction size (0 = off).
        max_train_tokens: use only the first N training tokens (0 = all): quick runs.
    """

    output: str = "hsoftmax"
    tree: str = "huffman"
    embed_dim: int = 256
    hidden_size: int = 256
    output_dim: int = 0
    num_layers: int = 1
    dropout: float = 0.2
    tie: bool = False
    min_count: int = 5
    bptt: int = 35
    batch_size: int = 32
    eval_batch_size: int = 16
    lr: float = 2e-3
    grad_clip: float = 1.0
    correction_dim: int = 32
    max_train_tokens: int = 0
    seed: int = 0

    def check(self) -> None:
        if self.output not in OUTPUT_LAYERS:
            raise ValueError(f"--output must be one of {OUTPUT_LAYERS}, got {self.output!r}")
        if self.tree not in TREES:
            raise ValueError(f"--tree must be one of {TREES}, got {self.tree!r}")
        for name in ("embed_dim", "hidden_size", "num_layers", "min_count", "bptt", "batch_size",
                     "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        for name in ("output_dim", "correction_dim", "max_train_tokens"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.lr <= 0:
            raise ValueError(f"--lr must be > 0, got {self.lr}")


def lm_vocab(train: Sequence[Sequence[str]], min_count: int) -> Vocab:
    """Words of the training split with ``count >= min_count``, plus ``<unk>`` (the rest) and
    ``</s>`` (one per sentence), all sorted by count."""
    counts: Dict[str, int] = {}
    for sent in train:
        for w in sent:
            counts[w] = counts.get(w, 0) + 1
    kept = {w for w, c in counts.items() if c >= min_count}
    vocab = Vocab.build(([w if w in kept else UNK for w in s] + [EOS] for s in train), min_count=1,
                        source="training split")
    if UNK not in vocab:  # no rare training word: <unk> still exists (count 1) for unseen words
        vocab = Vocab(vocab.words + [UNK], vocab.counts.tolist() + [1], vocab.total_tokens)
    return vocab


def encode_stream(sentences: Sequence[Sequence[str]], vocab: Vocab) -> np.ndarray:
    """One int64 stream of ids, ``</s>`` after each sentence, unknown words as ``<unk>``."""
    index, unk, eos = vocab.index, vocab.index[UNK], vocab.index[EOS]
    out: List[int] = []
    for s in sentences:
        out.extend(index.get(w, unk) for w in s)
        out.append(eos)
    return np.asarray(out, dtype=np.int64)


def batchify(stream: np.ndarray, batch_size: int) -> np.ndarray:
    """``[batch_size, n]``: the stream cut into ``batch_size`` contiguous columns (the tail that
    does not fill a column is dropped; fewer than ``batch_size * 2`` tokens is an error)."""
    n = len(stream) // batch_size
    if n < 2:
        raise ValueError(f"{len(stream)} tokens cannot fill {batch_size} columns of at least 2 tokens")
    return stream[: n * batch_size].reshape(batch_size, n)


class LMTask:
    """Language modelling as a :class:`~paddle_hsoftmax.trainer.Task`.

    Args:
        config: the settings.
        splits: ``{"train": sentences, "valid": ..., "test": ...}``, each a list of token lists.
    """

    name = "lm"
    unit_name = "tokens"
    selection_metric = "valid_ppl"
    selection_mode = "min"

    def __init__(self, config: LMConfig, splits: Dict[str, Sequence[Sequence[str]]]) -> None:
        config.check()
        for part in ("train", "valid"):
            if not splits.get(part):
                raise ValueError(f"the {part} split is empty")
        self.config = config
        self.vocab = lm_vocab(splits["train"], config.min_count)
        self.streams = {part: encode_stream(s, self.vocab) for part, s in splits.items()}
        if config.max_train_tokens:
            self.streams["train"] = self.streams["train"][: config.max_train_tokens]
        self.train_data = batchify(self.streams["train"], config.batch_size)  # (B, n)
        paddle.seed(config.seed)
        D = config.output_dim or config.hidden_size
        if config.tie and config.output == "softmax":
            D = config.embed_dim
        start = time.perf_counter()
        self.tree = None
        if config.output == "hsoftmax":
            self.tree = build_tree_for(config.tree, self.vocab, splits["train"], seed=config.seed)
        self.tree_seconds = time.perf_counter() - start
        output = build_output_layer(config.output, D, self.vocab.words, self.vocab.counts, tree=self.tree,
                                    correction_dim=config.correction_dim)
        self.model = LSTMLanguageModel(len(self.vocab), output, embed_dim=config.embed_dim,
                                       hidden_size=config.hidden_size, num_layers=config.num_layers,
                                       dropout=config.dropout, tie=config.tie)
        self.optimizer = paddle.optimizer.Adam(
            learning_rate=config.lr, parameters=self.model.parameters(),
            grad_clip=paddle.nn.ClipGradByGlobalNorm(config.grad_clip),
        )
        self._state = None

    # -- parameters --------------------------------------------------------------------------------
    def parameter_counts(self) -> Dict[str, int]:
        """Distinct parameters of the whole model and of its output layer (a tied weight counted once)."""

        def count(params) -> int:
            seen, total = set(), 0
            for p in params:
                if id(p) not in seen:
                    seen.add(id(p))
                    total += int(np.prod(p.shape))
            return total

        out = count(self.model.output.parameters())
        if self.config.tie:
            out -= int(np.prod(self.model.embed.weight.shape))  # the shared matrix belongs to the input side
        return {"parameters": count(self.model.parameters()), "output_parameters": out}

    # -- Task --------------------------------------------------------------------------------------
    def units_per_epoch(self) -> float:
        B, n = self.train_data.shape
        return float(B * (n - 1))

    def learning_rate(self, progress: float) -> float:
        return self.config.lr

    def epoch_batches(self, epoch: int) -> Iterator[Tuple[np.ndarray, np.ndarray, bool]]:
        """``(inputs [B, T], targets [B, T], first)`` windows in stream order."""
        data, T = self.train_data, self.config.bptt
        n = data.shape[1]
        for i, start in enumerate(range(0, n - 1, T)):
            end = min(start + T, n - 1)
            yield data[:, start:end], data[:, start + 1 : end + 1], i == 0

    def train_step(self, batch) -> StepResult:
        inputs, targets, first = batch
        self.model.train()
        if first or self._state is None:
            self._state = self.model.initial_state(inputs.shape[0])
        nll, state = self.model(paddle.to_tensor(inputs), paddle.to_tensor(targets), self._state)
        self._state = (state[0].detach(), state[1].detach())  # truncated BPTT: carry, do not backprop
        total = nll.sum()
        count = float(targets.size)
        (total / count).backward()
        return StepResult(loss_sum=total.detach(), count=count, units=count)

    def resume_state(self) -> Any:
        """The LSTM state carried into the next training window (``None`` before the first), for
        the trainer's checkpoints: a run resumed mid-epoch carries on from it exactly."""
        return None if self._state is None else list(self._state)

    def set_resume_state(self, state: Any) -> None:
        """Take back what :meth:`resume_state` returned."""
        self._state = None if state is None else tuple(paddle.to_tensor(t) for t in state)

    def scores(self, part: str) -> Dict[str, float]:
        """``{"ppl", "nll", "tokens", "seconds"}`` over the whole split, state carried throughout."""
        stream = self.streams[part]
        B = min(self.config.eval_batch_size, max(len(stream) // 2, 1))
        data = batchify(stream, B)
        self.model.eval()
        total, count = paddle.zeros([], dtype="float64"), 0
        start = time.perf_counter()
        with paddle.no_grad():
            state = self.model.initial_state(B)
            for s in range(0, data.shape[1] - 1, self.config.bptt):
                e = min(s + self.config.bptt, data.shape[1] - 1)
                nll, state = self.model(paddle.to_tensor(data[:, s:e]), paddle.to_tensor(data[:, s + 1 : e + 1]), state)
                total = total + nll.sum().astype("float64")  # summed on the device: one read at the end
                count += (e - s) * B
        nll = float(total) / max(count, 1)
        return {"ppl": math.exp(nll), "nll": nll, "tokens": count, "seconds": time.perf_counter() - start}

    def evaluate(self) -> Dict[str, float]:
        s = self.scores("valid")
        return {"valid_ppl": s["ppl"], "valid_nll": s["nll"]}

    def hparams(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self.config)
        d.update(vocab_size=len(self.vocab), **self.parameter_counts())
        return d

    def top_k(self, context: Sequence[str], k: int = 5) -> List[Tuple[str, float]]:
        """The k most probable next words after ``context`` (exact, from ``predict``)."""
        ids = encode_stream([list(context)], self.vocab)[:-1]  # drop the closing </s>
        if len(ids) == 0:
            ids = np.asarray([self.vocab.index[EOS]])
        self.model.eval()
        with paddle.no_grad():
            h, _ = self.model.hidden(paddle.to_tensor(ids[None]))
            top = self.model.output.predict(h[:, -1], k=k)
        return [(self.vocab.words[int(i)], float(np.exp(p))) for p, i in zip(top.log_probs.numpy()[0], top.ids.numpy()[0])]

