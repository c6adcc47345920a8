"""Customers and API keys: keys are random, shown once and stored hashed; rotation with a
grace period; revocation; the limiter (token bucket and in-flight cap); ``hlrgw customers``."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import sqlite3

import pytest

from gateway.customers import (
    CustomerError,
    Customers,
    Limiter,
    hash_key,
    new_key,
    parse_key,
    parse_services,
)
from gateway.store import Customer, open_store


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def store(store_url):
    s = await open_store(store_url)
    try:
        yield s
    finally:
        await s.close()


def test_key_format():
    seen = set()
    for _ in range(200):
        key_id, key = new_key()
        assert parse_key(key) == key_id and key.startswith(f"hlrgw_{key_id}_")
        assert len(key) == len("hlrgw_") + 12 + 1 + 43  # 256-bit secret
        seen.add(key)
    assert len(seen) == 200
    for bad in ("", "hlrgw_", "Bearer x", "hlrgw_zzzzzzzzzzzz_" + "a" * 43,
                key[:-1], key + "x"):
        assert parse_key(bad) is None
    assert hash_key(key) == hashlib.sha256(key.encode()).hexdigest()


def test_parse_services():
    assert parse_services("hlr, mnp") == {"hlr", "mnp"}
    assert parse_services(["ranges", "port_history"]) == {"ranges", "port_history"}
    with pytest.raises(CustomerError, match="unknown service"):
        parse_services("hlr,imsi")
    with pytest.raises(CustomerError, match="at least one"):
        parse_services(" , ")


async def test_key_shown_once_and_stored_hashed(store, tmp_path):
    customers = Customers(store)
    issued = await customers.add("acme", "hlr,mnp", rate=5, inflight=3, see_imsi=True,
                                 cache_age=120)
    c = issued.customer
    assert (c.name, c.services, c.rate, c.burst, c.inflight, c.see_imsi, c.cache_age) == \
        ("acme", {"hlr", "mnp"}, 5.0, 5, 3, True, 120.0)
    assert c.callback_secret.startswith("whsec_")
    # only the hash is stored: nowhere in the database is the key or its secret part
    keys = await store.api_keys(c.id)
    assert [k.key_id for k in keys] == [issued.key_id]
    assert keys[0].key_hash == hash_key(issued.key) != issued.key
    secret = issued.key[len("hlrgw_") + 13:]
    if store.dialect == "sqlite":
        await store.close()
        dump = "\n".join(sqlite3.connect(store.path).iterdump())
        assert issued.key_id in dump and secret not in dump and issued.key not in dump
        store = await open_store(f"sqlite://{store.path}")
        customers = Customers(store)
    assert (await customers.authenticate(issued.key)) == c
    assert await customers.authenticate(issued.key + "x") is None
    assert await customers.authenticate(issued.key[:-1] + ("A" if issued.key[-1] != "A"
                                                             else "B")) is None
    assert await customers.authenticate("nonsense") is None
    _, unknown = new_key()
    assert await customers.authenticate(unknown) is None
    with pytest.raises(CustomerError, match="exists"):
        await customers.add("acme", "hlr")
    for bad in ({"name": "bad name"}, {"rate": 0}, {"inflight": 0}, {"cache_age": -1}):
        args = {"name": "x", "services": "hlr", **bad}
        name = args.pop("name")
        services = args.pop("services")
        with pytest.raises(CustomerError):
            await customers.add(name, services, **args)
    if store.dialect == "sqlite":
        await store.close()


async def test_rotation_grace_and_revocation(store):
    clock = Clock()
    customers = Customers(store, cache_ttl=0, clock=clock)
    first = await customers.add("acme", "hlr")
    second = await customers.rotate("acme", grace=3600)
    assert second.key != first.key and second.old_keys_expire_at == clock.t + 3600
    assert await customers.authenticate(first.key) is not None  # within the grace period
    assert await customers.authenticate(second.key) is not None
    clock.t += 3600
    assert await customers.authenticate(first.key) is None  # grace over
    assert await customers.authenticate(second.key) is not None
    third = await customers.rotate("acme", grace=0)  # at once
    assert await customers.authenticate(second.key) is None
    assert await customers.authenticate(third.key) is not None
    # revoke one key by id, or every key by name
    fourth = await customers.rotate("acme", grace=60)
    owner, revoked = await customers.revoke(third.key_id)
    assert owner.name == "acme" and revoked == [third.key_id]
    assert await customers.authenticate(third.key) is None
    assert await customers.authenticate(fourth.key) is not None
    _, revoked = await customers.revoke("acme")
    assert fourth.key_id in revoked
    assert await customers.authenticate(fourth.key) is None
    with pytest.raises(CustomerError, match="no customer or key"):
        await customers.revoke("nobody")
    with pytest.raises(CustomerError, match="no customer"):
        await customers.rotate("nobody")


async def test_disabled_customer_and_cache(store):
    clock = Clock()
    customers = Customers(store, cache_ttl=5, clock=clock)
    issued = await customers.add("acme", "hlr")
    assert await customers.authenticate(issued.key) is not None
    # another process (hlrgw customers) revokes the key: seen once the cache entry is old
    other = Customers(store, clock=clock)
    await other.revoke(issued.key_id)
    assert await customers.authenticate(issued.key) is not None
    clock.t += 5
    assert await customers.authenticate(issued.key) is None
    key2 = await other.rotate("acme", grace=0)
    await other.update("acme", disabled_at=clock.t)
    customers.forget()
    assert await customers.authenticate(key2.key) is None
    await other.update("acme", disabled_at=None)
    customers.forget()
    assert await customers.authenticate(key2.key) is not None


def _customer(**kw) -> Customer:
    args = {"id": 1, "name": "acme", "services": frozenset({"hlr"}), "rate": 2.0,
            "burst": 2, "inflight": 3, "see_imsi": False, "cache_age": None,
            "callback_secret": "s", "created_at": 0.0}
    args.update(kw)
    return Customer(**args)


def test_limiter_rate_and_retry_after():
    clock = Clock(0.0)
    limiter = Limiter(clock=clock)
    c = _customer(rate=2.0, burst=2, inflight=100)
    assert limiter.admit(c).admitted and limiter.admit(c).admitted
    refused = limiter.admit(c)
    assert not refused.admitted and refused.limit == "rate"
    assert refused.retry_after == pytest.approx(0.5) and refused.retry_after_header == "1"
    clock.t = 0.5
    assert limiter.admit(c).admitted
    slow = _customer(id=2, rate=0.1, burst=1, inflight=100)
    assert limiter.admit(slow).admitted
    assert limiter.admit(slow).retry_after_header == "10"
    # a new rate applies from the next request on: the wait is 1/100 s, not 10 s
    faster = _customer(id=2, rate=100.0, burst=1, inflight=100)
    assert limiter.admit(faster).retry_after == pytest.approx(0.01)
    clock.t += 0.01
    assert limiter.admit(faster).admitted


def test_limiter_inflight():
    limiter = Limiter(clock=Clock(0.0))
    c = _customer(rate=1000.0, burst=1000, inflight=2)
    assert limiter.admit(c).admitted and limiter.admit(c).admitted
    refused = limiter.admit(c)
    assert (refused.admitted, refused.limit, refused.retry_after_header) == \
        (False, "inflight", "1")
    limiter.release(c)
    assert limiter.in_flight(c) == 1 and limiter.admit(c).admitted


async def test_limiter_acquire_waits():
    limiter = Limiter()
    c = _customer(rate=1000.0, burst=1000, inflight=4)
    order: list[int] = []
    peak = 0

    async def item(i: int) -> None:
        nonlocal peak
        async with limiter.slot(c):
            order.append(i)
            peak = max(peak, limiter.in_flight(c, batch=True))
            await asyncio.sleep(0.01)

    # batch items use at most half the in-flight cap: the other half stays for HTTP
    task = asyncio.ensure_future(asyncio.gather(*(item(i) for i in range(10))))
    await asyncio.sleep(0.005)
    assert limiter.admit(c).admitted and limiter.admit(c).admitted
    assert not limiter.admit(c).admitted
    limiter.release(c)
    limiter.release(c)
    await task
    assert sorted(order) == list(range(10)) and peak == 2
    assert limiter.in_flight(c) == 0 and limiter.in_flight(c, batch=True) == 0
    c = _customer(rate=1000.0, burst=1000, inflight=2)
    # a waiter cancelled while queued leaves no slot taken
    assert limiter.admit(c).admitted and limiter.admit(c).admitted
    waiter = asyncio.ensure_future(limiter.acquire(c))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    limiter.release(c)
    limiter.release(c)
    assert limiter.in_flight(c) == 0


async def test_limiter_acquire_paces():
    limiter = Limiter()
    c = _customer(rate=100.0, burst=1, inflight=10)
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def item() -> None:
        async with limiter.slot(c):
            pass

    await asyncio.gather(*(item() for _ in range(11)))
    assert loop.time() - start >= 0.19  # 1 at once, then 10 at half the rate: 50/s
    # the batch's tokens come from the customer's bucket: none left for now
    assert limiter.admit(c).limit == "rate"


# --------------------------------------------------------------------------- the CLI


def cli(argv: list[str]) -> tuple[int, str, str]:
    import argparse

    from gateway.customers_cli import add_commands

    parser = argparse.ArgumentParser(prog="hlrgw")
    sub = parser.add_subparsers(dest="command", required=True)
    add_commands(sub)
    args = parser.parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    rc = args.func(args, out, err)
    return rc, out.getvalue(), err.getvalue()


def test_cli_add_list_rotate_revoke(tmp_path, monkeypatch):
    db = tmp_path / "hlrgw.db"
    config = tmp_path / "gw.toml"
    config.write_text(
        '[sccp]\nglobal_title = "447700900000"\n[map]\nsmsc_address = "447700900000"\n'
        '[[routes]]\nname = "rest"\ndefault = true\n  [[routes.methods]]\n  kind = "reject"\n'
        '[storage]\nurl = "sqlite:hlrgw.db"\n')
    rc, out, err = cli(["customers", "add", "acme", "--services", "hlr,mnp", "--rate", "5",
                        "--inflight", "7", "--see-imsi", "--config", str(config)])
    assert rc == 0, err
    assert "customer acme (id 1): services hlr,mnp; rate 5/s (burst 5); 7 in flight; " \
        "IMSI unmasked" in out
    key = next(line.split(": ", 1)[1] for line in out.splitlines()
               if line.startswith("API key"))
    assert parse_key(key) and "callback secret" in out and db.exists()

    monkeypatch.setenv("HLRGW_CONFIG", str(config))
    rc, out, err = cli(["customers", "list"])
    assert rc == 0 and "customer acme" in out and "active" in out
    assert key not in out and key[len("hlrgw_") + 13:] not in out  # never shown again

    rc, out, err = cli(["customers", "rotate", "acme", "--grace", "0"])
    assert rc == 0 and "no longer work" in out
    new = next(line.split(": ", 1)[1] for line in out.splitlines()
               if line.startswith("API key"))
    rc, out, _ = cli(["customers", "list", "--json"])
    states = {k["key_id"]: k["state"] for k in json.loads(out)[0]["keys"]}
    assert states == {parse_key(key): "expired", parse_key(new): "active"}

    rc, out, _ = cli(["customers", "rotate", "acme"])
    assert rc == 0 and "stop working at" in out
    rc, out, _ = cli(["customers", "revoke", parse_key(new)])
    assert rc == 0 and f"revoked 1 key(s) of acme: {parse_key(new)}" in out
    rc, out, _ = cli(["customers", "revoke", "acme"])
    assert rc == 0 and "revoked 1 key(s)" in out
    rc, out, _ = cli(["customers", "rotate", "acme", "--callback-secret"])
    assert rc == 0 and "whsec_" in out
    rc, out, _ = cli(["customers", "set", "acme", "--rate", "9", "--services", "ranges",
                      "--mask-imsi", "--disable"])
    assert rc == 0 and "DISABLED" in out and "rate 9/s" in out and "IMSI masked" in out

    rc, _, err = cli(["customers", "add", "acme", "--services", "hlr"])
    assert rc == 1 and "exists already" in err
    rc, _, err = cli(["customers", "add", "x", "--services", "imsi"])
    assert rc == 1 and "unknown service" in err
    rc, _, err = cli(["customers", "revoke", "nobody"])
    assert rc == 1 and "no customer or key id 'nobody'" in err


def test_cli_needs_a_store(monkeypatch, tmp_path):
    monkeypatch.delenv("HLRGW_CONFIG", raising=False)
    rc, _, err = cli(["customers", "list"])
    assert rc == 1 and "--config FILE" in err
    bad = tmp_path / "bad.toml"
    bad.write_text("[sccp]\n")
    rc, _, err = cli(["customers", "list", "--config", str(bad)])
    assert rc == 1 and "is invalid" in err
    rc, out, _ = cli(["customers", "list", "--store", f"sqlite://{tmp_path}/x.db"])
    assert rc == 0 and "no customers" in out
