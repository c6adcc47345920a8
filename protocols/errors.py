"""The one error type every decoder in :mod:`protocols` raises on malformed input."""

from __future__ import annotations

import enum


class Layer(enum.StrEnum):
    """Protocol layer a codec error belongs to."""

    BER = "BER"
    TBCD = "TBCD"
    M3UA = "M3UA"
    SCCP = "SCCP"
    TCAP = "TCAP"
    MAP = "MAP"
    SIP = "SIP"


class CodecError(ValueError):
    """Malformed or unencodable data.

    Names the layer, the field and the byte offset (from the start of the buffer that
    layer's decoder was given) so an operator can find the fault in a trace.
    No other exception type ever escapes a decoder.
    """

    __slots__ = ("layer", "field", "offset", "reason")

    def __init__(self, layer: Layer, field: str, offset: int, reason: str) -> None:
        self.layer = layer
        self.field = field
        self.offset = offset
        self.reason = reason
        super().__init__(f"{layer.value}: {field} at offset {offset}: {reason}")

    def __reduce__(self):  # keep pickling (multiprocessing, logging) intact
        return (type(self), (self.layer, self.field, self.offset, self.reason))
