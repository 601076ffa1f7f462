"""Tenants and API keys (``memberlab.core.tenants``).

A key is a random secret shown once; the store keeps only its SHA-256, so a copy of the
database does not let anyone call the API.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from conftest import FixedClock
from factories import make_tenant
from memberlab.core import tenants
from memberlab.core.access import TENANT_ROLES, Principal, Role
from memberlab.core.app_state import AppState
from memberlab.core.db import Database
from memberlab.core.errors import Conflict, InvalidInput, Unauthenticated
from memberlab.core.models import Tenant


def new_tenant(database: Database, clock: FixedClock, slug: str = "acme") -> int:
    with database.session(platform=True) as session:
        return tenants.create_tenant(
            session, slug=slug, name_zh="艾克米", name_en="Acme", now=clock()
        ).id


def issue(
    database: Database, clock: FixedClock, role: Role, tenant_id: int | None, name: str = ""
) -> tenants.IssuedKey:
    with database.session(platform=True) as session:
        return tenants.create_key(session, role=role, tenant_id=tenant_id, name=name, now=clock())


def authenticate(database: Database, secret: str) -> Principal:
    with database.session() as session:
        return tenants.authenticate(session, secret)


# --- keys -----------------------------------------------------------------------------------------


def test_only_the_sha256_of_a_key_is_stored(database: Database, clock: FixedClock) -> None:
    tenant_id = new_tenant(database, clock)
    issued = issue(database, clock, Role.ANALYST, tenant_id)

    row = database.bind.execute(
        text("SELECT * FROM api_keys WHERE id = :id"), {"id": issued.id}
    ).one()

    assert issued.secret.startswith("ml_")
    assert len(issued.secret) > 40
    assert row.key_hash == hashlib.sha256(issued.secret.encode()).hexdigest()
    assert all(issued.secret not in str(value) for value in row)
    assert row.prefix == issued.prefix == issued.secret[:9]  # enough to recognise, not to use


def test_every_key_is_different(database: Database, clock: FixedClock) -> None:
    tenant_id = new_tenant(database, clock)
    secrets = {issue(database, clock, Role.APP, tenant_id).secret for _ in range(5)}

    assert len(secrets) == 5


def test_a_key_is_shown_once_and_never_listed(state: AppState, client: TestClient) -> None:
    acme = make_tenant(state)
    created = client.post("/api/v1/keys", json={"role": "analyst"}, headers=acme.headers())
    secret = created.json()["secret"]

    listed = client.get("/api/v1/keys", headers=acme.headers())

    assert created.status_code == 201
    assert secret.startswith("ml_")
    assert listed.status_code == 200
    assert secret not in listed.text
    assert "secret" not in listed.text
    assert "key_hash" not in listed.text
    with state.database.session() as session:
        views = tenants.list_keys(session, tenant_id=acme.tenant.id)
    assert [k.role for k in views] == ["admin", "operator", "analyst", "app", "analyst"]


@pytest.mark.parametrize("role", TENANT_ROLES)
def test_a_key_authenticates_as_its_role_and_tenant(
    database: Database, clock: FixedClock, role: Role
) -> None:
    tenant_id = new_tenant(database, clock)
    new_tenant(database, clock, slug="other")
    issued = issue(database, clock, role, tenant_id, name="till 3")

    principal = authenticate(database, issued.secret)

    with database.session(platform=True) as session:
        stamp = session.get(Tenant, tenant_id).config_stamp
    assert principal == Principal(
        key_id=issued.id,
        role=role,
        tenant_id=tenant_id,
        name="till 3",
        timezone="Asia/Shanghai",
        config_stamp=stamp,
    )
    assert stamp
    assert principal.actor == f"key:{issued.id}"


def test_a_platform_key_has_no_tenant(database: Database, clock: FixedClock) -> None:
    issued = issue(database, clock, Role.PLATFORM, None)

    principal = authenticate(database, issued.secret)

    assert issued.tenant_id is None
    assert principal.role is Role.PLATFORM
    assert principal.tenant_id is None


def test_a_platform_key_may_not_belong_to_a_tenant(database: Database, clock: FixedClock) -> None:
    tenant_id = new_tenant(database, clock)

    with pytest.raises(InvalidInput) as caught:
        issue(database, clock, Role.PLATFORM, tenant_id)

    assert caught.value.message("en") == "A platform key belongs to no tenant."
    assert caught.value.message("zh-CN") == "平台密钥不属于任何租户。"


@pytest.mark.parametrize("role", TENANT_ROLES)
def test_a_tenant_role_key_needs_a_tenant(
    database: Database, clock: FixedClock, role: Role
) -> None:
    with pytest.raises(InvalidInput) as caught:
        issue(database, clock, role, None)

    assert caught.value.status == 422
    assert caught.value.message("en") == (
        f"A key with role {role.value} must belong to a tenant (--tenant)."
    )
    assert (
        caught.value.message("zh-CN") == f"角色为 {role.value} 的密钥必须属于某个租户（--tenant）。"
    )
    with database.session() as session:
        assert tenants.list_keys(session, tenant_id=None) == []


@pytest.mark.parametrize(
    "secret", ["ml_" + "x" * 43, "not-a-memberlab-key", ""], ids=["unknown", "foreign", "empty"]
)
def test_an_unknown_key_is_refused(database: Database, secret: str) -> None:
    with pytest.raises(Unauthenticated) as caught:
        authenticate(database, secret)

    assert caught.value.status == 401
    assert caught.value.message("en") == "The API key is unknown."
    assert caught.value.message("zh-CN") == "API 密钥不存在。"


def test_a_revoked_key_is_refused(database: Database, clock: FixedClock) -> None:
    tenant_id = new_tenant(database, clock)
    issued = issue(database, clock, Role.OPERATOR, tenant_id)
    kept = issue(database, clock, Role.OPERATOR, tenant_id)

    with database.session() as session:
        revoked = tenants.revoke_key(session, key_id=issued.id, tenant_id=tenant_id, now=clock())
    assert revoked.revoked_at == clock()

    with pytest.raises(Unauthenticated) as caught:
        authenticate(database, issued.secret)
    assert caught.value.message("en") == "The API key has been revoked."
    assert caught.value.message("zh-CN") == "API 密钥已被吊销。"
    assert authenticate(database, kept.secret).key_id == kept.id


def test_revoking_twice_keeps_the_first_revocation(database: Database, clock: FixedClock) -> None:
    tenant_id = new_tenant(database, clock)
    issued = issue(database, clock, Role.APP, tenant_id)
    first = clock()
    with database.session() as session:
        tenants.revoke_key(session, key_id=issued.id, tenant_id=tenant_id, now=first)

    clock.now = first + timedelta(days=3)
    with database.session() as session:
        again = tenants.revoke_key(session, key_id=issued.id, tenant_id=tenant_id, now=clock())

    assert again.revoked_at == first


def test_a_key_of_another_tenant_cannot_be_revoked(database: Database, clock: FixedClock) -> None:
    mine = new_tenant(database, clock)
    theirs = new_tenant(database, clock, slug="theirs")
    their_key = issue(database, clock, Role.ADMIN, theirs)
    platform_key = issue(database, clock, Role.PLATFORM, None)

    for key_id, tenant_id in ((their_key.id, mine), (platform_key.id, mine), (their_key.id, None)):
        with pytest.raises(tenants.ApiKeyNotFound) as caught, database.session() as session:
            tenants.revoke_key(session, key_id=key_id, tenant_id=tenant_id, now=clock())
        assert caught.value.message("en") == f"No API key {key_id}."

    assert authenticate(database, their_key.secret).tenant_id == theirs
    assert authenticate(database, platform_key.secret).role is Role.PLATFORM


# --- tenants --------------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", ["ab", "acme", "tea-house-2", "0a", "a" * 63])
def test_a_valid_slug_is_accepted(database: Database, clock: FixedClock, slug: str) -> None:
    tenant_id = new_tenant(database, clock, slug=slug)

    with database.session() as session:
        assert tenants.get_tenant(session, slug).id == tenant_id


@pytest.mark.parametrize(
    "slug", ["a", "", "Acme", "-acme", "acme_co", "tea house", "茶语", "a" * 64, "acme\n"]
)
def test_a_bad_slug_is_refused(database: Database, clock: FixedClock, slug: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        new_tenant(database, clock, slug=slug)

    assert caught.value.message("en") == (
        f"Slug {slug!r} is not valid: use 2-63 lower-case letters, digits and hyphens."
    )
    assert caught.value.message("zh-CN") == (
        f"标识 {slug!r} 无效：请使用 2 到 63 个小写字母、数字或连字符。"
    )
    with database.session() as session:
        assert tenants.list_tenants(session) == []


def test_a_duplicate_slug_is_a_conflict(database: Database, clock: FixedClock) -> None:
    new_tenant(database, clock)

    with pytest.raises(Conflict) as caught:
        new_tenant(database, clock)

    assert caught.value.status == 409
    assert caught.value.message("en") == "A tenant with slug acme already exists."
    assert caught.value.message("zh-CN") == "标识为 acme 的租户已存在。"
    with database.session() as session:
        assert [t.slug for t in tenants.list_tenants(session)] == ["acme"]


def test_a_tenant_is_found_by_id_or_slug(database: Database, clock: FixedClock) -> None:
    tenant_id = new_tenant(database, clock)

    with database.session() as session:
        assert tenants.get_tenant(session, tenant_id).slug == "acme"
        assert tenants.get_tenant(session, str(tenant_id)).slug == "acme"
        assert tenants.get_tenant(session, "acme").id == tenant_id
        with pytest.raises(tenants.TenantNotFound) as caught:
            tenants.get_tenant(session, "nobody")
    assert caught.value.message("en") == "No tenant nobody."
    assert caught.value.message("zh-CN") == "租户 nobody 不存在。"


def test_a_slug_made_of_digits_names_its_own_tenant(database: Database, clock: FixedClock) -> None:
    """``--tenant 0001`` means the tenant whose slug is 0001, not the tenant with id 1."""
    first = new_tenant(database, clock)
    digits = new_tenant(database, clock, slug=f"{first:04d}")

    with database.session() as session:
        assert tenants.get_tenant(session, f"{first:04d}").id == digits
        assert tenants.get_tenant(session, str(first)).id == first
        assert tenants.get_tenant(session, first).id == first


def test_a_new_tenant_has_the_chinese_defaults(database: Database, clock: FixedClock) -> None:
    with database.session(platform=True) as session:
        tenant = tenants.create_tenant(session, slug="acme", name_zh="艾", name_en="A", now=clock())

    assert (tenant.timezone, tenant.currency, tenant.language) == ("Asia/Shanghai", "CNY", "zh-CN")
    assert tenant.created_at == clock()
