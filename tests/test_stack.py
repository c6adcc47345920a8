"""Every shared vector through the whole stack (M3UA -> SCCP -> TCAP -> MAP) as one message."""

from __future__ import annotations

import pytest

from protocols import m3ua, sccp, tcap
from protocols.errors import CodecError, Layer
from protocols.stack import decode_stack
from tests.vectors import VECTORS


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_layers_nest_and_rebuild_byte_for_byte(name: str) -> None:
    vector = VECTORS[name]
    stack = decode_stack(vector.m3ua)
    if vector.sccp is None:
        assert stack.sccp is None and stack.tcap is None
        assert m3ua.encode(stack.m3ua) == vector.m3ua
        return
    assert stack.m3ua.protocol_data.data == vector.sccp
    assert stack.sccp.data == vector.tcap
    # rebuild from the typed values, innermost first
    t = tcap.encode(stack.tcap)
    assert t == vector.tcap
    s = sccp.encode(stack.sccp)
    assert s == vector.sccp
    assert m3ua.encode(stack.m3ua) == vector.m3ua
    components = getattr(stack.tcap, "components", [])
    assert len(stack.operations) == len(components)


def test_map_versions_follow_the_dialogue() -> None:
    assert decode_stack(VECTORS["srism_v2_begin"].m3ua).map_version == 2
    assert decode_stack(VECTORS["srism_v3_begin"].m3ua).map_version == 3


def _at(what: str) -> int:
    """Where a known part of the srism_v3_begin vector sits in the M3UA message."""
    v = VECTORS["srism_v3_begin"]
    tcap_at = v.m3ua.index(v.tcap)
    return {"m3ua length": 4, "sccp type": v.m3ua.index(v.sccp),
            "tcap external": tcap_at + 10,  # 62 47 48 04 <otid> 6b 1e [28] ...
            "map msisdn": v.m3ua.index(bytes.fromhex("914477000910")) + 2}[what]


@pytest.mark.parametrize(("what", "value", "layer"), [
    ("m3ua length", 0x7F, Layer.M3UA), ("sccp type", 0x07, Layer.SCCP),
    ("tcap external", 0x05, Layer.TCAP), ("map msisdn", 0xFF, Layer.MAP)])
def test_a_fault_is_reported_by_the_layer_that_holds_it(what: str, value: int,
                                                         layer: Layer) -> None:
    wire = bytearray(VECTORS["srism_v3_begin"].m3ua)
    wire[_at(what)] = value
    with pytest.raises(CodecError) as info:
        decode_stack(bytes(wire))
    assert info.value.layer is layer
