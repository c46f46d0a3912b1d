"""Subword targets for the encoder-decoder: byte-pair pieces learnt on the training targets.

Paper: Sennrich, Haddow & Birch, "Neural Machine Translation of Rare Words with Subword Units" (ACL
2016): a word vocabulary cannot say a rare or unseen word; byte-pair encoding (BPE) merges the most
frequent symbol pairs of the training words, starting from characters, until it has ``size``
symbols, so frequent words stay whole and rare ones are spelt in a few pieces the decoder has
seen in other words ("ejac ulation"). Library: sentencepiece (Kudo & Richardson, EMNLP 2018
demo), BPE over whitespace-split words: a piece never spans two words, and a word's first piece
carries ``"▁"``, so joining pieces gives the words back exactly.

Used by :mod:`paddle_hsoftmax.tasks.seq2seq` (``--subwords N``): the target vocabulary, the
H-softmax tree, the copied neighbour glosses and the decoder's steps are pieces; what goes in
(references, retrieval memory, reranking candidates) and what comes out are words. A run keeps the
learnt model as ``target_subwords.model``.

Shapes: token lists on the host.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence, Union

from .text import CorpusError

__all__ = ["Subwords"]

PathLike = Union[str, Path]


class Subwords:
    """A sentencepiece BPE model over whitespace-split words: words -> pieces -> words.

    Args:
        model: the serialised sentencepiece model (what :meth:`learn` builds and :meth:`save` writes).
    """

    def __init__(self, model: bytes) -> None:
        import sentencepiece as spm

        self.model = bytes(model)
        self._sp = spm.SentencePieceProcessor(model_proto=self.model)

    @classmethod
    def learn(cls, targets: Sequence[Sequence[str]], size: int) -> "Subwords":
        """BPE with up to ``size`` pieces (characters included) learnt on these token lists. The
        limit is soft: a small corpus gets fewer pieces rather than an error. Deterministic: the same
        targets give the same model (one thread)."""
        import io

        import sentencepiece as spm

        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        lines = [" ".join(t) for t in targets if t]
        if not lines:
            raise ValueError("no target words to learn subwords from")
        out = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines), model_writer=out, vocab_size=int(size), model_type="bpe",
            hard_vocab_limit=False, character_coverage=1.0, split_by_whitespace=True,
            normalization_rule_name="identity", add_dummy_prefix=True, remove_extra_whitespaces=True,
            bos_id=-1, eos_id=-1, pad_id=-1, unk_id=0, num_threads=1, max_sentence_length=1 << 20,
            minloglevel=2)
        return cls(out.getvalue())

    @classmethod
    def load(cls, path: PathLike) -> "Subwords":
        """The model :meth:`save` wrote; a damaged file is a one-line :class:`CorpusError` naming it."""
        try:
            return cls(Path(path).read_bytes())
        except (RuntimeError, OSError) as e:  # sentencepiece: RuntimeError on a model it cannot parse
            raise CorpusError(f"{path}: not a subword model ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None

    def save(self, path: PathLike) -> None:
        Path(path).write_bytes(self.model)

    def __len__(self) -> int:
        return self._sp.get_piece_size()

    def encode(self, words: Sequence[str]) -> List[str]:
        """Words -> pieces (``["to", "ejaculate"]`` -> ``["▁to", "▁ejac", "ulate"]``)."""
        return self._sp.encode(" ".join(words), out_type=str) if words else []

    def decode(self, pieces: Sequence[str]) -> List[str]:
        """Pieces -> words (a first piece without ``"▁"`` starts a word all the same)."""
        return self._sp.decode_pieces(list(pieces)).split() if pieces else []
