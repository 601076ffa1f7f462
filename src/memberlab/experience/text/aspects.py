"""Aspects of the experience in comments: a bilingual lexicon, clauses, sentiment per aspect.

A consultant's first question about 10,000 comments is *what* people praise and complain
about, and how strongly. A lexicon answers it in a way the client can read and argue
with: ``aspects.yaml`` (next to this module) lists, for each aspect, the zh and en words
that mark it and the phrases that are a complaint or praise by themselves. A consultant
extends it with a file of their own (``load_lexicon(Path("mine.yaml"))``) rather than
retraining anything.

How a comment is read:

1. *Clauses.* The text is cut at punctuation (，。！？,.!?;；), line breaks and turns
   (但是/不过/可是, but/however/though): "奶茶好喝，但是排队太久" praises the tea and
   blames the queue, and each aspect takes the tone of its own clause.
2. *Terms.* All literal terms of the language are matched in one pass; where two overlap
   the longest wins (漏单 is an order error, not the 漏 of a leaking cup). Regular
   expression patterns add mentions on top. A match belongs to every clause it touches,
   so "ordered a latte but got a mocha" is still one order error.
3. *Yielding.* An aspect may yield to another in the same clause ("等了一个小时外卖还没到"
   is delivery, not waiting in the store).
4. *Sentiment.* Each clause gets P(positive) from ``sentiment.sentiment``. A negative
   cue of the aspect in the clause caps it at ``NEGATIVE_CUE_CEILING``, a positive one
   lifts it to ``POSITIVE_CUE_FLOOR``, unless a negation (不/没/not/never) stands just
   before the cue, which turns it round ("不热情", "wasn't rude"). Why the override: the
   model learnt from hotel, book and electronics reviews; it has never seen "外卖超时" or
   "闪退", which the lexicon knows are complaints.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from memberlab.core.errors import FieldError, InvalidInput
from memberlab.experience.text.segment import (
    MAX_TEXT_CHARS,
    TextLanguage,
    resolve_language,
    tokens,
)

__all__ = [
    "NEGATIVE_CUE_CEILING",
    "POSITIVE_CUE_FLOOR",
    "Aspect",
    "Clause",
    "Lexicon",
    "Mention",
    "aspect_mentions",
    "aspect_sentiments",
    "aspect_summary",
    "comment_table",
    "default_lexicon",
    "detect_aspects",
    "load_lexicon",
    "split_clauses",
]

LEXICON_FILE = "aspects.yaml"
# A clause with a complaint cue of the aspect is at most this positive, one with a praise
# cue at least this positive: outside the neutral band of ``sentiment.label``.
NEGATIVE_CUE_CEILING = 0.2
POSITIVE_CUE_FLOOR = 0.8
# Quotes longer than this are cut (with an ellipsis) so a summary stays readable.
MAX_QUOTE_CHARS = 200

_LANGUAGES: tuple[TextLanguage, ...] = ("zh", "en")
_ENTRY_KINDS = ("terms", "negative", "positive", "patterns")
_POLARITY = {"terms": 0, "negative": -1, "positive": 1, "patterns": 0}
_ASPECT_KEYS = ("name", "yields_to", *_LANGUAGES)
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
# English terms match whole words with a regular ending: crash -> crashed, crashing.
_EN_ENDINGS = r"(?:s|es|ed|d|ing)?"
_SPACES = re.compile(r"[\s\-]+")

# Clause boundaries: punctuation, line breaks, spaces between Chinese characters (casual
# writing uses them as commas) and turns. 但 alone is a turn unless part of 不但 or 但是
# (but 但是 itself is a turn too, matched first).
_CLAUSE_BREAK = re.compile(
    r"[，。！？!?；;、\n\r~～…]+"
    r"|,|\.(?!\d)"
    r"|(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff])"
    r"|但是|不过|可是|然而|(?<!不)但"
    r"|\b(?:but|however|though|although|yet)\b",
    re.IGNORECASE,
)
# Negations that turn a cue round when they stand just before it. 不仅/不但/不光/不只
# (not only) and 不错 (not bad = good) are not negations.
_ZH_NEGATION = re.compile(r"(?:不(?![仅但光只错])|没|無|无(?!论)|别|未|甭)")
_EN_NEGATION = re.compile(r"\b(?:not|no|never|without|hardly)\b|n't\b")
_ZH_NEGATION_WINDOW = 4  # characters before the cue
_EN_NEGATION_WINDOW = 24  # about three words


@dataclass(frozen=True)
class Aspect:
    """One aspect of the experience, named for people in both languages."""

    code: str
    name_zh: str
    name_en: str
    yields_to: tuple[str, ...] = ()

    def name(self, language: str | None = None) -> str:
        """The name in ``language`` (zh-CN/zh or en; default zh)."""
        return self.name_en if language and language.lower().startswith("en") else self.name_zh


@dataclass(frozen=True)
class Clause:
    """A stretch of a comment between two breaks; ``start``/``end`` index the text."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Mention:
    """An aspect mentioned in one clause; ``cue`` is -1/+1 when a complaint/praise phrase
    of the aspect says the tone (after negation), else 0."""

    aspect: str
    clause: Clause
    cue: int


@dataclass(frozen=True)
class _Cue:
    aspect: str
    polarity: int


class _Matcher:
    """All terms and patterns of one language, compiled once."""

    def __init__(
        self,
        language: TextLanguage,
        entries: dict[str, dict[str, tuple[str, ...]]],
    ) -> None:
        self.language = language
        self.lookup: dict[str, list[_Cue]] = {}
        self.patterns: list[tuple[re.Pattern[str], _Cue]] = []
        for aspect, kinds in entries.items():
            for kind, items in kinds.items():
                if kind == "patterns":
                    for pattern in items:
                        self.patterns.append((re.compile(pattern, re.IGNORECASE), _Cue(aspect, 0)))
                    continue
                for term in items:
                    key = self._key(term)
                    cues = self.lookup.setdefault(key, [])
                    cue = _Cue(aspect, _POLARITY[kind])
                    # a term listed as plain and as a cue keeps the cue
                    same = [c for c in cues if c.aspect == aspect]
                    if not same:
                        cues.append(cue)
                    elif cue.polarity and not same[0].polarity:
                        cues[cues.index(same[0])] = cue
        self.literal: re.Pattern[str] | None = None
        if not self.lookup:
            return
        if language == "en":
            body = _trie_regex(self.lookup, space=r"[\s\-]+")
            self.literal = re.compile(rf"(?<![a-z0-9'])({body}){_EN_ENDINGS}(?![a-z0-9])")
        else:
            # Latin words inside Chinese text (app, bug) must be whole: not the app in happy
            latin = [key for key in self.lookup if key.isascii()]
            han = [key for key in self.lookup if not key.isascii()]
            parts = []
            if latin:
                parts.append(rf"(?<![a-z0-9])(?:{_trie_regex(latin)})(?![a-z0-9])")
            if han:
                parts.append(_trie_regex(han))
            self.literal = re.compile("(" + "|".join(parts) + ")")

    def _key(self, term: str) -> str:
        key = term.strip().lower().replace("’", "'")
        return _SPACES.sub(" ", key) if self.language == "en" else key

    def find(self, text: str) -> list[tuple[int, int, _Cue]]:
        """Every (start, end, cue) in ``text`` (lower-cased)."""
        found: list[tuple[int, int, _Cue]] = []
        if self.literal is not None:
            for match in self.literal.finditer(text):
                key = _SPACES.sub(" ", match.group(1)) if self.language == "en" else match.group(1)
                for cue in self.lookup.get(key, ()):
                    found.append((match.start(), match.end(), cue))
        for pattern, cue in self.patterns:
            for match in pattern.finditer(text):
                found.append((match.start(), match.end(), cue))
        return found


def _trie_regex(keys: Iterable[str], *, space: str | None = None) -> str:
    """One regular expression for many literal terms, shaped as a trie (排(?:队|了)...).

    Why: Python's regex engine tries the branches of an alternation one by one at every
    position; a trie shares prefixes, so a position is given up after a few comparisons
    instead of hundreds. Greedy optional tails keep the longest term first. ``space``, if
    given, is what a space in a term matches.
    """
    trie: dict[str, Any] = {}
    for key in keys:
        node = trie
        for char in key:
            node = node.setdefault(char, {})
        node[""] = {}  # the end of a term

    def build(node: dict[str, Any]) -> str:
        ends = "" in node
        branches = []
        for char in sorted(c for c in node if c):
            head = space if (space is not None and char == " ") else re.escape(char)
            branches.append(head + build(node[char]))
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if ends:
            return f"(?:{body})?"
        return body

    return build(trie)


@dataclass(frozen=True)
class Lexicon:
    """Aspects and, per language and aspect, their terms, cues and patterns."""

    aspects: dict[str, Aspect]
    entries: dict[TextLanguage, dict[str, dict[str, tuple[str, ...]]]]
    _matchers: dict[TextLanguage, _Matcher] = field(default_factory=dict, compare=False)

    def matcher(self, language: TextLanguage) -> _Matcher:
        matcher = self._matchers.get(language)
        if matcher is None:
            matcher = _Matcher(language, self.entries[language])
            self._matchers[language] = matcher
        return matcher

    def name(self, aspect: str, language: str | None = None) -> str:
        return self.aspects[aspect].name(language)


# --- loading and validation -------------------------------------------------------------


def _error(loc: str, message: str, line: int | None = None, **params: Any) -> FieldError:
    """A field error; ``message`` is the catalog key (``params`` may hold a "key")."""
    if line is not None:
        params.setdefault("line", line)
    return FieldError(loc, message, params, line=line)


def _node_lines(node: yaml.Node | None, loc: tuple[str | int, ...] = ()) -> dict[tuple, int]:
    """The 1-based line of every key and list item, by path, to point errors at the file."""
    lines: dict[tuple, int] = {}
    if node is None:
        return lines
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*loc, getattr(key_node, "value", None))
            lines.update(_node_lines(value_node, path))
            lines[path] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines.update(_node_lines(item, (*loc, i)))
    return lines


def _read_document(text: str, source: str) -> tuple[Any, dict[tuple, int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise InvalidInput(
            errors=[
                FieldError(
                    source,
                    "experience.lexicon.yaml_syntax",
                    {
                        "line": line or "?",
                        "column": mark.column + 1 if mark else "?",
                        "problem": exc.problem or str(exc),
                    },
                    line=line,
                )
            ]
        ) from None
    except yaml.YAMLError as exc:
        raise InvalidInput(
            errors=[
                _error(
                    source, "experience.lexicon.yaml_syntax", None, line="?", column="?",
                    problem=str(exc),
                )
            ]
        ) from None  # fmt: skip
    lines = _node_lines(node)
    _check_duplicate_keys(node, source)
    return data, lines


def _check_duplicate_keys(node: yaml.Node | None, source: str) -> None:
    """YAML keeps the last of two equal keys silently; in a lexicon that loses terms."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = getattr(key_node, "value", None)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise InvalidInput(
                    errors=[_error(source, "experience.lexicon.duplicate_key", line, key=key)]
                )
            seen.add(key)
            _check_duplicate_keys(value_node, source)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_duplicate_keys(item, source)


def _loc(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _parse(
    data: Any,
    lines: dict[tuple, int],
    known: dict[str, Aspect],
    errors: list[FieldError],
) -> tuple[dict[str, dict[str, Any]], dict[TextLanguage, dict[str, dict[str, list[str]]]]]:
    """Aspect headers and entries of one document; problems go to ``errors``."""

    def line(*path: str | int) -> int | None:
        for cut in range(len(path), -1, -1):
            if path[:cut] in lines:
                return lines[path[:cut]]
        return None

    def fail(path: tuple[str | int, ...], message: str, **params: Any) -> None:
        errors.append(_error(_loc(path), message, line(*path), **params))

    headers: dict[str, dict[str, Any]] = {}
    entries: dict[TextLanguage, dict[str, dict[str, list[str]]]] = {lang: {} for lang in _LANGUAGES}
    if not isinstance(data, dict):
        fail((), "experience.lexicon.not_mapping", field="(document)")
        return headers, entries
    for key in data:
        if key not in ("version", "aspects"):
            fail((key,), "experience.lexicon.unknown_key", key=key, allowed="version, aspects")
    aspects = data.get("aspects")
    if not isinstance(aspects, dict):
        fail(("aspects",), "experience.lexicon.not_mapping", field="aspects")
        return headers, entries
    for code, body in aspects.items():
        path: tuple[str | int, ...] = ("aspects", code)
        if not isinstance(code, str) or not _CODE.match(code):
            fail(path, "experience.lexicon.bad_aspect_code", code=code)
            continue
        if not isinstance(body, dict):
            fail(path, "experience.lexicon.not_mapping", field=_loc(path))
            continue
        for key in body:
            if key not in _ASPECT_KEYS:
                fail((*path, key), "experience.lexicon.unknown_key", key=key,
                     allowed=", ".join(_ASPECT_KEYS))  # fmt: skip
        header: dict[str, Any] = {}
        name = body.get("name")
        if name is None:
            if code not in known:
                fail((*path, "name"), "experience.lexicon.name_required", aspect=code)
        elif (
            not isinstance(name, dict)
            or set(name) != {"zh", "en"}
            or not all(isinstance(v, str) and v.strip() for v in name.values())
        ):
            fail((*path, "name"), "experience.lexicon.bad_name", aspect=code)
        else:
            header["name"] = (name["zh"].strip(), name["en"].strip())
        if "yields_to" in body:
            yields = body["yields_to"]
            if not isinstance(yields, list) or not all(isinstance(v, str) for v in yields):
                fail((*path, "yields_to"), "experience.lexicon.not_text_list",
                     field=_loc((*path, "yields_to")))  # fmt: skip
            else:
                header["yields_to"] = tuple(yields)
        headers[code] = header
        for lang in _LANGUAGES:
            section = body.get(lang)
            if section is None:
                continue
            lang_path = (*path, lang)
            if not isinstance(section, dict):
                fail(lang_path, "experience.lexicon.not_mapping", field=_loc(lang_path))
                continue
            kinds: dict[str, list[str]] = {}
            for kind, items in section.items():
                kind_path = (*lang_path, kind)
                if kind not in _ENTRY_KINDS:
                    fail(kind_path, "experience.lexicon.unknown_key", key=kind,
                         allowed=", ".join(_ENTRY_KINDS))  # fmt: skip
                    continue
                if not isinstance(items, list):
                    fail(kind_path, "experience.lexicon.not_text_list", field=_loc(kind_path))
                    continue
                good: list[str] = []
                for i, item in enumerate(items):
                    item_path = (*kind_path, i)
                    if not isinstance(item, str) or not item.strip():
                        fail(item_path, "experience.lexicon.empty_term", field=_loc(item_path))
                        continue
                    if kind == "patterns":
                        try:
                            compiled = re.compile(item, re.IGNORECASE)
                        except re.error as exc:
                            fail(item_path, "experience.lexicon.bad_pattern", pattern=item,
                                 reason=str(exc))  # fmt: skip
                            continue
                        if compiled.search(""):
                            fail(item_path, "experience.lexicon.pattern_matches_empty",
                                 pattern=item)  # fmt: skip
                            continue
                    good.append(item.strip())
                kinds[kind] = good
            entries[lang][code] = kinds
    return headers, entries


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            errors=[
                FieldError(
                    str(path),
                    "experience.lexicon.unreadable",
                    {"path": str(path), "reason": str(exc)},
                )
            ]
        ) from None


def load_lexicon(extra: Path | None = None, *, base: bool = True) -> Lexicon:
    """The built-in lexicon, extended by the consultant's YAML file ``extra``.

    ``extra`` has the same shape as ``aspects.yaml``: its terms are added to existing
    aspects, its new aspects are added (they need ``name: {zh: ..., en: ...}``), a
    ``name`` or ``yields_to`` given for an existing aspect replaces it. ``base=False``
    loads ``extra`` alone. Every problem is reported at once, with the key path and the
    line in the file, as ``InvalidInput``.
    """
    documents: list[tuple[str, str]] = []
    if base:
        text = resources.files(__package__).joinpath(LEXICON_FILE).read_text(encoding="utf-8")
        documents.append((LEXICON_FILE, text))
    if extra is not None:
        documents.append((str(extra), _read_text(Path(extra))))
    aspects: dict[str, Aspect] = {}
    merged: dict[TextLanguage, dict[str, dict[str, list[str]]]] = {lang: {} for lang in _LANGUAGES}
    errors: list[FieldError] = []
    for source, text in documents:
        data, lines = _read_document(text, source)
        found: list[FieldError] = []
        headers, entries = _parse(data, lines, aspects, found)
        errors.extend(
            FieldError(f"{source}: {e.loc}" if e.loc else source, e.key, e.params, line=e.line)
            for e in found
        )
        for code, header in headers.items():
            old = aspects.get(code)
            name = header.get("name") or ((old.name_zh, old.name_en) if old else ("", ""))
            yields = header.get("yields_to", old.yields_to if old else ())
            aspects[code] = Aspect(code, name[0], name[1], tuple(yields))
        for lang, by_aspect in entries.items():
            for code, kinds in by_aspect.items():
                target = merged[lang].setdefault(code, {})
                for kind, items in kinds.items():
                    bucket = target.setdefault(kind, [])
                    bucket.extend(item for item in items if item not in bucket)
    for code, aspect in aspects.items():
        for other in aspect.yields_to:
            if other not in aspects:
                errors.append(
                    FieldError(
                        f"aspects.{code}.yields_to",
                        "experience.lexicon.unknown_aspect",
                        {"aspect": other, "choices": ", ".join(sorted(aspects))},
                    )
                )
    if errors:
        raise InvalidInput(errors=errors)
    frozen = {
        lang: {
            code: {kind: tuple(items) for kind, items in kinds.items()}
            for code, kinds in by_aspect.items()
        }
        for lang, by_aspect in merged.items()
    }
    return Lexicon(aspects=aspects, entries=frozen)


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The built-in lexicon, loaded once."""
    return load_lexicon()


# --- reading a comment ------------------------------------------------------------------


def split_clauses(text: str) -> list[Clause]:
    """The clauses of ``text``: cut at punctuation, line breaks and turns (但是, but)."""
    return [Clause(text[start:end], start, end) for start, end in _clause_spans(text)]


def _clause_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each clause, without the spaces around it."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _CLAUSE_BREAK.finditer(text):
        _add_span(text, start, match.start(), spans)
        start = match.end()
    _add_span(text, start, len(text), spans)
    return spans


def _add_span(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        spans.append((start, end))


def _negated(text: str, start: int, clause_start: int, language: TextLanguage) -> bool:
    if language == "zh":
        window = text[max(clause_start, start - _ZH_NEGATION_WINDOW) : start]
        return bool(_ZH_NEGATION.search(window))
    window = text[max(clause_start, start - _EN_NEGATION_WINDOW) : start]
    return bool(_EN_NEGATION.search(window))


def aspect_mentions(
    text: str, language: str | None = None, *, lexicon: Lexicon | None = None
) -> list[Mention]:
    """One ``Mention`` per (aspect, clause) in ``text``, in reading order.

    ``language=None`` detects it. Text past ``MAX_TEXT_CHARS`` is not read.
    """
    if not text:
        return []
    text = text[:MAX_TEXT_CHARS]
    lowered = text.lower().replace("’", "'")
    if len(lowered) != len(text):  # a rare letter whose lower case is longer (İ)
        text = lowered
    code = resolve_language(language, text)
    lexicon = lexicon or default_lexicon()
    spans = _clause_spans(lowered)
    if not spans:
        return []
    starts = [start for start, _ in spans]
    # clause index -> aspect -> cues seen (-1/0/+1; a complaint and a praise cancel)
    per_clause: dict[int, dict[str, set[int]]] = {}
    for start, end, cue in lexicon.matcher(code).find(lowered):
        first = max(bisect.bisect_right(starts, start) - 1, 0)
        last = max(bisect.bisect_right(starts, end - 1) - 1, first)
        polarity = cue.polarity
        if polarity and _negated(lowered, start, starts[first], code):
            polarity = -polarity
        for i in range(first, last + 1):
            per_clause.setdefault(i, {}).setdefault(cue.aspect, set()).add(polarity)
    mentions: list[Mention] = []
    aspects = lexicon.aspects
    for i in sorted(per_clause):
        found = per_clause[i]
        start, end = spans[i]
        clause = Clause(text[start:end], start, end)  # as written (original case)
        for aspect, polarities in found.items():
            if any(other in found for other in aspects[aspect].yields_to):
                continue
            signs = polarities - {0}
            mentions.append(Mention(aspect, clause, signs.pop() if len(signs) == 1 else 0))
    return mentions


def detect_aspects(
    text: str, language: str | None = None, *, lexicon: Lexicon | None = None
) -> list[str]:
    """The aspects ``text`` mentions, in order of first mention."""
    return list(dict.fromkeys(m.aspect for m in aspect_mentions(text, language, lexicon=lexicon)))


def _adjust(probability: float, cue: int) -> float:
    if cue < 0:
        return min(probability, NEGATIVE_CUE_CEILING)
    if cue > 0:
        return max(probability, POSITIVE_CUE_FLOOR)
    return probability


def aspect_sentiments(
    text: str,
    language: str | None = None,
    *,
    lexicon: Lexicon | None = None,
    cache_dir: Path | None = None,
) -> dict[str, float]:
    """P(positive) per aspect mentioned in ``text``: the mean over the clauses naming it."""
    from memberlab.experience.text.sentiment import sentiment

    mentions = aspect_mentions(text, language, lexicon=lexicon)
    if not mentions:
        return {}
    clause_texts = list(dict.fromkeys(m.clause.text for m in mentions))
    scores = dict(
        zip(clause_texts, sentiment(clause_texts, language, cache_dir=cache_dir), strict=True)
    )
    by_aspect: dict[str, list[float]] = {}
    for m in mentions:
        by_aspect.setdefault(m.aspect, []).append(_adjust(float(scores[m.clause.text]), m.cue))
    return {aspect: sum(values) / len(values) for aspect, values in by_aspect.items()}


# --- tables -----------------------------------------------------------------------------

_TABLE_SCHEMA = {
    "response_id": pl.String,
    "member_id": pl.String,
    "nps": pl.Int64,
    "language": pl.String,
    "aspect": pl.String,
    "sentiment": pl.Float64,
    "label": pl.String,
    "clause": pl.String,
    "comment": pl.String,
}


def comment_table(
    frame: pl.DataFrame,
    *,
    lexicon: Lexicon | None = None,
    cache_dir: Path | None = None,
) -> pl.DataFrame:
    """Comments in, one row per (response, aspect mentioned) out.

    ``frame`` needs a ``comment`` column (empty and null comments are skipped); optional
    ``response_id``, ``member_id`` and ``nps`` are carried over (without ``response_id``
    the row number is used). Columns out: response_id, member_id, nps, language (detected
    per comment), aspect, sentiment (P(positive) of the clauses naming the aspect, after
    cues), label (``sentiment.label``), clause (those clauses, joined) and comment.
    """
    from memberlab.experience.text.sentiment import label, sentiment

    if "comment" not in frame.columns:
        raise InvalidInput(
            errors=[
                FieldError(
                    "comment",
                    "experience.text.missing_column",
                    {"column": "comment", "columns": ", ".join(frame.columns)},
                )
            ]
        )
    lexicon = lexicon or default_lexicon()
    n = frame.height
    comments = frame.get_column("comment").cast(pl.String).to_list()
    ids = (
        frame.get_column("response_id").cast(pl.String).to_list()
        if "response_id" in frame.columns
        else [str(i) for i in range(n)]
    )
    members = (
        frame.get_column("member_id").cast(pl.String).to_list()
        if "member_id" in frame.columns
        else [None] * n
    )
    nps = (
        frame.get_column("nps").cast(pl.Int64, strict=False).to_list()
        if "nps" in frame.columns
        else [None] * n
    )
    rows: list[tuple[int, str, str, list[Mention]]] = []
    for i, comment in enumerate(comments):
        if not comment or not comment.strip():
            continue
        language = resolve_language(None, comment)
        mentions = aspect_mentions(comment, language, lexicon=lexicon)
        if mentions:
            rows.append((i, language, comment, mentions))
    # score each distinct clause once, in one batch per language
    distinct: dict[tuple[str, str], float] = {}
    for _, language, _, mentions in rows:
        for m in mentions:
            distinct.setdefault((language, m.clause.text), 0.5)
    for language in _LANGUAGES:
        keys = [k for k in distinct if k[0] == language]
        if keys:
            scores = sentiment([k[1] for k in keys], language, cache_dir=cache_dir)
            distinct.update(zip(keys, scores.tolist(), strict=True))
    columns: dict[str, list[Any]] = {name: [] for name in _TABLE_SCHEMA}
    for i, language, comment, mentions in rows:
        grouped: dict[str, list[Mention]] = {}
        for m in mentions:
            grouped.setdefault(m.aspect, []).append(m)
        for aspect, group in grouped.items():
            values = [_adjust(distinct[(language, m.clause.text)], m.cue) for m in group]
            joiner = "，" if language == "zh" else "; "
            columns["response_id"].append(ids[i])
            columns["member_id"].append(members[i])
            columns["nps"].append(nps[i])
            columns["language"].append(language)
            columns["aspect"].append(aspect)
            columns["sentiment"].append(sum(values) / len(values))
            columns["clause"].append(joiner.join(dict.fromkeys(m.clause.text for m in group)))
            columns["comment"].append(comment)
    columns["label"] = label(columns["sentiment"])
    return pl.DataFrame(columns, schema=_TABLE_SCHEMA)


def _keywords(table: pl.DataFrame, limit: int, exclude: Iterable[str] = ()) -> dict[str, list[str]]:
    """Top words of each aspect's clauses by class TF-IDF: count in the aspect times
    log(1 + aspects / aspects using the word), so words every aspect uses sink."""
    skip = set(exclude)
    counts: dict[str, Counter[str]] = {}
    for aspect, language, clause in table.select("aspect", "language", "clause").iter_rows():
        words = [w for w in _clause_tokens(clause, language) if w not in skip and not w.isdigit()]
        counts.setdefault(aspect, Counter()).update(words)
    spread: Counter[str] = Counter()
    for counter in counts.values():
        spread.update(counter.keys())
    total = len(counts)
    out: dict[str, list[str]] = {}
    for aspect, counter in counts.items():
        scored = sorted(
            counter.items(),
            key=lambda item: (-item[1] * math.log(1 + total / spread[item[0]]), item[0]),
        )
        out[aspect] = [word for word, _ in scored[:limit]]
    return out


@lru_cache(maxsize=65_536)
def _clause_tokens(clause: str, language: str) -> tuple[str, ...]:
    """Words of a clause, cached: short clauses repeat a lot across comments."""
    return tuple(tokens(clause, language))


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_QUOTE_CHARS else text[: MAX_QUOTE_CHARS - 1] + "…"


def _quotes(group: pl.DataFrame, limit: int) -> list[str]:
    """The most negative, the most positive, the next most negative, ...: distinct
    comments, ties broken by response id so the choice is the same on every run."""
    keys = ["sentiment", "response_id", "comment"]
    negative_first = group.sort(keys).get_column("comment").to_list()
    positive_first = group.sort(keys, descending=[True, False, False]).get_column("comment")
    sources = [iter(negative_first), iter(positive_first.to_list())]
    exhausted = [False, False]
    chosen: list[str] = []
    turn = 0
    while len(chosen) < limit and not all(exhausted):
        side = turn % 2
        for comment in sources[side]:
            quote = _quote(comment)
            if quote not in chosen:
                chosen.append(quote)
                break
        else:
            exhausted[side] = True
        turn += 1
    return chosen


def aspect_summary(
    table: pl.DataFrame,
    *,
    lexicon: Lexicon | None = None,
    keywords: int = 8,
    quotes: int = 3,
) -> pl.DataFrame:
    """Per aspect, from ``comment_table``: how often, how negative, what words, which quotes.

    Columns: aspect, name_zh, name_en, mentions (responses naming it), share_negative,
    mean_sentiment, mean_nps (when the table has NPS), keywords (top ``keywords`` words
    by class TF-IDF among the aspect's clauses) and quotes (``quotes`` comments: the most
    negative, the most positive, then the next most negative). Sorted by mentions.
    """
    lexicon = lexicon or default_lexicon()
    schema = {
        "aspect": pl.String,
        "name_zh": pl.String,
        "name_en": pl.String,
        "mentions": pl.Int64,
        "share_negative": pl.Float64,
        "mean_sentiment": pl.Float64,
        "mean_nps": pl.Float64,
        "keywords": pl.List(pl.String),
        "quotes": pl.List(pl.String),
    }
    if table.height == 0:
        return pl.DataFrame(schema=schema)
    # rows in one order whatever order they came in: a mean sums in row order, and sums in
    # another order can differ in the last bit
    table = table.sort([c for c in ("aspect", "response_id", "clause") if c in table.columns])
    top_words = _keywords(table, keywords)
    stats = (
        table.group_by("aspect")
        .agg(
            pl.len().cast(pl.Int64).alias("mentions"),
            (pl.col("label") == "negative").mean().alias("share_negative"),
            pl.col("sentiment").mean().alias("mean_sentiment"),
            pl.col("nps").cast(pl.Float64).mean().alias("mean_nps"),
        )
        .sort(["mentions", "aspect"], descending=[True, False])
    )
    rows: list[dict[str, Any]] = []
    for aspect, mentions, share, mean, mean_nps in stats.iter_rows():
        known = lexicon.aspects.get(aspect)
        rows.append(
            {
                "aspect": aspect,
                "name_zh": known.name_zh if known else aspect,
                "name_en": known.name_en if known else aspect,
                "mentions": mentions,
                "share_negative": share,
                "mean_sentiment": mean,
                "mean_nps": mean_nps,
                "keywords": top_words.get(aspect, []),
                "quotes": _quotes(table.filter(pl.col("aspect") == aspect), quotes),
            }
        )
    return pl.DataFrame(rows, schema=schema)
