"""The ``hlrgw`` command line.

``hlrgw decode HEX`` works today: it decodes one M3UA message through the codecs in
:mod:`protocols` and prints every layer it can (M3UA, then the SCCP inside a DATA message, then
the TCAP inside SCCP). ``demo``, ``serve`` and ``simulate`` arrive with the runtime, simulator and
HTTP gateway; until then they say so and exit with :data:`EXIT_NOT_YET`.

Exit status: 0 success, 1 undecodable input, 2 usage error (argparse), 3 not yet available.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from gateway import __version__

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_NOT_YET = 3

_NOT_YET = {
    "demo": "start the simulator's example network and a gateway wired to it",
    "serve": "run the HTTP lookup gateway with the given configuration",
    "simulate": "run the network simulator (HLR, MSCs, SIP number portability) from a file",
}

# M3UA message class and type names (RFC 4666 §3.1.2), for the one-line layer summary.
_M3UA_NAMES: dict[int, tuple[str, dict[int, str]]] = {
    0: ("MGMT", {0: "ERR", 1: "NTFY"}),
    1: ("Transfer", {1: "DATA"}),
    2: ("SSNM", {1: "DUNA", 2: "DAVA", 3: "DAUD", 4: "SCON", 5: "DUPU", 6: "DRST"}),
    3: (
        "ASPSM",
        {
            1: "ASP Up",
            2: "ASP Down",
            3: "Heartbeat",
            4: "ASP Up Ack",
            5: "ASP Down Ack",
            6: "Heartbeat Ack",
        },
    ),
    4: ("ASPTM", {1: "ASP Active", 2: "ASP Inactive", 3: "ASP Active Ack", 4: "ASP Inactive Ack"}),
    9: ("RKM", {1: "REG REQ", 2: "REG RSP", 3: "DEREG REQ", 4: "DEREG RSP"}),
}


def m3ua_summary(msg: bytes) -> str:
    """Name an M3UA message from its common header alone, e.g. ``ASPSM ASP Up``."""
    if len(msg) < 4:
        return "(too short for an M3UA header)"
    cls, typ = msg[2], msg[3]
    cname, types = _M3UA_NAMES.get(cls, (f"class {cls}", {}))
    return f"{cname} {types.get(typ, f'type {typ}')}"


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


def _codec_error_type() -> type[Exception]:
    try:
        return importlib.import_module("protocols.errors").CodecError
    except (ImportError, AttributeError):  # codecs still being written: nothing matches
        return type("_NoCodecError", (Exception,), {})


# Each layer: its name, its module, and how to find the next layer's bytes in its decoded value.
_LAYERS: list[tuple[str, str, Callable[[Any], Any]]] = [
    ("M3UA", "protocols.m3ua", lambda m: getattr(getattr(m, "protocol_data", None), "data", None)),
    ("SCCP", "protocols.sccp", lambda m: getattr(m, "data", None)),
    ("TCAP", "protocols.tcap", lambda m: None),
]


def cmd_decode(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        data: bytes | None = _parse_hex(args.hex)
    except ValueError as exc:
        print(f"hlrgw decode: bad input: {exc}", file=err)
        return EXIT_BAD_INPUT
    codec_error = _codec_error_type()
    for depth, (layer, module_name, inner) in enumerate(_LAYERS):
        if data is None:
            break
        summary = f" {m3ua_summary(data)}" if layer == "M3UA" else ""
        print(f"{layer}{summary} <{len(data)} bytes>", file=out)
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            note = f"{module_name} is not available yet ({exc})"
            if depth == 0:
                print(f"hlrgw decode: {note}", file=err)
                return EXIT_NOT_YET
            print(f"  not decoded: {note}; raw {data.hex()}", file=out)
            break
        try:
            value = module.decode(data)
        except codec_error as exc:
            print(f"hlrgw decode: {exc}", file=err)
            return EXIT_BAD_INPUT
        print("  " + pretty(value, indent=2), file=out)
        data = inner(value)
        if data is not None:
            data = bytes(data)
    return EXIT_OK


def cmd_not_yet(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    print(
        f"hlrgw {args.command}: not yet available: will {_NOT_YET[args.command]}; see README.md",
        file=err,
    )
    return EXIT_NOT_YET


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hlrgw",
        description="HLR lookup gateway: HTTP lookups answered over SS7 MAP and SIP.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "demo", help="run the gateway against the simulator's example network (not yet available)"
    )
    p.set_defaults(func=cmd_not_yet)

    p = sub.add_parser("serve", help="run the HTTP lookup gateway (not yet available)")
    p.add_argument("--config", metavar="FILE", required=True, help="gateway configuration file")
    p.set_defaults(func=cmd_not_yet)

    p = sub.add_parser("simulate", help="run the network simulator (not yet available)")
    p.add_argument("--network", metavar="FILE", required=True, help="network description file")
    p.set_defaults(func=cmd_not_yet)

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
