"""The lookup API application in process (aiohttp's test client, a scripted engine): the
OpenAPI document names every route the application serves and no other, request ids,
query checks, metrics behind the admin token, readiness."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.batch import BatchManager
from gateway.cache import MemoryCache
from gateway.customers import Customers, Limiter
from gateway.http.app import build_app, readiness
from gateway.http.openapi import openapi_document
from gateway.lookup import LookupService, describe
from gateway.store import open_store
from tests.test_lookup import FakeEngine, sri_sm

TOKEN = "admin-token-0123456789"


@pytest.fixture
async def api():
    store = await open_store("sqlite::memory:")
    customers = Customers(store)
    key = (await customers.add("acme", ["hlr", "ranges"], rate=1000)).key
    engine = FakeEngine()
    engine.script["447555100001"] = sri_sm("234150555100001", "447785010101")
    engine.linksets = {}
    service = LookupService(engine, store, MemoryCache(), ttl=60)
    limiter = Limiter()
    batch = BatchManager(store, service.lookup, limiter, describe=describe)
    app = build_app(service, customers, limiter, batch=batch, store=store,
                    metrics_token=lambda: TOKEN)
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client, key, app
    await client.close()
    await store.close()


def _template(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


async def test_the_document_and_the_routes_agree(api) -> None:
    client, key, app = api
    served = {(r.method, _template(r.resource.canonical)) for r in app.router.routes()
              if r.method != "HEAD"}
    doc = openapi_document()
    documented = {(m.upper(), _template(p)) for p, ops in doc["paths"].items() for m in ops}
    assert served == documented
    assert doc["openapi"] == "3.1.0"
    for path, ops in doc["paths"].items():
        for op in ops.values():
            for ref in re.findall(r"#/components/schemas/(\w+)", str(op)):
                assert ref in doc["components"]["schemas"], (path, ref)
    r = await client.get("/openapi.json")
    assert r.status == 200 and (await r.json())["paths"] == doc["paths"]


async def test_request_ids_and_strict_queries(api) -> None:
    client, key, _ = api
    auth = {"Authorization": f"Bearer {key}"}
    r = await client.get("/v1/hlr/447555100001", headers={**auth, "X-Request-ID": "abc-1"})
    assert r.status == 200 and r.headers["X-Request-ID"] == "abc-1"
    r = await client.get("/v1/hlr/447555100001", headers={**auth, "X-Request-ID": "bad id!"})
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-ID"])
    r = await client.get("/v1/ranges/447555100001?max_age=1", headers=auth)
    assert r.status == 400 and (await r.json())["field"] == "max_age"
    for bad in ("-1", "1.5", "9" * 12, "2592001"):
        r = await client.get(f"/v1/hlr/447555100001?max_age={bad}", headers=auth)
        assert r.status == 400, bad
    r = await client.get("/v1/hlr/447555100001?operation=sri", headers=auth)
    assert r.status == 400 and (await r.json())["field"] == "operation"
    r = await client.get("/nowhere")
    assert r.status == 404 and r.headers["Content-Type"].startswith("application/problem+json")
    assert r.headers["X-Request-ID"]
    # no middleware: aiohttp's 404 and 405 still answer in the request context
    r = await client.post("/v1/hlr/447555100001", headers=auth)
    assert r.status == 405 and r.headers["Content-Type"].startswith("application/problem+json")
    assert "GET" in r.headers["Allow"] and r.headers["X-Request-ID"]
    r = await client.get("/v1/nowhere", headers={"X-Request-ID": "abc-2"})
    assert r.status == 401 and r.headers["X-Request-ID"] == "abc-2"


async def test_metrics_need_the_admin_token(api) -> None:
    client, key, _ = api
    await client.get("/v1/hlr/447555100001", headers={"Authorization": f"Bearer {key}"})
    r = await client.get("/metrics", headers={"Authorization": f"Bearer {key}"})
    assert r.status == 401
    r = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    text = await r.text()
    assert r.status == 200
    assert 'hlrgw_api_lookups_total{route="uk-vodafone",service="hlr",status="connected"} 1.0' \
        in text
    assert 'hlrgw_api_http_responses_total{code="401"} 1.0' in text


async def test_readiness_follows_the_link_sets() -> None:
    class LinkSet:
        def __init__(self, up: bool) -> None:
            self.is_up = up

    engine = FakeEngine()
    service = LookupService(engine, None, None)
    engine.linksets = {name: LinkSet(False) for name in
                       ("uk-vodafone", "uk-ee", "uk-o2", "de-telekom", "de-vodafone", "hub")}
    doc = await readiness(service, None)
    assert doc["ready"] is False and not any(doc["routes"].values())
    engine.linksets["hub"] = LinkSet(True)  # every route falls back to the hub
    doc = await readiness(service, None)
    assert doc["ready"] is True and all(doc["routes"].values())
    engine.linksets["hub"] = LinkSet(False)
    engine.linksets["uk-ee"] = LinkSet(True)
    doc = await readiness(service, None)
    assert doc["ready"] is True and doc["routes"] == {
        "uk-vodafone": False, "uk-ee": True, "uk-o2": False, "de-telekom": False,
        "de-vodafone": False, "elsewhere": False}
