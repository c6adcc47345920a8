"""The ``hlrgw`` command line: version, help, the not-yet commands, and ``decode``."""

from __future__ import annotations

import dataclasses
import enum
import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import pytest

from gateway import __version__
from gateway.cli import main, pretty

ROOT = Path(__file__).resolve().parent.parent
ASP_UP = "0100030100000008"


def _m3ua_available() -> bool:
    try:
        return importlib.util.find_spec("protocols.m3ua") is not None
    except ImportError:
        return False


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"hlrgw {__version__}"


def test_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("demo", "serve", "simulate", "decode"):
        assert command in out


def test_module_entry_point():
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--version"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"hlrgw {__version__}"


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2
    assert "usage: hlrgw" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["demo"], ["serve", "--config", "gw.toml"], ["simulate", "--network", "net.toml"]]
)
def test_not_yet_commands_exit_3(argv, capsys):
    assert main(argv) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert err.startswith(f"hlrgw {argv[0]}: not yet available: will ")
    assert "README" in err
    assert "\n" not in err


@pytest.mark.parametrize("bad", ["zz", "0100030", "   ", "01 00 03 0g"])
def test_decode_bad_hex_exits_1(bad, capsys):
    assert main(["decode", bad]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("hlrgw decode: bad input: ")
    assert captured.out == ""


def test_decode_asp_up_with_real_codec(capsys):
    if not _m3ua_available():
        pytest.skip("protocols.m3ua is not written yet")
    from protocols import m3ua

    assert main(["decode", ASP_UP]) == 0
    out = capsys.readouterr().out
    assert out.startswith("M3UA ASPSM ASP Up <8 bytes>\n")
    assert type(m3ua.decode(bytes.fromhex(ASP_UP))).__name__ in out


def test_decode_real_codec_rejects_truncated_message(capsys):
    if not _m3ua_available():
        pytest.skip("protocols.m3ua is not written yet")
    # Header claims 16 bytes but carries 8.
    assert main(["decode", "0100030100000010"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hlrgw decode: M3UA")


# --- decode's layering, against stand-in codecs (independent of the real ones) --------------------


class Kind(enum.IntEnum):
    UDT = 9


@dataclasses.dataclass
class FakeProtocolData:
    opc: int
    data: bytes


@dataclasses.dataclass
class FakeM3ua:
    protocol_data: FakeProtocolData | None


@dataclasses.dataclass
class FakeSccp:
    kind: Kind
    data: bytes


@dataclasses.dataclass
class FakeTcap:
    otid: bytes
    components: list


@pytest.fixture
def fake_codecs(monkeypatch):
    from protocols.errors import CodecError, Layer

    def m3ua_decode(b: bytes) -> FakeM3ua:
        if b[3] == 1 and b[2] == 1:
            return FakeM3ua(FakeProtocolData(1, b[8:]))
        return FakeM3ua(None)

    def sccp_decode(b: bytes) -> FakeSccp:
        if b[0] != 9:
            raise CodecError(Layer.SCCP, "message type", 0, f"unknown message type {b[0]:#04x}")
        return FakeSccp(Kind.UDT, b[1:])

    def tcap_decode(b: bytes) -> FakeTcap:
        return FakeTcap(b, [1, {"op": 45}])

    for name, fn in (("m3ua", m3ua_decode), ("sccp", sccp_decode), ("tcap", tcap_decode)):
        mod = types.ModuleType(f"protocols.{name}")
        mod.decode = fn
        monkeypatch.setitem(sys.modules, f"protocols.{name}", mod)


def test_decode_walks_all_layers(fake_codecs, capsys):
    assert main(["decode", "01000101 00000010 09 62aabb"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "M3UA Transfer DATA <12 bytes>"
    assert "SCCP <4 bytes>" in out
    assert "kind=Kind.UDT (9)," in out
    assert "TCAP <3 bytes>" in out
    assert "otid=<3 bytes> 62aabb," in out


def test_decode_stops_when_no_payload(fake_codecs, capsys):
    assert main(["decode", ASP_UP]) == 0
    out = capsys.readouterr().out
    assert "protocol_data=None" in out
    assert "SCCP" not in out


def test_decode_codec_error_exits_1(fake_codecs, capsys):
    assert main(["decode", "0100010100000010" + "07aabbcc"]) == 1
    captured = capsys.readouterr()
    assert "M3UA Transfer DATA" in captured.out
    assert captured.err.strip() == (
        "hlrgw decode: SCCP: message type at offset 0: unknown message type 0x07"
    )


def test_decode_reports_missing_inner_layer(fake_codecs, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "protocols.tcap", None)  # import raises ImportError
    assert main(["decode", "0100010100000010" + "0962aabb"]) == 0
    out = capsys.readouterr().out
    assert "not decoded: protocols.tcap is not available yet" in out
    assert "raw 62aabb" in out


def test_decode_without_m3ua_codec_exits_3(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "protocols.m3ua", None)
    assert main(["decode", ASP_UP]) == 3
    assert "protocols.m3ua is not available yet" in capsys.readouterr().err


def test_pretty_nests_and_indents():
    text = pretty(FakeM3ua(FakeProtocolData(7, b"\x01\x02")))
    assert text == (
        "FakeM3ua(\n"
        "  protocol_data=FakeProtocolData(\n"
        "    opc=7,\n"
        "    data=<2 bytes> 0102,\n"
        "  ),\n"
        ")"
    )


def test_pretty_keeps_short_scalar_sequences_inline():
    assert pretty((0, 4, 0, 0, 1, 0, 20, 3)) == "(0, 4, 0, 0, 1, 0, 20, 3)"
    assert pretty([FakeProtocolData(1, b"")]) == (
        "[\n  FakeProtocolData(\n    opc=1,\n    data=<0 bytes>,\n  ),\n]"
    )
