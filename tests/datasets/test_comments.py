"""Survey comments written from what happened: incidents findable, tone from the score.

The checks run over many draws and compare rates, using the module's own phrase lists and
sentiment lexicon, so a template that drops an incident or says the wrong thing fails.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from memberlab.datasets import comments, world_config
from memberlab.datasets.comments import (
    ASPECTS,
    INCIDENT_ASPECT,
    INCIDENT_PHRASES,
    INCIDENTS,
    SENTIMENT_WORDS,
    SLOTS,
    TOUCHPOINTS,
    TYPOS,
    write_comment,
)
from memberlab.experience.text.aspects import aspect_mentions

LANGUAGES = ["zh", "en"]
CJK = re.compile(r"[\u4e00-\u9fff]")


def _pattern(template: str, language: str) -> re.Pattern[str]:
    """A template as a regex: each ``{slot}`` matches any of the slot's fillers."""
    parts = re.split(r"\{(\w+)\}", template)
    regex = ""
    for i, part in enumerate(parts):
        if i % 2 == 0:
            regex += re.escape(part)
        else:
            fillers = SLOTS[language]["drink" if part == "drink2" else part]
            regex += "(?:" + "|".join(re.escape(f) for f in fillers) + ")"
    return re.compile(regex, re.IGNORECASE)


PATTERNS = {
    language: {
        incident: [_pattern(t, language) for t in templates]
        for incident, templates in INCIDENT_PHRASES[language].items()
    }
    for language in LANGUAGES
}


def _mentioned(text: str, language: str) -> set[str]:
    return {
        incident
        for incident, patterns in PATTERNS[language].items()
        if any(p.search(text) for p in patterns)
    }


def _has_word(text: str, language: str, polarity: str) -> bool:
    words = SENTIMENT_WORDS[language][polarity]
    if language == "zh":
        return any(w in text for w in words)
    lowered = text.lower()
    return any(re.search(rf"\b{re.escape(w)}\b", lowered) for w in words)


def _draw(seed: int, n: int, **kwargs) -> list[str]:
    rng = np.random.default_rng(seed)
    return [write_comment(rng, **kwargs) for _ in range(n)]


def _mixed_inputs(seed: int, n: int) -> list[dict]:
    """Varied inputs: any touchpoint, zero to three incidents, any score."""
    rng = np.random.default_rng(seed)
    inputs = []
    for _ in range(n):
        k = int(rng.integers(0, 4))
        inputs.append(
            {
                "touchpoint": TOUCHPOINTS[int(rng.integers(len(TOUCHPOINTS)))],
                "incidents": [str(x) for x in rng.choice(INCIDENTS, size=k, replace=False)],
                "score": float(rng.random()),
            }
        )
    return inputs


def test_aspects_and_incident_mapping():
    assert set(ASPECTS) == {
        "delivery_speed",
        "staff_attitude",
        "price_value",
        "product_quality",
        "waiting_time",
        "app_usability",
        "membership_benefits",
        "cleanliness",
        "effort",
    }
    assert all(CJK.search(name.zh) and name.en.isascii() for name in ASPECTS.values())
    assert set(INCIDENT_ASPECT) == set(INCIDENTS)
    assert set(INCIDENT_ASPECT.values()) <= set(ASPECTS)
    for language in LANGUAGES:
        assert set(INCIDENT_PHRASES[language]) == set(INCIDENTS)
        assert all(len(t) >= 6 for t in INCIDENT_PHRASES[language].values())


@pytest.mark.parametrize("language", LANGUAGES)
def test_same_seed_same_comments(language):
    inputs = _mixed_inputs(1, 300)

    def run(seed: int) -> list[str]:
        rng = np.random.default_rng(seed)
        return [write_comment(rng, language=language, **kw) for kw in inputs]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_each_call_takes_a_fixed_number_of_draws():
    # The caller's stream advances the same way whatever the comment says.
    for kw in _mixed_inputs(2, 50):
        rng = np.random.default_rng(3)
        write_comment(rng, language="en", **kw)
        reference = np.random.default_rng(3)
        reference.random(comments._DRAWS)
        assert rng.random() == reference.random()


def test_each_call_takes_a_fixed_number_of_draws_with_aspect_scores_too():
    for kw in _mixed_inputs(21, 50):
        rng = np.random.default_rng(3)
        write_comment(rng, language="zh", aspect_scores=dict.fromkeys(ASPECTS, 0.1), **kw)
        reference = np.random.default_rng(3)
        reference.random(comments._DRAWS)
        assert rng.random() == reference.random()


def _filled(template: str, language: str) -> list[str]:
    """A template with every combination of its slots' fillers."""
    slots = SLOTS[language]
    names = sorted(set(re.findall(r"\{(\w+)\}", template)))
    options = [slots["drink" if name == "drink2" else name] for name in names]
    return [
        template.format(**dict(zip(names, values, strict=True)))
        for values in itertools.product(*options)
    ]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_aspect_lexicon_reads_every_incident_as_a_complaint(language):
    """Comment analysis (experience/text, aspects.yaml) finds each incident as a complaint
    about its aspect, by a complaint phrase of the lexicon, not by the sentiment model; the
    injected problems' phrasings name no other aspect at all."""
    injected = {p.incident for p in world_config.Experience().injected_problems}
    for incident, templates in INCIDENT_PHRASES[language].items():
        aspect = INCIDENT_ASPECT[incident]
        for template in templates:
            for text in _filled(template, language):
                found = {(m.aspect, m.cue) for m in aspect_mentions(text, language)}
                assert (aspect, -1) in found, (incident, text, found)
                if incident in injected:
                    assert {a for a, _ in found} == {aspect}, (incident, text, found)


@pytest.mark.parametrize("language", LANGUAGES)
def test_remarks_follow_their_aspects_scores(language):
    """With ``aspect_scores`` a remark takes the tone of its aspect, not of the overall
    score: the price is poor for someone happy with everything else, and the other way
    round."""
    low_price = dict.fromkeys(ASPECTS, 0.95) | {"price_value": 0.05}
    rng = np.random.default_rng(22)
    texts = [
        t
        for _ in range(600)
        if (
            t := write_comment(
                rng,
                language=language,
                touchpoint="store",
                incidents=[],
                score=0.9,
                aspect_scores=low_price,
            )
        )
    ]
    remarks = [remark for text in texts for remark in _remark_tones(text, language)]
    price = [tone for aspect, tone in remarks if aspect == "price_value"]
    others = [tone for aspect, tone in remarks if aspect != "price_value"]
    assert len(price) > 50
    assert len(others) > 300
    assert set(price) == {"neg"}
    assert set(others) == {"pos"}


def _remark_tones(text: str, language: str) -> list[tuple[str, str]]:
    """(aspect, tone) of each remark in ``text``, found by the remark templates."""
    found = []
    for aspect, by_tone in comments._REMARKS[language].items():
        for tone, templates in by_tone.items():
            for template in templates:
                if _pattern(template, language).search(text):
                    found.append((aspect, tone))
    return found


def test_zh_cn_is_zh():
    kw = {"touchpoint": "store", "incidents": ["long_queue"], "score": 0.3}
    assert _draw(4, 50, language="zh-CN", **kw) == _draw(4, 50, language="zh", **kw)


@pytest.mark.parametrize(
    "kw",
    [
        {"language": "fr", "touchpoint": "store", "incidents": [], "score": 0.5},
        {"language": "en", "touchpoint": "kiosk", "incidents": [], "score": 0.5},
        {"language": "en", "touchpoint": "store", "incidents": ["alien_attack"], "score": 0.5},
    ],
)
def test_unknown_inputs_are_refused(kw):
    with pytest.raises(ValueError, match=r"unsupported|unknown"):
        write_comment(np.random.default_rng(0), **kw)


@pytest.mark.parametrize("language", LANGUAGES)
def test_exactly_the_given_incidents_are_mentioned(language):
    rng = np.random.default_rng(11)
    checked = 0
    for kw in _mixed_inputs(5, 3000):
        text = write_comment(rng, language=language, **kw)
        if not text:
            continue
        checked += 1
        assert _mentioned(text, language) == set(kw["incidents"]), (kw, text)
    assert checked > 2500


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_incident_alone_and_all_together(language):
    for incident in INCIDENTS:
        texts = _draw(
            12, 200, language=language, touchpoint="store", incidents=[incident], score=0.3
        )
        assert all(_mentioned(t, language) == {incident} for t in texts if t)
    texts = _draw(
        13, 100, language=language, touchpoint="app", incidents=list(INCIDENTS), score=0.0
    )
    assert all(_mentioned(t, language) == set(INCIDENTS) for t in texts if t)


def test_language_of_the_output():
    for kw in _mixed_inputs(6, 500):
        rng = np.random.default_rng(int(kw["score"] * 1e6))
        zh = write_comment(rng, language="zh", **kw)
        en = write_comment(rng, language="en", **kw)
        assert not zh or CJK.search(zh), zh
        if en:
            letters = [c for c in en if c.isalpha()]
            assert not CJK.search(en), en
            assert sum(c.isascii() for c in letters) / len(letters) >= 0.95, en


@pytest.mark.parametrize("language", LANGUAGES)
def test_tone_follows_the_score(language):
    rng = np.random.default_rng(8)
    low = []
    for kw in _mixed_inputs(7, 1000):
        kw["score"] *= 0.15
        if text := write_comment(rng, language=language, **kw):
            low.append(text)
    high = [
        t
        for tp in TOUCHPOINTS
        for _ in range(150)
        if (t := write_comment(rng, language=language, touchpoint=tp, incidents=[], score=0.9))
    ]
    assert len(low) > 800
    assert len(high) > 800
    assert sum(_has_word(t, language, "neg") for t in low) / len(low) >= 0.9
    assert sum(_has_word(t, language, "pos") for t in high) / len(high) >= 0.9
    assert sum(_has_word(t, language, "neg") for t in high) / len(high) <= 0.1


@pytest.mark.parametrize("language", LANGUAGES)
def test_middling_scores_leave_the_box_empty_most_often(language):
    def empty_share(score: float, incidents: list[str]) -> float:
        texts = _draw(
            9, 2000, language=language, touchpoint="store", incidents=incidents, score=score
        )
        return texts.count("") / len(texts)

    middle = empty_share(0.5, [])
    assert middle > 2 * empty_share(0.05, [])
    assert middle > 2 * empty_share(0.95, [])
    assert empty_share(0.5, ["rude_staff"]) < middle / 4


@pytest.mark.parametrize(
    "kw",
    [
        {"touchpoint": "store", "incidents": [], "score": 0.8},
        {"touchpoint": "delivery", "incidents": ["delivery_delay"], "score": 0.2},
        {"touchpoint": "app", "incidents": ["app_failure", "out_of_stock"], "score": 0.4},
    ],
)
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_same_inputs_give_varied_comments(language, kw):
    texts = _draw(10, 1000, language=language, **kw)
    assert len(set(texts)) >= 400


@pytest.mark.parametrize("language", LANGUAGES)
def test_typos_at_a_modest_rate(language, monkeypatch):
    inputs = _mixed_inputs(14, 3000)

    def run() -> list[str]:
        rng = np.random.default_rng(15)
        return [write_comment(rng, language=language, **kw) for kw in inputs]

    noisy = run()
    monkeypatch.setattr(comments, "_TYPO_RATE", 0.0)
    clean = run()

    # Typo decisions come last, so the clean run writes the same comments without them.
    pairs = [(n, c) for n, c in zip(noisy, clean, strict=True) if c]
    share = sum(n != c for n, c in pairs) / len(pairs)
    assert 0.03 <= share <= 0.20

    def has_known_typo(text: str) -> bool:
        if language == "zh":
            return any(wrong in text for _, wrong in TYPOS["zh"])
        lowered = text.lower()
        return any(
            re.search(rf"\b{re.escape(wrong.strip())}\b", lowered) for _, wrong in TYPOS["en"]
        )

    assert not any(has_known_typo(c) for _, c in pairs)
    assert sum(has_known_typo(n) for n, _ in pairs) >= 0.01 * len(pairs)


def test_comments_read_like_comments():
    for language in LANGUAGES:
        kw = {"touchpoint": "store", "incidents": [], "score": 0.7}
        texts = [t for t in _draw(16, 2000, language=language, **kw) if t]
        assert all(len(t) <= 300 for t in texts)
        assert not any("{" in t or "}" in t or "  " in t for t in texts)
    zh = [t for t in _draw(17, 3000, language="zh", touchpoint="app", incidents=[], score=0.9) if t]
    # Emoji, internet slang and English words turn up now and then.
    assert any(re.search(r"[\U0001F300-\U0001FAFF]", t) for t in zh)
    assert any(any(s in t for s in ("yyds", "绝绝子", "真香")) for t in zh)
    assert any(re.search(r"app|APP|OK|latte|nice", t) for t in zh)
