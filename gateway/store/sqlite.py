"""The embedded default engine: one SQLite file, through the standard library's ``sqlite3``.

Why not aiosqlite: it is the same thing (``sqlite3`` on a thread) with one thread hop per
statement. Here every store operation, a whole transaction included, is one function run on
the store's own thread, so a group commit of a thousand audit rows is one hop, and there is
one dependency less. The connection lives on that single thread, so operations are
serialised, as SQLite serialises writers anyway.

The file is opened in WAL mode (readers never wait for the writer; ``hlrgw customers`` can
change customers while the gateway runs), ``synchronous=NORMAL`` (a commit survives a crash of
the gateway; a power cut may lose the last commits, never corrupt the file) and with foreign
keys on. A new file is created readable by its owner only (it holds the audit and the
callback secrets).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .base import Conflict, Op, Store, StoreError

__all__ = ["SqliteStore"]

T = TypeVar("T")


class SqliteStore(Store):
    """A store in the SQLite file ``path`` (``":memory:"`` for a private in-memory one)."""

    dialect = "sqlite"

    def __init__(self, path: str, *, busy_timeout: float = 10.0) -> None:
        super().__init__()
        self.path = path
        self.busy_timeout = busy_timeout
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        # not loop.run_in_executor: that wraps the executor's future in an asyncio one
        # (wrap_future, _chain_future: a dozen Python calls and Condition locks on the
        # event loop per operation, and uvloop checks fn is no coroutine function each
        # time). The store's thread hands the outcome back with one call_soon_threadsafe.
        executor = self._executor
        if executor is None:
            raise StoreError("the store is not open")
        fut = asyncio.get_running_loop().create_future()
        executor.submit(_run_then_deliver, fut, fn, args)
        return await fut

    async def _connect(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hlrgw-sqlite")
        try:
            self._conn = await self._call(self._open)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    def _open(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            parent = os.path.dirname(os.path.abspath(self.path))
            try:
                os.makedirs(parent, mode=0o750, exist_ok=True)
                if not os.path.exists(self.path):
                    os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            except OSError as exc:
                raise StoreError(f"cannot create the SQLite store {self.path}: "
                                 f"{exc.strerror or exc}") from exc
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=self.busy_timeout)
            if self.path != ":memory:":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the SQLite store {self.path}: {exc}") from exc
        return conn

    async def _disconnect(self) -> None:
        if self._executor is None:
            return
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self._call(conn.close)
        self._executor.shutdown(wait=True)
        self._executor = None

    # ---- primitives

    async def _fetch(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return await self._call(self._fetch_sync, sql, tuple(args))

    def _fetch_sync(self, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        conn = self._live()
        try:
            cur = conn.execute(sql, args)
            names = [d[0] for d in cur.description or ()]
            return [dict(zip(names, row)) for row in cur.fetchall()]
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite: {exc}") from exc

    async def _run(self, ops: Sequence[Op]) -> list[Any]:
        return await self._call(self._run_sync, list(ops))

    def _run_sync(self, ops: list[Op]) -> list[Any]:
        conn = self._live()
        out: list[Any] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for op in ops:
                    if op.many:
                        cur = conn.executemany(op.sql, op.args)
                    else:
                        cur = conn.execute(op.sql, tuple(op.args))
                    if op.fetch:
                        names = [d[0] for d in cur.description or ()]
                        out.append([dict(zip(names, row)) for row in cur.fetchall()])
                    else:
                        out.append(cur.rowcount)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
                raise Conflict(str(exc)) from exc
            raise StoreError(f"SQLite: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite: {exc}") from exc
        return out

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("the store is not open")
        return self._conn


def _run_then_deliver(fut: asyncio.Future[Any], fn: Callable[..., Any],
                      args: tuple[Any, ...]) -> None:
    """On the store's thread: ``fn(*args)``, its result or exception handed to ``fut`` on
    the event loop. An operation whose caller was cancelled before it started is not run
    (as run_in_executor's cancelled work item is not)."""
    if fut.cancelled():
        return
    try:
        result = fn(*args)
    except BaseException as exc:  # noqa: BLE001 - handed to the caller, as it was raised
        deliver, value = _set_exception, exc
    else:
        deliver, value = _set_result, result
    try:
        fut.get_loop().call_soon_threadsafe(deliver, fut, value)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        pass


def _set_result(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exception(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
