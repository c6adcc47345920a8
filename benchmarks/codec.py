"""Codec benchmark: our hand-written TCAP/MAP BER codec against pycrate, in one run.

    .venv/bin/python benchmarks/codec.py [--iterations N]

For the SRI-SM v3 Begin and its End with result (the shared conformance vectors), it
times, per message:
  * TCAP+MAP decode: bytes -> TCAP message -> typed MAP argument/result
    (pycrate: TCAP_MAP_Message.from_ber + get_val, which decodes the MAP parameter too);
  * TCAP+MAP encode: typed values -> bytes (pycrate: set_val + to_ber);
  * the whole stack, M3UA/SCCP/TCAP/MAP decode and encode, ours alone, for scale;
and prints microseconds per message for each side and the ratio pycrate/ours. Goal
(issue: codecs): ours at least 20 times faster than pycrate for both encode and decode.

The same message over and over lets the codecs' small memo tables (dialogue portions,
addresses) hit every time, as they do for the gateway's own GT and SMSC address but not for
the subscriber's number. So the ``*_distinct`` rows repeat the test with the SRI-SM Begin for
20,000 different MSISDNs (more than the memo tables hold), which is what a gateway sees.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._timing import per_call_us  # noqa: E402
from protocols import m3ua, sccp, tcap  # noqa: E402
from protocols import map as map_  # noqa: E402
from protocols.tbcd import isdn  # noqa: E402

VECTORS = Path(__file__).resolve().parent.parent / "tests" / "conformance" / "vectors.json"
GOAL = 20.0


def _vectors() -> dict[str, bytes]:
    raw = json.loads(VECTORS.read_text())["vectors"]
    return {v["name"]: bytes.fromhex(v["m3ua"]) for v in raw}


def _ours_tcap_map(wire: bytes):
    """Closures decoding and encoding one TCAP message whose single component carries MAP."""
    msg = tcap.decode(wire)
    comp = msg.components[0]
    opcode = comp.opcode
    if isinstance(comp, tcap.Invoke):
        value = map_.decode_argument(opcode, comp.parameter)

        def decode() -> object:
            m = tcap.decode(wire)
            c = m.components[0]
            return m, map_.decode_argument(c.opcode, c.parameter)

        def encode() -> bytes:
            return tcap.encode(tcap.Begin(msg.otid, msg.dialogue, [tcap.Invoke(
                comp.invoke_id, opcode, map_.encode_argument(opcode, value))]))
    else:
        value = map_.decode_result(opcode, comp.parameter)

        def decode() -> object:
            m = tcap.decode(wire)
            c = m.components[0]
            return m, map_.decode_result(c.opcode, c.parameter)

        def encode() -> bytes:
            return tcap.encode(tcap.End(msg.dtid, msg.dialogue, [tcap.ReturnResultLast(
                comp.invoke_id, opcode, map_.encode_result(opcode, value))]))
    assert encode() == wire, "our encoder must reproduce the vector"
    return decode, encode


def _ours_stack(wire: bytes):
    """Closures for the whole M3UA -> SCCP -> TCAP -> MAP message, both directions."""
    data = m3ua.decode(wire)
    udt = sccp.decode(data.protocol_data.data)
    tcap_decode, tcap_encode = _ours_tcap_map(udt.data)
    pd = data.protocol_data

    def decode() -> object:
        d = m3ua.decode(wire)
        u = sccp.decode(d.protocol_data.data)
        m = tcap.decode(u.data)
        c = m.components[0]
        if isinstance(c, tcap.Invoke):
            return map_.decode_argument(c.opcode, c.parameter)
        return map_.decode_result(c.opcode, c.parameter)

    def encode() -> bytes:
        u = sccp.Unitdata(udt.called, udt.calling, tcap_encode(), udt.protocol_class,
                          udt.return_on_error)
        return m3ua.encode(m3ua.Data(
            routing_context=data.routing_context,
            protocol_data=m3ua.ProtocolData(pd.opc, pd.dpc, pd.si, pd.ni, pd.mp, pd.sls,
                                            sccp.encode(u))))
    assert encode() == wire
    return decode, encode


def _pycrate(wire_tcap: bytes):
    from pycrate_asn1dir import TCAP_MAPv2v3

    pdu = TCAP_MAPv2v3.TCAP_MAP_Messages.TCAP_MAP_Message
    pdu.from_ber(wire_tcap)
    value = pdu.get_val()

    def decode() -> object:
        pdu.from_ber(wire_tcap)
        return pdu.get_val()

    def encode() -> bytes:
        pdu.set_val(value)
        return pdu.to_ber()
    assert encode() == wire_tcap, "pycrate must reproduce the vector too"
    return decode, encode


def _distinct_begins(count: int) -> list[bytes]:
    """The SRI-SM v3 Begin (TCAP) for ``count`` different MSISDNs."""
    base = tcap.decode(sccp.decode(m3ua.decode(_vectors()["srism_v3_begin"]).protocol_data.data)
                       .data)
    arg = map_.decode_argument(45, base.components[0].parameter)
    out = []
    for i in range(count):
        arg.msisdn = isdn(f"4477{i:08d}")
        out.append(tcap.encode(tcap.Begin(base.otid, base.dialogue, [tcap.Invoke(
            1, 45, map_.encode_argument(45, arg))])))
    return out


def _distinct_rows(n_ours: int, n_pyc: int) -> float:
    """Decode and encode rows over distinct numbers; returns the lower ratio."""
    from pycrate_asn1dir import TCAP_MAPv2v3

    pdu = TCAP_MAPv2v3.TCAP_MAP_Messages.TCAP_MAP_Message
    wires = _distinct_begins(20000)
    ours_values = []
    theirs_values = []
    for w in wires[: max(n_pyc, 200)]:
        pdu.from_ber(w)
        theirs_values.append(pdu.get_val())
    for w in wires:
        m = tcap.decode(w)
        ours_values.append((m, map_.decode_argument(45, m.components[0].parameter)))
    it = _cycle(wires)
    it_p = _cycle(wires[: len(theirs_values)])
    values = _cycle(ours_values)
    pvalues = _cycle(theirs_values)

    def ours_decode() -> object:
        m = tcap.decode(next(it))
        return map_.decode_argument(45, m.components[0].parameter)

    def theirs_decode() -> object:
        pdu.from_ber(next(it_p))
        return pdu.get_val()

    def ours_encode() -> bytes:
        m, arg = next(values)
        return tcap.encode(tcap.Begin(m.otid, m.dialogue, [tcap.Invoke(
            1, 45, map_.encode_argument(45, arg))]))

    def theirs_encode() -> bytes:
        pdu.set_val(next(pvalues))
        return pdu.to_ber()

    worst = float("inf")
    for op, o, p in (("decode", ours_decode, theirs_decode),
                     ("encode", ours_encode, theirs_encode)):
        us_o = per_call_us(o, n_ours)
        us_p = per_call_us(p, n_pyc)
        worst = min(worst, us_p / us_o)
        print(f"{'srism_v3_begin':<22}{op + '_dist':<8}{us_o:>10.2f}{us_p:>12.1f}"
              f"{us_p / us_o:>7.1f}x  (20,000 distinct MSISDNs)")
    return worst


def _cycle(items: list):
    while True:
        yield from items


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=20000, help="calls per timing (ours)")
    args = ap.parse_args(argv)
    n_ours = args.iterations
    n_pyc = max(200, n_ours // 50)
    vectors = _vectors()
    print(f"python {platform.python_version()} on {platform.machine()}; best of 5 runs; "
          f"{n_ours} calls (ours), {n_pyc} calls (pycrate)")
    print(f"{'message':<22}{'op':<8}{'ours us':>10}{'pycrate us':>12}{'ratio':>8}"
          f"  goal >= {GOAL:g}x")
    worst = float("inf")
    for name in ("srism_v3_begin", "srism_v3_end_result"):
        wire = vectors[name]
        tcap_wire = sccp.decode(m3ua.decode(wire).protocol_data.data).data
        ours = _ours_tcap_map(tcap_wire)
        theirs = _pycrate(tcap_wire)
        for op, o, p in (("decode", ours[0], theirs[0]), ("encode", ours[1], theirs[1])):
            us_o = per_call_us(o, n_ours)
            us_p = per_call_us(p, n_pyc)
            ratio = us_p / us_o
            worst = min(worst, ratio)
            print(f"{name:<22}{op:<8}{us_o:>10.2f}{us_p:>12.1f}{ratio:>7.1f}x")
        stack = _ours_stack(wire)
        print(f"{name:<22}{'stack':<8}{per_call_us(stack[0], n_ours):>10.2f}"
              f"{'':>12}{'':>8}  M3UA+SCCP+TCAP+MAP decode (ours)")
        print(f"{name:<22}{'stack':<8}{per_call_us(stack[1], n_ours):>10.2f}"
              f"{'':>12}{'':>8}  M3UA+SCCP+TCAP+MAP encode (ours)")
    worst = min(worst, _distinct_rows(n_ours, n_pyc))
    verdict = "met" if worst >= GOAL else "NOT met"
    print(f"lowest ratio {worst:.1f}x: goal of {GOAL:g}x {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
