"""The FastAPI application: mounts each domain's router under ``/api/v1``."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from memberlab import __version__
from memberlab.analytics.router import router as analytics_router
from memberlab.core.app_state import AppState
from memberlab.core.errors import MemberLabError
from memberlab.core.router import router as access_router
from memberlab.core.settings import Settings, get_settings
from memberlab.core.web import (
    LanguageMiddleware,
    handle_domain_error,
    handle_http_error,
    handle_request_validation,
    handle_unexpected,
)
from memberlab.dataio.router import router as data_router
from memberlab.engagement.pages import router as engagement_pages
from memberlab.engagement.router import router as engagement_router
from memberlab.experience.pages import router as experience_pages
from memberlab.experience.router import router as experience_router
from memberlab.ledger.router import router as ledger_router
from memberlab.ledger.scheduler import Scheduler
from memberlab.members.router import router as members_router
from memberlab.programs.router import router as programs_router
from memberlab.webhooks.router import router as webhooks_router

API_PREFIX = "/api/v1"
DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
DESCRIPTION = """
MemberLab runs membership programs: members, program versions, and (as they are built)
purchases, the points ledger, tiers and redemptions.

Authenticate with an API key: `Authorization: Bearer ml_...`. Errors are RFC 9457
problem details in the language of `Accept-Language` (zh-CN or en).

MemberLab 运行会员计划：会员、计划版本等。使用 API 密钥认证；错误信息按
`Accept-Language` 以中文或英文返回。
"""


def create_app(
    state: AppState | None = None,
    settings: Settings | None = None,
    *,
    scheduler: bool = False,
    freeze_heap: bool = False,
) -> FastAPI:
    """The application. ``scheduler=True`` (the served app) also runs the jobs and webhooks;
    ``freeze_heap=True`` (the served app too) takes what start-up made out of the garbage
    collector's reach (``freeze_startup_heap``)."""
    settings = settings or (state.settings if state else get_settings())
    state = state or AppState.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if freeze_heap:
            freeze_startup_heap()
        runner = Scheduler(state) if scheduler else None
        if runner:
            runner.start()
        try:
            yield
        finally:
            if runner:
                runner.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="MemberLab",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        openapi_url=f"{API_PREFIX}/openapi.json",
        # MemberLab sets up no OpenTelemetry; left on, FastAPI looks for a configured
        # tracer, meter and logger provider on every request (environment lookups included)
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.memberlab = state

    api = APIRouter(prefix=API_PREFIX)
    # the live engine's routes first: every request walks the routes in order (twice, with
    # FastAPI's included routers), 50 µs for a purchase behind the others, 14 µs here
    api.include_router(ledger_router)
    api.include_router(access_router)
    api.include_router(programs_router)
    api.include_router(members_router)
    api.include_router(webhooks_router)
    api.include_router(data_router)
    api.include_router(analytics_router)
    api.include_router(experience_router)
    api.include_router(engagement_router)
    app.include_router(api)
    app.include_router(experience_pages)  # public survey links and the case list page
    app.include_router(engagement_pages)

    app.add_exception_handler(MemberLabError, handle_domain_error)
    app.add_exception_handler(RequestValidationError, handle_request_validation)
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
    app.add_exception_handler(Exception, handle_unexpected)
    app.add_middleware(LanguageMiddleware, default=settings.language)
    _mount_docs(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        """Liveness for load balancers (and the benchmark's baseline): no key, no store."""
        return {"status": "ok"}

    return app


def freeze_startup_heap() -> None:
    """Leave what start-up made (modules, routes, schemas, SQLAlchemy's caches: about 250,000
    objects) out of the garbage collector's full collections, which otherwise walk all of it:
    100–250 ms each with the interpreter lock held, every few seconds under load, while
    every request of the process waits. After the freeze they walk what requests left
    behind, 5–15 ms (measured on 2 cores: /healthz's p99 under the purchase benchmark's
    load fell from 90–130 ms to 11–17 ms). Start-up's objects live as long as the process,
    so nothing that could be freed is kept."""
    gc.collect()
    gc.freeze()


def create_served_app() -> FastAPI:
    """The app of one ``memberlab serve`` worker process: state from the settings, with the
    scheduler (which runs the jobs only while this process holds the leadership)."""
    from memberlab.core.cli_support import app_state

    return create_app(app_state(), scheduler=True, freeze_heap=True)


def _mount_docs(app: FastAPI) -> None:
    """Swagger UI and ReDoc served from the installed fastapi-offline package (no CDN)."""
    app.mount("/static/docs", StaticFiles(directory=str(DOCS_ASSETS)), name="docs-assets")
    openapi_url = app.openapi_url or ""

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title="MemberLab API",
            swagger_js_url="/static/docs/swagger-ui-bundle.js",
            swagger_css_url="/static/docs/swagger-ui.css",
            swagger_favicon_url="/static/docs/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title="MemberLab API",
            redoc_js_url="/static/docs/redoc.standalone.js",
            redoc_favicon_url="/static/docs/favicon.png",
            with_google_fonts=False,
        )
