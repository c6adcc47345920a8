"""Run Wireshark's dissectors (tshark) over M3UA messages as an independent wire check.

Uses ``../shared/tools/wireshark-decode`` (text2pcap wraps each message in SCTP DATA, PPID 3).
When tshark is missing the calling test is skipped with the reason, unless
``HLRGW_REQUIRE_TSHARK=1`` (set by the project's test command, which installs tshark), in
which case it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parent.parent.parent / "shared" / "tools" / "wireshark-decode"


def _require() -> None:
    missing = [p for p in ("tshark", "text2pcap") if shutil.which(p) is None]
    if not TOOL.exists():
        missing.append(str(TOOL.name) + " (../shared/tools)")
    if missing:
        reason = f"Wireshark check needs {', '.join(missing)} (Debian: apt-get install -y tshark)"
        if os.environ.get("HLRGW_REQUIRE_TSHARK") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def decode(messages: list[bytes], fields: list[str] | None = None, json: bool = False) -> str:
    """Dissect whole M3UA messages; fail the test if tshark marks any malformed.

    Returns tshark's text (``-V``), its JSON (``json=True``) or tab-separated ``fields``, one
    line per message.
    """
    _require()
    args = ["bash", str(TOOL)]
    if fields:
        args += ["-f", ",".join(fields)]
    if json:
        args.append("-j")
    args.append("-")
    stdin = "".join(m.hex() + "\n" for m in messages)
    proc = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        pytest.fail(f"wireshark-decode exit {proc.returncode}: {proc.stderr.strip()}\n"
                    f"{proc.stdout}")
    return proc.stdout
