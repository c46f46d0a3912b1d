"""The text-classification task: labelled texts -> token ids (and n-gram ids) -> classifier -> Adam.

The model (:class:`~paddle_hsoftmax.models.classifier.TextClassifier`) is a BiLSTM and, unless
``ngrams`` is 0, an NB-weighted logistic regression over the texts' token 1..n-grams; the loss is
the sum of each branch's own NLL, and after every epoch the weight of the BiLSTM's vote beside the
n-gram branch (``model.mix``) is chosen on the validation split (:data:`MIX_GRID`), and kept only
if its gain there is larger than the noise (:func:`robust_mix`). With ``output = hsoftmax`` the
classes are the leaves of a Huffman tree over the training label counts (the recurrent branch
only: an n-gram table has one column per class).

Batches hold sentences of similar length (sorted inside pools of 32 batches, pools shuffled) so
padding stays small; each epoch's order comes from ``(seed, epoch)``, which the trainer's resume
relies on. Selection: validation accuracy (best model kept, optional early stopping).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Iterator, List, Sequence, Tuple

import numpy as np
import paddle
import paddle.nn.functional as F

from ..data.batching import sortish_batches
from ..data.text import CorpusError, guess_tokenizer, tokenize
from ..data.vocab import TokenIndex
from ..errors import ConfigError
from ..metrics import classification_scores
from ..models.classifier import MIX_GRID, TextClassifier, nb_log_count_ratios
from ..pipeline.configs import ClassifyConfig
from ..pipeline.encoding import NgramIndex, pad
from ..trainer import StepResult, Task

__all__ = ["ClassifyConfig", "ClassifyTask", "tokenize_text", "tfidf_baseline", "robust_mix", "resolve_tokenizer", "MAX_NGRAM_TABLE"]

MAX_NGRAM_TABLE = 50_000_000  # n-grams x labels: beyond it (many labels) the n-gram branch is left out

tokenize_text = tokenize  # the package's one tokenizer (data.text.tokenize), under its former name here


class ClassifyTask(Task):
    """Text classification as a :class:`~paddle_hsoftmax.trainer.Task`.

    Args:
        config: the settings.
        splits: ``{"train": [(label, text)], "valid": [...], "test": [...]}``.
    """

    name = "classify"
    unit_name = "sentences"
    selection_metric = "valid_accuracy"

    def __init__(self, config: ClassifyConfig, splits: Dict[str, Sequence[Tuple[str, str]]]) -> None:
        for part in ("train", "valid"):
            if not splits.get(part):
                raise CorpusError(f"the {part} split is empty")
        self.config = config
        resolve_tokenizer(config, splits)
        self.labels = sorted({label for label, _ in splits["train"]})
        if len(self.labels) < 2:
            raise CorpusError(f"training data has {len(self.labels)} label(s); a classifier needs at least 2")
        self.label_index = {label: i for i, label in enumerate(self.labels)}
        tokens = {part: [tokenize(t, config.tokenizer)[: config.max_len] for _, t in items]
                  for part, items in splits.items()}
        if not any(tokens["train"]):
            raise CorpusError(f"every training text is empty after --tokenizer {config.tokenizer}: nothing to learn "
                              "from (a different --tokenizer?)")
        self.vocab = TokenIndex.build(tokens["train"], min_count=config.min_count)
        self.data = {}
        self.unseen_labels: Dict[str, int] = {}
        for part, items in splits.items():
            ids = [self.vocab.encode(toks) if toks else np.array([TokenIndex.UNK]) for toks in tokens[part]]
            gold = []
            for label, _ in items:
                if label not in self.label_index:  # reported, scored as an error, never crashed on
                    self.unseen_labels[f"{part}:{label}"] = self.unseen_labels.get(f"{part}:{label}", 0) + 1
                gold.append(self.label_index.get(label, -1))
            self.data[part] = (ids, np.asarray(gold, dtype=np.int64))
        self.label_counts = np.bincount(self.data["train"][1], minlength=len(self.labels))
        bag_dim = config.bag_size()  # the n-gram bag's width (0: none; > 0 only with n-grams: ClassifyConfig.check)
        self.ngrams, ratios, decay = self._ngram_features(config, tokens, bag_dim)
        head = "softmax"
        paddle.seed(config.seed)  # before the H-softmax head too: its node vectors are drawn at construction
        if config.output == "hsoftmax":
            from ..output import HierarchicalSoftmax
            from ..tree import build_huffman_tree

            width = config.hidden_size * (2 if config.bidirectional else 1) * (2 if config.pooling == "meanmax" else 1)
            head = HierarchicalSoftmax(width + bag_dim, build_huffman_tree(self.label_counts))
        self.model = TextClassifier(
            len(self.vocab), len(self.labels), embed_dim=config.embed_dim, hidden_size=config.hidden_size,
            num_layers=config.num_layers, bidirectional=config.bidirectional, cell=config.cell,
            pooling=config.pooling, dropout=config.dropout, ngram_ratios=ratios, ngram_decay=decay, head=head,
            bag_ngrams=len(self.ngrams) if bag_dim else 0, bag_dim=bag_dim,
        )
        self.init_coverage = self._init_embeddings(config.init_vectors) if config.init_vectors else None
        self.optimizer = paddle.optimizer.Adam(
            learning_rate=config.lr, parameters=self.model.parameters(),
            grad_clip=paddle.nn.ClipGradByGlobalNorm(config.grad_clip),
            lazy_mode=bag_dim > 0,  # the bag's sparse gradient updates only the rows a batch touched
        )

    def _ngram_features(self, config: ClassifyConfig, tokens, bag_dim: int):
        """``(n-gram index, NB ratios [F, C], L2 coefficient)``: the index is None without n-grams
        (``ngrams`` 0), the ratios and coefficient None without the n-gram branch (the H-softmax
        head, or too many labels), when only the bag (``bag_dim``) reads the n-grams; the n-gram
        ids of every split go to ``self.ngram_ids``."""
        self.ngram_ids, self.ngram_note = None, ""
        branch = config.output == "softmax"
        if not config.ngrams or not (branch or bag_dim):
            return None, None, None
        index = NgramIndex.build(tokens["train"], config.ngrams,
                                 chars=config.ngram_chars if config.tokenizer != "char" else 0)
        if branch and len(index) * len(self.labels) > MAX_NGRAM_TABLE:
            self.ngram_note = (f"no n-gram branch: {len(index):,} n-grams x {len(self.labels):,} labels is more than "
                               f"{MAX_NGRAM_TABLE:,} weights (--ngrams 0 says so; for many labels --output hsoftmax, "
                               "where the n-grams enter as a bag of embeddings, --bag-dim)")
            branch = False
        if not (branch or bag_dim):
            return None, None, None
        self.ngram_ids = {part: [index.encode(t) for t in toks] for part, toks in tokens.items()}
        if not branch:
            return index, None, None
        rows = self.ngram_ids["train"]
        gold = self.data["train"][1]
        counts = np.zeros((len(index), len(self.labels)), dtype=np.float64)  # texts of each class per n-gram
        if any(len(r) for r in rows):
            np.add.at(counts, (np.concatenate(rows), np.repeat(gold, [len(r) for r in rows])), 1.0)
        ratios = nb_log_count_ratios(counts)
        # the penalty of a logistic regression with inverse strength C on n examples, per example
        decay = 1.0 / (config.ngram_c * len(rows))
        return index, ratios, decay

    def _init_embeddings(self, path: str) -> float:
        """Copy pretrained vectors into the embedding rows of known tokens; returns the share of
        the vocabulary (specials excluded) that was found."""
        from ..evaluate import load_vectors

        words, vectors = load_vectors(path)
        if vectors.shape[1] != self.config.embed_dim:
            raise ConfigError(f"{path}: vectors have {vectors.shape[1]} dimensions, --embed-dim is "
                             f"{self.config.embed_dim}")
        where = {w: i for i, w in enumerate(words)}
        table = self.model.embed.weight.numpy()
        found = 0
        for token, row in self.vocab.index.items():
            i = where.get(token)
            if i is not None and row >= len(TokenIndex.SPECIALS):
                table[row] = vectors[i]
                found += 1
        self.model.embed.weight.set_value(table)
        return found / max(len(self.vocab) - len(TokenIndex.SPECIALS), 1)

    # -- batches -----------------------------------------------------------------------------------
    pad = staticmethod(pad)  # ``[B, T]`` ids padded with 0 and ``[B]`` lengths (pipeline.encoding.pad)

    def epoch_batches(self, epoch: int) -> Iterator[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
        ids, gold = self.data["train"]
        rng = np.random.default_rng([self.config.seed, epoch])
        lengths = np.fromiter((len(s) for s in ids), dtype=np.int64, count=len(ids))
        for idx in sortish_batches(lengths, self.config.batch_size, rng):
            tokens, lens = self.pad([ids[i] for i in idx])
            yield tokens, lens, self._ngram_batch("train", idx), gold[idx]

    def _ngram_batch(self, part: str, idx) -> "np.ndarray | None":
        """``[B, N]`` n-gram ids of texts ``idx`` of ``part`` (0-padded), or None when the model reads
        no n-grams."""
        if self.ngram_ids is None:
            return None
        rows = [self.ngram_ids[part][i] for i in idx]
        return self.pad([r if len(r) else np.zeros(1, dtype=np.int64) for r in rows])[0]

    # -- Task --------------------------------------------------------------------------------------
    def units_per_epoch(self) -> float:
        return float(len(self.data["train"][0]))

    def learning_rate(self, progress: float) -> float:
        return self.config.lr

    def train_step(self, batch) -> StepResult:
        tokens, lengths, ngrams, gold = batch
        self.model.train()
        tokens, lengths, target = paddle.to_tensor(tokens), paddle.to_tensor(lengths), paddle.to_tensor(gold)
        ngrams = None if ngrams is None else paddle.to_tensor(ngrams)
        if self.model.output_layer is not None:
            loss = self.model.output_layer(self.model.features(tokens, lengths, ngrams), target).sum()
            extra = 0.0
        else:
            rnn, ngram = self.model.branch_scores(tokens, lengths, ngrams)
            # each branch learns on its own (the logged loss is the recurrent branch's)
            loss = F.cross_entropy(rnn, target, reduction="sum")  # (B, C) scores -> sum
            extra = 0.0 if ngram is None else F.cross_entropy(ngram, target, reduction="sum")
        ((loss + extra) / len(gold)).backward()
        return StepResult(loss_sum=loss.detach(), count=float(len(gold)), units=float(len(gold)))

    def branch_scores(self, part: str, batch_size: int = 256) -> Tuple[np.ndarray, np.ndarray]:
        """The two branches' scores ``[N, C]`` on split ``part`` (eval mode; softmax head with the
        n-gram branch only)."""
        sequences = self.data[part][0]
        self.model.eval()
        order = np.argsort([len(s) for s in sequences], kind="stable")
        rnn = np.zeros((len(sequences), len(self.labels)), dtype=np.float32)
        ngram = np.zeros_like(rnn)
        with paddle.no_grad():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                tokens, lens = self.pad([sequences[i] for i in idx])
                r, g = self.model.branch_scores(paddle.to_tensor(tokens), paddle.to_tensor(lens),
                                                paddle.to_tensor(self._ngram_batch(part, idx)))
                rnn[idx], ngram[idx] = r.numpy(), g.numpy()
        return rnn, ngram

    def choose_mix(self) -> Dict[str, float]:
        """Set ``model.mix`` by :func:`robust_mix` on the validation split; returns each branch's
        validation accuracy, the weight and its gain in validation texts (fixed minus broken)."""
        rnn, ngram = self.branch_scores("valid")
        gold = self.data["valid"][1]
        best, accs, gain = robust_mix(rnn, ngram, gold)
        self.model.mix.set_value(paddle.to_tensor([best], dtype="float32"))
        return {"valid_accuracy_rnn_branch": float((rnn.argmax(-1) == gold).mean()),
                "valid_accuracy_ngram_branch": accs[0.0], "mix": float(best),
                "valid_accuracy_best_mix": max(accs.values()), "mix_gain_texts": float(gain)}

    def predict_ids(self, part: str, batch_size: int = 256) -> np.ndarray:
        """Best class id per text of split ``part`` (eval mode, batches sorted by length; the
        H-softmax head searches its tree)."""
        sequences = self.data[part][0]
        self.model.eval()
        order = np.argsort([len(s) for s in sequences], kind="stable")
        pred = np.zeros(len(sequences), dtype=np.int64)
        with paddle.no_grad():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                tokens, lens = self.pad([sequences[i] for i in idx])
                tokens, lens = paddle.to_tensor(tokens), paddle.to_tensor(lens)
                ngrams = self._ngram_batch(part, idx)
                ngrams = None if ngrams is None else paddle.to_tensor(ngrams)
                if self.model.output_layer is not None:
                    best = self.model.output_layer.predict(self.model.features(tokens, lens, ngrams), k=1).ids[:, 0]
                else:
                    best = self.model(tokens, lens, ngrams).argmax(-1)
                pred[idx] = best.numpy()
        return pred

    def scores(self, part: str) -> Dict[str, Any]:
        _, gold = self.data[part]
        pred = self.predict_ids(part)
        return classification_scores(gold, pred, self.labels) if (gold >= 0).all() else _with_unseen(gold, pred, self.labels)

    def evaluate(self) -> Dict[str, float]:
        extra = self.choose_mix() if self.model.ngram is not None else {}
        s = self.scores("valid")
        return {"valid_accuracy": s["accuracy"], "valid_macro_f1": s["macro_f1"], **extra}

    def branch_test_accuracy(self) -> Dict[str, float]:
        """Test accuracy of each branch alone (the levers' table), with the n-gram branch."""
        if self.model.ngram is None:
            return {}
        rnn, ngram = self.branch_scores("test")
        gold = self.data["test"][1]
        return {"test_accuracy_rnn_branch": float((rnn.argmax(-1) == gold).mean()),
                "test_accuracy_ngram_branch": float((ngram.argmax(-1) == gold).mean())}

    def hparams(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self.config)
        d.update(num_labels=len(self.labels), vocab_size=len(self.vocab), train_size=len(self.data["train"][0]),
                 ngram_size=len(self.ngrams) if self.ngrams is not None else 0)
        return d


def resolve_tokenizer(config: ClassifyConfig, splits: Dict[str, Sequence[Tuple[str, str]]]) -> str:
    """Replace ``config.tokenizer == "auto"`` by the tokenizer the training texts call for
    (:func:`~paddle_hsoftmax.data.text.guess_tokenizer`), so the run records, resumes and predicts
    with a fixed one; returns it."""
    if config.tokenizer == "auto":
        config.tokenizer = guess_tokenizer(text for _, text in splits["train"])
    return config.tokenizer


def robust_mix(rnn: np.ndarray, ngram: np.ndarray, gold: np.ndarray, grid: Sequence[float] = MIX_GRID,
               z: float = 2.0) -> Tuple[float, Dict[float, float], int]:
    """``(weight, {weight: accuracy}, gain)``: the weight of the recurrent branch's vote beside the
    n-gram branch, ``argmax(ngram + weight * rnn)`` scored on held-out texts ``gold [N]`` (scores
    ``[N, C]``).

    The grid weight with the best accuracy (the smaller on ties) is taken only if it beats the
    n-gram branch alone by more than the noise: its gain, texts it fixes minus texts it breaks,
    must exceed ``z`` standard deviations of that difference under "no real gain",
    ``z * sqrt(fixed + broken)`` (McNemar's test, z = 2: about 2.3% one-sided); otherwise 0 (the
    n-gram branch alone). Why: on chnsenti (README) the plain best weight, 0.25 chosen on 1,736
    validation texts for +0.4 points (7 texts), cost 0.75 points of test accuracy. ``gain`` is
    the returned weight's (0 for weight 0)."""
    base = ngram.argmax(-1) == gold
    accs, fixed_broken = {}, {}
    for w in grid:
        right = (ngram + w * rnn).argmax(-1) == gold
        accs[float(w)] = float(right.mean())
        fixed_broken[float(w)] = (int((right & ~base).sum()), int((base & ~right).sum()))
    best = max(accs, key=lambda w: (accs[w], -w))
    fixed, broken = fixed_broken[best]
    if best == 0.0 or fixed - broken <= z * np.sqrt(fixed + broken):
        return 0.0, accs, 0
    return best, accs, fixed - broken


def _baseline_available() -> None:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise ConfigError("--baseline needs scikit-learn: pip install 'paddle_hsoftmax[baseline]' "
                          "(or pip install scikit-learn)") from None


def tfidf_baseline(splits: Dict[str, Sequence[Tuple[str, str]]], tokenizer: str, max_len: int,
                   labels: Sequence[str], grid: Sequence[float] = (0.3, 1.0, 3.0, 10.0, 30.0),
                   chars: int = 0) -> Dict[str, Any]:
    """TF-IDF + logistic regression (scikit-learn) on the same split and the same tokens: token
    1..3-grams for ``char`` (characters), 1..2-grams otherwise (words), sublinear TF; ``C`` chosen
    on the validation split from ``grid``; ``chars`` > 0 adds the words' character 2..N-grams
    (:class:`~paddle_hsoftmax.pipeline.encoding.NgramIndex`'s features; ``--baseline`` fits
    without them). Returns the test scores, the method and C."""
    _baseline_available()
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    order = 3 if tokenizer == "char" else 2
    index = {label: i for i, label in enumerate(labels)}
    docs = {part: [tokenize(t, tokenizer)[:max_len] for _, t in items] for part, items in splits.items()}
    gold = {part: np.asarray([index.get(label, -1) for label, _ in items], dtype=np.int64)
            for part, items in splits.items()}
    vectorizer = TfidfVectorizer(analyzer=lambda toks: toks, ngram_range=(1, 1), sublinear_tf=True)
    features = NgramIndex((), order, chars).features
    grams = {part: [features(t) for t in d] for part, d in docs.items()}
    X = {"train": vectorizer.fit_transform(grams["train"])}
    X.update({part: vectorizer.transform(g) for part, g in grams.items() if part != "train"})
    best = None
    for C in grid:
        model = LogisticRegression(C=C, max_iter=2000).fit(X["train"], gold["train"])
        valid = float((model.predict(X["valid"]) == gold["valid"]).mean())
        if best is None or valid > best[0]:
            best = (valid, C, model)
    valid, C, model = best
    pred = model.predict(X["test"])
    test = classification_scores(gold["test"], pred, list(labels)) if (gold["test"] >= 0).all() \
        else _with_unseen(gold["test"], pred, list(labels))
    words = f" + word character 2-{chars}-grams" if chars else ""
    return {"method": f"TF-IDF token 1-{order}-grams{words} + logistic regression", "C": C, "valid_accuracy": valid,
            "test_accuracy": test["accuracy"], "test_macro_f1": test["macro_f1"], "test": test}


tfidf_baseline.check_available = _baseline_available


def _with_unseen(gold: np.ndarray, pred: np.ndarray, labels: List[str]) -> Dict[str, Any]:
    """Scores when some gold labels never occurred in training: they count as errors."""
    known = gold >= 0
    s = classification_scores(gold[known], pred[known], labels)
    s["accuracy"] = float((gold == pred).sum() / len(gold))
    s["unseen_label_items"] = int((~known).sum())
    return s
