"""A throwaway Redis server for the tests that use the Redis cache engine.

``redis_server`` (session) runs Debian's ``redis-server`` on 127.0.0.1 on a free port, in a
temporary directory, with persistence off; ``redis_url`` (function) gives its URL. Import
both into a test module (``from tests.redisserver import redis_server, redis_url``).

Without ``redis-server`` the tests that need it skip, with the reason, unless
``HLRGW_REQUIRE_REDIS=1`` (``scripts/test`` exports it when redis-server is installed):
then they fail, so a broken install cannot hide behind a skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

REQUIRED = os.environ.get("HLRGW_REQUIRE_REDIS", "") not in ("", "0")


@dataclass(frozen=True)
class RedisServer:
    host: str
    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(directory: str) -> RedisServer:
    """Start redis-server in ``directory``; raises RuntimeError when it does not come up."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server is not installed (Debian: apt-get install "
                                "redis-server)")
    last = ""
    for _ in range(3):  # a port taken between choosing it and binding it: try another
        port = _free_port()
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory,
             "--save", "", "--appendonly", "no", "--daemonize", "no",
             "--protected-mode", "yes", "--loglevel", "warning"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                last = proc.stdout.read() if proc.stdout else ""
                break
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return RedisServer("127.0.0.1", port, proc)
            except OSError:
                time.sleep(0.05)
        else:
            proc.kill()
            proc.wait()
            last = "did not answer PING within 10 s"
    raise RuntimeError(f"redis-server did not start: {last}")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    directory = tempfile.mkdtemp(prefix="hlrgw-redis-")
    try:
        server = start_redis(directory)
    except FileNotFoundError as exc:
        if REQUIRED:
            pytest.fail(f"HLRGW_REQUIRE_REDIS is set but {exc}")
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.process.terminate()
        try:
            server.process.wait(10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url
