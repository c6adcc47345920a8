"""A throwaway PostgreSQL server for the tests (a pytest plugin, see tests/conftest.py).

``postgres_server`` (session) runs ``initdb`` and ``pg_ctl start`` in a temporary directory,
listening on 127.0.0.1 on a free port (and a private Unix socket), with trust
authentication and durability off (it is thrown away). As root, the server runs as the
``postgres`` user (PostgreSQL refuses to run as root). ``postgres_dsn`` (function) creates a
fresh database for one test and gives its DSN.

Without the PostgreSQL binaries (Debian's ``postgresql``: ``initdb`` on the PATH or in
``/usr/lib/postgresql/*/bin``) the tests that need them skip, with the reason, unless
``HLRGW_REQUIRE_POSTGRES=1``, which ``scripts/test`` sets when it has them: then they fail.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

REQUIRED = os.environ.get("HLRGW_REQUIRE_POSTGRES", "") not in ("", "0")


def find_bindir() -> str | None:
    """The directory of ``initdb`` and ``pg_ctl``: the PATH first, then Debian's
    ``/usr/lib/postgresql/VERSION/bin`` (newest version)."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return os.path.dirname(os.path.realpath(initdb))
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: [int(x) if x.isdigit() else 0 for x in p.split("/")[4].split(".")])
    return os.path.dirname(found[-1]) if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"HLRGW_REQUIRE_POSTGRES is set but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = find_bindir()
    if bindir is None:
        _unavailable("PostgreSQL is not installed (no initdb: apt-get install postgresql)")
    assert bindir is not None
    run_as: dict[str, object] = {}
    owner = None
    if os.geteuid() == 0:  # PostgreSQL will not run as root
        for name in ("postgres", "nobody"):
            try:
                owner = pwd.getpwnam(name)
                break
            except KeyError:
                continue
        if owner is None:
            _unavailable("running as root and no 'postgres' or 'nobody' user to run "
                         "PostgreSQL as")
        assert owner is not None
        run_as = {"user": owner.pw_uid, "group": owner.pw_gid}
    top = tempfile.mkdtemp(prefix="hlrgw-pg-")
    data, sockets = os.path.join(top, "data"), os.path.join(top, "run")
    os.makedirs(sockets)
    if owner is not None:
        for path in (top, sockets):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    port = _free_port()
    log = os.path.join(top, "server.log")
    try:
        subprocess.run([os.path.join(bindir, "initdb"), "-D", data, "-U", "hlrgw",
                        "--auth=trust", "--no-sync", "-E", "UTF8"], check=True, env=env,
                       capture_output=True, timeout=120, cwd=top, **run_as)  # type: ignore[arg-type]
        opts = (f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        subprocess.run([os.path.join(bindir, "pg_ctl"), "-D", data, "-l", log, "-o", opts,
                        "-w", "-t", "60", "start"], check=True, env=env, capture_output=True,
                       timeout=90, cwd=top, **run_as)  # type: ignore[arg-type]
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        try:
            with open(log, encoding="utf-8", errors="replace") as f:
                detail += f.read()[-2000:].encode()
        except OSError:
            pass
        shutil.rmtree(top, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL from {bindir}: {exc}\n"
                    f"{detail.decode(errors='replace')}")
    try:
        yield PostgresServer("127.0.0.1", port, "hlrgw")
    finally:
        subprocess.run([os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "immediate", "-w",
                        "stop"], env=env, capture_output=True, timeout=60, cwd=top,
                       **run_as)  # type: ignore[arg-type]
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
async def postgres_dsn(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """A new, empty database on the test server, for one test."""
    import asyncpg

    name = "t_" + uuid.uuid4().hex[:16]
    conn = await asyncpg.connect(postgres_server.dsn())
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    yield postgres_server.dsn(name)
    conn = await asyncpg.connect(postgres_server.dsn())
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """The URL of an empty store, once per engine: the same test runs on both."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path}/hlrgw.db"
    return request.getfixturevalue("postgres_dsn")
