"""The schema, as a short versioned list of migrations applied in order at start.

Each migration is written once in a portable SQL with four type placeholders, filled per
engine (:data:`TYPES`): ``{id}`` (an auto-incremented 64-bit key), ``{real}`` (seconds since
the epoch and other floats), ``{bigint}`` and ``{text}``. Booleans are ``SMALLINT`` 0/1 in
both engines, JSON documents are text. ``schema_migrations`` records what is applied; a
store never runs a migration twice, and refuses a database newer than the code
(:class:`~gateway.store.base.StoreError`).

Rules for a new migration: append it (never edit one that has shipped), keep it to
statements both engines accept, and bump nothing else: the version is its position.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MIGRATIONS", "Migration", "TYPES", "statements"]


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    sql: tuple[str, ...]


TYPES: dict[str, dict[str, str]] = {
    "sqlite": {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "real": "REAL",
               "bigint": "INTEGER", "text": "TEXT"},
    "postgresql": {"id": "BIGSERIAL PRIMARY KEY", "real": "DOUBLE PRECISION",
                   "bigint": "BIGINT", "text": "TEXT"},
}

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "customers, API keys, lookups audit, port observations, batch jobs", (
        """CREATE TABLE customers (
            id {id},
            name {text} NOT NULL UNIQUE,
            services {text} NOT NULL,
            rate {real} NOT NULL,
            burst INTEGER NOT NULL,
            inflight INTEGER NOT NULL,
            see_imsi SMALLINT NOT NULL DEFAULT 0,
            cache_age {real},
            callback_secret {text} NOT NULL,
            created_at {real} NOT NULL,
            disabled_at {real}
        )""",
        """CREATE TABLE api_keys (
            key_id {text} PRIMARY KEY,
            customer_id {bigint} NOT NULL REFERENCES customers (id),
            key_hash {text} NOT NULL,
            created_at {real} NOT NULL,
            expires_at {real},
            revoked_at {real}
        )""",
        "CREATE INDEX api_keys_customer ON api_keys (customer_id)",
        """CREATE TABLE lookups (
            id {id},
            customer_id {bigint} NOT NULL,
            service {text} NOT NULL,
            number {text} NOT NULL,
            outcome {text} NOT NULL,
            route {text},
            at {real} NOT NULL,
            job_id {text}
        )""",
        "CREATE INDEX lookups_customer_at ON lookups (customer_id, at)",
        "CREATE INDEX lookups_at ON lookups (at)",
        """CREATE TABLE port_observations (
            id {id},
            number {text} NOT NULL,
            network {text} NOT NULL,
            first_seen {real} NOT NULL,
            last_seen {real} NOT NULL
        )""",
        "CREATE INDEX port_observations_number ON port_observations (number, id)",
        """CREATE TABLE batch_jobs (
            id {text} PRIMARY KEY,
            customer_id {bigint} NOT NULL REFERENCES customers (id),
            service {text} NOT NULL,
            options {text} NOT NULL,
            callback_url {text},
            state {text} NOT NULL,
            total INTEGER NOT NULL,
            done INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0,
            created_at {real} NOT NULL,
            started_at {real},
            finished_at {real},
            owner {text},
            lease_until {real},
            callback_state {text},
            callback_attempts INTEGER NOT NULL DEFAULT 0,
            callback_next_at {real},
            callback_error {text}
        )""",
        "CREATE INDEX batch_jobs_state ON batch_jobs (state)",
        "CREATE INDEX batch_jobs_customer ON batch_jobs (customer_id, created_at)",
        """CREATE TABLE batch_items (
            job_id {text} NOT NULL REFERENCES batch_jobs (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            number {text} NOT NULL,
            state {text} NOT NULL,
            result {text},
            error {text},
            finished_at {real},
            PRIMARY KEY (job_id, seq)
        )""",
        "CREATE INDEX batch_items_pending ON batch_items (job_id, state, seq)",
    )),
)


def statements(migration: Migration, dialect: str) -> list[str]:
    """The migration's statements for ``dialect`` ("sqlite" or "postgresql")."""
    types = TYPES[dialect]
    return [s.format(**types) for s in migration.sql]
