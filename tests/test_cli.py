"""The ``memberlab`` command, against the test database.

Commands run through Typer's ``CliRunner`` on ``memberlab.cli.app`` with the store of the test
(``use_state``). With the installed Typer, ``Result.stdout`` and ``Result.stderr`` are kept
apart (``Result.output`` mixes them as a terminal shows them).

Domain errors are turned into a message and exit code 1 by ``memberlab.cli.main``, the
function the ``memberlab`` console script runs, so failures are run through ``main`` too.
Each run happens in a copy of the current context, so ``--lang`` does not leak into other tests.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, or_, select

from cli_runner import Cli, running_cli
from memberlab.core import tenants
from memberlab.core.access import Role
from memberlab.core.app_state import AppState
from memberlab.core.cli_support import use_state
from memberlab.core.errors import Unauthenticated
from memberlab.core.models import Tenant
from memberlab.datasets.demo import DEMO_SLUG, sample_program_text
from memberlab.experience.models import FollowUpCase, Survey, SurveyResponse
from memberlab.ledger.models import MemberState, Order, OrderReturn
from memberlab.members.models import Member
from memberlab.programs.models import ProgramActivation, ProgramVersion

BROKEN = Path(__file__).parent / "programs" / "broken"
ROLES = "platform, admin, operator, analyst, app"


@pytest.fixture
def cli(state: AppState, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    with running_cli(state, monkeypatch) as runner:
        yield runner


@pytest.fixture
def acme(cli: Cli) -> int:
    cli.ok("tenant", "create", "acme", "--name-zh", "艾克米", "--name-en", "Acme")
    with cli.state.database.session() as session:
        return tenants.get_tenant(session, "acme").id


def sample_file(tmp_path: Path, name: str = "teahouse", text: str | None = None) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text if text is not None else sample_program_text(name), encoding="utf-8")
    return path


def authenticate(state: AppState, secret: str) -> Any:
    with state.database.session() as session:
        return tenants.authenticate(session, secret)


def secrets_in(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("ml_")]


# --- program validate -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "tiers"), [("teahouse", 4), ("department_store", 4)])
def test_validate_accepts_both_samples(cli: Cli, tmp_path: Path, name: str, tiers: int) -> None:
    path = sample_file(tmp_path, name)

    zh = cli.ok("program", "validate", path)
    en = cli.ok("--lang", "en", "program", "validate", path)
    as_json = cli.json("program", "validate", path)

    assert zh.strip() == f"{path}：有效（{name}，{tiers} 个等级）。"
    assert en.strip() == f"{path}: valid ({name}, {tiers} tiers)."
    assert as_json == {"valid": True, "code": name, "tiers": tiers}


@pytest.mark.parametrize(
    ("lang_args", "expected"),
    [
        (
            [],  # zh-CN is the default
            [
                "错误: 会员计划文件无效：",
                "  points.value_per_point: 必须是数字（实际为 free）  (第 6 行)",
                "  tiers[1].threshold: 为必填项  (第 14 行)",
                "  tiers[1].treshold: 未知字段（是否应为 threshold？）  (第 16 行)",
                "  tiers[2].code: 必须是以字母开头、由小写字母、数字和 _ 组成的代码"
                "（实际为 Gold）  (第 17 行)",
            ],
        ),
        (
            ["--lang", "en"],
            [
                "Error: The program file is not valid:",
                "  points.value_per_point: must be a number (got free)  (line 6)",
                "  tiers[1].threshold: is required  (line 14)",
                "  tiers[1].treshold: unknown field (did you mean threshold?)  (line 16)",
                "  tiers[2].code: must be a code of lower-case letters, digits and _ starting "
                "with a letter (got Gold)  (line 17)",
            ],
        ),
    ],
)
def test_validate_names_every_problem_of_a_broken_file(
    cli: Cli, lang_args: list[str], expected: list[str]
) -> None:
    exited = cli.main(*lang_args, "program", "validate", BROKEN / "several_mistakes.yaml")

    assert exited.exit_code == 1
    assert exited.stderr.splitlines() == expected
    assert exited.stdout == ""


def test_validate_json_reports_a_broken_file_on_stdout(cli: Cli) -> None:
    result = cli.invoke(
        "--lang", "en", "program", "validate", BROKEN / "several_mistakes.yaml", "--json"
    )

    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert [(e["field"], e["line"]) for e in report["errors"]] == [
        ("points.value_per_point", 6),
        ("tiers[1].threshold", 14),
        ("tiers[1].treshold", 16),
        ("tiers[2].code", 17),
    ]
    assert report["errors"][0]["message"] == "must be a number (got free)"


@pytest.mark.parametrize(
    ("lang_args", "expected"),
    [
        ([], "{path}: 无法读取 {path}：No such file or directory"),
        (["--lang", "en"], "{path}: Cannot read {path}: No such file or directory"),
    ],
)
def test_validate_a_missing_file(
    cli: Cli, tmp_path: Path, lang_args: list[str], expected: str
) -> None:
    path = tmp_path / "nowhere.yaml"

    stderr = cli.fails(*lang_args, "program", "validate", path)

    assert stderr.splitlines()[1].strip() == expected.format(path=path)


def test_validate_a_file_that_is_not_utf8(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "gbk.yaml"
    path.write_bytes(sample_program_text("teahouse").encode("gbk"))

    stderr = cli.fails("--lang", "en", "program", "validate", path)

    assert stderr.splitlines()[1].strip() == f"{path}: {path} is not UTF-8 text."


# --- tenants and keys -----------------------------------------------------------------------------


def test_tenant_create_and_list(cli: Cli, acme: int) -> None:
    listed = cli.json("tenant", "list")

    assert [(t["id"], t["slug"], t["name_zh"], t["timezone"]) for t in listed] == [
        (acme, "acme", "艾克米", "Asia/Shanghai")
    ]
    table = cli.ok("tenant", "list")
    assert all(word in table for word in ("租户", "时区", "币种", "艾克米"))
    assert "Time zone" in cli.ok("--lang", "en", "tenant", "list")


def test_key_and_program_lists_have_headers_in_both_languages(
    cli: Cli, acme: int, tmp_path: Path
) -> None:
    cli.ok("key", "create", "--role", "analyst", "--name", "报表")
    cli.ok("program", "load", sample_file(tmp_path))

    assert all(word in cli.ok("key", "list") for word in ("角色", "前缀", "报表"))
    assert all(word in cli.ok("--lang", "en", "key", "list") for word in ("Role", "Prefix"))
    assert all(word in cli.ok("program", "list") for word in ("会员计划", "版本", "teahouse"))
    assert all(word in cli.ok("--lang", "en", "program", "list") for word in ("Program", "Version"))


def test_tenant_create_says_what_it_did(cli: Cli) -> None:
    out = cli.ok(
        "--lang", "en", "tenant", "create", "teahouse", "--name-zh", "茶", "--name-en", "T"
    )

    assert out.startswith("Tenant teahouse created (id ")


def test_a_duplicate_tenant_is_refused(cli: Cli, acme: int) -> None:
    stderr = cli.fails("tenant", "create", "acme", "--name-zh", "重复", "--name-en", "Again")

    assert stderr.strip() == "错误: 标识为 acme 的租户已存在。"
    assert cli.count(Tenant) == 1


def test_key_create_prints_the_secret_once(cli: Cli, acme: int) -> None:
    out = cli.ok("--lang", "en", "key", "create", "--role", "analyst", "--tenant", "acme")

    [secret] = secrets_in(out)
    assert out.count(secret) == 1
    assert "This key is shown only once. Store it now." in out
    principal = authenticate(cli.state, secret)
    assert (principal.role, principal.tenant_id) == (Role.ANALYST, acme)
    listed = cli.ok("key", "list", "--tenant", "acme", "--json")
    assert secret not in listed
    assert [k["role"] for k in json.loads(listed)] == ["analyst"]


def test_key_create_json(cli: Cli, acme: int) -> None:
    issued = cli.json("key", "create", "--role", "app")  # the only tenant

    assert (issued["role"], issued["tenant_id"]) == ("app", acme)
    assert authenticate(cli.state, issued["secret"]).key_id == issued["id"]


def test_a_platform_key_belongs_to_no_tenant(cli: Cli, acme: int) -> None:
    issued = cli.json("key", "create", "--role", "platform")

    assert issued["tenant_id"] is None
    assert authenticate(cli.state, issued["secret"]).role is Role.PLATFORM
    assert cli.fails("key", "create", "--role", "platform", "--tenant", "acme").strip() == (
        "错误: 平台密钥不属于任何租户。"
    )


def test_key_revoke(cli: Cli, acme: int) -> None:
    issued = cli.json("key", "create", "--role", "operator", "--tenant", "acme")

    out = cli.ok("key", "revoke", str(issued["id"]), "--tenant", "acme")

    assert out.strip() == f"密钥 {issued['id']} 已吊销。"
    with pytest.raises(Unauthenticated, match="revoked"):
        authenticate(cli.state, issued["secret"])
    [listed] = cli.json("key", "list", "--tenant", "acme")
    assert listed["revoked_at"] == "2026-11-25T08:00:00Z"


@pytest.mark.parametrize(
    ("lang_args", "message"),
    [
        ([], f"错误: 未知角色 bogus；可选：{ROLES}。"),
        (["--lang", "en"], f"Error: Unknown role bogus; choose one of: {ROLES}."),
    ],
)
def test_key_create_with_an_unknown_role_fails(
    cli: Cli, acme: int, lang_args: list[str], message: str
) -> None:
    exited = cli.main(*lang_args, "key", "create", "--role", "bogus", "--tenant", "acme")

    assert exited.exit_code == 1
    assert exited.stderr.strip() == message
    assert secrets_in(exited.stdout) == []
    with cli.state.database.session() as session:
        assert tenants.list_keys(session, tenant_id=acme) == []


def test_commands_need_a_tenant_when_there_are_several(cli: Cli, acme: int) -> None:
    cli.ok("tenant", "create", "beta", "--name-zh", "贝塔", "--name-en", "Beta")

    assert (
        cli.fails("member", "search").strip()
        == "错误: 请用 --tenant 指定租户（当前共有 2 个租户）。"
    )
    assert cli.fails("--lang", "en", "key", "create", "--role", "app").strip() == (
        "Error: Say which tenant with --tenant (the store has 2 tenants)."
    )
    assert cli.fails("member", "search", "--tenant", "gamma").strip() == "错误: 租户 gamma 不存在。"


def test_the_default_tenant_is_the_one_the_settings_name(cli: Cli, acme: int) -> None:
    cli.ok("tenant", "create", "beta", "--name-zh", "贝塔", "--name-en", "Beta")
    state = cli.state
    settings = state.settings.model_copy(update={"tenant": "beta"})
    use_state(AppState(settings, state.database, state.vault, state.clock))

    cli.ok("member", "create", "--member-id", "B-1")

    assert [m["member_id"] for m in cli.json("member", "search", "--tenant", "beta")] == ["B-1"]
    assert cli.json("member", "search", "--tenant", "acme") == []


# --- programs -------------------------------------------------------------------------------------


def test_program_load_activate_show_and_diff(cli: Cli, acme: int, tmp_path: Path) -> None:
    teahouse = sample_file(tmp_path)

    loaded = cli.ok("program", "load", teahouse, "--activate")
    again = cli.ok("--lang", "en", "program", "load", teahouse)
    shown = cli.json("program", "show")

    sha = shown["sha256"][:12]
    assert loaded.splitlines() == [
        f"已载入 teahouse，版本 1（{sha}）。",
        "teahouse 的版本 1 自 2026-11-25T08:00:00+00:00 起生效。",
    ]
    assert again.strip() == "teahouse is unchanged: the same content is version 1."
    assert (shown["code"], shown["version"]) == ("teahouse", 1)
    assert shown["definition"]["tiers"][2]["threshold"] == "2500"
    assert cli.ok("program", "show", "teahouse@1") == sample_program_text("teahouse") + "\n"

    changed = sample_file(
        tmp_path, "v2", sample_program_text("teahouse").replace("per_day: 2000", "per_day: 3000")
    )
    cli.ok("program", "load", changed)
    changes = cli.json("program", "diff", "teahouse@1", "teahouse@2")
    table = cli.ok("--lang", "en", "program", "diff", "teahouse@1", "teahouse@2")

    assert changes == [{"path": "earning.caps.per_day", "before": 2000, "after": 3000}]
    assert "earning.caps.per_day" in table
    assert "Field" in table
    assert cli.ok("program", "diff", "teahouse@2", "teahouse@2").strip() == ("两个版本完全相同。")
    assert cli.json("program", "show")["version"] == 1  # loading does not activate
    assert [(v["code"], v["version"]) for v in cli.json("program", "list")] == [
        ("teahouse", 1),
        ("teahouse", 2),
    ]


def test_program_activate_from_a_date(cli: Cli, acme: int, tmp_path: Path) -> None:
    cli.ok("program", "load", sample_file(tmp_path), "--activate")
    cli.ok("program", "load", sample_file(tmp_path, "department_store"))

    out = cli.ok(
        "--lang", "en", "program", "activate", "department_store@1",
        "--effective-from", "2026-12-01T00:00:00",
    )  # fmt: skip

    assert out.strip() == (
        "Version 1 of department_store is active from 2026-12-01T00:00:00+08:00."
    )
    assert cli.json("program", "show")["code"] == "teahouse"
    with cli.state.database.session(tenant_id=acme) as session:
        froms = session.scalars(
            select(ProgramActivation.effective_from).order_by(ProgramActivation.id)
        ).all()
    assert [f.isoformat() for f in froms] == [
        "2026-11-25T08:00:00+00:00",
        "2026-11-30T16:00:00+00:00",
    ]


def test_a_date_without_a_zone_is_in_the_tenants_zone(cli: Cli, tmp_path: Path) -> None:
    cli.ok("tenant", "create", "london", "--name-zh", "伦敦", "--name-en", "London",
           "--timezone", "Europe/London")  # fmt: skip

    out = cli.ok(
        "--lang", "en", "program", "load", sample_file(tmp_path), "--activate",
        "--effective-from", "2027-07-01T00:00:00",
    )  # fmt: skip

    assert out.splitlines()[1] == "Version 1 of teahouse is active from 2027-07-01T00:00:00+01:00."


def test_program_activate_before_the_one_in_force_fails(
    cli: Cli, acme: int, tmp_path: Path
) -> None:
    cli.ok("program", "load", sample_file(tmp_path), "--activate")

    stderr = cli.fails(
        "--lang", "en", "program", "activate", "teahouse@1", "--effective-from", "2026-01-01"
    )

    assert stderr.strip() == (
        "Error: The effective date 2026-01-01T00:00:00+08:00 is before the active version's "
        "(2026-11-25T08:00:00+00:00)."
    )
    assert cli.count(ProgramActivation, acme) == 1


def test_program_load_of_a_broken_file_stores_nothing(cli: Cli, acme: int) -> None:
    stderr = cli.fails("--lang", "en", "program", "load", BROKEN / "several_mistakes.yaml")

    assert stderr.splitlines()[0] == "Error: The program file is not valid:"
    assert len(stderr.splitlines()) == 5
    assert cli.count(ProgramVersion, acme) == 0


def test_program_load_with_a_bad_date_stores_nothing(cli: Cli, acme: int, tmp_path: Path) -> None:
    stderr = cli.fails(
        "--lang", "en", "program", "load", sample_file(tmp_path), "--activate",
        "--effective-from", "soon",
    )  # fmt: skip

    assert stderr.splitlines()[1].strip() == (
        "--effective-from: must be a date and time such as 2026-11-25T14:30:00+08:00 (got soon)"
    )
    assert cli.count(ProgramVersion, acme) == 0


def test_program_show_without_an_active_program_fails(cli: Cli, acme: int) -> None:
    assert cli.fails("program", "show").strip() == "错误: 该租户尚未启用任何会员计划。"


# --- members --------------------------------------------------------------------------------------


def test_member_create_search_show_and_erase(cli: Cli, acme: int) -> None:
    created = cli.ok(
        "member", "create", "--member-id", "M-001", "--mobile", "138 1234 5678",
        "--name", "张小明", "--birthday", "1990-05-17", "--tag", "vip", "--tag", "tea",
    )  # fmt: skip
    cli.ok("member", "create", "--member-id", "M-002", "--mobile", "13900001111")

    assert created.strip() == "会员 M-001 已入会。"
    found = cli.json("member", "search", "--tag", "vip")
    assert [(m["member_id"], m["mobile"], m["name"], m["birthday"]) for m in found] == [
        ("M-001", "138****5678", "张**", None)
    ]
    by_mobile = cli.json("member", "search", "--mobile", "+86-138-1234-5678")
    assert [m["member_id"] for m in by_mobile] == ["M-001"]
    assert [m["member_id"] for m in cli.json("member", "search")] == ["M-001", "M-002"]
    table = cli.ok("--lang", "en", "member", "search")
    assert "138****5678" in table
    assert "13812345678" not in table
    assert "张小明" not in table

    shown = cli.json("member", "show", "M-001")
    assert (shown["mobile"], shown["name"], shown["birthday"]) == (
        "+8613812345678",
        "张小明",
        "1990-05-17",
    )
    assert shown["tags"] == ["tea", "vip"]

    erased = cli.ok("member", "erase", "M-001", "--yes")
    assert erased.strip() == "会员 M-001 的个人信息已删除，会员已关闭。"
    after = cli.json("member", "show", "M-001")
    assert (after["erased"], after["status"], after["mobile"], after["name"]) == (
        True,
        "closed",
        None,
        None,
    )
    assert cli.json("member", "search", "--tag", "vip") == []


def test_member_show_and_liability_speak_the_language_asked(
    cli: Cli, acme: int, tmp_path: Path
) -> None:
    cli.ok("program", "load", sample_file(tmp_path), "--activate")
    cli.ok("member", "create", "--member-id", "M-001")

    shown = cli.ok("member", "show", "M-001")  # zh-CN, the default
    for label in ("会员号", "入会时间", "等级", "可用积分", "下一等级", "还差", "批次", "关联单号"):
        assert label in shown
    assert "青叶会员" in shown  # the next tier by its name, not its code
    assert "green_leaf" not in shown
    shown_en = cli.ok("--lang", "en", "member", "show", "M-001")
    for label in ("Member", "Enrolled", "Tier", "Available", "Next tier", "To go", "Reference"):
        assert label in shown_en
    assert "Green Leaf" in shown_en
    assert cli.json("member", "show", "M-001")["points"]["next_tier_name"] == "青叶会员"

    assert "退货扣回" in cli.ok("liability")
    liability_en = cli.ok("--lang", "en", "liability")
    assert all(word in liability_en for word in ("Expires", "Issued", "Redeemed", "Adjusted"))


def test_member_erase_asks_first(cli: Cli, acme: int) -> None:
    cli.ok("member", "create", "--member-id", "M-001", "--name", "张小明")

    refused = cli.invoke("member", "erase", "M-001", input="n\n")

    assert refused.exit_code == 1
    assert "erase M-001?" in refused.stdout
    assert cli.json("member", "show", "M-001")["name"] == "张小明"


def test_member_update(cli: Cli, acme: int) -> None:
    cli.ok("member", "create", "--member-id", "M-001", "--mobile", "13812345678")

    out = cli.ok(
        "--lang", "en", "member", "update", "M-001", "--city", "杭州", "--status", "frozen"
    )

    assert out.strip() == "Member M-001 updated."
    shown = cli.json("member", "show", "M-001")
    assert (shown["city"], shown["status"], shown["mobile"]) == ("杭州", "frozen", "+8613812345678")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--mobile", "12345"],
            [
                "错误: 输入无效：",
                "  mobile: 不是有效的手机号（中国大陆号码，或带 +国家代码的国际号码）",
            ],
        ),
        (
            ["--birthday", "1990-02-30"],
            ["错误: 输入无效：", "  birthday: 必须是日期，如 2026-11-25（实际为 1990-02-30）"],
        ),
        (
            ["--gender", "f"],
            [
                "错误: 输入无效：",
                "  gender: 必须是以下之一：female, male, other, unknown（实际为 f）",
            ],
        ),
        (
            ["--mobile", "+86 138 1234 5678"],
            ["错误: 已有其他会员使用了以下信息：", "  mobile: 已被会员 M-001 使用"],
        ),
    ],
)
def test_member_create_with_bad_input_fails_and_writes_nothing(
    cli: Cli, acme: int, args: list[str], expected: list[str]
) -> None:
    cli.ok("member", "create", "--member-id", "M-001", "--mobile", "13812345678")

    stderr = cli.fails("member", "create", "--member-id", "M-002", *args)

    assert stderr.splitlines() == expected
    assert [m["member_id"] for m in cli.json("member", "search")] == ["M-001"]


def test_member_show_of_an_unknown_member_fails(cli: Cli, acme: int) -> None:
    assert cli.fails("member", "show", "NOPE").strip() == "错误: 会员 NOPE 不存在。"
    assert cli.fails("--lang", "en", "member", "show", "NOPE").strip() == "Error: No member NOPE."


def test_the_typer_app_itself_reports_domain_errors(cli: Cli, acme: int) -> None:
    result = cli.invoke("member", "show", "NOPE")

    assert result.exit_code == 1
    assert result.stderr.strip() == "错误: 会员 NOPE 不存在。"


def test_an_unknown_language_is_a_usage_error(cli: Cli) -> None:
    result = cli.invoke("--lang", "fr", "tenant", "list")

    assert result.exit_code == 2
    assert "--lang: zh | en" in result.stderr


# --- demo -----------------------------------------------------------------------------------------


def test_demo_builds_the_demo_tenant_and_prints_an_admin_key(cli: Cli) -> None:
    out = cli.ok("demo", "--size", "tiny", "--no-serve")

    [secret] = secrets_in(out)
    assert out.splitlines()[0] == "演示租户 demo-teahouse 已就绪，会员计划 teahouse（版本 1）。"
    principal = authenticate(cli.state, secret)
    with cli.state.database.session() as session:
        tenant = tenants.get_tenant(session, DEMO_SLUG)
    assert (principal.role, principal.tenant_id) == (Role.ADMIN, tenant.id)
    shown = cli.json("program", "show", "--tenant", DEMO_SLUG)
    assert (shown["code"], shown["version"]) == ("teahouse", 1)


def test_demo_twice_keeps_one_tenant_and_one_program_version(cli: Cli) -> None:
    first = secrets_in(cli.ok("demo", "--size", "tiny", "--no-serve"))
    second_run = cli.ok("--lang", "en", "demo", "--size", "tiny", "--no-serve")
    second = secrets_in(second_run)

    with cli.state.database.session() as session:
        tenant_id = tenants.get_tenant(session, DEMO_SLUG).id
    assert cli.count(Tenant) == 1
    assert cli.count(ProgramVersion, tenant_id) == 1
    assert cli.count(ProgramActivation, tenant_id) == 1
    assert first != second
    for secret in first + second:
        assert authenticate(cli.state, secret).tenant_id == tenant_id
    # the world's files are reused and every row is already in the store
    assert "Members: 0 loaded, 300 already there, 0 rejected." in second_run
    assert "Purchases and returns: 0 loaded," in second_run


def test_demo_imports_the_whole_world_into_the_store(cli: Cli) -> None:
    """Every member, order and response of the generated world is in the store, and each
    member's state is current (brought up to now by the import)."""
    cli.ok("demo", "--size", "tiny", "--seed", "3", "--no-serve")

    folder = cli.state.settings.data_dir / "demo-world" / "300-members-seed-3"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    with cli.state.database.session() as session:
        tenant_id = tenants.get_tenant(session, DEMO_SLUG).id
        orders = session.scalar(select(func.count()).select_from(Order))
        returns = session.scalar(select(func.count()).select_from(OrderReturn))
        responses = session.scalar(select(func.count()).select_from(SurveyResponse))
        stale = session.scalar(
            select(func.count())
            .select_from(MemberState)
            .where(MemberState.as_of < cli.state.clock())
        )
    assert cli.count(Member, tenant_id) == manifest["counts"]["members"] == 300
    assert orders == manifest["counts"]["orders"]
    assert returns == manifest["counts"]["returns"]
    assert responses == manifest["counts"]["responses"]
    assert stale == 0


def test_demo_has_active_surveys_and_a_backlog_of_follow_up_cases(cli: Cli) -> None:
    """The sample surveys are active and every detractor or low CSAT of the history's last
    45 days has a case; a second run opens no more."""
    cli.ok("demo", "--size", "tiny", "--seed", "3", "--no-serve")
    again = cli.ok("--lang", "en", "demo", "--size", "tiny", "--seed", "3", "--no-serve")

    with cli.state.database.session() as session:
        tenant_id = tenants.get_tenant(session, DEMO_SLUG).id
    with cli.state.database.session(tenant_id=tenant_id) as session:
        since = cli.state.clock() - timedelta(days=45)
        unhappy = session.scalar(
            select(func.count())
            .select_from(SurveyResponse)
            .where(
                SurveyResponse.responded_at > since,
                or_(SurveyResponse.nps <= 6, SurveyResponse.csat <= 2),
            )
        )
        statuses = sorted(session.scalars(select(Survey.status)))
    assert statuses == ["active", "active", "active"]
    assert unhappy > 0
    assert cli.count(FollowUpCase, tenant_id) == unhappy
    assert f"{unhappy} follow-up cases open" in again


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", "127.0.0.1:{port} is in use by another program or another memberlab serve"),
        ("zh-CN", "127.0.0.1:{port} 已被其他程序或另一个 memberlab serve 占用"),
    ],
)
def test_serving_on_a_port_in_use_says_so_and_starts_nothing(
    cli: Cli, lang: str, expected: str, workers: str
) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        stderr = cli.fails(
            "--lang",
            lang,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            workers,
        )
    assert expected.format(port=port) in stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serving_on_an_address_this_machine_does_not_have_says_so(cli: Cli, workers: str) -> None:
    stderr = cli.fails("--lang", "en", "serve", "--host", "192.0.2.1", "--workers", workers)
    assert "Cannot listen on 192.0.2.1:8000" in stderr
