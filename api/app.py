"""The ASGI app: the engine's lifetime, the fixed routes (metrics, health, the API description, the
console), and a catch-all that hands every other request to the ``Frontend``."""

from __future__ import annotations

import contextlib
import hmac
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from api import observability
from api.config import ServerConfig
from api.frontend import Frontend, absolute_form_fix
from api.openapi import openapi
from engine import Engine
from engine.clock import Clock, SystemClock
from engine.store import ObjectStore, open_store

log = logging.getLogger("vecledger.api")

CONSOLE_DIR = Path(__file__).parent / "console"


def create_app(
    config: ServerConfig,
    *,
    clock: Clock | None = None,
    wrap_store: Callable[[ObjectStore], ObjectStore] | None = None,
) -> ASGIApp:
    """The ASGI app. ``clock`` and ``wrap_store`` are injectable so that tests and fault tools can
    move the server's time and put a ``FaultyStore`` between it and its storage."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine_clock = clock or SystemClock()
        store = await open_store(config.root, config.engine, engine_clock)
        if wrap_store is not None:
            store = wrap_store(store)
        async with Engine.open(config.root, config.engine, clock=engine_clock, store=store) as engine:
            app.state.frontend = Frontend(config, engine)
            app.state.gauges = observability.IndexGauges(engine)
            yield

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    async def endpoint(request: Request) -> Response:
        frontend: Frontend = request.app.state.frontend
        return await frontend.handle(request)

    async def description(request: Request) -> Response:
        return JSONResponse(openapi())  # public: it describes the API, not anyone's data

    async def console_root(request: Request) -> Response:
        # The page's relative links (console.js, console.css) need the trailing slash.
        return RedirectResponse("/console/", status_code=308)

    # Operations: unauthenticated like any orchestrator probe (/metrics needs the metrics token when
    # one is set), and registered before the catch-all (GET only: a POST /metrics still reaches the
    # dialects as an operation).
    async def metrics_page(request: Request) -> Response:
        gauges: observability.IndexGauges | None = getattr(request.app.state, "gauges", None)
        if gauges is None:
            return PlainTextResponse("the engine is not open\n", status_code=503)
        token = config.metrics_token
        if token is not None and not hmac.compare_digest(
            request.headers.get("authorization", "").encode(), f"Bearer {token}".encode()
        ):
            return PlainTextResponse("a metrics token is required\n", status_code=401)
        body, content_type = await gauges.render(request.headers.get("accept", ""), per_index=token is not None)
        return Response(body, headers={"content-type": content_type})

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")  # the process is up and its event loop answers

    async def readyz(request: Request) -> Response:
        frontend: Frontend | None = getattr(request.app.state, "frontend", None)
        status, body = await observability.readiness(frontend.engine if frontend is not None else None)
        return PlainTextResponse(body, status_code=status)

    app.add_route("/metrics", metrics_page, methods=["GET"])
    app.add_route("/healthz", healthz, methods=["GET"])
    app.add_route("/readyz", readyz, methods=["GET"])
    app.add_route("/_vecledger/openapi.json", description, methods=["GET"])
    # The web console: static files only, so public like the API description. The page holds no
    # data; it signs every call it makes with the key pair the user types in, like any SDK.
    # Registered before the catch-all, which would otherwise take /console as an operation name.
    app.add_route("/console", console_root, methods=["GET", "HEAD"])
    app.mount("/console", StaticFiles(directory=CONSOLE_DIR, html=True), name="console")
    app.add_route("/{path:path}", endpoint, methods=["GET", "POST", "PUT", "DELETE", "HEAD"])
    return absolute_form_fix(app)
