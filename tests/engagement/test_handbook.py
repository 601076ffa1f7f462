"""The staff handbook: generated from a program, in zh-CN and en, as PDF (issue 7, item 8).

The expected figures are worked out by hand from the sample programs
(``src/memberlab/programs/samples``), never taken from the code under test.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import zlib
from decimal import Decimal
from pathlib import Path

import docx
import pytest

from memberlab.core.i18n import catalogs
from memberlab.datasets.demo import sample_program_text
from memberlab.engagement.handbook import (
    InvalidHandbook,
    handbook_document,
    handbook_docx,
    handbook_pdf,
    last_usable_day,
    max_points_payment,
    order_points,
    ordinary_day,
)
from memberlab.programs.schema import PointsExpiry, PointsPayment
from memberlab.programs.validation import parse_program_text

TEAHOUSE_TEXT = sample_program_text("teahouse")
TEAHOUSE = parse_program_text(TEAHOUSE_TEXT)
DEPARTMENT_STORE = parse_program_text(sample_program_text("department_store"))
SAMPLES = {"teahouse": TEAHOUSE, "department_store": DEPARTMENT_STORE}
GENERATED = dt.datetime(2026, 3, 2, 9, 30)  # a Monday, not a member day of either sample

# Worked by hand from the samples, for an example order of 100 yuan on an ordinary day.
EXPECTED: dict[tuple[str, str], dict[str, list[str]]] = {
    ("teahouse", "en"): {
        # growth thresholds of Green Leaf, Golden Bud and (invitation only) Imperial
        "thresholds": ["800 Growth value", "2,500 Growth value", "6,000 Growth value"],
        "retention": ["600 Growth value", "2,000 Growth value", "4,800 Growth value"],
        # base: 1 point per 1 yuan paid, rounded down
        "base": ["Every 1 yuan paid in money (after discounts and points) earns 1 point."],
        "reward": ["Teahouse tumbler", "6,800"],
        # Green Leaf: floor(100 x 1/1 x 1.2) = 120, plus the 50-point bonus for orders of
        # 100 yuan or more (100 >= 100): 170. Sprout: 100 + 50 = 150.
        "faq": [
            "Sprout 150 points (100 for the order + 50",
            "Green Leaf 170 points (120 for the order + 50",
            # pay with points: 50% of 100 yuan = 50 yuan = 5,000 points at 100 a yuan
            "up to 5,000 points (50 yuan) can be used",
            # end_of_nth_year, 1 year: earned 2 March 2026, usable until 31 December 2027
            "can be used until the end of 31 December 2027",
        ],
    },
    ("teahouse", "zh-CN"): {
        "thresholds": ["800 茶语成长值", "2,500 茶语成长值", "6,000 茶语成长值"],
        "retention": ["600 茶语成长值", "2,000 茶语成长值", "4,800 茶语成长值"],
        "base": ["实付金额（扣除优惠和积分抵现后）每 1 元得 1 积分。"],
        "reward": ["茶语随行杯", "6,800"],
        "faq": [
            "新芽会员 150 积分（订单 100 + 单笔满 100 元加赠 50）",
            "青叶会员 170 积分（订单 120 + 单笔满 100 元加赠 50）",
            "最多可用 5,000 积分（抵 50 元）",
            "可使用至2027年12月31日",
        ],
    },
    ("department_store", "en"): {
        # spend thresholds in yuan over the calendar year
        "thresholds": ["5,000 yuan", "20,000 yuan", "60,000 yuan"],
        "retention": ["3,000 yuan", "15,000 yuan", "45,000 yuan"],
        "base": ["Every 1 yuan paid in money (after discounts and points) earns 1 point."],
        "reward": ["Silk scarf", "30,000"],
        # Gold: floor(100 x 1.5) = 150, no bonus (the order bonus needs 2000 yuan)
        "faq": [
            "Classic 100 points; Silver 120 points; Gold 150 points; Platinum 200 points.",
            # 30% of 100 yuan = 30 yuan = 6,000 points at 200 a yuan (steps of 200, from 1,000)
            "up to 6,000 points (30 yuan) can be used",
            # 24 months after 2 March 2026: usable until 2 March 2028
            "can be used until the end of 2 March 2028",
        ],
    },
    ("department_store", "zh-CN"): {
        "thresholds": ["5,000 元", "20,000 元", "60,000 元"],
        "retention": ["3,000 元", "15,000 元", "45,000 元"],
        "base": ["实付金额（扣除优惠和积分抵现后）每 1 元得 1 积分。"],
        "reward": ["真丝围巾", "30,000"],
        "faq": [
            "普卡会员 100 积分；银卡会员 120 积分；金卡会员 150 积分；铂金卡会员 200 积分。",
            "最多可用 6,000 积分（抵 30 元）",
            "可使用至2028年3月2日",
        ],
    },
}
CASES = sorted(EXPECTED)


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def pdf_text(pdf: bytes) -> str:
    """The text a reportlab PDF shows: each page stream (ASCII85 and Flate) decoded, each
    string read in its font (the CJK font, UniGB-UCS2-H, is UTF-16; the others WinAnsi)."""
    wide = set()
    for obj in re.findall(rb"\d+ 0 obj(.*?)endobj", pdf, re.S):
        name = re.search(rb"/Name /(F\d+)", obj)
        if name and b"UCS2" in obj:
            wide.add(name[1])
    lines = []
    for raw in re.findall(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        content = zlib.decompress(base64.a85decode(raw.strip().removesuffix(b"~>")))
        font = b""
        for token in re.finditer(rb"/(F\d+) [\d.]+ Tf|\(((?:\\.|[^\\()])*)\) Tj", content, re.S):
            if token.group(1):
                font = token.group(1)
                continue
            text = re.sub(
                rb"\\([0-7]{1,3}|.)",
                lambda m: bytes([int(m[1], 8)]) if m[1][:1].isdigit() else m[1],
                token.group(2),
                flags=re.S,
            )
            lines.append(text.decode("utf-16-be" if font in wide else "cp1252"))
    return "\n".join(lines)


def pdf_pages(pdf: bytes) -> int:
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    return len(re.findall(rb"/Type\s*/Page\b", pdf))


def questions(text: str) -> list[str]:
    return re.findall(r"^(?:Q\d+\. |问\d+：)(.+)$", text, re.M)


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], bytes]:
    out = tmp_path_factory.mktemp("handbooks")
    written = {}
    for name, lang in CASES:
        path = handbook_pdf(SAMPLES[name], lang, out / f"{name}.{lang}.pdf", generated_at=GENERATED)
        written[name, lang] = path.read_bytes()
    return written


# --- the PDF ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "lang"), CASES)
def test_each_sample_gives_a_pdf_handbook_in_each_language(
    pdfs: dict[tuple[str, str], bytes], name: str, lang: str
) -> None:
    pdf = pdfs[name, lang]

    assert pdf_pages(pdf) >= 3
    text = squeeze(pdf_text(pdf))
    program = SAMPLES[name]
    for tier in program.tiers:
        assert squeeze(tier.name.get(lang)) in text
    expected = EXPECTED[name, lang]
    for key in ("thresholds", "retention", "base", "reward", "faq"):
        for phrase in expected[key]:
            assert squeeze(phrase) in text, (key, phrase)


@pytest.mark.parametrize(("name", "lang"), CASES)
def test_the_pdf_shows_the_whole_handbook(
    pdfs: dict[tuple[str, str], bytes], name: str, lang: str
) -> None:
    """Every paragraph and table row of the document reaches the PDF, in order."""
    document = handbook_document(SAMPLES[name], lang, generated_at=GENERATED)
    shown = pdf_text(pdfs[name, lang]).splitlines()
    footer = re.compile(r".*(Page \d+|第 \d+ 页)$")  # may fall inside a paragraph
    text = squeeze("".join(line for line in shown if not footer.fullmatch(line)))

    position = 0
    for line in document.text().splitlines():
        for cell in line.split(" | "):
            found = text.find(squeeze(cell), position)
            assert found >= 0, cell
            position = found


def test_the_same_program_gives_the_same_pdf(
    pdfs: dict[tuple[str, str], bytes], tmp_path: Path
) -> None:
    again = handbook_pdf(TEAHOUSE, "en", tmp_path / "again.pdf", generated_at=GENERATED)

    assert again.read_bytes() == pdfs["teahouse", "en"]


def test_a_chinese_brand_is_printed_in_an_english_handbook(tmp_path: Path) -> None:
    path = handbook_pdf(
        TEAHOUSE, "en", tmp_path / "brand.pdf", brand="茶语咖啡", generated_at=GENERATED
    )

    text = pdf_text(path.read_bytes())
    assert "茶语咖啡" in text
    assert "茶语咖啡 — staff handbook" in text  # the footer


def test_a_change_in_the_program_changes_the_handbook(
    pdfs: dict[tuple[str, str], bytes], tmp_path: Path
) -> None:
    changed_text = TEAHOUSE_TEXT.replace("threshold: 800", "threshold: 900").replace(
        "  base:\n    points: 1\n", "  base:\n    points: 2\n"
    )
    assert changed_text.count("threshold: 900") == 1
    changed = parse_program_text(changed_text)

    pdf = handbook_pdf(changed, "en", tmp_path / "changed.pdf", generated_at=GENERATED).read_bytes()

    text = squeeze(pdf_text(pdf))
    before = squeeze(pdf_text(pdfs["teahouse", "en"]))
    # the tier table's row and the upgrade answer both read "Green Leaf, 900 Growth value"
    assert text.count(squeeze("Green Leaf 900 Growth value")) == 2
    assert before.count(squeeze("Green Leaf 800 Growth value")) == 2
    assert squeeze("Green Leaf 800 Growth value") not in text
    # 2 points a yuan: Green Leaf earns floor(100 x 2 x 1.2) = 240, plus the 50 bonus
    assert squeeze("earns 2 points.") in text
    assert squeeze("Green Leaf 290 points (240 for the order + 50") in text


# --- the content -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "lang"), CASES)
def test_the_faq_has_eight_to_twelve_answered_questions(name: str, lang: str) -> None:
    document = handbook_document(SAMPLES[name], lang, generated_at=GENERATED)

    asked = questions(document.text())
    assert 8 <= len(asked) <= 12
    lines = document.text().splitlines()
    for question in asked:
        answer = lines[lines.index(next(x for x in lines if x.endswith(question))) + 1]
        assert answer.strip()


def test_the_questions_follow_what_the_program_has() -> None:
    """A program without paid plans, coupons, birthday bonus or points payment, whose points
    never expire: those questions go, and the others say so."""
    bare = TEAHOUSE.model_copy(
        update={
            "paid_plans": [],
            "rewards": [r for r in TEAHOUSE.rewards if r.coupon is None],
            "points_payment": PointsPayment(),
            "points": TEAHOUSE.points.model_copy(update={"expiry": PointsExpiry()}),
            "earning": TEAHOUSE.earning.model_copy(
                update={"bonuses": [b for b in TEAHOUSE.earning.bonuses if b.code != "birthday"]}
            ),
        }
    )

    text = handbook_document(bare, "en", generated_at=GENERATED).text()

    asked = questions(text)
    assert len(asked) == 9
    assert "Is there a paid membership?" not in asked
    assert "How long is my coupon valid?" not in asked
    assert "What do I get on my birthday?" not in asked
    assert "Tea points never expire." in text
    assert "Points cannot be used as payment at the till" in text
    assert "The program sells no paid membership." in text
    assert "The catalog has no coupons." in text


def test_the_tier_table_reads_from_the_program() -> None:
    text = handbook_document(TEAHOUSE, "en", generated_at=GENERATED).text()

    assert (
        "Green Leaf | 800 Growth value | 600 Growth value | ×1.2 | "
        "Birthday drink (1 a year); Free upsize (12 a year)"
    ) in text
    assert "Sprout | On joining | Always kept | ×1 | Birthday drink (1 a year)" in text
    assert "Imperial | By invitation (guide: 6,000 Growth value) | 4,800 Growth value" in text
    # the review: on each member's anniversary, down one tier at most
    assert "on each member's joining anniversary" in text
    assert "by at most 1 tier at a time" in text


def test_the_earning_section_reads_from_the_program() -> None:
    teahouse = handbook_document(TEAHOUSE, "en", generated_at=GENERATED).text()
    store = handbook_document(DEPARTMENT_STORE, "zh-CN", generated_at=GENERATED).text()

    assert "Member day on the 8th: double points | day 8 of each month | ×2" in teahouse
    assert "only the largest counts" in teahouse  # stacking: best
    assert "at most 1,000 points per order" in teahouse
    assert "No Tea points for: categories “gift_card”." in teahouse
    assert "can be used 3 days after the purchase" in teahouse
    assert "Orders of 100 yuan or more | on one order paying 100 yuan or more" in teahouse
    assert "周六会员日 | 每周六 | ×1.5" in store
    assert "店庆三倍积分 | 2026年10月1日至2026年10月7日 | ×3" in store
    # stacking: all; the example pairs two multipliers of different kinds: 2 x 1.5 = 3
    assert "倍数相乘：×2 与 ×1.5 合计 ×3。" in store
    assert "每日最多 50,000 积分、每月最多 200,000 积分" in store
    assert "品类 “gift_card”、“food”" in store
    assert "消费 7 天后可用" in store
    assert "仅消费不会自动入会" in store


def test_the_other_sections_read_from_the_program() -> None:
    teahouse = handbook_document(TEAHOUSE, "en", generated_at=GENERATED).text()
    store = handbook_document(DEPARTMENT_STORE, "en", generated_at=GENERATED).text()

    assert "15 yuan off orders of 50 | 15 yuan | 50 yuan | 14 days after redeeming" in teahouse
    assert (
        "Pre-Qingming Longjing tin (limited) | Product | 12,800 | limited stock: 200; "
        "at most 1 per member; available 20 March 2026 to 31 May 2026"
    ) in teahouse
    assert "Tea Pass | 99 yuan | 12 months | ×1.2 |" in teahouse
    assert "Returns are accepted up to 7 days after the purchase." in teahouse
    assert "taken from the member's other points" in teahouse  # spent points: other lots
    assert "the balance goes negative" in store  # spent points: debt
    assert "Returns are accepted up to 30 days after the purchase." in store
    assert "Members are reminded 60 days before their points expire." in store
    assert "The program sells no paid membership." in store
    # the department store has no growth sources: growth value is not mentioned
    assert "Growth value" not in store
    # on the first Saturday (member day x1.5) from 2 March 2026: floor(100 x 1.5) = 150
    assert "On “Saturday member day”, for example on 7 March 2026" in store
    assert "a Classic member earns 150 points for the same order" in store


def test_every_handbook_text_exists_in_both_languages() -> None:
    en = {k for k in catalogs()["en"] if k.startswith("engagement.handbook.")}
    zh = {k for k in catalogs()["zh-CN"] if k.startswith("engagement.handbook.")}

    assert en == zh
    assert len(en) > 100


# --- the figures -----------------------------------------------------------------------------


def test_order_points_come_from_the_rule_engine() -> None:
    day = dt.date(2026, 3, 2)
    green_leaf = TEAHOUSE.tier("green_leaf")

    result = order_points(TEAHOUSE, Decimal("99.99"), green_leaf, day)

    # floor(99.99 x 1.2) = 119; 99.99 is below the 100-yuan order bonus
    assert (result.points, result.bonus, result.total) == (119, 0, 119)
    # the 8th is the member day: floor(100 x 2 x 1.2) = 240, plus 50
    on_member_day = order_points(TEAHOUSE, Decimal(100), green_leaf, dt.date(2026, 3, 8))
    assert (on_member_day.points, on_member_day.bonus_code) == (240, "big_order")


def test_an_ordinary_day_has_no_member_day_nor_promotion() -> None:
    assert ordinary_day(TEAHOUSE, dt.date(2026, 3, 8)) == dt.date(2026, 3, 9)
    assert ordinary_day(TEAHOUSE, dt.date(2026, 3, 9)) == dt.date(2026, 3, 9)
    # Saturday 3 October 2026 is a member day inside the 1-7 October sale: 8 October
    assert ordinary_day(DEPARTMENT_STORE, dt.date(2026, 10, 1)) == dt.date(2026, 10, 8)
    assert ordinary_day(DEPARTMENT_STORE, dt.date(2026, 3, 7)) == dt.date(2026, 3, 8)


def test_points_payment_respects_share_step_and_minimum() -> None:
    # 30% of 10 yuan = 3 yuan = 600 points: below the 1,000-point minimum
    assert max_points_payment(DEPARTMENT_STORE, Decimal(10)) == 0
    # 30% of 99 yuan = 29.7 yuan = 5,940 points: 5,800 in steps of 200
    assert max_points_payment(DEPARTMENT_STORE, Decimal(99)) == 5800
    off = TEAHOUSE.model_copy(update={"points_payment": PointsPayment()})
    assert max_points_payment(off, Decimal(100)) == 0


def test_the_last_usable_day_follows_the_expiry_mode() -> None:
    assert last_usable_day(TEAHOUSE, dt.date(2026, 12, 31)) == dt.date(2027, 12, 31)
    assert last_usable_day(DEPARTMENT_STORE, dt.date(2026, 8, 31)) == dt.date(2028, 8, 31)
    never = TEAHOUSE.model_copy(
        update={"points": TEAHOUSE.points.model_copy(update={"expiry": PointsExpiry()})}
    )
    assert last_usable_day(never, dt.date(2026, 1, 1)) is None


# --- the entry points ----------------------------------------------------------------------


def test_a_word_handbook_holds_the_same_text(tmp_path: Path) -> None:
    path = handbook_docx(
        DEPARTMENT_STORE, "zh-CN", tmp_path / "handbook.docx", generated_at=GENERATED
    )

    word = docx.Document(str(path))
    paragraphs = [p.text for p in word.paragraphs]
    cells = [c.text for t in word.tables for row in t.rows for c in row.cells]
    assert paragraphs[0] == "恒悦百货会员计划员工手册"
    assert "金卡会员" in cells
    assert "20,000 元" in cells


@pytest.mark.parametrize("lang", ["fr", ""])
def test_an_unknown_language_is_refused(lang: str) -> None:
    with pytest.raises(InvalidHandbook) as caught:
        handbook_document(TEAHOUSE, lang)

    assert caught.value.errors[0].loc == "lang"
    assert "zh-CN" in caught.value.render("en")


@pytest.mark.parametrize("amount", ["0", "-5", "1.234", "NaN", "ten"])
def test_an_impossible_example_amount_is_refused(amount: str) -> None:
    with pytest.raises(InvalidHandbook) as caught:
        handbook_document(TEAHOUSE, "en", example_amount=amount)

    assert caught.value.errors[0].loc == "example_amount"


def test_the_example_amount_can_be_chosen() -> None:
    text = handbook_document(
        DEPARTMENT_STORE, "en", generated_at=GENERATED, example_amount=2000
    ).text()

    # 2000 yuan reaches the 500-point order bonus: Classic 2000 + 500
    assert "How many points does a 2,000 yuan order earn?" in text
    assert "Classic 2,500 points (2,000 for the order + 500" in text
