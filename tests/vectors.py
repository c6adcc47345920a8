"""The shared conformance vectors (whole M3UA messages checked in Wireshark).

``tests/conformance/vectors.json`` is a copy of ``../shared/conformance/vectors.json`` so the
suite runs from a plain clone; ``test_vectors_copy_is_current`` fails if the two drift.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOCAL = HERE / "conformance" / "vectors.json"
SHARED = HERE.parent.parent / "shared" / "conformance" / "vectors.json"


@dataclass(slots=True, frozen=True)
class Vector:
    name: str
    note: str
    m3ua: bytes
    sccp: bytes | None
    tcap: bytes | None


def load() -> dict[str, Vector]:
    raw = json.loads(LOCAL.read_text())
    out = {}
    for v in raw["vectors"]:
        out[v["name"]] = Vector(
            v["name"], v["note"], bytes.fromhex(v["m3ua"]),
            bytes.fromhex(v["sccp"]) if v["sccp"] else None,
            bytes.fromhex(v["tcap"]) if v["tcap"] else None,
        )
    return out


VECTORS = load()
IDS = json.loads(LOCAL.read_text())["ids"]
