"""The network engineer's commands of ``hlrgw``: ``config check``, ``route explain``, ``trace``
and ``serve`` (see docs/cli.md). :func:`add_commands` adds them to the parser of
:mod:`gateway.cli`.

Exit status: 0 success, 1 a problem (invalid configuration, the admin API refused, ...),
2 usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, TextIO

__all__ = ["add_commands", "AdminClient", "AdminError"]

EXIT_OK = 0
EXIT_PROBLEM = 1
DEFAULT_ADMIN = "http://127.0.0.1:8081"


class AdminError(RuntimeError):
    """The admin API could not be reached or refused the call."""


class AdminClient:
    """A small synchronous client of the admin API (standard library only)."""

    def __init__(self, url: str, token: str | None, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, bytes, str]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers.get("Content-Type", "")
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AdminError(f"cannot reach the admin API at {self.url}: {reason}") from exc

    def json(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200,)
             ) -> Any:
        status, raw, _ = self.call(method, path, body)
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {"error": raw[:200].decode(errors="replace")}
        if status not in ok:
            raise AdminError(f"{method} {path}: HTTP {status}: "
                             f"{data.get('error', data) if isinstance(data, dict) else data}")
        return data


def _admin_args(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--admin", metavar="URL", default=None if not required else
                   os.environ.get("HLRGW_ADMIN_URL", DEFAULT_ADMIN),
                   help="the running gateway's admin API (default $HLRGW_ADMIN_URL or "
                   f"{DEFAULT_ADMIN})" if required else
                   "the running gateway's admin API, to show live link state")
    p.add_argument("--token", metavar="T", default=None,
                   help="admin bearer token (default: $HLRGW_ADMIN_TOKEN)")


def add_commands(sub: Any) -> None:
    """Add ``config``, ``route``, ``trace`` and ``serve`` to the ``hlrgw`` subparsers."""
    p = sub.add_parser("config", help="check a gateway configuration file")
    csub = p.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    c = csub.add_parser("check", help="validate a configuration file and report every problem",
                        description="Validate FILE and the files it includes: types, ranges, "
                        "references between sections, prefixes that hide a route. Each "
                        "problem is printed as FILE:LINE: KEY.PATH: MESSAGE; exit status 1 "
                        "when there is any.")
    c.add_argument("file", metavar="FILE")
    c.set_defaults(func=cmd_config_check)

    p = sub.add_parser("route", help="show how a number is routed")
    rsub = p.add_subparsers(dest="route_command", metavar="SUBCOMMAND", required=True)
    r = rsub.add_parser("explain", help="the route a number takes, why, and each method with "
                        "its link state",
                        description="Print the route chosen for NUMBER (longest prefix, else "
                        "the default), why, and each method in order with its link state: "
                        "live from the admin API with --admin, else 'not running'.")
    r.add_argument("number", metavar="NUMBER")
    r.add_argument("--config", metavar="FILE", required=True, help="gateway configuration")
    _admin_args(r, required=False)
    r.set_defaults(func=cmd_route_explain)

    lt = rsub.add_parser("test", help="run a test lookup through the running gateway",
                         description="Look NUMBER up through the running gateway's engine "
                         "(admin API POST /lookup) and print each method tried, its outcome "
                         "and the answer.")
    lt.add_argument("number", metavar="NUMBER")
    lt.add_argument("--operation", choices=("sri_sm", "ati"), default=None,
                    help="only the methods of this MAP operation")
    _admin_args(lt, required=True)
    lt.set_defaults(func=cmd_route_test)

    t = sub.add_parser("trace", help="capture the signalling of a link, route or number to a "
                       "pcap", description="Ask the running gateway for a trace of the M3UA "
                       "traffic of one link (association or link set), one route or one "
                       "number for SECONDS, then write it to FILE (a pcap Wireshark dissects "
                       "down to MAP). Run it on the gateway's host: trace files never leave it.")
    _admin_args(t, required=True)
    what = t.add_mutually_exclusive_group(required=True)
    what.add_argument("--link", metavar="NAME", help="an association or a link set")
    what.add_argument("--route", metavar="NAME", help="a route")
    what.add_argument("--number", metavar="N", help="an E.164 number")
    t.add_argument("--seconds", type=float, default=10.0, metavar="S",
                   help="how long to trace (default 10)")
    t.add_argument("-o", "--output", metavar="FILE", required=True, help="the pcap to write")
    t.set_defaults(func=cmd_trace)

    s = sub.add_parser("serve", help="run the gateway with a configuration file",
                       description="Load and check FILE (an invalid file: the problems and "
                       "exit status 1), connect the associations, serve the admin API; "
                       "SIGHUP reloads FILE, SIGINT or SIGTERM stops.")
    s.add_argument("--config", metavar="FILE", required=True, help="gateway configuration file")
    s.set_defaults(func=cmd_serve)


# --------------------------------------------------------------------------- config check


def cmd_config_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from gateway.config import check_file

    config, problems = check_file(args.file)
    if problems or config is None:
        for p in problems:
            print(p, file=out)
        n = len(problems)
        print(f"{n} problem{'s' if n != 1 else ''} found", file=out)
        return EXIT_PROBLEM
    defaults = sum(r.default for r in config.routes)
    extra = f", {len(config.include)} included file{'s' * (len(config.include) != 1)}" \
        if config.include else ""
    print(f"{args.file}: OK: {_n(len(config.associations), 'association')}, "
          f"{_n(len(config.linksets), 'link set')}, {_n(len(config.routes), 'route')} "
          f"({defaults} default){extra}", file=out)
    return EXIT_OK


def _n(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


# --------------------------------------------------------------------------- route explain


def cmd_route_explain(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from gateway.config import check_file
    from gateway.engine import explain_config
    from gateway.routing import InvalidNumber

    config, problems = check_file(args.config)
    if config is None:
        for p in problems:
            print(p, file=err)
        print(f"hlrgw route explain: {args.config} is invalid", file=err)
        return EXIT_PROBLEM
    try:
        match, labels = explain_config(config, args.number)
    except InvalidNumber as exc:
        print(f"hlrgw route explain: {exc}", file=err)
        return EXIT_PROBLEM
    live: dict[str, Any] | None = None
    if args.admin:
        try:
            client = AdminClient(args.admin, args.token or os.environ.get("HLRGW_ADMIN_TOKEN"))
            live = {"linksets": {ls["name"]: ls for ls in
                                 client.json("GET", "/linksets")["linksets"]},
                    "routes": {r["name"]: r for r in client.json("GET", "/routes")["routes"]},
                    "route": client.json("GET", "/explain?number=" +
                                         urllib.parse.quote(match.number))["route"]}
        except AdminError as exc:
            print(f"hlrgw route explain: {exc}", file=err)
            return EXIT_PROBLEM
    print(f"number   {match.number}", file=out)
    if match.route is None:
        print(f"route    none: {match.reason()}", file=out)
        return EXIT_PROBLEM
    print(f"route    {match.route}: {match.reason()}", file=out)
    sec = config.route(match.route)
    assert sec is not None
    cap = f"{sec.tps:g}/s (burst {sec.burst})" if sec.tps else "none"
    print(f"limits   timeout {sec.timeout:g} s, TPS cap {cap}, breaker after "
          f"{sec.breaker_failures} failures for {sec.breaker_cooldown:g} s", file=out)
    if live is not None and live["route"] != match.route:
        print(f"note     the running gateway routes this number to {live['route']!r}: its "
              "configuration differs from this file (reload it?)", file=out)
    print("methods  tried in order while the outcome is retryable:", file=out)
    running_route = live["routes"].get(match.route) if live is not None else None
    for i, (m, label) in enumerate(zip(sec.methods, labels)):
        state = _method_state(config, m, i, live, running_route)
        print(f"  {i + 1}. {label}", file=out)
        if state:
            print(f"     {state}", file=out)
    return EXIT_OK


def _method_state(config: Any, m: Any, i: int, live: dict[str, Any] | None,
                  running_route: dict[str, Any] | None) -> str:
    if m.linkset is None:
        return ""
    ls = config.linkset(m.linkset)
    members = ", ".join(ls.associations) if ls is not None else "?"
    cap = f"; TPS cap {ls.tps:g}/s" if ls is not None and ls.tps else ""
    if live is None:
        return f"link set {m.linkset} [{members}]{cap}: not running"
    running = live["linksets"].get(m.linkset)
    if running is None:
        return f"link set {m.linkset}: not in the running gateway"
    states = ", ".join(f"{a['name']} {a['asp_state']}" + (" draining" if a["draining"] else "")
                       for a in running["members"])
    text = f"link set {m.linkset} {'UP' if running['up'] else 'DOWN'} [{states}]{cap}"
    if running_route is not None:
        methods = running_route.get("methods", [])
        if i < len(methods):
            text += f"; breaker {methods[i]['breaker']}"
    return text


def cmd_route_test(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    client = AdminClient(args.admin, args.token or os.environ.get("HLRGW_ADMIN_TOKEN"),
                         timeout=120.0)
    body: dict[str, Any] = {"number": args.number}
    if args.operation:
        body["operation"] = args.operation
    try:
        o = client.json("POST", "/lookup", body)
    except AdminError as exc:
        print(f"hlrgw route test: {exc}", file=err)
        return EXIT_PROBLEM
    via = f" (prefix {o['prefix']})" if o["prefix"] else " (default route)" if o["route"] \
        else ""
    print(f"number   {o['number']} -> route {o['route'] or 'none'}{via}", file=out)
    print(f"status   {o['status']} in {o['latency_ms']:g} ms: {o['detail']}", file=out)
    for a in o["attempts"]:
        print(f"  {a['method'] + 1}. {a['label']}: {a['status']}, {a['detail']} "
              f"({a['latency_ms']:g} ms)", file=out)
    answer = o.get("answer")
    if answer:
        shown = ", ".join(f"{k} {v}" for k, v in answer.items() if v is not None)
        print(f"answer   {shown}", file=out)
    return EXIT_OK if o["status"] == "answered" else EXIT_PROBLEM


# --------------------------------------------------------------------------- trace


def cmd_trace(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    token = args.token or os.environ.get("HLRGW_ADMIN_TOKEN")
    client = AdminClient(args.admin, token)
    kind, target = next((k, v) for k in ("link", "route", "number")
                        if (v := getattr(args, k)) is not None)
    try:
        info = client.json("POST", "/traces", {kind: target, "seconds": args.seconds},
                           ok=(201,))
        print(f"tracing {kind} {target} for {args.seconds:g} s (trace {info['id']})", file=err)
        time.sleep(max(0.0, info["ends"] - time.time()))
        deadline = time.monotonic() + 30
        while info["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
            info = client.json("GET", f"/traces/{info['id']}")
        if info["state"] == "running":
            raise AdminError("the trace did not end in time")
        status, raw, _ = client.call("GET", f"/traces/{info['id']}/pcap")
        if status != 200:
            try:
                why = json.loads(raw).get("error", raw)
            except ValueError:
                why = raw[:200]
            raise AdminError(f"GET /traces/{info['id']}/pcap: HTTP {status}: {why}")
    except AdminError as exc:
        print(f"hlrgw trace: {exc}", file=err)
        return EXIT_PROBLEM
    fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(raw)
    state = info["state"] + (f" ({info['error']})" if info.get("error") else "")
    print(f"{args.output}: {info['packets']} messages, {len(raw)} bytes; trace {state}",
          file=out)
    return EXIT_OK


# --------------------------------------------------------------------------- serve


def cmd_serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from gateway.config import ConfigInvalid
    from gateway.service import Service, ServiceError

    service = Service(args.config)

    async def main() -> None:
        await service.run()

    try:
        _run(main())
    except ConfigInvalid as exc:
        print(exc.report(), file=err)
        print(f"hlrgw serve: {args.config} is invalid; not starting", file=err)
        return EXIT_PROBLEM
    except ServiceError as exc:
        print(f"hlrgw serve: {exc}", file=err)
        return EXIT_PROBLEM
    return EXIT_OK


def _run(coro: Any) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; stay usable without it
        asyncio.run(coro)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(coro)
