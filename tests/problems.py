"""Checking RFC 9457 problem responses, shared by the API tests."""

from __future__ import annotations

from typing import Any

PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance", "code"}


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem with this status and code; returns its body.

    The body has the standard members (``type``, ``title``, ``status``, ``detail``,
    ``instance``) plus our ``code`` and, for field-level problems, ``errors``; nothing else.
    """
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert PROBLEM_FIELDS <= set(body) <= PROBLEM_FIELDS | {"errors"}, sorted(body)
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"/problems/{code}"
    assert body["instance"] == response.request.url.path
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    for error in body.get("errors", []):
        assert {"field", "message"} <= set(error)
    return body
