"""The ``hlrgw`` command line: version, help and ``decode`` (``demo``: tests/test_demo.py)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import __version__
from gateway.cli import main, pretty
from tests.vectors import VECTORS

ROOT = Path(__file__).resolve().parent.parent
ASP_UP = "0100030100000008"


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"hlrgw {__version__}"


def test_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("demo", "serve", "simulate", "decode", "config", "route", "trace"):
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


@pytest.mark.parametrize("bad", ["zz", "0100030", "   ", "01 00 03 0g"])
def test_decode_bad_hex_exits_1(bad, capsys):
    assert main(["decode", bad]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("hlrgw decode: bad input: ")
    assert captured.out == ""


def test_decode_asp_up(capsys):
    assert main(["decode", ASP_UP]) == 0
    out = capsys.readouterr().out
    assert out.startswith("M3UA AspUp <8 bytes>\n")
    assert "SCCP" not in out and "TCAP" not in out


def test_decode_truncated_message_names_layer_field_offset(capsys):
    # Header claims 16 bytes but carries 8.
    assert main(["decode", "0100030100000010"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hlrgw decode: M3UA: message length at offset 4")


def test_decode_walks_every_layer_down_to_map(capsys):
    assert main(["decode", VECTORS["srism_v3_end_result"].m3ua.hex()]) == 0
    out = capsys.readouterr().out
    heads = [line for line in out.splitlines() if not line.startswith(" ")]
    assert heads == ["M3UA Data <152 bytes>", "SCCP Unitdata", "TCAP End",
                     "MAP v3 component 0: RoutingInfoForSmRes"]
    assert "digits='234150999999999'" in out  # the IMSI
    assert "digits='447700990001'" in out  # the serving MSC


def test_decode_map_error_and_inner_codec_error(capsys):
    assert main(["decode", VECTORS["srism_end_error_absent"].m3ua.hex()]) == 0
    assert "AbsentSubscriberDiagnosticSM.IMSI_DETACHED (1)" in capsys.readouterr().out
    bad = bytearray(VECTORS["srism_v3_begin"].m3ua)
    bad[32] = 0x07  # SCCP message type (after the M3UA header, RC and routing label)
    assert main(["decode", bad.hex()]) == 1
    assert capsys.readouterr().err.startswith("hlrgw decode: SCCP: message type at offset 0")


@dataclasses.dataclass
class FakeProtocolData:
    opc: int
    data: bytes


@dataclasses.dataclass
class FakeM3ua:
    protocol_data: FakeProtocolData | None


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
