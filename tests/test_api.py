"""The application as a whole: how a server process runs its requests."""

from __future__ import annotations

from anyio import to_thread
from fastapi.testclient import TestClient

from memberlab.api import create_app
from memberlab.core.app_state import AppState


def thread_pool_size(client: TestClient) -> int:
    """The number of threads the app's event loop lends to sync routes."""
    assert client.portal is not None
    return client.portal.call(lambda: to_thread.current_default_thread_limiter().total_tokens)


def test_sync_routes_share_as_many_threads_as_the_settings_say(state: AppState) -> None:
    state.settings.threads = 3

    with TestClient(create_app(state)) as client:
        assert thread_pool_size(client) == 3
        assert client.get("/healthz").status_code == 200


def test_the_default_is_a_few_threads_not_anyios_forty(state: AppState) -> None:
    with TestClient(create_app(state)) as client:
        assert thread_pool_size(client) == 4
