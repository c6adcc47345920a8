"""The scale-out engine: PostgreSQL through asyncpg, with a connection pool.

Several gateways may share one database: migrations take an advisory lock, batch jobs are
leased to one gateway at a time (:meth:`~gateway.store.base.Store.claim_job`), and every
write is one transaction. The SQL is the shared one of :mod:`.base` with its ``?``
placeholders turned into ``$1, $2, ...``; the items of a new batch job go in with ``COPY``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .base import Conflict, Op, Store, StoreError

__all__ = ["PostgresStore"]

_PLACEHOLDER = re.compile(r"\?")
_MIGRATION_LOCK = 0x484C5247  # "HLRG": one migrating gateway at a time


def _numbered(sql: str) -> str:
    n = 0

    def repl(_: re.Match[str]) -> str:
        nonlocal n
        n += 1
        return f"${n}"

    return _PLACEHOLDER.sub(repl, sql)


class PostgresStore(Store):
    """A store in the PostgreSQL database at ``dsn`` (``postgresql://user@host:port/db``)."""

    dialect = "postgresql"

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10,
                 connect_timeout: float = 10.0) -> None:
        super().__init__()
        self.dsn = dsn
        self.min_size = min_size
        self.max_size = max_size
        self.connect_timeout = connect_timeout
        self._pool: Any = None
        self._sql: dict[str, str] = {}

    def __repr__(self) -> str:
        return "PostgresStore(...)"  # the DSN may hold a password

    def _q(self, sql: str) -> str:
        q = self._sql.get(sql)
        if q is None:
            q = self._sql[sql] = _numbered(sql)
        return q

    async def _connect(self) -> None:
        import asyncpg

        try:
            self._pool = await asyncpg.create_pool(self.dsn, min_size=self.min_size,
                                                   max_size=self.max_size,
                                                   timeout=self.connect_timeout)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc

    async def _disconnect(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    def _migration_lock(self) -> list[Op]:
        return [Op(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")]

    async def _fetch(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        import asyncpg

        if self._pool is None:
            raise StoreError("the store is not open")
        try:
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(self._q(sql), *args)
        except asyncpg.PostgresError as exc:
            raise StoreError(f"PostgreSQL: {exc}") from exc
        return [dict(r) for r in rows]

    async def _run(self, ops: Sequence[Op]) -> list[Any]:
        import asyncpg

        if self._pool is None:
            raise StoreError("the store is not open")
        out: list[Any] = []
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                for op in ops:
                    if op.table is not None:
                        await conn.copy_records_to_table(op.table, records=op.args,
                                                         columns=list(op.columns))
                        out.append(len(op.args))
                    elif op.fetch:
                        rows = await conn.fetch(self._q(op.sql), *op.args)
                        out.append([dict(r) for r in rows])
                    elif op.many:
                        if op.args:
                            await conn.executemany(self._q(op.sql), op.args)
                        out.append(-1)
                    else:
                        status = await conn.execute(self._q(op.sql), *op.args)
                        tail = status.rsplit(" ", 1)[-1] if status else ""
                        out.append(int(tail) if tail.isdigit() else -1)
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(str(exc)) from exc
        except asyncpg.PostgresError as exc:
            raise StoreError(f"PostgreSQL: {exc}") from exc
        return out
