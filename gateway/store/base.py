"""The storage interface and the SQL both engines share.

:class:`Store` is what the rest of the gateway uses. Its methods are written once here, in
SQL that SQLite and PostgreSQL both accept (``?`` placeholders, turned into ``$n`` for
PostgreSQL), on three primitives an engine provides: :meth:`Store._fetch` (one query),
:meth:`Store._run` (a list of :class:`Op` in one transaction) and the lifecycle
(:meth:`Store._connect`, :meth:`Store._disconnect`).

Lookups are audited with **group commit**: :meth:`Store.record_lookup` queues the row and
waits until the transaction holding it commits; while one transaction is being written the
next rows gather, so a thousand concurrent lookups cost a handful of commits, not a thousand,
and no caller is told "recorded" before it is.

The audit keeps the number in clear (billing needs it); nothing in this package logs a
number (:func:`mask_number` is for the places that must mention one).
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .migrations import MIGRATIONS, statements

__all__ = [
    "ApiKey", "Conflict", "Customer", "ItemResult", "ItemState", "Job", "JobItem", "JobState",
    "LookupRecord", "Op", "PortObservation", "Store", "StoreError", "mask_number",
]

log = logging.getLogger(__name__)

#: most rows one group-commit transaction carries
GROUP_COMMIT_MAX = 2000


class StoreError(RuntimeError):
    """The store cannot do what was asked (bad URL, newer schema, database unreachable)."""


class Conflict(StoreError):
    """A unique key is taken (a customer name, an API key id, a job id)."""


def mask_number(number: str) -> str:
    """A number fit for a log line: country code and the last two digits only."""
    digits = number.lstrip("+")
    if len(digits) <= 4:
        return "*" * len(digits)
    return f"{digits[:2]}{'*' * (len(digits) - 4)}{digits[-2:]}"


def _now() -> float:
    return time.time()


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Customer:
    """A customer of the lookup API (see :mod:`gateway.customers`)."""

    id: int
    name: str
    services: frozenset[str]
    rate: float  # requests per second (token bucket)
    burst: int  # requests at once above the pace
    inflight: int  # requests in progress at once
    see_imsi: bool  # may see the IMSI unmasked
    cache_age: float | None  # default age of a cached answer it accepts; None: the gateway's
    callback_secret: str  # signs batch callbacks (HMAC-SHA256)
    created_at: float
    disabled_at: float | None = None

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    def entitled(self, service: str) -> bool:
        return service in self.services

    def as_dict(self) -> dict[str, Any]:
        """Public fields (no secret)."""
        return {"id": self.id, "name": self.name, "services": sorted(self.services),
                "rate": self.rate, "burst": self.burst, "inflight": self.inflight,
                "see_imsi": self.see_imsi, "cache_age": self.cache_age,
                "created_at": self.created_at, "disabled_at": self.disabled_at}


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key: only its id (public, the first part of the key) and its hash."""

    key_id: str
    customer_id: int
    key_hash: str  # hex SHA-256 of the whole key
    created_at: float
    expires_at: float | None = None  # set by a rotation with a grace period
    revoked_at: float | None = None

    def valid_at(self, now: float) -> bool:
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.expires_at is None or now < self.expires_at

    def state(self, now: float) -> str:
        if self.revoked_at is not None and self.revoked_at <= now:
            return "revoked"
        if self.expires_at is not None:
            return "expired" if now >= self.expires_at else "expiring"
        return "active"


@dataclass(frozen=True, slots=True)
class LookupRecord:
    id: int
    customer_id: int
    service: str
    number: str
    outcome: str
    route: str | None
    at: float
    job_id: str | None = None


@dataclass(frozen=True, slots=True)
class PortObservation:
    """A number seen on one network from ``first_seen`` to ``last_seen``."""

    number: str
    network: str
    first_seen: float
    last_seen: float


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


class ItemState(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"  # looked up: ``result`` holds the answer
    FAILED = "failed"  # ``error`` holds a problem document


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    customer_id: int
    service: str
    options: dict[str, Any]
    callback_url: str | None
    state: JobState
    total: int
    done: int = 0
    failed: int = 0
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    owner: str | None = None
    lease_until: float | None = None
    callback_state: str | None = None  # pending, delivered, failed; None: no callback
    callback_attempts: int = 0
    callback_next_at: float | None = None
    callback_error: str | None = None

    @property
    def pending(self) -> int:
        return self.total - self.done - self.failed


@dataclass(frozen=True, slots=True)
class JobItem:
    seq: int
    number: str
    state: ItemState
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    finished_at: float | None = None


@dataclass(frozen=True, slots=True)
class ItemResult:
    """One finished batch item, as :meth:`Store.complete_items` writes it (with its audit
    row, in the same transaction: a restart never bills a number twice)."""

    seq: int
    number: str
    result: dict[str, Any] | None  # the answer (state done), or
    error: dict[str, Any] | None  # a problem document (state failed)
    outcome: str  # for the audit
    route: str | None = None
    network: str | None = None  # a network seen for the number (port history)
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class Op:
    """One statement of a transaction: ``many`` runs it once per row of ``args``;
    ``fetch`` returns its rows (RETURNING)."""

    sql: str
    args: Sequence[Any] = ()
    many: bool = False
    fetch: bool = False
    table: str | None = None  # a bulk insert into table (columns): sql unused, args the rows
    columns: tuple[str, ...] = ()

    @classmethod
    def bulk_insert(cls, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
                    ) -> Op:
        """Insert many rows: COPY in PostgreSQL, an executemany INSERT in SQLite."""
        cols = tuple(columns)
        sql = (f"INSERT INTO {table} ({', '.join(cols)}) VALUES "
               f"({', '.join('?' for _ in cols)})")
        return cls(sql, rows, many=True, table=table, columns=cols)


@dataclass(slots=True)
class _Queued:
    lookup: tuple[Any, ...] | None
    observation: tuple[str, str, float] | None
    future: asyncio.Future[None] | None = field(default=None)


# --------------------------------------------------------------------------- SQL

_CUSTOMER_FIELDS = ("name", "services", "rate", "burst", "inflight", "see_imsi", "cache_age",
                    "callback_secret", "disabled_at")

_PORT_UPDATE = (
    "UPDATE port_observations SET last_seen = CASE WHEN last_seen < CAST(? AS DOUBLE "
    "PRECISION) THEN CAST(? AS DOUBLE PRECISION) ELSE last_seen END WHERE id = (SELECT MAX(id) "
    "FROM port_observations WHERE number = CAST(? AS TEXT)) AND network = CAST(? AS TEXT)")
_PORT_INSERT = (
    "INSERT INTO port_observations (number, network, first_seen, last_seen) "
    "SELECT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS DOUBLE PRECISION), "
    "CAST(? AS DOUBLE PRECISION) WHERE NOT EXISTS (SELECT 1 FROM port_observations p "
    "WHERE p.id = (SELECT MAX(id) FROM port_observations WHERE number = CAST(? AS TEXT)) "
    "AND p.network = CAST(? AS TEXT))")
_LOOKUP_INSERT = ("INSERT INTO lookups (customer_id, service, number, outcome, route, at, "
                  "job_id) VALUES (?, ?, ?, ?, ?, ?, ?)")


def _port_ops(observations: Sequence[tuple[str, str, float]]) -> list[Op]:
    """Extend each number's latest observation when the network is the same, then start a
    new one where it differs (updates first, then inserts: within one batch a number seen
    on A then B still ends with B as its latest network). A batch whose numbers are all
    different (the usual case) takes a few multi-row statements (:func:`_port_ops_multi`);
    one with a number seen twice takes a statement per observation, in order."""
    if not observations:
        return []
    if len({n for n, _, _ in observations}) == len(observations):
        return _port_ops_multi(observations)
    return [Op(_PORT_UPDATE, [(at, at, n, net) for n, net, at in observations], many=True),
            Op(_PORT_INSERT, [(n, net, at, at, n, net) for n, net, at in observations],
               many=True)]


#: most rows of one multi-row statement: the audit insert (7 parameters a row), and the
#: port observations, whose statements look each row up in the others (quadratic)
_MULTI_MAX = 256
_PORT_MULTI_MAX = 64
_PORT_VALUES = "(CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS DOUBLE PRECISION))"
_LOOKUP_VALUES = "(?, ?, ?, ?, ?, ?, ?)"


def _chunks(rows: Sequence[Any], most: int) -> Iterable[Sequence[Any]]:
    """``rows`` in chunks of ``most``, then of decreasing powers of two: few distinct
    statement texts (each engine caches prepared statements by text)."""
    i, n = 0, len(rows)
    size = most
    while i < n:
        while size > n - i:
            size //= 2
        yield rows[i:i + size]
        i += size


def _lookup_ops(lookups: Sequence[tuple[Any, ...]]) -> list[Op]:
    """The audit rows as multi-row INSERTs (one statement step, one parameter binding and,
    in SQLite, one release of the GIL per chunk instead of per row)."""
    head = _LOOKUP_INSERT.split(" VALUES ", 1)[0]
    return [Op(f"{head} VALUES {', '.join([_LOOKUP_VALUES] * len(chunk))}",
               [x for row in chunk for x in row]) for chunk in _chunks(lookups, _MULTI_MAX)]


def _port_ops_multi(observations: Sequence[tuple[str, str, float]]) -> list[Op]:
    """:func:`_port_ops` for distinct numbers, a chunk of observations per statement."""
    ops = []
    for chunk in _chunks(observations, _PORT_MULTI_MAX):
        rows = ", ".join([_PORT_VALUES] * len(chunk))
        values = f"WITH v (number, network, at) AS (VALUES {rows}) "
        args = [x for row in chunk for x in row]
        ops.append(Op(
            values + "UPDATE port_observations SET last_seen = (SELECT v.at FROM v WHERE "
            "v.number = port_observations.number) WHERE number IN (SELECT number FROM v) "
            "AND id = (SELECT MAX(p.id) FROM port_observations p WHERE p.number = "
            "port_observations.number) AND EXISTS (SELECT 1 FROM v WHERE v.number = "
            "port_observations.number AND v.network = port_observations.network AND v.at > "
            "port_observations.last_seen)", args))
        ops.append(Op(
            values + "INSERT INTO port_observations (number, network, first_seen, last_seen) "
            "SELECT v.number, v.network, v.at, v.at FROM v WHERE NOT EXISTS (SELECT 1 FROM "
            "port_observations p WHERE p.id = (SELECT MAX(id) FROM port_observations WHERE "
            "number = v.number) AND p.network = v.network)", args))
    return ops


def _customer(row: Mapping[str, Any]) -> Customer:
    return Customer(
        id=int(row["id"]), name=row["name"],
        services=frozenset(s for s in row["services"].split(",") if s),
        rate=float(row["rate"]), burst=int(row["burst"]), inflight=int(row["inflight"]),
        see_imsi=bool(row["see_imsi"]),
        cache_age=None if row["cache_age"] is None else float(row["cache_age"]),
        callback_secret=row["callback_secret"], created_at=float(row["created_at"]),
        disabled_at=None if row["disabled_at"] is None else float(row["disabled_at"]))


def _api_key(row: Mapping[str, Any]) -> ApiKey:
    return ApiKey(key_id=row["key_id"], customer_id=int(row["customer_id"]),
                  key_hash=row["key_hash"], created_at=float(row["created_at"]),
                  expires_at=_f(row["expires_at"]), revoked_at=_f(row["revoked_at"]))


def _job(row: Mapping[str, Any]) -> Job:
    return Job(
        id=row["id"], customer_id=int(row["customer_id"]), service=row["service"],
        options=json.loads(row["options"]), callback_url=row["callback_url"],
        state=JobState(row["state"]), total=int(row["total"]), done=int(row["done"]),
        failed=int(row["failed"]), created_at=float(row["created_at"]),
        started_at=_f(row["started_at"]), finished_at=_f(row["finished_at"]),
        owner=row["owner"], lease_until=_f(row["lease_until"]),
        callback_state=row["callback_state"], callback_attempts=int(row["callback_attempts"]),
        callback_next_at=_f(row["callback_next_at"]), callback_error=row["callback_error"])


def _item(row: Mapping[str, Any]) -> JobItem:
    return JobItem(seq=int(row["seq"]), number=row["number"], state=ItemState(row["state"]),
                   result=None if row["result"] is None else json.loads(row["result"]),
                   error=None if row["error"] is None else json.loads(row["error"]),
                   finished_at=_f(row["finished_at"]))


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


# --------------------------------------------------------------------------- the store


class Store(ABC):
    """The gateway's storage (see the module docstring). Open with
    :func:`gateway.store.open_store`; ``async with`` closes it."""

    dialect: str = ""

    def __init__(self) -> None:
        self._queue: list[_Queued] = []
        self._flusher: asyncio.Task[None] | None = None
        self._put_loop: asyncio.AbstractEventLoop | None = None  # the loop rows queue on
        self._closed = False

    # ---- engine primitives

    @abstractmethod
    async def _connect(self) -> None: ...

    @abstractmethod
    async def _disconnect(self) -> None: ...

    @abstractmethod
    async def _fetch(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of one query, as dicts."""

    @abstractmethod
    async def _run(self, ops: Sequence[Op]) -> list[Any]:
        """The ops in one transaction: for each, its rows (``fetch``) or its row count
        (``-1`` when the engine does not say). Raises :class:`Conflict` on a unique key."""

    # ---- lifecycle

    async def open(self) -> Store:
        """Connect and bring the schema up to date."""
        await self._connect()
        try:
            await self.migrate()
        except BaseException:
            await self._disconnect()
            raise
        return self

    async def close(self) -> None:
        """Write what is queued, then disconnect."""
        if self._closed:
            return
        await self.flush()
        self._closed = True
        await self._disconnect()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- schema

    async def migrate(self) -> list[int]:
        """Apply the migrations not yet applied, each in its own transaction; the versions
        applied now."""
        real = "DOUBLE PRECISION" if self.dialect == "postgresql" else "REAL"
        await self._run([*self._migration_lock(),
                         Op("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER "
                            "PRIMARY KEY, description TEXT NOT NULL, applied_at "
                            f"{real} NOT NULL)")])
        done = set(await self.schema_versions())
        newest = max(m.version for m in MIGRATIONS)
        if done and max(done) > newest:
            raise StoreError(f"the database schema is version {max(done)}, newer than this "
                             f"gateway knows ({newest}): upgrade the gateway")
        applied = []
        for m in MIGRATIONS:
            if m.version in done:
                continue
            ops = [*self._migration_lock(),
                   Op("INSERT INTO schema_migrations (version, description, applied_at) "
                      "VALUES (?, ?, ?)", (m.version, m.description, _now())),
                   *(Op(s) for s in statements(m, self.dialect))]
            try:
                await self._run(ops)
            except Conflict:  # another gateway applied it meanwhile
                if m.version not in await self.schema_versions():
                    raise
                continue
            log.info("store: applied migration %d (%s)", m.version, m.description)
            applied.append(m.version)
        return applied

    def _migration_lock(self) -> list[Op]:
        return []

    async def schema_versions(self) -> list[int]:
        rows = await self._fetch("SELECT version FROM schema_migrations ORDER BY version")
        return [int(r["version"]) for r in rows]

    # ---- customers

    async def create_customer(self, *, name: str, services: Iterable[str], rate: float,
                              burst: int, inflight: int, see_imsi: bool = False,
                              cache_age: float | None = None, callback_secret: str,
                              at: float | None = None) -> Customer:
        """A new customer; :class:`Conflict` when the name is taken."""
        rows = (await self._run([Op(
            "INSERT INTO customers (name, services, rate, burst, inflight, see_imsi, "
            "cache_age, callback_secret, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "RETURNING *",
            (name, ",".join(sorted(set(services))), float(rate), int(burst), int(inflight),
             int(bool(see_imsi)), _f(cache_age), callback_secret,
             float(at if at is not None else _now())), fetch=True)]))[0]
        return _customer(rows[0])

    async def update_customer(self, customer_id: int, **changes: Any) -> Customer | None:
        """Change some of: name, services, rate, burst, inflight, see_imsi, cache_age,
        callback_secret, disabled_at. The customer as it is now (None if unknown)."""
        unknown = set(changes) - set(_CUSTOMER_FIELDS)
        if unknown:
            raise ValueError(f"not a customer field: {', '.join(sorted(unknown))}")
        if not changes:
            return await self.get_customer(customer_id)
        values = []
        for k, v in changes.items():
            if k == "services":
                v = ",".join(sorted(set(v)))
            elif k == "see_imsi":
                v = int(bool(v))
            elif k in ("rate", "cache_age", "disabled_at"):
                v = _f(v)
            elif k in ("burst", "inflight"):
                v = int(v)
            values.append(v)
        sets = ", ".join(f"{k} = ?" for k in changes)
        rows = (await self._run([Op(f"UPDATE customers SET {sets} WHERE id = ? RETURNING *",
                                    (*values, int(customer_id)), fetch=True)]))[0]
        return _customer(rows[0]) if rows else None

    async def get_customer(self, customer_id: int) -> Customer | None:
        rows = await self._fetch("SELECT * FROM customers WHERE id = ?", (int(customer_id),))
        return _customer(rows[0]) if rows else None

    async def customer_by_name(self, name: str) -> Customer | None:
        rows = await self._fetch("SELECT * FROM customers WHERE name = ?", (name,))
        return _customer(rows[0]) if rows else None

    async def list_customers(self) -> list[Customer]:
        return [_customer(r) for r in await self._fetch("SELECT * FROM customers ORDER BY name")]

    # ---- API keys

    async def add_api_key(self, key: ApiKey, *, expire_others_at: float | None = None
                          ) -> None:
        """Store a key. With ``expire_others_at`` (a rotation), every other key of the
        customer still valid then stops being valid at that time, in the same transaction."""
        ops = [Op("INSERT INTO api_keys (key_id, customer_id, key_hash, created_at, "
                  "expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)",
                  (key.key_id, key.customer_id, key.key_hash, key.created_at,
                   key.expires_at, key.revoked_at))]
        if expire_others_at is not None:
            t = float(expire_others_at)
            ops.append(Op(
                "UPDATE api_keys SET expires_at = ? WHERE customer_id = ? AND key_id <> ? "
                "AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
                (t, key.customer_id, key.key_id, t)))
        await self._run(ops)

    async def api_key(self, key_id: str) -> tuple[ApiKey, Customer] | None:
        """The key with this id and its customer (one indexed read)."""
        rows = await self._fetch(
            "SELECT k.key_id, k.customer_id, k.key_hash, k.created_at AS key_created_at, "
            "k.expires_at, k.revoked_at, c.* FROM api_keys k JOIN customers c "
            "ON c.id = k.customer_id WHERE k.key_id = ?", (key_id,))
        if not rows:
            return None
        row = rows[0]
        key = ApiKey(key_id=row["key_id"], customer_id=int(row["customer_id"]),
                     key_hash=row["key_hash"], created_at=float(row["key_created_at"]),
                     expires_at=_f(row["expires_at"]), revoked_at=_f(row["revoked_at"]))
        return key, _customer(row)

    async def api_keys(self, customer_id: int) -> list[ApiKey]:
        rows = await self._fetch("SELECT * FROM api_keys WHERE customer_id = ? ORDER BY "
                                 "created_at, key_id", (int(customer_id),))
        return [_api_key(r) for r in rows]

    async def revoke_api_key(self, key_id: str, at: float | None = None) -> bool:
        """Revoke one key now; False when no such key or it was revoked already."""
        n = (await self._run([Op("UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND "
                                 "revoked_at IS NULL", (float(at or _now()), key_id))]))[0]
        return n != 0

    async def revoke_customer_keys(self, customer_id: int, at: float | None = None) -> int:
        """Revoke every key of a customer; how many were still unrevoked."""
        return (await self._run([Op("UPDATE api_keys SET revoked_at = ? WHERE customer_id = ? "
                                    "AND revoked_at IS NULL",
                                    (float(at or _now()), int(customer_id)))]))[0]

    # ---- the lookups audit and port observations

    async def record_lookup(self, customer_id: int, service: str, number: str, outcome: str,
                            route: str | None = None, *, network: str | None = None,
                            job_id: str | None = None, at: float | None = None,
                            wait: bool = True) -> None:
        """Audit one lookup (who, which service, which number, the outcome, the route, when).

        ``network``, when the answer names the network now serving the number, also feeds
        the port history (:meth:`observe_network`) in the same transaction. With ``wait``
        (the default) this returns once the row is committed (group commit: see the module
        docstring); ``wait=False`` queues it and returns at once."""
        future = self.queue_lookup(customer_id, service, number, outcome, route,
                                   network=network, job_id=job_id, at=at, wait=wait)
        if future is not None:
            # a cancelled caller cancels its future only: the row is queued and still written
            await future

    def queue_lookup(self, customer_id: int, service: str, number: str, outcome: str,
                     route: str | None = None, *, network: str | None = None,
                     job_id: str | None = None, at: float | None = None,
                     wait: bool = True) -> asyncio.Future[None] | None:
        """:meth:`record_lookup` without a coroutine of its own (the lookup API's path):
        queues the row and answers the future to await for its commit (with ``wait``),
        else None."""
        t = float(at if at is not None else _now())
        entry = _Queued((int(customer_id), service, number, outcome, route, t, job_id),
                        (number, network, t) if network else None)
        return self._put(entry, wait)

    async def observe_network(self, number: str, network: str, at: float | None = None, *,
                              wait: bool = True) -> None:
        """Note that ``number`` was seen on ``network`` at ``at``: extends the number's
        latest observation when it is the same network, else starts a new one (a port)."""
        t = float(at if at is not None else _now())
        await self._enqueue(_Queued(None, (number, network, t)), wait)

    async def _enqueue(self, entry: _Queued, wait: bool) -> None:
        future = self._put(entry, wait)
        if future is not None:
            # a cancelled caller cancels its future only: the row is queued and still written
            await future

    def _put(self, entry: _Queued, wait: bool) -> asyncio.Future[None] | None:
        if self._closed:
            raise StoreError("the store is closed")
        loop = self._put_loop  # (get_running_loop costs a getpid call on CPython 3.11)
        if loop is None or not loop.is_running():
            loop = self._put_loop = asyncio.get_running_loop()
        if wait:
            entry.future = loop.create_future()
        self._queue.append(entry)
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush_loop())
        return entry.future

    async def _flush_loop(self) -> None:
        while self._queue:
            batch = self._queue[:GROUP_COMMIT_MAX]
            del self._queue[:GROUP_COMMIT_MAX]
            lookups = [e.lookup for e in batch if e.lookup is not None]
            observations = [e.observation for e in batch if e.observation is not None]
            ops = _lookup_ops(lookups) + _port_ops(observations)
            try:
                await self._run(ops)
            except Exception as exc:
                log.error("store: could not record %d lookup(s) and %d observation(s): %s",
                          len(lookups), len(observations), exc)
                for e in batch:
                    if e.future is not None and not e.future.done():
                        e.future.set_exception(exc)
                        e.future.exception()  # retrieved: no "never retrieved" warning
            else:
                for e in batch:
                    if e.future is not None and not e.future.done():
                        e.future.set_result(None)

    async def flush(self) -> None:
        """Wait until every queued audit row and observation is written."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)

    async def lookups(self, *, customer_id: int | None = None, since: float | None = None,
                      until: float | None = None, job_id: str | None = None,
                      limit: int = 1000) -> list[LookupRecord]:
        """Audit rows, oldest first."""
        where, args = self._lookup_filter(customer_id, since, until, job_id)
        rows = await self._fetch(f"SELECT * FROM lookups{where} ORDER BY at, id LIMIT ?",
                                 (*args, int(limit)))
        return [LookupRecord(id=int(r["id"]), customer_id=int(r["customer_id"]),
                             service=r["service"], number=r["number"], outcome=r["outcome"],
                             route=r["route"], at=float(r["at"]), job_id=r["job_id"])
                for r in rows]

    async def usage(self, *, since: float | None = None, until: float | None = None,
                    customer_id: int | None = None) -> list[dict[str, Any]]:
        """Lookups counted per customer, service and outcome (billing)."""
        where, args = self._lookup_filter(customer_id, since, until, None)
        rows = await self._fetch(
            "SELECT customer_id, service, outcome, COUNT(*) AS n FROM lookups"
            f"{where} GROUP BY customer_id, service, outcome "
            "ORDER BY customer_id, service, outcome", args)
        return [{"customer_id": int(r["customer_id"]), "service": r["service"],
                 "outcome": r["outcome"], "count": int(r["n"])} for r in rows]

    @staticmethod
    def _lookup_filter(customer_id: int | None, since: float | None, until: float | None,
                       job_id: str | None) -> tuple[str, list[Any]]:
        conds, args = [], []
        if customer_id is not None:
            conds.append("customer_id = ?")
            args.append(int(customer_id))
        if since is not None:
            conds.append("at >= ?")
            args.append(float(since))
        if until is not None:
            conds.append("at < ?")
            args.append(float(until))
        if job_id is not None:
            conds.append("job_id = ?")
            args.append(job_id)
        return (" WHERE " + " AND ".join(conds) if conds else ""), args

    async def port_history(self, number: str) -> list[PortObservation]:
        """The networks a number was seen on, oldest first (consecutive sightings of one
        network merged)."""
        rows = await self._fetch("SELECT number, network, first_seen, last_seen FROM "
                                 "port_observations WHERE number = ? ORDER BY id", (number,))
        out: list[PortObservation] = []
        for r in rows:
            obs = PortObservation(r["number"], r["network"], float(r["first_seen"]),
                                  float(r["last_seen"]))
            if out and out[-1].network == obs.network:
                prev = out[-1]
                out[-1] = PortObservation(number, prev.network, min(prev.first_seen,
                                          obs.first_seen), max(prev.last_seen, obs.last_seen))
            else:
                out.append(obs)
        return out

    # ---- batch jobs

    async def create_job(self, job: Job, numbers: Sequence[str],
                         failed: Mapping[int, dict[str, Any]] | None = None) -> None:
        """Store a job and its items (``numbers[i]`` is item ``i``); the items in
        ``failed`` (by index: e.g. an invalid number) are stored already failed with that
        problem document."""
        failed = failed or {}
        now = job.created_at
        rows = [(job.id, i, n, ItemState.FAILED.value if i in failed else
                 ItemState.PENDING.value, _dump(failed.get(i)), now if i in failed else None)
                for i, n in enumerate(numbers)]
        await self._run([
            Op("INSERT INTO batch_jobs (id, customer_id, service, options, callback_url, "
               "state, total, done, failed, created_at, owner, lease_until) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (job.id, job.customer_id, job.service, _dump(job.options), job.callback_url,
                job.state.value, len(numbers), 0, len(failed), float(job.created_at),
                job.owner, _f(job.lease_until))),
            *self._insert_items(rows),
        ])

    def _insert_items(self, rows: list[tuple[Any, ...]]) -> list[Op]:
        return [Op.bulk_insert("batch_items", ("job_id", "seq", "number", "state", "error",
                                               "finished_at"), rows)] if rows else []

    async def get_job(self, job_id: str, customer_id: int | None = None) -> Job | None:
        """The job; None when unknown or (with ``customer_id``) someone else's."""
        sql, args = "SELECT * FROM batch_jobs WHERE id = ?", [job_id]
        if customer_id is not None:
            sql += " AND customer_id = ?"
            args.append(int(customer_id))
        rows = await self._fetch(sql, args)
        return _job(rows[0]) if rows else None

    async def list_jobs(self, customer_id: int, limit: int = 100) -> list[Job]:
        rows = await self._fetch("SELECT * FROM batch_jobs WHERE customer_id = ? ORDER BY "
                                 "created_at DESC LIMIT ?", (int(customer_id), int(limit)))
        return [_job(r) for r in rows]

    async def resumable_jobs(self) -> list[Job]:
        """Jobs with items left to look up, or a callback left to deliver."""
        rows = await self._fetch(
            "SELECT * FROM batch_jobs WHERE state IN ('queued', 'running') OR "
            "callback_state = 'pending' ORDER BY created_at")
        return [_job(r) for r in rows]

    async def claim_job(self, job_id: str, owner: str, lease_until: float,
                        now: float | None = None) -> bool:
        """Take the job for ``owner`` until ``lease_until`` (a gateway sharing the store
        with others runs only the jobs it holds): granted when no one holds it, ``owner``
        does, or the holder's lease ran out. Also renews a lease."""
        t = float(now if now is not None else _now())
        n = (await self._run([Op(
            "UPDATE batch_jobs SET owner = ?, lease_until = ?, "
            "started_at = CASE WHEN state = 'queued' THEN ? ELSE started_at END, "
            "state = CASE WHEN state = 'queued' THEN 'running' ELSE state END "
            "WHERE id = ? AND (state IN ('queued', 'running') OR callback_state = 'pending') "
            "AND (owner IS NULL OR owner = ? OR lease_until IS NULL OR lease_until < ?)",
            (owner, float(lease_until), t, job_id, owner, t))]))[0]
        return n != 0

    async def release_job(self, job_id: str, owner: str) -> None:
        """Give the job up (a clean stop): another gateway may take it at once."""
        await self._run([Op("UPDATE batch_jobs SET owner = NULL, lease_until = NULL "
                            "WHERE id = ? AND owner = ?", (job_id, owner))])

    async def pending_items(self, job_id: str, after_seq: int = -1, limit: int = 1000
                            ) -> list[tuple[int, str]]:
        """(seq, number) of items still to look up, in order, after ``after_seq``."""
        rows = await self._fetch(
            "SELECT seq, number FROM batch_items WHERE job_id = ? AND state = 'pending' "
            "AND seq > ? ORDER BY seq LIMIT ?", (job_id, int(after_seq), int(limit)))
        return [(int(r["seq"]), r["number"]) for r in rows]

    async def complete_items(self, job: Job, results: Sequence[ItemResult]) -> None:
        """Write finished items, their audit rows and port observations, and the job's
        progress, in one transaction. An item already finished is left as it is and not
        audited again."""
        if not results:
            return
        audit = ("INSERT INTO lookups (customer_id, service, number, outcome, route, at, "
                 "job_id) SELECT CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT), "
                 "CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS DOUBLE PRECISION), "
                 "CAST(? AS TEXT) WHERE EXISTS (SELECT 1 FROM batch_items WHERE job_id = ? "
                 "AND seq = ? AND state = 'pending')")
        update = ("UPDATE batch_items SET state = ?, result = ?, error = ?, finished_at = ? "
                  "WHERE job_id = ? AND seq = ? AND state = 'pending'")
        ok = [r.seq for r in results if r.error is None]
        bad = [r.seq for r in results if r.error is not None]

        def still_pending(seqs: list[int]) -> str:  # counts only what this call finishes
            if not seqs:
                return "0"
            marks = ", ".join("?" for _ in seqs)
            return (f"(SELECT COUNT(*) FROM batch_items WHERE job_id = ? AND "
                    f"state = 'pending' AND seq IN ({marks}))")

        ops = [
            Op(audit, [(job.customer_id, job.service, r.number, r.outcome, r.route,
                        float(r.at), job.id, job.id, r.seq) for r in results], many=True),
            Op(f"UPDATE batch_jobs SET done = done + {still_pending(ok)}, "
               f"failed = failed + {still_pending(bad)} WHERE id = ?",
               (*((job.id, *ok) if ok else ()), *((job.id, *bad) if bad else ()), job.id)),
            Op(update, [(ItemState.DONE.value if r.error is None else ItemState.FAILED.value,
                         _dump(r.result), _dump(r.error), float(r.at), job.id, r.seq)
                        for r in results], many=True),
            *_port_ops([(r.number, r.network, float(r.at)) for r in results if r.network]),
        ]
        await self._run(ops)

    async def recount_job(self, job_id: str) -> Job | None:
        """Set the job's done and failed counts from its items (after a restart)."""
        rows = (await self._run([Op(
            "UPDATE batch_jobs SET done = (SELECT COUNT(*) FROM batch_items WHERE job_id = ? "
            "AND state = 'done'), failed = (SELECT COUNT(*) FROM batch_items WHERE "
            "job_id = ? AND state = 'failed') WHERE id = ? RETURNING *",
            (job_id, job_id, job_id), fetch=True)]))[0]
        return _job(rows[0]) if rows else None

    async def finish_job(self, job_id: str, at: float | None = None) -> Job | None:
        """Mark the job done (counts recomputed from its items); its callback, if it has
        one, becomes pending."""
        rows = (await self._run([Op(
            "UPDATE batch_jobs SET state = 'done', finished_at = ?, "
            "done = (SELECT COUNT(*) FROM batch_items WHERE job_id = ? AND state = 'done'), "
            "failed = (SELECT COUNT(*) FROM batch_items WHERE job_id = ? AND "
            "state = 'failed'), callback_state = CASE WHEN callback_url IS NULL THEN NULL "
            "ELSE 'pending' END WHERE id = ? AND state <> 'done' RETURNING *",
            (float(at if at is not None else _now()), job_id, job_id, job_id),
            fetch=True)]))[0]
        return _job(rows[0]) if rows else await self.get_job(job_id)

    async def job_items(self, job_id: str, start: int = 0, limit: int = 1000
                        ) -> list[JobItem]:
        """Items ``start`` to ``start + limit - 1`` (by seq), whatever their state."""
        rows = await self._fetch(
            "SELECT seq, number, state, result, error, finished_at FROM batch_items "
            "WHERE job_id = ? AND seq >= ? AND seq < ? ORDER BY seq",
            (job_id, int(start), int(start) + int(limit)))
        return [_item(r) for r in rows]

    async def set_callback_state(self, job_id: str, state: str, attempts: int,
                                 next_at: float | None = None, error: str | None = None
                                 ) -> None:
        """Record a callback attempt (``state``: pending, delivered or failed)."""
        ops = [Op("UPDATE batch_jobs SET callback_state = ?, callback_attempts = ?, "
                  "callback_next_at = ?, callback_error = ? WHERE id = ?",
                  (state, int(attempts), _f(next_at), error, job_id))]
        if state != "pending":
            ops.append(Op("UPDATE batch_jobs SET owner = NULL, lease_until = NULL "
                          "WHERE id = ?", (job_id,)))
        await self._run(ops)
