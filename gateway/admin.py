"""The admin API: an aiohttp application on its own listener, guarded by its own bearer token.

Every request needs ``Authorization: Bearer TOKEN`` (``GET /metrics`` too, unless
``[admin] metrics_need_token = false``). Answers are JSON, except ``/metrics`` (Prometheus
text) and the pcap download.

- ``GET /associations``: every association: ASP and AS state, uptime, RTT, dialogues in
  flight, counters;
- ``GET /linksets``: every link set: mode, state, members, TPS cap;
- ``GET /routes``: every route: prefixes, methods with their link state and breaker;
- ``GET /routes/{name}/stats``: a route's counters: lookups by status, latency, methods;
- ``GET /explain?number=N``: the route a number takes and the state of each method;
- ``POST /lookup``: a test lookup, ``{"number": N, "operation": "sri_sm"|"ati"}``, with every
  method tried (the HTTP lookup API is the service's own listener);
- ``POST /reload``: re-read the configuration file and apply it (422 with the problems);
- ``POST /links/{name}/drain``: no new dialogues on an association or a link set
  (``?close=1``: close each once its dialogues are done);
- ``POST /links/{name}/restore``: take new dialogues again (reconnect a closed one);
- ``POST /traces``: start a trace, ``{"link"|"route"|"number": ..., "seconds": S}``;
- ``GET /traces``, ``GET /traces/{id}``: traces and their state;
- ``GET /traces/{id}/pcap``: the trace file, to clients on this host only;
- ``DELETE /traces/{id}``: stop a trace and delete its file;
- ``GET /metrics``: Prometheus metrics.
"""

from __future__ import annotations

import dataclasses
import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.config import ConfigInvalid
from gateway.engine import Engine, ReloadReport
from gateway.metrics import CONTENT_TYPE, registry_for, render
from gateway.routing import InvalidNumber
from gateway.trace import TraceError, TraceKind, TraceManager, TraceState

__all__ = ["AdminApi"]

log = logging.getLogger(__name__)

ReloadFn = Callable[[], Awaitable[ReloadReport]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


def _dumps(data: Any) -> str:
    import json

    def default(o: Any) -> Any:
        if dataclasses.is_dataclass(o):
            return dataclasses.asdict(o)
        if hasattr(o, "value"):
            return o.value
        return str(o)
    return json.dumps(data, default=default, indent=1)


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return _json({"error": message, **extra}, status)


def _is_local(request: web.Request) -> bool:
    peer = request.remote
    if not peer:  # a UNIX socket
        return True
    try:
        return ipaddress.ip_address(peer.split("%")[0]).is_loopback
    except ValueError:
        return False


class AdminApi:
    """See the module docstring. ``token`` may be changed while running (a reload)."""

    def __init__(self, engine: Engine, traces: TraceManager | None, token: str, *,
                 reload: ReloadFn | None = None, metrics_need_token: bool = True) -> None:
        if not token:
            raise ValueError("the admin API needs a token")
        self.engine = engine
        self.traces = traces
        self.token = token
        self.reload_fn = reload
        self.metrics_need_token = metrics_need_token
        self.registry = registry_for(engine, traces)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        r = app.router
        r.add_get("/associations", self.associations)
        r.add_get("/linksets", self.linksets)
        r.add_get("/routes", self.routes)
        r.add_get("/routes/{name}/stats", self.route_stats)
        r.add_get("/explain", self.explain)
        r.add_post("/lookup", self.lookup)
        r.add_post("/reload", self.reload)
        r.add_post("/links/{name}/drain", self.drain)
        r.add_post("/links/{name}/restore", self.restore)
        r.add_post("/traces", self.trace_start)
        r.add_get("/traces", self.trace_list)
        r.add_get("/traces/{id}", self.trace_get)
        r.add_get("/traces/{id}/pcap", self.trace_pcap)
        r.add_delete("/traces/{id}", self.trace_delete)
        r.add_get("/metrics", self.metrics)
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/metrics" and not self.metrics_need_token:
            return await handler(request)
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                 self.token.encode()):
            return web.json_response({"error": "a valid bearer token is needed"}, status=401,
                                     headers={"WWW-Authenticate": 'Bearer realm="hlrgw"'})
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status >= 400:
                return _error(exc.status, exc.reason)
            raise

    # ------------------------------------------------------------------ reading

    async def associations(self, request: web.Request) -> web.Response:
        return _json({"associations": self.engine.associations()})

    async def linksets(self, request: web.Request) -> web.Response:
        out = []
        for name, ls in self.engine.linksets.items():
            bucket = self.engine.linkset_bucket(name)
            out.append({"name": name, "mode": ls.mode.value, "up": ls.is_up,
                        "members": [{"name": m.name, "asp_state": m.state.name,
                                     "draining": ls.is_draining(m)} for m in ls.members],
                        "tps": bucket.rate if bucket else None,
                        "throttled": bucket.refused if bucket else 0})
        return _json({"linksets": out})

    async def routes(self, request: web.Request) -> web.Response:
        return _json({"generation": self.engine.generation, "routes": self.engine.routes()})

    async def route_stats(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        stats = self.engine.route_stats(name)
        if stats is None:
            return _error(404, f"no route named {name!r}")
        bucket = self.engine.route_bucket(name)
        lookups = sum(stats.by_status.values())
        return _json({"route": name, "lookups": stats.lookups, "in_flight": stats.in_flight,
                      "by_status": stats.by_status,
                      "latency_mean": stats.latency_sum / lookups if lookups else None,
                      "throttled": bucket.refused if bucket else 0,
                      "methods": stats.methods})

    async def explain(self, request: web.Request) -> web.Response:
        number = request.query.get("number", "")
        try:
            match, rows = self.engine.explain(number)
        except InvalidNumber as exc:
            return _error(400, str(exc))
        return _json({"number": match.number, "route": match.route, "prefix": match.prefix,
                      "reason": match.reason(),
                      "methods": [{"label": lbl, "state": st} for lbl, st in rows]})

    async def lookup(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the body must be JSON")
        if not isinstance(body, dict) or not isinstance(body.get("number"), str):
            return _error(400, 'give {"number": "..."} (and "operation": "sri_sm" or "ati")')
        operation = body.get("operation")
        if operation not in (None, "sri_sm", "ati"):
            return _error(400, "operation must be sri_sm or ati")
        outcome = await self.engine.lookup(body["number"], operation)
        return _json(outcome.as_dict())

    # ------------------------------------------------------------------ changing

    async def reload(self, request: web.Request) -> web.Response:
        if self.reload_fn is None:
            return _error(501, "this gateway was not started from a file")
        try:
            report = await self.reload_fn()
        except ConfigInvalid as exc:
            return _json({"error": "configuration rejected; the running one stays",
                          "problems": [str(p) for p in exc.problems]}, 422)
        return _json({"reloaded": True, "report": report})

    async def drain(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        close = request.query.get("close", "") in ("1", "true", "yes")
        try:
            names = await self.engine.drain(name, close=close)
        except KeyError:
            return _error(404, f"no association or link set named {name!r}")
        return _json({"drained": names, "closed": close})

    async def restore(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            names = await self.engine.restore(name)
        except KeyError:
            return _error(404, f"no association or link set named {name!r}")
        return _json({"restored": names})

    # ------------------------------------------------------------------ traces

    def _need_traces(self) -> TraceManager:
        if self.traces is None:
            raise web.HTTPServiceUnavailable(reason="traces are not enabled")
        return self.traces

    async def trace_start(self, request: web.Request) -> web.Response:
        traces = self._need_traces()
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the body must be JSON")
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object")
        given = [k for k in ("link", "route", "number") if body.get(k)]
        if len(given) != 1:
            return _error(400, "give exactly one of link, route, number")
        seconds = body.get("seconds", 10)
        if not isinstance(seconds, int | float) or isinstance(seconds, bool):
            return _error(400, "seconds must be a number")
        try:
            info = await traces.start(TraceKind(given[0]), str(body[given[0]]),
                                      float(seconds))
        except TraceError as exc:
            return _error(400, str(exc))
        return _json(info.as_dict(), 201)

    async def trace_list(self, request: web.Request) -> web.Response:
        traces = self._need_traces()
        return _json({"traces": [t.as_dict() for t in traces.list()]})

    async def trace_get(self, request: web.Request) -> web.Response:
        info = self._need_traces().get(request.match_info["id"])
        if info is None:
            return _error(404, "no such trace (or it expired)")
        return _json(info.as_dict())

    async def trace_pcap(self, request: web.Request) -> web.StreamResponse:
        if not _is_local(request):
            return _error(403, "trace files never leave the host: fetch them from this host")
        info = self._need_traces().get(request.match_info["id"])
        if info is None:
            return _error(404, "no such trace (or it expired)")
        if info.state is TraceState.RUNNING:
            return _error(409, "the trace is still running")
        return web.FileResponse(info.file, headers={
            "Content-Type": "application/vnd.tcpdump.pcap",
            "Content-Disposition": f'attachment; filename="hlrgw-{info.id}.pcap"'})

    async def trace_delete(self, request: web.Request) -> web.Response:
        if not self._need_traces().delete(request.match_info["id"]):
            return _error(404, "no such trace (or it expired)")
        return _json({"deleted": request.match_info["id"]})

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=render(self.registry), headers={"Content-Type": CONTENT_TYPE})
