"""The engine's link sets: :class:`~gateway.sigtran.linkset.LinkSet` plus draining.

A **draining** association takes no new dialogue, while the dialogues it carries go on to
their end; the engine then closes it (ASP Inactive, ASP Down). Draining is how an engineer
takes a link out of service (admin API ``POST /links/{name}/drain``) and how a reload retires
an association it no longer lists, without failing a lookup in flight.

Nothing changes while no association drains: :meth:`DrainableLinkSet.pick` hands over to the
link set's own selection.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.sigtran.linkset import LinkMember, LinkSet, LinkSetDown, LinkSetMode

__all__ = ["DrainableLinkSet"]

_GOLDEN = 0x9E3779B97F4A7C15
_M64 = (1 << 64) - 1


class DrainableLinkSet(LinkSet):
    """A link set whose members can be drained (no new dialogues); see the module docstring."""

    def __init__(self, name: str, associations: Iterable[LinkMember] = (),
                 mode: LinkSetMode = LinkSetMode.LOADSHARE) -> None:
        self._draining: set[int] = set()
        super().__init__(name, associations, mode)

    def drain(self, assoc: LinkMember) -> None:
        """Stop giving ``assoc`` new dialogues."""
        self._draining.add(id(assoc))

    def undrain(self, assoc: LinkMember) -> None:
        self._draining.discard(id(assoc))

    def is_draining(self, assoc: LinkMember) -> bool:
        return id(assoc) in self._draining

    def remove(self, assoc: LinkMember) -> None:
        super().remove(assoc)
        self._draining.discard(id(assoc))

    @property
    def serving(self) -> tuple[LinkMember, ...]:
        """The ASP-ACTIVE associations that take new dialogues."""
        if not self._draining:
            return self.active
        return tuple(m for m in self.active if id(m) not in self._draining)

    @property
    def is_up(self) -> bool:
        return bool(self.serving) if self._draining else bool(self.active)

    def pick(self, key: int) -> LinkMember:
        if not self._draining:
            return LinkSet.pick(self, key)
        serving = self.serving
        if not serving:
            raise LinkSetDown(f"link set {self.name}: no ASP-ACTIVE association takes new "
                              "dialogues (the others drain)")
        if self.mode is LinkSetMode.OVERRIDE or len(serving) == 1:
            return serving[0]
        return serving[((key * _GOLDEN) & _M64) % len(serving)]  # stable per dialogue
