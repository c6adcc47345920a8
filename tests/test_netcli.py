"""``hlrgw config check``, ``route explain`` and ``serve``: every example configuration
checks clean, problems print as FILE:LINE: KEY: MESSAGE with exit status 1, ``serve``
refuses an invalid file with the same messages, reloads on SIGHUP (keeping the running
configuration when the new file is bad) and stops on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import tomllib
from pathlib import Path

import aiohttp
import pytest

from gateway.cli import main
from tests.hlrnet import TOKEN, association, base, hlrs, linkset, route, write

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted(p for p in (ROOT / "config").glob("*.toml")
                 if "sccp" in tomllib.loads(p.read_text()))


def test_there_are_example_configs() -> None:
    names = {p.name for p in CONFIGS}
    assert {"demo.toml", "single-operator.toml", "international.toml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_config_checks_clean(path: Path, capsys) -> None:
    assert main(["config", "check", str(path)]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert out.startswith(f"{path}: OK: ") and "routes (1 default)" in out


def bad_file(tmp_path: Path) -> Path:
    demo = (ROOT / "config" / "demo.toml").read_text()
    text = demo.replace("dpc = 2101", "dpc = 21010").replace('linkset = "uk-ee"',
                                                             'linkset = "uk-eee"')
    path = tmp_path / "bad.toml"
    path.write_text(text)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "demo-ranges.csv").write_text(
        (ROOT / "config" / "data" / "demo-ranges.csv").read_text())
    return path


def expected_lines(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    dpc = next(i for i, t in enumerate(lines, 1) if "dpc = 21010" in t)
    ls = next(i for i, t in enumerate(lines, 1) if 'linkset = "uk-eee"' in t)
    return [f"{path}:{dpc}: associations[0].dpc: 21010 is out of range 0..16383",
            f"{path}:{ls}: routes[1].methods[0].linkset: unknown link set 'uk-eee'; did you "
            "mean 'uk-ee'?",
            "2 problems found"]


def test_config_check_reports_file_line_key_and_exit_1(tmp_path: Path, capsys) -> None:
    path = bad_file(tmp_path)
    assert main(["config", "check", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == expected_lines(path)


def test_route_explain_without_a_running_gateway(capsys) -> None:
    demo = str(ROOT / "config" / "demo.toml")
    assert main(["route", "explain", "+44 7555 100001", "--config", demo]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "number   447555100001"
    assert out[1] == "route    uk-vodafone: longest matching prefix 447555"
    assert "  1. map_sri_sm via uk-vodafone (GT = MSISDN)" in out
    assert "     link set uk-vodafone [uk-vodafone-hlr]: not running" in out
    assert main(["route", "explain", "33612345678", "--config", demo]) == 0
    out = capsys.readouterr().out
    assert "route    elsewhere: no prefix matches: the default route" in out
    assert "  3. reject (no HLR answered and no local data holds the number)" in out
    assert main(["route", "explain", "0044", "--config", demo]) == 1
    assert "is not an E.164 number" in capsys.readouterr().err


def test_serve_refuses_an_invalid_file_with_the_same_messages(tmp_path: Path, capsys) -> None:
    path = bad_file(tmp_path)
    assert main(["serve", "--config", str(path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[:3] == expected_lines(path)
    assert err[3] == f"hlrgw serve: {path} is invalid; not starting"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _get(url: str, path: str) -> dict:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as s:
        async with s.get(url + path) as r:
            return await r.json()


async def _until(pred, what: str, timeout: float = 15.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    last = None
    while loop.time() < end:
        try:
            last = await pred()
            if last:
                return last
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: last {last!r}")


@pytest.mark.slow
async def test_serve_reloads_on_sighup_and_stops_on_sigterm(tmp_path: Path) -> None:
    async with hlrs("a") as h:
        port = free_port()
        sri = 'kind = "map_sri_sm"\n  linkset = "ls"'
        parts = [base(admin_port=port, traces=tmp_path / "traces"),
                 association("a1", h["a"]), linkset("ls", ["a1"]),
                 route("uk", ["44"], [sri]), route("rest", None, ['kind = "reject"'])]
        path = write(tmp_path / "gw.toml", *parts)
        env = {**os.environ, "HLRGW_TEST_ADMIN_TOKEN": TOKEN}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "serve", "--config", str(path), cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        url = f"http://127.0.0.1:{port}"
        try:
            async def active():
                a = (await _get(url, "/associations"))["associations"]
                return a and a[0]["asp_state"] == "ACTIVE"
            await _until(active, "association up")
            path.write_text("".join(parts).replace('prefixes = ["44"]', 'prefixes = ["44", "49"]'))
            proc.send_signal(signal.SIGHUP)

            async def reloaded():
                routes = (await _get(url, "/routes"))
                return routes["generation"] == 2 and routes

            routes = await _until(reloaded, "reload on SIGHUP")
            assert routes["routes"][0]["prefixes"] == ["44", "49"]
            path.write_text("".join(parts).replace("opc = 1", "opc = 70000"))
            proc.send_signal(signal.SIGHUP)
            await asyncio.sleep(1.0)
            assert (await _get(url, "/routes"))["generation"] == 2  # the bad file is refused
            proc.send_signal(signal.SIGTERM)
            rc = await asyncio.wait_for(proc.wait(), 15)
            assert rc == 0
            err = (await proc.stderr.read()).decode()
            assert "reload of" in err and "refused" in err
            assert "associations[0].opc: 70000 is out of range 0..16383" in err
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def test_operations_doc_lists_every_configuration_key() -> None:
    import dataclasses

    from gateway.config import schema

    doc = (ROOT / "docs" / "operations.md").read_text()
    missing = []
    for name in schema.__all__:
        cls = getattr(schema, name)
        if not dataclasses.is_dataclass(cls) or cls is schema.Config:
            continue
        for f in dataclasses.fields(cls):
            if f"| `{f.name}` |" not in doc:
                missing.append(f"{name}.{f.name}")
    assert missing == []
