"""The lookup API application (aiohttp): routes, request context, OpenAPI, health, metrics.

:func:`build_app` assembles it:

- ``GET /v1/hlr/{number}``, ``/v1/mnp/{number}``, ``/v1/ranges/{number}``,
  ``/v1/port-history/{number}`` (:class:`~gateway.lookup.LookupService`), each marked with the
  service it needs (:func:`gateway.http.auth.requires`);
- the batch routes (:func:`gateway.http.batch.setup_batch_routes`) when a batch manager is
  given;
- ``GET /openapi.json`` (:mod:`.openapi`), ``GET /healthz`` (the process answers),
  ``GET /readyz`` (200 when some route has a MAP link set up and the store answers, else
  503), ``GET /metrics`` (Prometheus: the engine's metrics and the API's; the admin token
  unless ``[admin] metrics_need_token = false``).

No middleware: each route's handler runs wrapped in one request context
(:func:`in_context`): a request id from ``X-Request-ID`` or a new one, echoed back and
bound to every log line of the request; one access log line per request
with the number masked; responses counted by status code; and within it what the problem
and authentication middleware of :mod:`gateway.http.auth` do (:func:`~gateway.http.auth.
install` adds those two to other applications), folded into the same layer.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_urldispatcher import MatchInfoError, UrlMappingMatchInfo

from gateway import __version__
from gateway.customers import MISS
from gateway.http.auth import (
    CUSTOMERS,
    LIMITER,
    admission,
    admission_now,
    customer_of,
    requires,
)
from gateway.http.openapi import openapi_document
from gateway.http.problems import ProblemError, ProblemType, problem_response
from gateway.logs import bind_request, clear_request, enabled, get_logger, log_event
from gateway.lookup import LookupService, new_id
from gateway.numbers import mask_number

__all__ = ["API", "build_app"]

access_log = get_logger("gateway.http")

API = web.AppKey("hlrgw_lookups", LookupService)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_NUMBER_PARAMS = {
    "hlr": {"max_age", "operation"},
    "mnp": {"max_age"},
    "ranges": set(),
    "port_history": {"window"},
}
MAX_AGE_LIMIT = 30 * 86400


def _dumps(doc: Any) -> bytes:
    """Compact UTF-8 JSON (orjson; the standard library's for what orjson refuses, such as
    an integer beyond 64 bits). A document with text keys only (every answer) is written
    without ``OPT_NON_STR_KEYS``, which costs orjson 0.7 us an answer to check keys with;
    orjson refuses any other key without it, and then gets the option."""
    try:
        return orjson.dumps(doc)
    except TypeError:
        pass
    try:
        return orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None
          ) -> web.Response:
    return web.Response(body=_dumps(doc), status=status, content_type="application/json",
                        charset="utf-8", headers=headers)


def _check_query(request: web.Request, allowed: set[str]) -> None:
    for name in request.query:
        if name not in allowed:
            hint = f"; this endpoint takes {', '.join(sorted(allowed))}" if allowed else \
                "; this endpoint takes none"
            raise ProblemError(400, ProblemType.BAD_REQUEST,
                               f"unknown query parameter {name!r}{hint}", field=name)


def _max_age(request: web.Request) -> float | None:
    raw = request.query.get("max_age")
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 9 or int(raw) > MAX_AGE_LIMIT:
        raise ProblemError(400, ProblemType.BAD_REQUEST, f"max_age must be whole seconds "
                           f"from 0 to {MAX_AGE_LIMIT}, not {raw[:32]!r}", field="max_age")
    return float(int(raw))


class _Handlers:
    def __init__(self, service: LookupService) -> None:
        self.service = service

    @requires("hlr")
    async def hlr(self, request: web.Request) -> web.Response:
        operation = max_age = None
        if request.query_string:  # most lookups have no query: skip parsing one
            _check_query(request, _NUMBER_PARAMS["hlr"])
            operation = request.query.get("operation")
            if operation is not None and operation not in ("sri_sm", "ati"):
                raise ProblemError(400, ProblemType.BAD_REQUEST, "operation must be sri_sm "
                                   f"or ati, not {operation[:32]!r}", field="operation")
            max_age = _max_age(request)
        doc = await self.service.hlr(request.match_info["number"], customer_of(request),
                                     max_age=max_age, operation=operation)
        return _json(doc)

    @requires("mnp")
    async def mnp(self, request: web.Request) -> web.Response:
        max_age = None
        if request.query_string:
            _check_query(request, _NUMBER_PARAMS["mnp"])
            max_age = _max_age(request)
        doc = await self.service.mnp(request.match_info["number"], customer_of(request),
                                     max_age=max_age)
        return _json(doc)

    @requires("ranges")
    async def ranges(self, request: web.Request) -> web.Response:
        if request.query_string:
            _check_query(request, _NUMBER_PARAMS["ranges"])
        doc = await self.service.ranges(request.match_info["number"], customer_of(request))
        return _json(doc)

    @requires("port_history")
    async def port_history(self, request: web.Request) -> web.Response:
        _check_query(request, _NUMBER_PARAMS["port_history"])
        window = request.query.get("window", "P2Y")
        doc = await self.service.port_history(request.match_info["number"],
                                              customer_of(request), window=window)
        return _json(doc)


def request_context(metrics: Any, customers: Any = None, limiter: Any = None
                    ) -> Callable[..., Awaitable[web.StreamResponse]]:
    """The request context (see the module docstring) as a middleware: what
    :func:`in_context` wraps each handler in."""
    wrap = in_context(metrics, customers, limiter)

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        return await wrap(handler)(request)

    return middleware


def in_context(metrics: Any, customers: Any = None, limiter: Any = None
               ) -> Callable[[Any], Any]:
    """``wrap(handler)``: ``handler`` answering in the request context (see the module
    docstring), and with ``customers`` and ``limiter`` within what the problem and
    authentication middleware of :mod:`gateway.http.auth` do. :func:`build_app` registers
    every route's handler wrapped, and its router wraps aiohttp's 404 and 405 handlers
    the same way: an application with no middleware calls its handler directly, where
    one middleware cost aiohttp about 8 us a request to run. The customer of a cached key
    is admitted without a coroutine of its own."""
    if customers is not None:
        admit_now = admission_now(customers, limiter)
        admit = admission(customers, limiter)
    count = metrics.response

    def wrap(handler: Any) -> Any:
        async def answer(request: web.Request) -> web.StreamResponse:
            given = request.headers.get("X-Request-ID")
            rid = given if given and _REQUEST_ID.fullmatch(given) else new_id()
            token = bind_request(request_id=rid)
            t0 = time.perf_counter()
            status = 500
            customer = None
            try:
                try:
                    if customers is None:
                        response = await handler(request)
                    else:
                        try:
                            customer = admit_now(request)
                            if customer is MISS:
                                customer = await admit(request)
                            if customer is None:
                                response = await handler(request)
                            else:
                                try:
                                    response = await handler(request)
                                finally:
                                    limiter.release(customer)
                        except Exception as exc:
                            response = problem_response(request, exc)
                except web.HTTPException as exc:  # left to aiohttp (a redirect): counted
                    exc.headers["X-Request-ID"] = rid
                    status = exc.status
                    raise
                response.headers["X-Request-ID"] = rid
                status = response.status
                return response
            finally:
                count(status)
                if enabled(logging.INFO):
                    _access(request, status, time.perf_counter() - t0, customer)
                clear_request(token)

        return functools.update_wrapper(answer, handler)  # (and requires()' mark)

    return wrap


class _Unmatched(MatchInfoError):
    """aiohttp's answer to a request no route takes (404, or 405 with the methods the path
    takes), raised by its handler wrapped in the request context (as the one middleware
    saw it): a problem document, an X-Request-ID, a count and a log line like any other."""

    def __init__(self, exc: web.HTTPException, wrap: Callable[[Any], Any]) -> None:
        super().__init__(exc)
        self._in_context = wrap(self.route.handler)

    @property
    def handler(self) -> Any:  # type: ignore[override]
        return self._in_context


def _resolve_in_context(router: web.UrlDispatcher, wrap: Callable[[Any], Any]) -> None:
    resolve = router.resolve

    async def resolve_in_context(request: web.Request) -> Any:
        info = await resolve(request)
        if type(info) is UrlMappingMatchInfo:  # a route took it (no ABC isinstance check)
            return info
        if isinstance(info, MatchInfoError):
            return _Unmatched(info.http_exception, wrap)
        return info

    router.resolve = resolve_in_context  # type: ignore[method-assign]


def _access(request: web.Request, status: int, seconds: float, customer: Any = None
            ) -> None:
    """The request's log line; ``customer``: the one admission gave, if any (else the
    request's own, read back)."""
    info = request.match_info
    resource = info.route.resource
    path = resource.canonical if resource is not None else _masked_path(request)
    method = request.method
    fields: dict[str, Any] = {"method": method, "path": path, "status": status,
                              "ms": round(seconds * 1000, 2)}
    number = info.get("number")
    if number is not None:
        digits = number if number.isdigit() else "".join(c for c in number if c.isdigit())
        fields["number"] = mask_number(digits or "?")
    if customer is not None and customer is not MISS:
        fields["customer"] = customer.name
    elif request.path.startswith("/v1/"):
        try:
            fields["customer"] = customer_of(request).name
        except ProblemError:  # refused before it was authenticated
            pass
    log_event("gateway.http", "info", f"{method} {path} {status}", fields)


def _masked_path(request: web.Request) -> str:
    from gateway.logs import scrub

    return scrub(request.path)[:200]


async def _openapi(request: web.Request) -> web.Response:
    doc = request.app[_OPENAPI]
    return _json(doc)


_OPENAPI = web.AppKey("hlrgw_openapi", dict)


def build_app(service: LookupService, customers: Any, limiter: Any, *,
              batch: Any = None, store: Any = None,
              metrics_registries: tuple[Any, ...] | None = None,
              metrics_token: Callable[[], str | None] | None = None,
              started_at: float | None = None, client_max_size: int = 1 << 20
              ) -> web.Application:
    """The application (see the module docstring). ``/metrics`` renders
    ``metrics_registries`` (default: the lookup service's own metrics; the service passes
    the admin API's registry, which holds the engine's and the API's); ``metrics_token``
    gives the token it needs (None: none needed)."""
    registries = metrics_registries if metrics_registries is not None else (
        service.metrics.registry,)
    # no middleware: every handler runs wrapped in the request context (see in_context)
    wrap = in_context(service.metrics, customers, limiter)
    app = web.Application(client_max_size=max(client_max_size, 17 << 20))
    app[CUSTOMERS] = customers  # what install() keeps; its middleware is folded in above
    app[LIMITER] = limiter
    app[API] = service
    app[_OPENAPI] = openapi_document()
    h = _Handlers(service)
    r = app.router
    r.add_get("/v1/hlr/{number}", wrap(h.hlr))
    r.add_get("/v1/mnp/{number}", wrap(h.mnp))
    r.add_get("/v1/ranges/{number}", wrap(h.ranges))
    r.add_get("/v1/port-history/{number}", wrap(h.port_history))
    if batch is not None:
        from gateway.http.batch import setup_batch_routes

        setup_batch_routes(app, batch, wrap=wrap)
    started = started_at if started_at is not None else time.time()

    async def healthz(request: web.Request) -> web.Response:
        return _json({"status": "ok", "version": __version__,
                      "uptime": round(time.time() - started, 3)})

    async def readyz(request: web.Request) -> web.Response:
        doc = await readiness(service, store)
        return _json(doc, 200 if doc["ready"] else 503)

    async def metrics(request: web.Request) -> web.Response:
        token = metrics_token() if metrics_token is not None else None
        if token:
            header = request.headers.get("Authorization", "")
            scheme, _, given = header.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                    given.strip().encode(), token.encode()):
                raise ProblemError(401, ProblemType.UNAUTHENTICATED, "/metrics needs the "
                                   "admin token (Authorization: Bearer TOKEN)",
                                   headers={"WWW-Authenticate": 'Bearer realm="hlrgw-admin"'})
        from prometheus_client import generate_latest

        body = b"".join(generate_latest(reg) for reg in registries)
        return web.Response(body=body, headers={
            "Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    r.add_get("/openapi.json", wrap(_openapi))
    r.add_get("/healthz", wrap(healthz))
    r.add_get("/readyz", wrap(readyz))
    r.add_get("/metrics", wrap(metrics))
    _resolve_in_context(r, wrap)  # 404 and 405 in the request context too
    return app


async def readiness(service: LookupService, store: Any) -> dict[str, Any]:
    """Ready when some route has a MAP method whose link set is up (a configuration with no
    MAP method at all is ready) and the store answers."""
    engine = service.engine
    linksets = {name: ls.is_up for name, ls in engine.linksets.items()}
    routes: dict[str, bool] = {}
    any_map = False
    for r in engine.config.routes:
        sets = [m.linkset for m in r.methods if m.linkset]
        any_map = any_map or bool(sets)
        routes[r.name] = any(linksets.get(s, False) for s in sets)
    store_ok = True
    if store is not None:
        try:
            await store.get_customer(0)
        except Exception:
            store_ok = False
    ready = store_ok and (any(routes.values()) or not any_map)
    return {"ready": ready, "routes": routes, "linksets": linksets, "store": store_ok}
