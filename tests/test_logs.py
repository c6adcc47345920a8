"""Logging: one JSON shape for structlog's and the standard library's lines, the request id
bound in a context reaching both, numbers and IMSIs masked whatever logs them, levels."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from gateway import logs


@pytest.fixture
def stream():
    buf = io.StringIO()
    logs.setup_logging("info", "json", buf)
    yield buf
    logs.setup_logging("info", "json", None)


def lines(buf: io.StringIO) -> list[dict]:
    logs.flush()
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_scrub_masks_free_standing_digit_runs() -> None:
    assert logs.scrub("lookup of 447555100001 for +4915110000001") == \
        "lookup of 44********01 for +49*********01"
    assert logs.scrub("IMSI 234150555100001.") == "IMSI 23***********01."
    assert logs.scrub("port 2905, pc 2101, 1.5 s") == "port 2905, pc 2101, 1.5 s"
    assert logs.scrub("id c3e1eb35a2a2ad0000000000222744e7") == \
        "id c3e1eb35a2a2ad0000000000222744e7"  # inside a token: not a number


async def test_both_routes_share_the_shape_the_context_and_the_masking(stream) -> None:
    token = logs.bind_request(request_id="r-1")
    try:
        logging.getLogger("gateway.engine").warning("route for %s failed", "447555100001")
        logs.get_logger("gateway.http").info("GET /v1/hlr/{number} 200", status=200,
                                             number="447555100001", ms=1.5,
                                             nested={"imsi": "234150555100001"})

        async def inner() -> None:  # a task started in the context inherits it
            logging.getLogger("gateway.sigtran").info("in a task")

        await asyncio.create_task(inner())
    finally:
        logs.clear_request(token)
    logging.getLogger("gateway.engine").info("after the request")
    first, second, third, fourth = lines(stream)
    assert list(first)[:4] == ["ts", "level", "logger", "event"]
    assert first["event"] == "route for 44********01 failed"
    assert (first["logger"], first["level"], first["request_id"]) == \
        ("gateway.engine", "warning", "r-1")
    assert (second["logger"], second["status"], second["number"], second["ms"]) == \
        ("gateway.http", 200, "44********01", 1.5)
    assert second["nested"] == {"imsi": "23***********01"}
    assert third["request_id"] == "r-1"
    assert "request_id" not in fourth
    assert "447555100001" not in stream.getvalue()


def test_levels_and_console_format(stream) -> None:
    logs.set_level("warning")
    assert not logs.enabled(logging.INFO) and logs.enabled(logging.WARNING)
    logs.get_logger("x").info("dropped")
    logging.getLogger("y").info("dropped too")
    logs.get_logger("x").error("kept")
    assert [d["event"] for d in lines(stream)] == ["kept"]
    buf = io.StringIO()
    logs.setup_logging("info", "console", buf)
    logs.get_logger("gateway.http").info("hello", number="447555100001")
    logs.flush()
    out = buf.getvalue()
    assert "hello" in out and "44********01" in out and not out.startswith("{")


def test_exceptions_are_logged_masked(stream) -> None:
    try:
        raise ValueError("no answer for 447555100001")
    except ValueError:
        logging.getLogger("gateway.x").exception("failed")
    (doc,) = lines(stream)
    assert "ValueError: no answer for 44********01" in doc["exception"]


def test_log_event_writes_the_line_structlog_writes(stream) -> None:
    # the request path's shortcut: the same keys, order, values and masking
    fields = {"method": "GET", "path": "/v1/hlr/{number}", "status": 200, "ms": 1.25,
              "number": "44********01", "customer": "acme 447555100001"}
    token = logs.bind_request(request_id="r-9")
    try:
        logs.get_logger("gateway.http").info("GET /v1/hlr/447555100001 200", **fields)
        logs.log_event("gateway.http", "info", "GET /v1/hlr/447555100001 200", fields)
        logs.log_event("gateway.http", "debug", "dropped", fields)
    finally:
        logs.clear_request(token)
    via_structlog, direct = lines(stream)
    assert abs(via_structlog.pop("ts") - direct.pop("ts")) < 1.0
    assert list(via_structlog.items()) == list(direct.items())
    assert direct["event"] == "GET /v1/hlr/44********01 200"
    assert direct["customer"] == "acme 44********01" and direct["request_id"] == "r-9"


def test_scrub_value_shortcut_for_letters_and_digits_masks_what_scrub_masks() -> None:
    import random
    import string

    rnd = random.Random(5)
    pools = [string.ascii_letters + string.digits, string.digits, string.hexdigits,
             "0123456789ab", "0123456789a_+- ", "٠١٢٣٤٥٦٧٨٩0123"]
    for _ in range(20000):
        pool = rnd.choice(pools)
        text = "".join(rnd.choice(pool) for _ in range(rnd.randint(0, 40)))
        assert logs._scrub_value(text) == logs.scrub(text), text
    assert logs._scrub_value("447534200001") == logs.scrub("447534200001") != "447534200001"
    rid = "5f0c3e0d5c9a4e7f8d7f3a3b2c1d0e9f"
    assert logs._scrub_value(rid) == rid
