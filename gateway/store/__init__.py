"""The gateway's storage: customers, API keys (hashed), the lookups audit, port
observations and batch jobs, behind one async interface (:class:`Store`) with two engines:

- **SQLite** (the embedded default, :class:`SqliteStore`): ``[storage] url =
  "sqlite:///var/lib/hlrgw/hlrgw.db"``;
- **PostgreSQL** (scale out: several gateways on one database, :class:`PostgresStore`):
  ``url = "postgresql://hlrgw@db.example.net/hlrgw"``.

>>> store = await open_store(config.storage.url, base_dir=os.path.dirname(config.path))
>>> await store.record_lookup(customer.id, "hlr", "447700900123", "answered", "uk")
>>> await store.close()

The schema is migrated at open (:mod:`.migrations`).
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

from .base import (
    ApiKey,
    Conflict,
    Customer,
    ItemResult,
    ItemState,
    Job,
    JobItem,
    JobState,
    LookupRecord,
    PortObservation,
    Store,
    StoreError,
    mask_number,
)
from .postgres import PostgresStore
from .sqlite import SqliteStore

__all__ = [
    "ApiKey", "Conflict", "Customer", "ItemResult", "ItemState", "Job", "JobItem", "JobState",
    "LookupRecord", "PortObservation", "PostgresStore", "SqliteStore", "Store", "StoreError",
    "mask_number", "open_store", "store_for_url", "sqlite_path",
]


def sqlite_path(url: str, base_dir: str | os.PathLike[str] | None = None) -> str:
    """The file of a ``sqlite:`` URL:

    - ``sqlite:///var/lib/hlrgw/hlrgw.db``: an absolute path (``/var/lib/hlrgw/hlrgw.db``);
    - ``sqlite:hlrgw.db`` or ``sqlite:data/hlrgw.db``: relative to ``base_dir`` (the
      configuration file's directory), else to the working directory;
    - ``sqlite::memory:``: a private in-memory database (tests).
    """
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise StoreError(f"not a sqlite URL: {url!r}")
    if parts.netloc and parts.netloc != "localhost":
        raise StoreError(f"{url!r}: a SQLite store is a local file: write sqlite:///PATH")
    path = unquote(parts.path)
    if path == ":memory:":
        return path
    if not path or path == "/":
        raise StoreError(f"{url!r} names no file: write sqlite:///PATH")
    if not os.path.isabs(path) and base_dir is not None:
        path = os.path.join(os.fspath(base_dir), path)
    return path


def store_for_url(url: str, base_dir: str | os.PathLike[str] | None = None) -> Store:
    """An unopened store for ``url`` (see :func:`sqlite_path` for SQLite)."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        return SqliteStore(sqlite_path(url, base_dir))
    if scheme in ("postgresql", "postgres"):
        return PostgresStore(url)
    raise StoreError(f"{url!r}: the storage URL scheme must be sqlite or postgresql")


async def open_store(url: str, base_dir: str | os.PathLike[str] | None = None) -> Store:
    """Open the store at ``url`` and migrate its schema; raises :class:`StoreError`."""
    return await store_for_url(url, base_dir).open()
