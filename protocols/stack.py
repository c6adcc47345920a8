"""Decode one M3UA message through every layer: M3UA -> SCCP -> TCAP -> MAP.

For tools that show or check a whole message (``hlrgw decode``, traces, tests). The hot path
calls the layer codecs directly and decodes only what it needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import m3ua, sccp, tcap
from . import map as map_
from .errors import CodecError


@dataclass(slots=True)
class DecodedStack:
    """Each layer's decoded value; a layer the message does not carry is None.

    ``operations`` holds, per component, the MAP value its parameter decodes to (argument,
    result or :class:`~protocols.map.MapError`), or None for a component with nothing to
    decode; ``map_version`` is the version the dialogue's application context names (3 when
    the message carries no context).
    """

    m3ua: m3ua.Message
    sccp: sccp.SccpMessage | None = None
    tcap: tcap.Message | None = None
    operations: list[object] = field(default_factory=list)
    map_version: int = 3


def decode_stack(buf: bytes) -> DecodedStack:
    """Decode as deep as the message goes; raises :class:`CodecError` naming the layer."""
    out = DecodedStack(m3ua.decode(buf))
    if not isinstance(out.m3ua, m3ua.Data) or out.m3ua.protocol_data.si != 3:
        return out
    out.sccp = sccp.decode(out.m3ua.protocol_data.data)
    out.tcap = tcap.decode(out.sccp.data)
    dialogue = out.tcap.dialogue
    context = getattr(dialogue, "application_context", None)
    found = map_.lookup_context(context) if context else None
    if found is not None:
        out.map_version = found[1]
    for component in getattr(out.tcap, "components", ()):
        out.operations.append(_operation(component, out.map_version))
    return out


def _operation(c: tcap.Component, version: int) -> object:
    if isinstance(c, tcap.Invoke) and c.parameter is not None:
        return map_.decode_argument(c.opcode, c.parameter, version)
    if isinstance(c, (tcap.ReturnResultLast, tcap.ReturnResultNotLast)) and c.parameter:
        return map_.decode_result(c.opcode, c.parameter, version)
    if isinstance(c, tcap.ReturnError) and isinstance(c.error_code, int):
        return map_.decode_error(c.error_code, c.parameter, version)
    return None


__all__ = ["CodecError", "DecodedStack", "decode_stack"]
