"""The filled contract and the supplementary agreement, as DOCX and PDF, in zh-CN and en.

Every figure in the documents is checked against the engagement's data: the fee in figures
and in capital numerals (大写), each instalment's amount from ``build_schedule``, the
working-day wording, each penalty clause's rate, the governing law and every annex.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import shutil
import string
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import docx
import pytest
import yaml

from memberlab.core.errors import InvalidInput
from memberlab.engagement.definition import (
    EngagementDefinition,
    parse_definition_text,
    validate_definition,
)
from memberlab.engagement.documents import (
    Change,
    amount_in_capitals,
    amount_in_words,
    chinese_numeral,
    clause_texts,
    contract_document,
    contract_docx,
    contract_pdf,
    differences,
    format_amount,
    format_date,
    supplementary_agreement_docx,
    supplementary_agreement_pdf,
    supplementary_document,
)
from memberlab.engagement.instalments import build_schedule

SAMPLE = (
    Path(__file__).parents[2]
    / "src"
    / "memberlab"
    / "engagement"
    / "samples"
    / "membership_consulting.yaml"
)
TEXT = SAMPLE.read_text(encoding="utf-8")
DATA = yaml.safe_load(TEXT)
GENERATED = dt.date(2026, 1, 5)
ANNEXES = {
    "zh-CN": ["会员制度设计方案", "服务进度表", "培训计划", "项目团队介绍", "需求调查表",
              "评估标准", "履约证明材料"],
    "en": ["Membership program design", "Service schedule", "Training plan", "Team introduction",
           "Needs questionnaire", "Evaluation standards", "Proof of performance"],
}  # fmt: skip


@pytest.fixture(scope="module")
def spec() -> EngagementDefinition:
    return parse_definition_text(TEXT)


@pytest.fixture(scope="module")
def changed() -> EngagementDefinition:
    """The sample after an agreed change: a higher fee, the design milestone a month later,
    one more deliverable, a team member full time."""
    data = copy.deepcopy(DATA)
    data["payment"]["fee"] = 520000
    for milestone in data["milestones"]:
        if milestone["code"] == "design_accepted":
            milestone["planned"] = "2026-05-29"
    data["deliverables"].append(
        {
            "code": "member_app",
            "name": {"zh": "会员小程序需求说明", "en": "Member mini-program requirements"},
            "milestone": "launch",
            "due": "2026-06-10",
            "value": 40000,
        }
    )
    data["team"][2]["allocation_percent"] = 100
    return validate_definition(data)


def docx_text(path: Path) -> str:
    """Every paragraph, table cell and footer line of a Word file."""
    document = docx.Document(str(path))
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.extend(cell.text for cell in row.cells)
    parts.extend(p.text for p in document.sections[0].footer.paragraphs)
    return "\n".join(parts)


def pdf_text(path: Path) -> str | None:
    """The PDF's text when ``pdftotext`` is installed, else None."""
    tool = shutil.which("pdftotext")
    if tool is None:
        return None
    done = subprocess.run([tool, str(path), "-"], capture_output=True, check=True, text=True)
    return re.sub(r"\s+", "", done.stdout)


def pdf_pages(path: Path) -> int:
    data = path.read_bytes()
    assert data.startswith(b"%PDF-")
    assert data.rstrip().endswith(b"%%EOF")
    return len(re.findall(rb"/Type\s*/Page\b", data))


# --- amounts in words ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        # worked by hand: 5 fen
        ("0.05", "人民币伍分"),
        # 1 in the tens place keeps its 壹; 整 after 元
        ("10.00", "人民币壹拾元整"),
        # 10|0000: 壹拾 of the 万 group, nothing below
        ("100000.00", "人民币壹拾万元整"),
        # 100|2003.40: 壹佰万; 2003 = 贰仟, zeros, 叁 -> 贰仟零叁; 4 jiao, no 整 after 角
        ("1002003.40", "人民币壹佰万贰仟零叁元肆角"),
        # 48|0000: 肆拾捌万, the empty lower group writes nothing
        ("480000.00", "人民币肆拾捌万元整"),
        ("0.00", "人民币零元整"),
        ("325.04", "人民币叁佰贰拾伍元零肆分"),  # zero jiao before fen: 零
        ("1680.32", "人民币壹仟陆佰捌拾元叁角贰分"),
        ("107000.53", "人民币壹拾万柒仟元伍角叁分"),
        ("100050.00", "人民币壹拾万零伍拾元整"),  # zeros between digits: one 零
        ("100000001.00", "人民币壹亿零壹元整"),
        ("144000.00", "人民币壹拾肆万肆仟元整"),
    ],
)
def test_amounts_in_chinese_capital_numerals(amount: str, expected: str) -> None:
    assert amount_in_capitals(Decimal(amount)) == expected


@pytest.mark.parametrize("amount", ["-1.00", "0.001", "10000000000000000"])
def test_an_amount_that_cannot_be_written_out_is_refused(amount: str) -> None:
    with pytest.raises(ValueError, match=r"amount|large"):
        amount_in_capitals(Decimal(amount))


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("480000.00", "four hundred and eighty thousand yuan"),
        ("1002003.40", "one million two thousand and three yuan and forty fen"),
        ("0.05", "five fen"),
        ("10.00", "ten yuan"),
        ("192000.00", "one hundred and ninety-two thousand yuan"),
    ],
)
def test_amounts_in_english_words(amount: str, expected: str) -> None:
    assert amount_in_words(Decimal(amount)) == expected


def test_figures_dates_and_article_numbers() -> None:
    assert format_amount(Decimal("480000")) == "480,000.00"
    assert format_amount(Decimal("0.5")) == "0.50"
    assert format_amount(Decimal("1234"), "JPY") == "1,234"
    assert format_date(dt.date(2026, 1, 5), "zh-CN") == "2026年1月5日"
    assert format_date(dt.date(2026, 1, 5), "en") == "5 January 2026"
    assert [chinese_numeral(n) for n in (1, 7, 10, 11, 20, 99)] == [
        "一", "七", "十", "十一", "二十", "九十九",
    ]  # fmt: skip


# --- clause texts ----------------------------------------------------------------------------


def _leaves(node: Any, path: str = "") -> dict[str, str]:
    if isinstance(node, dict):
        out: dict[str, str] = {}
        for key, value in node.items():
            out.update(_leaves(value, f"{path}.{key}" if path else str(key)))
        return out
    if isinstance(node, list):
        out = {}
        for i, value in enumerate(node):
            out.update(_leaves(value, f"{path}[{i}]"))
        return out
    return {path: str(node)}


def _placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


def test_both_languages_have_every_clause_with_the_same_placeholders() -> None:
    zh, en = _leaves(clause_texts("zh-CN")), _leaves(clause_texts("en"))

    assert sorted(set(zh) ^ set(en)) == []
    assert [k for k in zh if _placeholders(zh[k]) != _placeholders(en[k])] == []
    assert [k for k in zh if not zh[k].strip() or not en[k].strip()] == []


# --- the contract ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def contract_files(
    spec: EngagementDefinition, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str], Path]:
    folder = tmp_path_factory.mktemp("contract")
    files = {}
    for lang in ("zh-CN", "en"):
        files[lang, "docx"] = contract_docx(
            spec, lang, folder / f"contract.{lang}.docx", generated_at=GENERATED
        )
        files[lang, "pdf"] = contract_pdf(
            spec, lang, folder / f"contract.{lang}.pdf", generated_at=GENERATED
        )
    return files


EXPECTED = {
    "zh-CN": [
        "ML-2026-001",
        "茶语咖啡（上海）有限公司",
        "明德会员咨询（深圳）有限公司",
        "91310115MA1H7Q8L3W",
        "鉴于",
        "人民币480,000.00元（大写：人民币肆拾捌万元整）",
        "税率6%，税额人民币27,169.81元",
        "第1期：服务费的30%，即人民币144,000.00元（大写：人民币壹拾肆万肆仟元整），"
        "甲方应于本合同签订后5个工作日内支付",
        "第2期：服务费的40%，即人民币192,000.00元",
        "里程碑“会员方案验收”经甲方验收通过后10个工作日内支付",
        "第3期：服务费的30%，即人民币144,000.00元",
        "“工作日”",
        "开户银行：________",
        "在收到之日起10个工作日内完成验收",
        "视为该成果验收通过",
        "合同服务费总额的0.05%（万分之五，即人民币240.00元）",
        "前3个自然日为宽限期",
        "不超过合同服务费总额的10%（即人民币48,000.00元）",
        "合同服务费总额的5%（即人民币24,000.00元）向甲方一次性支付违约金",
        "逾期未付金额的0.05%（万分之五）",
        "《保障中小企业款项支付条例》",
        "合同服务费总额的0.03%（万分之三，即人民币144.00元）",
        "个人信息保护法",
        "适用中华人民共和国法律",
        "甲方所在地有管辖权的人民法院",
        "补充协议",
        "净推荐值（权重40%）",
        "目标值不低于25分",
        "门店员工会员权益培训",
        "统计学硕士",
        "第 ",  # the footer's page number
    ],
    "en": [
        "ML-2026-001",
        "茶语咖啡（上海）有限公司",
        "明德会员咨询（深圳）有限公司",
        "Whereas",
        "CNY 480,000.00 (in words: four hundred and eighty thousand yuan)",
        "inclusive of VAT at 6% (CNY 27,169.81)",
        "Instalment 1: 30% of the fee, CNY 144,000.00",
        "within 5 working days after the signing of this contract",
        "Instalment 2: 40% of the fee, CNY 192,000.00",
        "within 10 working days after the Client's acceptance of the milestone "
        "“Program design accepted”",
        "Instalment 3: 30% of the fee, CNY 144,000.00",
        "“working day”",
        "Bank: ________",
        "within 10 working days of receiving it",
        "0.05% of the total contract fee (5 basis points, CNY 240.00) for each day of delay",
        "the first 3 calendar days after the due date are a grace period",
        "shall not exceed 10% of the total contract fee (CNY 48,000.00)",
        "one-off penalty of 5% of the total contract fee (CNY 24,000.00)",
        "0.05% of the amount paid late (5 basis points)",
        "0.03% of the total contract fee (3 basis points, CNY 144.00)",
        "Personal Information Protection Law",
        "governed by the laws of the People's Republic of China",
        "the people's court with jurisdiction where the client is domiciled",
        "supplementary agreement",
        "Net Promoter Score (weight 40%)",
        "target at least 25 points",
        "Membership benefits for front-line staff",
        "Page ",
    ],
}


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_sample_contract_as_docx_has_every_figure_and_clause(
    lang: str, spec: EngagementDefinition, contract_files: dict[tuple[str, str], Path]
) -> None:
    text = docx_text(contract_files[lang, "docx"])

    missing = [expected for expected in EXPECTED[lang] if expected not in text]
    assert missing == []
    for instalment in build_schedule(spec.payment).instalments:
        assert format_amount(instalment.amount) in text
    for clause in spec.penalties:
        assert f"{clause.rate}%" in text
    assert all(name in text for name in ANNEXES[lang])
    assert all(d.name.get(lang) in text for d in spec.deliverables)
    assert all(m.name.get(lang) in text for m in spec.milestones)
    assert all(member.name in text for member in spec.team)


def test_the_docx_carries_the_title_and_the_contract_number(
    contract_files: dict[tuple[str, str], Path],
) -> None:
    properties = docx.Document(str(contract_files["zh-CN", "docx"])).core_properties

    assert properties.title == "会员制度与客户体验优化咨询服务合同"
    assert properties.subject == "ML-2026-001"
    assert properties.created is not None
    assert properties.created.date() == GENERATED


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_sample_contract_as_pdf(lang: str, contract_files: dict[tuple[str, str], Path]) -> None:
    path = contract_files[lang, "pdf"]

    assert pdf_pages(path) >= 5
    text = pdf_text(path)
    if text is None:
        return  # no pdftotext on this machine: the bytes and pages were checked
    for expected in ("ML-2026-001", "茶语咖啡（上海）有限公司", "144,000.00", "192,000.00"):
        assert expected in text
    assert ("人民币肆拾捌万元整" if lang == "zh-CN" else "5workingdays") in text


def test_the_same_contract_gives_the_same_pdf(
    spec: EngagementDefinition, contract_files: dict[tuple[str, str], Path], tmp_path: Path
) -> None:
    again = contract_pdf(spec, "en", tmp_path / "again.pdf", generated_at=GENERATED)

    assert again.read_bytes() == contract_files["en", "pdf"].read_bytes()


def test_the_penalty_clauses_are_numbered_as_their_sources_say(
    spec: EngagementDefinition,
) -> None:
    """The sample cites 合同第七条第N款 for each clause: article 7, clause N."""
    text = contract_document(spec, "zh-CN", generated_at=GENERATED).text()
    clauses = [*spec.penalties, spec.late_payment.agreed]

    for clause in clauses:
        assert clause is not None
        assert clause.source is not None
        number = re.fullmatch(r"合同第七条第(\d)款", clause.source)
        assert number
        line = next(line for line in text.splitlines() if line.startswith(f"7.{number[1]}　"))
        assert f"{clause.rate}%" in line


def test_other_payment_terms_and_the_statutory_late_payment_fallback() -> None:
    """Tax on top, an instalment as an amount due on a date, no agreed late-payment clause."""
    data = copy.deepcopy(DATA)
    data["payment"].update(tax_included=False)
    data["payment"]["instalments"] = [
        {"code": "advance", "amount": 100000, "trigger": "signing"},
        {"code": "rest", "portion": 50, "trigger": "date", "trigger_date": "2026-07-01",
         "offset": 15, "offset_unit": "calendar_days"},
        {"code": "final", "amount": 140000, "trigger": "invoice", "offset": 30},
    ]  # fmt: skip
    data["late_payment"] = {"lpr_factor": "1.5"}
    spec = validate_definition(data)

    zh = contract_document(spec, "zh-CN", generated_at=GENERATED).text()
    en = contract_document(spec, "en", generated_at=GENERATED).text()

    assert "不含增值税；增值税按6%另计，税额人民币28,800.00元，含税总额人民币508,800.00元" in zh
    assert "第1期：人民币100,000.00元（大写：人民币壹拾万元整），另加增值税人民币6,000.00元" in zh
    assert "甲方应于本合同签订当日支付" in zh
    assert "甲方应于2026年7月1日后15个自然日内支付" in zh
    assert "收到乙方就该期款项开具的合法有效发票后30个工作日内支付" in zh
    assert "一年期贷款市场报价利率（LPR）的1.5倍" in zh
    assert "payable by the Client within 15 calendar days after 1 July 2026" in en
    assert "at 1.5 times the one-year loan prime rate (LPR)" in en

    data["late_payment"] = {"provider_is_sme": True, "payer_is_public_or_large": True}
    sme = contract_document(validate_definition(data), "zh-CN", generated_at=GENERATED).text()
    assert "按每日0.05%（万分之五）向乙方支付逾期利息" in sme


def test_an_engagement_with_no_schedule_annexes_and_a_foreign_currency(tmp_path: Path) -> None:
    data = {
        key: DATA[key]
        for key in (
            "contract_number",
            "title",
            "parties",
            "term",
            "service_content",
            "governing_law",
            "forum",
        )
    }
    data["payment"] = {
        "fee": "1000.50",
        "currency": "USD",
        "tax_rate": 0,
        "instalments": [{"code": "all", "portion": 100, "trigger": "signing", "offset": 1}],
    }
    spec = validate_definition(data)

    en = contract_document(spec, "en", generated_at=GENERATED).text()
    zh = contract_document(spec, "zh-CN", generated_at=GENERATED).text()

    assert "The total fee under this contract is USD 1,000.50, inclusive" in en  # no words
    assert "paid in a single instalment" in en
    assert "within 1 working day after the signing" in en
    assert "本合同未约定量化评估指标" in zh
    assert "本附件暂无内容" in zh
    assert pdf_pages(contract_pdf(spec, "zh-CN", tmp_path / "c.pdf")) >= 1
    assert "USD 1,000.50" in docx_text(contract_docx(spec, "en", tmp_path / "c.docx"))


def test_an_unknown_language_is_refused(spec: EngagementDefinition) -> None:
    with pytest.raises(InvalidInput) as caught:
        contract_document(spec, "fr")

    assert caught.value.errors[0].key == "engagement.document.language"


# --- the supplementary agreement -------------------------------------------------------------


def test_the_differences_between_two_versions(
    spec: EngagementDefinition, changed: EngagementDefinition
) -> None:
    found = differences(spec, changed)

    assert Change("payment", "", "fee", Decimal("480000.00"), Decimal("520000")) in found
    assert (
        Change("milestone", "design_accepted", "planned", dt.date(2026, 4, 30),
               dt.date(2026, 5, 29)) in found
    )  # fmt: skip
    assert [(c.area, c.key) for c in found if c.before is None] == [("deliverable", "member_app")]
    assert Change("team", "刘洋", "allocation_percent", 80, 100) in found
    assert len(found) == 4
    assert differences(spec, spec) == []


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        (
            "zh-CN",
            [
                "《会员制度与客户体验优化咨询服务合同》补充协议",
                "补充协议编号：CR-001",
                "原合同编号：ML-2026-001",
                "因甲方要求增加会员小程序需求说明",
                "服务费总额由人民币480,000.00元变更为人民币520,000.00元（大写：人民币伍拾贰万元整）",
                "增加人民币40,000.00元",
                "里程碑“会员方案验收”的计划完成日期由2026年4月30日调整为2026年5月29日（推迟29日）",
                "新增成果“会员小程序需求说明”：交付日期2026年6月10日，价值人民币40,000.00元",
                "项目团队成员刘洋的投入比例由80%变更为100%",
                "人民币208,000.00元",  # instalment 2 as changed
                "人民币192,000.00元",  # and as it was
                "自2026年4月1日起生效",
                "依照原合同第十条的约定",
            ],
        ),
        (
            "en",
            [
                "Supplementary agreement to the “Membership program and customer experience "
                "consulting agreement”",
                "Original contract No.: ML-2026-001",
                "the total fee is changed from CNY 480,000.00 to CNY 520,000.00",
                "an increase of CNY 40,000.00",
                "the planned date of the milestone “Program design accepted” is moved from "
                "30 April 2026 to 29 May 2026 (29 days later)",
                "the deliverable “Member mini-program requirements” is added",
                "CNY 208,000.00",
                "takes effect on 1 April 2026",
                "under Article 10 of the Original Contract",
            ],
        ),
    ],
)
def test_the_supplementary_agreement_lists_the_fee_change_and_the_moved_milestone(
    lang: str,
    expected: list[str],
    spec: EngagementDefinition,
    changed: EngagementDefinition,
    tmp_path: Path,
) -> None:
    options = {
        "change_code": "CR-001",
        "reason": "甲方要求增加会员小程序需求说明。",
        "effective_on": dt.date(2026, 4, 1),
    }
    docx_path = supplementary_agreement_docx(spec, changed, lang, tmp_path / "s.docx", **options)
    pdf_path = supplementary_agreement_pdf(spec, changed, lang, tmp_path / "s.pdf", **options)

    text = docx_text(docx_path)
    assert [e for e in expected if e not in text] == []
    assert pdf_pages(pdf_path) >= 1
    extracted = pdf_text(pdf_path)
    if extracted is not None:
        assert "ML-2026-001" in extracted
        assert "520,000.00" in extracted


def test_replaced_and_removed_items_are_described_from_their_own_version(
    spec: EngagementDefinition,
) -> None:
    data = copy.deepcopy(DATA)
    data["penalties"][1]["rate"] = 4
    data["training"] = data["training"][:1]
    after = validate_definition(data)

    text = supplementary_document(
        spec, after, "zh-CN", change_code="CR-002", reason="调整", effective_on=dt.date(2026, 5, 1)
    ).text()

    assert "合同服务费总额的5%（即人民币24,000.00元）" in text  # before
    assert "合同服务费总额的4%（即人民币19,200.00元）" in text  # after
    assert "取消培训“客诉跟进与问卷运营”（原约定：2026年6月20日，2学时）" in text
    assert "服务费总额不变，仍为人民币480,000.00元" in text
    assert "各里程碑、成果和培训的计划日期不变" in text


def test_every_kind_of_change_is_written_out(spec: EngagementDefinition) -> None:
    data = copy.deepcopy(DATA)
    data["title"]["en"] = "Membership consulting agreement"  # English only
    data["parties"]["client"]["address"] = "上海市静安区南京西路 1 号"
    data["term"]["end"] = "2027-01-31"
    data["payment"]["fee"] = 500000
    data["payment"]["instalments"][0]["offset"] = 3
    data["payment"]["instalments"][2]["portion"] = 26
    data["payment"]["instalments"].append(
        {"code": "retention", "amount": 20000, "trigger": "date", "trigger_date": "2027-01-15"}
    )
    data["late_payment"] = {"lpr_factor": "1.4", "signed_on": "2026-01-05"}
    data["milestones"][3]["depends_on"] = ["design_accepted", "diagnosis"]
    data["deliverables"][3]["acceptance_days"] = 15
    data["standards"][0]["target"] = 28
    data["training"][0]["planned"] = "2026-06-10"
    data["team"][2] = {"name": "王芳", "role": {"zh": "培训顾问", "en": "Trainer"}}
    after = validate_definition(data)
    options = {"change_code": "CR-9", "reason": "scope", "effective_on": dt.date(2026, 6, 1)}

    zh = supplementary_document(spec, after, "zh-CN", **options).text()
    en = supplementary_document(spec, after, "en", **options).text()

    for expected in (
        "甲方的住所由上海市浦东新区世纪大道 100 号变更为上海市静安区南京西路 1 号",
        "服务期限的届满日由2026年12月31日调整为2027年1月31日（推迟31日）",
        "甲方应于本合同签订后3个工作日内支付",
        "服务费的26%，即人民币130,000.00元",
        "新增第4期付款：人民币20,000.00元（大写：人民币贰万元整），甲方应于2027年1月15日支付",
        "按逾期开始时一年期贷款市场报价利率（LPR）的1.4倍",
        "里程碑“新会员体系上线”的前置里程碑由会员方案验收变更为会员方案验收、客户体验诊断",
        "成果“客户体验诊断报告”的验收期限由10个工作日变更为15个工作日",
        "评估指标“净推荐值”的目标值由25分变更为28分",
        "培训“门店员工会员权益培训”的日期由2026年6月15日调整为2026年6月10日（提前5日）",
        "新增项目团队成员王芳：培训顾问，投入比例100%",
        "取消项目团队成员刘洋（原约定：数据分析师，投入比例80%）",
    ):
        assert expected in zh
    assert "合同的名称" not in zh  # the Chinese title did not change
    assert "逾期付款条款的" not in zh  # the clause changes as a whole
    assert "the title of the contract is changed from Membership program and customer " in en
    assert "(5 days earlier)" in en
    assert "team member 刘洋 is removed" in en


def test_a_supplementary_agreement_needs_a_change_to_the_same_contract(
    spec: EngagementDefinition, changed: EngagementDefinition
) -> None:
    options = {"change_code": "CR-001", "reason": "-", "effective_on": dt.date(2026, 4, 1)}
    other = changed.model_copy(update={"contract_number": "ML-2026-999"})

    with pytest.raises(InvalidInput) as same:
        supplementary_document(spec, spec, "en", **options)
    with pytest.raises(InvalidInput) as mismatch:
        supplementary_document(spec, other, "en", **options)

    assert same.value.errors[0].key == "engagement.document.no_changes"
    assert mismatch.value.errors[0].key == "engagement.document.contract_mismatch"
