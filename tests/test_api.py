"""The application as a whole: how a server process runs its requests."""

from __future__ import annotations

from anyio import to_thread
from fastapi.testclient import TestClient

from factories import make_tenant
from memberlab.api import create_app
from memberlab.core.app_state import AppState
from memberlab.core.web import engine_threads


def pools(client: TestClient) -> tuple[int, int]:
    """(threads of the engine's routes, threads of the others) in the app's event loop."""
    assert client.portal is not None
    # engine_threads(999) makes a pool of 999 only if no engine route has made one
    return client.portal.call(
        lambda: (
            engine_threads(999).total_tokens,
            to_thread.current_default_thread_limiter().total_tokens,
        )
    )


def test_the_engines_routes_run_on_as_many_threads_as_the_settings_say(state: AppState) -> None:
    state.settings.threads = 3
    tenant = make_tenant(state)

    with TestClient(create_app(state)) as client:
        answer = client.get("/api/v1/members/nobody/points", headers=tenant.headers())

        assert answer.status_code == 404  # answered, through the engine's pool
        assert pools(client) == (3, 40)


def test_the_engines_default_is_four_threads_and_the_rest_keep_anyios_forty(
    state: AppState,
) -> None:
    tenant = make_tenant(state)

    with TestClient(create_app(state)) as client:
        client.get("/api/v1/members/nobody/points", headers=tenant.headers())

        assert pools(client) == (4, 40)
