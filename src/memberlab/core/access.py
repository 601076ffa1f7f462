"""Roles and what each may do.

A key carries one role. Routes and commands ask for a *permission*, never a role, so that
what a role may do is decided here, in one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    PLATFORM = "platform"  # administers tenants; sees no tenant's data
    ADMIN = "admin"  # everything within its tenant
    OPERATOR = "operator"  # members, purchases, redemptions, follow-up cases
    ANALYST = "analyst"  # read, analytics, reports
    APP = "app"  # a client system: post purchases, look up members


TENANT_ROLES = (Role.ADMIN, Role.OPERATOR, Role.ANALYST, Role.APP)


class Permission(StrEnum):
    TENANTS_MANAGE = "tenants:manage"
    KEYS_MANAGE = "keys:manage"
    PROGRAMS_READ = "programs:read"
    PROGRAMS_WRITE = "programs:write"
    MEMBERS_READ = "members:read"
    MEMBERS_WRITE = "members:write"
    MEMBERS_PII = "members:pii"  # see unmasked personal data
    PURCHASES_WRITE = "purchases:write"  # purchases and returns
    POINTS_READ = "points:read"  # balances, history, coupons, the catalog
    POINTS_ADJUST = "points:adjust"  # manual adjustments and bonuses
    REDEMPTIONS_WRITE = "redemptions:write"  # rewards and paid memberships
    JOBS_RUN = "jobs:run"
    REPORTS_READ = "reports:read"  # liability and analytics
    WEBHOOKS_MANAGE = "webhooks:manage"
    MEMBERS_ERASE = "members:erase"
    DATA_IMPORT = "data:import"  # members, transactions, responses, stores, products from files
    EXPERIENCE_MANAGE = "experience:manage"  # touchpoints, surveys, asking rules, invitations
    CASES_WORK = "cases:work"  # follow-up cases: read, assign, note, close with a gesture
    ENGAGEMENTS_MANAGE = "engagements:manage"  # contracts: terms, events, changes, evidence


_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.PLATFORM: frozenset({Permission.TENANTS_MANAGE}),
    Role.ADMIN: frozenset(set(Permission) - {Permission.TENANTS_MANAGE}),
    Role.OPERATOR: frozenset(
        {
            Permission.PROGRAMS_READ,
            Permission.MEMBERS_READ,
            Permission.MEMBERS_WRITE,
            Permission.MEMBERS_PII,
            Permission.PURCHASES_WRITE,
            Permission.POINTS_READ,
            Permission.POINTS_ADJUST,
            Permission.REDEMPTIONS_WRITE,
            Permission.DATA_IMPORT,
            Permission.CASES_WORK,
        }
    ),
    Role.ANALYST: frozenset(
        {
            Permission.PROGRAMS_READ,
            Permission.MEMBERS_READ,
            Permission.POINTS_READ,
            Permission.REPORTS_READ,
        }
    ),
    Role.APP: frozenset(
        {
            Permission.PROGRAMS_READ,
            Permission.MEMBERS_READ,
            Permission.MEMBERS_WRITE,
            Permission.PURCHASES_WRITE,
            Permission.POINTS_READ,
        }
    ),
}


def grants(role: Role, permission: Permission) -> bool:
    return permission in _GRANTS[role]


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key, its role and (except for platform keys) its tenant."""

    key_id: int | None
    role: Role
    tenant_id: int | None
    name: str = ""
    timezone: str | None = None  # the tenant's, read with the key (None: not known here)
    config_stamp: str | None = None  # the tenant's, read with the key (``core.tenant_cache``)

    @property
    def actor(self) -> str:
        """How the caller is named in audit fields (``created_by``, ``adjusted_by``)."""
        return f"key:{self.key_id}" if self.key_id is not None else (self.name or "cli")

    def can(self, permission: Permission) -> bool:
        return grants(self.role, permission)
