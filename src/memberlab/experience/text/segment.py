"""Words from survey comments: language, Chinese segmentation with a retail dictionary, stop words.

Why a dictionary of our own: jieba's general dictionary was built from news and web text,
so it splits the words members use about a tea shop (拿铁 -> 拿/铁, 小程序 -> 小/程序,
踩雷 -> 踩/雷). Keywords and aspect clauses would then count fragments. ``retail_dict.txt``
(next to this module) lists those words; it is jieba's user-dictionary format
(``word [frequency [part-of-speech]]``) plus ``#`` comments.

jieba is imported and initialised lazily, once, under a lock: building its prefix
dictionary takes about a second and nothing should pay that just by importing this
package. Our own ``jieba.Tokenizer`` instance keeps the retail words out of the global
``jieba.dt`` other code may use, and jieba's logger is set to WARNING first so that
initialising prints nothing.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Literal

from memberlab.core.i18n import normalise_language

if TYPE_CHECKING:
    import jieba

__all__ = [
    "MAX_TEXT_CHARS",
    "STOPWORDS",
    "TextLanguage",
    "detect_language",
    "resolve_language",
    "retail_words",
    "segmenter",
    "tokens",
]

TextLanguage = Literal["zh", "en"]

# Longer comments are cut to this many characters before analysis: segmentation time grows
# with length, and a pasted essay should not stall a report over 100,000 comments.
MAX_TEXT_CHARS = 5_000

# CJK Unified Ideographs, Extension A and Compatibility Ideographs: enough to call a
# comment Chinese. Japanese kana alone is not Chinese; it is rare in these surveys.
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# An English word: letters and digits, with inner apostrophes (don't, it's).
_ENGLISH_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)*")
# A token worth keeping from jieba: it has a Chinese character, a letter or a digit.
_CONTENT = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaffa-z0-9]")


def _words(text: str) -> frozenset[str]:
    """A word list written as text, one or more per line (easier to read and extend)."""
    return frozenset(text.split())


_ZH_STOPWORDS = _words(
    """
    的 地 得 了 着 过 是 在 有 和 与 跟 及 或 而 且 并 也 都 就 还 又 再 才 只 很 太 挺 蛮 好像
    我 你 他 她 它 我们 你们 他们 她们 咱 咱们 自己 这 那 这个 那个 这些 那些 这里 那里 这样 那样
    这么 那么 一 一个 一杯 一下 一点 一些 个 杯 次 些 点 把 被 给 让 叫 对 向 从 到 为 为了 以
    之 其 于 等 啊 吧 呢 吗 嘛 哦 呀 啦 哈 哈哈 嗯 哎 唉 呗 么 喔 噢 诶 额 emmm 就是 但是 不过
    可是 而且 还有 然后 所以 因为 如果 虽然 但 另外 其实 感觉 觉得 真的 有点 有些 一直 已经
    今天 昨天 每次 每天 时候 东西 什么 怎么 为什么 还是 或者 以及 比较 非常 特别 超级 实在 简直
    说 用 拿 做 去 来 想 要 能 会 可以 不 没 没有 下来 起来 出来 过来 之后 以后 结果
    """
)
_EN_STOPWORDS = _words(
    """
    a an the and or but if so as at by for from in into of on onto to with without about over
    under again than then too very just also even still only really quite pretty much more most
    i me my mine we us our you your he him his she her it its it's they them their this that
    these those there here what which who whom when where why how all any both each few some
    such no nor not own same is am are was were be been being have has had having do does did
    doing would should could can will shall may might must got get gets getting go went gone
    like lol tbh ngl omg im i'm i've i'd you're they're don't didn't doesn't isn't wasn't
    one two s t ve ll re d m
    """
)
STOPWORDS: dict[TextLanguage, frozenset[str]] = {"zh": _ZH_STOPWORDS, "en": _EN_STOPWORDS}

# What jieba segments as one block (its re_han_default, plus rarer CJK): jieba cuts
# text at everything else (punctuation, spaces, emoji) first, so cutting block by block
# gives the same words, and lets each block's words be cached.
_BLOCK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaffa-z0-9+#&._%\-]+")
# Distinct blocks remembered: comments repeat short phrases (很好喝, 排队太久) all the
# time, and a cached block costs a dictionary lookup instead of jieba's ~100 µs.
BLOCK_CACHE_SIZE = 200_000

_lock = threading.Lock()
_segmenter: jieba.Tokenizer | None = None


def detect_language(text: str) -> TextLanguage:
    """``"zh"`` when the text has any Chinese character, else ``"en"``.

    Why so simple: the surveys are in Chinese or English, and a Chinese comment almost
    always mixes in Latin words (app, yyds, latte) while an English one never has hanzi.
    """
    return "zh" if _CJK.search(text) else "en"


def resolve_language(language: str | None, text: str) -> TextLanguage:
    """The analysis language for ``text``: ``language`` when given (any tag such as
    ``zh-CN``, ``zh`` or ``en-GB``), else detected from the text itself."""
    if language is None:
        return detect_language(text)
    normalised = normalise_language(language)
    if normalised is None:
        from memberlab.core.errors import FieldError, InvalidInput

        raise InvalidInput(
            errors=[FieldError("language", "experience.text.unknown_language", {"value": language})]
        )
    return "zh" if normalised == "zh-CN" else "en"


def retail_words() -> list[tuple[str, int | None, str | None]]:
    """The entries of ``retail_dict.txt`` as ``(word, frequency, part_of_speech)``."""
    text = resources.files(__package__).joinpath("retail_dict.txt").read_text(encoding="utf-8")
    entries: list[tuple[str, int | None, str | None]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        frequency = int(parts[1]) if len(parts) > 1 else None
        tag = parts[2] if len(parts) > 2 else None
        entries.append((parts[0], frequency, tag))
    return entries


def segmenter() -> jieba.Tokenizer:
    """The shared jieba tokenizer with the retail words, built on first use (thread-safe)."""
    global _segmenter
    current = _segmenter
    if current is not None:
        return current
    with _lock:
        if _segmenter is None:
            with warnings.catch_warnings():
                # jieba 0.42 has invalid escape sequences in its regexes; not our concern.
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", SyntaxWarning)
                import jieba
            jieba.setLogLevel(logging.WARNING)
            tokenizer = jieba.Tokenizer()
            tokenizer.initialize()
            for word, frequency, tag in retail_words():
                tokenizer.add_word(word, frequency, tag)
            _segmenter = tokenizer
        return _segmenter


@lru_cache(maxsize=BLOCK_CACHE_SIZE)
def _cut_block(block: str) -> tuple[str, ...]:
    return tuple(w for w in segmenter().cut(block) if _CONTENT.search(w))


def tokens(text: str, language: str | None = None, *, keep_stopwords: bool = False) -> list[str]:
    """The words of ``text``, lower-cased, without punctuation, spaces or emoji.

    Chinese (``zh``) is segmented by jieba with the retail dictionary (Latin words inside
    stay whole: ``app``, ``yyds``); English is split into words. Function words (的, 了,
    the, and) are dropped so what is left carries meaning, which is what
    keywords need (``keep_stopwords=True`` keeps them). ``language=None`` detects it per text.
    """
    if not text:
        return []
    text = text[:MAX_TEXT_CHARS].lower()
    code = resolve_language(language, text)
    if code == "zh":
        words = [w for block in _BLOCK.findall(text) for w in _cut_block(block)]
    else:
        words = _ENGLISH_WORD.findall(text)
    if keep_stopwords:
        return words
    stop = STOPWORDS[code]
    return [w for w in words if w not in stop]
