"""``hlrgw simulate``: run the simulator from a network file until SIGINT or SIGTERM.

It prints each endpoint's listening address, GT, point code and routing context, the SIP NP
server's addresses (with ``[sip]``) and the control API's URL, then serves until told to stop,
and stops cleanly (associations and listeners closed, exit status 0). A network file that does
not load is reported with the key at fault (exit status 1), as is a port already in use.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .runner import Simulator

__all__ = ["add_arguments", "run", "wait_for_stop_signal"]

EXIT_OK = 0
EXIT_BAD_INPUT = 1


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--network", metavar="FILE", required=True,
                   help="network file (TOML), e.g. config/network.example.toml")
    p.add_argument("--seed", type=int, metavar="N", default=None,
                   help="seed for the random faults (default: the file's [simulator] seed)")
    p.add_argument("--control-port", type=int, metavar="P", default=None,
                   help="control API port on 127.0.0.1 (default: the file's, 8905; 0: any)")
    p.add_argument("--ephemeral", action="store_true",
                   help="listen on free ports chosen by the kernel instead of the file's")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="log associations and faults (-vv: every detail) to stderr")


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .config import ConfigError, load_config
    from .runner import Simulator

    try:
        config = load_config(args.network)
    except ConfigError as exc:
        print(f"hlrgw simulate: {exc}", file=err)
        return EXIT_BAD_INPUT
    if args.seed is not None and args.seed < 0:
        print("hlrgw simulate: --seed must be >= 0", file=err)
        return 2
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, stream=err,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    control_port = config.control_port if args.control_port is None else args.control_port
    sim = Simulator(config, seed=args.seed, control_port=control_port,
                    use_file_ports=not args.ephemeral)
    try:
        return asyncio.run(_serve(sim, out, err))
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        return 130


async def _serve(sim: Simulator, out: TextIO, err: TextIO) -> int:
    try:
        await sim.start()
    except OSError as exc:
        print(f"hlrgw simulate: cannot listen: {exc.strerror or exc} (a port of the network "
              "file is in use? try --ephemeral)", file=err)
        return EXIT_BAD_INPUT
    try:
        _banner(sim, out)
        await wait_for_stop_signal()
        print("hlrgw simulate: stopping", file=out, flush=True)
    finally:
        await sim.stop()
    print("hlrgw simulate: stopped", file=out, flush=True)
    return EXIT_OK


async def wait_for_stop_signal() -> None:
    """Return at SIGINT or SIGTERM (where the loop can take signal handlers)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


def _banner(sim: Simulator, out: TextIO) -> None:
    cfg = sim.config
    nets = cfg.model.networks
    print(f"hlrgw simulate: {len(nets)} networks from {cfg.source} (seed {sim.seed})", file=out)
    width = max(len(n) for n in sim.hlrs)
    for name, hlr in sim.hlrs.items():
        ep = sim.endpoint(name)
        sctp = f", sctp {ep.host}:{ep.sctp_port}" if ep.sctp_port else ""
        what = nets[name].operator if name in nets else hlr.endpoint.operator
        print(f"  {name:<{width}}  m3ua tcp {ep.host}:{ep.port}{sctp}  GT {ep.gt}  "
              f"PC {ep.point_code}  RC {ep.routing_context}  ({what})", file=out)
        if hlr.sctp_unavailable:
            print(f"  {'':<{width}}  (no SCTP: {hlr.sctp_unavailable})", file=out)
    sip = sim.sip_endpoint
    if sip is not None:
        print(f"SIP NP server: udp {sip.host}:{sip.udp_port}, tcp {sip.host}:{sip.tcp_port}",
              file=out)
    print(f"control API: {sim.control_url}/", file=out)
    print("ready; Ctrl-C (SIGINT) or SIGTERM stops", file=out, flush=True)
