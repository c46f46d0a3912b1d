"""Translation at inference time: the encoder-decoder rebuilt from its settings, and the
:class:`Translator` that turns token lists into token lists (greedy or beam search), scores given
translations (:meth:`Translator.log_probs`, for reranking) and reads raw text.

Used by training (:mod:`paddle_hsoftmax.tasks.seq2seq` decodes the validation and test pairs with
it) and by a finished run (:func:`paddle_hsoftmax.inference.load_translator`): both build the
model with :func:`build_model` from the same :class:`~paddle_hsoftmax.pipeline.configs.Seq2SeqConfig`
and vocabularies, so the parameters of ``checkpoints/best.pdckpt`` fit.

Scores: BLEU and chrF from sacrebleu (``corpus_bleu``, ``corpus_chrf``, default settings) on the
space-joined tokens (:func:`bleu_chrf`); :func:`char_overlap_baseline` is the retrieval baseline.

Shapes: token lists on the host; the model runs on ``[B, S]`` sources and ``[B, T]`` targets.
"""

from __future__ import annotations

import collections
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import paddle

from ..data.parallel import Pair
from ..data.retrieval import OverlapIndex, Retriever
from ..data.subwords import Subwords
from ..data.text import tokenize
from ..data.vocab import TokenIndex, Vocab
from ..models.seq2seq import Seq2Seq
from ..output.registry import build_output_layer, build_tree
from .configs import Seq2SeqConfig
from .encoding import EOS, IGNORE, UNK, pad, pad_copy_ids, teacher_forcing

__all__ = ["build_model", "Translator", "bleu_chrf", "char_overlap_baseline"]


def build_model(config: Seq2SeqConfig, source_vocab: TokenIndex, target_vocab: Vocab, tree=None) -> Seq2Seq:
    """The model for ``config`` over these vocabularies (the same one at training and at
    prediction time: every output layer is a function of the target words and counts, and the
    H-softmax tree of ``config.tree`` too, except a ``clustered`` one, which is built from trained
    vectors and must be given: the run keeps it as ``target_tree.npz``)."""
    D = config.output_dim or config.hidden_size
    if config.output == "hsoftmax" and tree is None:
        if config.tree == "clustered":
            raise ValueError("a clustered tree comes from trained vectors: pass it (a run keeps it as target_tree.npz)")
        tree = build_tree(config.tree, target_vocab.counts)
    output = build_output_layer(config.output, D, target_vocab.words, target_vocab.counts, tree=tree,
                                ignore_index=IGNORE)
    output.check_targets = False  # ids come from the vocabulary; the check would read back every step
    return Seq2Seq(len(source_vocab), output, bos_id=len(target_vocab), eos_id=target_vocab.index[EOS],
                   embed_dim=config.embed_dim, hidden_size=config.hidden_size, dropout=config.dropout,
                   input_feed=config.input_feed, banned_ids=(target_vocab.index[UNK],), copy=config.copy)


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
    lists out (eval mode, batched by source length, ``beam_size = 0`` for greedy). With a
    ``subwords`` model the decoder says pieces: targets in and translations out are still words."""

    def __init__(self, model: Seq2Seq, source_vocab: TokenIndex, target_vocab: Vocab, config: Seq2SeqConfig,
                 retriever: Optional[Retriever] = None, subwords: Optional[Subwords] = None):
        if config.retrieve and retriever is None:
            raise ValueError(f"config.retrieve = {config.retrieve} needs the training pairs as a retriever")
        if bool(config.subwords) != (subwords is not None):
            raise ValueError(f"config.subwords = {config.subwords} needs {'a' if config.subwords else 'no'} "
                             "subword model")
        self.model, self.source_vocab, self.target_vocab, self.config = model, source_vocab, target_vocab, config
        self.retriever, self.subwords = retriever, subwords
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

    pad_copy_ids = staticmethod(pad_copy_ids)  # ``[B, width]`` copy ids padded with -1

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
            ids, lengths = pad([encoded[i] for i in idx])
            src, lens = paddle.to_tensor(ids), paddle.to_tensor(lengths)
            copy = (None if copies is None
                    else paddle.to_tensor(pad_copy_ids([copies[i] for i in idx], ids.shape[1])))
            if beam_size:
                best = [hyps[0].ids for hyps in self.model.beam_search(
                    src, lens, beam_size, self.config.max_target_len, self.config.alpha, copy,
                    max_repeat=self.config.max_repeat)]
            else:
                best = self.model.greedy(src, lens, self.config.max_target_len, copy, max_repeat=self.config.max_repeat)
            for i, hyp in zip(idx, best):
                out[i] = [words[w] for w in hyp]
        return out if self.subwords is None else [self.subwords.decode(pieces) for pieces in out]

    def units(self, words: Sequence[str]) -> List[str]:
        """What the decoder says for these target words: the words, or their subword pieces."""
        return list(words) if self.subwords is None else self.subwords.encode(words)

    @paddle.no_grad()
    def log_probs(self, sources: Sequence[Sequence[str]], targets: Sequence[Sequence[str]],
                  neighbours: Optional[Sequence[Sequence[Pair]]] = None, batch_size: int = 512) -> np.ndarray:
        """``log P(target </s> | source)`` for each (source, target) row, ``[n]`` float64: the
        model's exact teacher-forced log-probability (of the target's pieces with ``subwords``;
        tokens outside the vocabulary count as ``<unk>``; eval mode, batched by length). ``neighbours``: for a model trained with
        retrieval, the pairs appended to each row's source instead of the retrieved ones."""
        if len(sources) != len(targets) or (neighbours is not None and len(neighbours) != len(sources)):
            raise ValueError(f"{len(sources)} sources, {len(targets)} targets"
                             + ("" if neighbours is None else f" and {len(neighbours)} neighbour lists"))
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        given = neighbours is not None and self.retriever is not None  # sources augmented here, not retrieved
        if given:
            cut = self.config.max_source_len
            keys = [tuple(self.retriever.augment_with(list(s)[:cut], n)) for s, n in zip(sources, neighbours)]
        else:
            keys = [tuple(s) for s in sources]
        unique: Dict[Tuple[str, ...], int] = {}
        rows = [unique.setdefault(k, len(unique)) for k in keys]
        prepared = [list(k) for k in unique] if given else self.prepare([list(k) for k in unique])
        encoded = [self.encode(s) for s in prepared]
        copies = [self.copy_ids(s) for s in prepared] if self.model.copier is not None else None
        index, unk, eos = self.target_vocab.index, self.target_vocab.index[UNK], self.model.eos_id
        wanted = [np.array([index.get(w, unk) for w in self.units(t)] + [eos], dtype=np.int64) for t in targets]
        order = np.lexsort(([len(encoded[r]) for r in rows], [len(w) for w in wanted]))
        out = np.zeros(len(rows), dtype=np.float64)
        self.model.eval()
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            ids, lengths = pad([encoded[rows[i]] for i in idx])
            inputs, gold = teacher_forcing([wanted[i] for i in idx], self.model.bos_id, eos)  # (b, T) each
            copy = (None if copies is None
                    else paddle.to_tensor(pad_copy_ids([copies[rows[i]] for i in idx], ids.shape[1])))
            nll = self.model(paddle.to_tensor(ids), paddle.to_tensor(lengths), paddle.to_tensor(inputs),
                             paddle.to_tensor(gold), copy)  # (b, T)
            out[idx] = -nll.sum(axis=1).numpy().astype(np.float64)
        return out

    def translate_text(self, texts: Sequence[str], beam_size: int = 0, batch_size: int = 128) -> List[str]:
        """Raw lines -> space-joined translations (the source split by ``config.source_tokenizer``)."""
        sources = [tokenize(t, self.config.source_tokenizer) for t in texts]
        return [" ".join(t) for t in self.translate(sources, beam_size, batch_size)]


