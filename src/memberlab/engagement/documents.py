"""The engagement's documents: the filled contract and a supplementary agreement (补充协议),
as DOCX and PDF, in zh-CN or en.

The contract follows the founding contract's structure (service content, term, fee,
payment, breach, disputes, other terms, annexes), with the articles the data supports in
between: the parties' obligations, acceptance and evaluation standards, confidentiality and
personal information. Clause texts are written for MemberLab and kept as templates in
``clauses/contract.<lang>.yaml`` and ``clauses/supplementary.<lang>.yaml``; every figure comes
from the :class:`~memberlab.engagement.definition.EngagementDefinition`: the instalments'
amounts from :func:`~memberlab.engagement.instalments.build_schedule`, each penalty clause
from its basis, rate, period, grace and cap, late payment from the agreed clause or, with
none, the statutory fallback of ``statutory.yaml``. Amounts are exact Decimals written to the
fen; a CNY amount is also written in words: Chinese capital numerals (大写, per the People's
Bank of China rules for filling in amounts) or English words.

Penalty clauses are rendered in the founding contract's order of breaches (late delivery,
results below the standard, late payment, client not cooperating), so that the sample's
``source`` references (合同第七条第1款 ...) point at the right clause.

A supplementary agreement names the original contract, the reason and the effective date,
and lists the changes between two versions of the engagement (:func:`differences`) as
sentences and as a table, with their impact on the fee, the instalments and the dates.

Both documents are built once as a list of blocks (:class:`Document`), which the DOCX
(python-docx) and PDF (reportlab, with its built-in ``STSong-Light`` CJK font) writers lay
out the same way.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import docx
import yaml
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt
from pydantic import BaseModel
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_JUSTIFY, TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import PageBreak as PdfPageBreak
from reportlab.platypus import Paragraph as PdfParagraph
from reportlab.platypus import SimpleDocTemplate, Spacer, TableStyle
from reportlab.platypus import Table as PdfTable

from memberlab.core.errors import FieldError, InvalidInput
from memberlab.core.i18n import normalise_language
from memberlab.core.settings import Language
from memberlab.engagement.definition import (
    Annex,
    Comparison,
    Deliverable,
    EngagementDefinition,
    Parties,
    Side,
    Standard,
)
from memberlab.engagement.instalments import Instalment, Trigger, build_schedule, quantum
from memberlab.engagement.penalties import (
    Basis,
    BreachType,
    Cap,
    LatePaymentTerms,
    PenaltyClause,
    RatePeriod,
    default_rules,
)
from memberlab.programs.schema import LocalText

__all__ = [
    "Change",
    "Document",
    "Grid",
    "InvalidDocument",
    "PageBreak",
    "Para",
    "amount_in_capitals",
    "amount_in_words",
    "chinese_numeral",
    "clause_texts",
    "contract_document",
    "contract_docx",
    "contract_pdf",
    "differences",
    "format_amount",
    "format_date",
    "format_number",
    "supplementary_agreement_docx",
    "supplementary_agreement_pdf",
    "supplementary_document",
    "write_docx",
    "write_pdf",
]


class InvalidDocument(InvalidInput):
    key = "engagement.document.invalid"


# --- numbers, amounts and dates ------------------------------------------------------------

_CAPITAL_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_CAPITAL_PLACES = ("仟", "佰", "拾", "")
_CAPITAL_GROUPS = ("", "万", "亿", "万亿")
_SMALL_DIGITS = "零一二三四五六七八九"
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ("", " thousand", " million", " billion", " trillion")
_CENT = Decimal("0.01")


def _fen(amount: Decimal) -> tuple[int, int, int]:
    """``amount`` as (yuan, jiao, fen); refuses a negative amount or one finer than a fen."""
    value = Decimal(amount)
    if value < 0 or value != value.quantize(_CENT):
        raise ValueError(f"{amount} is not an amount in yuan and fen")
    yuan, cents = divmod(int(value * 100), 100)
    if yuan >= 10**16:
        raise ValueError(f"{amount} is too large to write out")
    jiao, fen = divmod(cents, 10)
    return yuan, jiao, fen


def _capital_integer(number: int) -> str:
    """A whole number in capital numerals: one 零 for each run of zeros between digits, none
    where only the unit of a group (万, 亿) stands between them (壹佰万贰仟零叁)."""
    groups: list[int] = []
    while number:
        number, group = divmod(number, 10000)
        groups.append(group)
    groups.reverse()
    out: list[str] = []
    zeros = False  # zeros since the last digit written
    previous_written = False  # the group before this one had a digit
    for index, group in enumerate(groups):
        if group == 0:
            zeros = zeros or bool(out)
            previous_written = False
            continue
        for place, char in enumerate(f"{group:04d}"):
            digit = int(char)
            if digit == 0:
                zeros = zeros or bool(out)
                continue
            if zeros and not (place == 0 and previous_written):
                out.append("零")
            zeros = False
            out.append(_CAPITAL_DIGITS[digit] + _CAPITAL_PLACES[place])
        out.append(_CAPITAL_GROUPS[len(groups) - 1 - index])
        previous_written = True
    return "".join(out)


def amount_in_capitals(amount: Decimal, *, prefix: str = "人民币") -> str:
    """A CNY amount in Chinese capital numerals (大写): ``480000.00`` -> 人民币肆拾捌万元整.

    整 follows 元 when there are no jiao or fen, and is not written after 角 or 分; a zero
    jiao before fen is written 零 (叁佰贰拾伍元零肆分).
    """
    yuan, jiao, fen = _fen(amount)
    text = f"{_capital_integer(yuan)}元" if yuan else ""
    if not jiao and not fen:
        return f"{prefix}{text or '零元'}整"
    if jiao:
        text += f"{_CAPITAL_DIGITS[jiao]}角"
    elif yuan:
        text += "零"
    if fen:
        text += f"{_CAPITAL_DIGITS[fen]}分"
    return prefix + text


def _words_below_1000(number: int) -> str:
    hundreds, rest = divmod(number, 100)
    parts = [f"{_ONES[hundreds]} hundred"] if hundreds else []
    if rest:
        tens, ones = divmod(rest, 10)
        parts.append(
            _ONES[rest] if rest < 20 else _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
        )
    return " and ".join(parts)


def _words(number: int) -> str:
    if number == 0:
        return "zero"
    groups: list[int] = []
    while number:
        number, group = divmod(number, 1000)
        groups.append(group)
    parts = [
        _words_below_1000(group) + _SCALES[scale]
        for scale, group in reversed(list(enumerate(groups)))
        if group
    ]
    if len(parts) > 1 and 0 < groups[0] < 100:
        return " ".join(parts[:-1]) + " and " + parts[-1]
    return " ".join(parts)


def amount_in_words(amount: Decimal) -> str:
    """A CNY amount in English words: ``1002003.40`` -> one million two thousand and three
    yuan and forty fen."""
    yuan, jiao, fen = _fen(amount)
    cents = jiao * 10 + fen
    if not cents:
        return f"{_words(yuan)} yuan"
    if not yuan:
        return f"{_words(cents)} fen"
    return f"{_words(yuan)} yuan and {_words(cents)} fen"


def chinese_numeral(number: int) -> str:
    """1 to 99 in lower-case Chinese numerals, for article and annex numbers: 10 -> 十."""
    if not 0 < number < 100:
        raise ValueError(f"{number} is outside 1-99")
    tens, ones = divmod(number, 10)
    if not tens:
        return _SMALL_DIGITS[ones]
    return ("" if tens == 1 else _SMALL_DIGITS[tens]) + "十" + (_SMALL_DIGITS[ones] if ones else "")


def format_number(value: Decimal | int) -> str:
    """A rate or count as written, without trailing zeros: 30, 0.05, 12.5."""
    if isinstance(value, int):
        return str(value)
    return format(value.normalize(), "f")


def format_amount(value: Decimal, currency: str = "CNY") -> str:
    """An amount to the currency's minor unit, with thousands separators: 480,000.00."""
    step = quantum(currency)
    exact = Decimal(value).quantize(step, rounding=ROUND_HALF_UP)
    return format(exact, f",.{-step.as_tuple().exponent}f")


def format_date(day: dt.date, lang: Language) -> str:
    """2026年1月5日 in zh-CN, 5 January 2026 in en."""
    if lang == "zh-CN":
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def _strip(text: str) -> str:
    """A text without its closing punctuation, to be placed inside a sentence."""
    return text.strip().rstrip("。.；;，, ")


# --- the document as blocks ------------------------------------------------------------------


@dataclass(frozen=True)
class Para:
    """A paragraph. ``style``: title, subtitle, right, note, heading, subheading, party,
    detail, body or item."""

    text: str
    style: str = "body"


@dataclass(frozen=True)
class Grid:
    """A table; without ``header`` no header row, without ``borders`` no lines."""

    rows: tuple[tuple[str, ...], ...]
    header: tuple[str, ...] = ()
    widths: tuple[float, ...] = ()  # relative column widths
    borders: bool = True


@dataclass(frozen=True)
class PageBreak:
    pass


Block = Para | Grid | PageBreak


@dataclass(frozen=True)
class Document:
    """A document's content, laid out the same way by the DOCX and PDF writers."""

    lang: Language
    title: str
    reference: str  # the contract number, for the footer
    page_label: str  # "第 {page} 页"
    generated_at: dt.datetime
    blocks: tuple[Block, ...]

    def text(self) -> str:
        """All the text, one paragraph or table row a line."""
        lines: list[str] = []
        for block in self.blocks:
            if isinstance(block, Para):
                lines.append(block.text)
            elif isinstance(block, Grid):
                lines.extend(" | ".join(row) for row in (block.header, *block.rows) if row)
        return "\n".join(lines)


@dataclass(frozen=True)
class _Clause:
    text: str
    items: tuple[str, ...] = ()
    punctuate: bool = True  # end the items with ；and the last with 。


Entry = _Clause | Para | Grid


# --- clause texts ----------------------------------------------------------------------------

ARTICLES = (
    "service",
    "term",
    "fee",
    "payment",
    "obligations",
    "standards",
    "breach",
    "confidentiality",
    "disputes",
    "other",
)
ANNEXES = (
    Annex.PROGRAM_DESIGN,
    Annex.SERVICE_SCHEDULE,
    Annex.TRAINING_PLAN,
    Annex.TEAM_INTRODUCTION,
    Annex.NEEDS_QUESTIONNAIRE,
    Annex.EVALUATION_STANDARDS,
    Annex.PROOF_OF_PERFORMANCE,
)
BREACH_ORDER = (
    BreachType.LATE_DELIVERY,
    BreachType.BELOW_STANDARD,
    BreachType.LATE_PAYMENT,
    BreachType.CLIENT_NO_COOPERATION,
)


@lru_cache
def clause_texts(lang: Language) -> dict[str, Any]:
    """The clause templates of ``lang``: ``contract.<lang>.yaml`` and ``supplementary.<lang>
    .yaml`` from the ``clauses`` folder, merged."""
    folder = resources.files("memberlab.engagement").joinpath("clauses")
    merged: dict[str, Any] = {}
    for name in ("contract", "supplementary"):
        data = yaml.safe_load(folder.joinpath(f"{name}.{lang}.yaml").read_text(encoding="utf-8"))
        overlap = merged.keys() & data.keys()
        if overlap:
            raise RuntimeError(f"clause keys {sorted(overlap)} defined twice ({lang})")
        merged.update(data)
    return merged


def _language(lang: str) -> Language:
    language = normalise_language(lang)
    if language is None:
        raise InvalidDocument(
            errors=[FieldError("lang", "engagement.document.language", {"value": lang})]
        )
    return language


def _moment(value: dt.datetime | dt.date | None) -> dt.datetime:
    if value is None:
        return dt.datetime.now().replace(microsecond=0)
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.combine(value, dt.time())


class _Writer:
    """Fills the clause templates of one language; shared by both documents."""

    def __init__(self, lang: Language) -> None:
        self.lang = lang
        self.texts = clause_texts(lang)
        self.refs = self._refs()

    # templates

    def template(self, key: str) -> Any:
        node: Any = self.texts
        for part in key.split("."):
            node = node[part]
        return node

    def t(self, key: str, /, **params: Any) -> str:
        return str(self.template(key)).format(**{**self.refs, **params})

    def plural(self, key: str, count: Decimal | int, /, **params: Any) -> str:
        form = "one" if count == 1 else "other"
        return self.t(f"{key}.{form}", n=format_number(count), **params)

    def number(self, n: int) -> str:
        return chinese_numeral(n) if self.lang == "zh-CN" else str(n)

    def article_label(self, n: int) -> str:
        return str(self.template("labels.article")).format(n=self.number(n))

    def annex_label(self, n: int) -> str:
        return str(self.template("labels.annex")).format(n=self.number(n))

    def annex_name(self, annex: Annex) -> str:
        return str(self.template(f"annexes.names.{annex.value}"))

    def _refs(self) -> dict[str, str]:
        refs = {f"art_{name}": self.article_label(n) for n, name in enumerate(ARTICLES, 1)}
        for n, annex in enumerate(ANNEXES, 1):
            refs[f"annex_{annex.value}"] = str(self.template("labels.annex_ref")).format(
                label=self.annex_label(n), name=self.annex_name(annex)
            )
        return refs

    # values

    def local(self, text: LocalText) -> str:
        return text.get(self.lang)

    def date(self, day: dt.date) -> str:
        return format_date(day, self.lang)

    def percent(self, value: Decimal | int) -> str:
        return self.t("money.percent", value=format_number(value))

    def quantity(self, count: Decimal | int, unit: str) -> str:
        """``count`` with its unit (``units`` in the clause file): 5个工作日, 5 working days."""
        return self.plural(f"units.{unit}", count)

    def join(self, items: Iterable[str]) -> str:
        return self.t("labels.list_separator").join(items)

    def side(self, side: str) -> str:
        return self.t(f"labels.{side}")

    # layout

    def item_paras(self, items: Sequence[str], *, punctuate: bool = True) -> list[Block]:
        out: list[Block] = []
        for n, text in enumerate(items, 1):
            if punctuate:
                text += self.t("labels.last_item_end" if n == len(items) else "labels.item_end")
            out.append(Para(self.t("labels.item", n=n, text=text), "item"))
        return out

    def article(self, n: int, title: str, entries: Iterable[Entry]) -> list[Block]:
        label = self.article_label(n)
        out: list[Block] = [
            Para(self.t("labels.article_heading", label=label, title=title), "heading")
        ]
        clause = 0
        for entry in entries:
            if not isinstance(entry, _Clause):
                out.append(entry)
                continue
            clause += 1
            out.append(Para(self.t("labels.clause", number=f"{n}.{clause}", text=entry.text)))
            out.extend(self.item_paras(entry.items, punctuate=entry.punctuate))
        return out

    def recitals(self, items: Sequence[str], closing: str) -> list[Block]:
        return [Para(self.t("recitals.heading")), *self.item_paras(items), Para(closing)]

    def parties(self, parties: Parties) -> list[Block]:
        out: list[Block] = []
        blank = self.t("labels.blank")
        for side in ("client", "provider"):
            party = getattr(parties, side)
            out.append(Para(self.t(f"labels.{side}_role", name=party.legal_name), "party"))
            for key, value in (
                ("credit_code", party.credit_code),
                ("address", party.address),
                ("contact", party.contact),
                ("phone", None),
                ("signatory", party.signatory),
            ):
                out.append(Para(self.t(f"labels.{key}", value=value or blank), "detail"))
        return out

    def signatures(self, parties: Parties) -> list[Block]:
        client, provider = parties.client, parties.provider
        rows = (
            (
                self.t("signature.client", name=client.legal_name),
                self.t("signature.provider", name=provider.legal_name),
            ),
            (
                self.t("signature.representative", name=client.signatory),
                self.t("signature.representative", name=provider.signatory),
            ),
            (self.t("signature.sign"), self.t("signature.sign")),
            (self.t("signature.date"), self.t("signature.date")),
        )
        return [Grid(rows=rows, borders=False)]

    def grid(
        self, header: Sequence[str], rows: Iterable[Sequence[str]], widths: Sequence[float]
    ) -> Grid:
        """A table with a first column numbering the rows."""
        return Grid(
            header=(self.t("labels.row_number"), *header),
            rows=tuple((str(n), *row) for n, row in enumerate(rows, 1)),
            widths=tuple(widths),
        )


# --- the contract ----------------------------------------------------------------------------


class _ContractWriter(_Writer):
    def __init__(self, spec: EngagementDefinition, lang: Language) -> None:
        super().__init__(lang)
        self.spec = spec
        self.schedule = build_schedule(spec.payment)
        self.currency = spec.payment.currency
        self.dash = self.t("labels.dash")

    # values in this contract's currency

    def round(self, value: Decimal) -> Decimal:
        return value.quantize(quantum(self.currency), rounding=ROUND_HALF_UP)

    def money(self, amount: Decimal) -> str:
        text = format_amount(amount, self.currency)
        if self.currency == "CNY":
            return self.t("money.cny", amount=text)
        return self.t("money.other", currency=self.currency, amount=text)

    def capital(self, amount: Decimal) -> str:
        """The amount in words (大写 in zh-CN), for CNY only."""
        if self.currency != "CNY":
            return ""
        words = amount_in_capitals(amount) if self.lang == "zh-CN" else amount_in_words(amount)
        return self.t("money.capital", words=words)

    def milestone_name(self, code: str | None) -> str:
        milestone = self.spec.milestone(code or "")
        return self.local(milestone.name) if milestone else (code or self.dash)

    def kpi(self, code: str) -> str:
        return str(self.texts["kpis"].get(code, code))

    def source(self, name: str) -> str:
        return str(self.texts["sources"].get(name, name))

    def kpi_value(self, value: Decimal | None, unit: str) -> str:
        if value is None:
            return self.dash
        templates = self.texts["kpi_units"]
        return str(templates.get(unit, templates["other"])).format(
            value=format_number(value), unit=unit
        )

    def rounds(self, count: int) -> str:
        return self.plural("standards.rounds", count) if count else self.t("standards.no_rounds")

    # the document

    def build(self, version: int, generated_at: dt.datetime) -> Document:
        spec = self.spec
        title = self.local(spec.title)
        blocks: list[Block] = [Para(title, "title")]
        kind = self.texts["contract_types"].get(spec.contract_type)
        if kind:
            blocks.append(Para(str(kind), "subtitle"))
        blocks.append(Para(self.t("labels.number", number=spec.contract_number), "right"))
        blocks.append(
            Para(self.t("labels.version", version=version, date=self.date(generated_at)), "note")
        )
        blocks.extend(self.parties(spec.parties))
        items = [str(item).format(title=title) for item in self.texts["recitals"]["items"]]
        blocks.extend(self.recitals(items, self.t("recitals.closing")))
        builders: dict[str, Callable[[], list[Entry]]] = {
            "service": self._service,
            "term": self._term,
            "fee": self._fee,
            "payment": self._payment,
            "obligations": self._obligations,
            "standards": self._standards,
            "breach": self._breach,
            "confidentiality": self._confidentiality,
            "disputes": self._disputes,
            "other": self._other,
        }
        for n, name in enumerate(ARTICLES, 1):
            blocks.extend(self.article(n, self.t(f"{name}.title"), builders[name]()))
        blocks.extend(self.signatures(spec.parties))
        blocks.append(PageBreak())
        blocks.extend(self._annexes())
        return Document(
            lang=self.lang,
            title=title,
            reference=spec.contract_number,
            page_label=self.t("labels.page", page="{page}"),
            generated_at=generated_at,
            blocks=tuple(blocks),
        )

    # articles

    def _service(self) -> list[Entry]:
        spec = self.spec
        entries = [
            _Clause(self.t("service.scope", content=_strip(self.local(spec.service_content))))
        ]
        if spec.milestones:
            provided = [d for d in spec.deliverables if d.by is Side.PROVIDER]
            entries.append(
                _Clause(
                    self.t(
                        "service.schedule",
                        milestones=self.quantity(len(spec.milestones), "milestones"),
                        deliverables=self.quantity(len(provided), "deliverables"),
                    )
                )
            )
        if spec.training:
            hours = sum((s.hours for s in spec.training), Decimal(0))
            entries.append(
                _Clause(
                    self.t(
                        "service.training",
                        sessions=self.quantity(len(spec.training), "sessions"),
                        hours=self.quantity(hours, "hours"),
                    )
                )
            )
        if spec.team:
            entries.append(_Clause(self.t("service.team")))
        entries.append(_Clause(self.t("service.changes")))
        return entries

    def _term(self) -> list[Entry]:
        term = self.spec.term
        entries = [
            _Clause(self.t("term.period", start=self.date(term.start), end=self.date(term.end)))
        ]
        if self.spec.milestones:
            entries.append(_Clause(self.t("term.milestones")))
        entries.append(_Clause(self.t("term.extension")))
        return entries

    def _fee(self) -> list[Entry]:
        schedule = self.schedule
        rate = self.percent(schedule.tax_rate)
        if schedule.tax_included:
            tax = self.t("fee.tax_included", rate=rate, tax=self.money(schedule.total_tax))
        else:
            tax = self.t(
                "fee.tax_excluded",
                rate=rate,
                tax=self.money(schedule.total_tax),
                total=self.money(schedule.total_payable),
            )
        total = self.t(
            "fee.total", money=self.money(schedule.fee), capital=self.capital(schedule.fee), tax=tax
        )
        return [_Clause(total), _Clause(self.t("fee.scope")), _Clause(self.t("fee.invoice"))]

    def instalment_body(self, instalment: Instalment) -> str:
        """An instalment's amount and when it is due, as the payment article writes it."""
        tax = ""
        if not self.schedule.tax_included:
            tax = self.t(
                "payment.tax_extra",
                tax=self.money(instalment.tax),
                payable=self.money(instalment.payable),
            )
        common = {
            "money": self.money(instalment.amount),
            "capital": self.capital(instalment.amount),
            "tax": tax,
            "due": self._due(instalment),
        }
        if instalment.portion is not None:
            return self.t(
                "payment.body_portion", portion=self.percent(instalment.portion), **common
            )
        return self.t("payment.body_amount", **common)

    def _due(self, instalment: Instalment) -> str:
        trigger = instalment.trigger
        if trigger is Trigger.MILESTONE_ACCEPTED:
            what = self.t(
                "payment.triggers.milestone_accepted",
                milestone=self.milestone_name(instalment.milestone),
            )
        elif trigger is Trigger.DATE:
            assert instalment.trigger_date is not None  # checked by build_schedule
            what = self.t("payment.triggers.date", date=self.date(instalment.trigger_date))
        else:
            what = self.t(f"payment.triggers.{trigger.value}")
        if instalment.offset:
            period = self.quantity(instalment.offset, instalment.offset_unit.value)
            return self.t("payment.due_within", trigger=what, period=period)
        key = "payment.due_on_date" if trigger is Trigger.DATE else "payment.due_same_day"
        return self.t(key, trigger=what)

    def _payment(self) -> list[Entry]:
        lines = tuple(
            self.t("payment.instalment", n=n, body=self.instalment_body(instalment))
            for n, instalment in enumerate(self.schedule.instalments, 1)
        )
        account = (
            self.t("payment.account_name", name=self.spec.parties.provider.legal_name),
            self.t("payment.bank", blank=self.t("labels.blank")),
            self.t("payment.account_number", blank=self.t("labels.blank")),
        )
        return [
            _Clause(self.plural("payment.intro", len(lines)), lines),
            _Clause(self.t("payment.working_days")),
            _Clause(self.t("payment.account"), account, punctuate=False),
            _Clause(self.t("payment.account_change")),
        ]

    def _obligations(self) -> list[Entry]:
        spec = self.spec
        client = [self.t("obligations.client_data")]
        materials = [d for d in spec.deliverables if d.by is Side.CLIENT]
        if materials:
            listed = self.join(
                self.t("obligations.material", name=self.local(d.name), date=self.date(d.due))
                for d in materials
            )
            client.append(self.t("obligations.client_materials", items=listed))
        contact = spec.parties.client.contact
        client.append(
            self.t("obligations.client_contact", contact=contact)
            if contact
            else self.t("obligations.client_contact_unnamed")
        )
        delivered = [d for d in spec.deliverables if d.by is Side.PROVIDER]
        if delivered:
            windows = {(d.acceptance_days, d.acceptance_unit) for d in delivered}
            if len(windows) == 1:
                days, unit = windows.pop()
                window = self.t("obligations.window_uniform", period=self.quantity(days, unit))
            else:
                window = self.t("obligations.window_annex")
            client.append(self.t("obligations.client_acceptance", window=window))
            deemed = [d for d in delivered if d.deemed_acceptance]
            if len(deemed) == len(delivered):
                client.append(self.t("obligations.deemed_all"))
            elif deemed:
                names = self.join(self.local(d.name) for d in deemed)
                client.append(self.t("obligations.deemed_some", items=names))
            else:
                client.append(self.t("obligations.deemed_none"))
        client.append(self.t("obligations.client_payment"))

        provider = [self.t("obligations.provider_deliver"), self.t("obligations.provider_rework")]
        if spec.team:
            provider.append(self.t("obligations.provider_team"))
        provider.append(self.t("obligations.provider_confidentiality"))
        if any(d.annex is Annex.PROOF_OF_PERFORMANCE for d in spec.deliverables):
            provider.append(self.t("obligations.provider_proof"))
        return [
            _Clause(self.t("obligations.client"), tuple(client)),
            _Clause(self.t("obligations.provider"), tuple(provider)),
        ]

    def standard_line(self, standard: Standard) -> str:
        baseline = ""
        if standard.baseline is not None:
            baseline = self.t(
                "standards.baseline", value=self.kpi_value(standard.baseline, standard.unit)
            )
        return self.t(
            "standards.item",
            name=self.local(standard.name),
            weight=self.percent(standard.weight),
            definition=_strip(self.local(standard.definition)),
            baseline=baseline,
            comparison=self.t(f"standards.comparison.{standard.comparison.value}"),
            target=self.kpi_value(standard.target, standard.unit),
            method=_strip(self.local(standard.method)),
            source=self.source(standard.source),
            start=self.date(standard.period_start),
            end=self.date(standard.period_end),
            rounds=self.rounds(standard.max_rounds),
        )

    def _standards(self) -> list[Entry]:
        if not self.spec.standards:
            return [_Clause(self.t("standards.none"))]
        lines = tuple(self.standard_line(s) for s in self.spec.standards)
        return [
            _Clause(self.t("standards.intro"), lines),
            _Clause(self.t("standards.improvement")),
            _Clause(self.t("standards.data")),
        ]

    def _per_myriad(self, rate: Decimal) -> str | None:
        """0.05 % as 万分之五 (5 basis points), for rates of 0.01 % to 0.09 %."""
        myriads = rate * 100
        if myriads != myriads.to_integral_value() or not 1 <= myriads <= 9:
            return None
        return self.t("breach.per_myriad", n=self.number(int(myriads)))

    def _note(self, hint: str | None, money: str | None) -> str:
        if hint and money:
            return self.t("breach.note_both", hint=hint, money=money)
        if hint:
            return self.t("breach.note_hint", hint=hint)
        if money:
            return self.t("breach.note_money", money=money)
        return ""

    def _cap(self, cap: Cap | None) -> str:
        if cap is None:
            return ""
        fee = self.spec.payment.fee
        if cap.fee_percent is not None:
            fee_money = self.money(self.round(fee * cap.fee_percent / 100))
            percent = self.percent(cap.fee_percent)
            if cap.amount is not None:
                return self.t(
                    "breach.cap_both",
                    money=self.money(cap.amount),
                    percent=percent,
                    fee_money=fee_money,
                )
            return self.t("breach.cap_fee_percent", percent=percent, money=fee_money)
        if cap.amount is not None:
            return self.t("breach.cap_amount", money=self.money(cap.amount))
        return ""

    def penalty_text(self, clause: PenaltyClause) -> str:
        """One penalty clause from its data: who pays whom, basis and rate, once or per day,
        grace period and cap."""
        kind = clause.breach_type
        provider_pays = kind in (BreachType.LATE_DELIVERY, BreachType.BELOW_STANDARD)
        payer, payee = ("provider", "client") if provider_pays else ("client", "provider")
        parties = {"payer": self.side(payer), "payee": self.side(payee)}
        period = clause.period
        if clause.basis is Basis.FIXED_AMOUNT and period is RatePeriod.PER_ANNUM:
            period = RatePeriod.PER_CALENDAR_DAY  # as penalties.compute charges it: per day
        if period is RatePeriod.PER_ANNUM:
            charge = self.t(
                "breach.charge.per_annum",
                base=self.t(f"breach.base.{clause.basis.value}"),
                rate=self.percent(clause.rate),
                day_count=clause.day_count,
                **parties,
            )
        else:
            if clause.basis is Basis.FIXED_AMOUNT:
                basis = self.t("breach.basis.fixed_amount", money=self.money(clause.rate))
            else:
                money = None
                if clause.basis is Basis.CONTRACT_FEE_PERCENT:
                    money = self.money(self.round(self.spec.payment.fee * clause.rate / 100))
                basis = self.t(
                    f"breach.basis.{clause.basis.value}",
                    rate=self.percent(clause.rate),
                    note=self._note(self._per_myriad(clause.rate), money),
                )
            charge = self.t(f"breach.charge.{period.value}", basis=basis, **parties)
        grace = ""
        if clause.grace_days:
            unit = "working_days" if period is RatePeriod.PER_WORKING_DAY else "calendar_days"
            grace = self.t("breach.grace", period=self.quantity(clause.grace_days, unit))
        return self.t(
            "breach.clause",
            breach=self.t(f"breach.types.{kind.value}"),
            charge=charge,
            grace=grace,
            cap=self._cap(clause.cap),
        )

    def late_payment_text(self, terms: LatePaymentTerms) -> str:
        """The agreed late-payment clause, or the statutory fallback's wording."""
        sme = terms.provider_is_sme and terms.payer_is_public_or_large
        if terms.agreed is not None:
            agreed = terms.agreed.model_copy(update={"breach_type": BreachType.LATE_PAYMENT})
            text = self.penalty_text(agreed)
            return text + self.t("breach.sme_floor") if sme else text
        rules = default_rules().late_payment
        if sme:
            rate = rules.sme.default_daily_rate
            note = self._note(self._per_myriad(rate), None)
            return self.t("breach.late_sme", rate=self.percent(rate), note=note)
        factor = terms.lpr_factor or rules.lpr_fallback.factor_default
        return self.t("breach.late_lpr", factor=format_number(factor))

    def _breach(self) -> list[Entry]:
        entries: list[Entry] = []
        for kind in BREACH_ORDER:
            entries.extend(
                _Clause(self.penalty_text(c)) for c in self.spec.penalties if c.breach_type is kind
            )
            if kind is BreachType.LATE_PAYMENT:
                entries.append(_Clause(self.late_payment_text(self.spec.late_payment)))
        entries.append(_Clause(self.t("breach.general")))
        return entries

    def _confidentiality(self) -> list[Entry]:
        keys = ("secrets", "roles", "security", "incident", "return")
        return [_Clause(self.t(f"confidentiality.{key}")) for key in keys]

    def _disputes(self) -> list[Entry]:
        return [
            _Clause(self.t("disputes.law", law=self.local(self.spec.governing_law))),
            _Clause(self.t("disputes.forum", forum=self.local(self.spec.forum))),
            _Clause(self.t("disputes.continue")),
        ]

    def _other(self) -> list[Entry]:
        annexes = self.join(self.refs[f"annex_{a.value}"] for a in ANNEXES)
        keys = ("counterparts", "effect", "amendment", "notices", "force_majeure", "language")
        return [
            *(_Clause(self.t(f"other.{key}")) for key in keys),
            _Clause(self.t("other.annexes", annexes=annexes)),
        ]

    # annexes

    def _deliverables(self, deliverables: Sequence[Deliverable]) -> Block:
        if not deliverables:
            return Para(self.t("annexes.empty"))
        rows = []
        for d in deliverables:
            provided = d.by is Side.PROVIDER
            rows.append(
                (
                    self.local(d.name),
                    self.t(f"labels.{d.by.value}_short"),
                    self.milestone_name(d.milestone) if d.milestone else self.dash,
                    self.date(d.due),
                    self.quantity(d.acceptance_days, d.acceptance_unit) if provided else self.dash,
                    self.t("labels.yes" if d.deemed_acceptance else "labels.no")
                    if provided
                    else self.dash,
                    self.money(d.value) if d.value is not None else self.dash,
                )
            )
        return self.grid(
            self.template("annexes.columns.deliverables"), rows, (9, 29, 11, 22, 22, 20, 14, 26)
        )

    def _annex_content(self, annex: Annex) -> list[Block]:
        spec = self.spec
        of_annex = [d for d in spec.deliverables if d.annex is annex]
        if annex is Annex.SERVICE_SCHEDULE:
            milestones: Block = Para(self.t("annexes.empty"))
            if spec.milestones:
                milestones = self.grid(
                    self.template("annexes.columns.milestones"),
                    (
                        (
                            self.local(m.name),
                            self.date(m.planned),
                            self.join(self.milestone_name(c) for c in m.depends_on) or self.dash,
                        )
                        for m in spec.milestones
                    ),
                    (6, 40, 24, 30),
                )
            return [
                Para(self.t("annexes.service_schedule_milestones"), "subheading"),
                milestones,
                Para(self.t("annexes.service_schedule_deliverables"), "subheading"),
                self._deliverables(spec.deliverables),
            ]
        if annex is Annex.TRAINING_PLAN:
            if not spec.training:
                return [Para(self.t("annexes.empty"))]
            rows = (
                (
                    self.local(s.title),
                    self.date(s.planned),
                    s.trainer,
                    s.audience or self.dash,
                    format_number(s.hours),
                )
                for s in spec.training
            )
            grid = self.grid(
                self.template("annexes.columns.training"), rows, (6, 34, 18, 14, 20, 8)
            )
            return [Para(self.t("annexes.training_plan")), grid]
        if annex is Annex.TEAM_INTRODUCTION:
            if not spec.team:
                return [Para(self.t("annexes.empty"))]
            rows = (
                (
                    m.name,
                    self.local(m.role),
                    m.qualification or self.dash,
                    self.percent(m.allocation_percent),
                )
                for m in spec.team
            )
            grid = self.grid(self.template("annexes.columns.team"), rows, (6, 18, 26, 34, 16))
            return [Para(self.t("annexes.team_introduction")), grid]
        if annex is Annex.EVALUATION_STANDARDS:
            if not spec.standards:
                return [Para(self.t("standards.none"))]
            out: list[Block] = [Para(self.t("annexes.evaluation_standards"))]
            for n, s in enumerate(spec.standards, 1):
                heading = self.t("annexes.standard_heading", n=n, name=self.local(s.name))
                out.append(Para(heading, "subheading"))
                out.append(Grid(rows=self._standard_rows(s), widths=(25, 75)))
            return out
        return [Para(self.t(f"annexes.{annex.value}")), self._deliverables(of_annex)]

    def _standard_rows(self, s: Standard) -> tuple[tuple[str, str], ...]:
        label = self.texts["annexes"]["standard_rows"]
        target = self.t(
            "annexes.target",
            comparison=self.t(f"standards.comparison.{s.comparison.value}"),
            target=self.kpi_value(s.target, s.unit),
        )
        period = self.t(
            "annexes.period", start=self.date(s.period_start), end=self.date(s.period_end)
        )
        return (
            (label["kpi"], self.kpi(s.kpi)),
            (label["definition"], self.local(s.definition)),
            (label["baseline"], self.kpi_value(s.baseline, s.unit)),
            (label["target"], target),
            (label["method"], self.local(s.method)),
            (label["source"], self.source(s.source)),
            (label["period"], period),
            (label["weight"], self.percent(s.weight)),
            (label["rounds"], str(s.max_rounds) if s.max_rounds else self.t("standards.no_rounds")),
        )

    def _annexes(self) -> list[Block]:
        out: list[Block] = [Para(self.t("annexes.title"), "title")]
        for n, annex in enumerate(ANNEXES, 1):
            label, name = self.annex_label(n), self.annex_name(annex)
            out.append(Para(self.t("labels.annex_list_item", label=label, name=name)))
        for n, annex in enumerate(ANNEXES, 1):
            label, name = self.annex_label(n), self.annex_name(annex)
            out.append(Para(self.t("labels.annex_heading", label=label, name=name), "heading"))
            out.extend(self._annex_content(annex))
        return out


def contract_document(
    spec: EngagementDefinition,
    lang: Language | str,
    *,
    version: int = 1,
    generated_at: dt.datetime | dt.date | None = None,
) -> Document:
    """The filled contract's content in ``lang`` (zh-CN or en)."""
    writer = _ContractWriter(spec, _language(lang))
    return writer.build(version, _moment(generated_at))


def contract_docx(
    spec: EngagementDefinition,
    lang: Language | str,
    out_path: str | Path,
    *,
    version: int = 1,
    generated_at: dt.datetime | dt.date | None = None,
) -> Path:
    """Write the filled contract as a Word document; returns its path."""
    document = contract_document(spec, lang, version=version, generated_at=generated_at)
    return write_docx(document, out_path)


def contract_pdf(
    spec: EngagementDefinition,
    lang: Language | str,
    out_path: str | Path,
    *,
    version: int = 1,
    generated_at: dt.datetime | dt.date | None = None,
) -> Path:
    """Write the filled contract as a PDF; returns its path."""
    document = contract_document(spec, lang, version=version, generated_at=generated_at)
    return write_pdf(document, out_path)


# --- the differences between two versions ----------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One difference between two versions of an engagement.

    ``area`` is contract, party, term, payment, late_payment, instalment, penalty, milestone,
    deliverable, standard, training or team; ``key`` names the item (its code, the party's
    side, a team member's name; empty for the contract, term, payment and late payment).
    ``field`` is the changed field; empty when the item was added (``before`` is None),
    removed (``after`` is None) or replaced as a whole (instalments, penalty clauses, the
    agreed late-payment clause).
    """

    area: str
    key: str
    field: str
    before: Any
    after: Any


def _compare_fields(
    out: list[Change], area: str, key: str, before: BaseModel, after: BaseModel, skip: Iterable[str]
) -> None:
    skipped = set(skip)
    for name in type(before).model_fields:
        if name in skipped:
            continue
        old, new = getattr(before, name), getattr(after, name)
        if old != new:
            out.append(Change(area, key, name, old, new))


def _compare_items(
    out: list[Change],
    area: str,
    before: Mapping[str, BaseModel],
    after: Mapping[str, BaseModel],
    *,
    whole: bool = False,
    skip: Iterable[str] = ("code",),
) -> None:
    for key, item in after.items():
        if key not in before:
            out.append(Change(area, key, "", None, item))
        elif whole:
            if before[key] != item:
                out.append(Change(area, key, "", before[key], item))
        else:
            _compare_fields(out, area, key, before[key], item, skip)
    out.extend(
        Change(area, key, "", item, None) for key, item in before.items() if key not in after
    )


def _penalties(spec: EngagementDefinition) -> dict[str, PenaltyClause]:
    """Penalty clauses by code, or by breach type when they have none."""
    keyed: dict[str, PenaltyClause] = {}
    for clause in spec.penalties:
        key = clause.code or clause.breach_type.value
        n = 2
        while key in keyed:
            key = f"{clause.code or clause.breach_type.value}#{n}"
            n += 1
        keyed[key] = clause
    return keyed


def differences(before: EngagementDefinition, after: EngagementDefinition) -> list[Change]:
    """What changes from ``before`` to ``after``, item by item and field by field.

    Instalments, penalty clauses and the late-payment clause change as a whole (their wording
    depends on several fields). A milestone's ``baseline`` (the plan as first agreed) is
    bookkeeping, not a term, and is not compared.
    """
    out: list[Change] = []
    for name in ("title", "contract_type", "service_content", "governing_law", "forum"):
        old, new = getattr(before, name), getattr(after, name)
        if old != new:
            out.append(Change("contract", "", name, old, new))
    for side in ("client", "provider"):
        _compare_fields(
            out, "party", side, getattr(before.parties, side), getattr(after.parties, side), ()
        )
    _compare_fields(out, "term", "", before.term, after.term, ())
    _compare_fields(out, "payment", "", before.payment, after.payment, ("instalments",))
    _compare_items(
        out,
        "instalment",
        {i.code: i for i in before.payment.instalments},
        {i.code: i for i in after.payment.instalments},
        whole=True,
    )
    _compare_items(out, "penalty", _penalties(before), _penalties(after), whole=True)
    worded = ("agreed", "lpr_factor", "provider_is_sme", "payer_is_public_or_large")
    old_terms, new_terms = before.late_payment, after.late_payment
    if any(getattr(old_terms, name) != getattr(new_terms, name) for name in worded):
        out.append(Change("late_payment", "", "", old_terms, new_terms))
    _compare_fields(out, "late_payment", "", old_terms, new_terms, worded)
    for area, attribute in (
        ("milestone", "milestones"),
        ("deliverable", "deliverables"),
        ("standard", "standards"),
        ("training", "training"),
    ):
        _compare_items(
            out,
            area,
            {i.code: i for i in getattr(before, attribute)},
            {i.code: i for i in getattr(after, attribute)},
            skip=("code", "baseline"),
        )
    _compare_items(
        out,
        "team",
        {m.name: m for m in before.team},
        {m.name: m for m in after.team},
        skip=("name",),
    )
    return out


# --- the supplementary agreement -------------------------------------------------------------


class _SupplementaryWriter(_Writer):
    def __init__(
        self, before: EngagementDefinition, after: EngagementDefinition, lang: Language
    ) -> None:
        super().__init__(lang)
        self.old = _ContractWriter(before, lang)
        self.new = _ContractWriter(after, lang)
        self.dash = self.t("labels.dash")
        found = differences(before, after)
        # a text changed in the other language only reads "from X to X" here: leave it out
        shown = [c for c in found if not self._same_here(c)]
        self.changes = shown or found

    def _same_here(self, change: Change) -> bool:
        before, after = change.before, change.after
        both = isinstance(before, LocalText) and isinstance(after, LocalText)
        return both and self.local(before) == self.local(after)

    def _item(self, area: str, key: str) -> Any:
        for writer in (self.new, self.old):
            spec = writer.spec
            found: Any = None
            if area == "milestone":
                found = spec.milestone(key)
            elif area == "deliverable":
                found = spec.deliverable(key)
            elif area == "standard":
                found = spec.standard(key)
            elif area == "training":
                found = next((s for s in spec.training if s.code == key), None)
            elif area == "penalty":
                found = _penalties(spec).get(key)
            if found is not None:
                return found
        return None

    def what(self, change: Change) -> str:
        area, key = change.area, change.key
        if area == "party":
            return self.t("supplementary.what.party", side=self.side(key))
        if area == "instalment":
            for writer in (self.new, self.old):
                codes = [i.code for i in writer.spec.payment.instalments]
                if key in codes:
                    return self.t("supplementary.what.instalment", n=codes.index(key) + 1)
        if area == "penalty":
            clause = self._item(area, key)
            name = self.t(f"breach.names.{clause.breach_type.value}")
            return self.t("supplementary.what.penalty", name=name)
        if area == "team":
            return self.t("supplementary.what.team", name=key)
        if area in ("milestone", "deliverable", "standard"):
            return self.t(f"supplementary.what.{area}", name=self.local(self._item(area, key).name))
        if area == "training":
            return self.t(
                "supplementary.what.training", name=self.local(self._item(area, key).title)
            )
        return self.t(f"supplementary.what.{area}")

    def describe(self, area: str, item: Any, writer: _ContractWriter) -> str:
        """An added, removed or replaced item, as the version it belongs to states it."""
        if area == "milestone":
            return self.t("supplementary.describe.milestone", date=self.date(item.planned))
        if area == "deliverable":
            text = self.t("supplementary.describe.deliverable", date=self.date(item.due))
            if item.value is not None:
                text += self.t("supplementary.describe.value", money=writer.money(item.value))
            return text
        if area == "standard":
            return self.t(
                "supplementary.describe.standard",
                comparison=self.t(f"standards.comparison.{item.comparison.value}"),
                target=writer.kpi_value(item.target, item.unit),
                weight=self.percent(item.weight),
            )
        if area == "training":
            return self.t(
                "supplementary.describe.training",
                date=self.date(item.planned),
                hours=self.quantity(item.hours, "hours"),
            )
        if area == "team":
            return self.t(
                "supplementary.describe.team",
                role=self.local(item.role),
                allocation=self.percent(item.allocation_percent),
            )
        if area == "instalment":
            return _strip(writer.instalment_body(writer.schedule.instalment(item.code)))
        if area == "penalty":
            return _strip(writer.penalty_text(item))
        if area == "late_payment":
            return _strip(writer.late_payment_text(item))
        return str(item)

    def value(self, change: Change, value: Any, writer: _ContractWriter) -> str:
        """A changed field's value, as the version it belongs to writes it."""
        area, field = change.area, change.field
        if value is None:
            return self.t("labels.none")
        if isinstance(value, bool):
            return self.t("labels.yes" if value else "labels.no")
        if isinstance(value, dt.date):
            return self.date(value)
        if isinstance(value, LocalText):
            return self.local(value)
        if isinstance(value, Annex):
            return self.annex_name(value)
        if isinstance(value, Side):
            return self.side(value.value)
        if isinstance(value, Comparison):
            return self.t(f"standards.comparison.{value.value}")
        if isinstance(value, Enum):
            return str(value.value)
        if isinstance(value, list):
            names = [writer.milestone_name(v) if field == "depends_on" else str(v) for v in value]
            return self.join(names) or self.t("labels.none")
        if field in ("fee", "value"):
            return writer.money(value)
        if field in ("tax_rate", "weight", "allocation_percent"):
            return self.percent(value)
        if area == "standard" and field in ("target", "baseline"):
            standard = writer.spec.standard(change.key)
            return writer.kpi_value(value, standard.unit if standard else "")
        if area == "deliverable" and field in ("acceptance_days", "acceptance_unit"):
            deliverable = writer.spec.deliverable(change.key)
            if deliverable is not None:
                return self.quantity(deliverable.acceptance_days, deliverable.acceptance_unit)
        if field == "milestone":
            return writer.milestone_name(value)
        if field == "kpi":
            return writer.kpi(value)
        if field == "source":
            return writer.source(value)
        if isinstance(value, Decimal | int):
            return format_number(value)
        return str(value)

    def shift(self, before: dt.date, after: dt.date) -> str:
        days = (after - before).days
        key = "supplementary.later" if days > 0 else "supplementary.earlier"
        return self.plural(key, abs(days))

    def sentence(self, change: Change) -> str:
        what = self.what(change)
        if not change.field:
            if change.before is None:
                after = self.describe(change.area, change.after, self.new)
                return self.t("supplementary.change.added", what=what, after=after)
            if change.after is None:
                before = self.describe(change.area, change.before, self.old)
                return self.t("supplementary.change.removed", what=what, before=before)
            return self.t(
                "supplementary.change.replaced",
                what=what,
                before=self.describe(change.area, change.before, self.old),
                after=self.describe(change.area, change.after, self.new),
            )
        if (change.area, change.field) == ("payment", "fee"):
            return self.t(
                "supplementary.change.fee",
                before=self.old.money(change.before),
                after=self.new.money(change.after),
                capital=self.new.capital(change.after),
            )
        params = {
            "what": what,
            "field": self.t(f"supplementary.fields.{change.area}.{change.field}"),
            "before": self.value(change, change.before, self.old),
            "after": self.value(change, change.after, self.new),
        }
        if isinstance(change.before, dt.date) and isinstance(change.after, dt.date):
            return self.t(
                "supplementary.change.moved",
                shift=self.shift(change.before, change.after),
                **params,
            )
        return self.t("supplementary.change.field", **params)

    def row(self, change: Change) -> tuple[str, str, str]:
        what = self.what(change)
        if not change.field:
            return (
                what,
                self.describe(change.area, change.before, self.old)
                if change.before is not None
                else self.dash,
                self.describe(change.area, change.after, self.new)
                if change.after is not None
                else self.dash,
            )
        field = self.t(f"supplementary.fields.{change.area}.{change.field}")
        return (
            self.t("supplementary.item_field", what=what, field=field),
            self.value(change, change.before, self.old),
            self.value(change, change.after, self.new),
        )

    def _impact(self) -> list[Entry]:
        old, new = self.old, self.new
        fee_before, fee_after = old.spec.payment.fee, new.spec.payment.fee
        entries: list[Entry] = []
        if fee_before != fee_after or old.currency != new.currency:
            delta = fee_after - fee_before
            direction = "increase" if delta >= 0 else "decrease"
            entries.append(
                _Clause(
                    self.t(
                        "supplementary.impact.fee_changed",
                        before=old.money(fee_before),
                        after=new.money(fee_after),
                        capital=new.capital(fee_after),
                        delta=self.t(
                            f"supplementary.impact.{direction}", money=new.money(abs(delta))
                        ),
                    )
                )
            )
        else:
            money = new.money(fee_after)
            entries.append(_Clause(self.t("supplementary.impact.fee_unchanged", money=money)))
        previous = {i.code: i for i in old.schedule.instalments}
        rows: list[tuple[str, str, str, str]] = []
        for n, instalment in enumerate(new.schedule.instalments, 1):
            earlier = previous.get(instalment.code)
            rows.append(
                (
                    self.t("supplementary.impact.instalment_label", n=n),
                    _strip(new.instalment_body(instalment)),
                    old.money(earlier.amount) if earlier else self.dash,
                    new.money(instalment.amount),
                )
            )
        codes = {i.code for i in new.schedule.instalments}
        for n, instalment in enumerate(old.schedule.instalments, 1):
            if instalment.code not in codes:
                rows.append(
                    (
                        self.t("supplementary.impact.instalment_label", n=n),
                        _strip(old.instalment_body(instalment)),
                        old.money(instalment.amount),
                        self.t("supplementary.impact.removed"),
                    )
                )
        entries.append(_Clause(self.t("supplementary.impact.instalments")))
        entries.append(
            Grid(
                header=tuple(self.template("supplementary.impact.instalment_columns")),
                rows=tuple(rows),
                widths=(14, 50, 18, 18),
            )
        )
        moved = [
            c
            for c in self.changes
            if isinstance(c.before, dt.date) and isinstance(c.after, dt.date)
        ]
        if moved:
            entries.append(_Clause(self.t("supplementary.impact.dates")))
            entries.append(
                Grid(
                    header=tuple(self.template("supplementary.impact.date_columns")),
                    rows=tuple(
                        (
                            self.row(c)[0],
                            self.date(c.before),
                            self.date(c.after),
                            self.shift(c.before, c.after),
                        )
                        for c in moved
                    ),
                    widths=(40, 20, 20, 20),
                )
            )
        else:
            entries.append(_Clause(self.t("supplementary.impact.dates_unchanged")))
        return entries

    def build(
        self, change_code: str, reason: str, effective_on: dt.date, generated_at: dt.datetime
    ) -> Document:
        before, after = self.old.spec, self.new.spec
        original_title = self.local(before.title)
        title = self.t("supplementary.title", title=original_title)
        blocks: list[Block] = [
            Para(title, "title"),
            Para(self.t("supplementary.code", code=change_code), "right"),
            Para(self.t("supplementary.original", number=after.contract_number), "right"),
        ]
        blocks.extend(self.parties(after.parties))
        recitals = [
            self.t(
                "supplementary.recitals.contract",
                title=original_title,
                number=before.contract_number,
            ),
            self.t("supplementary.recitals.reason", reason=_strip(reason)),
        ]
        closing = self.t("supplementary.recitals.closing", article=self.refs["art_other"])
        blocks.extend(self.recitals(recitals, closing))
        changes: list[Entry] = [
            _Clause(
                self.t("supplementary.changes.intro"),
                tuple(self.sentence(c) for c in self.changes),
            ),
            Para(self.t("supplementary.changes.table"), "subheading"),
            self.grid(
                self.template("supplementary.changes.columns"),
                (self.row(c) for c in self.changes),
                (6, 30, 32, 32),
            ),
        ]
        effect: list[Entry] = [
            _Clause(self.t("supplementary.effect.effective", date=self.date(effective_on))),
            _Clause(self.t("supplementary.effect.relation")),
            _Clause(self.t("supplementary.effect.counterparts")),
        ]
        for n, (key, entries) in enumerate(
            (("changes", changes), ("impact", self._impact()), ("effect", effect)), 1
        ):
            blocks.extend(self.article(n, self.t(f"supplementary.{key}.title"), entries))
        blocks.extend(self.signatures(after.parties))
        return Document(
            lang=self.lang,
            title=title,
            reference=f"{after.contract_number} / {change_code}",
            page_label=self.t("labels.page", page="{page}"),
            generated_at=generated_at,
            blocks=tuple(blocks),
        )


def supplementary_document(
    before: EngagementDefinition,
    after: EngagementDefinition,
    lang: Language | str,
    *,
    change_code: str,
    reason: str,
    effective_on: dt.date,
    generated_at: dt.datetime | dt.date | None = None,
) -> Document:
    """The supplementary agreement's content: the changes from ``before`` to ``after``.

    Refuses two versions of different contracts, or two with the same terms.
    """
    language = _language(lang)
    if before.contract_number != after.contract_number:
        raise InvalidDocument(
            errors=[
                FieldError(
                    "after.contract_number",
                    "engagement.document.contract_mismatch",
                    {"before": before.contract_number, "after": after.contract_number},
                )
            ]
        )
    writer = _SupplementaryWriter(before, after, language)
    if not writer.changes:
        raise InvalidDocument(errors=[FieldError("after", "engagement.document.no_changes", {})])
    return writer.build(change_code, reason, effective_on, _moment(generated_at))


def supplementary_agreement_docx(
    before: EngagementDefinition,
    after: EngagementDefinition,
    lang: Language | str,
    out_path: str | Path,
    *,
    change_code: str,
    reason: str,
    effective_on: dt.date,
    generated_at: dt.datetime | dt.date | None = None,
) -> Path:
    """Write the supplementary agreement as a Word document; returns its path."""
    document = supplementary_document(
        before, after, lang, change_code=change_code, reason=reason,
        effective_on=effective_on, generated_at=generated_at,
    )  # fmt: skip
    return write_docx(document, out_path)


def supplementary_agreement_pdf(
    before: EngagementDefinition,
    after: EngagementDefinition,
    lang: Language | str,
    out_path: str | Path,
    *,
    change_code: str,
    reason: str,
    effective_on: dt.date,
    generated_at: dt.datetime | dt.date | None = None,
) -> Path:
    """Write the supplementary agreement as a PDF; returns its path."""
    document = supplementary_document(
        before, after, lang, change_code=change_code, reason=reason,
        effective_on=effective_on, generated_at=generated_at,
    )  # fmt: skip
    return write_pdf(document, out_path)


# --- DOCX --------------------------------------------------------------------------------------

_USABLE_WIDTH_MM = 160  # A4 less 25 mm margins

# style: alignment, size in points (None: the body's), bold, left indent in mm
_DOCX_STYLES: dict[str, tuple[int, float | None, bool, float]] = {
    "title": (WD_ALIGN_PARAGRAPH.CENTER, 16, True, 0),
    "subtitle": (WD_ALIGN_PARAGRAPH.CENTER, 12, False, 0),
    "right": (WD_ALIGN_PARAGRAPH.RIGHT, None, False, 0),
    "note": (WD_ALIGN_PARAGRAPH.RIGHT, 8.5, False, 0),
    "heading": (WD_ALIGN_PARAGRAPH.LEFT, 12, True, 0),
    "subheading": (WD_ALIGN_PARAGRAPH.LEFT, None, True, 0),
    "party": (WD_ALIGN_PARAGRAPH.LEFT, None, True, 0),
    "detail": (WD_ALIGN_PARAGRAPH.LEFT, None, False, 7),
    "body": (WD_ALIGN_PARAGRAPH.JUSTIFY, None, False, 0),
    "item": (WD_ALIGN_PARAGRAPH.JUSTIFY, None, False, 7),
}


def _docx_field(paragraph: Any, instruction: str) -> None:
    """A Word field (PAGE) in ``paragraph``."""
    for kind, text in (("begin", None), (None, instruction), ("end", None)):
        run = paragraph.add_run()
        if kind:
            element = OxmlElement("w:fldChar")
            element.set(qn("w:fldCharType"), kind)
        else:
            element = OxmlElement("w:instrText")
            element.set(qn("xml:space"), "preserve")
            element.text = text
        run._r.append(element)


def _docx_cell(cell: Any, text: str, *, bold: bool = False, size: float = 9) -> None:
    run = cell.paragraphs[0].add_run(text)
    run.bold = bold
    run.font.size = Pt(size)


def write_docx(document: Document, out_path: str | Path) -> Path:
    """Lay ``document`` out as a Word file (A4, SimSun for Chinese text)."""
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    word = docx.Document()
    section = word.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.left_margin = section.right_margin = Mm(25)
    section.top_margin = section.bottom_margin = Mm(22)
    normal = word.styles["Normal"]
    normal.font.name = "Times New Roman"
    normal.font.size = Pt(10.5)
    normal.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), "SimSun")

    for block in document.blocks:
        if isinstance(block, PageBreak):
            word.add_page_break()
        elif isinstance(block, Para):
            align, size, bold, indent = _DOCX_STYLES.get(block.style, _DOCX_STYLES["body"])
            paragraph = word.add_paragraph()
            run = paragraph.add_run(block.text)
            run.bold = bold
            if size:
                run.font.size = Pt(size)
            paragraph.alignment = align
            fmt = paragraph.paragraph_format
            fmt.space_after = Pt(4)
            if indent:
                fmt.left_indent = Mm(indent)
            if block.style in ("heading", "subheading", "title"):
                fmt.space_before = Pt(10)
                fmt.keep_with_next = True
        else:
            _docx_table(word, block)

    footer = section.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    head, _, tail = document.page_label.partition("{page}")
    footer.add_run(f"{document.reference}    {head}")
    _docx_field(footer, "PAGE")
    footer.add_run(tail)

    props = word.core_properties
    props.title = document.title
    props.subject = document.reference
    props.author = props.last_modified_by = "MemberLab"
    props.language = document.lang
    props.created = props.modified = document.generated_at
    props.revision = 1
    word.save(str(path))
    return path


def _docx_table(word: Any, grid: Grid) -> None:
    columns = len(grid.header or grid.rows[0])
    table = word.add_table(rows=0, cols=columns)
    if grid.borders:
        table.style = word.styles["Table Grid"]
    if grid.header:
        row = table.add_row()
        header = OxmlElement("w:tblHeader")
        header.set(qn("w:val"), "true")
        row._tr.get_or_add_trPr().append(header)
        for cell, text in zip(row.cells, grid.header, strict=True):
            _docx_cell(cell, text, bold=True)
    for values in grid.rows:
        cells = table.add_row().cells
        for cell, text in zip(cells, values, strict=True):
            _docx_cell(cell, text, size=9 if grid.borders else 10.5)
    if grid.widths:
        total = sum(grid.widths)
        for row in table.rows:
            for cell, width in zip(row.cells, grid.widths, strict=True):
                cell.width = Mm(_USABLE_WIDTH_MM * width / total)
    word.add_paragraph()


# --- PDF ---------------------------------------------------------------------------------------

CJK_FONT = "STSong-Light"
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]+")


@lru_cache(maxsize=1)
def _cjk_font() -> str:
    """Register reportlab's built-in Adobe CJK font (nothing to download)."""
    pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    return CJK_FONT


def _markup(text: str, lang: Language) -> str:
    """``text`` as reportlab paragraph markup; in English, Chinese runs use the CJK font."""
    if lang == "zh-CN":
        return escape(text)
    out: list[str] = []
    position = 0
    for match in _CJK.finditer(text):
        out.append(escape(text[position : match.start()]))
        out.append(f'<font name="{CJK_FONT}">{escape(match.group())}</font>')
        position = match.end()
    out.append(escape(text[position:]))
    return "".join(out)


def _pdf_styles(lang: Language) -> dict[str, ParagraphStyle]:
    cjk = _cjk_font()
    regular, bold = (cjk, cjk) if lang == "zh-CN" else ("Times-Roman", "Times-Bold")
    wrap = "CJK" if lang == "zh-CN" else None
    body = ParagraphStyle(
        "body", fontName=regular, fontSize=10.5, leading=16, alignment=TA_JUSTIFY,
        spaceAfter=3, wordWrap=wrap,
    )  # fmt: skip

    def like(name: str, **changes: Any) -> ParagraphStyle:
        return ParagraphStyle(name, parent=body, **changes)

    return {
        "body": body,
        "title": like("title", fontName=bold, fontSize=16, leading=24, alignment=TA_CENTER,
                      spaceBefore=6, spaceAfter=10),
        "subtitle": like("subtitle", fontSize=12, leading=18, alignment=TA_CENTER),
        "right": like("right", alignment=TA_RIGHT),
        "note": like("note", fontSize=8.5, leading=12, alignment=TA_RIGHT),
        "heading": like("heading", fontName=bold, fontSize=12, leading=18, alignment=TA_LEFT,
                        spaceBefore=8, spaceAfter=4, keepWithNext=1),
        "subheading": like("subheading", fontName=bold, alignment=TA_LEFT, spaceBefore=4,
                           keepWithNext=1),
        "party": like("party", fontName=bold, alignment=TA_LEFT, spaceBefore=4),
        "detail": like("detail", alignment=TA_LEFT, leftIndent=7 * mm, spaceAfter=0),
        "item": like("item", leftIndent=7 * mm),
        "cell": like("cell", fontSize=8.5, leading=11, alignment=TA_LEFT, spaceAfter=0),
        "cell_head": like("cell_head", fontName=bold, fontSize=8.5, leading=11,
                          alignment=TA_LEFT, spaceAfter=0),
        "sign": like("sign", alignment=TA_LEFT, leading=22, spaceAfter=0),
    }  # fmt: skip


def write_pdf(document: Document, out_path: str | Path) -> Path:
    """Lay ``document`` out as an A4 PDF, with page numbers; the same content always gives
    the same bytes."""
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lang = document.lang
    styles = _pdf_styles(lang)
    width = A4[0] - 50 * mm
    story: list[Any] = []
    for block in document.blocks:
        if isinstance(block, PageBreak):
            story.append(PdfPageBreak())
        elif isinstance(block, Para):
            style = styles.get(block.style, styles["body"])
            story.append(PdfParagraph(_markup(block.text, lang), style))
        else:
            story.extend(_pdf_table(block, styles, lang, width))

    footer_font = (
        _cjk_font() if lang == "zh-CN" or _CJK.search(document.reference) else "Times-Roman"
    )

    def footer(canvas: Any, _doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(footer_font, 8.5)
        label = document.page_label.format(page=canvas.getPageNumber())
        canvas.drawCentredString(A4[0] / 2, 12 * mm, f"{document.reference}    {label}")
        canvas.restoreState()

    template = SimpleDocTemplate(
        str(path), pagesize=A4, leftMargin=25 * mm, rightMargin=25 * mm, topMargin=22 * mm,
        bottomMargin=22 * mm, title=document.title, author="MemberLab", creator="MemberLab",
        subject=document.reference, lang=lang, invariant=1,
    )  # fmt: skip
    template.build(story, onFirstPage=footer, onLaterPages=footer)
    return path


def _pdf_table(
    grid: Grid, styles: dict[str, ParagraphStyle], lang: Language, width: float
) -> list[Any]:
    cell = styles["cell"] if grid.borders else styles["sign"]
    data = []
    if grid.header:
        data.append([PdfParagraph(_markup(t, lang), styles["cell_head"]) for t in grid.header])
    data.extend([PdfParagraph(_markup(t, lang), cell) for t in row] for row in grid.rows)
    columns = len(data[0])
    relative = grid.widths or (1,) * columns
    widths = [width * w / sum(relative) for w in relative]
    commands: list[Any] = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
    if grid.borders:
        commands.append(("GRID", (0, 0), (-1, -1), 0.5, colors.black))
    if grid.header:
        commands.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#EEEEEE")))
    table = PdfTable(data, colWidths=widths, repeatRows=1 if grid.header else 0, hAlign="LEFT")
    table.setStyle(TableStyle(commands))
    return [table, Spacer(1, 4 * mm)]
