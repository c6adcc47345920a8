"""The control API: HTTP/JSON on 127.0.0.1, for testers driving a running simulator.

=======  =====================================  ===============================================
method   path                                   what
=======  =====================================  ===============================================
GET      /                                      index: version, seed, the links below
GET      /networks                              every endpoint: address, GT, PC, RC, ranges
GET      /networks/{name}                       one endpoint
POST     /networks/{name}/reset-associations    reset its associations now (clients reconnect)
GET      /counters                              dialogues by endpoint, operation and outcome
GET      /subscribers/{number}                  the answer view of a number, and its override
PUT      /subscribers/{number}                  replace the number's override
PATCH    /subscribers/{number}                  merge into it (RFC 7396: null drops a key)
DELETE   /subscribers/{number}                  drop the run-time override (file's applies)
GET      /faults                                the faults in force
POST     /faults                                inject one (body as a ``[[faults]]`` table)
DELETE   /faults/{id}                           remove one
DELETE   /faults                                remove all (the file's too, until reset)
POST     /reset                                 back to the network file, counters at zero
=======  =====================================  ===============================================

Errors are ``application/problem+json`` (RFC 9457): ``type``, ``title``, ``status`` and a
``detail`` that names the offending key, e.g. ``body.status: must be one of connected, ...``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway import __version__

from .config import ConfigError, parse_number

if TYPE_CHECKING:
    from .runner import Simulator

__all__ = ["ControlServer", "build_app"]

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
_SIM: web.AppKey[Simulator] = web.AppKey("simulator")


def problem(status: int, title: str, detail: str) -> web.Response:
    """An RFC 9457 problem document."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return web.Response(status=status, text=json.dumps(body), content_type=PROBLEM)


def _json(data: Any, status: int = 200, **kw: Any) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda v: json.dumps(v, indent=2), **kw)


@web.middleware
async def _problems(request: web.Request,
                    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                    ) -> web.StreamResponse:
    """Every error as problem+json: bad input (400), unknown things (404), aiohttp's own."""
    try:
        return await handler(request)
    except ConfigError as exc:
        return problem(400, "Invalid request", str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = exc.text or exc.reason
        if detail == f"{exc.status}: {exc.reason}":  # aiohttp's own, e.g. "404: Not Found"
            detail = f"{request.method} {request.path}: {exc.reason.lower()} (see GET /)"
        return problem(exc.status, exc.reason, detail)
    except Exception as exc:  # a bug: say so rather than hang up
        log.exception("control API: %s %s failed", request.method, request.path)
        return problem(500, "Internal error", f"{type(exc).__name__}: {exc}")


def _sim(request: web.Request) -> Simulator:
    return request.app[_SIM]


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"body: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError("body: must be a JSON object")
    return data


def _number(request: web.Request) -> str:
    sim = _sim(request)
    number = parse_number(request.match_info["number"])
    if sim.state.model.find_range(number) is None:
        raise web.HTTPNotFound(reason="Not Found",
                               text=f"no network holds a range for {number}")
    return number


def _subscriber_view(sim: Simulator, number: str) -> dict[str, Any]:
    sub = sim.subscriber(number)
    override, source = sim.state.override(number)
    return {"number": number,
            "override": override.to_dict() if override is not None else None,
            "override_source": source,
            "subscriber": sub.to_dict() if sub is not None else None}


# --------------------------------------------------------------------------- handlers


async def index(request: web.Request) -> web.Response:
    sim = _sim(request)
    return _json({"service": "hlrgw network simulator", "version": __version__,
                  "seed": sim.seed, "network_file": sim.config.source,
                  "links": {"networks": "/networks", "counters": "/counters",
                            "subscribers": "/subscribers/{number}", "faults": "/faults",
                            "reset": "/reset"}})


async def networks(request: web.Request) -> web.Response:
    return _json({"networks": _sim(request).describe()})


def _endpoint(request: web.Request) -> dict[str, Any]:
    name = request.match_info["name"]
    for item in _sim(request).describe():
        if item["name"] == name:
            return item
    raise web.HTTPNotFound(reason="Not Found", text=f"no network named {name!r}")


async def network(request: web.Request) -> web.Response:
    return _json(_endpoint(request))


async def reset_associations(request: web.Request) -> web.Response:
    item = _endpoint(request)
    n = _sim(request).reset_associations(item["name"])
    return _json({"network": item["name"], "reset": n})


async def counters(request: web.Request) -> web.Response:
    return _json(_sim(request).counters())


async def get_subscriber(request: web.Request) -> web.Response:
    return _json(_subscriber_view(_sim(request), _number(request)))


async def put_subscriber(request: web.Request) -> web.Response:
    sim, number = _sim(request), _number(request)
    sim.set_subscriber(number, await _body(request))
    return _json(_subscriber_view(sim, number))


async def patch_subscriber(request: web.Request) -> web.Response:
    sim, number = _sim(request), _number(request)
    sim.patch_subscriber(number, await _body(request))
    return _json(_subscriber_view(sim, number))


async def delete_subscriber(request: web.Request) -> web.Response:
    sim, number = _sim(request), _number(request)
    sim.drop_subscriber(number)
    return _json(_subscriber_view(sim, number))


async def list_faults(request: web.Request) -> web.Response:
    return _json({"faults": [f.to_dict() for f in _sim(request).faults]})


async def add_fault(request: web.Request) -> web.Response:
    fault = _sim(request).add_fault(await _body(request))
    return _json(fault.to_dict(), status=201, headers={"Location": f"/faults/{fault.id}"})


async def delete_fault(request: web.Request) -> web.Response:
    fault_id = request.match_info["fault_id"]
    if _sim(request).remove_fault(fault_id) is None:
        raise web.HTTPNotFound(reason="Not Found", text=f"no fault with id {fault_id!r}")
    return web.Response(status=204)


async def clear_faults(request: web.Request) -> web.Response:
    return _json({"cleared": _sim(request).clear_faults()})


async def reset(request: web.Request) -> web.Response:
    sim = _sim(request)
    sim.reset()
    return _json({"reset": True, "faults": [f.to_dict() for f in sim.faults]})


def build_app(sim: Simulator) -> web.Application:
    """The aiohttp application serving ``sim``."""
    app = web.Application(middlewares=[_problems])
    app[_SIM] = sim
    app.router.add_get("/", index)
    app.router.add_get("/networks", networks)
    app.router.add_get("/networks/{name}", network)
    app.router.add_post("/networks/{name}/reset-associations", reset_associations)
    app.router.add_get("/counters", counters)
    app.router.add_get("/subscribers/{number}", get_subscriber)
    app.router.add_put("/subscribers/{number}", put_subscriber)
    app.router.add_patch("/subscribers/{number}", patch_subscriber)
    app.router.add_delete("/subscribers/{number}", delete_subscriber)
    app.router.add_get("/faults", list_faults)
    app.router.add_post("/faults", add_fault)
    app.router.add_delete("/faults", clear_faults)
    app.router.add_delete("/faults/{fault_id}", delete_fault)
    app.router.add_post("/reset", reset)
    return app


class ControlServer:
    """The control API listening on ``host:port`` (0: a free port)."""

    def __init__(self, sim: Simulator, host: str, port: int) -> None:
        self.sim = sim
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        runner = web.AppRunner(build_app(self.sim), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]  # the port actually bound

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
