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

from ..data.text import CorpusError
from ..models.lm import LSTMLanguageModel
from ..output.registry import build_output_layer, build_tree
from ..pipeline.configs import LMConfig
from ..pipeline.encoding import EOS, UNK, batchify, encode_stream, lm_vocab
from ..trainer import StepResult, Task
from .word2vec import word2vec_vectors

__all__ = ["LMConfig", "LMTask", "lm_vocab", "batchify", "encode_stream", "sample_prompts", "EOS", "UNK"]

log = logging.getLogger(__name__)


class LMTask(Task):
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
        for part in ("train", "valid"):
            if not splits.get(part):
                raise CorpusError(f"the {part} split is empty")
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
            self.tree = build_tree(config.tree, self.vocab.counts, seed=config.seed,
                                   vectors=lambda: word2vec_vectors(self.vocab, splits["train"], seed=config.seed))
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

    def continue_text(self, contexts: Sequence[Sequence[str]], n_words: int = 20, seed: int = 1) -> List[str]:
        """A sampled continuation of each context, up to ``n_words`` words, cut at ``</s>``: the
        model's own text (:meth:`~paddle_hsoftmax.models.lm.LSTMLanguageModel.generate`; for the
        H-softmax each word is a walk down the tree). Repeatable for a given ``seed`` (>= 1)."""
        rows = [encode_stream([list(c)], self.vocab)[:-1] for c in contexts]  # drop the closing </s>
        rows = [r if len(r) else np.asarray([self.vocab.index[EOS]]) for r in rows]
        eos = self.vocab.index[EOS]
        ids = self.model.generate(rows, n_words, seed=seed, stop_id=eos).numpy()  # (B, n_words)
        out = []
        for row in ids.tolist():
            row = row[: row.index(eos)] if eos in row else row
            out.append(" ".join(self.vocab.words[i] for i in row))
        return out



def sample_prompts(sentences: Sequence[Sequence[str]], n: int = 2, length: int = 2, seed: int = 0,
                   vocab=None) -> List[str]:
    """``n`` prompts from the user's own held-out text: the first ``length`` words of sentences
    drawn with ``random.Random(seed)`` (the same prompts on every run with the same seed and
    data) among those longer than ``length``; with ``vocab``, among those whose prompt words are
    all in it when there are any (no ``<unk>`` in a prompt). Space-joined; fewer than ``n`` when
    the text has fewer such sentences."""
    import random

    pool = [list(s[:length]) for s in sentences if len(s) > length]
    if vocab is not None:
        known = [p for p in pool if all(w in vocab.index for w in p)]
        pool = known or pool
    unique = list(dict.fromkeys(" ".join(p) for p in pool))  # first-seen order: deterministic
    return random.Random(seed).sample(unique, min(n, len(unique)))
