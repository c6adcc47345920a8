"""Where a key is in a TOML text: ``tomllib`` gives values, not line numbers, so this scans the
text for its structure (table headers, arrays of tables and their indices, ``key =`` lines,
array elements, inline tables) and maps each key path to the line it starts on.

A key path is a tuple of names and indices, e.g. ``("routes", 2, "methods", 0, "linkset")``
for ``routes[2].methods[0].linkset``. :meth:`LineIndex.line_of` answers with the line of the
longest part of the path that the text holds (a missing key points at its table's header).

The scanner only follows the structure; values are not converted, and a text that does not
parse simply yields fewer lines (``tomllib`` reports syntax errors itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["KeyPath", "LineIndex", "format_path"]

KeyPath = tuple[str | int, ...]

_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def format_path(path: KeyPath) -> str:
    """``("routes", 2, "methods", 0, "linkset")`` -> ``routes[2].methods[0].linkset``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if part and all(c in _BARE for c in part) else f'"{part}"'
            out += f".{name}" if out else name
    return out


class _Stop(Exception):
    """The text does not follow TOML's structure here: stop scanning."""


@dataclass(slots=True)
class LineIndex:
    """Key path -> line number (1-based) of one TOML text."""

    lines: dict[KeyPath, int] = field(default_factory=dict)

    @classmethod
    def scan(cls, text: str) -> LineIndex:
        index = cls()
        scanner = _Scanner(text, index.lines)
        try:
            scanner.run()
        except (_Stop, IndexError):
            pass
        return index

    def line_of(self, path: KeyPath) -> int | None:
        """The line of ``path``, or of its longest prefix the text holds; None if none."""
        for n in range(len(path), 0, -1):
            line = self.lines.get(tuple(path[:n]))
            if line is not None:
                return line
        return None

    def exact(self, path: KeyPath) -> int | None:
        return self.lines.get(tuple(path))


class _Scanner:
    __slots__ = ("s", "i", "line", "out", "aot")

    def __init__(self, text: str, out: dict[KeyPath, int]) -> None:
        self.s = text
        self.i = 0
        self.line = 1
        self.out = out
        self.aot: dict[KeyPath, int] = {}  # array-of-tables path -> elements so far

    # ------------------------------------------------------------------ lexing helpers

    def _peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.s[j] if j < len(self.s) else ""

    def _skip_blank(self, newlines: bool) -> None:
        """Skip spaces, tabs, comments and (if ``newlines``) line breaks."""
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if c in " \t\r":
                self.i += 1
            elif c == "\n":
                if not newlines:
                    return
                self.line += 1
                self.i += 1
            elif c == "#":
                while self.i < len(s) and s[self.i] != "\n":
                    self.i += 1
            else:
                return

    def _string(self) -> str:
        """A basic, literal or multi-line string starting at ``self.i``; returns its raw text."""
        s = self.s
        q = s[self.i]
        if s.startswith(q * 3, self.i):
            end = q * 3
            self.i += 3
            start = self.i
            while True:
                j = s.find(end, self.i)
                if j < 0:
                    raise _Stop
                if q == '"' and _escaped(s, j):
                    self.i = j + 1
                    continue
                while s.startswith(q, j + 3):  # up to two quotes may end the content
                    j += 1
                self.line += s.count("\n", start, j)
                self.i = j + 3
                return s[start:j]
        self.i += 1
        start = self.i
        while True:
            j = s.find(q, self.i)
            nl = s.find("\n", self.i)
            if j < 0 or (0 <= nl < j):
                raise _Stop
            if q == '"' and _escaped(s, j):
                self.i = j + 1
                continue
            self.i = j + 1
            return s[start:j]

    def _key(self) -> tuple[str, ...]:
        """A dotted key: bare or quoted parts separated by dots."""
        parts: list[str] = []
        while True:
            self._skip_blank(False)
            c = self._peek()
            if c in ('"', "'"):
                raw = self._string()
                parts.append(_unescape(raw) if c == '"' else raw)
            else:
                start = self.i
                while self._peek() and self._peek() in _BARE:
                    self.i += 1
                if self.i == start:
                    raise _Stop
                parts.append(self.s[start:self.i])
            self._skip_blank(False)
            if self._peek() != ".":
                return tuple(parts)
            self.i += 1

    def _resolve(self, key: tuple[str, ...]) -> KeyPath:
        """A header's key with the current index of every array of tables on the way."""
        path: list[str | int] = []
        for part in key:
            path.append(part)
            n = self.aot.get(tuple(path))
            if n is not None:
                path.append(n - 1)
        return tuple(path)

    # ------------------------------------------------------------------ structure

    def run(self) -> None:
        s = self.s
        current: KeyPath = ()
        while True:
            self._skip_blank(True)
            if self.i >= len(s):
                return
            line = self.line
            if s[self.i] == "[":
                if self._peek(1) == "[":
                    self.i += 2
                    key = self._key()
                    if not s.startswith("]]", self.i):
                        raise _Stop
                    self.i += 2
                    parent = self._resolve(key[:-1])
                    arr = (*parent, key[-1])
                    n = self.aot.get(arr, 0)
                    self.aot[arr] = n + 1
                    self.out.setdefault(arr, line)
                    current = (*arr, n)
                else:
                    self.i += 1
                    key = self._key()
                    if self._peek() != "]":
                        raise _Stop
                    self.i += 1
                    current = self._resolve(key)
                self.out[current] = line
                continue
            key = self._key()
            if self._peek() != "=":
                raise _Stop
            self.i += 1
            path = (*current, *key)
            self.out[path] = line
            self._value(path)

    def _value(self, path: KeyPath) -> None:
        self._skip_blank(False)
        c = self._peek()
        if c in ('"', "'"):
            self._string()
        elif c == "[":
            self.i += 1
            k = 0
            while True:
                self._skip_blank(True)
                if self._peek() == "]":
                    self.i += 1
                    return
                if self._peek() == "":
                    raise _Stop
                self.out[(*path, k)] = self.line
                self._value((*path, k))
                k += 1
                self._skip_blank(True)
                if self._peek() == ",":
                    self.i += 1
        elif c == "{":
            self.i += 1
            while True:
                self._skip_blank(True)
                if self._peek() == "}":
                    self.i += 1
                    return
                line = self.line
                key = self._key()
                if self._peek() != "=":
                    raise _Stop
                self.i += 1
                self.out[(*path, *key)] = line
                self._value((*path, *key))
                self._skip_blank(True)
                if self._peek() == ",":
                    self.i += 1
        else:  # number, boolean, date-time: up to a delimiter
            s = self.s
            while self.i < len(s) and s[self.i] not in ",]}#\n":
                self.i += 1


def _escaped(s: str, j: int) -> bool:
    """Whether the quote at ``j`` is escaped by an odd run of backslashes."""
    n = 0
    while j - n - 1 >= 0 and s[j - n - 1] == "\\":
        n += 1
    return n % 2 == 1


def _unescape(raw: str) -> str:
    try:
        return raw.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError:
        return raw
