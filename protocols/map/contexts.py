"""MAP application context names (TS 29.002 §17.3.3, MAP-ApplicationContexts).

Every name is ``map-ac`` = {itu-t(0) identified-organization(4) etsi(0) mobileDomain(0)
gsm-Network(1) ac-Id(0)}, then the context's number, then its version. Version 1 contexts
(GSM 09.02 phase 1) are never sent in a TCAP dialogue portion (a v1 dialogue has none, TS
29.002 §18.2.4) but are named so that a peer proposing one, or a trace, is understood.

The originator picks the highest version it supports; an Abort proposing a lower one makes it
retry with :func:`context_for` of that version (TS 29.002 §18.2.4 / §5.2, version fallback).
"""

from __future__ import annotations

from .codes import Opcode
from .common import err

MAP_AC = (0, 4, 0, 0, 1, 0)

SHORT_MSG_GATEWAY_CONTEXT = 20
LOCATION_INFO_RETRIEVAL_CONTEXT = 5
ANY_TIME_INFO_ENQUIRY_CONTEXT = 29
IMSI_RETRIEVAL_CONTEXT = 26

SHORT_MSG_GATEWAY_CONTEXT_V1 = (*MAP_AC, SHORT_MSG_GATEWAY_CONTEXT, 1)
SHORT_MSG_GATEWAY_CONTEXT_V2 = (*MAP_AC, SHORT_MSG_GATEWAY_CONTEXT, 2)
SHORT_MSG_GATEWAY_CONTEXT_V3 = (*MAP_AC, SHORT_MSG_GATEWAY_CONTEXT, 3)
LOCATION_INFO_RETRIEVAL_CONTEXT_V1 = (*MAP_AC, LOCATION_INFO_RETRIEVAL_CONTEXT, 1)
LOCATION_INFO_RETRIEVAL_CONTEXT_V2 = (*MAP_AC, LOCATION_INFO_RETRIEVAL_CONTEXT, 2)
LOCATION_INFO_RETRIEVAL_CONTEXT_V3 = (*MAP_AC, LOCATION_INFO_RETRIEVAL_CONTEXT, 3)
ANY_TIME_INFO_ENQUIRY_CONTEXT_V3 = (*MAP_AC, ANY_TIME_INFO_ENQUIRY_CONTEXT, 3)
IMSI_RETRIEVAL_CONTEXT_V2 = (*MAP_AC, IMSI_RETRIEVAL_CONTEXT, 2)

#: OID -> (context name as in TS 29.002 §17.3.3, version)
CONTEXTS: dict[tuple[int, ...], tuple[str, int]] = {
    SHORT_MSG_GATEWAY_CONTEXT_V1: ("shortMsgGatewayContext", 1),
    SHORT_MSG_GATEWAY_CONTEXT_V2: ("shortMsgGatewayContext", 2),
    SHORT_MSG_GATEWAY_CONTEXT_V3: ("shortMsgGatewayContext", 3),
    LOCATION_INFO_RETRIEVAL_CONTEXT_V1: ("locationInfoRetrievalContext", 1),
    LOCATION_INFO_RETRIEVAL_CONTEXT_V2: ("locationInfoRetrievalContext", 2),
    LOCATION_INFO_RETRIEVAL_CONTEXT_V3: ("locationInfoRetrievalContext", 3),
    ANY_TIME_INFO_ENQUIRY_CONTEXT_V3: ("anyTimeInfoEnquiryContext", 3),
    IMSI_RETRIEVAL_CONTEXT_V2: ("imsiRetrievalContext", 2),
}

#: operation -> {version: context OID} (TS 29.002 §17.3.3: the context each operation runs in)
_BY_OPERATION: dict[int, dict[int, tuple[int, ...]]] = {
    Opcode.SEND_ROUTING_INFO_FOR_SM: {
        1: SHORT_MSG_GATEWAY_CONTEXT_V1,
        2: SHORT_MSG_GATEWAY_CONTEXT_V2,
        3: SHORT_MSG_GATEWAY_CONTEXT_V3,
    },
    Opcode.SEND_ROUTING_INFO: {
        1: LOCATION_INFO_RETRIEVAL_CONTEXT_V1,
        2: LOCATION_INFO_RETRIEVAL_CONTEXT_V2,
        3: LOCATION_INFO_RETRIEVAL_CONTEXT_V3,
    },
    Opcode.ANY_TIME_INTERROGATION: {3: ANY_TIME_INFO_ENQUIRY_CONTEXT_V3},
    Opcode.SEND_IMSI: {2: IMSI_RETRIEVAL_CONTEXT_V2},
}


def lookup_context(oid: tuple[int, ...]) -> tuple[str, int] | None:
    """``(name, version)`` of a known application context name, or None."""
    return CONTEXTS.get(tuple(oid))


def context_versions(opcode: int) -> tuple[int, ...]:
    """Versions an operation is defined in, highest first (empty if none is known here)."""
    return tuple(sorted(_BY_OPERATION.get(opcode, {}), reverse=True))


def context_for(opcode: int, version: int) -> tuple[int, ...]:
    """The application context name an operation is sent in at ``version``.

    Raises :class:`~protocols.errors.CodecError` when the operation has no context of that
    version (e.g. anyTimeInterrogation below v3).
    """
    try:
        return _BY_OPERATION[opcode][version]
    except KeyError:
        raise err("application-context-name", 0,
                  f"no application context for operation {opcode} version {version}") from None
