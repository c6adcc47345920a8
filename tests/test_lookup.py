"""The lookup service without a network: numbers, networks, the normaliser (status mapping,
roaming, ported), failures as problems, caching and max_age, negative caching,
single-flight, IMSI masking, the audit and the port history, MNP files, windows."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from gateway.cache import MemoryCache
from gateway.config import MethodKind, load_config
from gateway.engine import LookupOutcome, LookupStatus, Operation
from gateway.http.problems import ProblemError
from gateway.lookup import LookupService, describe, normalise, parse_window
from gateway.methods import LocalAnswer, MethodOutcome, MethodStatus
from gateway.networks import NetworkDirectory, NetworkInfo, carrier_range, country_of_gt
from gateway.numbers import InvalidNumber, mask_imsi, mask_number, parse_number
from gateway.sigtran.map_client import FailureKind, MapFailure, MapResult, MapUserError
from gateway.store import open_store
from protocols.map import ErrorCode, Opcode
from protocols.map.ati import (
    AnyTimeInterrogationRes,
    CellGlobalIdOrServiceAreaIdOrLai,
    LocationInformation,
    SubscriberInfo,
    SubscriberState,
)
from protocols.map.codes import NotReachableReason
from protocols.map.sm import LocationInfoWithLmsi, RoutingInfoForSmRes
from protocols.tbcd import Imsi, isdn

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "config" / "demo.toml"
SINGLE = ROOT / "config" / "single-operator.toml"
SRI_SM = Opcode.SEND_ROUTING_INFO_FOR_SM
ATI = Opcode.ANY_TIME_INTERROGATION


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("text", ["447555100001", "+447555100001", "00447555100001",
                                  "+44 7555 100001", "+44-7555-100001", "(+44) 7555 100001",
                                  " +44 (7555) 100 001 "])
def test_numbers_written_internationally(text: str) -> None:
    n = parse_number(text)
    assert (n.e164, n.country_code, n.region, n.type, n.valid) == \
        ("447555100001", 44, "GB", "mobile", True)


@pytest.mark.parametrize("text, reason", [
    ("abc", "not-a-number"), ("", "not-a-number"), ("+", "not-a-number"),
    ("+999123456", "invalid-country-code"), ("07555100001", "invalid-country-code"),
    ("+44123", "too-short"), ("+4475551000011", "too-long"), ("+" + "4" * 70, "too-long"),
    ("+1 650 253 0000 ext 5", "not-a-number"),
])
def test_invalid_numbers_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidNumber) as exc:
        parse_number(text)
    assert exc.value.reason == reason
    assert exc.value.detail


def test_refusals_are_memoised_and_raise_each_time() -> None:
    for _ in range(3):
        with pytest.raises(InvalidNumber, match="too short"):
            parse_number("+44 123")
    assert parse_number("+447555100001") is parse_number("+447555100001")


def test_the_e164_fast_path_agrees_with_phonenumbers() -> None:
    # plain digits skip phonenumbers' parser; whatever they conclude must be what it does
    import random

    import phonenumbers

    from gateway import numbers

    rng = random.Random(7)
    codes = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
    texts = ["447555100001", "+447700900123", "+4475551000011", "+4407555100001",
             "+12025550123", "+390612345678", "+79161234567", "+8613912345678", "+2123"]
    for _ in range(3000):
        digits = str(rng.choice(codes)) + "".join(rng.choice("0123456789")
                                                  for _ in range(rng.randint(1, 13)))
        texts.append(rng.choice(("", "+")) + digits)
    fast = 0
    for text in texts:
        got = numbers._parse_e164(text)
        if got is None:
            continue
        fast += 1
        real = phonenumbers.parse("+" + text.lstrip("+"), None)
        if isinstance(got, numbers.InvalidNumber):
            assert phonenumbers.is_possible_number_with_reason(real) != \
                phonenumbers.ValidationResult.IS_POSSIBLE, text
            continue
        assert got.e164 == phonenumbers.format_number(
            real, phonenumbers.PhoneNumberFormat.E164)[1:], text
        assert got.national == phonenumbers.national_significant_number(real), text
        assert got.valid == phonenumbers.is_valid_number(real), text
        if got.valid:
            assert got.region == phonenumbers.region_code_for_number(real), text
            assert got.type == numbers.number_type_name(phonenumbers.number_type(real)), text
    assert fast > 1000


def test_possible_but_unallocated_and_non_geographic() -> None:
    drama = parse_number("+447700900123")
    assert (drama.valid, drama.region, drama.type) == (False, "GB", "unknown")
    freephone = parse_number("+800 1234 5678")
    assert (freephone.valid, freephone.region, freephone.type) == (True, None, "toll_free")


def test_masks() -> None:
    assert mask_number("447555100001") == "44********01"
    assert mask_number("+447555100001") == "+44********01"
    assert mask_number("123") == "***"
    assert mask_imsi("234150555100001") == "23415**********"
    assert mask_imsi("310260123456789", 3) == "310260*********"


# --------------------------------------------------------------------------- networks


def test_networks_by_code_imsi_carrier_and_gt() -> None:
    d = NetworkDirectory()
    assert d.from_imsi("234301285866666") == NetworkInfo("EE", "GB", "234", "30")
    assert d.from_imsi("234331285866666").same_network(d.from_mccmnc("23430"))  # one EE
    assert d.from_imsi("310260123456789").mnc == "260"  # a 3-digit MNC country
    unknown = d.from_imsi("999990000000001")
    assert (unknown.name, unknown.mcc, unknown.mnc) == (None, "999", "99")
    assert d.by_carrier("DE", "T-Mobile").name == "Telekom Deutschland"
    assert d.by_carrier("FR", "Nobody Mobile") == NetworkInfo("Nobody Mobile", "FR")
    assert carrier_range("447555100001") == ("447555", "Vodafone")
    assert country_of_gt("447785010101") == "GB"
    assert country_of_gt("491710760101") == "DE"
    assert country_of_gt("12025550123") == "US"
    assert country_of_gt("") is None


def test_range_tables_win_over_phonenumbers() -> None:
    d = NetworkDirectory()
    assert d.range_holder("447555100001", "GB").source == "phonenumbers"
    d.learn([("t", [("4475551", "acme", "23499"), ("447534", "uk-ee", "23430")])])
    hit = d.range_holder("447555100001", "GB")
    assert (hit.prefix, hit.holder.name, hit.holder.mccmnc, hit.source) == \
        ("4475551", "acme", "23499", "range_table:t")
    assert d.range_holder("447534200001", "GB").holder.name == "EE"  # a known MCC/MNC
    assert d.in_range_tables("447555100001") and not d.in_range_tables("447511300001")
    d.learn([])  # a reload without tables
    assert d.range_holder("447555100001", "GB").source == "phonenumbers"


# --------------------------------------------------------------------------- normaliser


def sri_sm(imsi: str, msc: str, version: int = 3) -> MapResult:
    return MapResult(SRI_SM, RoutingInfoForSmRes(
        Imsi(imsi), LocationInfoWithLmsi(network_node_number=isdn(msc))), version, "r#0")


def ati(state: SubscriberState, reason=None, vlr="491710760101", cgi=("262", "01", 0x4001, 7),
        age=5) -> MapResult:
    li = LocationInformation(age_of_location_information=age, vlr_number=isdn(vlr),
                             cell_global_id_or_service_area_id_or_lai=(
                                 CellGlobalIdOrServiceAreaIdOrLai(*cgi) if cgi else None))
    return MapResult(ATI, AnyTimeInterrogationRes(SubscriberInfo(
        location_information=li, subscriber_state=state, not_reachable_reason=reason)), 3,
        "r#2")


def error(code: ErrorCode, name: str, diagnostic: str | None = None, op=SRI_SM) -> MapUserError:
    return MapUserError(op, int(code), name, None, diagnostic, 3, "r#0")


def failure(kind: FailureKind, op=SRI_SM) -> MapFailure:
    return MapFailure(op, kind, f"{kind.value} happened", 3, "r#0", 4 if kind is
                      FailureKind.PROVIDER_ABORT else None)


def outcome(number: str, m=None, *, status=LookupStatus.ANSWERED, local=None,
            kind=MethodKind.MAP_SRI_SM, route="uk", detail="") -> LookupOutcome:
    if m is None and local is None:
        attempts: tuple = ()
    else:
        ok = isinstance(m, MapResult | MapUserError) or local is not None
        attempts = (MethodOutcome(0, kind, "label", MethodStatus.ANSWERED if ok else
                                  MethodStatus.FAILED, not ok, detail or "x", 0.002, m,
                                  local),)
    return LookupOutcome(number, status, route, None, None, attempts, 0.002, detail)


def norm(number: str, m=None, **kw) -> dict:
    return normalise(outcome(number, m, **kw), parse_number(number), NetworkDirectory(),
                     now=1.7e9)


def test_connected_at_home() -> None:
    doc = norm("447555100001", sri_sm("234150555100001", "447785010101"))
    assert doc["status"] == "connected"
    assert doc["imsi"] == "234150555100001"
    assert doc["home_network"]["name"] == "Vodafone UK"
    assert doc["serving"]["msc"] == "447785010101" and doc["serving"]["country"] == "GB"
    assert (doc["roaming"], doc["ported"]) == (False, False)
    assert doc["original_network"]["prefix"] == "447555"
    assert doc["map"] == {"operation": "sri_sm", "error": None, "subscriber_state": None,
                          "not_reachable_reason": None}
    assert doc["lookup"]["map_version"] == 3 and doc["lookup"]["method"] == "map_sri_sm"
    assert doc["lookup"]["time"] == "2023-11-14T22:13:20.000Z"


def test_roaming_and_ported() -> None:
    roaming = norm("447555100008", sri_sm("234150555100008", "491710760101"))
    assert (roaming["roaming"], roaming["ported"], roaming["serving"]["country"]) == \
        (True, False, "DE")
    ported = norm("447555100007", sri_sm("234301640692592", "447958010202"))
    assert (ported["ported"], ported["home_network"]["name"],
            ported["original_network"]["name"]) == (True, "EE", "Vodafone UK")
    both = norm("4915110000002", sri_sm("262015110000002", "447785010102"))
    assert (both["roaming"], both["ported"]) == (True, False)


@pytest.mark.parametrize("err, status", [
    (error(ErrorCode.ABSENT_SUBSCRIBER_SM, "absent_subscriber_sm", "imsi_detached"), "absent"),
    (error(ErrorCode.ABSENT_SUBSCRIBER, "absent_subscriber"), "absent"),
    (error(ErrorCode.UNKNOWN_SUBSCRIBER, "unknown_subscriber", "imsi_unknown"), "not_found"),
    (error(ErrorCode.CALL_BARRED, "call_barred", "operator_barring"), "barred"),
    (error(ErrorCode.TELESERVICE_NOT_PROVISIONED, "teleservice_not_provisioned"), "unknown"),
    (error(ErrorCode.SYSTEM_FAILURE, "system_failure", "hlr"), "unknown"),
    (error(ErrorCode.ATI_NOT_ALLOWED, "ati_not_allowed", op=ATI), "unknown"),
])
def test_map_errors_map_to_statuses_with_the_detail(err: MapUserError, status: str) -> None:
    doc = norm("447555100002", err)
    assert doc["status"] == status
    assert doc["map"]["error"] == {"name": err.name, "code": err.code,
                                   "diagnostic": err.diagnostic}
    assert doc["imsi"] is None and doc["home_network"] is None and doc["ported"] is None
    assert doc["original_network"]["name"] == "Vodafone UK"


def test_ati_states() -> None:
    idle = norm("4915110000001", ati(SubscriberState.ASSUMED_IDLE), kind=MethodKind.MAP_ATI)
    assert idle["status"] == "connected"
    assert idle["serving"]["network"]["name"] == "Telekom Deutschland"
    assert idle["serving"]["location"] == {"mcc": "262", "mnc": "01", "lac": 0x4001,
                                           "cell_id": 7, "age_minutes": 5}
    assert idle["roaming"] is False and idle["imsi"] is None and idle["ported"] is None
    away = norm("4915110000001", ati(SubscriberState.NET_DET_NOT_REACHABLE,
                                     NotReachableReason.IMSI_DETACHED), kind=MethodKind.MAP_ATI)
    assert away["status"] == "absent"
    assert (away["map"]["subscriber_state"], away["map"]["not_reachable_reason"]) == \
        ("net_det_not_reachable", "imsi_detached")
    abroad = norm("4915110000002", ati(SubscriberState.ASSUMED_IDLE, vlr="447785010102",
                                       cgi=("234", "15", 0x1001, 9)), kind=MethodKind.MAP_ATI)
    assert abroad["roaming"] is True and abroad["serving"]["country"] == "GB"


def test_local_answers_are_unknown_with_their_source() -> None:
    local = LocalAnswer("447555100007", "example-mobile", "23499", True, "1234",
                        "mnp:uk-porting", "uk-vodafone")
    doc = norm("447555100007", None, local=local, kind=MethodKind.LOCAL)
    assert (doc["status"], doc["source"], doc["ported"], doc["routing_number"]) == \
        ("unknown", "mnp:uk-porting", True, "1234")
    assert doc["home_network"]["name"] == "example-mobile"
    assert doc["map"] is None and doc["lookup"]["method"] == "local"


@pytest.mark.parametrize("m, status, ptype, code", [
    (failure(FailureKind.TIMEOUT), LookupStatus.FAILED, "upstream-timeout", 504),
    (failure(FailureKind.ABORT), LookupStatus.FAILED, "upstream-failure", 502),
    (failure(FailureKind.PROVIDER_ABORT), LookupStatus.FAILED, "upstream-failure", 502),
    (failure(FailureKind.LINK_DOWN), LookupStatus.FAILED, "upstream-failure", 502),
    (failure(FailureKind.PROTOCOL), LookupStatus.FAILED, "upstream-failure", 502),
    (None, LookupStatus.NO_ROUTE, "no-route", 422),
    (None, LookupStatus.REJECTED, "no-route", 422),
    (None, LookupStatus.THROTTLED, "unavailable", 503),
])
def test_no_answer_is_a_problem(m, status, ptype, code) -> None:
    with pytest.raises(ProblemError) as exc:
        norm("447555800001", m, status=status, detail="because")
    p = exc.value
    assert (p.status, str(p.type)) == (code, ptype)
    assert p.ext["number"] == "447555800001" and p.ext["route"] == "uk"
    if m is not None:
        assert p.ext["map"]["failure"] == m.kind.value
    if code == 503:
        assert p.headers == {"Retry-After": "1"}


def test_a_route_deadline_is_an_upstream_timeout() -> None:
    number = "447555800001"
    attempts = (
        MethodOutcome(0, MethodKind.MAP_SRI_SM, "a", MethodStatus.FAILED, True, "timeout",
                      5.0, failure(FailureKind.TIMEOUT)),
        MethodOutcome(1, MethodKind.MAP_SRI_SM, "b", MethodStatus.FAILED, True, "timeout",
                      5.0, failure(FailureKind.TIMEOUT)),
        MethodOutcome(2, MethodKind.MAP_ATI, "c", MethodStatus.FAILED, True,
                      "route timeout 10 s reached", timed_out=True))
    out = LookupOutcome(number, LookupStatus.FAILED, "uk", None, None, attempts, 10.0)
    with pytest.raises(ProblemError) as exc:
        normalise(out, parse_number(number), NetworkDirectory(), now=1.0)
    assert (exc.value.status, str(exc.value.type)) == (504, "upstream-timeout")
    assert exc.value.ext["map"]["failure"] == "timeout"
    assert "3 attempt(s)" in exc.value.detail


def test_every_method_skipped_is_unavailable_for_the_breakers_time() -> None:
    number = "447555100001"
    attempts = (MethodOutcome(0, MethodKind.MAP_SRI_SM, "a", MethodStatus.SKIPPED, True,
                              "circuit breaker open for 12.3 s more"),)
    out = LookupOutcome(number, LookupStatus.FAILED, "uk", None, None, attempts, 0.0)
    with pytest.raises(ProblemError) as exc:
        normalise(out, parse_number(number), NetworkDirectory(), now=1.0)
    assert (exc.value.status, str(exc.value.type)) == (503, "unavailable")
    assert exc.value.headers == {"Retry-After": "13"} and exc.value.ext["retry_after"] == 13


# --------------------------------------------------------------------------- windows


def test_windows() -> None:
    now = dt.datetime(2025, 3, 31, 12, 0, tzinfo=dt.UTC).timestamp()

    def start(w: str) -> dt.datetime:
        return dt.datetime.fromtimestamp(parse_window(w, now), dt.UTC)

    assert start("P2Y") == dt.datetime(2023, 3, 31, 12, 0, tzinfo=dt.UTC)
    assert start("P1M") == dt.datetime(2025, 2, 28, 12, 0, tzinfo=dt.UTC)  # clamped
    assert start("p1y6m") == dt.datetime(2023, 9, 30, 12, 0, tzinfo=dt.UTC)
    assert start("P2W") == dt.datetime(2025, 3, 17, 12, 0, tzinfo=dt.UTC)
    assert start("PT12H30M") == dt.datetime(2025, 3, 31, 0, 0, tzinfo=dt.UTC) \
        + dt.timedelta(minutes=-30)
    for bad in ("2Y", "P", "PT", "P1H", "P-1Y", "P1.5Y", "P101Y", "", "P2YT"):
        with pytest.raises(ValueError):
            parse_window(bad, now)


# --------------------------------------------------------------------------- the service


class FakeEngine:
    """Answers from a script: number -> MapOutcome (or a LookupOutcome), counting calls."""

    def __init__(self, config_path: Path = DEMO, delay: float = 0.0) -> None:
        self.config = load_config(config_path)
        self.script: dict[str, object] = {}
        self.calls: list[tuple[str, Operation | None]] = []
        self.delay = delay

    async def lookup(self, number: str, operation=None) -> LookupOutcome:
        self.calls.append((number, operation))
        if self.delay:
            await asyncio.sleep(self.delay)
        m = self.script[number]
        if isinstance(m, LookupOutcome):
            return m
        ok = isinstance(m, MapResult | MapUserError)
        return outcome(number, m, status=LookupStatus.ANSWERED if ok else LookupStatus.FAILED,
                       route="uk-vodafone")


@dataclasses.dataclass(frozen=True)
class Cust:
    id: int = 1
    name: str = "acme"
    see_imsi: bool = False
    cache_age: float | None = None


@pytest.fixture
async def store():
    s = await open_store("sqlite::memory:")
    c = await s.create_customer(name="acme", services=["hlr"], rate=10, burst=10,
                                inflight=5, callback_secret="x")
    assert c.id == 1
    yield s
    await s.close()


class Clock:
    def __init__(self) -> None:
        self.t = 1_750_000_000.0

    def __call__(self) -> float:
        return self.t


def service(engine, store=None, ttl=300.0, clock=None) -> LookupService:
    clock = clock or Clock()
    return LookupService(engine, store, MemoryCache(clock=clock), ttl=ttl, clock=clock)


async def test_imsi_masked_unless_the_customer_may_see_it() -> None:
    eng = FakeEngine()
    eng.script["447555100001"] = sri_sm("234150555100001", "447785010101")
    svc = service(eng)
    masked = await svc.hlr("447555100001", Cust())
    assert (masked["imsi"], masked["imsi_masked"]) == ("23415**********", True)
    clear = await svc.hlr("447555100001", Cust(see_imsi=True))
    assert (clear["imsi"], clear["imsi_masked"]) == ("234150555100001", False)
    assert list(masked)[:6] == ["number", "status", "source", "map", "imsi", "imsi_masked"]


async def test_cache_max_age_and_customer_default_age() -> None:
    eng = FakeEngine()
    eng.script["447555100001"] = sri_sm("234150555100001", "447785010101")
    clock = Clock()
    svc = service(eng, clock=clock)
    first = await svc.hlr("447555100001", Cust())
    assert first["lookup"]["cached"] is False and len(eng.calls) == 1
    clock.t += 42
    second = await svc.hlr("+44 7555 100001", Cust())
    assert second["lookup"]["cached"] is True and second["lookup"]["cache_age"] == 42
    assert second["lookup"]["id"] != first["lookup"]["id"]
    assert second["lookup"]["time"] == first["lookup"]["time"]  # when the network answered
    assert len(eng.calls) == 1
    await svc.hlr("447555100001", Cust(), max_age=41)  # too old for this request
    assert len(eng.calls) == 2
    live = await svc.hlr("447555100001", Cust(), max_age=0)  # forced live
    assert live["lookup"]["cached"] is False and len(eng.calls) == 3
    await svc.hlr("447555100001", Cust(cache_age=0))  # a customer who wants live answers
    assert len(eng.calls) == 4
    clock.t += 10
    await svc.hlr("447555100001", Cust(cache_age=5))
    assert len(eng.calls) == 5
    await svc.hlr("447555100001", Cust(cache_age=60))
    assert len(eng.calls) == 5
    await svc.hlr("447555100001", Cust(), operation="ati")  # another operation, another key
    assert eng.calls[-1] == ("447555100001", Operation.ATI)


async def test_ttl_zero_turns_caching_off() -> None:
    eng = FakeEngine()
    eng.script["447555100001"] = sri_sm("234150555100001", "447785010101")
    svc = service(eng, ttl=0)
    for _ in range(3):
        assert (await svc.hlr("447555100001", Cust()))["lookup"]["cached"] is False
    assert len(eng.calls) == 3


async def test_negative_answers_are_cached_failures_are_not() -> None:
    eng = FakeEngine()
    eng.script["447555100003"] = error(ErrorCode.UNKNOWN_SUBSCRIBER, "unknown_subscriber")
    eng.script["447555800001"] = failure(FailureKind.TIMEOUT)
    svc = service(eng)
    for _ in range(2):
        assert (await svc.hlr("447555100003", Cust()))["status"] == "not_found"
    assert len(eng.calls) == 1
    for _ in range(2):
        with pytest.raises(ProblemError) as exc:
            await svc.hlr("447555800001", Cust())
        assert exc.value.status == 504
    assert len(eng.calls) == 3


async def test_invalid_numbers_never_reach_the_network() -> None:
    eng = FakeEngine()
    svc = service(eng)
    with pytest.raises(ProblemError) as exc:
        await svc.hlr("+44123", Cust())
    assert (exc.value.status, exc.value.ext["reason"], exc.value.ext["number"]) == \
        (400, "too-short", "+44123")
    with pytest.raises(ProblemError) as exc:
        await svc.hlr("+447700900123", Cust())  # possible, but in no allocated range
    assert exc.value.ext["reason"] == "not-in-numbering-plan"
    with pytest.raises(ProblemError) as exc:
        await svc.hlr("+44 7555 123", Cust())  # a known range, a length it does not have
    assert exc.value.ext["reason"] == "not-in-numbering-plan"
    assert exc.value.ext["number"] == "+44 7555 123"  # as given
    assert eng.calls == []


async def test_concurrent_lookups_of_one_number_share_one_query() -> None:
    eng = FakeEngine(delay=0.05)
    eng.script["447555100001"] = sri_sm("234150555100001", "447785010101")
    svc = service(eng)
    docs = await asyncio.gather(*(svc.hlr("447555100001", Cust(), max_age=0)
                                  for _ in range(20)))
    assert len(eng.calls) == 1
    assert {d["status"] for d in docs} == {"connected"}
    assert len({d["lookup"]["id"] for d in docs}) == 20
    assert svc.flights.joined == 19


async def test_audit_and_port_history(store) -> None:
    eng = FakeEngine()
    clock = Clock()
    svc = service(eng, store, clock=clock)
    number = "447555100001"
    eng.script[number] = sri_sm("234150555100001", "447785010101")
    await svc.hlr(number, Cust())
    await svc.hlr(number, Cust())  # cached: audited, not observed again
    clock.t += 86400 * 400
    eng.script[number] = sri_sm("234301640692592", "447958010202")  # now with EE
    doc = await svc.hlr(number, Cust(), max_age=0)
    assert doc["ported"] is True
    clock.t += 86400 * 30
    eng.script[number] = sri_sm("234102511300001", "447802010101")  # then O2
    await svc.mnp(number, Cust(), max_age=0)
    with pytest.raises(ProblemError):
        await svc.hlr("+44123", Cust())
    await store.flush()
    rows = await store.lookups(customer_id=1)
    assert [(r.service, r.number, r.outcome) for r in rows] == [
        ("hlr", number, "connected"), ("hlr", number, "connected"),
        ("hlr", number, "connected"), ("mnp", number, "ported"),
        ("hlr", "+44123", "invalid-number")]
    assert rows[0].route == "uk-vodafone"
    history = await svc.port_history(number, Cust(), window="P10Y")
    assert history["ports"] == 2
    assert [(e["from"]["name"], e["to"]["name"]) for e in history["events"]] == \
        [("Vodafone UK", "EE"), ("EE", "O2 UK")]
    assert [e["at"] for e in history["events"]] == ["2026-07-20T15:06:40.000Z",
                                                    "2026-08-19T15:06:40.000Z"]
    assert (await svc.port_history(number, Cust(), window="P29D"))["ports"] == 1
    assert (await svc.port_history(number, Cust(), window="P31D"))["ports"] == 2
    assert history["current_network"]["name"] == "O2 UK"
    assert history["original_network"]["name"] == "Vodafone UK"
    assert len(history["observations"]) == 3


async def test_the_same_network_again_is_observed_at_most_hourly(store) -> None:
    eng = FakeEngine()
    clock = Clock()
    svc = service(eng, store, clock=clock)
    number = "447534200001"
    eng.script[number] = sri_sm("234301285866666", "447958010202")
    t0 = clock.t
    await svc.hlr(number, Cust(), max_age=0)
    clock.t += 60
    await svc.hlr(number, Cust(), max_age=0)  # audited; the observation is not touched
    await store.flush()
    (obs,) = await store.port_history(number)
    assert (obs.first_seen, obs.last_seen) == (t0, t0)
    clock.t += 3600
    await svc.hlr(number, Cust(), max_age=0)
    await store.flush()
    (obs,) = await store.port_history(number)
    assert (obs.first_seen, obs.last_seen) == (t0, t0 + 3660)
    eng.script[number] = sri_sm("234102511300001", "447802010101")  # ported: at once
    clock.t += 1
    await svc.hlr(number, Cust(), max_age=0)
    await store.flush()
    assert [o.network for o in await store.port_history(number)] == ["23430", "23410"]
    assert len(await store.lookups(customer_id=1)) == 4


async def test_port_history_counts_only_the_window(store) -> None:
    eng = FakeEngine()
    clock = Clock()
    svc = service(eng, store, clock=clock)
    number = "447534200001"
    t0 = clock.t
    await store.observe_network(number, "23430", at=t0 - 3 * 365 * 86400)
    await store.observe_network(number, "23415", at=t0 - 2.5 * 365 * 86400)  # port 1
    await store.observe_network(number, "23410", at=t0 - 100 * 86400)  # port 2
    await store.observe_network(number, "23410", at=t0 - 10 * 86400)  # same network
    two = await svc.port_history(number, Cust(), window="P2Y")
    assert two["ports"] == 1 and two["events"][0]["to"]["name"] == "O2 UK"
    five = await svc.port_history(number, Cust(), window="P5Y")
    assert five["ports"] == 2
    assert five["observations"][-1]["last_seen"] == \
        dt.datetime.fromtimestamp(t0 - 10 * 86400, dt.UTC).isoformat(
            timespec="milliseconds").replace("+00:00", "Z")
    never = await svc.port_history("447534200009", Cust())
    assert (never["ports"], never["current_network"], never["observed_since"]) == \
        (0, None, None)
    with pytest.raises(ProblemError) as exc:
        await svc.port_history(number, Cust(), window="two years")
    assert exc.value.status == 400 and exc.value.ext["field"] == "window"


async def test_mnp_from_a_configured_file_first() -> None:
    eng = FakeEngine(SINGLE)
    svc = service(eng)
    doc = await svc.mnp("447555100007", Cust())
    assert eng.calls == []
    assert (doc["source"], doc["ported"], doc["current_network"]["name"],
            doc["original_network"]["name"]) == \
        ("mnp:uk-porting", True, "example-mobile", "Vodafone UK")
    eng.script["447534200001"] = sri_sm("234301285866666", "447958010202")
    hlr_derived = await svc.mnp("447534200001", Cust())
    assert (hlr_derived["source"], hlr_derived["ported"], hlr_derived["hlr_status"]) == \
        ("hlr", False, "connected")


async def test_ranges_without_a_network_query() -> None:
    eng = FakeEngine()
    svc = service(eng)
    doc = await svc.ranges("+49 151 10000001", Cust())
    assert doc["range"] == {"prefix": "49151", "start": "491510000000",
                            "end": "4915199999999", "source": "range_table:demo-ranges"}
    assert doc["range_holder"]["name"] == "Telekom Deutschland"
    assert (doc["country"], doc["number_type"], doc["valid"]) == \
        ({"code": "DE", "name": "Germany", "calling_code": 49}, "mobile", True)
    us = await svc.ranges("+1 202 555 0123", Cust())
    assert us["range"] is None and us["number_type"] == "fixed_line_or_mobile"
    assert eng.calls == []


async def test_metrics_count_every_outcome() -> None:
    eng = FakeEngine()
    eng.script["447555100001"] = sri_sm("234150555100001", "447785010101")
    svc = service(eng)
    await svc.hlr("447555100001", Cust())
    await svc.hlr("447555100001", Cust())
    with pytest.raises(ProblemError):
        await svc.hlr("nope", Cust())
    reg = svc.metrics.registry
    assert reg.get_sample_value("hlrgw_api_lookups_total", {
        "service": "hlr", "status": "connected", "route": "uk-vodafone"}) == 2
    assert reg.get_sample_value("hlrgw_api_lookups_total", {
        "service": "hlr", "status": "invalid-number", "route": ""}) == 1
    assert reg.get_sample_value("hlrgw_api_cache_total", {"result": "hit"}) == 1
    assert reg.get_sample_value("hlrgw_api_lookups_in_flight", {"service": "hlr"}) == 0
    assert reg.get_sample_value("hlrgw_api_lookup_duration_seconds_count",
                                {"service": "hlr", "cached": "true"}) == 1


def test_describe_for_batch_items() -> None:
    live = {"status": "absent", "home_network": None, "lookup": {"route": "uk", "cached": False,
                                                                  "method": "map_sri_sm"}}
    assert describe("hlr", live) == ("absent", "uk", None)
    seen = {"status": "connected", "home_network": {"mcc": "234", "mnc": "30"},
            "lookup": {"route": "uk", "cached": False, "method": "map_sri_sm"}}
    assert describe("hlr", seen) == ("connected", "uk", "23430")
    cached = {**seen, "lookup": {**seen["lookup"], "cached": True}}
    assert describe("hlr", cached) == ("connected", "uk", None)
    assert describe("mnp", {"ported": True, "current_network": {"mcc": "234", "mnc": "30"},
                            "lookup": {"method": "mnp_table"}}) == ("ported", None, None)
    assert describe("ranges", {"range": None, "lookup": {}}) == ("no_range", None, None)
