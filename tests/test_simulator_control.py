"""The control API over HTTP on 127.0.0.1: counters, subscribers changed at run time (and what
the HLRs then answer over M3UA), faults injected and cleared, reset, problem+json errors."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from simulators.client import describe_outcome

PROBLEM = "application/problem+json"


@pytest.fixture
async def http(simulator):
    async with aiohttp.ClientSession(simulator.control_url) as session:
        yield session


async def call(http, method: str, path: str, body=None, *, status: int = 200, raw=None):
    kw = {"json": body} if body is not None else {"data": raw} if raw is not None else {}
    async with http.request(method, path, **kw) as resp:
        text = await resp.text()
        assert resp.status == status, f"{method} {path}: {resp.status} {text}"
        if resp.status == 204:
            return None
        data = await resp.json(content_type=None)
        if status >= 400:
            assert resp.content_type == PROBLEM
            assert data["status"] == status and data["type"] == "about:blank"
            assert data["title"] and data["detail"]
        return data


async def sri_sm(peer, number: str, via: str = "uk-vodafone") -> str:
    return describe_outcome(await peer.client.sri_sm(number, peer.route(via)))


async def test_index_and_networks(simulator, http) -> None:
    index = await call(http, "GET", "/")
    assert index["seed"] == 1 and index["links"]["counters"] == "/counters"
    nets = (await call(http, "GET", "/networks"))["networks"]
    assert [n["name"] for n in nets] == list(simulator.endpoints)
    vf = nets[0]
    ep = simulator.endpoint("uk-vodafone")
    assert (vf["host"], vf["port"], vf["gt"], vf["point_code"], vf["routing_context"]) == (
        "127.0.0.1", ep.port, "447785016005", 2101, 101)
    assert vf["mcc"] == "234" and vf["mnc"] == "15" and "447555" in vf["ranges"]
    assert nets[-1]["serves"] == "all"
    one = await call(http, "GET", "/networks/uk-o2")
    assert one["max_versions"]["sri_sm"] == 2
    err = await call(http, "GET", "/networks/fr-orange", status=404)
    assert "fr-orange" in err["detail"]


async def test_counters_by_operation_and_outcome(simulator, simulator_peer, http) -> None:
    await sri_sm(simulator_peer, "447555100001")
    await sri_sm(simulator_peer, "447555100001")
    await sri_sm(simulator_peer, "447555100002")
    await simulator_peer.client.ati("4915220000001", simulator_peer.route("de-vodafone"))
    counters = await call(http, "GET", "/counters")
    vf = counters["endpoints"]["uk-vodafone"]
    assert vf["dialogues"] == {"sri_sm": {"result": 2, "absent_subscriber_sm": 1}}
    assert vf["total"] == 3
    assert vf["associations"]["active"] == 1 and vf["associations"]["accepted"] == 1
    assert counters["endpoints"]["de-vodafone"]["dialogues"] == {"ati": {"ati_not_allowed": 1}}
    assert counters["total"] == 4


async def test_switch_off_port_and_roam_a_subscriber(simulator, simulator_peer, http) -> None:
    n = "447555100001"
    assert await sri_sm(simulator_peer, n) == "IMSI 234150555100001, MSC 447785010101"

    view = await call(http, "PATCH", f"/subscribers/{n}", {"status": "absent"})
    assert view["override"] == {"status": "absent"} and view["override_source"] == "runtime"
    assert view["subscriber"]["status"] == "absent"
    assert await sri_sm(simulator_peer, n) == "error absent_subscriber_sm (imsi_detached)"

    await call(http, "PATCH", f"/subscribers/+{n}", {"status": None, "ported_to": "uk-o2"})
    # ported: O2's IMSI and MSC, and O2's HLR serves SRI-SM v2
    assert await sri_sm(simulator_peer, n) == "IMSI 234102555100001, MSC 447802010101 [v2]"

    view = await call(http, "PATCH", f"/subscribers/{n}", {"roaming_in": "de-telekom"})
    assert view["override"] == {"ported_to": "uk-o2", "roaming_in": "de-telekom"}
    sub = view["subscriber"]
    assert (sub["network"], sub["serving_network"], sub["ported"], sub["roaming"]) == (
        "uk-o2", "de-telekom", True, True)
    assert (await sri_sm(simulator_peer, n)).startswith("IMSI 234102555100001, MSC 4917107601")

    view = await call(http, "DELETE", f"/subscribers/{n}")
    assert view["override"] is None and view["subscriber"]["status"] == "connected"
    assert (await sri_sm(simulator_peer, n)).startswith("IMSI 234150555100001")


async def test_put_replaces_the_files_override(simulator, simulator_peer, http) -> None:
    n = "447555100002"  # absent in the file
    view = await call(http, "GET", f"/subscribers/{n}")
    assert view["override"] == {"status": "absent", "absent_diagnostic": "imsi_detached"}
    assert view["override_source"] == "file"
    await call(http, "PUT", f"/subscribers/{n}",
               {"status": "barred", "barring_cause": "operator_barring"})
    assert await sri_sm(simulator_peer, n) == "error call_barred (operator_barring)"
    await call(http, "PUT", f"/subscribers/{n}", {})  # an empty override: the range's
    assert (await sri_sm(simulator_peer, n)).startswith("IMSI 234150555100002")
    await call(http, "DELETE", f"/subscribers/{n}")  # the file's again
    assert await sri_sm(simulator_peer, n) == "error absent_subscriber_sm (imsi_detached)"


@pytest.mark.parametrize(("method", "path", "body", "status", "detail"), [
    ("PATCH", "/subscribers/447555100001", {"status": "asleep"}, 400,
     "body.status: must be one of connected, absent"),
    ("PATCH", "/subscribers/447555100001", {"stauts": "absent"}, 400, "body.stauts: unknown key"),
    ("PUT", "/subscribers/447555100001", {"ported_to": "uk-vodafone"}, 400,
     "body.ported_to: 447555100001 is in a range of uk-vodafone already"),
    ("PUT", "/subscribers/447555100001", {"roaming_in": "fr-orange"}, 400,
     "body.roaming_in: no network named 'fr-orange'"),
    ("PUT", "/subscribers/447555100001", {"cell_id": -1}, 400, "body.cell_id: must be in"),
    ("PUT", "/subscribers/447555100001", [1], 400, "body: must be a JSON object"),
    ("GET", "/subscribers/33612345678", None, 404, "no network holds a range for 33612345678"),
    ("GET", "/subscribers/44abc", None, 400, "number: must be 3 to 15 decimal digits"),
    ("POST", "/faults", {"kind": "latency", "ms": -5}, 400, "body.ms: must be in"),
    ("POST", "/faults", {"kind": "no_answer", "network": "fr-orange"}, 400,
     "body.network: no endpoint named 'fr-orange'"),
    ("POST", "/faults", {"network": "uk-ee"}, 400, "body.kind: missing"),
    ("DELETE", "/faults/f999999", None, 404, "no fault with id 'f999999'"),
    ("GET", "/nowhere", None, 404, "GET /nowhere: not found"),
    ("DELETE", "/counters", None, 405, "method not allowed"),
])
async def test_errors_are_problem_json_naming_the_key(http, method, path, body, status,
                                                      detail) -> None:
    err = await call(http, method, path, body, status=status)
    assert detail in err["detail"]


async def test_invalid_json_body(http) -> None:
    err = await call(http, "PATCH", "/subscribers/447555100001", raw=b"{status:", status=400)
    assert err["detail"].startswith("body: not valid JSON")


async def test_inject_and_clear_faults(simulator, simulator_peer, http) -> None:
    listed = (await call(http, "GET", "/faults"))["faults"]
    assert [f["id"] for f in listed] == [f"file-{i}" for i in range(1, 8)]
    assert listed[1] == {"id": "file-2", "kind": "no_answer", "source": "file",
                         "number": "447555800001", "probability": 1.0}

    async with http.post("/faults", json={"kind": "p_abort", "network": "uk-ee",
                                          "cause": "unrecognized_transaction_id"}) as resp:
        assert resp.status == 201
        fault = await resp.json()
        assert resp.headers["Location"] == f"/faults/{fault['id']}"
    assert fault["cause"] == "unrecognized_transaction_id" and fault["source"] == "api"
    assert await sri_sm(simulator_peer, "447534200001", "uk-ee") == "failure provider_abort (1)"
    await call(http, "DELETE", f"/faults/{fault['id']}", status=204)
    assert (await sri_sm(simulator_peer, "447534200001", "uk-ee")).startswith("IMSI 23430")

    cleared = await call(http, "DELETE", "/faults")
    assert cleared == {"cleared": 7}
    assert (await sri_sm(simulator_peer, "447555800002")).startswith("IMSI")  # was tcap_abort

    await call(http, "PATCH", "/subscribers/447555100001", {"status": "unknown"})
    reset = await call(http, "POST", "/reset")
    assert len(reset["faults"]) == 7
    assert await sri_sm(simulator_peer, "447555800002") == "failure abort"
    assert (await sri_sm(simulator_peer, "447555100001")).startswith("IMSI")
    counters = await call(http, "GET", "/counters")
    assert counters["total"] == 2  # counted since the reset only


async def test_reset_associations_on_command(simulator, simulator_peer, http) -> None:
    linkset = simulator_peer.route("uk-ee").linkset
    assert linkset.is_up
    done = await call(http, "POST", "/networks/uk-ee/reset-associations")
    assert done == {"network": "uk-ee", "reset": 1}
    hlr = simulator.hlr("uk-ee")
    for _ in range(300):  # the client notices, backs off, reconnects
        if sum(s.accepted for s in hlr.servers) == 2:
            break
        await asyncio.sleep(0.01)
    assert await linkset.wait_up(timeout=3.0)
    assert (await sri_sm(simulator_peer, "447534200001", "uk-ee")).startswith("IMSI")
    ee = (await call(http, "GET", "/counters"))["endpoints"]["uk-ee"]["associations"]
    assert ee["reset"] == 1 and ee["accepted"] == 2 and ee["active"] == 1
