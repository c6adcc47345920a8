"""The simulator's network file, subscriber model and fault table, without any network I/O:
validation errors name the key; resolution (ranges, overrides, ported, roaming, derived
values) is pure and deterministic; fault decisions follow scope, probability and seed.
"""

from __future__ import annotations

import copy
import random
import statistics
import tomllib

import pytest

from protocols.map import AbsentSubscriberDiagnosticSM, CallBarringCause, NotReachableReason
from simulators.config import ConfigError, load_config, parse_config, parse_fault
from simulators.faults import FaultKind, FaultSpec, FaultTable
from simulators.model import (
    AtiState,
    ForwardWhen,
    Operation,
    Profile,
    Status,
    imsi_for,
    resolve,
)
from simulators.pytest_plugin import EXAMPLE_NETWORK

MINI = """
[simulator]
seed = 3

[[networks]]
name = "home"
operator = "Home"
country = "GB"
country_code = "44"
mcc = "234"
mnc = "15"
hlr_gt = "447785016005"
point_code = 10
routing_context = 1
mscs = ["447785010101", "447785010102", "447785010103"]
msrn_prefix = "44778509"
lac = 100

  [networks.defaults]
  barring_cause = "operator_barring"

  [[networks.ranges]]
  prefix = "447555"
  length = 12

  [[networks.ranges]]
  prefix = "4475551"
  length = 12
  status = "absent"
  absent_diagnostic = "ms_purged_for_non_gprs"
  msin_prefix = "9"

[[networks]]
name = "other"
operator = "Other"
country = "DE"
country_code = "49"
mcc = "262"
mnc = "02"
hlr_gt = "491722270000"
point_code = 11
routing_context = 2
mscs = ["491722270101"]
msrn_prefix = "49172227"
msrn_digits = 3
msin = { rule = "permuted", prefix = "5", key = 7 }

  [[networks.ranges]]
  prefix = "49152"
  length = 13

[[subscribers]]
number = "447555100001"
ported_to = "other"

[[subscribers]]
number = "447555000002"
roaming_in = "other"
"""


def mini(**patch) -> dict:
    data = tomllib.loads(MINI)
    for path, value in patch.items():
        node = data
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[int(k)] if k.isdigit() else node[k]
        last = keys[-1]
        if value is _DELETE:
            del node[int(last) if last.isdigit() else last]
        else:
            node[int(last) if last.isdigit() else last] = value
    return data


_DELETE = object()
MODEL = parse_config(mini()).model


# --------------------------------------------------------------------------- the file


def test_the_example_network_loads() -> None:
    cfg = load_config(EXAMPLE_NETWORK)
    assert list(cfg.model.networks) == ["uk-vodafone", "uk-ee", "uk-o2", "de-telekom",
                                        "de-vodafone"]
    assert cfg.hub is not None and cfg.seed == 42
    assert {n.country for n in cfg.model.networks.values()} == {"GB", "DE"}
    assert len(cfg.faults) == 7 and all(f.source == "file" for f in cfg.faults)


@pytest.mark.parametrize(("patch", "message"), [
    ({"networks__0__mnc": "150"}, "networks[0].mnc: MCC 234 uses 2-digit MNCs, got '150'"),
    ({"networks__0__mcc": "23"}, "networks[0].mcc: must be 3 decimal digits, got '23'"),
    ({"networks__0__hlr_gt": "497785016005"},
     "networks[0].hlr_gt: must start with the network's country code 44"),
    ({"networks__0__mscs": []}, "networks[0].mscs: needs at least one"),
    ({"networks__0__mscs": ["44x"]}, "networks[0].mscs[0]: must be 5 to 15 decimal digits"),
    ({"networks__1__point_code": 10}, "networks[1].point_code: 10 is home's point code too"),
    ({"networks__1__name": "home"}, "networks[1].name: 'home' is used twice"),
    ({"networks__0__name": "Home!"}, "networks[0].name: must be lower-case letters"),
    ({"networks__0__point_code": 20000}, "networks[0].point_code: must be in 0..16383"),
    ({"networks__0__ranges__0__prefix": "4912"},
     "networks[0].ranges[0].prefix: must start with the network's country code 44"),
    ({"networks__0__ranges__1__status": "asleep"},
     "networks[0].ranges[1].status: must be one of connected, absent, unknown"),
    ({"networks__0__ranges__1__stauts": "absent"}, "networks[0].ranges[1].stauts: unknown key"),
    ({"networks__0__ranges__0__length": 3},
     "networks[0].ranges[0].length: must be in 6..15, got 3"),
    ({"networks__0__max_versions": {"ati": 2}}, "networks[0].max_versions.ati: must be in 3..3"),
    ({"networks__0__max_versions": {"sri_sm": 0}},
     "networks[0].max_versions.sri_sm: must be in 1..3"),
    ({"networks__0__msin": {"rule": "random"}},
     "networks[0].msin.rule: must be one of suffix, permuted"),
    ({"networks__0__defaults": {"ported_to": "other"}},
     "networks[0].defaults.ported_to: a whole network cannot be ported"),
    ({"subscribers__0__ported_to": "home"},
     "subscribers[0].ported_to: 447555100001 is in a range of home already"),
    ({"subscribers__0__ported_to": "nowhere"},
     "subscribers[0].ported_to: no network named 'nowhere'"),
    ({"subscribers__1__roaming_in": "home"},
     "subscribers[1].roaming_in: home is the number's own network"),
    ({"subscribers__0__number": "33612345678"},
     "subscribers[0]: no network holds a range for 33612345678"),
    ({"subscribers__0__cell_id": 70000}, "subscribers[0].cell_id: must be in 0..65535"),
    ({"simulator__seed": "x"}, "simulator.seed: must be an integer"),
    ({"hub": {"gt": "441632960001", "point_code": 11, "routing_context": 9}},
     "hub.point_code: 11 is other's point code"),
    ({"networks": []}, "networks: needs at least one"),
    ({"network": []}, "network: unknown key"),
    ({"faults": [{"kind": "latency", "ms": 5, "min_ms": 1}]},
     "faults[0].min_ms: not used by a fixed latency"),
    ({"faults": [{"kind": "latency", "distribution": "uniform", "min_ms": 9, "max_ms": 1}]},
     "faults[0].max_ms: must be at least min_ms (9)"),
    ({"faults": [{"kind": "refuse_aspac", "number": "447555000001"}]},
     "faults[0].kind: refuse_aspac acts on associations"),
    ({"faults": [{"kind": "no_answer", "network": "hub"}]},
     "faults[0].network: no endpoint named 'hub'"),
    ({"faults": [{"kind": "no_answer", "probability": 2}]},
     "faults[0].probability: must be in 0.0..1.0"),
    ({"faults": [{"kind": "explode"}]}, "faults[0].kind: must be one of latency, no_answer"),
    ({"faults": [{"kind": "no_answer", "operations": ["sri_sm", "ussd"]}]},
     "faults[0].operations[1]: must be one of sri_sm, ati, sri"),
])
def test_invalid_files_name_the_key(patch: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(mini(**patch))
    assert message in str(err.value)


def test_load_config_reports_the_file(tmp_path) -> None:
    bad = tmp_path / "net.toml"
    bad.write_text("[[networks]\n")
    with pytest.raises(ConfigError, match=r"net\.toml: not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match=r"missing\.toml: cannot read"):
        load_config(tmp_path / "missing.toml")
    bad.write_text(MINI.replace('mnc = "02"', 'mnc = 2'))
    with pytest.raises(ConfigError, match=r"net\.toml: networks\[1\]\.mnc: must be a string"):
        load_config(bad)


# --------------------------------------------------------------------------- resolution


def test_ranges_longest_prefix_and_length() -> None:
    a = resolve(MODEL, "447555000001")
    b = resolve(MODEL, "447555100009")
    assert a.status is Status.CONNECTED and a.range_holder == "home"
    assert b.status is Status.ABSENT  # the longer prefix wins
    assert b.absent_diagnostic is AbsentSubscriberDiagnosticSM.MS_PURGED_FOR_NON_GPRS
    assert resolve(MODEL, "4475550000011") is None  # 13 digits: not in a 12-digit range
    assert resolve(MODEL, "447556000001") is None
    assert resolve(MODEL, "+447555000001") == a


def test_network_defaults_then_range_then_override() -> None:
    a = resolve(MODEL, "447555000001")
    assert a.barring_cause is CallBarringCause.OPERATOR_BARRING  # network default
    over = {"447555100009": Profile(status=Status.BARRED)}
    b = resolve(MODEL, "447555100009", over)
    assert b.status is Status.BARRED  # the override wins over the range
    assert b.absent_diagnostic is AbsentSubscriberDiagnosticSM.MS_PURGED_FOR_NON_GPRS
    # a run-time override replaces the file's: 447555100001 is ported in the file
    assert resolve(MODEL, "447555100001").network == "other"
    assert resolve(MODEL, "447555100001", {"447555100001": Profile()}).network == "home"
    assert resolve(MODEL, "447555100001",
                   {"447555100001": Profile(ported_to="")}).network == "home"


def test_imsi_rules() -> None:
    home, other = MODEL.networks["home"], MODEL.networks["other"]
    assert imsi_for(home, "447555000001") == "234157555000001"  # MCC MNC + last 10 digits
    assert imsi_for(home, "447555100009", "9") == "234159555100009"
    assert resolve(MODEL, "447555100009").imsi == "234159555100009"  # the range's prefix
    width = 15 - 5 - 1
    x = int("5220000001"[-width:])
    assert imsi_for(other, "4915220000001") == f"262025{(x * 7654321 + 7) % 10**width:09d}"
    # permuted: a bijection on the digits, so no two numbers share an IMSI
    imsis = {imsi_for(other, f"49152{n:08d}") for n in range(0, 10**8, 9973)}
    assert len(imsis) == len(range(0, 10**8, 9973))
    assert all(len(i) == 15 and i.startswith("262025") for i in imsis)


def test_ported_number_takes_the_recipient_network() -> None:
    sub = resolve(MODEL, "447555100001")
    assert sub.ported and not sub.roaming
    assert (sub.range_holder, sub.network, sub.serving_network) == ("home", "other", "other")
    assert sub.imsi.startswith("26202") and sub.msc == "491722270101"
    # the donor range said "absent, purged": the recipient's settings apply instead
    assert sub.status is Status.CONNECTED
    assert sub.msrn == "49172227001"  # the recipient's rule: 3 digits
    assert sub.location.mcc == "262" and sub.location.lac == 1


def test_roaming_number_is_served_by_the_visited_network() -> None:
    sub = resolve(MODEL, "447555000002")
    assert sub.roaming and not sub.ported
    assert sub.imsi == "234157555000002"  # still the home IMSI
    assert sub.msc == sub.vlr == "491722270101"
    assert (sub.location.mcc, sub.location.mnc) == ("262", "02")
    assert sub.msrn.startswith("49172227")


def test_ati_state_follows_the_absent_diagnostic() -> None:
    def state(diag: str) -> tuple:
        p = Profile(status=Status.ABSENT, absent_diagnostic=AbsentSubscriberDiagnosticSM[diag])
        s = resolve(MODEL, "447555000003", {"447555000003": p})
        return s.ati_state, s.not_reachable_reason

    assert state("IMSI_DETACHED") == (AtiState.NET_DET_NOT_REACHABLE,
                                      NotReachableReason.IMSI_DETACHED)
    assert state("MS_PURGED_FOR_NON_GPRS") == (AtiState.NET_DET_NOT_REACHABLE,
                                               NotReachableReason.MS_PURGED)
    assert state("ROAMING_RESTRICTION") == (AtiState.NET_DET_NOT_REACHABLE,
                                            NotReachableReason.RESTRICTED_AREA)
    assert state("NO_PAGING_RESPONSE_VIA_THE_MSC") == (AtiState.ASSUMED_IDLE, None)


def test_resolution_is_deterministic_and_spreads_over_mscs() -> None:
    numbers = [f"4475550{n:05d}" for n in range(300)]
    first = [resolve(MODEL, n) for n in numbers]
    again = [resolve(parse_config(mini()).model, n) for n in reversed(numbers)][::-1]
    assert first == again
    assert {s.msc for s in first if not s.roaming} == set(MODEL.networks["home"].mscs)
    assert len({s.location.cell_id for s in first}) > 250
    assert all(0 <= s.location.age < 30 and 1 <= s.location.cell_id <= 65535 for s in first)


def test_forwarding_settings() -> None:
    p = Profile(forward_to="447700900999")
    s = resolve(MODEL, "447555000004", {"447555000004": p})
    assert (s.forward_to, s.forward_when) == ("447700900999", ForwardWhen.UNCONDITIONAL)
    s = resolve(MODEL, "447555000004", {"447555000004": Profile(forward_to="")})
    assert s.forward_to is None


def test_profile_dict_round_trip() -> None:
    from simulators.config import parse_profile

    p = Profile(status=Status.ABSENT, absent_diagnostic=AbsentSubscriberDiagnosticSM(1),
                roaming_in="other", lac=5, forward_when=ForwardWhen.NOT_REACHABLE)
    d = p.to_dict()
    assert d == {"status": "absent", "absent_diagnostic": "imsi_detached",
                 "roaming_in": "other", "lac": 5, "forward_when": "not_reachable"}
    assert parse_profile(copy.deepcopy(d), networks=MODEL.networks) == p


# --------------------------------------------------------------------------- faults


def fault(**kw) -> FaultSpec:
    return parse_fault(kw, networks=["home", "other"], hub=True)


def test_the_most_specific_fault_wins() -> None:
    table = FaultTable([
        fault(kind="no_answer"),
        fault(kind="tcap_abort", network="home"),
        fault(kind="p_abort", prefix="44755"),
        fault(kind="malformed", prefix="4475551"),
        fault(kind="reset", number="447555100001"),
    ])
    op = Operation.SRI_SM
    assert table.decide("home", "447555100001", op).fault.kind is FaultKind.RESET
    assert table.decide("home", "447555100002", op).fault.kind is FaultKind.MALFORMED
    assert table.decide("home", "447555000001", op).fault.kind is FaultKind.P_ABORT
    assert table.decide("home", "491520000001", op).fault.kind is FaultKind.TCAP_ABORT
    assert table.decide("hub", "491520000001", op).fault.kind is FaultKind.NO_ANSWER


def test_operations_scope_and_network_plus_prefix() -> None:
    table = FaultTable([fault(kind="no_answer", operations=["ati"]),
                        fault(kind="tcap_abort", network="other", prefix="447")])
    assert table.decide("home", "447555000001", Operation.SRI_SM).fault is None
    assert table.decide("home", "447555000001", Operation.ATI).fault.kind is FaultKind.NO_ANSWER
    got = table.decide("other", "447555000001", Operation.SRI).fault
    assert got.kind is FaultKind.TCAP_ABORT


def test_latency_combines_with_an_answer_fault() -> None:
    table = FaultTable([fault(kind="latency", ms=25), fault(kind="p_abort", number="4470001")])
    d = table.decide("home", "4470001", Operation.SRI)
    assert d.delay == pytest.approx(0.025) and d.fault.kind is FaultKind.P_ABORT


def test_reset_fires_every_nth_matching_dialogue() -> None:
    table = FaultTable([fault(kind="reset", network="home", every=3)])
    fired = [table.decide("home", f"44{i}", Operation.SRI_SM).fault is not None
             for i in range(9)]
    assert fired == [False, False, True] * 3


def _pattern(seed: int, order: list[str]) -> dict[str, list[bool]]:
    table = FaultTable([fault(kind="tcap_abort", probability=0.5)], seed=seed)
    out: dict[str, list[bool]] = {}
    for n in order:
        out.setdefault(n, []).append(table.decide("home", n, Operation.SRI_SM).fault is not None)
    return out


def test_probability_is_seeded_and_independent_of_interleaving() -> None:
    numbers = [f"4475550{i:05d}" for i in range(200)] * 3
    shuffled = numbers[:]
    random.Random(5).shuffle(shuffled)
    a = _pattern(1, numbers)
    assert a == _pattern(1, shuffled)  # same seed, other order: same faults per number
    assert a != _pattern(2, numbers)
    share = sum(sum(v) for v in a.values()) / len(numbers)
    assert 0.4 < share < 0.6


def test_latency_distributions() -> None:
    rng = random.Random(0)
    draws = [(rng.random(), rng.random()) for _ in range(4000)]
    fixed = fault(kind="latency", ms=30)
    assert {fixed.latency(*d) for d in draws[:10]} == {0.03}
    uni = fault(kind="latency", distribution="uniform", min_ms=10, max_ms=40)
    values = [uni.latency(*d) for d in draws]
    assert 0.010 <= min(values) < 0.012 and 0.038 < max(values) <= 0.040
    logn = fault(kind="latency", distribution="lognormal", median_ms=20, sigma=0.5)
    values = [logn.latency(*d) for d in draws]
    assert statistics.median(values) == pytest.approx(0.020, rel=0.08)
    assert max(values) > 0.05  # a long tail
    capped = fault(kind="latency", distribution="lognormal", median_ms=20, sigma=0.5,
                   max_ms=30)
    assert max(capped.latency(*d) for d in draws) == pytest.approx(0.030)


def test_association_faults_by_endpoint() -> None:
    table = FaultTable([fault(kind="refuse_aspac"), fault(kind="heartbeat_silence",
                                                          network="other")])
    assert table.association_fault("home", FaultKind.REFUSE_ASPAC) is not None
    assert table.association_fault("home", FaultKind.HEARTBEAT_SILENCE) is None
    assert table.association_fault("other", FaultKind.HEARTBEAT_SILENCE) is not None
    assert not table.has_dialogue_faults
    assert table.decide("home", "447555000001", Operation.SRI_SM).fault is None
