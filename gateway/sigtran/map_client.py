"""The asyncio MAP client: ``sri_sm``, ``ati`` and ``sri`` toward an HLR over a link set.

Each call opens one TCAP dialogue (TS 29.002 §12: one operation per dialogue for these
services) and returns one :data:`MapOutcome`, never raising for what the network does:

- :class:`MapResult`: the operation's typed result (``protocols.map``);
- :class:`MapUserError`: the HLR answered with a MAP error (code, name, diagnostic);
- :class:`MapFailure`: no answer to give (timer m ran out, the dialogue was aborted, the
  link set is down or the association carrying the dialogue was lost, SCCP returned the
  message, the component was rejected, or the answer did not decode).

Application-context negotiation (TS 29.002 §15.2.1, §15.2.4): a Begin refused with an AARE
naming a lower version of the context is retried once with that version, and the version
is remembered per route and operation, so later dialogues start there.

Incoming traffic from every association of the attached link sets goes to
:meth:`MapClient.on_payload`; a lost association fails the dialogues it carried at once.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass, field

from protocols import m3ua, sccp, tcap
from protocols import map as map_
from protocols.errors import CodecError
from protocols.map import ErrorCode, Opcode
from protocols.map.common import ADDRESS_CACHE, IMSI_CACHE, address, enc_address, imsi
from protocols.map.sm import LocationInfoWithLmsi, RoutingInfoForSmRes
from protocols.sccp import bcd_digits_ok
from protocols.tbcd import _SWAP, isdn  # (_SWAP: BCD octets, first digit low nibble)
from protocols.tcap_dialogue import (
    Dialogue,
    DialogueAborted,
    DialogueContinued,
    DialogueEnded,
    DialogueTimedOut,
    TooManyDialogues,
    TransactionManager,
    refused_context,
)

from .sccp_route import SI_SCCP, MapRoute, protocol_data, reply_data, unitdata

log = logging.getLogger(__name__)

__all__ = ["FailureKind", "MapClient", "MapFailure", "MapOutcome", "MapResult", "MapRoute",
           "MapUserError"]


class FailureKind(enum.StrEnum):
    """Why a MAP operation has no answer."""

    TIMEOUT = "timeout"  # timer m ran out (TS 29.002 §17.1.2)
    ABORT = "abort"  # TC-U-ABORT from the peer
    PROVIDER_ABORT = "provider_abort"  # TC-P-ABORT (Q.773 P-AbortCause in ``cause``)
    CONTEXT_REFUSED = "context_refused"  # no application context version was accepted
    LINK_DOWN = "link_down"  # no ASP-ACTIVE association, or the one carrying it was lost
    SCCP_RETURN = "sccp_return"  # UDTS/XUDTS: SCCP could not deliver (Q.713 cause in ``cause``)
    REJECT = "reject"  # the peer rejected the component (Q.773 problem in ``cause``)
    OVERLOAD = "overload"  # the bound on open dialogues is reached
    PROTOCOL = "protocol_error"  # the answer did not make sense or did not decode


@dataclass(slots=True)
class MapResult:
    """The HLR's answer: ``value`` is the operation's typed result."""

    operation: Opcode
    value: object
    version: int
    route: str


@dataclass(slots=True)
class MapUserError:
    """The HLR answered with a MAP error (TS 29.002 §17.6)."""

    operation: Opcode
    code: int
    name: str
    param: object | None
    diagnostic: str | None
    version: int
    route: str


@dataclass(slots=True)
class MapFailure:
    """No answer: ``kind`` says why, ``detail`` in words, ``cause`` the protocol's code."""

    operation: Opcode
    kind: FailureKind
    detail: str
    version: int
    route: str
    cause: int | None = None


MapOutcome = MapResult | MapUserError | MapFailure

# the parameter attribute that carries each error's diagnostic (TS 29.002 §17.7.7)
_DIAGNOSTICS = ("absent_subscriber_diagnostic_sm", "unknown_subscriber_diagnostic",
                "call_barring_cause", "network_resource", "absent_subscriber_reason")

_SRI_SM = Opcode.SEND_ROUTING_INFO_FOR_SM
_AARQS: dict[tuple[int, int], tcap.DialogueRequest] = {}


def _aarq(operation: int, version: int) -> tcap.DialogueRequest:
    """The AARQ proposing ``operation``'s context at ``version``: one (frozen) object per
    context, so the TCAP encoder finds its dialogue portion by identity."""
    pdu = _AARQS.get((operation, version))
    if pdu is None:
        pdu = _AARQS[(operation, version)] = tcap.DialogueRequest(
            map_.context_for(operation, version))
    return pdu


_HIGHEST = {Opcode.SEND_ROUTING_INFO_FOR_SM: 3, Opcode.ANY_TIME_INTERROGATION: 3,
            Opcode.SEND_ROUTING_INFO: 3}
_SRI_SM_HIGHEST = _HIGHEST[_SRI_SM]


@dataclass(slots=True, eq=False)
class _Pending:
    """What a dialogue in flight needs: the caller's future and what a retry would resend.

    ``argument`` (an SRI-SM's, sent from a template), ``called`` and ``calling`` are built
    when first needed (:meth:`MapClient._argument`, :meth:`MapClient._addresses`)."""

    future: asyncio.Future[MapOutcome]
    operation: Opcode
    argument: object
    version: int
    route: MapRoute
    msisdn: str
    timeout: float | None
    sm_rp_pri: bool = True
    called: sccp.SccpAddress | None = None
    calling: sccp.SccpAddress | None = None
    association: object = None
    retried: bool = False


class _SriSmBegin:
    """An SRI-SM Begin for one route, context version and sm-RP-PRI, encoded in advance but
    for the subscriber's number and the otid: the UDT (Q.713 §4.10) carrying the TCAP Begin
    (AARQ, one Invoke) with the RoutingInfoForSM-Arg of TS 29.002 §17.7.6 holding msisdn,
    sm-RP-PRI and serviceCentreAddress. The number's BCD digits are the same octets in the
    called GT (Q.713 §3.4.2.3.1) and in the ISDN-AddressString (TS 29.002 §17.7.8), so they
    are computed once; every length and pointer depends only on how many digits there are,
    so the octets around the digits are computed once per digit count.

    :meth:`parts` gives the pieces of the UDT, the otid's place (index :data:`OTID`) left
    empty: joined with the otid there, the same bytes as the general path
    (``encode_argument``, ``TransactionManager.begin``, ``encode_unitdata``; the tests
    compare). None for a number it does not cover (not 1 to 15 plain decimal digits), which
    then takes the general path."""

    OTID = 3
    __slots__ = ("application_context", "_by_count", "_mid")

    def __init__(self, route: MapRoute, version: int, sm_rp_pri: bool, smsc: object,
                 ssn: int) -> None:
        pdu = None if version == 1 else _aarq(_SRI_SM, version)
        self.application_context = None if pdu is None else pdu.application_context
        fixed = (sccp.SccpAddress.e164(route.hlr_gt, route.hlr_ssn)._lv
                 if route.hlr_gt else None)
        calling = sccp.SccpAddress.e164(route.calling_gt, ssn)._lv
        dp = b"" if pdu is None else tcap.encode_dialogue_portion(pdu)
        sca = enc_address(smsc)
        mid = ((b"\x81\x01\xff\x82" if sm_rp_pri else b"\x81\x01\x00\x82")
               + bytes((len(sca),)) + sca)
        self._mid = mid
        cls = 0x80 if route.return_on_error else 0x00
        hlr_ssn = int(route.hlr_ssn)
        # per digit count: (before the called GT's digits, after them up to the otid,
        # after the otid up to the msisdn's digits), or None when it would not fit
        by_count: list[tuple[bytes, bytes, bytes] | None] = [None]
        for n in range(1, 16):
            odd = n & 1
            k = (n + 1) // 2  # BCD octets
            if fixed is None:  # addressed by the MSISDN (TS 29.002 §6.1.3): route on GT, GTI 4
                called_head = bytes((5 + k, 0x12, hlr_ssn, 0, 0x11 if odd else 0x12, 4))
                lc = len(called_head) + k
            else:
                called_head = fixed
                lc = len(fixed)
            la = 1 + k  # msisdn: 0x91 (international, ISDN) and the digits
            m = la + len(mid) + 4  # the argument's TLV: 30 L 80 la 91 <bcd> <mid>
            t = 16 + len(dp) + m  # the Begin's content: 48 04 <otid> dp 6c .. a1 .. <invoke>
            p3 = 1 + lc + len(calling)
            if t > 0x7F or p3 > 255:
                by_count.append(None)
                continue
            udt_head = bytes((0x09, cls, 3, 2 + lc, p3))
            after = calling + bytes((t + 2, 0x62, t, 0x48, 4))
            tail = dp + bytes((0x6C, m + 8, 0xA1, m + 6, 2, 1, 1, 2, 1, 45, 0x30, m - 2, 0x80,
                               la, 0x91))
            if fixed is None:
                by_count.append((udt_head + called_head, after, tail))
            else:  # (no digits in the called address: none to put there)
                by_count.append((udt_head + called_head + after, b"", tail))
        self._by_count = tuple(by_count)

    @classmethod
    def for_route(cls, route: MapRoute, version: int, sm_rp_pri: bool, smsc: object,
                  ssn: int) -> _SriSmBegin | None:
        """The template, or None where it would not write what the general path writes
        (checked once here, on a sample number of each parity)."""
        try:
            tpl = cls(route, version, sm_rp_pri, smsc, ssn)
            pdu = None if version == 1 else _aarq(_SRI_SM, version)
            for number in ("447700900123", "4477009001234"):
                arg = map_.RoutingInfoForSmArg(isdn(number), sm_rp_pri, smsc)
                tm = TransactionManager(max_dialogues=1)
                _, data = tm.begin(pdu, [tcap.Invoke(1, _SRI_SM, map_.encode_argument(
                    _SRI_SM, arg, version))], 0.0)
                called = (sccp.SccpAddress.e164(route.hlr_gt, route.hlr_ssn) if route.hlr_gt
                          else sccp.SccpAddress.e164(number, route.hlr_ssn, memoise=False))
                want = sccp.encode_unitdata(called, sccp.SccpAddress.e164(route.calling_gt, ssn),
                                            data, 0, route.return_on_error)
                parts = tpl.parts(number)
                if parts is None:
                    return None
                parts[cls.OTID] = b"\x00\x00\x00\x01"
                if b"".join(parts) != want:
                    return None
            return tpl
        except (CodecError, ValueError, TypeError):
            return None

    def parts(self, msisdn: str) -> list[bytes] | None:
        n = len(msisdn)
        if not (0 < n <= 15 and msisdn.isdigit() and msisdn.isascii()):
            return None
        pieces = self._by_count[n]
        if pieces is None:
            return None
        bcd = bytes.fromhex(msisdn + "f" if n & 1 else msisdn).translate(_SWAP)
        head, after, tail = pieces
        if after:
            return [head, bcd, after, b"", tail, bcd, self._mid]
        return [head, b"", b"", b"", tail, bcd, self._mid]


_SHAPES_MAX = 64
_RELEARN = 16  # (as the responder's _BeginShape: learned anew every 16th miss of a key)


class _EndShape:
    """The shape of an End answering an SRI-SM, learned from one the general reading took
    (its UDT read by ``sccp.unitdata_payload``, its TCAP by
    ``TransactionManager.receive_result``, its RoutingInfoForSM-Res of IMSI and
    networkNode-Number read in place): every octet of it but the calling address's digits,
    the dtid, the IMSI's digits and the networkNode-Number. An HLR's answers differ only
    there, so an End of the same length with the same octets everywhere else is read by
    comparing three runs of octets and reading those fields as the general reading reads
    them: :meth:`read` gives ``(dtid, result)`` as the general reading gives them (the tests
    compare), or None (then the general reading runs, and names any fault).

    Only a UDT whose called address follows its pointers (pointer 3) is learned; the key is
    ``(length, the octets up to the calling address's digits)``."""

    __slots__ = ("c", "c_end", "odd", "chunk1", "tid_at", "tid_end", "chunk2", "i_at",
                 "i_end", "chunk3", "n_at", "misses")

    @classmethod
    def learn(cls, buf: bytes, payload: bytes, hit: tuple, value: object
              ) -> _EndShape | None:
        try:
            param = hit[3]
            n = len(buf)
            end = len(param)
            if buf[2] != 3 or type(param) is not bytes or type(value) is not RoutingInfoForSmRes:
                return None
            a = 4 + param[3]  # (RoutingInfoForSmRes.decode's hot path: 30 L 04 li .. a0 ..)
            if not (8 < end < 0x82 and param[1] == end - 2 and param[0] == 0x30
                    and param[2] == 0x04 and a + 4 <= end and param[a] == 0xA0
                    and param[a + 1] == end - a - 2 and param[a + 2] == 0x81
                    and param[a + 3] == end - a - 4):
                return None
            self = cls()
            self.misses = 0
            self.c = c = 3 + buf[3]
            self.c_end = c + 1 + buf[c]
            self.odd = buf[c + 4] & 0x0F == 1
            ds = 5 + buf[4]  # the TCAP message
            if buf[ds:ds + len(payload)] != payload or ds + len(payload) != n:
                return None
            self.tid_at = ds + 4
            self.tid_end = ds + 4 + len(hit[0].otid)
            p = n - end
            self.i_at = p + 4
            self.i_end = p + a
            self.n_at = p + a + 4
            if not (c + 6 < self.c_end <= self.tid_at < self.tid_end <= p and self.i_at < self.i_end
                    and buf[self.tid_at:self.tid_end] == hit[0].otid):
                return None
            self.chunk1 = buf[self.c_end:self.tid_at]
            self.chunk2 = buf[self.tid_end:self.i_at]
            self.chunk3 = buf[self.i_end:self.n_at]
            got = self.read(buf)
            if got is None or got[0] != hit[0].otid or got[1] != value:
                return None
            return self
        except (CodecError, IndexError):
            return None

    def read(self, buf: bytes) -> tuple[bytes, RoutingInfoForSmRes] | None:
        """``(dtid, result)`` of ``buf``, an End of the learned length and key; None when it
        is not of this shape or a field does not decode."""
        c_end = self.c_end
        if (buf[c_end:self.tid_at] != self.chunk1 or buf[self.tid_end:self.i_at] != self.chunk2
                or buf[self.i_end:self.n_at] != self.chunk3):
            return None
        # the calling address's digits, as sccp.unitdata_payload checks them
        if not bcd_digits_ok(buf, self.c + 6, c_end, 1 if self.odd else 2):
            return None
        # the result, as RoutingInfoForSmRes.decode reads it
        try:
            i = IMSI_CACHE.get(buf[self.i_at:self.i_end]) or imsi(buf, self.i_at, self.i_end)
            a = ADDRESS_CACHE.get(buf[self.n_at:]) or address(buf, self.n_at, len(buf), "")
        except CodecError:
            return None
        return buf[self.tid_at:self.tid_end], RoutingInfoForSmRes(i, LocationInfoWithLmsi(a))


@dataclass(slots=True)
class ClientStats:
    """Dialogues by outcome."""

    begun: int = 0
    results: int = 0
    user_errors: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    fallbacks: int = 0
    sccp_undecodable: int = 0


class MapClient:
    """Runs MAP dialogues over attached link sets; see the module docstring.

    ``smsc_address`` is the service centre address sent in SRI-SM; ``gsmscf_address`` the
    gsmSCF address sent in ATI; ``timer_m`` the invoke timer (TS 29.002: 15 s to 30 s).
    ``sri_sm_ssn``/``ati_ssn``/``sri_ssn`` are our calling SSNs (an SMS gateway MSC, the
    gsmSCF, a GMSC).
    """

    def __init__(self, *, smsc_address: str, gsmscf_address: str | None = None,
                 timer_m: float = 30.0, max_dialogues: int = 65536,
                 sri_sm_ssn: int = sccp.Ssn.MSC, ati_ssn: int = sccp.Ssn.GSMSCF,
                 sri_ssn: int = sccp.Ssn.MSC) -> None:
        self.smsc = isdn(smsc_address)
        self.gsmscf = isdn(gsmscf_address or smsc_address)
        self.timer_m = timer_m
        self.tm = TransactionManager(max_dialogues=max_dialogues, invoke_timeout=timer_m)
        self.stats = ClientStats()
        self._ssn = {Opcode.SEND_ROUTING_INFO_FOR_SM: sri_sm_ssn,
                     Opcode.ANY_TIME_INTERROGATION: ati_ssn, Opcode.SEND_ROUTING_INFO: sri_ssn}
        self._versions: dict[tuple[str, int], int] = {}
        self._by_association: dict[object, set[bytes]] = {}
        self._templates: dict[tuple[int, int, bool], tuple[MapRoute, _SriSmBegin | None]] = {}
        # per route (by identity), for SRI-SM with sm-RP-PRI set: (route, the version the
        # next dialogue starts with, its template); emptied whenever a version changes
        self._sri_sm_next: dict[int, tuple[MapRoute, int, _SriSmBegin | None]] = {}
        self._shapes: dict[tuple[int, bytes], _EndShape] = {}  # learned SRI-SM Ends
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ wiring

    def attach(self, linkset) -> None:
        """Take the traffic of ``linkset``'s associations, and fail the dialogues of any
        association that leaves ASP-ACTIVE."""
        for assoc in linkset.members:
            assoc.on_payload = self.on_payload
        linkset.add_loss_listener(self._association_lost)

    def version_for(self, route: MapRoute, operation: int) -> int:
        """The context version the next dialogue of ``operation`` on ``route`` starts with."""
        return self._versions.get((route.name, operation), _HIGHEST[operation])

    @property
    def open_dialogues(self) -> int:
        return self.tm.open_dialogues

    def dialogues_on(self, association: object) -> int:
        """Dialogues in flight on ``association`` (to drain it before closing)."""
        return len(self._by_association.get(association, ()))

    def set_version(self, route: MapRoute, operation: int, version: int) -> None:
        """Start the dialogues of ``operation`` on ``route`` with context ``version`` (for
        partners known not to take the highest); a refusal still falls back from there."""
        self._versions[(route.name, operation)] = version
        self._sri_sm_next.clear()

    # ------------------------------------------------------------------ operations

    async def sri_sm(self, msisdn: str, route: MapRoute, *, sm_rp_pri: bool = True,
                     timeout: float | None = None) -> MapOutcome:
        """sendRoutingInfoForSM (TS 29.002 §12.1): IMSI and serving MSC of ``msisdn``."""
        loop = self._loop  # (_start, without its call)
        if loop is None or not loop.is_running():  # (get_running_loop costs a getpid call)
            loop = self._loop = asyncio.get_running_loop()
        nxt = self._sri_sm_next.get(id(route)) if sm_rp_pri is True else None
        if nxt is None or nxt[0] is not route:  # (the hot path: the version and template
            nxt = self._next_sri_sm(route, sm_rp_pri)  # in one look-up by the route's id)
        pending = _Pending(loop.create_future(), _SRI_SM, None, nxt[1], route, msisdn, timeout,
                           sm_rp_pri)
        self._begin(pending, loop.time(), nxt[2])
        return await pending.future

    def _next_sri_sm(self, route: MapRoute, sm_rp_pri: bool
                     ) -> tuple[MapRoute, int, _SriSmBegin | None]:
        """``(route, version, template)`` for the next SRI-SM on ``route``: the version from
        :meth:`version_for`, the template of that version (None: the general path);
        remembered for sm-RP-PRI set (the common case) until a version changes."""
        version = self._versions.get((route.name, _SRI_SM), _SRI_SM_HIGHEST)
        nxt = (route, version, self._template_for(route, version, sm_rp_pri))
        if sm_rp_pri is True:
            if len(self._sri_sm_next) >= 256:
                self._sri_sm_next.clear()
            self._sri_sm_next[id(route)] = nxt
        return nxt

    async def ati(self, msisdn: str, route: MapRoute, *,
                  requested: map_.RequestedInfo | None = None,
                  timeout: float | None = None) -> MapOutcome:
        """anyTimeInterrogation (TS 29.002 §8.11.1): location and subscriber state."""
        arg = map_.AnyTimeInterrogationArg(
            isdn(msisdn), requested or map_.RequestedInfo(location_information=True,
                                                          subscriber_state=True),
            self.gsmscf)
        return await self._start(Opcode.ANY_TIME_INTERROGATION, arg, msisdn, route, timeout)

    async def sri(self, msisdn: str, route: MapRoute, *,
                  interrogation_type: int = map_.InterrogationType.BASIC_CALL,
                  timeout: float | None = None) -> MapOutcome:
        """sendRoutingInfo (TS 29.002 §10.1): IMSI plus MSRN or forwarding data."""
        arg = map_.SendRoutingInfoArg(isdn(msisdn), interrogation_type=interrogation_type,
                                      gmsc_or_gsm_scf_address=self.smsc)
        return await self._start(Opcode.SEND_ROUTING_INFO, arg, msisdn, route, timeout)

    def _start(self, operation: Opcode, argument: object, msisdn: str, route: MapRoute,
               timeout: float | None, sm_rp_pri: bool = True) -> asyncio.Future[MapOutcome]:
        """Open the dialogue; the future the operation's caller awaits (a plain function, not a
        coroutine: one frame less to create and to resume per dialogue)."""
        loop = self._loop
        if loop is None or not loop.is_running():  # (get_running_loop costs a getpid call)
            loop = self._loop = asyncio.get_running_loop()
        pending = _Pending(loop.create_future(), operation, argument,
                           self._versions.get((route.name, operation), _HIGHEST[operation]),
                           route, msisdn, timeout, sm_rp_pri)
        self._begin(pending, loop.time())
        return pending.future

    def _argument(self, p: _Pending) -> object:
        """The operation's argument (an SRI-SM's is built here, when a template did not
        send it)."""
        arg = p.argument
        if arg is None:
            arg = p.argument = map_.RoutingInfoForSmArg(isdn(p.msisdn), p.sm_rp_pri, self.smsc)
        return arg

    def _addresses(self, p: _Pending) -> tuple[sccp.SccpAddress, sccp.SccpAddress]:
        """The dialogue's SCCP called and calling addresses, built when first needed."""
        called = p.called
        if called is None:
            route = p.route
            if route.hlr_gt:
                called = sccp.SccpAddress.e164(route.hlr_gt, route.hlr_ssn)
            else:  # addressed by the MSISDN: a new number each time, not worth memoising
                called = sccp.SccpAddress.e164(p.msisdn, route.hlr_ssn, memoise=False)
            p.called = called
        calling = p.calling
        if calling is None:
            calling = p.calling = sccp.SccpAddress.e164(p.route.calling_gt,
                                                        self._ssn[p.operation])
        return called, calling

    def _template(self, p: _Pending) -> _SriSmBegin | None:
        """The SRI-SM Begin template of ``p``'s route, version and sm-RP-PRI."""
        return self._template_for(p.route, p.version, p.sm_rp_pri)

    def _template_for(self, route: MapRoute, version: int, sm_rp_pri: bool
                      ) -> _SriSmBegin | None:
        """The SRI-SM Begin template of ``route``, ``version`` and ``sm_rp_pri`` (by the route
        object's identity: hashing a MapRoute would hash each of its fields)."""
        key = (id(route), version, sm_rp_pri)
        hit = self._templates.get(key)
        if hit is not None and hit[0] is route:
            return hit[1]
        tpl = _SriSmBegin.for_route(route, version, sm_rp_pri, self.smsc, self._ssn[_SRI_SM])
        if len(self._templates) >= 256:
            self._templates.clear()
        self._templates[key] = (route, tpl)
        return tpl

    # ------------------------------------------------------------------ sending

    def _begin(self, p: _Pending, now: float, tpl: _SriSmBegin | None = None) -> None:
        """Open ``p``'s dialogue and send its Begin; ``tpl``, when given, is the SRI-SM
        template of ``p``'s route, version and sm-RP-PRI (else looked up here)."""
        route = p.route
        if not route.linkset.is_up:
            self._fail(p, FailureKind.LINK_DOWN, f"link set {route.linkset.name} is down")
            return
        version = p.version
        operation = p.operation
        parts = None
        if operation is _SRI_SM and p.argument is None:  # the hot path: from a template
            if tpl is None:
                tpl = self._template(p)
            if tpl is not None:
                parts = tpl.parts(p.msisdn)
        try:
            if parts is not None:
                dialogue = self.tm.open(tpl.application_context, now, p.timeout, p)
                parts[3] = dialogue.otid  # (_SriSmBegin.OTID)
                payload = b"".join(parts)
            else:
                called, calling = self._addresses(p)
                pdu = None if version == 1 else _aarq(operation, version)
                parameter = map_.encode_argument(operation, self._argument(p), version)
                dialogue, data = self.tm.begin(pdu, [tcap.Invoke(1, operation, parameter)],
                                               now, p.timeout, p)
                payload = sccp.encode_unitdata(called, calling, data, 0, route.return_on_error)
        except TooManyDialogues as exc:
            self._fail(p, FailureKind.OVERLOAD, str(exc))
            return
        except CodecError as exc:
            self._fail(p, FailureKind.PROTOCOL, f"cannot encode the invoke: {exc}")
            return
        otid = dialogue.otid
        key = int.from_bytes(otid, "big")
        try:
            assoc = route.linkset.pick(key)
            send = getattr(assoc, "send_payload", None)
            if send is not None:
                send(route.opc, route.dpc, SI_SCCP, route.ni, 0, key & 0xFF, payload)
            else:  # (a link set member with only send())
                assoc.send(m3ua.ProtocolData(route.opc, route.dpc, SI_SCCP, route.ni, 0,
                                             key & 0xFF, payload))
        except Exception as exc:  # LinkSetDown, AspNotActive: the link went away
            self.tm.end(dialogue, None, [], now, prearranged=True)
            self._fail(p, FailureKind.LINK_DOWN, str(exc))
            return
        p.association = assoc
        ids = self._by_association.get(assoc)
        if ids is None:
            ids = self._by_association[assoc] = set()
        ids.add(otid)
        self.stats.begun += 1
        if self._timer_at is None or dialogue.deadline < self._timer_at:
            self._arm_timer()  # else the timer already set goes off before this deadline

    # ------------------------------------------------------------------ receiving

    def on_payload(self, assoc: object, data: m3ua.Data) -> None:
        """An M3UA DATA from one of our associations."""
        pd = data.protocol_data
        if pd.si != 3:
            return
        buf = pd.data
        # The hottest path: an SRI-SM's End of a shape learned from an earlier one (an HLR's
        # answers differ only in the numbers and the dtid), read by comparing octets.
        shape = (self._shapes.get((len(buf), buf[:9 + buf[3]]))
                 if len(buf) > 8 and type(buf) is bytes else None)
        if shape is not None:
            got = shape.read(buf)
            if got is None:
                shape.misses += 1
            else:
                dialogue = self.tm.take_end(got[0])
                if dialogue is not None:
                    p = dialogue.context
                    if type(p) is _Pending:
                        ids = self._by_association.get(p.association)  # (_forget)
                        if ids is not None:
                            ids.discard(dialogue.otid)
                        if p.operation is _SRI_SM:
                            self.stats.results += 1
                            future = p.future
                            if not future.done():
                                future.set_result(MapResult(_SRI_SM, got[1], p.version,
                                                            p.route.name))
                        else:  # (an SRI-SM's result for another operation)
                            self._answered(p, [tcap.ReturnResultLast(
                                1, _SRI_SM, buf[shape.i_at - 4:])])
                    if self._timer is None:
                        self._arm_timer()
                    return
        # The hot path: a UDT carrying the End with the result. Its addresses are checked
        # (sccp.unitdata_payload) but not built: nothing here needs them.
        payload = sccp.unitdata_payload(buf)
        if payload is not None:
            hit = self.tm.receive_result(payload, 0.0)  # (no timer to start: now unused)
            if hit is not None:
                dialogue = hit[0]
                p = dialogue.context
                if type(p) is _Pending:
                    ids = self._by_association.get(p.association)  # (_forget)
                    if ids is not None:
                        ids.discard(dialogue.otid)
                    try:  # (_result, without its call)
                        if p.operation is _SRI_SM:
                            value = map_.RoutingInfoForSmRes.decode(hit[3], p.version)
                        else:
                            value = map_.decode_result(p.operation, hit[3], p.version)
                    except CodecError as exc:
                        self._fail(p, FailureKind.PROTOCOL, f"answer did not decode: {exc}")
                    else:
                        if p.operation is _SRI_SM and buf[2] == 3 and (
                                shape is None or shape.misses >= _RELEARN):
                            self._learn(buf, payload, hit, value)
                        self.stats.results += 1
                        future = p.future
                        if not future.done():
                            future.set_result(MapResult(p.operation, value, p.version,
                                                        p.route.name))
                if self._timer is None:
                    self._arm_timer()
                return
        try:
            msg = sccp.decode(pd.data)
        except CodecError as exc:
            self.stats.sccp_undecodable += 1
            log.warning("undecodable SCCP from %s: %s", assoc, exc)
            return
        now = (self._loop or asyncio.get_running_loop()).time()
        kind = type(msg)
        if kind is sccp.Unitdata or kind is sccp.ExtendedUnitdata:
            events, replies = self.tm.receive(msg.data, now)
            for raw in replies:  # P-Aborts for unknown transactions
                try:
                    assoc.send(reply_data(pd, msg, raw))
                except Exception as exc:
                    log.debug("P-Abort not sent: %s", exc)
            for event in events:
                if type(event) is DialogueEnded:  # the hot path: the answer, in an End
                    dialogue = event.dialogue
                    p = dialogue.context
                    if type(p) is _Pending:
                        self._forget(dialogue)
                        self._answered(p, event.message.components)
                    continue
                self._event(event)
        else:  # UDTS/XUDTS: the network returned one of our Begins (Q.713 §4.11)
            self._returned(msg, now)
        if self._timer is None:
            self._arm_timer()  # (every _begin arms it; this only covers a timer not yet set)

    def _learn(self, buf: bytes, payload: bytes, hit: tuple, value: object) -> None:
        shape = _EndShape.learn(buf, payload, hit, value)
        if shape is not None:
            if len(self._shapes) >= _SHAPES_MAX:
                self._shapes.clear()
            self._shapes[(len(buf), buf[:9 + buf[3]])] = shape

    def _returned(self, msg: sccp.UnitdataService | sccp.ExtendedUnitdataService,
                  now: float) -> None:
        try:
            begin = tcap.decode(msg.data)
        except CodecError:
            return
        otid = getattr(begin, "otid", None)
        dialogue = self.tm.find(otid) if otid is not None else None
        if dialogue is None or not isinstance(dialogue.context, _Pending):
            return
        self.tm.abort_dialogues([dialogue], now, "returned by SCCP")
        self._forget(dialogue)
        self._fail(dialogue.context, FailureKind.SCCP_RETURN,
                   f"SCCP returned the message: {sccp.ReturnCause(msg.cause).name}",
                   int(msg.cause))

    def _event(self, event: object) -> None:
        dialogue: Dialogue = getattr(event, "dialogue", None)
        p = getattr(dialogue, "context", None)
        if not isinstance(p, _Pending):
            return
        kind = type(event)
        if kind is DialogueEnded:
            self._forget(dialogue)
            self._answered(p, event.message.components)
        elif kind is DialogueContinued:
            final = [c for c in event.message.components
                     if type(c) in (tcap.ReturnResultLast, tcap.ReturnError, tcap.Reject)]
            if final:  # answered in a Continue: take it and close our side
                now = asyncio.get_running_loop().time()
                self._send_end(dialogue, now)
                self._answered(p, final)
        elif kind is DialogueAborted:
            self._forget(dialogue)
            self._aborted(p, event)
        elif kind is DialogueTimedOut:
            self._forget(dialogue)
            self._fail(p, FailureKind.TIMEOUT, f"no answer within {p.timeout or self.timer_m} s")

    def _send_end(self, dialogue: Dialogue, now: float) -> None:
        p: _Pending = dialogue.context
        self._forget(dialogue)
        data = self.tm.end(dialogue, None, [], now)
        try:
            called, calling = self._addresses(p)
            p.association.send(protocol_data(p.route.opc, p.route.dpc, p.route.ni,
                                             dialogue.local_id, unitdata(called, calling,
                                                                         data, False)))
        except Exception as exc:
            log.debug("End not sent: %s", exc)

    def _answered(self, p: _Pending, components: list[tcap.Component]) -> None:
        for c in components:
            kind = type(c)
            try:
                if kind is tcap.ReturnResultLast:
                    if c.parameter is None:
                        break
                    value = map_.decode_result(p.operation, c.parameter, p.version)
                    self.stats.results += 1
                    _resolve(p, MapResult(p.operation, value, p.version, p.route.name))
                    return
                if kind is tcap.ReturnError:
                    err = map_.decode_error(c.error_code, c.parameter, p.version)
                    self.stats.user_errors += 1
                    _resolve(p, _user_error(p, err))
                    return
            except CodecError as exc:
                self._fail(p, FailureKind.PROTOCOL, f"answer did not decode: {exc}")
                return
            if kind is tcap.Reject:
                self._fail(p, FailureKind.REJECT,
                           f"component rejected: {c.problem_type.name} {_name(c.problem)}",
                           int(c.problem))
                return
        self._fail(p, FailureKind.PROTOCOL, "the dialogue ended without a result or error")

    def _aborted(self, p: _Pending, event: DialogueAborted) -> None:
        proposed = refused_context(event)
        if proposed is not None:
            found = map_.lookup_context(proposed)
            version = found[1] if found else None
            if version is not None and version < p.version and not p.retried:
                # TS 29.002 §15.2.4: retry once with the version the peer offers
                self._versions[(p.route.name, p.operation)] = version
                self._sri_sm_next.clear()
                self.stats.fallbacks += 1
                p.version, p.retried = version, True
                self._begin(p, asyncio.get_running_loop().time())
                return
            self._fail(p, FailureKind.CONTEXT_REFUSED,
                       f"application context v{p.version} refused, peer proposed {proposed}")
            return
        if event.reason is not None:  # decided by our transaction manager: malformed answer
            self._fail(p, FailureKind.PROTOCOL, event.reason)
        elif event.p_abort_cause is not None:
            self._fail(p, FailureKind.PROVIDER_ABORT,
                       f"P-Abort: {_name(event.p_abort_cause)}", int(event.p_abort_cause))
        else:
            pdu = event.dialogue_pdu
            why = f" ({pdu.abort_source.name})" if isinstance(pdu, tcap.DialogueAbort) else ""
            self._fail(p, FailureKind.ABORT, f"aborted by the peer{why}")

    def _association_lost(self, linkset, assoc) -> None:
        otids = self._by_association.pop(assoc, None)
        if not otids:
            return
        loop = self._loop or asyncio.get_event_loop()
        reason = f"association {assoc.name} lost"
        for event in self.tm.abort_dialogues(list(otids), loop.time(), reason):
            p = getattr(event.dialogue, "context", None)
            if isinstance(p, _Pending):  # the dialogues it carried fail at once
                self._fail(p, FailureKind.LINK_DOWN, reason)

    # ------------------------------------------------------------------ helpers

    def _forget(self, dialogue: Dialogue) -> None:
        p = dialogue.context
        ids = self._by_association.get(getattr(p, "association", None))
        if ids is not None:
            ids.discard(dialogue.otid)

    def _fail(self, p: _Pending, kind: FailureKind, detail: str, cause: int | None = None
              ) -> None:
        self.stats.failures[kind.value] = self.stats.failures.get(kind.value, 0) + 1
        _resolve(p, MapFailure(p.operation, kind, detail, p.version, p.route.name, cause))

    def _arm_timer(self) -> None:
        at = self.tm.get_timer()
        if at is None or (self._timer_at is not None and self._timer_at <= at):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = (self._loop or asyncio.get_running_loop()).call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        now = (self._loop or asyncio.get_event_loop()).time()
        events, aborts = self.tm.handle_timer(now)
        for dialogue, data in aborts:  # U-Aborts toward peers that knew our transaction
            p = dialogue.context
            try:
                called, calling = self._addresses(p)
                p.association.send(protocol_data(p.route.opc, p.route.dpc, p.route.ni,
                                                 dialogue.local_id,
                                                 unitdata(called, calling, data, False)))
            except Exception as exc:
                log.debug("U-Abort not sent: %s", exc)
        for event in events:
            self._event(event)
        self._arm_timer()


def _resolve(p: _Pending, outcome: MapOutcome) -> None:
    if not p.future.done():
        p.future.set_result(outcome)


def _name(code: int) -> str:
    return getattr(code, "name", str(code))


def _user_error(p: _Pending, err: map_.MapError) -> MapUserError:
    code = err.code
    name = code.name.lower() if isinstance(code, ErrorCode) else f"error_{code}"
    diagnostic = None
    for attr in _DIAGNOSTICS:
        value = getattr(err.param, attr, None)
        if value is not None:
            diagnostic = _name(value).lower()
            break
    return MapUserError(p.operation, int(code), name, err.param, diagnostic, p.version,
                        p.route.name)
