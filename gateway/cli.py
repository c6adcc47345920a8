"""The ``hlrgw`` command line.

``hlrgw decode HEX`` decodes one M3UA message through the codecs in :mod:`protocols` and
prints every layer (M3UA, then the SCCP inside a DATA message, the TCAP inside SCCP and the MAP
operations inside the TCAP components). ``hlrgw simulate --network FILE`` runs the network
simulator (:mod:`simulators.cli`). ``config check``, ``route explain``, ``trace`` and
``serve`` are the network engineer's commands (:mod:`gateway.netcli`). ``demo`` runs the
simulator's example network and a gateway wired to it (:mod:`gateway.demo`).

Exit status: 0 success, 1 undecodable input, 2 usage error (argparse).
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from gateway import __version__

EXIT_OK = 0
EXIT_BAD_INPUT = 1


def pretty(value: Any, indent: int = 0, step: int = 2) -> str:
    """Render a codec value readably: nested dataclasses indented one field a line,
    bytes as hex with their length, enums as ``Name.MEMBER (value)``."""
    pad, inner = " " * indent, " " * (indent + step)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = [f for f in dataclasses.fields(value) if f.repr]
        if not fields:
            return f"{type(value).__name__}()"
        lines = [f"{type(value).__name__}("]
        for f in fields:
            lines.append(f"{inner}{f.name}={pretty(getattr(value, f.name), indent + step)},")
        lines.append(f"{pad})")
        return "\n".join(lines)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        return f"<{len(raw)} bytes> {raw.hex()}" if raw else "<0 bytes>"
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name} ({value.value!r})"
    if isinstance(value, list | tuple) and value:
        if all(isinstance(v, int | float | str | None) for v in value) and len(repr(value)) <= 80:
            return repr(value)  # e.g. an OID: (0, 4, 0, 0, 1, 0, 20, 3)
        opener, closer = ("[", "]") if isinstance(value, list) else ("(", ")")
        items = [f"{inner}{pretty(v, indent + step)}," for v in value]
        return "\n".join([opener, *items, f"{pad}{closer}"])
    if isinstance(value, dict) and value:
        items = [f"{inner}{k!r}: {pretty(v, indent + step)}," for k, v in value.items()]
        return "\n".join(["{", *items, f"{pad}}}"])
    return repr(value)


def _parse_hex(parts: Sequence[str]) -> bytes:
    text = "".join(parts)
    for sep in (" ", ":", "\t", "\n", "\r"):
        text = text.replace(sep, "")
    if text[:2].lower() == "0x":
        text = text[2:]
    if not text:
        raise ValueError("no hex digits given")
    try:
        return bytes.fromhex(text)
    except ValueError:
        if len(text) % 2:
            raise ValueError(f"odd number of hex digits ({len(text)})") from None
        raise ValueError("not hexadecimal (expected digits 0-9 and a-f)") from None


def cmd_decode(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from protocols.errors import CodecError
    from protocols.stack import decode_stack

    try:
        data = _parse_hex(args.hex)
    except ValueError as exc:
        print(f"hlrgw decode: bad input: {exc}", file=err)
        return EXIT_BAD_INPUT
    try:
        stack = decode_stack(data)
    except CodecError as exc:
        print(f"hlrgw decode: {exc}", file=err)
        return EXIT_BAD_INPUT
    print(f"M3UA {type(stack.m3ua).__name__} <{len(data)} bytes>", file=out)
    print("  " + pretty(stack.m3ua, indent=2), file=out)
    if stack.sccp is not None:
        print(f"SCCP {type(stack.sccp).__name__}", file=out)
        print("  " + pretty(stack.sccp, indent=2), file=out)
    if stack.tcap is not None:
        print(f"TCAP {type(stack.tcap).__name__}", file=out)
        print("  " + pretty(stack.tcap, indent=2), file=out)
    for i, operation in enumerate(stack.operations):
        if operation is not None:
            print(f"MAP v{stack.map_version} component {i}: {type(operation).__name__}",
                  file=out)
            print("  " + pretty(operation, indent=2), file=out)
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from simulators.cli import run

    return run(args, out, err)


def cmd_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from gateway.demo import cmd_demo as run

    return run(args, out, err)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hlrgw",
        description="HLR lookup gateway: HTTP lookups answered over SS7 MAP and SIP.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "demo", help="run the gateway against the simulator's example network",
        description="Start the simulator's example network and a gateway wired to it (a "
        "SQLite store in the data directory, the in-process cache), create a demo customer, "
        "print the base URL, its API key and a curl per service; run until Ctrl-C.")
    from gateway.demo import add_arguments as demo_arguments

    demo_arguments(p)
    p.set_defaults(func=cmd_demo)

    from gateway.netcli import add_commands as network_commands

    network_commands(sub)  # config check, route explain, trace, serve (gateway/netcli.py)

    from gateway.customers_cli import add_commands as customer_commands

    customer_commands(sub)  # customers add, list, revoke, rotate, set (gateway/customers_cli.py)

    p = sub.add_parser(
        "simulate", help="run the network simulator: simulated HLRs and a control API",
        description="Start the simulated operator networks of a network file on 127.0.0.1 "
        "(an M3UA HLR endpoint each) and the control API; run until SIGINT or SIGTERM. "
        "See docs/simulator.md.")
    from simulators.cli import add_arguments as simulate_arguments

    simulate_arguments(p)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser(
        "decode",
        help="decode a hex M3UA message layer by layer (M3UA, SCCP, TCAP)",
        description="Decode one M3UA message given in hex (spaces and colons are ignored) and "
        "print each layer the codecs can decode.",
    )
    p.add_argument("hex", nargs="+", metavar="HEX", help="the M3UA message, e.g. 0100030100000008")
    p.set_defaults(func=cmd_decode)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``hlrgw`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_OK if exc.code is None else 2
    try:
        return args.func(args, sys.stdout, sys.stderr)
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13  # as a shell reports SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
