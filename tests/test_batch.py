"""Batch jobs through the HTTP API on 127.0.0.1: 202 with a Location, progress, paged
results as JSON and CSV, validation, a signed callback retried after a failure, and a
gateway restarted in the middle of a job (on SQLite and on PostgreSQL): every number is
looked up to a result, and audited, exactly once."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.batch import MAX_NUMBERS, BatchManager, CallbackPolicy, sign
from gateway.customers import Customers, Limiter
from gateway.http.auth import install
from gateway.http.batch import setup_batch_routes
from gateway.http.problems import PROBLEM_BASE, ProblemError, ProblemType
from gateway.store import Customer, JobState, Store, open_store

FAST_CALLBACKS = CallbackPolicy(attempts=4, base_delay=0.05, max_delay=0.2, timeout=2.0)


@dataclass
class FakeLookup:
    """The lookup service as the batch sees it: answers, or raises a problem for numbers
    ending in 13."""

    delay: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)

    async def __call__(self, service: str, number: str, customer: Customer) -> dict:
        self.calls[number] += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if number.endswith("13"):
            raise ProblemError(None, ProblemType.UPSTREAM_TIMEOUT, "the HLR did not answer",
                               route="uk")
        return {"number": number, "service": service, "status": "answered", "route": "uk",
                "network": {"mccmnc": "23415", "name": "O2"}, "ported": False}


@dataclass
class Gateway:
    client: TestClient
    manager: BatchManager
    store: Store

    async def stop(self) -> None:
        await self.client.close()  # the app's cleanup closes the manager


async def start_gateway(store: Store, lookup, **manager_kw) -> Gateway:
    limiter = Limiter()
    customers = Customers(store)
    app = web.Application()
    install(app, customers, limiter)
    manager = BatchManager(store, lookup, limiter, node="test-node",
                           callback=manager_kw.pop("callback", FAST_CALLBACKS), **manager_kw)
    setup_batch_routes(app, manager)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return Gateway(client, manager, store)


@dataclass
class Setup:
    gw: Gateway
    store: Store
    keys: dict[str, str]
    customers: dict[str, Customer]
    lookup: FakeLookup


@pytest.fixture
async def setup(tmp_path) -> AsyncIterator[Setup]:
    store = await open_store(f"sqlite://{tmp_path}/hlrgw.db")
    customers = Customers(store)
    a = await customers.add("acme", "hlr,mnp", rate=10_000, inflight=50)
    b = await customers.add("beta", "mnp", rate=10_000, inflight=50)
    lookup = FakeLookup()
    gw = await start_gateway(store, lookup)
    try:
        yield Setup(gw, store, {"acme": a.key, "beta": b.key},
                    {"acme": a.customer, "beta": b.customer}, lookup)
    finally:
        await gw.stop()
        await store.close()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def wait_done(client: TestClient, key: str, location: str, timeout: float = 30.0
                    ) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        resp = await client.get(location, headers=auth(key))
        assert resp.status == 200, await resp.text()
        doc = await resp.json()
        if doc["state"] == "done" and (doc["callback"] is None or
                                       doc["callback"]["state"] != "pending"):
            return doc
        assert time.monotonic() < deadline, doc
        await asyncio.sleep(0.05)


def numbers(n: int, start: int = 0) -> list[str]:
    return [f"+4477009{i:05d}" for i in range(start, start + n)]


async def test_submit_progress_pages_csv(setup):
    client, key = setup.gw.client, setup.keys["acme"]
    nums = numbers(250) + ["not a number", "+44123"]
    resp = await client.post("/v1/lookups", json={"service": "hlr", "numbers": nums},
                             headers=auth(key))
    assert resp.status == 202, await resp.text()
    job = await resp.json()
    location = resp.headers["Location"]
    assert location == f"/v1/lookups/{job['id']}" == job["links"]["self"]
    assert job["state"] == "queued" and job["progress"]["total"] == 252
    assert job["progress"]["failed"] == 2  # the invalid numbers, at once

    doc = await wait_done(client, key, location)
    assert doc["progress"] == {"total": 252, "done": 247, "failed": 5, "pending": 0,
                               "percent": 100.0}
    assert doc["finished_at"].endswith("Z") and doc["callback"] is None

    # paging
    resp = await client.get(f"{location}?per_page=100&page=2", headers=auth(key))
    page = await resp.json()
    assert page["results"]["page"] == 2 and page["results"]["pages"] == 3
    items = page["results"]["items"]
    assert [i["seq"] for i in items] == list(range(100, 200))
    assert items[0] == {"seq": 100, "number": "447700900100", "state": "done",
                        "result": {"number": "447700900100", "service": "hlr",
                                   "status": "answered", "route": "uk",
                                   "network": {"mccmnc": "23415", "name": "O2"},
                                   "ported": False}}
    failed = next(i for i in items if i["number"].endswith("113"))
    assert failed["state"] == "failed"
    assert failed["error"]["type"] == PROBLEM_BASE + "upstream-timeout"
    links = page["links"]
    assert links["next"].endswith("per_page=100&page=3")
    assert links["prev"].endswith("per_page=100&page=1")
    last = await (await client.get(links["next"], headers=auth(key))).json()
    assert len(last["results"]["items"]) == 52 and last["links"]["next"] is None
    bad = last["results"]["items"][-2]
    assert bad["number"] == "not a number" and bad["error"]["reason"] == "not-a-number"
    resp = await client.get(f"{location}?page=4&per_page=100", headers=auth(key))
    assert resp.status == 400
    resp = await client.get(f"{location}?per_page=0", headers=auth(key))
    assert resp.status == 400

    # CSV: the whole job with Accept, one page with ?format=csv
    resp = await client.get(location, headers={**auth(key), "Accept": "text/csv"})
    assert resp.status == 200 and resp.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert len(rows) == 252
    assert list(rows[0]) == ["seq", "number", "state", "error_type", "error_detail",
                             "network.mccmnc", "network.name", "ported", "route", "service",
                             "status"]
    assert rows[5]["number"] == "447700900005" and rows[5]["network.mccmnc"] == "23415"
    assert rows[5]["ported"] == "false" and rows[5]["error_type"] == ""
    assert rows[13]["state"] == "failed" and rows[13]["status"] == ""
    assert rows[13]["error_type"] == PROBLEM_BASE + "upstream-timeout"
    resp = await client.get(f"{location}?format=csv&per_page=10&page=3", headers=auth(key))
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert [r["seq"] for r in rows] == [str(i) for i in range(20, 30)]
    resp = await client.get(f"{location}?format=xml", headers=auth(key))
    assert resp.status == 400

    # every valid number looked up once, and audited once, with the job id
    assert set(setup.lookup.calls.values()) == {1} and len(setup.lookup.calls) == 250
    audit = await setup.store.lookups(job_id=job["id"], limit=1000)
    assert len(audit) == 250 and len({a.number for a in audit}) == 250
    assert Counter(a.outcome for a in audit) == {"answered": 247, "upstream-timeout": 3}
    assert [h.network for h in await setup.store.port_history("447700900001")] == ["23415"]

    # the job list
    jobs = await (await client.get("/v1/lookups", headers=auth(key))).json()
    assert [j["id"] for j in jobs["jobs"]] == [job["id"]]


async def test_text_body(setup):
    client, key = setup.gw.client, setup.keys["acme"]
    body = "number\n+447700900001\n447700900002,extra\n\n"
    resp = await client.post("/v1/lookups?service=mnp", data=body,
                             headers={**auth(key), "Content-Type": "text/csv"})
    assert resp.status == 202, await resp.text()
    doc = await wait_done(client, key, resp.headers["Location"])
    assert doc["service"] == "mnp" and doc["progress"]["done"] == 2


async def test_validation(setup):
    client, key = setup.gw.client, setup.keys["acme"]

    async def post(body, status, type_, headers=None, **kw):
        resp = await client.post("/v1/lookups", headers={**auth(key), **(headers or {})},
                                 **({"json": body} if body is not None else kw))
        assert resp.status == status, await resp.text()
        assert resp.content_type == "application/problem+json"
        doc = await resp.json(content_type=None)
        assert doc["type"] == PROBLEM_BASE + type_
        return doc

    await post({"service": "imsi", "numbers": ["+447700900001"]}, 400, "bad-request")
    await post({"service": "hlr", "numbers": []}, 400, "bad-request")
    await post({"service": "hlr", "numbers": "447700900001"}, 400, "bad-request")
    await post({"numbers": ["+447700900001"]}, 400, "bad-request")
    await post({"service": "hlr", "numbers": ["+1"], "bogus": 1}, 400, "bad-request")
    doc = await post({"service": "hlr", "numbers": ["447700900001"] * (MAX_NUMBERS + 1)},
                     400, "bad-request")
    assert doc["max_numbers"] == MAX_NUMBERS
    for url in ("ftp://example.net/x", "not a url", "http:///nohost", 5):
        await post({"service": "hlr", "numbers": ["+447700900001"], "callback_url": url},
                   400, "bad-request")
    await post({"service": "ranges", "numbers": ["+447700900001"]}, 403, "not-entitled")
    await post(None, 400, "bad-request", data=b"{nope",
               headers={"Content-Type": "application/json"})
    await post(None, 415, "unsupported-media-type", data=b"x",
               headers={"Content-Type": "application/xml"})
    resp = await client.post("/v1/lookups", json={"service": "hlr", "numbers": ["+1"]})
    assert resp.status == 401
    # someone else's job is not found
    resp = await client.post("/v1/lookups", json={"service": "hlr",
                                                  "numbers": ["+447700900001"]},
                             headers=auth(key))
    location = resp.headers["Location"]
    resp = await client.get(location, headers=auth(setup.keys["beta"]))
    assert resp.status == 404
    assert (await resp.json(content_type=None))["type"] == PROBLEM_BASE + "not-found"
    resp = await client.get("/v1/lookups/unknown", headers=auth(key))
    assert resp.status == 404


async def test_largest_job_accepted(setup):
    client, key = setup.gw.client, setup.keys["acme"]
    nums = [f"+4477{i:08d}" for i in range(MAX_NUMBERS)]
    start = time.monotonic()
    resp = await client.post("/v1/lookups", json={"service": "hlr", "numbers": nums},
                             headers=auth(key))
    assert resp.status == 202, await resp.text()
    assert time.monotonic() - start < 30
    job = await resp.json()
    assert job["progress"]["total"] == MAX_NUMBERS and job["progress"]["failed"] == 0
    await setup.gw.manager.close()  # no need to look them all up
    stored = await setup.store.get_job(job["id"])
    assert stored.total == MAX_NUMBERS


# --------------------------------------------------------------------------- callbacks


@dataclass
class Receiver:
    """A callback receiver on 127.0.0.1 that fails its first ``fail`` deliveries."""

    fail: int
    deliveries: list[tuple[dict[str, str], bytes, float]] = field(default_factory=list)
    got: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.deliveries.append((dict(request.headers), body, time.monotonic()))
        if len(self.deliveries) <= self.fail:
            return web.Response(status=500, text="not now")
        self.got.set()
        return web.Response(status=204)


async def test_callback_signed_and_retried(setup):
    receiver = Receiver(fail=1)
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        client, key = setup.gw.client, setup.keys["acme"]
        url = str(server.make_url("/hook"))
        resp = await client.post("/v1/lookups", json={
            "service": "hlr", "numbers": numbers(20), "callback_url": url},
            headers=auth(key))
        assert resp.status == 202
        job_id = (await resp.json())["id"]
        await asyncio.wait_for(receiver.got.wait(), 15)
        doc = await wait_done(client, key, resp.headers["Location"])
    finally:
        await server.close()

    assert doc["callback"] == {"url": url, "state": "delivered", "attempts": 2,
                               "last_error": None}
    assert len(receiver.deliveries) == 2
    (h1, b1, t1), (h2, b2, t2) = receiver.deliveries
    assert t2 - t1 >= 0.04  # backed off
    secret = setup.customers["acme"].callback_secret
    for headers, body in ((h1, b1), (h2, b2)):
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-HLRGW-Signature"], expected)
        assert headers["X-HLRGW-Signature"] == sign(secret, body)
        payload = json.loads(body)
        assert headers["X-HLRGW-Timestamp"] == str(payload["delivered_at"])
        assert abs(payload["delivered_at"] - time.time()) < 60
        assert headers["X-HLRGW-Job"] == job_id
    assert (h1["X-HLRGW-Attempt"], h2["X-HLRGW-Attempt"]) == ("1", "2")
    payload = json.loads(b2)
    assert payload["event"] == "job.finished" and payload["job"]["id"] == job_id
    assert payload["job"]["state"] == "done" and payload["results_included"]
    assert [r["seq"] for r in payload["results"]] == list(range(20))
    # a tampered body does not verify
    assert sign(secret, b2 + b" ") != h2["X-HLRGW-Signature"]
    assert sign("whsec_other", b2) != h2["X-HLRGW-Signature"]


async def test_callback_gives_up(setup):
    receiver = Receiver(fail=100)
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        client, key = setup.gw.client, setup.keys["acme"]
        resp = await client.post("/v1/lookups", json={
            "service": "hlr", "numbers": numbers(3),
            "callback_url": str(server.make_url("/hook"))}, headers=auth(key))
        doc = await wait_done(client, key, resp.headers["Location"])
    finally:
        await server.close()
    assert doc["callback"]["state"] == "failed" and doc["callback"]["attempts"] == 4
    assert doc["callback"]["last_error"] == "HTTP 500" and len(receiver.deliveries) == 4


# --------------------------------------------------------------------------- restart


async def test_restart_mid_job(store_url):
    """Stop the gateway (app and worker) in the middle of a job, start a new one on the same
    store: the job completes with every number looked up to a result exactly once."""
    total = 600
    store = await open_store(store_url)
    issued = await Customers(store).add("acme", "hlr", rate=100_000, inflight=16)
    key = issued.key
    first = FakeLookup(delay=0.002)
    gw = await start_gateway(store, first, concurrency=8, flush_every=25,
                             flush_interval=0.05)
    resp = await gw.client.post("/v1/lookups", json={"service": "hlr",
                                                     "numbers": numbers(total)},
                                headers=auth(key))
    assert resp.status == 202
    job_id, location = (await resp.json())["id"], resp.headers["Location"]
    deadline = time.monotonic() + 30
    while (await store.get_job(job_id)).done + (await store.get_job(job_id)).failed < 150:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    await gw.stop()  # mid-job: the worker stops with the app
    await store.close()

    store = await open_store(store_url)  # a new process
    stopped = await store.get_job(job_id)
    assert stopped.state is JobState.RUNNING and 0 < stopped.pending < total
    second = FakeLookup(delay=0.0005)
    gw = await start_gateway(store, second, concurrency=8)
    try:
        assert gw.manager.running() == [job_id] or (await store.get_job(job_id)).state \
            is JobState.DONE
        doc = await wait_done(gw.client, key, location)
        assert doc["progress"]["total"] == total and doc["progress"]["pending"] == 0
        items = await store.job_items(job_id, 0, total)
        assert [i.seq for i in items] == list(range(total))
        assert all(i.state.value in ("done", "failed") for i in items)
        assert all(i.result is None or i.result["number"] == i.number for i in items)
        # every number: one result, one audit row (the second gateway only did the rest)
        audit = await store.lookups(job_id=job_id, limit=10 * total)
        assert sorted(a.number for a in audit) == sorted(n.lstrip("+")
                                                         for n in numbers(total))
        assert set(first.calls) | set(second.calls) == {n.lstrip("+") for n in numbers(total)}
        assert sum(second.calls.values()) <= total - (total - stopped.pending) + 16
    finally:
        await gw.stop()
        await store.close()


async def test_resume_on_start_without_http(tmp_path):
    """A job stored but never run (the gateway died right after the 202) runs on start."""
    store = await open_store(f"sqlite://{tmp_path}/hlrgw.db")
    customer = (await Customers(store).add("acme", "hlr")).customer
    lookup = FakeLookup()
    manager = BatchManager(store, lookup, Limiter(), node="n1")
    job = await manager.submit(customer, "hlr", numbers(30))  # not started: stays queued
    assert (await store.get_job(job.id)).state is JobState.QUEUED
    await manager.start()
    done = await manager.wait(job.id, timeout=10)
    assert done.state is JobState.DONE and done.done == 29 and done.failed == 1
    await manager.close()
    await store.close()


async def test_batch_respects_customer_limits(tmp_path):
    store = await open_store(f"sqlite://{tmp_path}/hlrgw.db")
    customer = (await Customers(store).add("acme", "hlr", rate=200, burst=1,
                                           inflight=4)).customer
    in_flight, peak = 0, 0

    async def lookup(service, number, customer):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.005)
        in_flight -= 1
        return {"status": "answered"}

    manager = BatchManager(store, lookup, Limiter(), concurrency=50)
    await manager.start()
    started = time.monotonic()
    job = await manager.submit(customer, "hlr", numbers(41, 100))
    done = await manager.wait(job.id, timeout=10)
    elapsed = time.monotonic() - started
    await manager.close()
    await store.close()
    # half the customer's limits: 2 in flight, 100 a second
    assert done.done + done.failed == 41 and peak <= 2
    assert elapsed >= 0.38  # 1 at once, then 40 at 100 a second


async def test_callback_resumed_after_restart(tmp_path):
    """A callback that could not be delivered before a stop is delivered by the next start,
    its attempts counted on."""
    store = await open_store(f"sqlite://{tmp_path}/hlrgw.db")
    customer = (await Customers(store).add("acme", "hlr")).customer
    receiver = Receiver(fail=0)
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    url, port = str(server.make_url("/hook")), server.port
    await server.close()  # down for now: connection refused
    slow = CallbackPolicy(attempts=5, base_delay=30.0, max_delay=60.0, timeout=1.0)
    manager = BatchManager(store, FakeLookup(), Limiter(), callback=slow)
    await manager.start()
    job = await manager.submit(customer, "hlr", numbers(3), callback_url=url)
    deadline = time.monotonic() + 10
    while (await store.get_job(job.id)).callback_attempts < 1:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    await manager.close()  # waiting 30 s for the second try: stopped
    stored = await store.get_job(job.id)
    assert stored.callback_state == "pending" and stored.callback_attempts == 1
    assert stored.callback_error.startswith("Client")

    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    try:
        await store.set_callback_state(job.id, "pending", 1, time.time(), "down")  # due now
        manager = BatchManager(store, FakeLookup(), Limiter(), callback=slow)
        await manager.start()
        await asyncio.wait_for(receiver.got.wait(), 10)
        done = await manager.wait(job.id, timeout=10)
        assert done.callback_state == "delivered" and done.callback_attempts == 2
        headers, body, _ = receiver.deliveries[0]
        assert headers["X-HLRGW-Attempt"] == "2"
        assert headers["X-HLRGW-Signature"] == sign(customer.callback_secret, body)
    finally:
        await manager.close()
        await server.close()
        await store.close()


async def test_lease_keeps_a_job_on_one_gateway(store_url):
    """Two gateways on one store: a job leased to one is not run by the other until the
    lease has run out."""
    store = await open_store(store_url)
    customer = (await Customers(store).add("acme", "hlr")).customer
    a = BatchManager(store, FakeLookup(), Limiter(), node="gw-a", lease=60.0)
    job = await a.submit(customer, "hlr", numbers(5))  # a never starts: as if it died
    b_lookup = FakeLookup()
    b = BatchManager(store, b_lookup, Limiter(), node="gw-b", lease=60.0)
    await b.start()
    try:
        await asyncio.sleep(0.05)
        assert b.running() == [] and (await store.get_job(job.id)).owner == "gw-a"
        b.clock = lambda: time.time() + 61  # a's lease has run out
        await b._take_up()
        done = await b.wait(job.id, timeout=10)
        assert done.state is JobState.DONE and done.done == 5
        assert sum(b_lookup.calls.values()) == 5
    finally:
        await b.close()
        await store.close()
