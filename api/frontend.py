"""One API request, from bytes to the reply, for every dialect over one engine.

Every request goes through the same steps: tell the dialect from the headers, read the body
within its limits, verify the signature, route ``POST /<Operation>`` (and ``/tags/<arn>``, the
admin actions and OSS's REST paths), parse the JSON body strictly, authorize, call the engine,
and render the reply or the error in the dialect's shape. Bodies are read as raw bytes and parsed
here: the TOS SDK sends JSON without a Content-Type, which FastAPI's body models refuse.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api import models
from api import observability as metrics
from api.auth import failures
from api.auth import signatures as auth
from api.bodies import parse_body
from api.call import Call
from api.config import Credential, ServerConfig
from api.dialects import Dialect, detect, parse_host
from api.errors import ApiError, Kind, from_engine, validation
from api.operations import OPERATIONS, admin, oss
from api.operations import tags as tag_ops
from engine import Engine
from engine.context import RequestContext
from engine.errors import VecledgerError

log = logging.getLogger("vecledger.api")


class BodyBudget:
    """The bytes of request bodies held at once, across every request: bodies are read before a
    signature can be checked (it covers them), so without a global bound a few hundred anonymous
    clients each sending the largest body allowed could exhaust memory. Past the budget a request
    is refused at once, retryably (503), before its body is read."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, n: int) -> None:
        if self.used + n > self.limit:
            raise ApiError(Kind.UNAVAILABLE, "the server is receiving too many request bodies at once; retry")
        self.used += n

    def give(self, n: int) -> None:
        self.used -= n


async def read_body(request: Request, limit: int, deadline: float, budget: BodyBudget, held: list[int]) -> bytes:
    """The body, refused past ``limit`` bytes or ``deadline`` seconds, never buffered beyond the limit.

    A declared Content-Length over the limit is refused before a byte is read; a chunked body is
    counted as it arrives. The deadline covers the whole body, so a client trickling one byte a
    second (slowloris) cannot hold a connection and a request slot for longer than that. The bytes
    are taken from ``budget`` as they are (``held`` says how many, for the caller to give back).
    """
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise validation(f"the request body exceeds {limit} bytes" if declared.isdigit() else "bad Content-Length")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(deadline):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise validation(f"the request body exceeds {limit} bytes")
                budget.take(len(chunk))
                held[0] += len(chunk)
                chunks.append(chunk)
    except TimeoutError:
        raise ApiError(Kind.TIMEOUT, f"the request body did not arrive within {deadline:g} seconds") from None
    except ClientDisconnect:
        raise validation("the client closed the connection before the body ended") from None
    return b"".join(chunks)


def absolute_form_fix(app: ASGIApp) -> ASGIApp:
    """Turn proxy-style ``http://host/path`` request targets into origin form (uvicorn's h11)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(("http://", "https://")):
            scope = dict(scope, path=urlsplit(scope["path"]).path or "/")
            raw = scope.get("raw_path") or b""
            if raw.startswith((b"http://", b"https://")):
                scope["raw_path"] = urlsplit(raw.decode("latin-1")).path.encode("latin-1") or b"/"
        await app(scope, receive, send)

    return middleware


class Frontend:
    def __init__(self, config: ServerConfig, engine: Engine) -> None:
        self.config = config
        self.engine = engine
        self.failures = failures.FailureLimits(engine.clock)
        self.bodies = BodyBudget(config.max_inflight_body_bytes)

    def _credential(self, dialect: Dialect, req: auth.SignedRequest, host: tuple[str, str] | None) -> Credential:
        keys, now, skew = self.config.credentials, self.engine.clock.now(), self.config.clock_skew
        if self.config.no_auth:
            claimed = auth.access_key_of(req)
            if claimed in keys:
                return keys[claimed]
            return Credential("anonymous", "", self.config.default_account)
        scheme = auth.scheme_of(req)
        if scheme == "AWS4-HMAC-SHA256" and dialect.name == "s3":
            return auth.verify_aws(req, keys, now, skew)
        if scheme == "TOS4-HMAC-SHA256" and dialect.name == "tos":
            return auth.verify_tos(req, keys, now, skew)
        if scheme == "OSS4-HMAC-SHA256" and dialect.name == "oss":
            return auth.verify_oss(req, keys, now, skew, host)
        raise auth.AuthError("the request is not signed" if scheme is None else f"unsupported signature {scheme}")

    async def handle(self, request: Request) -> Response:
        """Answer one request; ``Server-Timing`` says how long the server spent on it (benchmarks
        compare it with the client's view to separate server time from client and HTTP time)."""
        started = time.perf_counter()
        with self.engine.catalog.one_probe():
            response = await self._handle(request)
        elapsed = time.perf_counter() - started
        response.headers["server-timing"] = f"app;dur={elapsed * 1000:.3f}"
        dialect = detect({k.lower(): v for k, v in request.headers.items()}).name
        operation = metrics.operation_of(dialect, request.method, request.url.path, request.url.query)
        metrics.observe_request(dialect, operation, response.status_code, elapsed)
        return response

    async def _handle(self, request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        dialect = detect(headers)
        request_id = self.engine.ids.new_id()[:16].upper()
        source = request.client.host if request.client else ""
        held = [0]
        try:
            try:
                body = await read_body(request, self.config.max_body_bytes, self.config.body_timeout, self.bodies, held)
            except ApiError as e:
                response = dialect.error(e, request_id)
                if e.kind is Kind.TIMEOUT:  # a slow client: stop reading it, close the connection
                    response.headers["connection"] = "close"
                # Past the size limit, uvicorn discards the rest as it arrives (never buffered): the
                # SDKs send a whole body before reading, and would see a reset instead of the error.
                return response
            if sum(1 for k, _ in request.headers.items() if k.lower() == "host") > 1:
                # Routing reads one Host and a signature covers another: refuse the ambiguity.
                raise validation("the request has more than one Host header")
            raw_path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
            signed = auth.SignedRequest(
                request.method,
                raw_path,
                request.scope.get("query_string", b"").decode("latin-1"),
                list(request.headers.items()),
                body,
            )
            host = parse_host(headers.get("host", ""), self.config.public_host)
            try:
                cred = self._credential(dialect, signed, host)
            except auth.AuthError as e:
                await self._auth_failed(e, signed, source, request_id, dialect)
                raise ApiError(Kind.ACCESS_DENIED, e.message, reason=e.reason) from None
            ctx = RequestContext(cred.principal, cred.account, source, request_id, dialect.name)
            return dialect.ok(await self._route(request, dialect, cred, host, ctx, body), request_id)
        except ApiError as e:
            return dialect.error(e, request_id)
        except VecledgerError as e:
            return dialect.error(from_engine(e), request_id)
        except Exception:
            log.exception("request %s failed", request_id)
            return dialect.error(ApiError(Kind.INTERNAL, "the service could not complete the request"), request_id)
        finally:
            self.bodies.give(held[0])

    async def _auth_failed(
        self, e: auth.AuthError, req: auth.SignedRequest, source: str, request_id: str, dialect: Dialect
    ) -> None:
        """Audit a failed authentication under the owner of the key it names, if the key is known
        (see ``api.auth.failures`` for the rule and the rates)."""
        key = e.access_key or auth.access_key_of(req)
        owner = self.config.credentials.get(key) if key else None
        if owner is None or not self.failures.may_audit(owner.account):
            metrics.AUTH_FAILURES.labels("known_key" if owner else "unknown_key").inc()
            self.failures.operator_log(e.message, source, req.raw_path, key)
            return
        metrics.AUTH_FAILURES.labels("audited").inc()
        ctx = RequestContext(owner.principal, owner.account, source, request_id, dialect.name)
        path = failures.recorded_path(req.raw_path)
        await self.engine.audit.denied(ctx, path.lstrip("/"), path, e.message, access_key_id=key)

    async def _route(
        self, request: Request, dialect: Dialect, cred: Credential, host: Any, ctx: RequestContext, body: bytes
    ) -> Any:
        call = Call(self.engine, self.config, dialect, cred, host, ctx, "", secure=request.url.scheme == "https")
        try:
            return await self._dispatch(request, call, body)
        except VecledgerError as e:  # worded here, where the operation is known
            raise from_engine(e, dialect.name, call.operation) from e

    async def _dispatch(self, request: Request, call: Call, body: bytes) -> Any:
        path, method, dialect = request.url.path, request.method, call.dialect
        if dialect.name == "oss":
            return await oss.route(
                call, method, request.url.query, {k.lower(): v for k, v in request.headers.items()}, body
            )
        if path.startswith("/_vecledger/") and dialect.name == "s3" and method == "POST":
            action = path[len("/_vecledger/") :]
            handler = admin.ACTIONS.get(action)
            if handler is None:
                raise ApiError(Kind.UNKNOWN_OPERATION, f"unknown admin action {action!r}")
            call.operation = admin.operation_name(action)
            return await handler(call, body)
        if path.startswith("/tags/") and dialect.name == "s3":
            arn = unquote(path[len("/tags/") :])
            if method == "GET":
                call.operation = "ListTagsForResource"
                return await tag_ops.list_tags(call, arn)
            if method == "DELETE":
                call.operation = "UntagResource"
                keys = [v for k, v in parse_qsl(request.url.query, keep_blank_values=True) if k == "tagKeys"]
                return await tag_ops.untag_resource(call, arn, keys)
            if method == "POST":
                call.operation = "TagResource"
                tags = parse_body(models.TagResource, body).tags
                return await tag_ops.tag_resource(call, arn, tags)
        name = path.strip("/")
        op = OPERATIONS.get(name)
        if op is None or method != "POST":
            raise ApiError(Kind.UNKNOWN_OPERATION, f"unknown operation {method} {path}")
        call.operation = name
        return await op.handler(call, op.parse(body))
