"""TCAP messages, dialogue portion and components (ITU-T Q.773), sans-IO.

Transaction portion (Q.773 §4.2, Table 8): Unidirectional, Begin, Continue, End, Abort with
originating/destination transaction ids of 1 to 4 octets and a P-Abort cause. Dialogue
portion (Q.773 §4.2.3 and the Dialogue-as / Unidialogue-as modules of Table 49): an EXTERNAL
carrying an AARQ, AARE, ABRT (structured dialogue) or AUDT (unstructured). Component portion
(Q.773 §4.2.2, Table 20): Invoke, ReturnResultLast, ReturnResultNotLast, ReturnError, Reject.

A component's parameter is kept as the whole TLV it came in (or is to be sent in); the MAP
codec (:mod:`protocols.map`) reads and writes those bytes per operation.

Dialogue portions repeat from one dialogue to the next (one per application context), so
their encodings and decodings are memoised: the dialogue PDUs are frozen and hashable.

Hot path: a MAP dialogue is a Begin with one Invoke and an End with one ReturnResultLast.
:func:`_encode_simple` writes such a message in one go and :func:`_decode_simple` reads one
in place; anything else, or anything wrong, takes the general encoder and decoder, which the
tests hold the shortcuts to (same bytes, same values, same errors).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from .ber import (
    UNIVERSAL_EXTERNAL,
    UNIVERSAL_INTEGER,
    UNIVERSAL_NULL,
    UNIVERSAL_OID,
    UNIVERSAL_SEQUENCE,
    decode_integer,
    decode_oid,
    encode_integer,
    encode_oid,
    read_tlv,
    tlv,
)
from .errors import CodecError, Layer

# --------------------------------------------------------------------------- tags (Q.773)

TAG_UNIDIRECTIONAL = 0x61
TAG_BEGIN = 0x62
TAG_END = 0x64
TAG_CONTINUE = 0x65
TAG_ABORT = 0x67
TAG_OTID = 0x48
TAG_DTID = 0x49
TAG_P_ABORT_CAUSE = 0x4A
TAG_DIALOGUE_PORTION = 0x6B
TAG_COMPONENTS = 0x6C

TAG_INVOKE = 0xA1
TAG_RETURN_RESULT_LAST = 0xA2
TAG_RETURN_ERROR = 0xA3
TAG_REJECT = 0xA4
TAG_RETURN_RESULT_NOT_LAST = 0xA7
TAG_LINKED_ID = 0x80

TAG_AARQ = 0x60  # also AUDT under the unidialogue abstract syntax
TAG_AARE = 0x61
TAG_ABRT = 0x64
TAG_PROTOCOL_VERSION = 0x80
TAG_ACN = 0xA1
TAG_RESULT = 0xA2
TAG_RESULT_SOURCE_DIAGNOSTIC = 0xA3
TAG_ABORT_SOURCE = 0x80
TAG_USER_INFORMATION = 0xBE
TAG_SINGLE_ASN1_TYPE = 0xA0

DIALOGUE_AS_ID = (0, 0, 17, 773, 1, 1, 1)  # Q.773 Table 49: dialogue-as-id
UNIDIALOGUE_AS_ID = (0, 0, 17, 773, 1, 2, 1)  # Q.773 Table 49: uniDialogue-as-id

_PROTOCOL_VERSION1 = b"\x80\x02\x07\x80"  # [0] BIT STRING { version1 } : 7 unused bits, 0x80


class PAbortCause(enum.IntEnum):
    """P-AbortCause (Q.773 §4.2.1, Table 12)."""

    UNRECOGNIZED_MESSAGE_TYPE = 0
    UNRECOGNIZED_TRANSACTION_ID = 1
    BADLY_FORMATTED_TRANSACTION_PORTION = 2
    INCORRECT_TRANSACTION_PORTION = 3
    RESOURCE_LIMITATION = 4


class AssociateResult(enum.IntEnum):
    """Associate-result of an AARE (Q.773 Table 49)."""

    ACCEPTED = 0
    REJECT_PERMANENT = 1


class DiagnosticSource(enum.IntEnum):
    """Which side the AARE's result-source-diagnostic comes from (tag number, Q.773 Table 49)."""

    DIALOGUE_SERVICE_USER = 1
    DIALOGUE_SERVICE_PROVIDER = 2


class ServiceUserDiagnostic(enum.IntEnum):
    """dialogue-service-user diagnostic values (Q.773 Table 49)."""

    NULL = 0
    NO_REASON_GIVEN = 1
    APPLICATION_CONTEXT_NAME_NOT_SUPPORTED = 2


class ServiceProviderDiagnostic(enum.IntEnum):
    """dialogue-service-provider diagnostic values (Q.773 Table 49)."""

    NULL = 0
    NO_REASON_GIVEN = 1
    NO_COMMON_DIALOGUE_PORTION = 2


class AbortSource(enum.IntEnum):
    """ABRT-source (Q.773 Table 49)."""

    DIALOGUE_SERVICE_USER = 0
    DIALOGUE_SERVICE_PROVIDER = 1


class ProblemType(enum.IntEnum):
    """Which problem a Reject carries: the tag number of the Problem choice (Q.773 Table 20)."""

    GENERAL = 0
    INVOKE = 1
    RETURN_RESULT = 2
    RETURN_ERROR = 3


class GeneralProblem(enum.IntEnum):
    """GeneralProblem (Q.773 §3.2.2.2.1)."""

    UNRECOGNIZED_COMPONENT = 0
    MISTYPED_COMPONENT = 1
    BADLY_STRUCTURED_COMPONENT = 2


class InvokeProblem(enum.IntEnum):
    """InvokeProblem (Q.773 §3.2.2.2.2)."""

    DUPLICATE_INVOKE_ID = 0
    UNRECOGNIZED_OPERATION = 1
    MISTYPED_PARAMETER = 2
    RESOURCE_LIMITATION = 3
    INITIATING_RELEASE = 4
    UNRECOGNIZED_LINKED_ID = 5
    LINKED_RESPONSE_UNEXPECTED = 6
    UNEXPECTED_LINKED_OPERATION = 7


class ReturnResultProblem(enum.IntEnum):
    """ReturnResultProblem (Q.773 §3.2.2.2.3)."""

    UNRECOGNIZED_INVOKE_ID = 0
    RETURN_RESULT_UNEXPECTED = 1
    MISTYPED_PARAMETER = 2


class ReturnErrorProblem(enum.IntEnum):
    """ReturnErrorProblem (Q.773 §3.2.2.2.4)."""

    UNRECOGNIZED_INVOKE_ID = 0
    RETURN_ERROR_UNEXPECTED = 1
    UNRECOGNIZED_ERROR = 2
    UNEXPECTED_ERROR = 3
    MISTYPED_PARAMETER = 4


_PROBLEM_ENUMS: dict[int, type[enum.IntEnum]] = {
    ProblemType.GENERAL: GeneralProblem,
    ProblemType.INVOKE: InvokeProblem,
    ProblemType.RETURN_RESULT: ReturnResultProblem,
    ProblemType.RETURN_ERROR: ReturnErrorProblem,
}


def _enum(kind: type[enum.IntEnum], value: int) -> int:
    """The enum member for a known value, else the plain int (values may grow)."""
    try:
        return kind(value)
    except ValueError:
        return value


# --------------------------------------------------------------------------- dialogue PDUs

@dataclass(slots=True, frozen=True)
class DialogueRequest:
    """AARQ-apdu (Q.773 Table 49): sent in the Begin that opens a dialogue."""

    application_context: tuple[int, ...]
    user_information: bytes | None = None  # contents of [30] (EXTERNALs), kept raw
    protocol_version1: bool = True


@dataclass(slots=True, frozen=True)
class DialogueResponse:
    """AARE-apdu (Q.773 Table 49): the answer to an AARQ, in Continue, End or Abort.

    ``diagnostic`` is a :class:`ServiceUserDiagnostic` or :class:`ServiceProviderDiagnostic`
    according to ``diagnostic_source``.
    """

    application_context: tuple[int, ...]
    result: AssociateResult = AssociateResult.ACCEPTED
    diagnostic_source: DiagnosticSource = DiagnosticSource.DIALOGUE_SERVICE_USER
    diagnostic: int = 0
    user_information: bytes | None = None
    protocol_version1: bool = True


@dataclass(slots=True, frozen=True)
class DialogueAbort:
    """ABRT-apdu (Q.773 Table 49): a user or provider abort of the dialogue."""

    abort_source: AbortSource = AbortSource.DIALOGUE_SERVICE_USER
    user_information: bytes | None = None


@dataclass(slots=True, frozen=True)
class UnidialoguePdu:
    """AUDT-apdu (Q.773 Table 49, Unidialogue-as): dialogue info of a Unidirectional."""

    application_context: tuple[int, ...]
    user_information: bytes | None = None
    protocol_version1: bool = True


DialoguePdu = DialogueRequest | DialogueResponse | DialogueAbort | UnidialoguePdu


# --------------------------------------------------------------------------- components

OperationCode = int | tuple[int, ...]  # local INTEGER or global OBJECT IDENTIFIER (Q.773)


@dataclass(slots=True)
class Invoke:
    """Invoke component (Q.773 Table 20)."""

    invoke_id: int
    opcode: OperationCode
    parameter: bytes | None = None  # the parameter's whole TLV
    linked_id: int | None = None


@dataclass(slots=True)
class ReturnResultLast:
    """ReturnResultLast component; ``opcode``/``parameter`` absent when there is no result."""

    invoke_id: int
    opcode: OperationCode | None = None
    parameter: bytes | None = None


@dataclass(slots=True)
class ReturnResultNotLast:
    """ReturnResultNotLast component (a segment of a result, Q.773 §3.1.4)."""

    invoke_id: int
    opcode: OperationCode | None = None
    parameter: bytes | None = None


@dataclass(slots=True)
class ReturnError:
    """ReturnError component (Q.773 Table 20)."""

    invoke_id: int
    error_code: OperationCode
    parameter: bytes | None = None


@dataclass(slots=True)
class Reject:
    """Reject component; ``invoke_id`` is None when not derivable (Q.773 Table 20)."""

    invoke_id: int | None
    problem_type: ProblemType
    problem: int


Component = Invoke | ReturnResultLast | ReturnResultNotLast | ReturnError | Reject


# --------------------------------------------------------------------------- messages

@dataclass(slots=True)
class Unidirectional:
    """Unidirectional message (Q.773 §4.2.1): components with no transaction."""

    components: list[Component] = field(default_factory=list)
    dialogue: UnidialoguePdu | None = None


@dataclass(slots=True)
class Begin:
    """Begin (Q.773 §4.2.1): opens a transaction with the originating transaction id."""

    otid: bytes
    dialogue: DialoguePdu | None = None
    components: list[Component] = field(default_factory=list)


@dataclass(slots=True)
class Continue:
    """Continue (Q.773 §4.2.1): both transaction ids."""

    otid: bytes
    dtid: bytes
    dialogue: DialoguePdu | None = None
    components: list[Component] = field(default_factory=list)


@dataclass(slots=True)
class End:
    """End (Q.773 §4.2.1): closes the transaction named by the destination id."""

    dtid: bytes
    dialogue: DialoguePdu | None = None
    components: list[Component] = field(default_factory=list)


@dataclass(slots=True)
class Abort:
    """Abort (Q.773 §4.2.1).

    A P-Abort carries ``p_abort_cause``; a U-Abort carries a dialogue portion (an ABRT, or
    an AARE refusing the dialogue, TS 29.002 §12.1) or nothing at all.
    """

    dtid: bytes
    p_abort_cause: int | None = None
    dialogue: DialoguePdu | None = None


Message = Unidirectional | Begin | Continue | End | Abort

# --------------------------------------------------------------------------- encoding


def _err(field_: str, offset: int, reason: str) -> CodecError:
    return CodecError(Layer.TCAP, field_, offset, reason)


def _tid(tag: int, tid: bytes, name: str) -> bytes:
    n = len(tid)
    if not 1 <= n <= 4:
        raise _err(name, 0, f"transaction id of {n} octets (must be 1 to 4)")
    return bytes((tag, n)) + tid


def _opcode(code: OperationCode) -> bytes:
    if type(code) is int or isinstance(code, int):
        return tlv(UNIVERSAL_INTEGER, encode_integer(code))
    return tlv(UNIVERSAL_OID, encode_oid(code))


@lru_cache(maxsize=512)
def encode_dialogue_portion(pdu: DialoguePdu) -> bytes:
    """The whole dialogue portion TLV (``6b ...``) for a dialogue PDU (Q.773 §4.2.3)."""
    pv = _PROTOCOL_VERSION1 if getattr(pdu, "protocol_version1", False) else b""
    ui = b""
    if pdu.user_information is not None:
        ui = tlv(TAG_USER_INFORMATION, pdu.user_information)
    if isinstance(pdu, DialogueRequest):
        body = tlv(TAG_AARQ, pv + tlv(TAG_ACN, tlv(UNIVERSAL_OID, encode_oid(
            pdu.application_context))) + ui)
        asid = DIALOGUE_AS_ID
    elif isinstance(pdu, DialogueResponse):
        body = tlv(TAG_AARE, pv
                   + tlv(TAG_ACN, tlv(UNIVERSAL_OID, encode_oid(pdu.application_context)))
                   + tlv(TAG_RESULT, tlv(UNIVERSAL_INTEGER, encode_integer(pdu.result)))
                   + tlv(TAG_RESULT_SOURCE_DIAGNOSTIC, tlv(
                       0xA0 | pdu.diagnostic_source,
                       tlv(UNIVERSAL_INTEGER, encode_integer(pdu.diagnostic))))
                   + ui)
        asid = DIALOGUE_AS_ID
    elif isinstance(pdu, DialogueAbort):
        body = tlv(TAG_ABRT, tlv(TAG_ABORT_SOURCE, encode_integer(pdu.abort_source)) + ui)
        asid = DIALOGUE_AS_ID
    elif isinstance(pdu, UnidialoguePdu):
        body = tlv(TAG_AARQ, pv + tlv(TAG_ACN, tlv(UNIVERSAL_OID, encode_oid(
            pdu.application_context))) + ui)
        asid = UNIDIALOGUE_AS_ID
    else:
        raise _err("dialogue portion", 0, f"not a dialogue PDU: {type(pdu).__name__}")
    external = tlv(UNIVERSAL_OID, encode_oid(asid)) + tlv(TAG_SINGLE_ASN1_TYPE, body)
    return tlv(TAG_DIALOGUE_PORTION, tlv(UNIVERSAL_EXTERNAL, external))


def encode_component(c: Component) -> bytes:
    """One component TLV (Q.773 Table 20)."""
    t = type(c)
    if t is Invoke:
        body = tlv(UNIVERSAL_INTEGER, encode_integer(c.invoke_id))
        if c.linked_id is not None:
            body += tlv(TAG_LINKED_ID, encode_integer(c.linked_id))
        body += _opcode(c.opcode)
        if c.parameter is not None:
            body += c.parameter
        return tlv(TAG_INVOKE, body)
    if t is ReturnResultLast or t is ReturnResultNotLast:
        body = tlv(UNIVERSAL_INTEGER, encode_integer(c.invoke_id))
        if c.opcode is not None:
            inner = _opcode(c.opcode)
            if c.parameter is not None:
                inner += c.parameter
            body += tlv(UNIVERSAL_SEQUENCE, inner)
        return tlv(TAG_RETURN_RESULT_LAST if t is ReturnResultLast
                   else TAG_RETURN_RESULT_NOT_LAST, body)
    if t is ReturnError:
        body = tlv(UNIVERSAL_INTEGER, encode_integer(c.invoke_id)) + _opcode(c.error_code)
        if c.parameter is not None:
            body += c.parameter
        return tlv(TAG_RETURN_ERROR, body)
    if t is Reject:
        iid = (b"\x05\x00" if c.invoke_id is None
               else tlv(UNIVERSAL_INTEGER, encode_integer(c.invoke_id)))
        return tlv(TAG_REJECT, iid + tlv(0x80 | c.problem_type, encode_integer(c.problem)))
    raise _err("component", 0, f"not a component: {t.__name__}")


def _components(components: list[Component]) -> bytes:
    if not components:
        return b""
    return tlv(TAG_COMPONENTS, b"".join([encode_component(c) for c in components]))


# Dialogue portions by the identity of their PDU: encode_dialogue_portion's lru_cache hashes
# the frozen PDU (a Python-level __hash__ over its fields) on every call, while senders reuse
# one PDU object per application context. Entries hold the PDU, so its id stays its own.
_DP_BY_ID: dict[int, tuple[DialoguePdu, bytes]] = {}
_DP_BY_ID_MAX = 256


def _dialogue_portion(pdu: DialoguePdu) -> bytes:
    hit = _DP_BY_ID.get(id(pdu))
    if hit is not None and hit[0] is pdu:
        return hit[1]
    dp = encode_dialogue_portion(pdu)
    if len(_DP_BY_ID) >= _DP_BY_ID_MAX:
        _DP_BY_ID.clear()
    _DP_BY_ID[id(pdu)] = (pdu, dp)
    return dp


def _encode_simple(tag: int, tid: bytes, pdu: DialoguePdu | None,
                   components: Sequence[Component]) -> bytes | None:
    """A Begin (``tag`` 0x62, ``tid`` the otid) or an End (0x64, the dtid) written directly,
    when it holds one component that is an Invoke without linked id or a ReturnResultLast
    with a result, whose invoke id fits one octet (-128..127) and whose operation code is
    local and 0..127 (every MAP operation). The same bytes as :func:`_encode` (checked by the
    tests); None for any other message, or an invalid one (the general encoder then says
    why). The hot path of :func:`encode` and of the transaction manager, which calls it
    without building the message."""
    if (type(components) is not list and type(components) is not tuple) or len(components) != 1:
        return None
    c = components[0]
    t = type(c)
    if t is Invoke:
        if c.linked_id is not None:
            return None
    elif t is not ReturnResultLast:
        return None
    iid = c.invoke_id
    op = c.opcode
    p = c.parameter
    if (type(tid) is not bytes or not 1 <= len(tid) <= 4 or not isinstance(op, int)
            or not isinstance(iid, int) or not 0 <= op < 0x80 or not -0x80 <= iid < 0x80):
        return None  # (isinstance: an IntEnum operation code is welcome)
    if p is None:
        p = b""
    elif type(p) is not bytes:
        return None
    dp = b"" if pdu is None else _dialogue_portion(pdu)
    k = len(tid)
    m = len(p)
    tid_tag = TAG_OTID if tag == TAG_BEGIN else TAG_DTID
    if t is Invoke:  # a1 {02 01 id, 02 01 op, parameter}
        n = 12 + k + len(dp) + m
        if n < 0x80:  # every length in one octet
            return (bytes((tag, n, tid_tag, k)) + tid + dp
                    + bytes((TAG_COMPONENTS, m + 8, TAG_INVOKE, m + 6, UNIVERSAL_INTEGER, 1,
                             iid & 0xFF, UNIVERSAL_INTEGER, 1, op)) + p)
        comp = tlv(TAG_INVOKE, bytes((UNIVERSAL_INTEGER, 1, iid & 0xFF, UNIVERSAL_INTEGER, 1,
                                      op)) + p)
    else:  # a2 {02 01 id, 30 {02 01 op, parameter}}
        n = 14 + k + len(dp) + m
        if n < 0x80:
            return (bytes((tag, n, tid_tag, k)) + tid + dp
                    + bytes((TAG_COMPONENTS, m + 10, TAG_RETURN_RESULT_LAST, m + 8,
                             UNIVERSAL_INTEGER, 1, iid & 0xFF, UNIVERSAL_SEQUENCE, m + 3,
                             UNIVERSAL_INTEGER, 1, op)) + p)
        comp = tlv(TAG_RETURN_RESULT_LAST, bytes((UNIVERSAL_INTEGER, 1, iid & 0xFF)) + tlv(
            UNIVERSAL_SEQUENCE, bytes((UNIVERSAL_INTEGER, 1, op)) + p))
    return tlv(tag, bytes((tid_tag, k)) + tid + dp + tlv(TAG_COMPONENTS, comp))


def encode_end_result(dtid: bytes, pdu: DialoguePdu | None, invoke_id: int, opcode: int,
                      parameter: bytes | None) -> bytes:
    """An End holding one ReturnResultLast: the same bytes, and the same errors, as
    ``encode(End(dtid, pdu, [ReturnResultLast(invoke_id, opcode, parameter)]))`` (the tests
    compare), written directly in the common case (the hot path of an answering TC-user)."""
    if (type(dtid) is bytes and 1 <= len(dtid) <= 4 and type(invoke_id) is int
            and -0x80 <= invoke_id < 0x80 and isinstance(opcode, int) and 0 <= opcode < 0x80
            and type(parameter) is bytes):
        dp = b"" if pdu is None else _dialogue_portion(pdu)
        k = len(dtid)
        m = len(parameter)
        n = 14 + k + len(dp) + m
        if n < 0x80:
            return b"".join((bytes((TAG_END, n, TAG_DTID, k)), dtid, dp,
                             bytes((TAG_COMPONENTS, m + 10, TAG_RETURN_RESULT_LAST, m + 8,
                                    UNIVERSAL_INTEGER, 1, invoke_id & 0xFF, UNIVERSAL_SEQUENCE,
                                    m + 3, UNIVERSAL_INTEGER, 1, opcode)), parameter))
    return encode(End(dtid, pdu, [ReturnResultLast(invoke_id, opcode, parameter)]))


def encode(msg: Message) -> bytes:
    """Encode a TCAP message (Q.773 §4.2)."""
    t = type(msg)
    if t is Begin:
        data = _encode_simple(TAG_BEGIN, msg.otid, msg.dialogue, msg.components)
        if data is not None:
            return data
    elif t is End:
        data = _encode_simple(TAG_END, msg.dtid, msg.dialogue, msg.components)
        if data is not None:
            return data
    return _encode(msg)


def _encode(msg: Message) -> bytes:
    """The general encoder (every message, every component)."""
    t = type(msg)
    dp = b"" if msg.dialogue is None else _dialogue_portion(msg.dialogue)
    if t is Begin:
        return tlv(TAG_BEGIN, _tid(TAG_OTID, msg.otid, "otid") + dp + _components(msg.components))
    if t is End:
        return tlv(TAG_END, _tid(TAG_DTID, msg.dtid, "dtid") + dp + _components(msg.components))
    if t is Continue:
        return tlv(TAG_CONTINUE, _tid(TAG_OTID, msg.otid, "otid") + _tid(TAG_DTID, msg.dtid, "dtid")
                   + dp + _components(msg.components))
    if t is Abort:
        if msg.p_abort_cause is not None:
            if msg.dialogue is not None:
                raise _err("Abort", 0, "a P-Abort cause and a dialogue portion are exclusive")
            reason = tlv(TAG_P_ABORT_CAUSE, encode_integer(msg.p_abort_cause))
        else:
            reason = dp
        return tlv(TAG_ABORT, _tid(TAG_DTID, msg.dtid, "dtid") + reason)
    if t is Unidirectional:
        if not msg.components:
            raise _err("Unidirectional", 0, "a Unidirectional needs at least one component")
        return tlv(TAG_UNIDIRECTIONAL, dp + _components(msg.components))
    raise _err("message", 0, f"not a TCAP message: {t.__name__}")


# --------------------------------------------------------------------------- decoding

def _read_tid(buf: bytes, vs: int, ve: int, name: str) -> bytes:
    if not 1 <= ve - vs <= 4:
        raise _err(name, vs, f"transaction id of {ve - vs} octets (must be 1 to 4)")
    return buf[vs:ve]


def _small_int(buf: bytes, pos: int, end: int, name: str) -> tuple[int, int]:
    """An INTEGER TLV at ``pos``; the one-octet form (``02 01 xx``) is read inline."""
    if pos >= end:
        raise _err(name, pos, "missing")
    if pos + 3 <= end and buf[pos] == UNIVERSAL_INTEGER and buf[pos + 1] == 1:
        v = buf[pos + 2]
        return (v - 256 if v & 0x80 else v), pos + 3
    tag, vs, ve, pos = read_tlv(buf, pos, end)
    if tag != UNIVERSAL_INTEGER:
        raise _err(name, vs, f"expected INTEGER, found tag {tag:#x}")
    return decode_integer(buf, vs, ve, name), pos


def _code(buf: bytes, pos: int, end: int, name: str) -> tuple[OperationCode, int]:
    """A local (INTEGER) or global (OBJECT IDENTIFIER) operation or error code."""
    if pos < end and buf[pos] == UNIVERSAL_OID:
        _, vs, ve, pos = read_tlv(buf, pos, end)
        return decode_oid(buf, vs, ve), pos
    return _small_int(buf, pos, end, name)


def _parameter(buf: bytes, pos: int, end: int) -> bytes | None:
    """The optional trailing parameter TLV of a component, which must end it."""
    if pos >= end:
        return None
    _, _, _, nxt = read_tlv(buf, pos, end)
    if nxt != end:
        raise _err("parameter", nxt, f"{end - nxt} octets after the parameter")
    return buf[pos:end]


def _decode_component(buf: bytes, tag: int, vs: int, ve: int) -> Component:
    if tag == TAG_INVOKE:
        iid, pos = _small_int(buf, vs, ve, "invokeID")
        linked = None
        if pos < ve and buf[pos] == TAG_LINKED_ID:
            _, s, e, pos = read_tlv(buf, pos, ve)
            linked = decode_integer(buf, s, e, "linkedID")
        opcode, pos = _code(buf, pos, ve, "opcode")
        return Invoke(iid, opcode, _parameter(buf, pos, ve), linked)
    if tag == TAG_RETURN_RESULT_LAST or tag == TAG_RETURN_RESULT_NOT_LAST:
        iid, pos = _small_int(buf, vs, ve, "invokeID")
        opcode = param = None
        if pos < ve:
            t, s, e, nxt = read_tlv(buf, pos, ve)
            if t != UNIVERSAL_SEQUENCE:
                raise _err("result", s, f"expected SEQUENCE, found tag {t:#x}")
            if nxt != ve:
                raise _err("result", nxt, f"{ve - nxt} octets after the result")
            opcode, p2 = _code(buf, s, e, "opcode")
            param = _parameter(buf, p2, e)
        cls = ReturnResultLast if tag == TAG_RETURN_RESULT_LAST else ReturnResultNotLast
        return cls(iid, opcode, param)
    if tag == TAG_RETURN_ERROR:
        iid, pos = _small_int(buf, vs, ve, "invokeID")
        code, pos = _code(buf, pos, ve, "errorCode")
        return ReturnError(iid, code, _parameter(buf, pos, ve))
    if tag == TAG_REJECT:
        t, s, e, pos = read_tlv(buf, vs, ve)
        if t == UNIVERSAL_INTEGER:
            iid = decode_integer(buf, s, e, "invokeID")
        elif t == UNIVERSAL_NULL:
            iid = None
        else:
            raise _err("invokeID", s, f"Reject invoke id tag {t:#x}")
        t, s, e, pos = read_tlv(buf, pos, ve)
        ptype = t & 0x1F
        if t & 0xE0 != 0x80 or ptype > 3:
            raise _err("problem", s, f"unknown problem tag {t:#x}")
        if pos != ve:
            raise _err("Reject", pos, f"{ve - pos} octets after the problem")
        return Reject(iid, ProblemType(ptype),
                      _enum(_PROBLEM_ENUMS[ptype], decode_integer(buf, s, e, "problem")))
    raise _err("component", vs, f"unknown component tag {tag:#x}")


# decoded dialogue portions, keyed by their bytes (frozen values: safe to share)
_DIALOGUE_CACHE: dict[bytes, DialoguePdu] = {}
_DIALOGUE_CACHE_MAX = 1024


def _decode_dialogue_portion(buf: bytes, vs: int, ve: int) -> DialoguePdu:
    key = buf[vs:ve]
    pdu = _DIALOGUE_CACHE.get(key)
    if pdu is None:
        pdu = _parse_dialogue_portion(buf, vs, ve)
        if len(_DIALOGUE_CACHE) >= _DIALOGUE_CACHE_MAX:
            _DIALOGUE_CACHE.clear()
        _DIALOGUE_CACHE[key] = pdu
    return pdu


def _parse_dialogue_portion(buf: bytes, vs: int, ve: int) -> DialoguePdu:
    tag, s, e, _ = read_tlv(buf, vs, ve)
    if tag != UNIVERSAL_EXTERNAL:
        raise _err("dialoguePortion", vs, f"expected EXTERNAL, found tag {tag:#x}")
    asid = None
    pos = s
    body = None
    while pos < e:
        t, s2, e2, pos = read_tlv(buf, pos, e)
        if t == UNIVERSAL_OID:
            asid = decode_oid(buf, s2, e2)
        elif t == TAG_SINGLE_ASN1_TYPE:
            body = (s2, e2)
        # indirect-reference and data-value-descriptor (X.690 §8.18) carry nothing for TCAP
    if asid not in (DIALOGUE_AS_ID, UNIDIALOGUE_AS_ID):
        raise _err("dialoguePortion.direct-reference", s, f"unknown abstract syntax {asid}")
    if body is None:
        raise _err("dialoguePortion.encoding", s, "no single-ASN1-type dialogue PDU")
    t, s, e, _ = read_tlv(buf, body[0], body[1])
    pv = False
    acn: tuple[int, ...] | None = None
    ui = None
    result = None
    diag_src = diag = None
    abort_source = None
    pos = s
    while pos < e:
        t2, s2, e2, pos = read_tlv(buf, pos, e)
        if t2 == TAG_PROTOCOL_VERSION:
            if t != TAG_ABRT:
                pv = buf[s2:e2] == b"\x07\x80"
                if not pv:
                    raise _err("protocol-version", s2, f"unsupported {buf[s2:e2].hex()}")
            else:
                abort_source = decode_integer(buf, s2, e2, "abort-source")
        elif t2 == TAG_ACN:
            t3, s3, e3, _ = read_tlv(buf, s2, e2)
            if t3 != UNIVERSAL_OID:
                raise _err("application-context-name", s3, f"expected OID, found {t3:#x}")
            acn = decode_oid(buf, s3, e3)
        elif t2 == TAG_RESULT:
            t3, s3, e3, _ = read_tlv(buf, s2, e2)
            result = decode_integer(buf, s3, e3, "result")
        elif t2 == TAG_RESULT_SOURCE_DIAGNOSTIC:
            t3, s3, e3, _ = read_tlv(buf, s2, e2)
            diag_src = t3 & 0x1F
            if t3 & 0xE0 != 0xA0 or diag_src not in (1, 2):
                raise _err("result-source-diagnostic", s3, f"unknown choice tag {t3:#x}")
            t4, s4, e4, _ = read_tlv(buf, s3, e3)
            diag = decode_integer(buf, s4, e4, "result-source-diagnostic")
        elif t2 == TAG_USER_INFORMATION:
            ui = buf[s2:e2]
        # anything else (e.g. later additions) is skipped
    if t == TAG_ABRT and asid == DIALOGUE_AS_ID:
        if abort_source is None:
            raise _err("ABRT.abort-source", s, "missing")
        return DialogueAbort(_enum(AbortSource, abort_source), ui)
    if acn is None:
        raise _err("application-context-name", s, "missing")
    if t == TAG_AARQ:
        if asid == UNIDIALOGUE_AS_ID:
            return UnidialoguePdu(acn, ui, pv)
        return DialogueRequest(acn, ui, pv)
    if t == TAG_AARE and asid == DIALOGUE_AS_ID:
        if result is None or diag_src is None:
            raise _err("AARE", s, "result or result-source-diagnostic missing")
        kind = ServiceUserDiagnostic if diag_src == 1 else ServiceProviderDiagnostic
        return DialogueResponse(acn, _enum(AssociateResult, result), DiagnosticSource(diag_src),
                                _enum(kind, diag), ui, pv)
    raise _err("dialogue PDU", body[0], f"unknown dialogue PDU tag {t:#x}")


_COMPONENT_NAMES = {TAG_INVOKE: "Invoke", TAG_RETURN_RESULT_LAST: "ReturnResultLast",
                    TAG_RETURN_ERROR: "ReturnError", TAG_REJECT: "Reject",
                    TAG_RETURN_RESULT_NOT_LAST: "ReturnResultNotLast"}


def _decode_components(buf: bytes, vs: int, ve: int) -> list[Component]:
    out = []
    pos = vs
    while pos < ve:
        t = buf[pos]
        if pos + 1 < ve and buf[pos + 1] < 0x80:  # short form, inline (component tags are 1 octet)
            s = pos + 2
            pos = e = s + buf[pos + 1]
            if e > ve:
                t, s, e, pos = read_tlv(buf, s - 2, ve)  # raises with the offset
        else:
            t, s, e, pos = read_tlv(buf, pos, ve)
        try:
            out.append(_decode_component(buf, t, s, e))
        except CodecError as exc:
            name = _COMPONENT_NAMES.get(t, "component")
            raise _err(f"components[{len(out)}] {name}: {exc.field}", exc.offset,
                       exc.reason) from None
    return out


def _decode_simple(buf: bytes) -> Begin | End | None:
    """The hot path of :func:`decode`: a Begin or an End, all in short-form lengths, made of
    the transaction id, a dialogue portion already in the cache (or none) and one component,
    an Invoke (no linked id) or a ReturnResultLast with a result, whose invoke id and local
    operation code are one-octet INTEGERs and whose parameter, if any, is one TLV ending the
    message. None for anything else, well-formed or not: :func:`_decode` then reads it and
    finds any fault. Never raises; where it answers, it answers what :func:`_decode` would
    (checked by the tests)."""
    r = _read_simple(buf)
    if r is None:
        return None
    tag, tid, dialogue, ctag, iid, op, param = r
    if ctag == TAG_INVOKE:
        comp: Component = Invoke(iid, op, param)
    else:
        comp = ReturnResultLast(iid, op, param)
    if tag == TAG_BEGIN:
        return Begin(tid, dialogue, [comp])
    return End(tid, dialogue, [comp])


_OCTETS4 = struct.Struct("4B")
_OCTETS10 = struct.Struct("10B")


def _read_simple(buf: bytes) -> tuple[int, bytes, DialoguePdu | None, int, int, int,
                                      bytes | None] | None:
    """:func:`_decode_simple`'s reading, without building the message: ``(message tag,
    transaction id, dialogue PDU, component tag, invoke id, operation code, parameter)``, or
    None (the transaction manager's hot paths take these fields as they are)."""
    n = len(buf)
    if n < 10 or n > 0x81:
        return None
    # (the octets at fixed places read by one struct call each: fewer bytecodes than indexing)
    tag, ln, tid_tag, k = _OCTETS4.unpack_from(buf)
    if ln != n - 2:  # one TLV, short-form length
        return None
    if tag == TAG_BEGIN:
        if tid_tag != TAG_OTID:
            return None
    elif tag != TAG_END or tid_tag != TAG_DTID:
        return None
    pos = 4 + k
    if not 5 <= pos <= 8:  # a transaction id of 1 to 4 octets
        return None
    tid = buf[4:pos]
    dialogue = None
    if buf[pos] == TAG_DIALOGUE_PORTION:
        end = pos + 2 + buf[pos + 1]  # pos + 1 < n: pos <= 8 < n
        if end > n - 10:  # leave room for the smallest component portion
            return None
        dialogue = _DIALOGUE_CACHE.get(buf[pos + 2:end])
        if dialogue is None:
            return None
        pos = end
    if pos + 10 > n:  # 10: 6c 08 a1 06 02 01 id 02 01 op, the smallest component portion
        return None
    c = pos + 2  # the component's tag; it must fill the component portion, which ends buf
    (portion, lp, ctag, lc, int_tag, int_len, iid, o7, o8, o9) = _OCTETS10.unpack_from(buf, pos)
    if (portion != TAG_COMPONENTS or lp != n - c or lc != n - c - 2
            or int_tag != UNIVERSAL_INTEGER or int_len != 1):
        return None
    if iid & 0x80:
        iid -= 256
    if ctag == TAG_INVOKE:
        if o7 != UNIVERSAL_INTEGER or o8 != 1:
            return None
        op = o9
        p = c + 8
    elif ctag == TAG_RETURN_RESULT_LAST:
        if (n - c < 10 or o7 != UNIVERSAL_SEQUENCE or o8 != n - c - 7
                or o9 != UNIVERSAL_INTEGER or buf[c + 8] != 1):
            return None
        op = buf[c + 9]
        p = c + 10
    else:
        return None
    if op & 0x80:
        op -= 256
    if p == n:
        param = None
    elif p + 2 <= n and buf[p] & 0x1F != 0x1F and buf[p + 1] == n - p - 2:
        param = buf[p:]
    else:
        return None
    return tag, tid, dialogue, ctag, iid, op, param


def decode(buf: bytes) -> Message:
    """Decode one TCAP message; raises :class:`CodecError` (layer TCAP) on any fault."""
    if type(buf) is not bytes:
        buf = bytes(buf)
    msg = _decode_simple(buf)
    if msg is not None:
        return msg
    return _decode_general(buf)


def _decode_general(buf: bytes) -> Message:
    """:func:`decode` without the shortcut: every message, every fault named."""
    try:
        return _decode(buf)
    except CodecError as exc:
        if exc.layer is Layer.TCAP:
            raise
        raise _err(exc.field, exc.offset, exc.reason) from None
    except (IndexError, ValueError, TypeError, KeyError, OverflowError) as exc:
        raise _err("message", 0, f"malformed: {exc}") from None


def _decode(buf: bytes) -> Message:
    end = len(buf)
    tag, vs, ve, nxt = read_tlv(buf, 0, end)
    if nxt != end:
        raise _err("message", nxt, f"{end - nxt} octets after the message")
    otid = dtid = None
    dialogue = None
    components: list[Component] = []
    cause = None
    pos = vs
    while pos < ve:
        t = buf[pos]
        if pos + 1 < ve and buf[pos + 1] < 0x80 and t & 0x1F != 0x1F:  # short form, inline
            s = pos + 2
            pos = e = s + buf[pos + 1]
            if e > ve:
                t, s, e, pos = read_tlv(buf, s - 2, ve)  # raises with the offset
        else:
            t, s, e, pos = read_tlv(buf, pos, ve)
        if t == TAG_OTID:
            otid = _read_tid(buf, s, e, "otid")
        elif t == TAG_DTID:
            dtid = _read_tid(buf, s, e, "dtid")
        elif t == TAG_COMPONENTS:
            components = _decode_components(buf, s, e)
        elif t == TAG_DIALOGUE_PORTION:
            try:
                dialogue = _decode_dialogue_portion(buf, s, e)
            except CodecError as exc:
                raise _err(f"dialoguePortion: {exc.field}", exc.offset, exc.reason) from None
        elif t == TAG_P_ABORT_CAUSE:
            cause = decode_integer(buf, s, e, "p-abortCause")
            if not 0 <= cause <= 127:
                raise _err("p-abortCause", s, f"value {cause} outside 0..127")
            cause = _enum(PAbortCause, cause)
        else:
            raise _err("transaction portion", s, f"unexpected tag {t:#x}")
    if tag == TAG_BEGIN:
        if otid is None:
            raise _err("otid", vs, "Begin without originating transaction id")
        return Begin(otid, dialogue, components)
    if tag == TAG_END:
        if dtid is None:
            raise _err("dtid", vs, "End without destination transaction id")
        return End(dtid, dialogue, components)
    if tag == TAG_CONTINUE:
        if otid is None or dtid is None:
            raise _err("otid/dtid", vs, "Continue needs both transaction ids")
        return Continue(otid, dtid, dialogue, components)
    if tag == TAG_ABORT:
        if dtid is None:
            raise _err("dtid", vs, "Abort without destination transaction id")
        if components:
            raise _err("components", vs, "an Abort carries no components")
        return Abort(dtid, cause, dialogue)
    if tag == TAG_UNIDIRECTIONAL:
        if not components:
            raise _err("components", vs, "Unidirectional without components")
        if dialogue is not None and not isinstance(dialogue, UnidialoguePdu):
            raise _err("dialoguePortion", vs, "Unidirectional needs a unidialogue PDU")
        return Unidirectional(components, dialogue)
    raise _err("message type", 0, f"unknown TCAP message tag {tag:#x}")
