"""Faults a simulated HLR can be told to show, and the seeded randomness behind them.

A :class:`FaultSpec` has a **kind**, a **scope** and the kind's parameters. Scopes, most
specific first: one ``number``; a ``prefix`` (a range, or any block of numbers); a ``network``
(every dialogue that network's HLR endpoint receives, or ``hub`` for the hub's); or, with none
of the three, every endpoint. ``operations`` limits a fault to some MAP operations and
``probability`` makes it fire on only part of the dialogues.

Dialogue faults, decided per TCAP dialogue (the most specific matching fault of each group
wins; a latency applies before whatever answer follows):

- ``latency``: delay the answer (``fixed``, ``uniform`` or ``lognormal`` distribution);
- ``no_answer``: never answer (the client's timer m runs out, TS 29.002 §17.1.2);
- ``tcap_abort``: TC-U-ABORT with an ABRT dialogue portion (Q.773 §3.2.2.3);
- ``p_abort``: TC-P-ABORT with a P-AbortCause (Q.773 Table 12);
- ``malformed``: an answer the client cannot decode (see :class:`MalformedVariant`);
- ``reset``: reset the association carrying every ``every``-th matching dialogue (the dialogue
  is lost with it).

Association faults (scope: a network endpoint, ``hub``, or every endpoint):

- ``refuse_aspac``: answer ASP Active with an M3UA ERR (RFC 4666 §4.3.4.3; default
  Refused - Management Blocking), so no association of the endpoint can become ASP-ACTIVE;
- ``heartbeat_silence``: leave BEAT unanswered (RFC 4666 §4.3.4.6), so a peer that runs the
  heartbeat declares the association lost.

**Seed.** Every random draw (does a fault with probability < 1 fire, how long is a random
latency) comes from :class:`FaultRng`: a hash of the seed, the endpoint, the number, the
occurrence of that number at that endpoint and the fault (what it is, not its id). The same
seed and the same sequence of queries per number give the same faults, whatever the
interleaving of concurrent dialogues.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from protocols.m3ua import ErrorCode
from protocols.tcap import PAbortCause

from .model import Operation

__all__ = [
    "ASSOCIATION_FAULTS",
    "DIALOGUE_ANSWER_FAULTS",
    "Distribution",
    "FaultKind",
    "FaultRng",
    "FaultSpec",
    "FaultTable",
    "MalformedVariant",
]


class FaultKind(enum.StrEnum):
    """What a fault does (see the module docstring)."""

    LATENCY = "latency"
    NO_ANSWER = "no_answer"
    TCAP_ABORT = "tcap_abort"
    P_ABORT = "p_abort"
    MALFORMED = "malformed"
    RESET = "reset"
    REFUSE_ASPAC = "refuse_aspac"
    HEARTBEAT_SILENCE = "heartbeat_silence"


#: the faults that replace a dialogue's answer (one at most per dialogue)
DIALOGUE_ANSWER_FAULTS = frozenset({FaultKind.NO_ANSWER, FaultKind.TCAP_ABORT,
                                    FaultKind.P_ABORT, FaultKind.MALFORMED, FaultKind.RESET})
#: the faults that act on the M3UA associations of an endpoint
ASSOCIATION_FAULTS = frozenset({FaultKind.REFUSE_ASPAC, FaultKind.HEARTBEAT_SILENCE})


class Distribution(enum.StrEnum):
    """Latency distributions."""

    FIXED = "fixed"  # ms
    UNIFORM = "uniform"  # min_ms .. max_ms
    LOGNORMAL = "lognormal"  # median_ms * exp(sigma * N(0, 1)), capped at max_ms if given


class MalformedVariant(enum.StrEnum):
    """The malformed answers, and what a TS 29.002/Q.774 client makes of them."""

    BAD_PARAMETER = "bad_parameter"  # an End for the dialogue whose MAP result does not decode
    BAD_TCAP = "bad_tcap"  # an End for the dialogue whose component portion is cut short
    GARBAGE = "garbage"  # bytes that are no TCAP message at all (the client cannot match it)


_ids = itertools.count(1)


@dataclass(slots=True, frozen=True)
class FaultSpec:
    """One fault: kind, scope, parameters. ``id`` names it in the control API."""

    kind: FaultKind
    network: str | None = None
    prefix: str | None = None
    number: str | None = None
    operations: frozenset[Operation] | None = None  # None: every operation
    probability: float = 1.0
    distribution: Distribution = Distribution.FIXED  # latency
    ms: float = 0.0  # latency, fixed
    min_ms: float = 0.0  # latency, uniform
    max_ms: float | None = None  # latency, uniform upper bound / lognormal cap
    median_ms: float = 0.0  # latency, lognormal
    sigma: float = 0.0  # latency, lognormal
    cause: PAbortCause = PAbortCause.RESOURCE_LIMITATION  # p_abort
    variant: MalformedVariant = MalformedVariant.BAD_PARAMETER  # malformed
    every: int = 1  # reset
    error_code: ErrorCode = ErrorCode.REFUSED_MANAGEMENT_BLOCKING  # refuse_aspac
    source: str = "api"  # "file" or "api"
    id: str = field(default_factory=lambda: f"f{next(_ids)}")

    @property
    def specificity(self) -> int:
        """Higher is more specific: number, then longer prefixes, then network, then all."""
        if self.number is not None:
            return 1000
        if self.prefix is not None:
            return 100 + len(self.prefix)
        if self.network is not None:
            return 10
        return 0

    def applies_to(self, operation: Operation) -> bool:
        return self.operations is None or operation in self.operations

    def latency(self, u1: float, u2: float) -> float:
        """A latency in seconds from two uniform draws in [0, 1)."""
        d = self.distribution
        if d is Distribution.FIXED:
            ms = self.ms
        elif d is Distribution.UNIFORM:
            hi = self.max_ms if self.max_ms is not None else self.min_ms
            ms = self.min_ms + u1 * (hi - self.min_ms)
        else:  # log-normal: Box-Muller for the normal draw
            z = math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)
            ms = self.median_ms * math.exp(self.sigma * z)
            if self.max_ms is not None:
                ms = min(ms, self.max_ms)
        return max(0.0, ms) / 1000.0

    @property
    def fingerprint(self) -> str:
        """What the fault is, without its id and source: the random draws are keyed by it,
        so the same fault draws the same way whenever and however it was added."""
        d = self.to_dict()
        del d["id"], d["source"]
        return repr(sorted(d.items()))

    def to_dict(self) -> dict[str, object]:
        """The fault as the control API shows it (only what its kind uses)."""
        out: dict[str, object] = {"id": self.id, "kind": self.kind.value, "source": self.source}
        for key in ("network", "prefix", "number"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.operations is not None:
            out["operations"] = sorted(op.value for op in self.operations)
        if self.kind not in ASSOCIATION_FAULTS:
            out["probability"] = self.probability
        k = self.kind
        if k is FaultKind.LATENCY:
            out["distribution"] = self.distribution.value
            if self.distribution is Distribution.FIXED:
                out["ms"] = self.ms
            elif self.distribution is Distribution.UNIFORM:
                out["min_ms"], out["max_ms"] = self.min_ms, self.max_ms
            else:
                out["median_ms"], out["sigma"] = self.median_ms, self.sigma
                if self.max_ms is not None:
                    out["max_ms"] = self.max_ms
        elif k is FaultKind.P_ABORT:
            out["cause"] = self.cause.name.lower()
        elif k is FaultKind.MALFORMED:
            out["variant"] = self.variant.value
        elif k is FaultKind.RESET:
            out["every"] = self.every
        elif k is FaultKind.REFUSE_ASPAC:
            out["error_code"] = self.error_code.name.lower()
        return out


class FaultRng:
    """Seeded, interleaving-proof draws: ``draw(endpoint, number, occurrence, salt)`` is a
    uniform float in [0, 1) that depends on nothing else (BLAKE2b of those and the seed)."""

    __slots__ = ("seed",)

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def draw(self, endpoint: str, number: str, occurrence: int, salt: str) -> float:
        key = f"{self.seed}|{endpoint}|{number}|{occurrence}|{salt}".encode()
        (value,) = struct.unpack(">Q", hashlib.blake2b(key, digest_size=8).digest())
        return value / 18446744073709551616.0  # 2**64


@dataclass(slots=True)
class Decision:
    """What the faults say of one dialogue: a delay, and the answer fault that fired."""

    delay: float = 0.0
    fault: FaultSpec | None = None


class FaultTable:
    """The active faults, indexed by scope, with the state the ``reset`` faults count in and
    the per-number occurrence counters the random draws are keyed by."""

    def __init__(self, faults: Iterable[FaultSpec] = (), seed: int = 0) -> None:
        self.rng = FaultRng(seed)
        self._faults: dict[str, FaultSpec] = {}
        self._counts: dict[str, int] = {}  # reset faults: matching dialogues so far
        self._occurrence: dict[tuple[str, str], int] = {}
        self._by_number: dict[str, list[FaultSpec]] = {}
        self._by_prefix: dict[str, list[FaultSpec]] = {}
        self._prefix_lengths: tuple[int, ...] = ()
        self._by_network: dict[str, list[FaultSpec]] = {}
        self._everywhere: list[FaultSpec] = []
        self._salt: dict[str, str] = {}  # fault id -> its fingerprint
        for f in faults:
            self.add(f)

    def __len__(self) -> int:
        return len(self._faults)

    def __iter__(self):
        return iter(list(self._faults.values()))

    def get(self, fault_id: str) -> FaultSpec | None:
        return self._faults.get(fault_id)

    def add(self, fault: FaultSpec) -> FaultSpec:
        self._faults[fault.id] = fault
        self._reindex()
        return fault

    def remove(self, fault_id: str) -> FaultSpec | None:
        fault = self._faults.pop(fault_id, None)
        self._counts.pop(fault_id, None)
        if fault is not None:
            self._reindex()
        return fault

    def clear(self) -> int:
        n = len(self._faults)
        self._faults.clear()
        self._counts.clear()
        self._reindex()
        return n

    def _reindex(self) -> None:
        self._by_number, self._by_prefix, self._by_network = {}, {}, {}
        self._everywhere = []
        self._salt = {f.id: f.fingerprint for f in self._faults.values()}
        for f in self._faults.values():
            if f.kind in ASSOCIATION_FAULTS:
                continue
            if f.number is not None:
                self._by_number.setdefault(f.number, []).append(f)
            elif f.prefix is not None:
                self._by_prefix.setdefault(f.prefix, []).append(f)
            elif f.network is not None:
                self._by_network.setdefault(f.network, []).append(f)
            else:
                self._everywhere.append(f)
        self._prefix_lengths = tuple(sorted({len(p) for p in self._by_prefix}, reverse=True))

    @property
    def has_dialogue_faults(self) -> bool:
        return bool(self._by_number or self._by_prefix or self._by_network or self._everywhere)

    def association_fault(self, endpoint: str, kind: FaultKind) -> FaultSpec | None:
        """The ``kind`` association fault that applies to ``endpoint`` (its own before one
        for every endpoint), or None."""
        found = None
        for f in self._faults.values():
            if f.kind is kind and f.network in (endpoint, None):
                if f.network == endpoint:
                    return f
                found = found or f
        return found

    def _matching(self, endpoint: str, number: str, operation: Operation) -> list[FaultSpec]:
        """Dialogue faults for this dialogue, most specific first (file order within a scope)."""
        out: list[FaultSpec] = []

        def take(faults: list[FaultSpec] | None) -> None:
            if faults:
                out.extend(f for f in faults if f.applies_to(operation)
                           and (f.network is None or f.network == endpoint))

        take(self._by_number.get(number))
        by_prefix = self._by_prefix
        for length in self._prefix_lengths:
            if length <= len(number):
                take(by_prefix.get(number[:length]))
        take(self._by_network.get(endpoint))
        take(self._everywhere)
        return out

    def decide(self, endpoint: str, number: str, operation: Operation) -> Decision:
        """Which faults fire for one dialogue of ``operation`` on ``number`` received at
        ``endpoint``: the most specific latency and answer fault that fire."""
        decision = Decision()
        if not self.has_dialogue_faults:
            return decision
        matching = self._matching(endpoint, number, operation)
        if not matching:
            return decision
        key = (endpoint, number)
        occurrence = self._occurrence.get(key, 0)
        self._occurrence[key] = occurrence + 1
        rng = self.rng
        have_latency = False
        for f in matching:
            salt = self._salt[f.id]
            if f.kind is FaultKind.LATENCY:
                if have_latency:
                    continue
            elif decision.fault is not None:
                continue
            if f.probability < 1.0 and rng.draw(endpoint, number, occurrence,
                                                salt + "p") >= f.probability:
                continue
            if f.kind is FaultKind.LATENCY:
                have_latency = True
                u1 = rng.draw(endpoint, number, occurrence, salt + "a")
                u2 = rng.draw(endpoint, number, occurrence, salt + "b")
                decision.delay = f.latency(u1, u2)
            elif f.kind is FaultKind.RESET:
                n = self._counts.get(f.id, 0) + 1
                self._counts[f.id] = n
                if n % f.every == 0:
                    decision.fault = f
            else:
                decision.fault = f
        return decision
