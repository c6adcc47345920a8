"""TCAP transaction manager (Q.774 transaction sub-layer): matching, timers, ids, aborts."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from protocols import tcap
from protocols.errors import CodecError
from protocols.tcap import (
    Abort,
    AbortSource,
    AssociateResult,
    Begin,
    Continue,
    DiagnosticSource,
    DialogueAbort,
    DialogueRequest,
    DialogueResponse,
    End,
    Invoke,
    PAbortCause,
    ReturnResultLast,
    ServiceUserDiagnostic,
    Unidirectional,
)
from protocols.tcap_dialogue import (
    DialogueAborted,
    DialogueBegun,
    DialogueContinued,
    DialogueEnded,
    DialogueState,
    DialogueStateError,
    DialogueTimedOut,
    InvalidMessage,
    TooManyDialogues,
    TransactionManager,
    UnidirectionalReceived,
    UnknownTransaction,
    refused_context,
)
from tests.test_tcap import ATI_RES, ATI_V3, SM_GW_V2, SM_GW_V3, SRISM_ARG, SRISM_RES
from tests.test_tcap import TID as TID1
from tests.vectors import VECTORS

PEER = bytes.fromhex("a1b2c3d4")
AARQ_V3 = DialogueRequest(SM_GW_V3)
ACCEPTED_V3 = DialogueResponse(SM_GW_V3)
SRISM = [Invoke(1, 45, SRISM_ARG)]
USER_ABRT = DialogueAbort(AbortSource.DIALOGUE_SERVICE_USER)
PROVIDER_ABRT = DialogueAbort(AbortSource.DIALOGUE_SERVICE_PROVIDER)


def vec(name: str) -> bytes:
    tcap_bytes = VECTORS[name].tcap
    assert tcap_bytes is not None
    return tcap_bytes


def open_srism(tm: TransactionManager, now: float = 0.0, **kw):
    return tm.begin(AARQ_V3, SRISM, now, **kw)


def peer_continue(tm: TransactionManager, d, now: float = 1.0, otid: bytes = PEER):
    return tm.receive(tcap.encode(Continue(otid, d.otid, ACCEPTED_V3)), now)


# --------------------------------------------------------------------------- originating side

def test_first_begin_is_the_srism_vector_with_otid_1() -> None:
    tm = TransactionManager()
    d, data = open_srism(tm, now=100.0)
    assert data == vec("srism_v3_begin")
    assert d.otid == TID1 and d.local_id == 1
    assert d.state is DialogueState.INITIATION_SENT and d.originating
    assert d.peer_tid is None and d.application_context == SM_GW_V3
    assert d.deadline == 130.0  # timer m, 30 s by default
    assert tm.open_dialogues == 1 and tm.get_timer() == 130.0
    assert tm.find(TID1) is d and tm.find(1) is d


def test_begin_then_end_is_matched_on_dtid() -> None:
    tm = TransactionManager()
    d, _ = open_srism(tm, context="lookup-1")
    events, out = tm.receive(vec("srism_v3_end_result"), 0.2)
    assert out == []
    assert events == [DialogueEnded(d, tcap.decode(vec("srism_v3_end_result")))]
    ended = events[0]
    assert ended.message.components == [ReturnResultLast(1, 45, SRISM_RES)]
    assert ended.message.dialogue == ACCEPTED_V3
    assert ended.dialogue.context == "lookup-1"
    assert d.state is DialogueState.IDLE and not d.is_open and d.deadline is None
    assert tm.open_dialogues == 0 and tm.get_timer() is None
    assert tm.counters.begun == 1 and tm.counters.ended == 1


def test_ati_begin_and_end_vectors() -> None:
    tm = TransactionManager()
    d, data = tm.begin(DialogueRequest(ATI_V3), tcap.decode(vec("ati_v3_begin")).components, 0)
    assert data == vec("ati_v3_begin")
    events, _ = tm.receive(vec("ati_v3_end_result"), 1)
    assert type(events[0]) is DialogueEnded and events[0].dialogue is d
    assert events[0].message.components == [ReturnResultLast(1, 71, ATI_RES)]


def test_begin_continue_end() -> None:
    tm = TransactionManager()
    d, _ = open_srism(tm)
    events, out = peer_continue(tm, d)
    assert out == [] and type(events[0]) is DialogueContinued and events[0].dialogue is d
    assert events[0].message.dialogue == ACCEPTED_V3
    assert d.state is DialogueState.ACTIVE and d.peer_tid == PEER
    # the invocation timer keeps running through a Continue
    assert d.deadline == 30.0
    data = tm.continue_(d, None, [], 1.5)
    assert tcap.decode(data) == Continue(d.otid, PEER)
    end = End(d.otid, None, [ReturnResultLast(1, 45, SRISM_RES)])
    events, out = tm.receive(tcap.encode(end), 2.0)
    assert out == [] and events == [DialogueEnded(d, end)]
    assert tm.open_dialogues == 0


def test_originator_ends_an_active_dialogue_with_the_peers_tid() -> None:
    tm = TransactionManager()
    d, _ = open_srism(tm)
    peer_continue(tm, d)
    data = tm.end(d, None, [], 2.0)
    assert tcap.decode(data) == End(PEER)
    assert tm.open_dialogues == 0 and tm.counters.ended == 1
    with pytest.raises(DialogueStateError):
        tm.end(d, None, [], 3.0)


def test_end_in_initiation_sent_must_be_prearranged() -> None:
    tm = TransactionManager()
    d, _ = open_srism(tm)
    with pytest.raises(DialogueStateError):
        tm.end(d, None, [], 1.0)
    with pytest.raises(DialogueStateError):
        tm.continue_(d, None, [], 1.0)
    assert tm.end(d, None, [], 1.0, prearranged=True) == b""
    assert tm.open_dialogues == 0 and tm.get_timer() is None


def test_p_abort_from_the_peer() -> None:
    tm = TransactionManager()
    d, _ = open_srism(tm)
    events, out = tm.receive(vec("tcap_pabort_unrecognized_tid"), 1.0)
    assert out == []
    assert events == [DialogueAborted(d, PAbortCause.UNRECOGNIZED_TRANSACTION_ID, None, None)]
    assert refused_context(events[0]) is None
    assert tm.open_dialogues == 0 and tm.counters.aborted == 1


def test_u_abort_from_the_peer_with_abrt() -> None:
    tm = TransactionManager()
    d, _ = open_srism(tm)
    peer_continue(tm, d)
    events, out = tm.receive(tcap.encode(Abort(d.otid, None, USER_ABRT)), 2.0)
    assert out == [] and events == [DialogueAborted(d, None, USER_ABRT, None)]
    assert refused_context(events[0]) is None


def test_acn_refusal_gives_the_proposed_context() -> None:
    tm = TransactionManager()
    d, _ = open_srism(tm)
    events, out = tm.receive(vec("srism_abort_acn_not_supported"), 1.0)
    assert out == [] and len(events) == 1
    ev = events[0]
    assert type(ev) is DialogueAborted and ev.dialogue is d and ev.p_abort_cause is None
    assert refused_context(ev) == SM_GW_V2
    # the retry with the proposed version is a new dialogue with a new otid
    d2, data = tm.begin(DialogueRequest(refused_context(ev)), SRISM, 1.0)
    assert d2.otid != d.otid
    assert tcap.decode(data).dialogue == DialogueRequest(SM_GW_V2)


def test_refused_context_only_for_acn_not_supported() -> None:
    d = TransactionManager().begin(None, SRISM, 0)[0]
    no_reason = DialogueResponse(SM_GW_V2, AssociateResult.REJECT_PERMANENT,
                                 DiagnosticSource.DIALOGUE_SERVICE_USER,
                                 ServiceUserDiagnostic.NO_REASON_GIVEN)
    assert refused_context(DialogueAborted(d, None, no_reason)) is None
    assert refused_context(DialogueAborted(d, None, ACCEPTED_V3)) is None
    assert refused_context(DialogueTimedOut(d)) is None


# --------------------------------------------------------------------------- unknown tids

def test_continue_for_unknown_dtid_is_answered_with_a_p_abort() -> None:
    tm = TransactionManager()
    msg = Continue(TID1, bytes.fromhex("0badf00d"), ACCEPTED_V3)
    events, out = tm.receive(tcap.encode(msg), 0)
    assert out == [vec("tcap_pabort_unrecognized_tid")]  # Abort to the Continue's otid
    assert events == [UnknownTransaction(msg)]
    assert tm.counters.unknown_tids == 1 and tm.counters.p_aborts_sent == 1


@pytest.mark.parametrize("msg", [
    End(bytes.fromhex("0badf00d"), None, [ReturnResultLast(1, 45, SRISM_RES)]),
    Abort(bytes.fromhex("0badf00d"), PAbortCause.RESOURCE_LIMITATION),
    Abort(bytes.fromhex("0badf00d"), None, USER_ABRT),
    End(b"\x01"),  # a short tid can never name one of our 4-octet ids
])
def test_end_or_abort_for_unknown_dtid_is_discarded(msg) -> None:
    tm = TransactionManager()
    open_srism(tm)
    events, out = tm.receive(tcap.encode(msg), 0)
    assert out == [] and events == [UnknownTransaction(msg)]
    assert tm.open_dialogues == 1
    assert tm.counters.unknown_tids == 1 and tm.counters.p_aborts_sent == 0


def test_late_end_after_timeout_is_unknown_and_discarded() -> None:
    tm = TransactionManager(invoke_timeout=15)
    d, _ = open_srism(tm)
    assert tm.handle_timer(14.9) == ([], [])
    events, out = tm.handle_timer(15.0)
    assert events == [DialogueTimedOut(d)]
    assert out == []  # initiation sent: local cancel only, no peer tid to address
    assert tm.open_dialogues == 0 and tm.counters.timed_out == 1
    events, out = tm.receive(vec("srism_v3_end_result"), 16.0)
    assert out == [] and type(events[0]) is UnknownTransaction


# --------------------------------------------------------------------------- timers

def test_timeout_after_continue_sends_u_abort_to_the_peer() -> None:
    tm = TransactionManager()
    d, _ = open_srism(tm, context="route-a")
    peer_continue(tm, d)
    events, out = tm.handle_timer(30.0)
    assert events == [DialogueTimedOut(d)]
    assert len(out) == 1 and out[0][0] is d and out[0][0].context == "route-a"
    assert tcap.decode(out[0][1]) == Abort(PEER, None, USER_ABRT)


def test_timeout_without_dialogue_portion_sends_a_bare_u_abort() -> None:
    tm = TransactionManager()
    d, _ = tm.begin(None, SRISM, 0)  # MAP v1 style: no AARQ
    peer_continue(tm, d)
    _, out = tm.handle_timer(30.0)
    assert tcap.decode(out[0][1]) == Abort(PEER)


def test_timeout_per_begin_and_rearm_on_continue() -> None:
    tm = TransactionManager(invoke_timeout=30)
    d1, _ = open_srism(tm, 0.0, timeout=5)
    d2, _ = open_srism(tm, 0.0)
    assert tm.get_timer() == 5.0
    peer_continue(tm, d1, 1.0)
    tm.continue_(d1, None, [], 2.0, timeout=40)  # re-armed: now due at 42
    assert tm.get_timer() == 30.0
    events, _ = tm.handle_timer(35.0)
    assert events == [DialogueTimedOut(d2)]
    assert tm.get_timer() == 42.0
    events, _ = tm.handle_timer(42.0)
    assert events == [DialogueTimedOut(d1)]
    assert tm.get_timer() is None


def test_many_timeouts_fire_in_deadline_order_and_skip_closed_dialogues() -> None:
    rng = random.Random(7)
    tm = TransactionManager(max_dialogues=5000)
    live = {}
    for _ in range(3000):
        now = rng.uniform(0, 10)
        d, _ = tm.begin(None, SRISM, now, timeout=rng.uniform(1, 30))
        live[d.otid] = d
    answered = set()
    for otid in rng.sample(sorted(live), 1000):  # answered before their deadline
        events, _ = tm.receive(tcap.encode(End(otid)), 0)
        assert type(events[0]) is DialogueEnded
        answered.add(id(live.pop(otid)))
    expected = sorted(live.values(), key=lambda d: d.deadline)
    assert tm.get_timer() == expected[0].deadline
    fired = []
    now = 0.0
    while (t := tm.get_timer()) is not None:
        now = max(now + 0.5, t)
        events, _ = tm.handle_timer(now)
        assert all(e.dialogue.deadline is None for e in events)
        fired.extend(e.dialogue for e in events)
    assert fired == expected
    assert not answered & {id(d) for d in fired}
    assert tm.open_dialogues == 0 and tm.counters.timed_out == 2000


def test_timer_heap_stays_bounded_under_churn() -> None:
    tm = TransactionManager()
    keeper, _ = tm.begin(None, SRISM, 0, timeout=1e9)
    for i in range(20000):
        d, _ = tm.begin(None, SRISM, i * 0.001)
        tm.receive(tcap.encode(End(d.otid)), i * 0.001)
    assert tm.open_dialogues == 1
    assert len(tm._heap) <= 2 * tm.open_dialogues + 1025
    assert tm.get_timer() == keeper.deadline


# --------------------------------------------------------------------------- ids and bound

def test_ids_wrap_and_skip_ids_in_use() -> None:
    tm = TransactionManager(max_dialogues=4, id_space=4)
    a, _ = tm.begin(None, SRISM, 0)
    b, _ = tm.begin(None, SRISM, 0)
    assert (a.local_id, b.local_id) == (1, 2)
    tm.end(b, None, [], 0, prearranged=True)
    c, _ = tm.begin(None, SRISM, 0)
    d, _ = tm.begin(None, SRISM, 0)
    assert (c.local_id, d.local_id) == (3, 0)  # wrapped
    e, _ = tm.begin(None, SRISM, 0)
    assert e.local_id == 2  # 1 is still open (a), so skipped to the freed 2
    assert e.otid == bytes.fromhex("00000002")
    with pytest.raises(TooManyDialogues):
        tm.begin(None, SRISM, 0)


def test_bound_reached_raises_too_many_dialogues() -> None:
    tm = TransactionManager(max_dialogues=3)
    ds = [tm.begin(None, SRISM, 0)[0] for _ in range(3)]
    with pytest.raises(TooManyDialogues):
        tm.begin(None, SRISM, 0)
    assert tm.counters.resource_limited == 1 and tm.open_dialogues == 3
    tm.receive(tcap.encode(End(ds[1].otid)), 0)
    d, _ = tm.begin(None, SRISM, 0)
    assert d.otid not in {x.otid for x in (ds[0], ds[2])}


def test_bound_on_responding_side_answers_resource_limitation() -> None:
    tm = TransactionManager(max_dialogues=1)
    events, out = tm.receive(vec("srism_v3_begin"), 0)
    assert type(events[0]) is DialogueBegun and out == []
    events, out = tm.receive(tcap.encode(Begin(PEER, AARQ_V3, SRISM)), 0)
    assert events == []
    assert [tcap.decode(m) for m in out] == [Abort(PEER, PAbortCause.RESOURCE_LIMITATION)]
    assert tm.counters.resource_limited == 1 and tm.counters.p_aborts_sent == 1


def test_failed_encode_opens_nothing() -> None:
    tm = TransactionManager()
    with pytest.raises(CodecError):
        tm.begin(None, ["not a component"], 0)  # type: ignore[list-item]
    assert tm.open_dialogues == 0 and tm.get_timer() is None


def test_constructor_checks() -> None:
    with pytest.raises(ValueError):
        TransactionManager(max_dialogues=9, id_space=8)
    with pytest.raises(ValueError):
        TransactionManager(id_space=(1 << 32) + 1)
    with pytest.raises(ValueError):
        TransactionManager(invoke_timeout=0)


class OtidMachine(RuleBasedStateMachine):
    """Ids are unique among open dialogues through wraps of a tiny id space, on both sides."""

    MAX = 6

    def __init__(self) -> None:
        super().__init__()
        self.tm = TransactionManager(max_dialogues=self.MAX, invoke_timeout=10, id_space=8)
        self.now = 0.0
        self.open: dict[bytes, object] = {}
        self.closed: list = []

    @rule()
    def begin(self) -> None:
        if len(self.open) >= self.MAX:
            with pytest.raises(TooManyDialogues):
                self.tm.begin(None, SRISM, self.now)
            return
        d, data = self.tm.begin(None, SRISM, self.now)
        assert d.otid not in self.open, "otid reused while open"
        assert len(d.otid) == 4 and 0 <= d.local_id < 8
        assert tcap.decode(data).otid == d.otid
        self.open[d.otid] = d

    @rule(peer=st.binary(min_size=1, max_size=4))
    def peer_begins(self, peer: bytes) -> None:
        events, out = self.tm.receive(tcap.encode(Begin(peer, None, SRISM)), self.now)
        if len(self.open) >= self.MAX:
            assert events == [] and tcap.decode(out[0]).p_abort_cause == 4
            return
        d = events[0].dialogue
        assert d.otid not in self.open, "otid reused while open"
        assert d.peer_tid == peer and out == []
        self.open[d.otid] = d

    @precondition(lambda self: self.open)
    @rule(data=st.data(), how=st.sampled_from(["end", "abort", "continue", "local"]))
    def close_or_continue(self, data, how: str) -> None:
        otid = data.draw(st.sampled_from(sorted(self.open)))
        d = self.open[otid]
        if how == "local":
            self.tm.abort(d, None, self.now)
        else:
            msg = {"end": End(otid), "abort": Abort(otid, PAbortCause.RESOURCE_LIMITATION),
                   "continue": Continue(PEER, otid)}[how]
            events, out = self.tm.receive(tcap.encode(msg), self.now)
            assert out == [] and events[0].dialogue is d
            if how == "continue":
                return
        self.closed.append(self.open.pop(otid))

    @rule(dt=st.floats(0, 12))
    def time_passes(self, dt: float) -> None:
        self.now += dt
        events, _ = self.tm.handle_timer(self.now)
        for e in events:
            assert type(e) is DialogueTimedOut
            assert self.open.pop(e.dialogue.otid) is e.dialogue
        assert all(d.deadline > self.now for d in self.open.values())

    @precondition(lambda self: self.closed)
    @rule()
    def late_end_for_a_closed_dialogue(self) -> None:
        stale = self.closed[-1]
        events, out = self.tm.receive(tcap.encode(End(stale.otid)), self.now)
        if stale.otid in self.open:  # its id went to a newer dialogue after a wrap
            assert events[0].dialogue is self.open.pop(stale.otid)
        else:
            assert type(events[0]) is UnknownTransaction and out == []

    @rule(roll=st.integers(0, 9))
    def association_lost(self, roll: int) -> None:
        if roll:  # rare, so that the id space fills up in between
            return
        events = self.tm.abort_all(self.now)
        assert {e.dialogue.otid for e in events} == set(self.open)
        self.open.clear()

    @invariant()
    def tables_agree(self) -> None:
        assert self.tm.open_dialogues == len(self.open)
        for otid, d in self.open.items():
            assert self.tm.find(otid) is d and d.is_open


TestOtidMachine = OtidMachine.TestCase
TestOtidMachine.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)


def test_randomized_ids_never_reused_while_open() -> None:
    rng = random.Random(1)
    tm = TransactionManager(max_dialogues=50, id_space=64)
    open_: dict[bytes, object] = {}
    seen = []
    for step in range(20000):
        if open_ and (len(open_) == 50 or rng.random() < 0.5):
            otid = rng.choice(sorted(open_))
            tm.receive(tcap.encode(End(otid)), step)
            del open_[otid]
        else:
            d, _ = tm.begin(None, SRISM, step, timeout=1e9)
            assert d.otid not in open_
            open_[d.otid] = d
            seen.append(d.local_id)
    assert set(seen) == set(range(64))  # the counter went round the whole space


# --------------------------------------------------------------------------- association loss

def test_abort_all_fails_a_thousand_dialogues_at_once() -> None:
    tm = TransactionManager()
    ds = [tm.begin(None, SRISM, 0, context=i)[0] for i in range(1000)]
    for d in ds[:10]:
        peer_continue(tm, d)
    events = tm.abort_all(1.0, "association lost")
    assert len(events) == 1000
    assert {id(e.dialogue) for e in events} == {id(d) for d in ds}
    assert all(type(e) is DialogueAborted and e.reason == "association lost" for e in events)
    assert all(d.state is DialogueState.IDLE for d in ds)
    assert tm.open_dialogues == 0 and tm.get_timer() is None
    assert tm.handle_timer(1e9) == ([], [])
    assert tm.counters.aborted == 1000
    # late answers now meet unknown ids
    events, out = tm.receive(tcap.encode(End(ds[0].otid)), 2.0)
    assert type(events[0]) is UnknownTransaction and out == []


def test_abort_dialogues_takes_a_subset() -> None:
    tm = TransactionManager()
    ds = [tm.begin(None, SRISM, 0)[0] for _ in range(10)]
    tm.end(ds[0], None, [], 0, prearranged=True)
    events = tm.abort_dialogues([ds[0], ds[1], ds[2].otid, ds[3].local_id, b"\0\0\0\x63"], 1.0)
    assert [e.dialogue for e in events] == ds[1:4]
    assert tm.open_dialogues == 6 and tm.get_timer() == 30.0


# --------------------------------------------------------------------------- responding side

def test_responder_begin_then_end_gives_the_end_vector() -> None:
    hlr = TransactionManager()
    events, out = hlr.receive(vec("srism_v3_begin"), 5.0)
    assert out == [] and len(events) == 1
    ev = events[0]
    assert type(ev) is DialogueBegun and ev.message.components == SRISM
    d = ev.dialogue
    assert d.state is DialogueState.INITIATION_RECEIVED and not d.originating
    assert d.peer_tid == TID1 and d.application_context == SM_GW_V3 and len(d.otid) == 4
    data = hlr.respond_end(d, ACCEPTED_V3, [ReturnResultLast(1, 45, SRISM_RES)], 5.1)
    assert data == vec("srism_v3_end_result")
    assert hlr.open_dialogues == 0 and hlr.counters.begins_received == 1


def test_gateway_and_hlr_back_to_back() -> None:
    gw, hlr = TransactionManager(), TransactionManager()
    d, begin = open_srism(gw)
    (begun,), _ = hlr.receive(begin, 0.1)
    cont = hlr.respond_continue(begun.dialogue, ACCEPTED_V3, [], 0.1)
    assert tcap.decode(cont) == Continue(begun.dialogue.otid, d.otid, ACCEPTED_V3)
    (ev,), _ = gw.receive(cont, 0.2)
    assert type(ev) is DialogueContinued and d.peer_tid == begun.dialogue.otid
    end = hlr.end(begun.dialogue, None, [ReturnResultLast(1, 45, SRISM_RES)], 0.3)
    (ev,), _ = gw.receive(end, 0.4)
    assert type(ev) is DialogueEnded and ev.dialogue is d
    assert gw.open_dialogues == hlr.open_dialogues == 0


def test_responder_continue_then_originator_end() -> None:
    hlr = TransactionManager()
    (ev,), _ = hlr.receive(vec("srism_v3_begin"), 0)
    d = ev.dialogue
    hlr.respond_continue(d, ACCEPTED_V3, [], 0)
    assert d.state is DialogueState.ACTIVE
    events, out = hlr.receive(tcap.encode(End(d.otid)), 1)
    assert events == [DialogueEnded(d, End(d.otid))] and out == []


def test_responder_refuses_the_context_with_an_aare() -> None:
    hlr = TransactionManager()
    (ev,), _ = hlr.receive(vec("srism_v3_begin"), 0)
    refusal = DialogueResponse(SM_GW_V2, AssociateResult.REJECT_PERMANENT,
                               DiagnosticSource.DIALOGUE_SERVICE_USER,
                               ServiceUserDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED)
    assert hlr.abort(ev.dialogue, refusal, 0.1) == vec("srism_abort_acn_not_supported")
    assert hlr.open_dialogues == 0


def test_u_abort_defaults() -> None:
    tm = TransactionManager()
    (ev,), _ = tm.receive(vec("srism_v3_begin"), 0)
    assert tcap.decode(tm.u_abort(ev.dialogue, None, 0)) == Abort(TID1, None, USER_ABRT)
    (ev,), _ = tm.receive(tcap.encode(Begin(PEER, None, SRISM)), 0)  # no dialogue portion
    assert tcap.decode(tm.u_abort(ev.dialogue, None, 0)) == Abort(PEER)
    d, _ = open_srism(tm)
    assert tm.u_abort(d, None, 0) == b""  # initiation sent: local termination
    assert tm.open_dialogues == 0
    with pytest.raises(DialogueStateError):
        tm.u_abort(d, None, 0)
    with pytest.raises(DialogueStateError):
        tm.continue_(d, None, [], 0)


def test_responder_times_out_and_aborts_toward_the_originator() -> None:
    hlr = TransactionManager(invoke_timeout=10)
    (ev,), _ = hlr.receive(vec("srism_v3_begin"), 0)
    events, out = hlr.handle_timer(10)
    assert events == [DialogueTimedOut(ev.dialogue)]
    assert [(d, tcap.decode(m)) for d, m in out] == [(ev.dialogue, Abort(TID1, None, USER_ABRT))]


def test_unidirectional_is_passed_up() -> None:
    tm = TransactionManager()
    msg = Unidirectional([Invoke(1, 45, SRISM_ARG)])
    events, out = tm.receive(tcap.encode(msg), 0)
    assert events == [UnidirectionalReceived(msg)] and out == []


# --------------------------------------------------------------------------- malformed input

def test_garbage_is_discarded() -> None:
    tm = TransactionManager()
    for junk in (b"", b"\x62", b"\xff\xff\xff", b"\x30\x03\x02\x01\x01"):
        events, out = tm.receive(junk, 0)
        assert [type(e) for e in events] == [InvalidMessage] and out == []
    assert tm.counters.invalid == 4


def test_truncated_begin_with_readable_otid_gets_badly_formatted() -> None:
    tm = TransactionManager()
    data = vec("srism_v3_begin")[:-5]
    events, out = tm.receive(data, 0)
    assert type(events[0]) is InvalidMessage
    assert [tcap.decode(m) for m in out] == [
        Abort(TID1, PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION)]
    assert tm.open_dialogues == 0 and tm.counters.p_aborts_sent == 1


def test_unknown_message_type_with_otid_gets_unrecognized_message_type() -> None:
    tm = TransactionManager()
    data = b"\x63\x06\x48\x04" + PEER
    events, out = tm.receive(data, 0)
    assert type(events[0]) is InvalidMessage
    assert [tcap.decode(m) for m in out] == [Abort(PEER, PAbortCause.UNRECOGNIZED_MESSAGE_TYPE)]


def test_begin_with_oversized_otid_is_discarded() -> None:
    tm = TransactionManager()
    events, out = tm.receive(b"\x62\x07\x48\x05\x01\x02\x03\x04\x05", 0)
    assert type(events[0]) is InvalidMessage and out == []  # no derivable otid


def test_malformed_continue_aborts_the_dialogue_both_ways() -> None:
    tm = TransactionManager()
    d, _ = open_srism(tm)
    peer_continue(tm, d)
    bad = b"\x65\x10\x48\x04" + PEER + b"\x49\x04" + d.otid + b"\x6c\x00\x04\x00"  # stray element
    events, out = tm.receive(bad, 1.0)
    assert [type(e) for e in events] == [InvalidMessage, DialogueAborted]
    assert events[1].dialogue is d and events[1].reason.startswith("malformed")
    assert [tcap.decode(m) for m in out] == [
        Abort(PEER, PAbortCause.INCORRECT_TRANSACTION_PORTION)]
    assert tm.open_dialogues == 0


def test_malformed_end_for_an_open_dialogue_aborts_it_silently() -> None:
    tm = TransactionManager()
    d, _ = open_srism(tm)
    bad = b"\x64\x0a\x49\x04" + d.otid + b"\x6c\x02\xa2\x05"  # component runs past the end
    events, out = tm.receive(bad, 1.0)
    assert [type(e) for e in events] == [InvalidMessage, DialogueAborted] and out == []
    assert tm.open_dialogues == 0


def test_begin_with_bad_dialogue_portion_gets_a_provider_abrt() -> None:
    tm = TransactionManager()
    bad_dp = b"\x6b\x04\x28\x02\x06\x00"  # EXTERNAL with an empty OID, no dialogue PDU
    body = b"\x48\x04" + PEER + bad_dp
    events, out = tm.receive(bytes([0x62, len(body)]) + body, 0)
    assert type(events[0]) is InvalidMessage
    assert [tcap.decode(m) for m in out] == [Abort(PEER, None, PROVIDER_ABRT)]
    assert tm.open_dialogues == 0


def test_begin_carrying_an_aare_gets_a_provider_abrt() -> None:
    tm = TransactionManager()
    events, out = tm.receive(tcap.encode(Begin(PEER, ACCEPTED_V3, SRISM)), 0)
    assert events == [] and [tcap.decode(m) for m in out] == [Abort(PEER, None, PROVIDER_ABRT)]
    assert tm.open_dialogues == 0


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=64))
def test_receive_never_raises(data: bytes) -> None:
    tm = TransactionManager()
    d, _ = open_srism(tm)
    events, out = tm.receive(data, 0)
    assert isinstance(events, list) and isinstance(out, list)
    for m in out:
        assert type(tcap.decode(m)) is Abort


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40), st.integers(0, 60))
def test_receive_mutated_vectors_never_raises(tail: bytes, cut: int) -> None:
    tm = TransactionManager()
    open_srism(tm)
    base = vec("srism_v3_end_result")
    events, out = tm.receive(base[:cut] + tail, 0)
    assert all(type(tcap.decode(m)) is Abort for m in out)
    assert tm.open_dialogues in (0, 1)
