"""CLI: ``memberlab db``, ``memberlab tenant``, ``memberlab key``."""

from __future__ import annotations

import typer

from memberlab.core import migrate
from memberlab.core import tenants as tenant_service
from memberlab.core.access import Role
from memberlab.core.cli_support import (
    JsonOption,
    TenantOption,
    actor,
    app_state,
    print_json,
    print_table,
    say,
    unit_of_work,
)
from memberlab.core.errors import InvalidInput
from memberlab.core.i18n import t
from memberlab.core.schemas import Key, Tenant

db_app = typer.Typer(help="The store: migrations. / 数据库：迁移。", no_args_is_help=True)
tenant_app = typer.Typer(
    help="Client companies (tenants). / 客户企业（租户）。", no_args_is_help=True
)
key_app = typer.Typer(help="API keys. / API 密钥。", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the schema to the latest version. / 创建或升级数据库结构。"""
    state = app_state()
    revision = migrate.upgrade(state.database.bind)
    say("core.cli.db_upgraded", revision=revision, url=state.database.engine.url.render_as_string())


@tenant_app.command("create")
def tenant_create(
    slug: str = typer.Argument(..., help="Short id, e.g. teahouse. / 短标识。"),
    name_zh: str = typer.Option(..., "--name-zh", help="Chinese name. / 中文名称。"),
    name_en: str = typer.Option(..., "--name-en", help="English name. / 英文名称。"),
    timezone: str = typer.Option("Asia/Shanghai", help="IANA time zone. / 时区。"),
    currency: str = typer.Option("CNY", help="ISO 4217 currency. / 货币。"),
    as_json: bool = JsonOption,
) -> None:
    """Create a tenant. / 创建租户。"""
    with unit_of_work(platform=True) as unit:
        tenant = tenant_service.create_tenant(
            unit.session,
            slug=slug,
            name_zh=name_zh,
            name_en=name_en,
            timezone=timezone,
            currency=currency,
            now=unit.now,
        )
        view = Tenant.model_validate(tenant)
    if as_json:
        print_json(view)
    else:
        say("core.cli.tenant_created", slug=view.slug, id=view.id)


@tenant_app.command("list")
def tenant_list(as_json: bool = JsonOption) -> None:
    """List tenants. / 列出租户。"""
    with unit_of_work(platform=True) as unit:
        views = [Tenant.model_validate(x) for x in tenant_service.list_tenants(unit.session)]
    if as_json:
        print_json(views)
        return
    print_table(
        [
            t(f"core.cli.column.{c}")
            for c in ("id", "slug", "name_zh", "name_en", "timezone", "currency")
        ],
        [[v.id, v.slug, v.name_zh, v.name_en, v.timezone, v.currency] for v in views],
    )


@key_app.command("create")
def key_create(
    role: str = typer.Option(..., "--role", "-r", help="platform, admin, operator, analyst, app"),
    tenant: str | None = TenantOption,
    name: str = typer.Option("", help="What the key is for. / 用途。"),
    as_json: bool = JsonOption,
) -> None:
    """Create an API key; it is printed once. / 创建 API 密钥（只显示一次）。"""
    try:
        chosen = Role(role)
    except ValueError:
        raise InvalidInput(
            "core.key.bad_role", role=role, choices=", ".join(r.value for r in Role)
        ) from None
    if chosen is Role.PLATFORM:
        if tenant:
            raise InvalidInput("core.key.platform_has_no_tenant")
        with unit_of_work(platform=True) as unit:
            issued = tenant_service.create_key(
                unit.session,
                role=chosen,
                tenant_id=None,
                name=name,
                created_by=actor(),
                now=unit.now,
            )
    else:
        with unit_of_work(tenant) as unit:
            issued = tenant_service.create_key(
                unit.session,
                role=chosen,
                tenant_id=unit.tenant_id,
                name=name,
                created_by=actor(),
                now=unit.now,
            )
    if as_json:
        print_json(
            {
                "id": issued.id,
                "role": issued.role.value,
                "tenant_id": issued.tenant_id,
                "secret": issued.secret,
            }
        )
        return
    scope = t("core.cli.platform") if issued.tenant_id is None else f"tenant {issued.tenant_id}"
    say("core.cli.key_created", id=issued.id, scope=scope, role=issued.role.value)
    typer.echo(issued.secret)
    say("core.cli.key_shown_once")


@key_app.command("revoke")
def key_revoke(
    key_id: int = typer.Argument(..., help="Key id. / 密钥编号。"),
    tenant: str | None = TenantOption,
    platform: bool = typer.Option(False, "--platform", help="Revoke a platform key."),
) -> None:
    """Revoke an API key. / 吊销 API 密钥。"""
    with unit_of_work(tenant, platform=platform) as unit:
        tenant_service.revoke_key(
            unit.session, key_id=key_id, tenant_id=unit.tenant_id, now=unit.now
        )
    say("core.cli.key_revoked", id=key_id)


@key_app.command("list")
def key_list(
    tenant: str | None = TenantOption,
    platform: bool = typer.Option(False, "--platform", help="List platform keys."),
    as_json: bool = JsonOption,
) -> None:
    """List API keys (never their secrets). / 列出 API 密钥。"""
    with unit_of_work(tenant, platform=platform) as unit:
        views = [
            Key.model_validate(k)
            for k in tenant_service.list_keys(unit.session, tenant_id=unit.tenant_id)
        ]
    if as_json:
        print_json(views)
        return
    print_table(
        [t(f"core.cli.column.{c}") for c in ("id", "role", "name", "prefix", "created", "revoked")],
        [[v.id, v.role, v.name, v.prefix + "…", v.created_at, v.revoked_at or ""] for v in views],
    )
