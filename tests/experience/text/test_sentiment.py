"""Sentiment: the corpus and its split, the Chinese model against the baseline, the cache,
English through VADER, mixed lists, labels, and retail comments written for the tests."""

from __future__ import annotations

import socket
from pathlib import Path

import joblib
import numpy as np
import pytest
import yaml

from memberlab.experience.text import sentiment as sent
from memberlab.experience.text.sentiment import (
    NEGATIVE_BELOW,
    POSITIVE_ABOVE,
    ChineseSentimentModel,
    CorpusSplit,
    baseline_model,
    label,
    load_corpus,
    sentiment,
    split_corpus,
)

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


@pytest.fixture(scope="module")
def split(corpus):
    return split_corpus(corpus)


def _subsample(split: CorpusSplit, n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(split.train_texts), n, replace=False))
    return [split.train_texts[i] for i in rows], split.train_labels[rows]


# --- corpus and split -------------------------------------------------------------------


def test_the_corpus_is_deduplicated_and_unambiguous(corpus):
    assert len(set(corpus.texts)) == len(corpus.texts)
    assert all(t == t.strip() and t for t in corpus.texts)
    # the files repeat lines: far fewer distinct texts than lines
    assert len(corpus.texts) < 0.6 * (corpus.lines["neg"] + corpus.lines["pos"])
    assert corpus.in_both > 0
    assert len(corpus.texts) == corpus.unique["neg"] + corpus.unique["pos"] - 2 * corpus.in_both
    assert set(corpus.labels.tolist()) == {0, 1}


def test_the_split_shares_no_text_between_train_and_test(split):
    assert not set(split.train_texts) & set(split.test_texts)
    # and none after normalisation either (same line typed with full-width characters)
    train = {sent.normalise(t) for t in split.train_texts}
    shared = [t for t in split.test_texts if sent.normalise(t) in train]
    assert len(shared) <= 0.005 * len(split.test_texts)


def test_the_split_is_fixed_stratified_and_80_20(corpus, split):
    again = split_corpus(load_corpus())
    assert again.test_texts == split.test_texts
    n = len(corpus.texts)
    assert len(split.test_texts) == pytest.approx(0.2 * n, abs=1)
    assert split.train_labels.mean() == pytest.approx(corpus.labels.mean(), abs=0.002)
    assert split.test_labels.mean() == pytest.approx(corpus.labels.mean(), abs=0.002)


# --- the Chinese model ------------------------------------------------------------------


def test_training_is_deterministic(split):
    texts, labels = _subsample(split, 500, seed=1)
    probe = list(split.test_texts[:100])
    first = ChineseSentimentModel().fit(texts, labels).predict_proba(probe)
    second = ChineseSentimentModel().fit(texts, labels).predict_proba(probe)
    assert np.array_equal(first, second)


def test_beats_the_baseline_on_the_held_out_20_percent(split):
    """Both trained on the same 2,000 training texts (to stay fast), scored on all of the
    test 20%. At full size the gap is about 3.4 points (next test)."""
    texts, labels = _subsample(split, 2000)
    test = list(split.test_texts)
    baseline = baseline_model(texts, labels).predict(test)
    ours = ChineseSentimentModel().fit(texts, labels).predict_proba(test) > 0.5
    baseline_accuracy = (baseline == split.test_labels).mean()
    our_accuracy = (ours == split.test_labels).mean()
    assert our_accuracy >= baseline_accuracy + 0.01, (our_accuracy, baseline_accuracy)


# SnowNLP's scorer reads about 70 reviews a second: the test scores this many test reviews
# with it (bench/sentiment.py scores all 3,473).
SNOWNLP_SAMPLE = 500


def test_the_model_in_use_on_the_test_20_percent_beside_baseline_and_snownlp(zh_model, split):
    """The model that scores comments (trained on the 80%), the baseline trained on the
    same 80%, and SnowNLP's own scorer, on the same held-out 20%.

    Measured (scikit-learn 1.9, jieba 0.42): ours 0.8739 (the regressions without the
    network: 0.8687), baseline 0.8396, SnowNLP 0.8517 on all 3,473 test reviews (0.852 on
    the first 500; its model was trained on the whole corpus, these lines included). Issue
    6 asked for 0.88: not reached, see ``test_issue_6_goal_of_088_is_not_reached``. The
    floors are the measured figures less a point, for other library versions."""
    test = list(split.test_texts)
    probabilities = zh_model.predict_proba(test)
    ours = float(((probabilities > 0.5) == split.test_labels).mean())
    baseline = baseline_model(split.train_texts, split.train_labels)
    base = float((baseline.predict(test) == split.test_labels).mean())

    from snownlp import SnowNLP

    sample = slice(0, SNOWNLP_SAMPLE)
    snow = np.array([SnowNLP(t).sentiments for t in test[sample]])
    snow_accuracy = float(((snow > 0.5) == split.test_labels[sample]).mean())
    ours_there = float(((probabilities[sample] > 0.5) == split.test_labels[sample]).mean())
    report = (
        f"held-out 20% ({len(test):,} reviews): ours {ours:.4f}, baseline {base:.4f}; "
        f"first {SNOWNLP_SAMPLE}: SnowNLP {snow_accuracy:.4f}, ours {ours_there:.4f}"
    )
    print(report)
    assert ours >= 0.864, report
    assert ours >= base + 0.025, report
    assert ours_there >= snow_accuracy, report
    assert ((probabilities >= 0) & (probabilities <= 1)).all()


@pytest.mark.xfail(
    strict=True,
    reason="issue 6 asks for 0.88 held-out accuracy; the best honest figure is 0.8739",
)
def test_issue_6_goal_of_088_is_not_reached(zh_model, split):
    """Kept so that the goal stays visible: when a model reaches it, this passes, the strict
    xfail fails the run, and the floor above should be raised instead."""
    probabilities = zh_model.predict_proba(list(split.test_texts))
    assert ((probabilities > 0.5) == split.test_labels).mean() >= 0.88


def test_tuning_cross_validates_within_the_training_part_only(split):
    small = CorpusSplit(*_subsample(split, 300, seed=2), (), np.zeros(0, dtype=np.int64))
    results = sent.tune_chinese_model(small, c_values=(1.0, 10.0), folds=3)
    assert len(results) == 8  # 2 x 2 values of C, with the network and without
    assert sorted(r.network for r in results) == [False] * 4 + [True] * 4
    assert all(len(r.fold_accuracies) == 3 for r in results)
    means = [r.validation_accuracy for r in results]
    assert means == sorted(means, reverse=True)
    assert all(0.5 < m <= 1 for m in means)


def test_the_network_learns_a_pattern_no_single_feature_shows():
    """Exclusive or of two sparse features, which no linear model can fit, learnt the same
    way twice (seeded), with probabilities in [0, 1]."""
    from scipy import sparse

    from memberlab.experience.text.network import SparseMLP

    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 2, 2000), rng.integers(0, 2, 2000)
    noise = rng.integers(0, 48, 2000)  # one of 48 irrelevant features in each row
    # columns 0/1: a is 0/1; columns 2/3: b is 0/1; columns 4-51: the noise
    cols = np.column_stack([a, 2 + b, 4 + noise]).ravel()
    rows = np.repeat(np.arange(2000), 3)
    features = sparse.csr_matrix((np.ones(6000), (rows, cols)), shape=(2000, 52))
    labels = a ^ b
    first = SparseMLP(hidden=8, epochs=30, learning_rate=0.01, batch_size=64).fit(features, labels)
    p = first.predict_proba(features)
    assert ((p > 0.5) == labels).mean() > 0.97
    assert ((p >= 0) & (p <= 1)).all()
    again = SparseMLP(hidden=8, epochs=30, learning_rate=0.01, batch_size=64).fit(features, labels)
    assert np.array_equal(again.predict_proba(features), p)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("没有问题，很好", ["没有", "¬问题", "很", "好"]),
        ("质量有问题", ["质量", "有", "问题"]),
        ("包装没有漏", ["包装", "没有", "¬漏"]),
        # negation stops at punctuation
        ("不，好喝", ["不", "好喝"]),
    ],
)
def test_words_after_a_negator_are_marked(text, words):
    assert sent.negated_words(sent.normalise(text)) == words


def test_the_cache_is_loaded_when_it_matches_and_retrained_when_not(tmp_path, monkeypatch, split):
    small = CorpusSplit(*_subsample(split, 400), split.test_texts[:10], split.test_labels[:10])
    monkeypatch.setattr(sent, "split_corpus", lambda corpus, **_: small)
    monkeypatch.setattr(sent, "_models", {})
    model = sent.chinese_model(tmp_path)
    stored = joblib.load(tmp_path / sent.MODEL_FILE)
    assert stored["meta"]["code_version"] == sent.CODE_VERSION
    assert len(stored["meta"]["corpus_sha256"]) == 64
    assert len(stored["meta"]["retail_dict_sha256"]) == 64  # the word features depend on it
    assert sent.chinese_model(tmp_path) is model  # from memory

    # a new process: loaded from disk, not trained
    monkeypatch.setattr(sent, "_models", {})

    def refuse(*_args, **_kwargs):
        raise AssertionError("trained although the cache matches")

    monkeypatch.setattr(ChineseSentimentModel, "fit", refuse)
    loaded = sent.chinese_model(tmp_path)
    assert np.array_equal(loaded.predict_proba(["很好喝"]), model.predict_proba(["很好喝"]))

    # another code version in the cache: trained again and overwritten
    monkeypatch.undo()
    monkeypatch.setattr(sent, "split_corpus", lambda corpus, **_: small)
    monkeypatch.setattr(sent, "_models", {})
    stored["meta"]["code_version"] = "older"
    joblib.dump(stored, tmp_path / sent.MODEL_FILE)
    sent.chinese_model(tmp_path)
    assert joblib.load(tmp_path / sent.MODEL_FILE)["meta"]["code_version"] == sent.CODE_VERSION

    # a broken file is retrained too
    monkeypatch.setattr(sent, "_models", {})
    (tmp_path / sent.MODEL_FILE).write_bytes(b"not a pickle")
    assert isinstance(sent.chinese_model(tmp_path), ChineseSentimentModel)


def test_the_default_cache_folder_is_under_the_data_dir(tmp_path, monkeypatch):
    from memberlab.core.settings import Settings

    monkeypatch.setattr("memberlab.core.settings.get_settings", lambda: Settings(data_dir=tmp_path))
    assert sent._default_cache_dir() == tmp_path / "models"


# --- English, mixed, labels -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sign"),
    [
        ("The latte was delicious and the staff were lovely", 1),
        ("Great value, will definitely be back!", 1),
        ("The barista was rude and the coffee was awful", -1),
        ("The app kept crashing, so annoying", -1),
        ("My drink was lukewarm and overpriced", -1),
        ("Picked up my order at the store", 0),
    ],
)
def test_english_sentiment_has_the_right_sign(text, sign):
    (p,) = sentiment([text], "en")
    if sign > 0:
        assert p > POSITIVE_ABOVE
    elif sign < 0:
        assert p < NEGATIVE_BELOW
    else:
        assert p == pytest.approx(0.5)


def test_english_sentiment_needs_no_network(monkeypatch):
    def no_network(*_args, **_kwargs):
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(sent, "_vader", None)  # read the lexicon again, offline
    assert sentiment(["I love it"], "en")[0] > POSITIVE_ABOVE


def test_a_mixed_list_is_scored_per_text_by_its_language(model_dir):
    texts = ["奶茶很好喝，推荐", "The coffee was awful", "", "太难喝了，再也不买了", "Love it"]
    mixed = sentiment(texts, cache_dir=model_dir)
    assert mixed[0] == pytest.approx(sentiment([texts[0]], "zh", cache_dir=model_dir)[0])
    assert mixed[1] == pytest.approx(sentiment([texts[1]], "en")[0])
    assert mixed[2] == 0.5
    assert label(mixed) == ["positive", "negative", "neutral", "negative", "positive"]


def test_label_thresholds():
    assert label([0.0, NEGATIVE_BELOW - 1e-9, NEGATIVE_BELOW, 0.5, POSITIVE_ABOVE]) == [
        "negative",
        "negative",
        "neutral",
        "neutral",
        "neutral",
    ]
    assert label([POSITIVE_ABOVE + 1e-9, 1.0]) == ["positive", "positive"]
    assert sentiment([]).shape == (0,)


def _labelled(language: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Texts, labels (1 positive) and kinds (plain, negation, mixed) of
    ``labelled_comments.yaml``."""
    data = yaml.safe_load((HERE / "labelled_comments.yaml").read_text(encoding="utf-8"))
    texts: list[str] = []
    labels: list[int] = []
    kinds: list[str] = []
    for polarity, value in (("positive", 1), ("negative", 0)):
        for kind, lines in data[language][polarity].items():
            texts += lines
            labels += [value] * len(lines)
            kinds += [kind] * len(lines)
    return texts, np.array(labels), np.array(kinds)


def test_the_labelled_comments_are_balanced_and_distinct():
    for language, minimum in (("zh", 150), ("en", 40)):
        texts, labels, kinds = _labelled(language)
        assert len(texts) >= minimum
        assert len(set(texts)) == len(texts)
        assert labels.mean() == 0.5
        assert set(kinds.tolist()) == {"plain", "negation", "mixed"}


# Floors for the retail and service comments: what the model measured when it was chosen,
# less about 4 points (7 of the 178 zh comments, 2 of the 48 en ones), so that another
# scikit-learn or jieba version does not fail the run while a real regression does.
# Measured (zh-char-word-nblr-net-5): zh 0.815 overall (plain 0.867, negation 0.750, mixed
# 0.773); the regressions alone (zh-char-word-nblr-4) scored 0.792 (0.856, 0.705, 0.750),
# the character-only model before them 0.758 (0.833, 0.682, 0.682). en (VADER) 0.896
# (plain 0.958, negation 0.750, mixed 0.917). Negations and mixed comments are the
# weak spot; the zh errors lean negative (positive comments about riders, refunds and
# points read as complaints by a model that learnt those words from hotel complaints).
RETAIL_FLOORS = {"zh": (0.775, {"plain": 0.82}), "en": (0.85, {"plain": 0.9})}


@pytest.mark.parametrize("language", ["zh", "en"])
def test_retail_and_service_comments_written_for_the_tests(language, model_dir):
    """The corpus is hotels, books and electronics; these are drinks, riders and points."""
    texts, truth, kinds = _labelled(language)
    right = (sentiment(texts, language, cache_dir=model_dir) > 0.5) == truth
    by_kind = {kind: float(right[kinds == kind].mean()) for kind in ("plain", "negation", "mixed")}
    report = f"{language}: {right.mean():.3f} of {len(texts)}; " + ", ".join(
        f"{kind} {value:.3f}" for kind, value in by_kind.items()
    )
    print(report)
    overall, per_kind = RETAIL_FLOORS[language]
    assert right.mean() >= overall, report
    for kind, floor in per_kind.items():
        assert by_kind[kind] >= floor, report
