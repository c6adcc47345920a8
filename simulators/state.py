"""The simulator's run-time state, shared by its HLR endpoints and its control API: the model
from the network file, the per-number overrides set at run time, the active faults and the
counters. :meth:`SimState.reset` puts it back as the file describes it.
"""

from __future__ import annotations

from collections.abc import Callable

from .config import SimConfig, check_override, parse_profile
from .faults import FaultSpec, FaultTable
from .model import Model, Profile, Subscriber, resolve

__all__ = ["Counters", "SimState"]


class Counters:
    """Dialogues by endpoint, operation and outcome (``result``, a MAP error name such as
    ``absent_subscriber_sm``, ``context_refused``, or a fault: ``no_answer``, ``tcap_abort``,
    ``p_abort``, ``malformed``, ``reset``)."""

    __slots__ = ("_dialogues",)

    def __init__(self) -> None:
        self._dialogues: dict[tuple[str, str, str], int] = {}

    def count(self, endpoint: str, operation: str, outcome: str) -> None:
        key = (endpoint, operation, outcome)
        d = self._dialogues
        d[key] = d.get(key, 0) + 1

    def get(self, endpoint: str, operation: str, outcome: str) -> int:
        return self._dialogues.get((endpoint, operation, outcome), 0)

    def total(self, endpoint: str | None = None) -> int:
        return sum(n for (e, _, _), n in self._dialogues.items()
                   if endpoint is None or e == endpoint)

    def clear(self) -> None:
        self._dialogues.clear()

    def by_endpoint(self) -> dict[str, dict[str, dict[str, int]]]:
        """``{endpoint: {operation: {outcome: n}}}``, sorted."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for (e, op, outcome), n in sorted(self._dialogues.items()):
            out.setdefault(e, {}).setdefault(op, {})[outcome] = n
        return out


class SimState:
    """Model, run-time overrides, faults and counters (see the module docstring)."""

    def __init__(self, config: SimConfig, seed: int | None = None) -> None:
        self.config = config
        self.model: Model = config.model
        self.seed = config.seed if seed is None else seed
        self.overrides: dict[str, Profile] = {}
        self.faults = FaultTable(config.faults, self.seed)
        self.counters = Counters()
        self._listeners: list[Callable[[], None]] = []

    # --- subscribers

    def subscriber(self, number: str) -> Subscriber | None:
        """What the HLRs answer for ``number`` now."""
        return resolve(self.model, number, self.overrides)

    def override(self, number: str) -> tuple[Profile | None, str | None]:
        """The per-number override in force and where it comes from (``runtime``, ``file``)."""
        if number in self.overrides:
            return self.overrides[number], "runtime"
        found = self.model.overrides.get(number)
        return found, ("file" if found is not None else None)

    def set_override(self, number: str, profile: Profile) -> None:
        """Replace ``number``'s override (the file's included); raises :class:`ConfigError`
        when it names unknown networks or makes no sense for the number."""
        check_override(number, profile, self.model, "body")
        self.overrides[number] = profile

    def patch_override(self, number: str, patch: dict) -> Profile:
        """JSON merge patch (RFC 7396) of ``number``'s override: the keys given replace the
        current ones, a null removes one (back to the range's setting)."""
        current, _ = self.override(number)
        merged = dict((current or Profile()).to_dict())
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        profile = parse_profile(merged, "body", self.model.networks)
        self.set_override(number, profile)
        return profile

    def drop_override(self, number: str) -> bool:
        """Forget the run-time override (the file's applies again)."""
        return self.overrides.pop(number, None) is not None

    # --- faults

    def add_fault(self, fault: FaultSpec) -> FaultSpec:
        self.faults.add(fault)
        self._changed()
        return fault

    def remove_fault(self, fault_id: str) -> FaultSpec | None:
        fault = self.faults.remove(fault_id)
        if fault is not None:
            self._changed()
        return fault

    def clear_faults(self) -> int:
        n = self.faults.clear()
        self._changed()
        return n

    def on_faults_changed(self, cb: Callable[[], None]) -> None:
        """``cb()`` after every change of the fault set (the HLRs apply association faults)."""
        self._listeners.append(cb)

    def _changed(self) -> None:
        for cb in list(self._listeners):
            cb()

    # --- reset

    def reset(self) -> None:
        """Back to the network file: its overrides and faults only, counters at zero, the
        random draws started over."""
        self.overrides.clear()
        self.faults = FaultTable(self.config.faults, self.seed)
        self.counters.clear()
        self._changed()

