"""The API's documentation and the answers to requests that reach no route.

``/docs`` (Swagger UI) and ``/redoc`` work offline: their pages load scripts, styles and
icons from this server only, never from a CDN.
"""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from problems import assert_problem

ASSET_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


def referenced_urls(html: str) -> list[str]:
    """Every URL a page makes the browser fetch: src, href, spec-url and Swagger's ``url:``."""
    attributes = re.findall(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']""", html)
    swagger_spec = re.findall(r"""\burl\s*:\s*["']([^"']+)["']""", html)
    return attributes + swagger_spec


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_documentation_pages_use_only_local_assets(client: TestClient, page: str) -> None:
    response = client.get(page)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    urls = referenced_urls(response.text)
    assert urls, "the page references no assets: the pattern above no longer matches"
    assert "http://" not in response.text
    assert "https://" not in response.text
    for url in urls:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url  # protocol-relative: another host
    assert "/api/v1/openapi.json" in urls


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_assets_of_the_documentation_are_served(client: TestClient, page: str) -> None:
    assets = [url for url in referenced_urls(client.get(page).text) if url.startswith("/static/")]

    assert len(assets) >= 2
    for url in assets:
        response = client.get(url)
        assert response.status_code == 200, url
        assert len(response.content) > 1000, url
        suffix = url[url.rindex(".") :]
        assert ASSET_TYPES[suffix] in response.headers["content-type"], url


def test_the_openapi_document_lists_every_route(client: TestClient) -> None:
    served = {
        (method.lower(), context.path)
        for context in iter_route_contexts(client.app.routes)
        if isinstance(context.original_route, APIRoute) and context.original_route.include_in_schema
        for method in context.original_route.methods
    }

    response = client.get("/api/v1/openapi.json")

    assert response.status_code == 200
    document = response.json()
    documented = {
        (method, path) for path, operations in document["paths"].items() for method in operations
    }
    assert documented == served
    assert len(documented) >= 18
    assert all(path.startswith("/api/v1/") for _, path in documented)
    assert document["info"]["title"] == "MemberLab"
    assert "bearer" in str(document["components"]["securitySchemes"]).lower()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), f"{method.upper()} {path} has no summary"


def test_the_program_file_routes_document_their_body(client: TestClient) -> None:
    paths = client.get("/api/v1/openapi.json").json()["paths"]

    for path in ("/api/v1/programs", "/api/v1/programs/validate"):
        content = paths[path]["post"]["requestBody"]["content"]
        assert set(content) == {"application/yaml", "application/json"}


@pytest.mark.parametrize(
    ("lang", "title", "detail"),
    [
        ("en", "Not found", "No such endpoint: /api/v1/nowhere"),
        ("zh-CN", "未找到", "不存在的接口：/api/v1/nowhere"),
    ],
)
def test_an_unknown_route_is_a_problem_in_the_callers_language(
    client: TestClient, lang: str, title: str, detail: str
) -> None:
    response = client.get("/api/v1/nowhere", headers={"Accept-Language": lang})

    problem = assert_problem(response, 404, "core.error.route_not_found")
    assert (problem["title"], problem["detail"]) == (title, detail)
    assert response.headers["content-language"] == lang


@pytest.mark.parametrize(
    ("lang", "detail"),
    [("en", "Method DELETE is not allowed here."), ("zh-CN", "此处不允许 DELETE 方法。")],
)
def test_a_wrong_method_is_a_problem_in_the_callers_language(
    client: TestClient, lang: str, detail: str
) -> None:
    response = client.delete("/api/v1/members", headers={"Accept-Language": lang})

    problem = assert_problem(response, 405, "core.error.method_not_allowed")
    assert problem["detail"] == detail


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("zh-Hans-CN,zh;q=0.9", "zh-CN"),
        ("zh-TW", "zh-CN"),
        ("en-GB,en;q=0.9", "en"),
        ("fr-FR,zh-CN;q=0.8,en;q=0.5", "zh-CN"),
        ("fr-FR", "en"),  # nothing we speak: the configured default (en in the tests)
        ("", "en"),
    ],
)
def test_the_language_is_negotiated_from_accept_language(
    client: TestClient, header: str, lang: str
) -> None:
    response = client.get("/api/v1/nowhere", headers={"Accept-Language": header})

    assert response.headers["content-language"] == lang


def test_calls_without_a_key_are_told_how_to_authenticate(client: TestClient) -> None:
    response = client.get("/api/v1/members", headers={"Accept-Language": "zh-CN"})

    problem = assert_problem(response, 401, "core.error.unauthenticated")
    assert problem["detail"] == '需要 API 密钥（请求头 "Authorization: Bearer <密钥>"）。'
    assert response.headers["www-authenticate"] == "Bearer"
