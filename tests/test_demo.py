"""``hlrgw demo`` as a user runs it: the banner, every curl it prints answered, Ctrl-C stops
it cleanly; a second run over the same data directory gets a new key (the old one ends) and
keeps the port history; the generated configuration passes ``config check``."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.demo import DEMO_TOML, demo_config

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def start(data: Path) -> tuple[subprocess.Popen, list[str]]:
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "demo", "--port", "0",
                             "--data-dir", str(data)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("Ctrl-C stops"):
            return proc, lines
    proc.kill()
    pytest.fail(f"no banner: {lines} {proc.stderr.read() if proc.stderr else ''}")


def stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("hlrgw demo did not stop on SIGINT")
    return proc.returncode, out


def get(url: str, key: str) -> tuple[int, dict]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_demo_prints_working_curls_and_stops_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    proc, banner = start(data)
    try:
        text = "\n".join(banner)
        base = re.search(r"lookup API\s+(http://127\.0\.0\.1:\d+)", text).group(1)
        key = re.search(r"API key\s+(hlrgw_\S+)", text).group(1)
        assert re.search(r"admin API\s+http://127\.0\.0\.1:\d+\s+token \S{16,}", text)
        curls = [ln.strip() for ln in banner if ln.strip().startswith("curl ")]
        assert len(curls) >= 4
        services = set()
        answers = {}
        for curl in curls:
            args = shlex.split(curl.replace("$HLRGW_KEY", key))
            url = args[-1]
            assert url.startswith(base + "/v1/")
            services.add(url[len(base):].split("/")[2])
            status, doc = get(url, key)
            assert status == 200, (url, doc)
            answers[url[len(base):]] = doc
        assert services == {"hlr", "mnp", "ranges", "port-history"}
        assert answers["/v1/hlr/447555100001"]["status"] == "connected"
        assert answers["/v1/hlr/447555100001"]["imsi"] == "234150555100001"  # unmasked
        assert answers["/v1/hlr/447555100008"]["roaming"] is True
        assert answers["/v1/hlr/447555100002"]["status"] == "absent"
        assert answers["/v1/mnp/447555100007"]["ported"] is True
        assert answers["/v1/ranges/4915110000001"]["range_holder"]["name"] == \
            "Telekom Deutschland"
        assert answers["/v1/port-history/447555100007?window=P2Y"]["current_network"][
            "name"] == "EE"
        status, doc = get(base + "/openapi.json", key)
        assert status == 200 and doc["openapi"] == "3.1.0"
    finally:
        rc, out = stop(proc)
    assert rc == 0
    assert out.rstrip().endswith("hlrgw demo: stopped")
    assert (data / "hlrgw.db").exists() and (data / "gateway.toml").exists()
    assert main(["config", "check", str(data / "gateway.toml")]) == 0

    # again over the same data: a new key, the old one refused, the history kept
    proc, banner = start(data)
    try:
        text = "\n".join(banner)
        base = re.search(r"lookup API\s+(http://127\.0\.0\.1:\d+)", text).group(1)
        new_key = re.search(r"API key\s+(hlrgw_\S+)", text).group(1)
        assert new_key != key
        assert get(base + "/v1/ranges/447555100001", key)[0] == 401
        status, doc = get(base + "/v1/port-history/447555100007", new_key)
        assert status == 200 and len(doc["observations"]) == 1
    finally:
        rc, _ = stop(proc)
    assert rc == 0


def test_demo_config_points_every_association_at_its_endpoint(tmp_path: Path) -> None:
    ports = {101: 30001, 102: 30002, 103: 30003, 201: 30004, 202: 30005, 100: 30006}
    text = demo_config(ports, http_port=0, admin_port=0, storage_url="sqlite:///x.db",
                       traces_dir=tmp_path / "t", timer_m=1.5, route_timeout=3.0,
                       breaker_failures=99, hub_tps=0)
    blocks = re.findall(r"(?s)\[\[associations\]\](.*?)(?=\n\[)", text)
    assert len(blocks) == 6
    for block in blocks:
        rc = int(re.search(r"routing_context = (\d+)", block).group(1))
        assert f"remote_port = {ports[rc]}" in block
    assert "timer_m = 1.5" in text and text.count("timeout = 3.0") == 6
    assert text.count("breaker_failures = 99") == 6
    assert "tps = 200" not in text
    assert str(DEMO_TOML.parent / "data" / "demo-ranges.csv") in text
    path = tmp_path / "gw.toml"
    path.write_text(text)
    assert main(["config", "check", str(path)]) == 0
    with pytest.raises(ValueError, match="no simulator endpoint"):
        demo_config({101: 1}, storage_url="sqlite:///x.db", traces_dir=tmp_path)
