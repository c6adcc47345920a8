"""The store, the same tests on SQLite and on a real PostgreSQL: migrations, customers, API
keys, the lookups audit (group commit), port history and batch jobs."""

from __future__ import annotations

import asyncio
import os
import stat

import pytest

from gateway.store import (
    ApiKey,
    Conflict,
    ItemResult,
    ItemState,
    Job,
    JobState,
    PostgresStore,
    SqliteStore,
    Store,
    StoreError,
    mask_number,
    open_store,
    sqlite_path,
    store_for_url,
)
from gateway.store.migrations import MIGRATIONS


@pytest.fixture
async def store(store_url: str):
    s = await open_store(store_url)
    try:
        yield s
    finally:
        await s.close()


async def customer(store: Store, name: str = "acme", **kw):
    args = {"services": ["hlr", "mnp"], "rate": 10.0, "burst": 10, "inflight": 5,
            "callback_secret": "whsec_test"}
    args.update(kw)
    return await store.create_customer(name=name, **args)


def test_urls(tmp_path):
    assert sqlite_path("sqlite:///var/lib/hlrgw/hlrgw.db") == "/var/lib/hlrgw/hlrgw.db"
    assert sqlite_path("sqlite:hlrgw.db", tmp_path) == str(tmp_path / "hlrgw.db")
    assert sqlite_path("sqlite:data/x.db", "/etc/hlrgw") == "/etc/hlrgw/data/x.db"
    assert sqlite_path("sqlite::memory:") == ":memory:"
    assert isinstance(store_for_url("sqlite:///tmp/x.db"), SqliteStore)
    assert isinstance(store_for_url("postgresql://u@h/db"), PostgresStore)
    assert isinstance(store_for_url("postgres://u@h/db"), PostgresStore)
    for bad in ("mysql://h/db", "sqlite://host/x.db", "sqlite://"):
        with pytest.raises(StoreError):
            store_for_url(bad)
    assert "secret" not in repr(store_for_url("postgresql://u:secret@h/db"))


async def test_migrations_applied_once(store_url):
    s = await open_store(store_url)
    try:
        assert await s.schema_versions() == [m.version for m in MIGRATIONS]
        assert await s.migrate() == []
    finally:
        await s.close()
    s = await open_store(store_url)  # reopening applies nothing
    try:
        assert await s.migrate() == []
        assert await s.schema_versions() == [m.version for m in MIGRATIONS]
    finally:
        await s.close()


async def test_newer_schema_refused(store_url):
    from gateway.store.base import Op

    s = await open_store(store_url)
    await s._run([Op("INSERT INTO schema_migrations (version, description, applied_at) "
                     "VALUES (?, ?, ?)", (999, "from the future", 0.0))])
    await s.close()
    with pytest.raises(StoreError, match="newer"):
        await open_store(store_url)


async def test_sqlite_file_private_and_parent_created(tmp_path):
    path = tmp_path / "deep" / "dir" / "hlrgw.db"
    s = await open_store(f"sqlite://{path}")
    await s.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


async def test_sqlite_cannot_create(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot create"):
        await open_store(f"sqlite://{blocker}/sub/hlrgw.db")


async def test_customers(store):
    c = await customer(store, see_imsi=True, cache_age=60)
    assert c.id > 0 and c.services == {"hlr", "mnp"} and c.see_imsi and c.cache_age == 60
    assert c.entitled("hlr") and not c.entitled("ranges") and c.active
    with pytest.raises(Conflict):
        await customer(store)
    other = await customer(store, "beta", services=["ranges"])
    assert [x.name for x in await store.list_customers()] == ["acme", "beta"]
    assert await store.customer_by_name("beta") == other
    assert await store.get_customer(c.id) == c
    assert await store.get_customer(9999) is None
    changed = await store.update_customer(c.id, rate=2.5, services={"hlr"}, see_imsi=False,
                                          disabled_at=5.0)
    assert changed is not None
    assert (changed.rate, changed.services, changed.see_imsi, changed.active) == \
        (2.5, {"hlr"}, False, False)
    with pytest.raises(ValueError):
        await store.update_customer(c.id, id=3)
    assert "callback_secret" not in c.as_dict()


async def test_api_keys(store):
    c = await customer(store)
    await store.add_api_key(ApiKey("aaaaaaaaaaaa", c.id, "h1", 1.0))
    with pytest.raises(Conflict):
        await store.add_api_key(ApiKey("aaaaaaaaaaaa", c.id, "h2", 1.0))
    key, owner = await store.api_key("aaaaaaaaaaaa")
    assert key.key_hash == "h1" and owner == c and key.valid_at(2.0)
    assert await store.api_key("bbbbbbbbbbbb") is None
    # a rotation: the new key, the old one expiring at 100
    await store.add_api_key(ApiKey("bbbbbbbbbbbb", c.id, "h2", 2.0), expire_others_at=100.0)
    keys = {k.key_id: k for k in await store.api_keys(c.id)}
    assert keys["aaaaaaaaaaaa"].expires_at == 100.0 and keys["bbbbbbbbbbbb"].expires_at is None
    assert keys["aaaaaaaaaaaa"].valid_at(99.0) and not keys["aaaaaaaaaaaa"].valid_at(100.0)
    assert await store.revoke_api_key("bbbbbbbbbbbb", 3.0)
    assert not await store.revoke_api_key("bbbbbbbbbbbb", 4.0)  # already
    assert await store.revoke_customer_keys(c.id, 5.0) == 1
    assert all(not k.valid_at(6.0) for k in await store.api_keys(c.id))


async def test_record_lookup_group_commit(store):
    c = await customer(store)
    # 500 concurrent lookups: each returns once its row is committed, in a few transactions
    calls = []
    real_run = store._run

    async def counting(ops):
        calls.append(len(ops))
        return await real_run(ops)

    store._run = counting  # type: ignore[method-assign]
    await asyncio.gather(*(store.record_lookup(c.id, "hlr", f"4477009{i:05d}", "answered",
                                               "uk", at=1000.0 + i) for i in range(500)))
    assert 1 <= len(calls) < 50
    rows = await store.lookups(customer_id=c.id, limit=1000)
    assert len(rows) == 500 and rows[0].number == "447700900000" and rows[0].route == "uk"
    assert [r.at for r in rows] == sorted(r.at for r in rows)
    await store.record_lookup(c.id, "mnp", "447700900001", "not_ported", None, at=2000.0,
                              wait=False)
    await store.flush()
    assert await store.usage(customer_id=c.id) == [
        {"customer_id": c.id, "service": "hlr", "outcome": "answered", "count": 500},
        {"customer_id": c.id, "service": "mnp", "outcome": "not_ported", "count": 1}]
    assert len(await store.lookups(since=1100.0, until=1200.0)) == 100


async def test_port_history(store):
    n = "447700900123"
    await store.observe_network(n, "23415", 10.0)
    await store.observe_network(n, "23415", 20.0)
    c = await customer(store)
    await store.record_lookup(c.id, "hlr", n, "answered", "uk", network="23410", at=30.0)
    await store.observe_network(n, "23410", 40.0)
    await store.observe_network(n, "23415", 50.0)  # ported back
    await store.observe_network("447700900999", "23420", 15.0)
    history = await store.port_history(n)
    assert [(h.network, h.first_seen, h.last_seen) for h in history] == [
        ("23415", 10.0, 20.0), ("23410", 30.0, 40.0), ("23415", 50.0, 50.0)]
    assert await store.port_history("447700900000") == []
    # one group commit holding a number seen on A then B ends with B as its network
    await asyncio.gather(store.observe_network("4915", "A", 60.0),
                         store.observe_network("4915", "B", 61.0))
    assert [h.network for h in await store.port_history("4915")] == ["A", "B"]


async def test_port_observations_of_one_group_commit(store):
    # a group commit of distinct numbers takes multi-row statements: the same semantics
    await store.observe_network("4911", "A", 10.0)
    await store.observe_network("4922", "A", 10.0)
    await store.observe_network("4933", "A", 50.0)
    fresh = [(f"49{i:04d}", "C", 30.0 + i) for i in range(1000, 1300)]
    await asyncio.gather(*(store.observe_network(n, net, at) for n, net, at in [
        ("4911", "A", 20.0), ("4922", "B", 20.0), ("4933", "A", 40.0), *fresh]))

    async def seen(number):
        return [(h.network, h.first_seen, h.last_seen) for h in await store.port_history(number)]

    assert await seen("4911") == [("A", 10.0, 20.0)]  # extended
    assert await seen("4922") == [("A", 10.0, 10.0), ("B", 20.0, 20.0)]  # a port
    assert await seen("4933") == [("A", 50.0, 50.0)]  # an older sighting changes nothing
    for n, _, at in fresh[::37]:
        assert await seen(n) == [("C", at, at)]
    c = await customer(store)
    await asyncio.gather(*(store.record_lookup(c.id, "hlr", n, "answered", "uk", network=net,
                                               at=at) for n, net, at in fresh[:77]))
    assert len(await store.lookups(customer_id=c.id, limit=1000)) == 77
    assert await seen(fresh[5][0]) == [("C", fresh[5][2], fresh[5][2])]


async def test_batch_job_lifecycle(store):
    c = await customer(store)
    job = Job(id="job1", customer_id=c.id, service="hlr", options={"x": 1},
              callback_url="http://127.0.0.1:9/cb", state=JobState.QUEUED, total=4,
              created_at=100.0, owner="node-a", lease_until=160.0)
    numbers = ["447700900001", "447700900002", "bogus", "447700900004"]
    await store.create_job(job, numbers, {2: {"type": "invalid-number"}})
    got = await store.get_job("job1")
    assert got is not None and got.total == 4 and got.failed == 1 and got.pending == 3
    assert got.options == {"x": 1} and got.state is JobState.QUEUED
    assert await store.get_job("job1", customer_id=c.id + 1) is None
    with pytest.raises(Conflict):
        await store.create_job(job, numbers)

    # leases: node-b may not take it while node-a's lease runs; may once it has run out
    assert not await store.claim_job("job1", "node-b", 200.0, now=150.0)
    assert await store.claim_job("job1", "node-a", 210.0, now=150.0)
    assert (await store.get_job("job1")).state is JobState.RUNNING
    assert await store.claim_job("job1", "node-b", 300.0, now=220.0)
    await store.release_job("job1", "node-b")
    assert await store.claim_job("job1", "node-a", 400.0, now=230.0)
    assert [j.id for j in await store.resumable_jobs()] == ["job1"]

    assert await store.pending_items("job1") == [(0, "447700900001"), (1, "447700900002"),
                                                 (3, "447700900004")]
    assert await store.pending_items("job1", after_seq=0, limit=1) == [(1, "447700900002")]
    running = await store.get_job("job1")
    await store.complete_items(running, [
        ItemResult(0, "447700900001", {"status": "answered"}, None, "answered", "uk",
                   "23415", 240.0),
        ItemResult(1, "447700900002", None, {"type": "upstream-timeout"}, "upstream-timeout",
                   None, None, 241.0)])
    # the same item again (e.g. two writers): neither rewritten nor audited twice
    await store.complete_items(running, [
        ItemResult(0, "447700900001", {"status": "other"}, None, "answered", "uk", None,
                   242.0)])
    items = await store.job_items("job1", 0, 10)
    assert [i.state for i in items] == [ItemState.DONE, ItemState.FAILED, ItemState.FAILED,
                                        ItemState.PENDING]
    assert items[0].result == {"status": "answered"} and items[2].error["type"] == \
        "invalid-number"
    assert [i.seq for i in await store.job_items("job1", 1, 2)] == [1, 2]
    audit = await store.lookups(job_id="job1")
    assert [(a.number, a.outcome) for a in audit] == [("447700900001", "answered"),
                                                      ("447700900002", "upstream-timeout")]
    assert [h.network for h in await store.port_history("447700900001")] == ["23415"]
    progress = await store.get_job("job1")  # the repeated item did not count twice
    assert (progress.done, progress.failed) == (1, 2)
    recounted = await store.recount_job("job1")
    assert (recounted.done, recounted.failed) == (1, 2)

    await store.complete_items(running, [ItemResult(3, "447700900004", {"a": 1}, None, "ok",
                                                    None, None, 250.0)])
    done = await store.finish_job("job1", 260.0)
    assert done.state is JobState.DONE and (done.done, done.failed) == (2, 2)
    assert done.callback_state == "pending" and done.finished_at == 260.0
    assert [j.id for j in await store.resumable_jobs()] == ["job1"]  # its callback
    await store.set_callback_state("job1", "pending", 1, 270.0, "HTTP 500")
    j = await store.get_job("job1")
    assert (j.callback_attempts, j.callback_next_at, j.callback_error) == (1, 270.0, "HTTP 500")
    await store.set_callback_state("job1", "delivered", 2)
    assert await store.resumable_jobs() == []
    assert [x.id for x in await store.list_jobs(c.id)] == ["job1"]


async def test_large_job(store):
    c = await customer(store)
    n = 20_000
    job = Job(id="big", customer_id=c.id, service="hlr", options={}, callback_url=None,
              state=JobState.QUEUED, total=n, created_at=1.0)
    await store.create_job(job, [f"4477{i:08d}" for i in range(n)])
    assert len(await store.pending_items("big", limit=n)) == n
    assert (await store.get_job("big")).total == n


def test_mask_number():
    assert mask_number("447700900123") == "44********23"
    assert mask_number("+4477") == "****"


async def test_gateways_migrating_at_once(postgres_dsn):
    """Four gateways opening one new PostgreSQL database together: one migrates, the others
    wait for it (advisory lock) and find the schema done."""
    stores = await asyncio.gather(*(open_store(postgres_dsn) for _ in range(4)))
    try:
        for s in stores:
            assert await s.schema_versions() == [m.version for m in MIGRATIONS]
    finally:
        for s in stores:
            await s.close()
