"""The message catalogs: every text exists in zh-CN and en, with the same placeholders.

The catalogs are the ``src/memberlab/*/locales/<lang>.yaml`` files, merged by
``memberlab.core.i18n.catalogs()``.
"""

from __future__ import annotations

import pytest

from memberlab.core.i18n import catalogs, placeholders, t

ALL_KEYS = sorted(set(catalogs()["en"]) | set(catalogs()["zh-CN"]))


def test_both_languages_have_the_same_keys():
    en, zh = catalogs()["en"], catalogs()["zh-CN"]

    assert sorted(set(en) - set(zh)) == [], "missing in zh-CN"
    assert sorted(set(zh) - set(en)) == [], "missing in en"


@pytest.mark.parametrize("key", ALL_KEYS)
def test_both_languages_fill_in_the_same_placeholders(key):
    en = catalogs()["en"].get(key, "")
    zh = catalogs()["zh-CN"].get(key, "")

    assert placeholders(zh) == placeholders(en)


@pytest.mark.parametrize("key", ALL_KEYS)
def test_no_text_is_empty(key):
    assert catalogs()["en"].get(key, "").strip()
    assert catalogs()["zh-CN"].get(key, "").strip()


def test_placeholders_are_the_named_fields_of_a_template():
    assert placeholders("must be above {other} ({value})") == {"other", "value"}
    assert placeholders("duplicate {value!r}: already used by {other}") == {"value", "other"}
    assert placeholders("the file is empty") == set()


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", "must be above tiers[1].threshold (3000)"),
        ("zh-CN", "必须高于 tiers[1].threshold（3000）"),
    ],
)
def test_a_message_is_filled_in_the_language_asked_for(lang, expected):
    text = t("programs.v.threshold_order", lang, other="tiers[1].threshold", value="3000")

    assert text == expected
