"""The translation task: (source, target) token pairs -> attention encoder-decoder -> Adam.

Data: the source vocabulary is the training sources' tokens (``<pad>`` = 0, ``<unk>`` = 1, the
rest by count); the target vocabulary is the training targets' words seen ``target_min_count``
times or more, plus ``<unk>`` and ``</s>``, sorted by count (what the Huffman tree, D-softmax bands
and adaptive clusters rely on, as in the language model). Training pairs longer than
``max_source_len`` / ``max_target_len`` are skipped (never cut: a cut gloss would teach the decoder
to stop mid-sentence). Batches hold pairs of similar target length, then source length (sorted
inside pools of 32 batches, pools shuffled, from ``(seed, epoch)`` so a resumed run regenerates
them). The loss of a batch is its summed NLL over target words and ``</s>``, divided by their
number.

Decoding: greedy, beam search, and (``candidates`` > 0) reranking retrieved training targets with
the model (:mod:`paddle_hsoftmax.rerank`).

Scores: BLEU and chrF from sacrebleu (``corpus_bleu``, ``corpus_chrf``, default settings) on the
space-joined tokens, against the targets as read (a reference word missing from the target
vocabulary stays in the reference; the model can only say ``<unk>``). Model selection: after each
epoch, on the first ``eval_items`` validation pairs, the rerank BLEU (with ``candidates``) or the
greedy BLEU (without).

Retrieval and copying (``retrieve`` > 0, ``copy``): every source gets its ``retrieve`` most
similar training pairs (Jaccard over distinct tokens) appended (``source <sep> neighbour source <sep> neighbour target``;
Bulte & Tezcan's neural fuzzy repair, :mod:`paddle_hsoftmax.data.retrieval`), a training pair never
retrieving itself; the copy mechanism (:mod:`paddle_hsoftmax.models.copy`) lets the decoder copy
any source token that is a target word (not ``<unk>`` or ``</s>``), so it can start from the
neighbour's translation. The training pairs are the memory at test and prediction time too.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import paddle

from ..data.batching import sortish_batches
from ..data.parallel import SOURCE_TOKENIZERS, Pair
from ..data.retrieval import OverlapIndex, Retriever, augment_source
from ..data.text import tokenize
from ..data.vocab import TokenIndex, Vocab
from ..models.seq2seq import Seq2Seq
from ..output.registry import OUTPUT_LAYERS, build_output_layer
from ..rerank import WEIGHT_GRID, Reranker
from ..trainer import StepResult
from .classify import ClassifyTask
from .lm import EOS, UNK, lm_vocab

__all__ = ["DECODINGS", "Seq2SeqConfig", "Seq2SeqTask", "Translator", "build_model", "bleu_chrf", "char_overlap_baseline"]

IGNORE = -100  # target padding: the output layer's ignore_index
DECODINGS = ("auto", "rerank", "beam")


@dataclasses.dataclass
class Seq2SeqConfig:
    """Encoder-decoder settings.

    Attributes:
        output: the decoder's output layer (``softmax``, ``hsoftmax`` over a Huffman tree of the
            target counts, ``dsoftmax``, ``cnn``, ``adaptive``).
        source_tokenizer: ``char`` (Chinese) or ``whitespace``; how ``predict`` splits raw text.
        embed_dim, hidden_size, dropout, input_feed: the model (see :class:`Seq2Seq`);
            ``output_dim`` is the output layer's input size (0: ``hidden_size``).
        source_min_count, target_min_count: rarer training tokens become ``<unk>``.
        max_source_len, max_target_len: longer training pairs are skipped; decoding stops after
            ``max_target_len`` words.
        batch_size, lr, grad_clip: Adam with global-norm clipping.
        beam_size, alpha: test-time beam search and its GNMT length normalisation.
        eval_items: validation pairs decoded (greedy) after each epoch for model selection.
        max_train_items: use only the first N training pairs (0 = all): quick runs.
        retrieve: nearest training pairs appended to each source (0 = none).
        copy: the pointer-generator copy mechanism (copies source tokens that are target words).
        candidates: retrieved training targets the model reranks at test and prediction time
            (:mod:`paddle_hsoftmax.rerank`; 0 = beam search only).
        rerank_weight: the model's weight in the rerank score; negative: tuned on the first
            ``eval_items`` validation pairs after training (and saved here).
        decode: what ``predict`` uses: ``rerank``, ``beam``, or ``auto``: after training, the one
            with the higher BLEU on those validation pairs (rerank vs greedy; saved here).
    """

    output: str = "hsoftmax"
    source_tokenizer: str = "char"
    embed_dim: int = 128
    hidden_size: int = 128
    output_dim: int = 0
    dropout: float = 0.2
    input_feed: bool = True
    source_min_count: int = 1
    target_min_count: int = 2
    max_source_len: int = 64
    max_target_len: int = 40
    batch_size: int = 32
    lr: float = 3e-3
    grad_clip: float = 5.0
    beam_size: int = 5
    alpha: float = 0.6
    eval_items: int = 1000
    max_train_items: int = 0
    retrieve: int = 1
    copy: bool = True
    candidates: int = 10
    rerank_weight: float = -1.0
    decode: str = "auto"
    seed: int = 0

    def check(self) -> None:
        if self.output not in OUTPUT_LAYERS:
            raise ValueError(f"--output must be one of {OUTPUT_LAYERS}, got {self.output!r}")
        if self.source_tokenizer not in SOURCE_TOKENIZERS:
            raise ValueError(f"--source-tokenizer must be one of {SOURCE_TOKENIZERS}, got {self.source_tokenizer!r}")
        for name in ("embed_dim", "hidden_size", "source_min_count", "target_min_count", "max_source_len",
                     "max_target_len", "batch_size", "beam_size", "eval_items"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        for name in ("output_dim", "max_train_items", "alpha", "retrieve", "candidates"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.decode not in DECODINGS:
            raise ValueError(f"--decode must be one of {DECODINGS}, got {self.decode!r}")
        if self.decode == "rerank" and not self.candidates:
            raise ValueError("--decode rerank needs --candidates > 0")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.lr <= 0 or self.grad_clip <= 0:
            raise ValueError(f"--lr and the gradient clip must be > 0, got {self.lr} and {self.grad_clip}")


def build_model(config: Seq2SeqConfig, source_vocab: TokenIndex, target_vocab: Vocab) -> Seq2Seq:
    """The model for ``config`` over these vocabularies (the same one at training and at
    prediction time: every output layer is a function of the target words and counts)."""
    D = config.output_dim or config.hidden_size
    output = build_output_layer(config.output, D, target_vocab.words, target_vocab.counts, ignore_index=IGNORE)
    output.check_targets = False  # ids come from the vocabulary; the check would read back every step
    return Seq2Seq(len(source_vocab), output, bos_id=len(target_vocab), eos_id=target_vocab.index[EOS],
                   embed_dim=config.embed_dim, hidden_size=config.hidden_size, dropout=config.dropout,
                   input_feed=config.input_feed, banned_ids=(target_vocab.index[UNK],), copy=config.copy)


def teacher_forcing(targets: Sequence[np.ndarray], bos_id: int, eos_id: int) -> Tuple[np.ndarray, np.ndarray]:
    """``(decoder inputs [B, T], targets [B, T])`` for target id rows that end with ``</s>``:
    inputs are ``<s>`` and the words, targets the words and ``</s>`` padded with ``IGNORE`` (the
    inputs' padding, ``</s>``, is never read by a kept position)."""
    T = max(len(t) for t in targets)
    gold = np.full((len(targets), T), IGNORE, dtype=np.int64)
    inputs = np.full((len(targets), T), eos_id, dtype=np.int64)
    inputs[:, 0] = bos_id
    for row, t in enumerate(targets):
        gold[row, : len(t)] = t
        inputs[row, 1 : len(t)] = t[:-1]
    return inputs, gold


def bleu_chrf(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> Dict[str, float]:
    """``{"bleu", "chrf"}``: sacrebleu's ``corpus_bleu`` / ``corpus_chrf`` on space-joined tokens."""
    import sacrebleu

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    hyps = [" ".join(h) for h in hypotheses]
    refs = [[" ".join(r) for r in references]]
    return {"bleu": sacrebleu.corpus_bleu(hyps, refs).score, "chrf": sacrebleu.corpus_chrf(hyps, refs).score}


def char_overlap_baseline(train: Sequence[Pair], sources: Sequence[Sequence[str]]) -> List[List[str]]:
    """Retrieval baseline: for each source, the target of the training pair whose source shares
    the most distinct tokens (characters) with it; ties go to the pair that comes first in
    ``train``; a source sharing nothing gets the most frequent training target (ties: first)."""
    frequency = collections.Counter(tuple(tgt) for _, tgt in train)
    fallback = list(max(frequency, key=frequency.get)) if frequency else []  # max: the first of the ties
    nearest = OverlapIndex([src for src, _ in train]).nearest(sources, k=1)[:, 0]  # (Q,), -1: nothing shared
    return [list(train[i][1]) if i >= 0 else list(fallback) for i in nearest]


class Translator:
    """A model with its vocabularies (and its retrieval memory, if any): token lists in, token
    lists out (eval mode, batched by source length, ``beam_size = 0`` for greedy)."""

    def __init__(self, model: Seq2Seq, source_vocab: TokenIndex, target_vocab: Vocab, config: Seq2SeqConfig,
                 retriever: Optional[Retriever] = None):
        if config.retrieve and retriever is None:
            raise ValueError(f"config.retrieve = {config.retrieve} needs the training pairs as a retriever")
        self.model, self.source_vocab, self.target_vocab, self.config = model, source_vocab, target_vocab, config
        self.retriever = retriever
        specials = {target_vocab.index[UNK], target_vocab.index[EOS]}
        self._copyable = {w: i for w, i in target_vocab.index.items() if i not in specials}

    def prepare(self, sources: Sequence[Sequence[str]]) -> List[List[str]]:
        """Sources cut to ``max_source_len``, then augmented by the retriever (if any)."""
        cut = [list(s)[: self.config.max_source_len] for s in sources]
        return self.retriever.augment(cut) if self.retriever is not None else cut

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        """Source ids of prepared tokens (``[<unk>]`` for an empty source)."""
        ids = self.source_vocab.encode(list(tokens))
        return ids if len(ids) else np.array([TokenIndex.UNK], dtype=np.int64)

    def copy_ids(self, tokens: Sequence[str]) -> np.ndarray:
        """The target id each position of :meth:`encode` copies; -1 for tokens that are not target
        words (``<unk>`` and ``</s>`` never are)."""
        ids = np.fromiter((self._copyable.get(t, -1) for t in tokens), dtype=np.int64, count=len(tokens))
        return ids if len(ids) else np.array([-1], dtype=np.int64)

    @staticmethod
    def pad_copy_ids(rows: Sequence[np.ndarray], width: int) -> np.ndarray:
        """``[B, width]`` copy ids padded with -1."""
        out = np.full((len(rows), width), -1, dtype=np.int64)
        for i, r in enumerate(rows):
            out[i, : len(r)] = r
        return out

    def translate(self, sources: Sequence[Sequence[str]], beam_size: int = 0, batch_size: int = 128) -> List[List[str]]:
        if beam_size < 0:
            raise ValueError(f"beam_size must be >= 0 (0: greedy), got {beam_size}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        prepared = self.prepare(sources)
        encoded = [self.encode(s) for s in prepared]
        copies = [self.copy_ids(s) for s in prepared] if self.model.copier is not None else None
        order = np.argsort([len(s) for s in encoded], kind="stable")
        words = self.target_vocab.words
        out: List[List[str]] = [[] for _ in encoded]
        self.model.eval()
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            ids, lengths = ClassifyTask.pad([encoded[i] for i in idx])
            src, lens = paddle.to_tensor(ids), paddle.to_tensor(lengths)
            copy = (None if copies is None
                    else paddle.to_tensor(self.pad_copy_ids([copies[i] for i in idx], ids.shape[1])))
            if beam_size:
                best = [hyps[0].ids for hyps in self.model.beam_search(src, lens, beam_size, self.config.max_target_len,
                                                                       self.config.alpha, copy)]
            else:
                best = self.model.greedy(src, lens, self.config.max_target_len, copy)
            for i, hyp in zip(idx, best):
                out[i] = [words[w] for w in hyp]
        return out

    @paddle.no_grad()
    def log_probs(self, sources: Sequence[Sequence[str]], targets: Sequence[Sequence[str]],
                  neighbours: Optional[Sequence[Sequence[Pair]]] = None, batch_size: int = 512) -> np.ndarray:
        """``log P(target </s> | source)`` for each (source, target) row, ``[n]`` float64: the
        model's exact teacher-forced log-probability (target words outside the vocabulary count
        as ``<unk>``; eval mode, batched by length). ``neighbours``: for a model trained with
        retrieval, the pairs appended to each row's source instead of the retrieved ones."""
        if len(sources) != len(targets) or (neighbours is not None and len(neighbours) != len(sources)):
            raise ValueError(f"{len(sources)} sources, {len(targets)} targets"
                             + ("" if neighbours is None else f" and {len(neighbours)} neighbour lists"))
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        given = neighbours is not None and self.retriever is not None  # sources augmented here, not retrieved
        if given:
            cut = self.config.max_source_len
            keys = [tuple(augment_source(list(s)[:cut], n)) for s, n in zip(sources, neighbours)]
        else:
            keys = [tuple(s) for s in sources]
        unique: Dict[Tuple[str, ...], int] = {}
        rows = [unique.setdefault(k, len(unique)) for k in keys]
        prepared = [list(k) for k in unique] if given else self.prepare([list(k) for k in unique])
        encoded = [self.encode(s) for s in prepared]
        copies = [self.copy_ids(s) for s in prepared] if self.model.copier is not None else None
        index, unk, eos = self.target_vocab.index, self.target_vocab.index[UNK], self.model.eos_id
        wanted = [np.array([index.get(w, unk) for w in t] + [eos], dtype=np.int64) for t in targets]
        order = np.lexsort(([len(encoded[r]) for r in rows], [len(w) for w in wanted]))
        out = np.zeros(len(rows), dtype=np.float64)
        self.model.eval()
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            ids, lengths = ClassifyTask.pad([encoded[rows[i]] for i in idx])
            inputs, gold = teacher_forcing([wanted[i] for i in idx], self.model.bos_id, eos)  # (b, T) each
            copy = (None if copies is None
                    else paddle.to_tensor(self.pad_copy_ids([copies[rows[i]] for i in idx], ids.shape[1])))
            nll = self.model(paddle.to_tensor(ids), paddle.to_tensor(lengths), paddle.to_tensor(inputs),
                             paddle.to_tensor(gold), copy)  # (b, T)
            out[idx] = -nll.sum(axis=1).numpy().astype(np.float64)
        return out

    def translate_text(self, texts: Sequence[str], beam_size: int = 0, batch_size: int = 128) -> List[str]:
        """Raw lines -> space-joined translations (the source split by ``config.source_tokenizer``)."""
        sources = [tokenize(t, self.config.source_tokenizer) for t in texts]
        return [" ".join(t) for t in self.translate(sources, beam_size, batch_size)]


class Seq2SeqTask:
    """Translation as a :class:`~paddle_hsoftmax.trainer.Task`.

    Args:
        config: the settings.
        splits: ``{"train": [(source tokens, target tokens)], "valid": [...], "test": [...]}``.
    """

    name = "seq2seq"
    unit_name = "tokens"  # target words + </s>

    def __init__(self, config: Seq2SeqConfig, splits: Dict[str, Sequence[Pair]]) -> None:
        config.check()
        for part in ("train", "valid"):
            if not splits.get(part):
                raise ValueError(f"the {part} split is empty")
        self.config = config
        self.splits = splits
        train = [(s, t) for s, t in splits["train"]
                 if 0 < len(s) <= config.max_source_len and 0 < len(t) <= config.max_target_len]
        self.skipped_train = len(splits["train"]) - len(train)
        if config.max_train_items:
            train = train[: config.max_train_items]
        if not train:
            raise ValueError(f"no training pair fits --max-source-len {config.max_source_len} and "
                             f"--max-target-len {config.max_target_len}")
        self.train_pairs = train
        self.retriever = Retriever(train, config.retrieve) if config.retrieve else None
        sources = [s for s, _ in train]
        if self.retriever is not None:  # leave-one-out: a training pair never retrieves itself
            sources = self.retriever.augment(sources, leave_one_out=True)
        self.source_vocab = TokenIndex.build(sources, min_count=config.source_min_count)
        self.target_vocab = lm_vocab([t for _, t in train], config.target_min_count)
        tindex, unk, eos = self.target_vocab.index, self.target_vocab.index[UNK], self.target_vocab.index[EOS]
        self.targets = [np.fromiter((tindex.get(w, unk) for w in t), dtype=np.int64, count=len(t)) for _, t in train]
        self.targets = [np.append(t, eos) for t in self.targets]
        paddle.seed(config.seed)
        self.model = build_model(config, self.source_vocab, self.target_vocab)
        self.translator = Translator(self.model, self.source_vocab, self.target_vocab, config, self.retriever)
        self.sources = [self.translator.encode(s) for s in sources]
        self.copy_ids = [self.translator.copy_ids(s) for s in sources] if config.copy else None
        self.reranker = Reranker(self.translator, train, config.candidates) if config.candidates else None
        # checkpoints are selected by the decoding that is used: reranking when there are candidates
        self.selection_metric = "valid_rerank_bleu" if self.reranker is not None else "valid_bleu"
        self.optimizer = paddle.optimizer.Adam(
            learning_rate=config.lr, parameters=self.model.parameters(),
            grad_clip=paddle.nn.ClipGradByGlobalNorm(config.grad_clip),
        )

    # -- batches -----------------------------------------------------------------------------------
    def batch(self, index: Sequence[int]) -> Tuple[np.ndarray, ...]:
        """``(source [B, S], lengths [B], decoder inputs [B, T], targets [B, T], copy ids [B, S]
        or None)`` for training pairs ``index``: inputs are ``<s>`` and the target words; targets
        the words and ``</s>``, padded with ``ignore_index`` (the inputs' padding is never read by
        a kept position)."""
        source, lengths = ClassifyTask.pad([self.sources[i] for i in index])
        copy = (None if self.copy_ids is None
                else Translator.pad_copy_ids([self.copy_ids[i] for i in index], source.shape[1]))
        inputs, out = teacher_forcing([self.targets[i] for i in index], self.model.bos_id, self.model.eos_id)
        return source, lengths, inputs, out, copy

    def epoch_batches(self, epoch: int) -> Iterator[Tuple[np.ndarray, ...]]:
        rng = np.random.default_rng([self.config.seed, epoch])
        # sort key: target length first (the decoder's steps), then source length
        key = np.array([len(t) * 4096 + len(s) for s, t in zip(self.sources, self.targets)], dtype=np.int64)
        for idx in sortish_batches(key, self.config.batch_size, rng):
            yield self.batch(idx)

    # -- Task --------------------------------------------------------------------------------------
    def units_per_epoch(self) -> float:
        return float(sum(len(t) for t in self.targets))

    def learning_rate(self, progress: float) -> float:
        return self.config.lr

    def train_step(self, batch) -> StepResult:
        source, lengths, inputs, targets, copy = batch
        self.model.train()
        nll = self.model(paddle.to_tensor(source), paddle.to_tensor(lengths), paddle.to_tensor(inputs),
                         paddle.to_tensor(targets), None if copy is None else paddle.to_tensor(copy))  # (B, T)
        total = nll.sum()
        count = float((targets != IGNORE).sum())
        (total / count).backward()
        return StepResult(loss_sum=total.detach(), count=count, units=count)

    def scores(self, part: str, beam_size: int = 0, max_items: int = 0) -> Dict[str, Any]:
        """``{"bleu", "chrf", "items", "seconds", "hypotheses"}`` on the first ``max_items``
        pairs of ``part`` (0 = all), greedy (``beam_size = 0``) or beam search."""
        pairs = self.splits[part][: max_items or None]
        start = time.perf_counter()
        hyps = self.translator.translate([s for s, _ in pairs], beam_size)
        seconds = time.perf_counter() - start
        result: Dict[str, Any] = bleu_chrf(hyps, [t for _, t in pairs])
        result.update(items=len(pairs), seconds=seconds, hypotheses=hyps)
        return result

    def evaluate(self) -> Dict[str, float]:
        """Greedy BLEU/chrF on the first ``eval_items`` validation pairs; with candidates also the
        rerank BLEU (at the best grid weight unless ``rerank_weight`` is set) and that weight."""
        s = self.scores("valid", beam_size=0, max_items=self.config.eval_items)
        result = {"valid_bleu": s["bleu"], "valid_chrf": s["chrf"]}
        if self.reranker is not None:
            weight, table = self.rerank_validation()
            result.update(valid_rerank_bleu=table[weight], valid_rerank_weight=weight)
        return result

    def rerank_validation(self) -> Tuple[float, Dict[float, float]]:
        """``(weight, {weight: BLEU})`` of reranking on the first ``eval_items`` validation pairs:
        over :data:`~paddle_hsoftmax.rerank.WEIGHT_GRID`, or at ``rerank_weight`` when it is set."""
        pairs = self.splits["valid"][: self.config.eval_items]
        grid = (self.config.rerank_weight,) if self.config.rerank_weight >= 0 else WEIGHT_GRID
        return self.reranker.tune([src for src, _ in pairs], [tgt for _, tgt in pairs], grid)

    def parameter_counts(self) -> Dict[str, int]:
        def count(params) -> int:
            return sum(int(np.prod(p.shape)) for p in params)

        return {"parameters": count(self.model.parameters()),
                "output_parameters": count(self.model.output.parameters())}

    def hparams(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self.config)
        d.update(source_vocab_size=len(self.source_vocab), target_vocab_size=len(self.target_vocab),
                 train_size=len(self.train_pairs), **self.parameter_counts())
        return d
