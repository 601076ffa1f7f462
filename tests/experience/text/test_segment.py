"""Segmentation with the retail dictionary, English words, stop words and language."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from memberlab.core.errors import InvalidInput
from memberlab.experience.text.segment import (
    MAX_TEXT_CHARS,
    detect_language,
    resolve_language,
    retail_words,
    segmenter,
    tokens,
)

# Words the brief names; jieba's own dictionary splits several of them (拿/铁, 小/程序).
RETAIL_TERMS = [
    "奶茶", "拿铁", "美式", "柠檬茶", "外卖", "骑手", "小程序", "会员日", "积分", "优惠券",
    "等级", "店员", "排队", "取餐", "出餐", "冷掉", "漏单", "送错", "闪退", "卡顿", "性价比",
    "踩雷", "无语",
]  # fmt: skip


def test_every_dictionary_word_is_one_token_on_its_own():
    words = [word for word, _, _ in retail_words()]
    assert set(RETAIL_TERMS) <= set(words)
    split = {w: tokens(w, "zh", keep_stopwords=True) for w in words}
    assert {w: t for w, t in split.items() if t != [w]} == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("用小程序点了拿铁，结果一直闪退", ["小程序", "拿铁", "闪退"]),
        ("外卖骑手送错了，奶茶都冷掉了，还漏单", ["外卖", "骑手", "送错", "奶茶", "冷掉", "漏单"]),
        ("会员日的优惠券和积分等级", ["会员日", "优惠券", "积分", "等级"]),
        ("排队取餐太久，出餐也卡顿", ["排队", "取餐", "出餐", "卡顿"]),
        ("这杯柠檬茶性价比不高，踩雷了，无语", ["柠檬茶", "性价比", "踩雷", "无语"]),
        ("店员推荐的美式", ["店员", "美式"]),
    ],
)
def test_retail_terms_stay_whole_inside_sentences(text, expected):
    words = tokens(text, "zh")
    assert [w for w in words if w in expected] == expected


def test_chinese_tokens_drop_punctuation_stopwords_and_emoji_and_lower_latin():
    words = tokens("我觉得APP很好用！！😋 yyds", "zh")
    assert "app" in words
    assert "yyds" in words
    assert not {"我", "很", "！", "😋", " "} & set(words)
    assert "我" in tokens("我觉得APP很好用", "zh", keep_stopwords=True)


def test_english_tokens_are_lowercase_words_without_stopwords():
    assert tokens("The App kept CRASHING, and I didn't get my latte!", "en") == [
        "app",
        "kept",
        "crashing",
        "latte",
    ]
    assert tokens("It's fine", "en", keep_stopwords=True) == ["it's", "fine"]


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("拿铁很好喝", "zh"),
        ("app一直闪退", "zh"),
        ("latte 好喝 yyds", "zh"),
        ("The latte was great", "en"),
        ("10/10 👍", "en"),
        ("", "en"),
    ],
)
def test_a_comment_with_any_chinese_character_is_chinese(text, language):
    assert detect_language(text) == language


def test_language_tags_are_normalised_and_unknown_ones_refused():
    assert resolve_language("zh-CN", "hello") == "zh"
    assert resolve_language("en-GB", "你好") == "en"
    assert resolve_language(None, "你好") == "zh"
    with pytest.raises(InvalidInput) as caught:
        resolve_language("fr", "bonjour")
    assert [e.key for e in caught.value.errors] == ["experience.text.unknown_language"]
    assert caught.value.errors[0].params == {"value": "fr"}


def test_empty_and_huge_texts():
    assert tokens("", "zh") == []
    assert tokens("   ", "en") == []
    huge = tokens("拿铁" * (MAX_TEXT_CHARS), "zh")
    assert len(huge) == MAX_TEXT_CHARS // 2


def test_the_segmenter_is_built_once():
    assert segmenter() is segmenter()


def test_jieba_prints_nothing_and_initialises_once_across_threads():
    """In a fresh interpreter (jieba not yet initialised): eight threads ask at once."""
    script = textwrap.dedent(
        """
        import threading
        from memberlab.experience.text import segment

        seen, words = [], []
        def work():
            seen.append(id(segment.segmenter()))
            words.append(tuple(segment.tokens("小程序点拿铁", "zh")))
        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        import sys
        sys.__stdout__.write(f"{len(set(seen))} {len(set(words))} {words[0]}")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout == "1 1 ('小程序', '拿铁')"
