"""The OpenAPI 3.1 document of the lookup API (``GET /openapi.json``).

Written by hand, next to the code it describes, and checked against the running gateway:
``tests/test_e2e.py`` runs schemathesis on it (no server error, no response outside the
document) and compares each documented example with a live answer's shape.
"""

from __future__ import annotations

import copy
from typing import Any

from gateway import __version__
from gateway.http.problems import PROBLEM_BASE, PROBLEM_TYPES, ProblemType
from gateway.lookup import HLR_STATUSES
from gateway.numbers import NUMBER_TYPES, REASONS

__all__ = ["openapi_document"]

PROBLEM_JSON = "application/problem+json"


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(schema)
    t = out.get("type")
    if isinstance(t, str):
        out["type"] = [t, "null"]
    elif "$ref" in out:
        return {"anyOf": [out, {"type": "null"}]}
    return out


def _str(description: str, **kw: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **kw}


def _obj(props: dict[str, Any], description: str = "", *, required: list[str] | None = None,
         extra: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props,
                           "required": list(props) if required is None else required,
                           "additionalProperties": extra}
    if description:
        out["description"] = description
    return out


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


DIGITS = {"type": "string", "pattern": "^[0-9]{1,15}$"}

SCHEMAS: dict[str, Any] = {
    "Network": _obj({
        "name": _nullable(_str("the network's name (null: an MCC/MNC we do not know)")),
        "mcc": _nullable(_str("mobile country code (E.212)", pattern="^[0-9]{3}$")),
        "mnc": _nullable(_str("mobile network code", pattern="^[0-9]{2,3}$")),
        "country": _nullable(_str("ISO 3166-1 alpha-2", pattern="^[A-Z]{2}$")),
        "country_name": _nullable(_str("the country's English name")),
    }, "a mobile network"),
    "RangeHolder": _obj({
        "name": _nullable(_str("the network holding the range")),
        "mcc": _nullable(_str("mobile country code", pattern="^[0-9]{3}$")),
        "mnc": _nullable(_str("mobile network code", pattern="^[0-9]{2,3}$")),
        "country": _nullable(_str("ISO 3166-1 alpha-2", pattern="^[A-Z]{2}$")),
        "country_name": _nullable(_str("the country's English name")),
        "prefix": {**DIGITS, "description": "the range's E.164 prefix"},
        "source": _str("range_table:NAME (the configuration) or phonenumbers (its carrier "
                       "data)"),
    }, "the network a number's range was allocated to (its original network)"),
    "MapError": _obj({
        "name": _str("the MAP error (TS 29.002 §17.6), e.g. absent_subscriber_sm"),
        "code": {"type": "integer", "minimum": 0, "maximum": 255,
                 "description": "its error code"},
        "diagnostic": _nullable(_str("its diagnostic, e.g. imsi_detached")),
    }),
    "MapDetail": _obj({
        "operation": _nullable(_str("the MAP operation that answered",
                                    enum=["sri_sm", "ati", "sri"])),
        "error": {"anyOf": [_ref("MapError"), {"type": "null"}]},
        "subscriber_state": _nullable(_str("ATI: assumed_idle, camel_busy, "
                                           "net_det_not_reachable, not_provided_from_vlr")),
        "not_reachable_reason": _nullable(_str("ATI: ms_purged, imsi_detached, "
                                               "restricted_area, not_registered")),
    }, "what the HLR answered"),
    "Location": _obj({
        "mcc": _nullable(_str("", pattern="^[0-9]{3}$")),
        "mnc": _nullable(_str("", pattern="^[0-9]{2,3}$")),
        "lac": _nullable({"type": "integer"}),
        "cell_id": _nullable({"type": "integer"}),
        "age_minutes": _nullable({"type": "integer", "description": "age of the location"}),
    }, "the serving cell (ATI)"),
    "Serving": _obj({
        "msc": _nullable({**DIGITS, "description": "the serving MSC's global title"}),
        "vlr": _nullable({**DIGITS, "description": "the serving VLR's global title (ATI)"}),
        "country": _nullable(_str("the serving country (of the MSC's GT, or the cell's "
                                  "MCC)", pattern="^[A-Z]{2}$")),
        "country_name": _nullable(_str("")),
        "network": {"anyOf": [_ref("Network"), {"type": "null"}],
                    "description": "the serving network (ATI: the cell's MCC/MNC)"},
        "location": {"anyOf": [_ref("Location"), {"type": "null"}]},
    }, "where the subscriber is served"),
    "LookupMeta": _obj({
        "id": _str("this lookup's id", pattern="^[0-9a-f]{32}$"),
        "route": _nullable(_str("the route that answered")),
        "method": _nullable(_str("map_sri_sm, map_ati, local (configured data) or mnp_table")),
        "via": _nullable(_str("the link set (or MNP table) it went through")),
        "map_version": _nullable({"type": "integer", "minimum": 1, "maximum": 3}),
        "attempts": {"type": "integer", "minimum": 0,
                     "description": "methods tried on the route"},
        "latency_ms": {"type": "number", "minimum": 0,
                       "description": "the network query's latency"},
        "cached": {"type": "boolean"},
        "cache_age": {"type": "number", "minimum": 0,
                      "description": "seconds since the answer was fetched (0 when live)"},
        "time": _str("when the network answered (RFC 3339 UTC)", format="date-time"),
    }, "lookup metadata"),
    "HlrAnswer": _obj({
        "number": {**DIGITS, "description": "the number, E.164 digits"},
        "status": _str("connected, absent, not_found, barred or unknown", enum=HLR_STATUSES),
        "source": _str("map (a live MAP answer), or the local data that answered "
                       "(range_table:NAME, mnp:NAME)"),
        "map": {"anyOf": [_ref("MapDetail"), {"type": "null"}]},
        "imsi": _nullable(_str("the IMSI; its MSIN masked with * unless the customer may "
                               "see it", pattern="^[0-9]{5,6}[0-9*]{0,10}$")),
        "imsi_masked": {"type": "boolean"},
        "home_network": {"anyOf": [_ref("Network"), {"type": "null"}],
                         "description": "the subscription network (from the IMSI)"},
        "serving": {"anyOf": [_ref("Serving"), {"type": "null"}]},
        "roaming": _nullable({"type": "boolean",
                              "description": "served in another country than home"}),
        "ported": _nullable({"type": "boolean",
                             "description": "home network differs from the range holder"}),
        "routing_number": _nullable(_str("MNP routing number, when known")),
        "original_network": {"anyOf": [_ref("RangeHolder"), {"type": "null"}]},
        "lookup": _ref("LookupMeta"),
    }, "an HLR lookup's answer"),
    "MnpAnswer": _obj({
        "number": DIGITS,
        "ported": _nullable({"type": "boolean"}),
        "current_network": {"anyOf": [_ref("Network"), {"type": "null"}]},
        "original_network": {"anyOf": [_ref("RangeHolder"), {"type": "null"}]},
        "routing_number": _nullable(_str("")),
        "source": _str("hlr (HLR-derived), mnp:NAME (a configured MNP file) or local data"),
        "hlr_status": _nullable(_str("the HLR status behind it", enum=HLR_STATUSES)),
        "lookup": _ref("LookupMeta"),
    }, "a number portability answer"),
    "Range": _obj({
        "prefix": DIGITS,
        "start": {**DIGITS, "description": "the range's first number"},
        "end": {**DIGITS, "description": "the range's last number"},
        "source": _str("range_table:NAME or phonenumbers"),
    }),
    "RangeAnswer": _obj({
        "number": DIGITS,
        "country": _obj({
            "code": _nullable(_str("ISO 3166-1 alpha-2 (null: a non-geographic code)")),
            "name": _nullable(_str("")),
            "calling_code": {"type": "integer", "minimum": 1, "maximum": 999},
        }),
        "number_type": _str("the number's type in its national plan", enum=NUMBER_TYPES),
        "valid": {"type": "boolean",
                  "description": "the national plan (phonenumbers) allocates the number"},
        "range": {"anyOf": [_ref("Range"), {"type": "null"}]},
        "range_holder": {"anyOf": [_ref("Network"), {"type": "null"}]},
        "lookup": _obj({"id": _str("", pattern="^[0-9a-f]{32}$"),
                        "time": _str("", format="date-time")}),
    }, "the range holding a number"),
    "PortEvent": _obj({
        "at": _str("when the new network was first seen", format="date-time"),
        "from": _ref("Network"),
        "to": _ref("Network"),
    }),
    "Observation": _obj({
        "network": _ref("Network"),
        "first_seen": _str("", format="date-time"),
        "last_seen": _str("", format="date-time"),
    }),
    "PortHistory": _obj({
        "number": DIGITS,
        "window": _str("the window asked for (ISO 8601 duration)"),
        "since": _str("the window's start", format="date-time"),
        "ports": {"type": "integer", "minimum": 0,
                  "description": "ports observed within the window"},
        "events": {"type": "array", "items": _ref("PortEvent")},
        "current_network": {"anyOf": [_ref("Network"), {"type": "null"}]},
        "original_network": {"anyOf": [_ref("Network"), {"type": "null"}]},
        "observed_since": _nullable(_str("the first observation", format="date-time")),
        "last_observed": _nullable(_str("the latest observation", format="date-time")),
        "observations": {"type": "array", "items": _ref("Observation")},
        "lookup": _obj({"id": _str("", pattern="^[0-9a-f]{32}$"),
                        "time": _str("", format="date-time")}),
    }, "the ports the gateway observed"),
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details",
        "properties": {
            "type": _str("a stable URI naming the problem", format="uri"),
            "title": _str(""),
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": _str(""),
            "number": _str("the number as given (invalid-number, no-route, upstream-*)"),
            "reason": _str("why the number is invalid", enum=list(REASONS)),
            "service": _str("the service the customer is not entitled to"),
            "limit": _str("the limit hit", enum=["rate", "inflight"]),
            "retry_after": {"type": "integer", "minimum": 0},
            "field": {"anyOf": [{"type": "string"}, {"type": "array"}]},
            "route": _nullable(_str("the route that was tried")),
            "map": {"type": "object", "description": "the last MAP failure (upstream-*)"},
        },
        "required": ["type", "title", "status"],
        "additionalProperties": True,
    },
    "Health": _obj({"status": _str("", enum=["ok"]), "version": _str(""),
                    "uptime": {"type": "number", "minimum": 0}}),
    "Ready": _obj({
        "ready": {"type": "boolean"},
        "routes": {"type": "object", "additionalProperties": {"type": "boolean"},
                   "description": "each route: whether one of its MAP link sets is up"},
        "linksets": {"type": "object", "additionalProperties": {"type": "boolean"}},
        "store": {"type": "boolean"},
    }),
    # ---- batch jobs (gateway/http/batch.py)
    "JobProgress": _obj({
        "total": {"type": "integer", "minimum": 0},
        "done": {"type": "integer", "minimum": 0},
        "failed": {"type": "integer", "minimum": 0},
        "pending": {"type": "integer", "minimum": 0},
        "percent": {"type": "number", "minimum": 0, "maximum": 100},
    }),
    "JobCallback": _obj({
        "url": _str(""),
        "state": _nullable(_str("pending, delivered or failed")),
        "attempts": {"type": "integer", "minimum": 0},
        "last_error": _nullable(_str("")),
    }),
    "Job": {
        "type": "object",
        "properties": {
            "id": _str(""),
            "service": _str("", enum=["hlr", "mnp", "ranges", "port_history"]),
            "state": _str("", enum=["queued", "running", "done"]),
            "created_at": _nullable(_str("", format="date-time")),
            "started_at": _nullable(_str("", format="date-time")),
            "finished_at": _nullable(_str("", format="date-time")),
            "progress": _ref("JobProgress"),
            "callback": {"anyOf": [_ref("JobCallback"), {"type": "null"}]},
            "links": {"type": "object",
                      "additionalProperties": {"type": ["string", "null"]}},
            "results": _obj({
                "page": {"type": "integer", "minimum": 1},
                "per_page": {"type": "integer", "minimum": 1},
                "pages": {"type": "integer", "minimum": 1},
                "items": {"type": "array", "items": _ref("JobItem")},
            }),
        },
        "required": ["id", "service", "state", "created_at", "started_at", "finished_at",
                     "progress", "callback", "links"],
        "additionalProperties": False,
    },
    "JobItem": {
        "type": "object",
        "properties": {
            "seq": {"type": "integer", "minimum": 0},
            "number": _str("the number (E.164 digits, or the text given when invalid)"),
            "state": _str("", enum=["pending", "done", "failed"]),
            "result": {"type": "object", "description": "the lookup's answer, as the "
                       "service's own endpoint gives it"},
            "error": _ref("Problem"),
        },
        "required": ["seq", "number", "state"],
        "additionalProperties": False,
    },
    "JobRequest": {
        "type": "object",
        "properties": {
            "service": _str("", enum=["hlr", "mnp", "ranges", "port_history"]),
            "numbers": {"type": "array", "minItems": 1, "maxItems": 100000,
                        "items": {"type": "string", "maxLength": 64}},
            "callback_url": _str("signed POST when the job is done", format="uri"),
            "options": {"type": "object"},
        },
        "required": ["service", "numbers"],
        "additionalProperties": False,
    },
}


def _problem_response(description: str, headers: dict[str, Any] | None = None
                      ) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description,
                           "content": {PROBLEM_JSON: {"schema": _ref("Problem")}}}
    if headers:
        out["headers"] = headers
    return out


_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before trying again",
                                "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
_REQUEST_ID = {"X-Request-ID": {"description": "the request's id (the client's, when it "
                                "sent a usable one); every log line of the request has it",
                                "schema": {"type": "string"}}}


def _errors(*codes: int) -> dict[str, Any]:
    texts = {
        400: "bad-request, or invalid-number (with phonenumbers' reason)",
        401: "unauthenticated: no API key, or not a valid one",
        403: "not-entitled to this service",
        404: "not-found",
        413: "payload-too-large",
        415: "unsupported-media-type",
        422: "no-route for this number",
        429: "rate-limited (the customer's rate or in-flight cap)",
        502: "upstream-failure: no HLR answered (abort, link down, undecodable answer...)",
        503: "unavailable: the route is at its TPS cap",
        504: "upstream-timeout: no HLR answered in time",
    }
    out: dict[str, Any] = {}
    for code in codes:
        headers = _RETRY_AFTER if code in (429, 503) else None
        if code == 401:
            headers = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        out[str(code)] = _problem_response(texts[code], headers)
    return out


def _number_param(example: str) -> dict[str, Any]:
    return {"name": "number", "in": "path", "required": True,
            "description": "the number written internationally: 447555100001, "
            "+447555100001, 00447555100001, +44 7555 100001",
            "schema": {"type": "string", "minLength": 1, "maxLength": 64},
            "example": example}


_MAX_AGE = {"name": "max_age", "in": "query", "required": False,
            "description": "the oldest cached answer to accept, in seconds (0: a live "
            "query); default: the customer's default age, else the gateway's cache ttl",
            "schema": {"type": "integer", "minimum": 0, "maximum": 2592000}}


def _lookup_op(op_id: str, summary: str, description: str, schema: str, example: str,
               params: list[dict[str, Any]], errors: tuple[int, ...], tag: str
               ) -> dict[str, Any]:
    return {"get": {
        "operationId": op_id, "summary": summary, "description": description,
        "tags": [tag],
        "parameters": [_number_param(example), *params],
        "responses": {
            "200": {"description": "the answer", "headers": _REQUEST_ID,
                    "content": {"application/json": {"schema": _ref(schema)}}},
            **_errors(*errors),
        },
    }}


def openapi_document(server_url: str | None = None) -> dict[str, Any]:
    """The document (a fresh copy each call)."""
    types = ", ".join(f"`{t.value}`" for t in ProblemType)
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "hlr-gateway lookup API",
            "version": __version__,
            "description": "HLR, number portability, number range and port-history lookups "
            "over SS7 MAP. Every error is an RFC 9457 problem document whose `type` is "
            f"{PROBLEM_BASE} followed by one of: {types}.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": server_url or "/"}],
        "security": [{"bearer": []}, {"apiKey": []}],
        "tags": [{"name": "lookups"}, {"name": "batch"}, {"name": "operations"}],
        "paths": {
            "/v1/hlr/{number}": _lookup_op(
                "hlrLookup", "HLR lookup",
                "A live MAP query (SRI-SM, or ATI where the route says so) unless a cached "
                "answer young enough exists. Statuses: connected, absent, not_found, barred, "
                "unknown (the MAP detail says why).", "HlrAnswer", "447555100001",
                [_MAX_AGE, {"name": "operation", "in": "query", "required": False,
                            "description": "use only the route's methods of this MAP "
                            "operation", "schema": {"type": "string",
                                                    "enum": ["sri_sm", "ati"]}}],
                (400, 401, 403, 422, 429, 502, 503, 504), "lookups"),
            "/v1/mnp/{number}": _lookup_op(
                "mnpLookup", "Number portability",
                "Current network, original network, ported flag and routing number: from a "
                "configured MNP file when it holds the number, else derived from an HLR "
                "lookup (cached like one).", "MnpAnswer", "447555100007", [_MAX_AGE],
                (400, 401, 403, 422, 429, 502, 503, 504), "lookups"),
            "/v1/ranges/{number}": _lookup_op(
                "rangeLookup", "Number range",
                "The range holding the number (configured range tables, else phonenumbers' "
                "carrier data), its country, number type and holder. No network query.",
                "RangeAnswer", "4915110000001", [], (400, 401, 403, 429), "lookups"),
            "/v1/port-history/{number}": _lookup_op(
                "portHistory", "Port history",
                "How many times the number ported within the window, and when, from the "
                "networks the gateway's HLR lookups saw it on.", "PortHistory",
                "447555100007",
                [{"name": "window", "in": "query", "required": False,
                  "description": "an ISO 8601 duration: P2Y (the default), P6M, P90D, P2W, "
                  "PT12H", "schema": {"type": "string", "maxLength": 32,
                                      "pattern": "^P(?:[0-9]+Y)?(?:[0-9]+M)?(?:[0-9]+W)?"
                                      "(?:[0-9]+D)?(?:T(?:[0-9]+H)?(?:[0-9]+M)?"
                                      "(?:[0-9]+S)?)?$"}}],
                (400, 401, 403, 429), "lookups"),
            "/v1/lookups": {
                "post": {
                    "operationId": "submitBatch", "summary": "Submit a batch job",
                    "tags": ["batch"],
                    "description": "Up to 100,000 numbers of one service, looked up in the "
                    "background; a signed callback when done. A JSON body, or text/plain or "
                    "text/csv (one number a line) with ?service= and ?callback_url=.",
                    "parameters": [
                        {"name": "service", "in": "query", "required": False,
                         "schema": {"type": "string",
                                    "enum": ["hlr", "mnp", "ranges", "port_history"]},
                         "description": "with a text/plain or text/csv body"},
                        {"name": "callback_url", "in": "query", "required": False,
                         "schema": {"type": "string", "format": "uri"},
                         "description": "with a text/plain or text/csv body"}],
                    "requestBody": {"required": True, "content": {
                        "application/json": {"schema": _ref("JobRequest")},
                        "text/plain": {"schema": {"type": "string"}},
                        "text/csv": {"schema": {"type": "string"}}}},
                    "responses": {
                        "202": {"description": "accepted",
                                "headers": {"Location": {"schema": {"type": "string"}}},
                                "content": {"application/json": {"schema": _ref("Job")}}},
                        **_errors(400, 401, 403, 413, 415, 429),
                    },
                },
                "get": {
                    "operationId": "listBatches", "summary": "The customer's latest jobs",
                    "tags": ["batch"],
                    "parameters": [{"name": "limit", "in": "query", "required": False,
                                    "schema": {"type": "integer", "minimum": 1,
                                               "maximum": 1000}}],
                    "responses": {
                        "200": {"description": "jobs, newest first", "content": {
                            "application/json": {"schema": _obj(
                                {"jobs": {"type": "array", "items": _ref("Job")}})}}},
                        **_errors(400, 401, 429),
                    },
                },
            },
            "/v1/lookups/{job_id}": {
                "get": {
                    "operationId": "getBatch", "summary": "A job's progress and results",
                    "tags": ["batch"],
                    "parameters": [
                        {"name": "job_id", "in": "path", "required": True,
                         "schema": {"type": "string", "minLength": 1}},
                        {"name": "format", "in": "query", "required": False,
                         "schema": {"type": "string", "enum": ["json", "csv"]}},
                        {"name": "page", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 1}},
                        {"name": "per_page", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 1, "maximum": 10000}}],
                    "responses": {
                        "200": {"description": "the job with one page of results (JSON), or "
                                "its results as CSV", "content": {
                                    "application/json": {"schema": _ref("Job")},
                                    "text/csv": {"schema": {"type": "string"}}}},
                        **_errors(400, 401, 404, 429),
                    },
                },
            },
            "/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document", "security": [],
                "tags": ["operations"],
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {
                    "application/json": {"schema": {"type": "object"}}}}}}},
            "/healthz": {"get": {
                "operationId": "healthz", "summary": "Liveness: the process answers",
                "security": [], "tags": ["operations"],
                "responses": {"200": {"description": "alive", "content": {
                    "application/json": {"schema": _ref("Health")}}}}}},
            "/readyz": {"get": {
                "operationId": "readyz", "security": [], "tags": ["operations"],
                "summary": "Readiness: some route has a MAP link set up (and the store is "
                           "open)",
                "responses": {
                    "200": {"description": "ready", "content": {
                        "application/json": {"schema": _ref("Ready")}}},
                    "503": {"description": "not ready", "content": {
                        "application/json": {"schema": _ref("Ready")}}}}}},
            "/metrics": {"get": {
                "operationId": "metrics", "tags": ["operations"],
                "summary": "Prometheus metrics (the admin token, unless [admin] "
                           "metrics_need_token = false)",
                "security": [{"adminBearer": []}, {}],
                "responses": {
                    "200": {"description": "Prometheus text format", "content": {
                        "text/plain": {"schema": {"type": "string"}}}},
                    **_errors(401)}}},
        },
        "components": {
            "schemas": copy.deepcopy(SCHEMAS),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "Authorization: Bearer hlrgw_<id>_<secret>"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "adminBearer": {"type": "http", "scheme": "bearer",
                                "description": "the admin API's token"},
            },
        },
    }
    problem = doc["components"]["schemas"]["Problem"]
    problem["properties"]["type"]["examples"] = [
        PROBLEM_BASE + t.value for t in ProblemType if t in PROBLEM_TYPES]
    return doc
