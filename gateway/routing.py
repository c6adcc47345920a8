"""Number routing: E.164 prefixes to routes, the longest prefix winning, with a default route.

- :func:`normalize_number` turns what a client sends (``+44 7700 900123``) into E.164 digits.
- :class:`PrefixTable` answers the longest matching prefix and every shorter one.
- :class:`Router` picks the route of a number and explains the choice (``hlrgw route explain``).
- :func:`hidden_prefixes` finds prefixes that can never be the longest match (the
  configuration check reports them): a prefix P is **hidden** when every digit that can
  follow it (0 to 9) starts a longer prefix of the table, or a continuation that is itself
  hidden in that way. Every number longer than P then matches a longer prefix, so P's route
  is chosen only for the bare number P, which is no subscriber number. Two routes claiming
  the same prefix are reported separately (the second can never be chosen).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["InvalidNumber", "PrefixTable", "RouteMatch", "Router", "hidden_prefixes",
           "normalize_number", "MAX_E164_DIGITS"]

T = TypeVar("T")
MAX_E164_DIGITS = 15  # ITU-T E.164 §6.1
_E164 = re.compile(r"[1-9][0-9]{0,14}")
_SEPARATORS = str.maketrans("", "", " -.()/\t")


class InvalidNumber(ValueError):
    """The text is not an E.164 number."""


def normalize_number(text: str) -> str:
    """E.164 digits of ``text``: spaces, dashes, dots, brackets and a leading ``+`` dropped.
    Raises :class:`InvalidNumber` unless 1 to 15 digits remain, the first not 0."""
    if text.isdigit() and text.isascii() and len(text) <= MAX_E164_DIGITS \
            and text[:1] != "0":  # E.164 digits already (the lookup path): nothing to drop
        return text
    digits = text.strip().translate(_SEPARATORS)
    if digits.startswith("+"):
        digits = digits[1:]
    if not _E164.fullmatch(digits):
        raise InvalidNumber(f"{text!r} is not an E.164 number (1 to 15 digits, the first "
                            "not 0, optionally after '+')")
    return digits


class PrefixTable(Generic[T]):
    """Digit prefixes to values; :meth:`match` takes the longest prefix of a number."""

    __slots__ = ("_entries", "_lengths", "default")

    def __init__(self, entries: Iterable[tuple[str, T]] = (), default: T | None = None) -> None:
        self._entries: dict[str, T] = {}
        for prefix, value in entries:
            self._entries.setdefault(prefix, value)  # the first claim wins, as validated
        self._lengths = sorted({len(p) for p in self._entries}, reverse=True)
        self.default = default

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> Iterable[tuple[str, T]]:
        return self._entries.items()

    def match(self, number: str) -> tuple[str | None, T | None]:
        """(longest matching prefix, its value); (None, default) when none matches."""
        entries = self._entries
        for n in self._lengths:
            if n <= len(number):
                value = entries.get(number[:n])
                if value is not None:
                    return number[:n], value
        return None, self.default

    def candidates(self, number: str) -> list[tuple[str, T]]:
        """Every prefix of ``number`` in the table, longest first."""
        return [(number[:n], self._entries[number[:n]]) for n in self._lengths
                if n <= len(number) and number[:n] in self._entries]


def hidden_prefixes(prefixes: Iterable[str]) -> dict[str, list[str]]:
    """Each hidden prefix (see the module docstring) -> the longer prefixes that hide it."""
    table = set(prefixes)
    extended = {q[:k] for q in table for k in range(1, len(q))}  # proper prefixes of entries
    memo: dict[str, list[str] | None] = {}

    def cover(p: str) -> list[str] | None:
        """The prefixes covering every continuation of ``p``, or None if some is free."""
        if p in memo:
            return memo[p]
        memo[p] = None
        if len(p) >= MAX_E164_DIGITS or p not in extended:
            return None
        used: list[str] = []
        for d in "0123456789":
            child = p + d
            if child in table:
                used.append(child)
                continue
            sub = cover(child)
            if sub is None:
                return None
            used.extend(sub)
        memo[p] = used
        return used

    out: dict[str, list[str]] = {}
    for p in sorted(table):
        found = cover(p)
        if found is not None:
            out[p] = found
    return out


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """Which route a number takes, and why."""

    number: str
    route: str | None  # None: no route at all (no default route configured)
    prefix: str | None  # None: the default route
    candidates: tuple[tuple[str, str], ...]  # (prefix, route) matching the number, longest first

    def reason(self) -> str:
        if self.route is None:
            return "no prefix matches and there is no default route"
        if self.prefix is None:
            return "no prefix matches: the default route"
        shorter = [f"{p} ({r})" for p, r in self.candidates[1:]]
        why = f"longest matching prefix {self.prefix}"
        return why + (f"; also matching: {', '.join(shorter)}" if shorter else "")


class Router:
    """Routes by name, their prefixes and the default route."""

    __slots__ = ("_table", "names")

    def __init__(self, routes: Sequence[tuple[str, Sequence[str], bool]]) -> None:
        """``routes``: (name, prefixes, is_default) for each route."""
        default = next((name for name, _, d in routes if d), None)
        self._table: PrefixTable[str] = PrefixTable(
            ((p, name) for name, prefixes, _ in routes for p in prefixes), default)
        self.names = tuple(name for name, _, _ in routes)

    @classmethod
    def from_mapping(cls, prefixes: Mapping[str, Sequence[str]], default: str | None
                     ) -> Router:
        return cls([(name, ps, name == default) for name, ps in prefixes.items()])

    @property
    def default(self) -> str | None:
        return self._table.default

    def route_for(self, number: str) -> RouteMatch:
        """The route of E.164 digits ``number`` (see :func:`normalize_number`), with every
        matching prefix (the explanation); :meth:`match` is the lookup path's."""
        prefix, route = self._table.match(number)
        return RouteMatch(number, route, prefix, tuple(self._table.candidates(number)))

    def match(self, number: str) -> tuple[str | None, str | None]:
        """(longest matching prefix, route) of E.164 digits ``number``; (None, the default
        route) when no prefix matches: :meth:`route_for` without the candidates."""
        return self._table.match(number)

    def prefixes_of(self, route: str) -> list[str]:
        return sorted(p for p, r in self._table.items() if r == route)
