"""A simulated HLR: M3UA associations accepted in the SGP role (RFC 4666 §4.3, its own routing
context) carrying SCCP/TCAP to a :class:`~gateway.sigtran.map_responder.MapResponder` whose
handler answers from the subscriber model (:mod:`.model`) as a real HLR does:

- **sendRoutingInfoForSM** (TS 29.002 §12.1, v1 to v3): IMSI and networkNode-Number (the
  serving MSC); absentSubscriberSM with its diagnostic (v2/v3) or absentSubscriber (v1, which
  has no absentSubscriberSM); unknownSubscriber with its diagnostic; callBarred;
  teleserviceNotProvisioned; systemFailure (networkResource hlr).
- **anyTimeInterrogation** (TS 29.002 §8.11.1, v3): subscriberState and locationInformation
  (VLR number, cell global id, age of location) as requested, mnpInfoRes when asked for;
  netDetNotReachable with its reason for a detached subscriber; ati-NotAllowed where the network
  refuses ATI; unknownSubscriber; systemFailure.
- **sendRoutingInfo** (TS 29.002 §10.1, v1 to v3): IMSI and an MSRN from the serving network's
  rule, or forwarding data (CFU, or CFNRc when absent); absentSubscriber; the errors above.

**Versions.** A Begin whose application context is of a higher version than the answering
network serves is refused with an AARE proposing the highest it serves (TS 29.002 §15.2.1);
the client retries with that version.

**Which numbers.** A network's HLR answers the numbers of its own ranges (for a ported-out one,
as the recipient network's HLR would through the number portability relay, TS 23.066 §5) and
the numbers ported into it. Any other number is an unknownSubscriber. The hub answers every
number as the subscription network's HLR.

**Faults** (:mod:`.faults`) are applied here: a latency delays the answer (the handler returns
an awaitable), an answer fault replaces it (NoReply, UserAbort, ProviderAbort, a malformed raw
answer, an association reset); the association faults set the shared
:class:`~protocols.m3ua_asp.AspConfig` (``refuse_asp_active``, ``answer_heartbeat``), which
every association of the endpoint reads at each message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from gateway.sigtran.association import Association, AssociationServer
from gateway.sigtran.map_responder import (
    Answer,
    Invocation,
    MapResponder,
    NoReply,
    ProviderAbort,
    RawReply,
    RefuseContext,
    Reply,
    ReplyError,
    UserAbort,
)
from gateway.sigtran.transport import TransportKind, sctp_unavailable_reason
from protocols import m3ua, sccp, tcap
from protocols import map as map_
from protocols.errors import CodecError
from protocols.m3ua_asp import AspConfig, AspState, ProtocolViolation
from protocols.map import ErrorCode
from protocols.tbcd import AddressString, Imsi, isdn

from .config import Endpoint
from .faults import FaultKind, FaultSpec, MalformedVariant
from .model import (
    HIGHEST_VERSION,
    AtiState,
    ForwardWhen,
    Network,
    Operation,
    Status,
    Subscriber,
    absent_subscriber_reason,
    resolve,
)
from .state import SimState

__all__ = ["SimulatedHlr", "answer_for"]

log = logging.getLogger(__name__)

#: every operation is accepted up to v3 by the responder; refusal is per answering network
_RESPONDER_VERSIONS = {op.opcode: v for op, v in HIGHEST_VERSION.items()}

_ATI_STATES = {AtiState.ASSUMED_IDLE: map_.SubscriberState.ASSUMED_IDLE,
               AtiState.CAMEL_BUSY: map_.SubscriberState.CAMEL_BUSY,
               AtiState.NET_DET_NOT_REACHABLE: map_.SubscriberState.NET_DET_NOT_REACHABLE,
               AtiState.NOT_PROVIDED_FROM_VLR: map_.SubscriberState.NOT_PROVIDED_FROM_VLR}

# ForwardingOptions (TS 29.002 §17.7.4): bits 4-3 are the forwarding reason
_FWD_UNCONDITIONAL = 0b0000_1100
_FWD_NOT_REACHABLE = 0b0000_0000

# a MAP result no decoder accepts: a SEQUENCE holding a 1-octet IMSI (TS 23.003: 3 to 8)
_BAD_RESULT = bytes.fromhex("3003040121")
# not a TCAP message at all (no transaction portion a client could match)
_GARBAGE = bytes.fromhex("0feeddccbbaa99887766")


def _error_name(code: int) -> str:
    return ErrorCode(code).name.lower()


def answer_for(operation: Operation, invocation: Invocation, sub: Subscriber | None,
               network: Network | None, networks: dict[str, Network]) -> tuple[Answer, str]:
    """The answer an HLR of ``network`` (None: no network's, e.g. the hub for a number in no
    range) gives to ``invocation`` for ``sub`` (None: not a subscriber of this HLR), and the
    outcome name the counters use."""
    version = invocation.version
    if operation is Operation.ATI and network is not None and not network.ati_allowed:
        return ReplyError(ErrorCode.ATI_NOT_ALLOWED, map_.AtiNotAllowedParam()), "ati_not_allowed"
    if sub is None or sub.status is Status.UNKNOWN:
        diagnostic = (sub.unknown_diagnostic if sub is not None
                      else map_.UnknownSubscriberDiagnostic.IMSI_UNKNOWN)
        return (ReplyError(ErrorCode.UNKNOWN_SUBSCRIBER, map_.UnknownSubscriberParam(
            unknown_subscriber_diagnostic=diagnostic)), "unknown_subscriber")
    status = sub.status
    if status is Status.SYSTEM_FAILURE:
        return (ReplyError(ErrorCode.SYSTEM_FAILURE, map_.SystemFailureParam(
            map_.NetworkResource.HLR)), "system_failure")
    if operation is Operation.ATI:
        return _ati(invocation.argument, sub, networks), "result"
    if status is Status.BARRED:
        return (ReplyError(ErrorCode.CALL_BARRED, map_.CallBarredParam(
            call_barring_cause=sub.barring_cause)), "call_barred")
    if status is Status.TELESERVICE_NOT_PROVISIONED:
        return ReplyError(ErrorCode.TELESERVICE_NOT_PROVISIONED), "teleservice_not_provisioned"
    imsi = Imsi(sub.imsi)
    if operation is Operation.SRI_SM:
        if status is Status.ABSENT:
            if version == 1:  # absentSubscriberSM does not exist in phase 1 (GSM 09.02 v1)
                return (ReplyError(ErrorCode.ABSENT_SUBSCRIBER, map_.AbsentSubscriberParam(
                    mwd_set=True)), "absent_subscriber")
            return (ReplyError(ErrorCode.ABSENT_SUBSCRIBER_SM, map_.AbsentSubscriberSmParam(
                absent_subscriber_diagnostic_sm=sub.absent_diagnostic)), "absent_subscriber_sm")
        return Reply(map_.RoutingInfoForSmRes(imsi, map_.LocationInfoWithLmsi(
            network_node_number=isdn(sub.msc)))), "result"
    # sendRoutingInfo
    if sub.forward_to is not None and (
            sub.forward_when is ForwardWhen.UNCONDITIONAL or status is Status.ABSENT):
        options = (_FWD_UNCONDITIONAL if sub.forward_when is ForwardWhen.UNCONDITIONAL
                   else _FWD_NOT_REACHABLE)
        return Reply(map_.SendRoutingInfoRes(imsi=imsi, forwarding_data=map_.ForwardingData(
            forwarded_to_number=isdn(sub.forward_to), forwarding_options=options))), "result"
    if status is Status.ABSENT:
        return (ReplyError(ErrorCode.ABSENT_SUBSCRIBER, map_.AbsentSubscriberParam(
            absent_subscriber_reason=absent_subscriber_reason(sub.absent_diagnostic))),
            "absent_subscriber")
    return Reply(map_.SendRoutingInfoRes(
        imsi=imsi, roaming_number=isdn(sub.msrn),
        vmsc_address=isdn(sub.msc) if version >= 3 else None)), "result"


def _ati(arg: map_.AnyTimeInterrogationArg, sub: Subscriber,
         networks: dict[str, Network]) -> Reply:
    requested = arg.requested_info
    info = map_.SubscriberInfo()
    if requested.subscriber_state:
        info.subscriber_state = _ATI_STATES[sub.ati_state]
        if sub.ati_state is AtiState.NET_DET_NOT_REACHABLE:
            info.not_reachable_reason = sub.not_reachable_reason
    reason = sub.not_reachable_reason
    located = reason not in (map_.NotReachableReason.MS_PURGED,
                             map_.NotReachableReason.NOT_REGISTERED)
    if requested.location_information and located:
        loc = sub.location
        info.location_information = map_.LocationInformation(
            age_of_location_information=loc.age, vlr_number=isdn(sub.vlr),
            cell_global_id_or_service_area_id_or_lai=map_.CellGlobalIdOrServiceAreaIdOrLai(
                loc.mcc, loc.mnc, loc.lac, loc.cell_id))
    if requested.mnp_requested_info:
        status = (map_.NumberPortabilityStatus.FOREIGN_NUMBER_PORTED_IN if sub.ported
                  else map_.NumberPortabilityStatus.OWN_NUMBER_NOT_PORTED_OUT)
        info.mnp_info_res = map_.MnpInfoRes(
            routeing_number=networks[sub.network].routing_number, imsi=Imsi(sub.imsi),
            msisdn=isdn(sub.msisdn), number_portability_status=status)
    return Reply(map_.AnyTimeInterrogationRes(info))


class SimulatedHlr:
    """One simulated HLR endpoint (a network's HLR, or the hub): TCP (and SCTP) listeners in
    the SGP role, a :class:`MapResponder`, and the model it answers from."""

    def __init__(self, endpoint: Endpoint, state: SimState, *, host: str = "127.0.0.1",
                 port: int | None = None, heartbeat_interval: float = 0.0) -> None:
        self.endpoint = endpoint
        self.name = endpoint.name
        self.state = state
        self.host = host
        self._want_port = endpoint.port if port is None else port
        self.network: Network | None = (state.model.networks.get(endpoint.name)
                                        if endpoint.serves is not None else None)
        self.asp_config = AspConfig(routing_context=endpoint.routing_context,
                                    heartbeat_interval=heartbeat_interval,
                                    info_string=f"hlrgw simulator {endpoint.name}")
        self.responder = MapResponder(self._handle, max_versions=_RESPONDER_VERSIONS)
        self.servers: list[AssociationServer] = []
        self.sctp_port: int | None = None
        self.sctp_unavailable: str | None = None
        self.misrouted = 0
        self.resets = 0  # associations reset by the control API or a reset fault
        self.m3ua_errors: dict[str, int] = {}
        self._current: bytes | None = None  # the SCCP payload being answered
        self._delayed: set[asyncio.Task] = set()  # answers waiting out a latency fault
        state.on_faults_changed(self.apply_association_faults)

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        """The TCP port (after :meth:`start`)."""
        return self.servers[0].port if self.servers else self._want_port

    async def start(self) -> None:
        self.apply_association_faults()
        tcp = self._server(TransportKind.TCP, self._want_port)
        await tcp.start()
        self.servers.append(tcp)
        if self.endpoint.sctp:
            self.sctp_unavailable = sctp_unavailable_reason()
            if self.sctp_unavailable is None:
                sctp_server = self._server(TransportKind.SCTP, self._want_port)
                await sctp_server.start()
                self.servers.append(sctp_server)
                self.sctp_port = sctp_server.port
            else:
                log.info("simulator %s: M3UA over SCTP not offered: %s", self.name,
                         self.sctp_unavailable)
        log.info("simulator %s: HLR listening on %s:%d (GT %s, PC %d, RC %d)", self.name,
                 self.host, self.port, self.endpoint.gt, self.endpoint.point_code,
                 self.endpoint.routing_context)

    def _server(self, kind: TransportKind, port: int) -> AssociationServer:
        return AssociationServer(self.host, port, self.asp_config, transport=kind,
                                 name=f"hlr-{self.name}", on_payload=self._on_payload,
                                 on_event=self._on_event)

    async def close(self) -> None:
        """Drop the answers still waiting out a latency, then close every association."""
        for task in list(self._delayed):
            task.cancel()
        await asyncio.gather(*(s.close() for s in self.servers), return_exceptions=True)
        self.servers.clear()
        await self.responder.drain()

    async def _after(self, delay: float, answer: Answer) -> Answer:
        task = asyncio.current_task()
        if task is not None:
            self._delayed.add(task)
        try:
            await asyncio.sleep(delay)
        finally:
            self._delayed.discard(task)
        return answer

    # ------------------------------------------------------------------ associations

    @property
    def associations(self) -> list[Association]:
        return [a for s in self.servers for a in s.associations]

    def reset_associations(self) -> int:
        """Reset every association of this endpoint at once (no M3UA procedure; the clients
        reconnect). Returns how many were reset."""
        assocs = self.associations
        for a in assocs:
            a.reset()
        self.resets += len(assocs)
        return len(assocs)

    def apply_association_faults(self) -> None:
        """Set the ASP configuration from the association faults now in force."""
        faults = self.state.faults
        refuse = faults.association_fault(self.name, FaultKind.REFUSE_ASPAC)
        self.asp_config.refuse_asp_active = refuse.error_code if refuse is not None else None
        silent = faults.association_fault(self.name, FaultKind.HEARTBEAT_SILENCE)
        self.asp_config.answer_heartbeat = silent is None

    def info(self) -> dict[str, Any]:
        """The endpoint as the control API and the CLI show it."""
        e = self.endpoint
        return {
            "name": e.name, "operator": e.operator, "host": self.host, "port": self.port,
            "sctp_port": self.sctp_port,
            **({"sctp_unavailable": self.sctp_unavailable} if self.sctp_unavailable else {}),
            "gt": e.gt, "point_code": e.point_code, "routing_context": e.routing_context,
            "serves": sorted(e.serves) if e.serves is not None else "all",
            "associations": [{"peer": a.config.host + ":" + str(a.config.port),
                              "transport": a.config.transport.value, "state": a.state.name}
                             for a in self.associations],
        }

    def counters(self) -> dict[str, Any]:
        accepted = sum(s.accepted for s in self.servers)
        assocs = self.associations
        return {
            "dialogues": self.state.counters.by_endpoint().get(self.name, {}),
            "total": self.state.counters.total(self.name),
            "rejected": self.responder.stats.rejected,
            "misrouted": self.misrouted,
            "associations": {"accepted": accepted, "connected": len(assocs),
                             "active": sum(a.state is AspState.ACTIVE for a in assocs),
                             "reset": self.resets},
            "m3ua_errors_sent": dict(sorted(self.m3ua_errors.items())),
        }

    # ------------------------------------------------------------------ traffic

    def _on_event(self, assoc: Association, event: object) -> None:
        if isinstance(event, ProtocolViolation):
            name = getattr(event.code, "name", str(event.code)).lower()
            self.m3ua_errors[name] = self.m3ua_errors.get(name, 0) + 1

    def _on_payload(self, assoc: Association, data: m3ua.Data) -> None:
        pd = data.protocol_data
        if pd.dpc != self.endpoint.point_code:
            # an SG would route it elsewhere; this HLR is not its destination
            self.misrouted += 1
            if self.misrouted == 1 or self.misrouted % 1000 == 0:
                log.warning("simulator %s: DATA for DPC %d dropped (this HLR is PC %d); "
                            "%d so far", self.name, pd.dpc, self.endpoint.point_code,
                            self.misrouted)
            return
        self._current = pd.data
        try:
            self.responder.on_payload(assoc, data)
        finally:
            self._current = None

    def _handle(self, inv: Invocation) -> Answer | Awaitable[Answer]:
        """The responder's handler: runs synchronously inside :meth:`_on_payload`."""
        operation = Operation.for_opcode(inv.opcode)
        assert operation is not None  # the responder serves no other operation
        arg = inv.argument
        if operation is Operation.ATI:
            ident = arg.subscriber_identity
            number = ident.digits if isinstance(ident, AddressString) else ""
        else:
            number = arg.msisdn.digits
        state = self.state
        model = state.model
        sub = resolve(model, number, state.overrides) if number else None
        serves = self.endpoint.serves
        if sub is not None and serves is not None and not (
                sub.network in serves or sub.range_holder in serves):
            sub = None  # not a number of this HLR
        network = model.networks[sub.network] if sub is not None else self.network
        decision = state.faults.decide(self.name, number, operation)
        fault = decision.fault
        if fault is not None:
            answer, outcome = self._fault_answer(fault, inv)
        else:
            served = (network.max_versions[operation] if network is not None
                      else HIGHEST_VERSION[operation])
            if inv.version > served:
                answer, outcome = RefuseContext(served), "context_refused"
            else:
                answer, outcome = answer_for(operation, inv, sub, network, model.networks)
        state.counters.count(self.name, operation.value, outcome)
        if decision.delay > 0 and type(answer) is not NoReply:
            return self._after(decision.delay, answer)
        return answer

    # ------------------------------------------------------------------ faults

    def _fault_answer(self, fault: FaultSpec, inv: Invocation) -> tuple[Answer, str]:
        kind = fault.kind
        if kind is FaultKind.NO_ANSWER:
            return NoReply(), "no_answer"
        if kind is FaultKind.TCAP_ABORT:
            return UserAbort(), "tcap_abort"
        if kind is FaultKind.P_ABORT:
            return ProviderAbort(fault.cause), "p_abort"
        if kind is FaultKind.RESET:
            assoc = inv.association
            log.info("simulator %s: reset fault %s: resetting %s", self.name, fault.id, assoc)
            self.resets += 1
            assoc.reset()
            return NoReply(), "reset"
        return RawReply(self._malformed(fault.variant, inv)), "malformed"

    def _malformed(self, variant: MalformedVariant, inv: Invocation) -> bytes:
        """A malformed End for the dialogue being answered (its otid read back from the Begin
        this handler was called for)."""
        begin = None
        if self._current is not None and variant is not MalformedVariant.GARBAGE:
            try:
                begin = tcap.decode(sccp.decode(self._current).data)
            except CodecError:
                begin = None
        if not isinstance(begin, tcap.Begin):
            return _GARBAGE
        dtid = begin.otid
        if variant is MalformedVariant.BAD_TCAP:
            # End, dtid, then a component portion announcing 8 octets and holding 5
            body = bytes((0x49, len(dtid))) + dtid + bytes.fromhex("6c08a20602010102")[:7]
            return bytes((0x64, len(body))) + body
        pdu = begin.dialogue
        accepted = (tcap.DialogueResponse(pdu.application_context)
                    if isinstance(pdu, tcap.DialogueRequest) else None)
        return tcap.encode(tcap.End(dtid, accepted, [tcap.ReturnResultLast(
            inv.invoke_id, inv.opcode, _BAD_RESULT)]))
