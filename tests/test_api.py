"""The application as a whole: how a server process runs its requests."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import pytest
from anyio import to_thread
from fastapi.testclient import TestClient

from conftest import TEST_SECRET, FixedClock
from factories import make_tenant
from memberlab.api import create_app
from memberlab.core import migrate
from memberlab.core.access import Permission, Role
from memberlab.core.app_state import AppState
from memberlab.core.db import Database, create_db_engine
from memberlab.core.i18n import current_language, language
from memberlab.core.pii import PersonalDataVault
from memberlab.core.settings import Language, Settings
from memberlab.core.web import ENGINE_THREAD_NAME, PendingWork


@pytest.fixture
def served(settings: Settings, clock: FixedClock, tmp_path: Path) -> Iterator[AppState]:
    """An app state on a store of its own that serves requests at once (the tests' shared
    store is one connection, which overlapping requests cannot share)."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'served.db'}")
    migrate.upgrade(engine)
    yield AppState(settings, Database(engine), PersonalDataVault(TEST_SECRET), clock)
    engine.dispose()


def engine_threads_of(size: int) -> set[str]:
    return {
        thread.name
        for thread in threading.enumerate()
        if thread.name.startswith(f"{ENGINE_THREAD_NAME}-{size}_")
    }


def send_at_once(client: TestClient, headers: dict[str, str], requests: int) -> None:
    """``requests`` engine requests (a member's points) sent all at once."""
    with ThreadPoolExecutor(requests) as senders:
        answers = list(
            senders.map(
                lambda _: client.get("/api/v1/members/nobody/points", headers=headers),
                range(requests),
            )
        )
    assert {a.status_code for a in answers} == {404}  # each answered, by the engine's pool


def test_the_engines_routes_run_on_as_many_threads_as_the_settings_say(served: AppState) -> None:
    served.settings.threads = 3
    tenant = make_tenant(served)

    with TestClient(create_app(served)) as client:
        send_at_once(client, tenant.headers(), requests=12)

    assert 1 <= len(engine_threads_of(3)) <= 3


def test_the_engines_default_is_four_threads(served: AppState) -> None:
    tenant = make_tenant(served)

    with TestClient(create_app(served)) as client:
        send_at_once(client, tenant.headers(), requests=12)

    assert served.settings.threads == 4
    assert 1 <= len(engine_threads_of(4)) <= 4


def test_the_other_routes_keep_anyios_forty_threads(state: AppState) -> None:
    tenant = make_tenant(state)

    with TestClient(create_app(state)) as client:
        assert client.get("/api/v1/members", headers=tenant.headers()).status_code == 200
        assert client.portal is not None
        default = client.portal.call(lambda: to_thread.current_default_thread_limiter())

    assert default.total_tokens == 40


def test_the_engines_work_runs_in_the_requests_language(state: AppState) -> None:
    tenant = make_tenant(state)
    work = PendingWork(state, tenant.keys[Role.ADMIN], Permission.POINTS_READ, tenant=True)

    async def in_language(lang: Language) -> str:
        with language(lang):
            return await work.run(lambda _ctx: current_language())

    # both, whichever is the process's default
    assert anyio.run(in_language, "zh-CN") == "zh-CN"
    assert anyio.run(in_language, "en") == "en"


def test_a_served_app_leaves_its_start_up_objects_out_of_full_collections(state: AppState) -> None:
    gc.unfreeze()
    try:
        with TestClient(create_app(state)) as client:  # the tests' apps leave the heap be
            assert client.get("/healthz").status_code == 200
            assert gc.get_freeze_count() == 0
        with TestClient(create_app(state, freeze_heap=True)) as client:
            # frozen at start-up: the app, its routes, the modules, before the first request
            frozen = gc.get_freeze_count()
            assert frozen > 10_000
            assert client.get("/healthz").status_code == 200
            assert not any(gc.is_tracked(o) and o is client.app for o in gc.get_objects(2))
    finally:
        gc.unfreeze()
