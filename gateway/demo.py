"""``hlrgw demo``: the simulator's example network and a gateway wired to it, in one process.

1. starts the :class:`~simulators.runner.Simulator` on ``config/network.example.toml``, every
   HLR endpoint and its control API on free loopback ports;
2. writes a gateway configuration generated from ``config/demo.toml`` (:func:`demo_config`):
   each association pointed at the port of the endpoint with its routing context, the
   lookup API on ``--port`` (8080, or a free port when that one is taken), the admin API on
   a free port, a SQLite store and the trace directory in the data directory
   (``--data-dir``, default ``$XDG_DATA_HOME/hlrgw/demo``, i.e.
   ``~/.local/share/hlrgw/demo``), the in-process cache;
3. starts the gateway (:class:`~gateway.service.Service`), waits for its links, creates the
   customer ``demo`` entitled to every service (a new key when it exists from an earlier
   run: the store, and with it the port history, persists in the data directory);
4. prints the base URL, the API key, the admin API and one curl per service with numbers of
   the example network (docs/simulator.md), and runs until Ctrl-C (SIGINT) or SIGTERM;
   then stops the gateway and the simulator cleanly.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

__all__ = ["add_arguments", "cmd_demo", "demo_config", "default_data_dir"]

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "config"
DEMO_TOML = CONFIG_DIR / "demo.toml"
NETWORK_TOML = CONFIG_DIR / "network.example.toml"

EXIT_OK = 0
EXIT_PROBLEM = 1

#: sections demo_config writes itself (the template's are dropped)
_OWN_SECTIONS = ("http", "admin", "storage", "cache", "logging", "traces")
#: the template's SIP redirect front end: kept only when demo_config is given a port for it
_SIP_REDIRECT = ("sip_redirect", "sip_redirect.clients")

#: (service, path, what it shows) printed by the demo
EXAMPLES = (
    ("hlr", "/v1/hlr/447555100001", "connected (Vodafone UK)"),
    ("hlr", "/v1/hlr/447555100008", "roaming in Germany"),
    ("hlr", "/v1/hlr/447555100002", "absent: IMSI detached"),
    ("mnp", "/v1/mnp/447555100007", "a Vodafone number ported to EE"),
    ("ranges", "/v1/ranges/4915110000001", "a Telekom Deutschland range"),
    ("port_history", "/v1/port-history/447555100007?window=P2Y", "ports seen in 2 years"),
)


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                           "share")
    return Path(base) / "hlrgw" / "demo"


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def demo_config(ports_by_rc: Mapping[int, int], *, http_port: int = 8080,
                admin_port: int = 0, storage_url: str, traces_dir: str | Path,
                cache_url: str = "memory://", cache_ttl: float = 60.0,
                log_format: str = "console", log_level: str = "info",
                timer_m: float | None = None, route_timeout: float | None = None,
                template: Path = DEMO_TOML, hub_tps: float | None = None,
                breaker_failures: int | None = None,
                sip_redirect_port: int | None = None) -> str:
    """The text of a gateway configuration made from ``template`` (config/demo.toml):

    - each association's ``remote_port`` is the port of the endpoint serving its
      ``routing_context`` (``ports_by_rc``);
    - files named relative to the template (range tables, MNP files) become absolute;
    - ``[http]``, ``[admin]``, ``[storage]``, ``[cache]``, ``[logging]`` and ``[traces]``
      are written from the arguments (the template's are dropped);
    - ``timer_m``, ``route_timeout`` (every route's ``timeout``), ``breaker_failures``
      (every route's) and ``hub_tps`` (the hub link set's TPS cap; 0 drops it) replace the
      template's when given;
    - ``[sip_redirect]`` is dropped, unless ``sip_redirect_port`` is given: then it listens
      on that port (0: free ones).
    """
    text = template.read_text(encoding="utf-8")
    base = template.resolve().parent
    blocks = re.split(r"(?m)^(?=\[)", text)
    out: list[str] = []
    for block in blocks:
        header = re.match(r"\[\[?\s*([A-Za-z0-9_.]+)\s*\]\]?", block)
        name = header.group(1) if header else None
        if name in _OWN_SECTIONS or (name in _SIP_REDIRECT and sip_redirect_port is None):
            continue
        if name == "sip_redirect":
            block = re.sub(r"(?m)^(port\s*=\s*)\d+", rf"\g<1>{sip_redirect_port}", block)
        if name == "associations":
            rc = re.search(r"(?m)^\s*routing_context\s*=\s*(\d+)", block)
            if rc is None or int(rc.group(1)) not in ports_by_rc:
                raise ValueError(f"no simulator endpoint for the association block:\n{block}")
            port = ports_by_rc[int(rc.group(1))]
            block, n = re.subn(r"(?m)^(\s*remote_port\s*=\s*)\d+", rf"\g<1>{port}", block)
            if n != 1:
                raise ValueError(f"an association without remote_port:\n{block}")
        if name in ("range_tables", "mnp_sources"):
            block = re.sub(r'(?m)^(\s*file\s*=\s*)"([^"]+)"',
                           lambda m: m.group(1) + _toml_str(str(base / m.group(2))), block)
        if name == "map" and timer_m is not None:
            block = re.sub(r"(?m)^(\s*timer_m\s*=\s*)[0-9.]+", rf"\g<1>{timer_m}", block)
        if name == "routes" and breaker_failures is not None:
            block = re.sub(r"(?m)^breaker_failures\s*=.*\n", "", block)
            block = re.sub(r"(?m)^(name\s*=.*)$",
                           rf"\g<1>\nbreaker_failures = {breaker_failures}", block, count=1)
        if name == "routes" and route_timeout is not None:
            if re.search(r"(?m)^timeout\s*=", block):
                block = re.sub(r"(?m)^(timeout\s*=\s*)[0-9.]+", rf"\g<1>{route_timeout}", block)
            else:
                block = re.sub(r"(?m)^(name\s*=.*)$", rf"\g<1>\ntimeout = {route_timeout}",
                               block, count=1)
        if name == "linksets" and hub_tps is not None and re.search(r'(?m)^name\s*=\s*"hub"',
                                                                    block):
            block = re.sub(r"(?m)^(tps|burst)\s*=.*\n", "", block)
            if hub_tps > 0:
                burst = max(1, int(hub_tps))
                block = block.rstrip("\n") + f"\ntps = {hub_tps}\nburst = {burst}\n\n"
        out.append(block)
    own = f"""
# ---- written by the demo --------------------------------------------------------------------

[http]
listen = "127.0.0.1"
port = {http_port}

[admin]
listen = "127.0.0.1"
port = {admin_port}
token_env = "HLRGW_ADMIN_TOKEN"

[storage]
url = {_toml_str(storage_url)}

[cache]
url = {_toml_str(cache_url)}
ttl = {cache_ttl}

[logging]
level = {_toml_str(log_level)}
format = {_toml_str(log_format)}

[traces]
directory = {_toml_str(str(traces_dir))}
expire_after = 3600
max_seconds = 300
"""
    return "".join(out).rstrip("\n") + "\n" + own


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=8080, metavar="P",
                   help="the lookup API's port on 127.0.0.1 (default 8080; a free one when "
                   "it is taken; 0: any free port)")
    p.add_argument("--data-dir", metavar="DIR", default=None,
                   help=f"where the store, the configuration and traces live (default "
                   f"{default_data_dir()})")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="the simulator's seed (default: the network file's)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="log every request and link event to stderr")


def _port_free(port: int) -> bool:
    if port == 0:
        return True
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cmd_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from gateway.netcli import _run

    if not DEMO_TOML.exists() or not NETWORK_TOML.exists():
        print(f"hlrgw demo: {DEMO_TOML} or {NETWORK_TOML} is missing: run the demo from a "
              "clone of hlr-gateway (scripts/demo)", file=err)
        return EXIT_PROBLEM
    result = [EXIT_OK]

    async def main() -> None:
        result[0] = await _demo(args, out, err)

    try:
        _run(main())
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        return 130
    except OSError as exc:  # the data directory, a port
        print(f"hlrgw demo: cannot start: {exc}", file=err)
        return EXIT_PROBLEM
    return result[0]


async def _demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from gateway.config import ConfigInvalid
    from gateway.customers import SERVICES, CustomerError, Customers
    from gateway.service import Service, ServiceError
    from simulators.cli import wait_for_stop_signal
    from simulators.runner import Simulator

    data = Path(args.data_dir).expanduser() if args.data_dir else default_data_dir()
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    sim = Simulator.from_file(NETWORK_TOML, seed=args.seed, control_port=0)
    await sim.start()
    service: Service | None = None
    try:
        ports = {ep.routing_context: ep.port for ep in sim.endpoints.values()}
        port = args.port if _port_free(args.port) else 0
        if port != args.port:
            print(f"hlrgw demo: port {args.port} is taken; using a free one", file=err)
        config_path = data / "gateway.toml"
        config_path.write_text(demo_config(
            ports, http_port=port, admin_port=0, storage_url=f"sqlite:///{data / 'hlrgw.db'}",
            traces_dir=data / "traces", log_level="info" if args.verbose else "warning"),
            encoding="utf-8")
        token = secrets.token_urlsafe(24)
        env = {**os.environ, "HLRGW_ADMIN_TOKEN": token}
        service = Service(config_path, env=env, http=True, log_stream=err)
        try:
            await service.start(wait_up=5.0)
        except ConfigInvalid as exc:
            print(exc.report(), file=err)
            print(f"hlrgw demo: the generated {config_path} is invalid", file=err)
            return EXIT_PROBLEM
        except ServiceError as exc:
            print(f"hlrgw demo: {exc}", file=err)
            return EXIT_PROBLEM
        customers = Customers(service.store)
        try:
            issued = await customers.add("demo", SERVICES, rate=100.0, inflight=50,
                                         see_imsi=True)
        except CustomerError:  # from an earlier run: a new key, the old ones end now
            await customers.update("demo", services=SERVICES, disabled_at=None)
            issued = await customers.rotate("demo", grace=0)
        base = f"http://127.0.0.1:{service.port_of('http')}"
        admin = f"http://127.0.0.1:{service.port_of('admin')}"
        _banner(out, base, admin, token, issued.key, sim, data)
        await wait_for_stop_signal()
        print("hlrgw demo: stopping", file=out, flush=True)
        return EXIT_OK
    finally:
        if service is not None:
            await service.stop()
        await sim.stop()
        print("hlrgw demo: stopped", file=out, flush=True)


def _banner(out: TextIO, base: str, admin: str, token: str, key: str, sim, data: Path
            ) -> None:
    w = out.write
    w("hlrgw demo: the simulator's example network and a gateway wired to it\n\n")
    w(f"  lookup API   {base}   (OpenAPI: {base}/openapi.json)\n")
    w(f"  API key      {key}\n")
    w("               (customer 'demo': every service, IMSIs unmasked)\n")
    w(f"  admin API    {admin}   token {token}\n")
    w(f"  simulator    control API {sim.control_url}/\n")
    w(f"  data         {data}  (store, configuration, traces)\n\n")
    w("Try:\n\n")
    w(f'  export HLRGW_KEY="{key}"\n')
    for _service, path, what in EXAMPLES:
        w(f"  # {what}\n")
        w(f'  curl -s -H "Authorization: Bearer $HLRGW_KEY" "{base}{path}"\n')
    w("\nEvery example number is in docs/simulator.md; the API in docs/api.md.\n")
    w("Ctrl-C stops.\n")
    out.flush()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(cmd_demo(argparse.Namespace(port=8080, data_dir=None, seed=None, verbose=False),
                      sys.stdout, sys.stderr))
