"""The application as a whole: how a server process runs its requests."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import anyio
from anyio import to_thread
from fastapi.testclient import TestClient

from factories import make_tenant
from memberlab.api import create_app
from memberlab.core.access import Permission, Role
from memberlab.core.app_state import AppState
from memberlab.core.errors import Unauthenticated
from memberlab.core.i18n import current_language, language
from memberlab.core.settings import Language
from memberlab.core.web import ENGINE_THREAD_NAME, PendingWork


def engine_threads_used(client: TestClient, headers: dict[str, str], requests: int) -> set[str]:
    """Names of the threads that ran ``requests`` engine requests sent all at once."""
    names: set[str] = set()
    real_open = PendingWork.open

    def note_and_refuse(_work: PendingWork) -> None:
        names.add(threading.current_thread().name)
        time.sleep(0.02)  # hold the thread a moment, so that the requests overlap
        raise Unauthenticated()  # and keep the test's one database connection out of it

    PendingWork.open = note_and_refuse  # type: ignore[method-assign,assignment]
    try:
        with ThreadPoolExecutor(requests) as senders:
            answers = list(
                senders.map(
                    lambda _: client.get("/api/v1/members/nobody/points", headers=headers),
                    range(requests),
                )
            )
    finally:
        PendingWork.open = real_open  # type: ignore[method-assign]
    assert {a.status_code for a in answers} == {401}  # each answered, through the pool
    return names


def test_the_engines_routes_run_on_as_many_threads_as_the_settings_say(state: AppState) -> None:
    state.settings.threads = 3
    tenant = make_tenant(state)

    with TestClient(create_app(state)) as client:
        names = engine_threads_used(client, tenant.headers(), requests=12)

    assert 1 < len(names) <= 3
    assert all(name.startswith(ENGINE_THREAD_NAME) for name in names)


def test_the_engines_default_is_four_threads(state: AppState) -> None:
    tenant = make_tenant(state)

    with TestClient(create_app(state)) as client:
        names = engine_threads_used(client, tenant.headers(), requests=12)

    assert 1 < len(names) <= 4
    assert state.settings.threads == 4


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
