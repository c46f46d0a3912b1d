"""The word-vector task: corpus -> vocab -> tree (or negative-sampling table) -> batches -> SGD.

Hyper-parameter defaults follow gensim's ``Word2Vec`` where the option exists (vector_size 100,
window 5, min_count 5, sample 1e-3, alpha 0.025 decaying linearly to min_alpha 0.0001, 5 epochs,
``hs=1, negative=0``), so a run here and a gensim run with the same numbers are comparable.

Batching, fused kernel (the default on CPU): each step hands the C++ loop a piece of the token
stream (``chunk_tokens`` tokens, whole sentences) and it does what word2vec.c does: subsampling,
dynamic windows, negative draws, updates, alpha falling linearly within the piece (from the rate
at the piece's start to the rate at its end). Nothing per token happens in Python, and the stream
is read from ``corpus.ids`` a piece at a time. With ``--reproducible`` and on the Paddle path each
batch holds ``batch_size`` centre words in corpus order, windows built in NumPy; the Paddle
path's H-softmax runs once per group of similar Huffman path length
(:func:`~paddle_hsoftmax.data.batching.split_by_length`), which gives the same gradient as one
padded call at a fraction of the padding.

Why ``node_grad_cap``: word2vec.c applies one SGD update per (centre, context) pair, one after the
other. A batch sums thousands of them, and the nodes near the root lie on nearly every path: their
summed step explodes at alpha = 0.025 (measured: NaN within 100 steps of 4,096 centres on People's
Daily). Each node's gradient is therefore scaled by ``min(1, cap / occurrences in the batch)``,
which leaves rare nodes' updates exactly word2vec's and bounds the frequent ones. Negative
sampling has the same problem with the frequent words' output rows (a frequent word is drawn
thousands of times per batch) and gets the same cap over its target rows.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .. import word2vec_kernel
from ..data.batching import split_by_length
from ..data.vocab import Vocab
from ..data.windows import EncodedCorpus, epoch_examples, keep_probabilities, unigram_table, window_contexts
from ..errors import ConfigError
from ..models.word2vec_arrays import Word2VecArrays
from ..output.registry import build_tree
from ..pipeline.configs import Word2VecConfig
from ..trainer import StepResult, Task

# --reproducible: the fused kernel's sharded mode, 8 shards x 4 centres per round. The shard count
# caps the threads that can work at once (8 is more cores than a laptop or an AI Studio CPU box
# has) and, with the round size, sets the staleness: a shard does not see the other shards'
# updates of the current round, 28 centres here. Measured on a 5,000-word Zipf vocabulary, D = 100,
# the same 4,096-centre batch five times from word2vec's initialisation (skip-gram, 2 threads):
# loss 6.009 against 5.971 sequential and 5.969 Hogwild, at 1.1x Hogwild's time; rounds of 16
# centres gave 6.059 and of 64 diverged (10.03), because the shards' summed updates of the nodes
# near the root overshoot as the round grows.
REPRODUCIBLE_SHARDS = 8
REPRODUCIBLE_ROUND = 4

__all__ = ["Word2VecConfig", "Word2VecTask", "word2vec_vectors"]

log = logging.getLogger(__name__)


class Word2VecTask(Task):
    """Word vectors as a :class:`~paddle_hsoftmax.trainer.Task`.

    Two models, one set of parameters: with the fused kernel (the C loop,
    :mod:`paddle_hsoftmax.word2vec_kernel`) ``model`` is a
    :class:`~paddle_hsoftmax.models.word2vec_arrays.Word2VecArrays` updated in place and there is
    no optimizer, so the task (and the process) needs no Paddle; on the Paddle path it is a
    :class:`~paddle_hsoftmax.models.word2vec.Word2Vec` with sparse SGD. Both start from the same
    vectors for the same seed and save under the same names.

    Args:
        config: the settings.
        vocab: the vocabulary (built from the corpus by the caller).
        corpus: the corpus as ids.
        rank, world: this process's share of the batches under data parallelism.
        device: ``"cpu"``, ``"gpu"``, ... (only the CPU runs the fused kernel); None: Paddle's
            current device if Paddle is loaded, else the CPU.
    """

    name = "word2vec"
    unit_name = "words"
    gradient = "sum"  # word2vec's update is alpha times the summed pair gradients
    shards_data = True  # epoch_batches yields this process's batches

    def __init__(
        self, config: Word2VecConfig, vocab: Vocab, corpus: EncodedCorpus, rank: int = 0, world: int = 1,
        device: Optional[str] = None,
    ) -> None:
        self.config = config
        self.vocab = vocab
        self.corpus = corpus
        self.rank, self.world = rank, world
        self.ns = config.loss == "ns"
        self.tree = None if self.ns else build_tree(config.tree, vocab.counts)
        # negative sampling: word2vec.c's unigram^0.75 table (int32, 100 slots per word)
        self.table = unigram_table(vocab.counts) if self.ns else None
        if device is None:
            paddle = sys.modules.get("paddle")
            device = paddle.get_device() if paddle is not None else "cpu"
        self.device = device
        self.keep_prob = keep_probabilities(vocab.counts, config.sample)
        self._keep32 = self.keep_prob.astype(np.float32)  # the C loop's copy
        self.kernel = self._choose_kernel()
        self._lr = config.lr
        if self.kernel == "fused":
            self.net = Word2VecArrays(len(vocab), config.dim, self.tree, seed=config.seed, loss=config.loss)
            self.optimizer = None  # the C loop applies word2vec's SGD updates itself
        else:
            import paddle

            from ..models.word2vec import Word2Vec

            paddle.seed(config.seed)
            # sparse gradients in every case: under data parallel the trainer sends them as the
            # rows they touch (paddle_hsoftmax.distributed.GradientSync), not dense [V, D] tables
            self.net = Word2Vec(len(vocab), config.dim, self.tree, mode=config.model, seed=config.seed,
                                sparse=True, loss=config.loss)
            self.optimizer = paddle.optimizer.SGD(learning_rate=config.lr, parameters=self.net.parameters())
        self.model = self.net
        # the fused kernel takes pieces of the token stream unless --reproducible (centre batches)
        self.stream_steps = self.kernel == "fused" and not config.reproducible
        self.threads = config.workers or os.cpu_count() or 1
        self._sharding = (dict(shards=REPRODUCIBLE_SHARDS, round_centres=REPRODUCIBLE_ROUND)
                          if config.reproducible else {})
        # raw corpus words per in-vocabulary token: batches report progress in raw words
        self.raw_per_token = corpus.raw_tokens / max(len(corpus), 1)
        self._eval_cache: Optional[Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]] = None

    def _choose_kernel(self) -> str:
        wanted = self.config.kernel
        if wanted == "paddle":
            return "paddle"
        on_cpu = self.device == "cpu"
        if wanted == "fused" and (self.world > 1 or not on_cpu):
            raise ConfigError("--kernel fused runs in a single CPU process; use --kernel paddle on GPU "
                             "or with paddle.distributed.launch")
        if self.world > 1 or not on_cpu:
            return "paddle"
        if not word2vec_kernel.available():
            if wanted == "fused":
                raise ConfigError("--kernel fused: the C++ kernel could not be compiled (see the log)")
            return "paddle"
        return "fused"

    # -- Task --------------------------------------------------------------------------------------
    def set_learning_rate(self, lr: float) -> None:
        self._lr = lr
        if self.optimizer is not None:
            self.optimizer.set_lr(lr)

    def units_per_epoch(self) -> float:
        return float(self.corpus.raw_tokens)

    def learning_rate(self, progress: float) -> float:
        c = self.config
        return max(c.lr * c.min_lr_ratio, c.lr * (1.0 - progress))

    def epoch_batches(self, epoch: int) -> Iterator[tuple]:
        """This process's batches of ``epoch``, the same for the same seed. Fused kernel: pieces
        of the token stream ``("tokens", stream piece, seed, raw words, progress at its start and
        end)``; otherwise ``(centres[<=B], contexts[<=B, 2W], raw words covered[, negatives])``
        in corpus order, process r of w taking every w-th batch. The corpus file is checked
        first (a text changed since it was encoded stops the run, the last checkpoint kept)."""
        self.corpus.check_source(f"during training (checked at the start of epoch {epoch + 1})")
        if self.stream_steps:
            yield from self._token_batches(epoch)
            return
        rng = np.random.default_rng([self.config.seed, epoch])
        B = self.config.batch_size
        index = 0
        for centres, contexts, chunk_tokens in epoch_examples(
            self.corpus, self.keep_prob, self.config.window, rng
        ):
            if len(centres) < self.world:
                continue  # too small to give every process a centre (a few words at most)
            # every process must take the same number of steps (each ends in an all-reduce):
            # the chunk is cut into a multiple of `world` batches of (nearly) equal size
            n_batches = -(-len(centres) // B)
            n_batches = -(-n_batches // self.world) * self.world
            size = -(-len(centres) // n_batches)
            # raw words this chunk stands for, shared out over its batches
            per_batch = chunk_tokens * self.raw_per_token / n_batches
            for b in range(n_batches):
                c, x = centres[b * size : (b + 1) * size], contexts[b * size : (b + 1) * size]
                index += 1
                if not self.ns:
                    if b % self.world == self.rank:
                        yield c, x, per_batch
                elif self.kernel == "paddle":
                    # every process draws every batch's negatives: the draws do not depend on `world`
                    negatives = self._draw_negatives(rng, c, x)
                    if b % self.world == self.rank:
                        yield c, x, per_batch, negatives
                else:  # the fused kernel draws them, seeded by (seed, epoch, batch)
                    yield c, x, per_batch, None, self._piece_seed(epoch, index)

    def _token_batches(self, epoch: int) -> Iterator[tuple]:
        total = self.units_per_epoch() * self.config.epochs
        done = epoch * self.units_per_epoch()
        for index, block in enumerate(self.corpus.chunks(self.config.chunk_tokens)):
            units = float((block >= 0).sum()) * self.raw_per_token
            yield ("tokens", block, self._piece_seed(epoch, index), units, min(1.0, done / total),
                   min(1.0, (done + units) / total))
            done += units

    def _piece_seed(self, epoch: int, index: int) -> int:
        """The kernel's seed for batch ``index`` of ``epoch`` (it mixes it further)."""
        return (self.config.seed * 1_000_003 + epoch * 65_537 + index) & 0x7FFFFFFF

    def _draw_negatives(self, rng: np.random.Generator, centres: np.ndarray, contexts: np.ndarray) -> np.ndarray:
        """Uniform slots of the unigram table: ``[b, K, n]`` (skip-gram) or ``[b, n]`` (CBOW)."""
        n = self.config.negative
        shape = (len(centres), n) if self.config.model == "cbow" else contexts.shape + (n,)
        return self.table[rng.integers(0, len(self.table), size=shape)]

    def train_step(self, batch) -> StepResult:
        if isinstance(batch[0], str):  # ("tokens", ...)
            return self._tokens_step(batch)
        if self.kernel == "fused":
            return self._fused_step(batch)
        return self._paddle_step(batch)

    def _tokens_step(self, batch) -> StepResult:
        _, block, seed, units, start, end = batch
        net, c = self.net, self.config
        loss, loss_pairs, _, _ = word2vec_kernel.train_tokens(
            net.syn0, net.syn1, block, self._keep32, c.window,
            alpha0=self.learning_rate(start), alpha1=self.learning_rate(end),
            path_nodes=net.path_nodes, path_codes=net.path_codes,
            table=self.table, negative=c.negative if self.ns else 0, cbow=c.model == "cbow",
            threads=self.threads, loss_stride=8, max_exp=c.max_exp, seed=seed,
        )
        return StepResult(loss_sum=loss, count=loss_pairs, units=units, params_updated=True)

    def _fused_step(self, batch) -> StepResult:
        centres, contexts, units = batch[:3]
        net = self.net
        common = dict(alpha=self._lr, cbow=self.config.model == "cbow", threads=self.threads,
                      loss_stride=8)  # the logged loss: every 8th centre's pairs
        if self.ns:
            loss, loss_pairs, _ = word2vec_kernel.ns_step(
                net.syn0, net.syn1, self.table, centres, contexts,
                negative=self.config.negative, seed=batch[4], **common, **self._sharding,
            )
        else:
            loss, loss_pairs, _ = word2vec_kernel.hs_step(
                net.syn0, net.syn1, net.path_nodes, net.path_codes, centres, contexts,
                max_exp=self.config.max_exp, **common, **self._sharding,
            )
        return StepResult(loss_sum=loss, count=loss_pairs, units=units, params_updated=True)

    def _paddle_step(self, batch) -> StepResult:
        import paddle

        if self.ns:
            return self._paddle_ns_step(batch)
        centres, contexts, units = batch
        total, pairs = None, 0.0
        lengths = self.tree.path_lengths[centres]
        groups = split_by_length(lengths, self.config.length_groups)
        for g, (positions, bound) in enumerate(groups):
            c, x = centres[positions], contexts[positions]
            scale = self._node_scale(c, x, bound)
            # under data parallel the trainer exchanges the summed gradients after the step
            loss, count = self.model(
                paddle.to_tensor(c.astype(np.int64)),
                paddle.to_tensor(x.astype(np.int64)),
                max_length=bound,
                node_grad_scale=scale,
            )
            loss.backward()
            total = loss.detach() if total is None else total + loss.detach()
            pairs += float((x >= 0).sum()) if self.config.model == "skipgram" else float(len(c))
        return StepResult(loss_sum=total, count=pairs, units=units)

    def _paddle_ns_step(self, batch) -> StepResult:
        import paddle

        centres, contexts, units, negatives = batch
        scale = self._target_scale(centres, contexts, negatives)
        loss, count = self.model(
            paddle.to_tensor(centres.astype(np.int64)), paddle.to_tensor(contexts.astype(np.int64)),
            node_grad_scale=scale, negatives=paddle.to_tensor(negatives.astype(np.int64)),
        )
        loss.backward()  # under data parallel the trainer exchanges the summed gradients
        return StepResult(loss_sum=loss.detach(), count=float(count), units=units)

    def _target_scale(self, centres, contexts, negatives):
        """``min(1, cap / occurrences in the batch)`` per negative-sampling target slot (a Paddle
        tensor, or None)."""
        import paddle

        cap = self.config.node_grad_cap
        if cap <= 0:
            return None
        if self.config.model == "skipgram":
            true = np.broadcast_to(centres[:, None, None], contexts.shape + (1,))
            targets = np.concatenate([true, negatives], axis=-1)  # (b, K, 1 + n)
            valid = np.broadcast_to((contexts >= 0)[..., None], targets.shape).copy()
        else:
            targets = np.concatenate([centres[:, None], negatives], axis=-1)  # (b, 1 + n)
            valid = np.broadcast_to((contexts >= 0).any(axis=1)[:, None], targets.shape).copy()
        valid[..., 1:] &= negatives != targets[..., :1]
        occurrences = np.bincount(targets[valid], minlength=len(self.vocab))
        scale = np.minimum(1.0, cap / np.maximum(occurrences[targets], 1.0))
        return paddle.to_tensor(np.where(valid, scale, 0.0).astype(np.float32))

    def _node_scale(self, centres: np.ndarray, contexts: np.ndarray, bound: int):
        """``min(1, cap / occurrences)`` per path slot, occurrences counted in pairs (skip-gram):
        a Paddle tensor, or None."""
        import paddle

        cap = self.config.node_grad_cap
        if cap <= 0 or self.config.model != "skipgram":
            return None
        nodes = self.tree.path_nodes[centres, :bound]  # (b, L)
        valid = nodes >= 0
        pairs = (contexts >= 0).sum(axis=1)  # (b,)
        weight = np.broadcast_to(pairs[:, None], nodes.shape)[valid]
        occurrences = np.bincount(nodes[valid], weights=weight, minlength=self.tree.num_inner)
        scale = np.minimum(1.0, cap / np.maximum(occurrences[np.maximum(nodes, 0)], 1.0))
        return paddle.to_tensor(np.where(valid, scale, 0.0).astype(np.float32))

    def _eval_examples(self) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        """A fixed slice of the corpus (first 20,000 tokens, no subsampling) and, for negative
        sampling, fixed negative draws, built once."""
        if self._eval_cache is None:
            rng = np.random.default_rng([self.config.seed, 10**6])
            tokens, sentence = self.corpus.head(20_000)
            contexts = window_contexts(tokens, sentence, self.config.window, rng)
            keep = (contexts >= 0).any(axis=1)
            centres, contexts = tokens[keep], contexts[keep]
            negatives = self._draw_negatives(rng, centres, contexts) if self.ns else None
            self._eval_cache = (centres, contexts, negatives)
        return self._eval_cache

    @property
    def eval_metric(self) -> str:
        """The evaluation's key: the NLL per pair (H-softmax) or the negative-sampling loss per
        pair (not a normalised distribution's NLL)."""
        return "heldin_ns_loss_per_pair" if self.ns else "heldin_nll_per_pair"

    def evaluate(self) -> Dict[str, float]:
        """Mean loss per pair on a fixed slice of the corpus, in nats (it falls as training
        goes): the NLL for H-softmax, the negative-sampling loss with fixed draws for NS."""
        centres, contexts, negatives = self._eval_examples()
        total, count = 0.0, 0.0
        if self.kernel == "fused":  # alpha = 0: the exact loss, no update
            net = self.net
            common = dict(alpha=0.0, cbow=self.config.model == "cbow", threads=self.threads)
            if self.ns:
                total, count, _ = word2vec_kernel.ns_step(net.syn0, net.syn1, self.table, centres, contexts,
                                                          negative=self.config.negative, negatives=negatives,
                                                          **common)
            else:
                total, count, _ = word2vec_kernel.hs_step(net.syn0, net.syn1, net.path_nodes, net.path_codes,
                                                          centres, contexts, **common)
            return {self.eval_metric: total / max(count, 1.0)}
        import paddle

        self.net.eval()
        with paddle.no_grad():
            for start in range(0, len(centres), 8192):
                c = paddle.to_tensor(centres[start : start + 8192].astype(np.int64))
                x = paddle.to_tensor(contexts[start : start + 8192].astype(np.int64))
                extra = {}
                if self.ns:
                    extra["negatives"] = paddle.to_tensor(negatives[start : start + 8192].astype(np.int64))
                loss, pairs = self.net(c, x, **extra)
                total += float(loss)
                count += float(pairs)
        self.net.train()
        return {self.eval_metric: total / max(count, 1.0)}

    def hparams(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self.config)
        d["vocab_size"] = len(self.vocab)
        d["kernel_used"] = self.kernel
        d["corpus_tokens"] = self.corpus.raw_tokens
        return {k: ("none" if v is None else v) for k, v in d.items()}

    def log_final(self, writer, step: int, top_n: int = 2000) -> None:
        """The ``top_n`` most frequent words' vectors in VisualDL's high-dimensional projector."""
        n = min(top_n, len(self.vocab))
        writer.add_embeddings(
            tag="word_vectors", mat=self.vectors()[:n].tolist(), metadata=self.vocab.words[:n]
        )

    # -- after training ----------------------------------------------------------------------------
    def vectors(self) -> np.ndarray:
        return self.net.vectors()

    def nearest(self, words: Sequence[str], k: int = 8) -> Dict[str, List[Tuple[str, float]]]:
        """Cosine nearest neighbours of the given words that are in the vocabulary: the ``k``
        (at most V - 1: every other word of a small vocabulary) most similar, best first."""
        vec = self.vectors().astype(np.float64)  # (V, dim)
        unit = vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)
        k = max(0, min(k, len(unit) - 1))
        out = {}
        for w in words:
            i = self.vocab.index.get(w)
            if i is None:
                continue
            sims = unit @ unit[i]  # (V,)
            sims[i] = -np.inf
            top = np.argpartition(-sims, k - 1)[:k] if k else np.zeros(0, dtype=np.int64)
            top = top[np.argsort(-sims[top], kind="stable")]
            out[w] = [(self.vocab.words[j], float(sims[j])) for j in top]
        return out


def word2vec_vectors(vocab: Vocab, sentences: Sequence[Sequence[str]], seed: int = 0, dim: int = 64,
                     epochs: int = 2) -> np.ndarray:
    """Skip-gram vectors ``[V, dim]`` over ``vocab`` trained on ``sentences`` for ``epochs`` (what
    a clustered H-softmax tree splits, Mnih & Hinton 2008): words missing from ``vocab`` read as
    ``<unk>`` and ``</s>`` closes each sentence, as in the language model and the decoder."""
    mapped = [[w if w in vocab.index else "<unk>" for w in s] + ["</s>"] for s in sentences]
    task = Word2VecTask(Word2VecConfig(dim=dim, seed=seed, epochs=epochs), vocab, EncodedCorpus.encode(mapped, vocab))
    for epoch in range(epochs):
        for batch in task.epoch_batches(epoch):
            task.set_learning_rate(task.learning_rate(epoch / epochs))
            result = task.train_step(batch)
            if not result.params_updated:
                task.optimizer.step()
                task.optimizer.clear_grad()
    vectors = np.asarray(task.vectors(), dtype=np.float64)  # (V, dim)
    log.info("word2vec vectors %s trained on %d sentences (for a clustered tree)", vectors.shape, len(sentences))
    return vectors
