"""INVITE client and server transactions (RFC 3261 §17) on a fake clock: Timer A
retransmission and doubling, Timer B, ACK for non-2xx finals with the same branch, Timer D
absorbing retransmitted finals, reliable transports; server: 100 Trying at 200 ms,
retransmitted INVITEs answered from the last response, Timer G/H, ACK, Timer I; matching."""

from __future__ import annotations

import pytest

from protocols.sip.message import (
    Address,
    CSeq,
    Method,
    Request,
    Response,
    Via,
    decode,
    make_response,
)
from protocols.sip.transaction import (
    AckReceived,
    InviteClientTransaction,
    InviteServerTransaction,
    ResponseReceived,
    TimedOut,
    Timers,
    TransactionState,
    TransportFailed,
    ack_for,
    ack_for_2xx,
    client_key,
    server_key,
)
from protocols.sip.uri import np_sip_uri, parse_uri

T = Timers()  # T1 0.5, T2 4, T4 5, D 32


def invite(branch: str = "z9hG4bKabc", **kw) -> Request:
    ruri = parse_uri("sip:+447700900123@np.example;user=phone")
    return Request(Method.INVITE, ruri,
                   (Via("UDP", "10.0.0.1", 5060, (("branch", branch),)),
                    Via("UDP", "10.0.0.2", 5060, (("branch", "z9hG4bKupstream"),))),
                   Address(parse_uri("sip:gw@10.0.0.1"), None, (("tag", "ft"),)), Address(ruri),
                   "cid@10.0.0.1", CSeq(7, "INVITE"), 70,
                   headers=(("Route", "<sip:proxy.example;lr>"),), **kw)


def redirect(req: Request, status: int = 302, tag: str = "tt") -> Response:
    contact = (Address(np_sip_uri("447700900123", "447700123", "np.example")),) \
        if status < 400 else ()
    return make_response(req, status, to_tag=tag, contact=contact)


def run_timers(tx, until: float) -> list[float]:
    """Fire every timer up to ``until``; return the times they fired."""
    fired = []
    while (at := tx.get_timer()) is not None and at <= until:
        tx.handle_timer(at)
        fired.append(at)
    return fired


# --------------------------------------------------------------------------- client


def test_client_timer_a_doubles_until_timer_b() -> None:
    """§17.1.1.2: retransmit at T1, 2*T1, 4*T1... (no T2 cap for INVITE); Timer B, 64*T1,
    gives up."""
    req = invite()
    tx = InviteClientTransaction(req, 0.0, timers=T)
    first = tx.data_to_send()
    assert len(first) == 1 and decode(first[0]) == req
    sends = []
    while (at := tx.get_timer()) is not None:
        tx.handle_timer(at)
        if tx.data_to_send():
            sends.append(at)
    assert sends == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert tx.retransmissions == 6
    assert tx.state is TransactionState.TERMINATED
    assert list(tx.events()) == [TimedOut("B")]


def test_client_reliable_transport_sends_once() -> None:
    tx = InviteClientTransaction(invite(), 0.0, reliable=True, timers=T)
    assert len(tx.data_to_send()) == 1
    assert tx.get_timer() == 32.0  # Timer B only
    tx.handle_timer(32.0)
    assert tx.data_to_send() == [] and list(tx.events()) == [TimedOut("B")]


def test_client_non_2xx_final_gets_ack_with_same_branch() -> None:
    """§17.1.1.3: the ACK has the INVITE's Request-URI, Call-ID, From, CSeq number, top Via
    (same branch) and Route, and the response's To."""
    req = invite()
    tx = InviteClientTransaction(req, 0.0, timers=T)
    tx.data_to_send()
    run_timers(tx, 0.6)  # one retransmission
    assert len(tx.data_to_send()) == 1
    resp = redirect(req)
    tx.receive_response(resp, 0.7)
    assert list(tx.events()) == [ResponseReceived(resp)]
    (wire,) = tx.data_to_send()
    ack = decode(wire)
    assert ack == ack_for(req, resp)
    assert tx.request is None  # only the ACK's bytes are kept for Timer D
    assert ack.method == Method.ACK and ack.uri == req.uri
    assert ack.via == req.via[:1] and ack.branch == "z9hG4bKabc"
    assert ack.from_ == req.from_ and ack.to == resp.to and ack.to.tag == "tt"
    assert ack.call_id == req.call_id and ack.cseq == CSeq(7, "ACK")
    assert ack.header("Route") == "<sip:proxy.example;lr>"
    assert tx.state is TransactionState.COMPLETED
    # Timer D: retransmitted finals are ACKed again and not passed up
    tx.receive_response(resp, 5.0)
    assert tx.data_to_send() == [wire] and list(tx.events()) == []
    assert tx.get_timer() == pytest.approx(0.7 + 32.0)
    run_timers(tx, 100)
    assert tx.terminated and tx.data_to_send() == []


def test_client_reliable_final_terminates_at_once() -> None:
    req = invite()
    tx = InviteClientTransaction(req, 0.0, reliable=True, timers=T)
    tx.data_to_send()
    tx.receive_response(redirect(req, 404), 0.1)
    assert len(tx.data_to_send()) == 1  # the ACK
    assert tx.terminated and tx.get_timer() is None


def test_client_provisional_stops_a_and_b() -> None:
    req = invite()
    tx = InviteClientTransaction(req, 0.0, timers=T)
    tx.data_to_send()
    trying = make_response(req, 100)
    tx.receive_response(trying, 0.2)
    assert tx.state is TransactionState.PROCEEDING
    assert list(tx.events()) == [ResponseReceived(trying)]
    assert tx.get_timer() is None  # the TU's own timeout applies now
    tx.receive_response(redirect(req, 604), 40.0)
    assert tx.state is TransactionState.COMPLETED and len(tx.data_to_send()) == 1


def test_client_2xx_ends_transaction_without_ack() -> None:
    """§17.1.1.2: a 2xx goes to the TU, which ACKs it in a new transaction (§13.2.2.4)."""
    req = invite()
    tx = InviteClientTransaction(req, 0.0, timers=T)
    tx.data_to_send()
    ok = make_response(req, 200, to_tag="x", contact=(Address(parse_uri("sip:np@10.9.9.9")),))
    tx.receive_response(ok, 0.1)
    assert tx.terminated and tx.data_to_send() == []
    assert list(tx.events()) == [ResponseReceived(ok)]
    ack = ack_for_2xx(req, ok, "z9hG4bKnew")
    assert ack.branch == "z9hG4bKnew" and str(ack.uri) == "sip:np@10.9.9.9"
    assert ack.to.tag == "x" and ack.cseq == CSeq(7, "ACK")


def test_client_transport_error_and_abandon() -> None:
    tx = InviteClientTransaction(invite(), 0.0, timers=T)
    tx.transport_error(0.1, "ICMP unreachable")
    assert tx.terminated and list(tx.events()) == [TransportFailed("ICMP unreachable")]
    tx2 = InviteClientTransaction(invite(), 0.0, timers=T)
    tx2.data_to_send()
    tx2.terminate()
    assert tx2.get_timer() is None
    tx2.handle_timer(10)
    assert tx2.data_to_send() == [] and list(tx2.events()) == []


def test_client_refuses_non_invite() -> None:
    req = invite()
    req.method = "OPTIONS"
    with pytest.raises(ValueError):
        InviteClientTransaction(req, 0.0)


# --------------------------------------------------------------------------- server


def test_server_sends_100_trying_after_200ms() -> None:
    """§17.2.1: 100 Trying unless the TU answers within 200 ms."""
    req = invite()
    tx = InviteServerTransaction(req, 0.0, timers=T)
    assert tx.get_timer() == pytest.approx(0.2)
    tx.handle_timer(0.2)
    (wire,) = tx.data_to_send()
    trying = decode(wire)
    assert trying.status == 100 and trying.via == req.via and trying.to.tag is None
    # a retransmitted INVITE now gets the 100 again
    tx.receive_request(req, 0.5)
    assert tx.data_to_send() == [wire] and tx.retransmissions_absorbed == 1
    tx2 = InviteServerTransaction(req, 0.0, timers=T)
    tx2.respond(redirect(req), 0.05)  # answered in time: no 100
    tx2.handle_timer(0.2)
    assert [decode(w).status for w in tx2.data_to_send()] == [302]


def test_server_absorbs_retransmissions_and_retransmits_final() -> None:
    """Retransmitted INVITEs are answered with the final already sent; Timer G
    retransmits it (T1 doubling up to T2) until the ACK; Timer I then ends."""
    req = invite()
    tx = InviteServerTransaction(req, 0.0, timers=T)
    tx.receive_request(req, 0.01)  # before any response: absorbed silently
    assert tx.data_to_send() == []
    tx.respond(redirect(req), 0.1)
    (final,) = tx.data_to_send()
    assert tx.state is TransactionState.COMPLETED
    assert tx.answered and tx.status == 302 and tx.request is None
    tx.receive_request(req, 0.2)
    assert tx.data_to_send() == [final]
    g_sends = []
    while (at := tx.get_timer()) is not None and at < 10:
        tx.handle_timer(at)
        if tx.data_to_send() == [final]:
            g_sends.append(round(at - 0.1, 3))
    assert g_sends == [0.5, 1.5, 3.5, 7.5]  # intervals 0.5, 1, 2, 4 (capped at T2)
    ack = ack_for(req, redirect(req))
    tx.receive_request(ack, 10.0)
    assert tx.state is TransactionState.CONFIRMED
    assert list(tx.events()) == [AckReceived(ack)]
    tx.receive_request(req, 10.5)  # absorbed in Confirmed
    assert tx.data_to_send() == []
    assert tx.get_timer() == pytest.approx(15.0)  # Timer I = T4
    tx.handle_timer(15.0)
    assert tx.terminated
    assert tx.retransmissions_absorbed == 3


def test_server_timer_h_without_ack() -> None:
    req = invite()
    tx = InviteServerTransaction(req, 0.0, timers=T)
    tx.respond(redirect(req, 404), 0.0)
    run_timers(tx, 100)
    assert tx.terminated
    assert list(tx.events()) == [TimedOut("H")]


def test_server_reliable() -> None:
    """Over TCP: no Timer G, and the ACK ends the transaction at once (Timer I = 0)."""
    req = invite()
    tx = InviteServerTransaction(req, 0.0, reliable=True, timers=T)
    tx.respond(redirect(req), 0.0)
    tx.data_to_send()
    assert tx.get_timer() == pytest.approx(32.0)  # Timer H only
    tx.receive_request(ack_for(req, redirect(req)), 0.1)
    assert tx.terminated


def test_server_answers_once() -> None:
    req = invite()
    tx = InviteServerTransaction(req, 0.0, timers=T)
    tx.respond(redirect(req), 0.0)
    tx.respond(redirect(req, 404), 0.1)  # ignored: already answered
    assert [decode(w).status for w in tx.data_to_send()] == [302]
    tx.respond(make_response(req, 180), 0.2)
    assert tx.data_to_send() == []
    ok = InviteServerTransaction(req, 0.0, timers=T)
    ok.respond(make_response(req, 200, to_tag="x"), 0.0)
    assert ok.terminated


def test_server_provisional_then_final() -> None:
    req = invite()
    tx = InviteServerTransaction(req, 0.0, timers=T)
    tx.respond(make_response(req, 183, to_tag="x"), 0.0)
    (ringing,) = tx.data_to_send()
    tx.receive_request(req, 0.3)
    assert tx.data_to_send() == [ringing]  # the most recent provisional
    tx.respond(redirect(req, tag="x"), 0.4)
    assert decode(tx.data_to_send()[0]).status == 302


# --------------------------------------------------------------------------- matching


def test_keys() -> None:
    """§17.1.3: responses match on branch and CSeq method; §17.2.3: requests on branch,
    sent-by and method, ACK counting as INVITE; RFC 2543 peers without the cookie too."""
    req = invite()
    assert client_key(redirect(req)) == ("z9hG4bKabc", "INVITE")
    ack = ack_for(req, redirect(req))
    assert server_key(ack) == server_key(req)
    cancel = Request("CANCEL", req.uri, req.via[:1], req.from_, req.to, req.call_id,
                     CSeq(7, "CANCEL"))
    assert server_key(cancel) != server_key(req)
    assert server_key(cancel)[:-1] == server_key(req)[:-1]
    assert server_key(invite("z9hG4bKother")) != server_key(req)
    old = invite("1234")  # RFC 2543 branch
    old_ack = ack_for(old, redirect(old))
    assert server_key(old_ack) == server_key(old)
    assert server_key(old) != server_key(invite("5678"))


def test_timers_validation() -> None:
    assert Timers(t1=0.01).b == pytest.approx(0.64)
    with pytest.raises(ValueError):
        Timers(t1=0)
    with pytest.raises(ValueError):
        Timers(t1=5, t2=4)
