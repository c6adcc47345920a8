"""The lookup API's middleware: API keys (Bearer or X-API-Key), entitlement, every problem
type as RFC 9457 problem+json, the rate limit (429 with Retry-After), the in-flight cap, and
the audit of each lookup; on a real listener on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.customers import Customers, Limiter
from gateway.http.auth import customer_of, ensure_entitled, install, requires
from gateway.http.problems import (
    PROBLEM_BASE,
    PROBLEM_TYPES,
    ProblemError,
    ProblemType,
    check_number,
    problem,
)
from gateway.store import Store, open_store


@dataclass
class Api:
    client: TestClient
    store: Store
    customers: Customers
    keys: dict[str, str]
    gate: asyncio.Event


def lookup_app(store: Store, customers: Customers, limiter: Limiter, gate: asyncio.Event
               ) -> web.Application:
    """A stand-in for the lookup endpoints: what they do with the middleware and helpers."""
    app = web.Application()
    install(app, customers, limiter, public={"/v1/openapi.json"})

    @requires("hlr")
    async def hlr(request: web.Request) -> web.Response:
        customer = customer_of(request)
        number = check_number(request.match_info["number"])
        outcomes = {"0000": (ProblemType.NO_ROUTE, "no route serves this number"),
                    "0001": (ProblemType.UPSTREAM_TIMEOUT, "the HLR did not answer in 5 s"),
                    "0002": (ProblemType.UPSTREAM_FAILURE, "MAP abort")}
        if number[-4:] == "0003":
            await gate.wait()  # held in flight
        if number[-4:] in outcomes:
            type_, detail = outcomes[number[-4:]]
            await store.record_lookup(customer.id, "hlr", number, type_.value, "uk")
            raise ProblemError(None, type_, detail, route="uk")
        await store.record_lookup(customer.id, "hlr", number, "answered", "uk",
                                  network="23415")
        return web.json_response({"number": number, "status": "answered"})

    async def any_service(request: web.Request) -> web.Response:
        service = request.query.get("service", "")
        if not service:
            return problem(400, ProblemType.BAD_REQUEST, detail="service is required",
                           field="service")
        ensure_entitled(request, service)
        return web.json_response({"ok": service})

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response({"openapi": "3.1.0"})

    async def crash(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    app.router.add_get("/v1/hlr/{number}", hlr)
    app.router.add_get("/v1/any", any_service)
    app.router.add_get("/v1/openapi.json", openapi)
    app.router.add_get("/v1/crash", crash)
    app.router.add_get("/health", openapi)
    return app


@pytest.fixture
async def api(tmp_path) -> AsyncIterator[Api]:
    store = await open_store(f"sqlite://{tmp_path}/hlrgw.db")
    customers = Customers(store)
    keys = {
        "full": (await customers.add("full", "hlr,mnp,ranges,port_history", rate=1000,
                                     inflight=100)).key,
        "mnp": (await customers.add("mnp-only", "mnp", rate=1000, inflight=100)).key,
        "slow": (await customers.add("slow", "hlr", rate=2, burst=2, inflight=100)).key,
        "narrow": (await customers.add("narrow", "hlr", rate=1000, inflight=2)).key,
    }
    gate = asyncio.Event()
    client = TestClient(TestServer(lookup_app(store, customers, Limiter(), gate),
                                   host="127.0.0.1"))
    await client.start_server()
    try:
        yield Api(client, store, customers, keys, gate)
    finally:
        gate.set()
        await client.close()
        await store.close()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def problem_of(resp, status: int, type_: ProblemType) -> dict:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    doc = await resp.json(content_type=None)
    assert doc["type"] == PROBLEM_BASE + type_.value
    assert doc["status"] == status and doc["title"] == PROBLEM_TYPES[type_][1]
    return doc


async def test_bearer_and_x_api_key(api):
    for headers in (bearer(api.keys["full"]), {"X-API-Key": api.keys["full"]},
                    {"Authorization": f"bearer   {api.keys['full']}  "}):
        resp = await api.client.get("/v1/hlr/+447700900123", headers=headers)
        assert resp.status == 200, await resp.text()
        assert await resp.json() == {"number": "447700900123", "status": "answered"}
    rows = await api.store.lookups()
    assert len(rows) == 3 and {(r.service, r.number, r.outcome, r.route) for r in rows} == \
        {("hlr", "447700900123", "answered", "uk")}
    assert [h.network for h in await api.store.port_history("447700900123")] == ["23415"]


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "},
    {"X-API-Key": ""}, {"X-API-Key": "hlrgw_000000000000_" + "A" * 43},
    {"Authorization": "Bearer not-a-key"}])
async def test_unauthenticated(api, headers):
    resp = await api.client.get("/v1/hlr/447700900123", headers=headers)
    doc = await problem_of(resp, 401, ProblemType.UNAUTHENTICATED)
    assert resp.headers["WWW-Authenticate"].startswith('Bearer realm="hlr-gateway"')
    assert "detail" in doc
    assert await api.store.lookups() == []


async def test_revoked_key_refused(api):
    await api.customers.revoke("full")
    resp = await api.client.get("/v1/hlr/447700900123", headers=bearer(api.keys["full"]))
    await problem_of(resp, 401, ProblemType.UNAUTHENTICATED)
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


async def test_public_paths_and_other_prefixes(api):
    assert (await api.client.get("/v1/openapi.json")).status == 200
    assert (await api.client.get("/health")).status == 200


async def test_not_entitled(api):
    resp = await api.client.get("/v1/hlr/447700900123", headers=bearer(api.keys["mnp"]))
    doc = await problem_of(resp, 403, ProblemType.NOT_ENTITLED)
    assert doc["service"] == "hlr" and "mnp-only" in doc["detail"]
    resp = await api.client.get("/v1/any?service=ranges", headers=bearer(api.keys["mnp"]))
    await problem_of(resp, 403, ProblemType.NOT_ENTITLED)
    resp = await api.client.get("/v1/any?service=mnp", headers=bearer(api.keys["mnp"]))
    assert resp.status == 200


@pytest.mark.parametrize("number,reason", [
    ("abc", "not-a-number"), ("+999123456789", "invalid-country-code"),
    ("+44123", "too-short"), ("+4477009001234567890", "too-long")])
async def test_invalid_number(api, number, reason):
    resp = await api.client.get(f"/v1/hlr/{number}", headers=bearer(api.keys["full"]))
    doc = await problem_of(resp, 400, ProblemType.INVALID_NUMBER)
    assert doc["reason"] == reason and doc["number"] == number


@pytest.mark.parametrize("suffix,status,type_", [
    ("0000", 422, ProblemType.NO_ROUTE), ("0001", 504, ProblemType.UPSTREAM_TIMEOUT),
    ("0002", 502, ProblemType.UPSTREAM_FAILURE)])
async def test_lookup_problems_audited(api, suffix, status, type_):
    resp = await api.client.get(f"/v1/hlr/44770090{suffix}", headers=bearer(api.keys["full"]))
    doc = await problem_of(resp, status, type_)
    assert doc["route"] == "uk"
    [row] = await api.store.lookups()
    assert (row.number, row.outcome) == (f"44770090{suffix}", type_.value)


async def test_not_found_bad_request_and_internal(api):
    headers = bearer(api.keys["full"])
    resp = await api.client.get("/v1/nothing-here", headers=headers)
    await problem_of(resp, 404, ProblemType.NOT_FOUND)
    resp = await api.client.get("/v1/any", headers=headers)
    doc = await problem_of(resp, 400, ProblemType.BAD_REQUEST)
    assert doc["field"] == "service"
    resp = await api.client.post("/v1/any", headers=headers)
    await problem_of(resp, 405, ProblemType.METHOD_NOT_ALLOWED)
    assert "GET" in resp.headers["Allow"]
    resp = await api.client.get("/v1/crash", headers=headers)
    doc = await problem_of(resp, 500, ProblemType.INTERNAL)
    assert "secret" not in doc["detail"]


async def test_rate_limited(api):
    headers = bearer(api.keys["slow"])  # 2 a second, burst 2
    statuses = []
    for _ in range(3):
        resp = await api.client.get("/v1/hlr/447700900123", headers=headers)
        statuses.append(resp.status)
    assert statuses == [200, 200, 429]
    doc = await problem_of(resp, 429, ProblemType.RATE_LIMITED)
    assert resp.headers["Retry-After"] == "1" and doc["retry_after"] == 1
    assert doc["limit"] == "rate"
    # other customers are not affected
    resp = await api.client.get("/v1/hlr/447700900123", headers=bearer(api.keys["full"]))
    assert resp.status == 200
    await asyncio.sleep(float(resp.headers.get("Retry-After", "0")) or 0.55)
    resp = await api.client.get("/v1/hlr/447700900123", headers=headers)
    assert resp.status == 200
    assert len(await api.store.lookups()) == 4  # refused requests are not lookups


async def test_inflight_cap(api):
    headers = bearer(api.keys["narrow"])  # 2 in flight
    held = [asyncio.ensure_future(api.client.get("/v1/hlr/447700900003", headers=headers))
            for _ in range(2)]
    for _ in range(100):
        await asyncio.sleep(0.01)
        resp = await api.client.get("/v1/hlr/447700900123", headers=headers)
        if resp.status == 429:
            break
        await resp.release()
    doc = await problem_of(resp, 429, ProblemType.RATE_LIMITED)
    assert doc["limit"] == "inflight" and resp.headers["Retry-After"] == "1"
    api.gate.set()
    assert [r.status for r in await asyncio.gather(*held)] == [200, 200]
    resp = await api.client.get("/v1/hlr/447700900123", headers=headers)
    assert resp.status == 200  # the slots were given back


def test_problem_helper():
    resp = problem(404, "not-found", detail="no job x", job_id="x", skip=None)
    assert resp.status == 404 and resp.content_type == "application/problem+json"
    import json

    doc = json.loads(resp.text)
    assert doc == {"type": PROBLEM_BASE + "not-found", "title": "Not found", "status": 404,
                   "detail": "no job x", "job_id": "x"}
    custom = json.loads(problem(409, "https://example.net/p/x", "Custom").text)
    assert custom["type"] == "https://example.net/p/x" and custom["title"] == "Custom"
    err = ProblemError(None, ProblemType.RATE_LIMITED, "slow down")
    assert err.status == 429 and err.document()["title"] == "Rate limit exceeded"
