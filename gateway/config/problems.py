"""What is wrong with a configuration: :class:`ConfigProblem` (file, line, key path, message)
and :class:`ConfigInvalid`, raised with every problem found at once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ConfigInvalid", "ConfigProblem"]


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem: where (``file``, ``line``, ``key_path`` such as
    ``routes[2].methods[0].linkset``) and what. ``line`` is None when the key is nowhere in
    the text (a missing section) and ``key_path`` is empty for problems of a whole file."""

    file: str
    line: int | None
    key_path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.key_path}: {self.message}" if self.key_path else \
            f"{where}: {self.message}"

    def sort_key(self) -> tuple[str, int, str]:
        return (self.file, self.line or 0, self.key_path)


class ConfigInvalid(Exception):
    """The configuration has problems; :attr:`problems` holds every one, in file order."""

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__(self.report())

    def report(self) -> str:
        """One problem a line, as ``hlrgw config check`` prints them."""
        n = len(self.problems)
        lines = [str(p) for p in self.problems]
        lines.append(f"{n} problem{'s' if n != 1 else ''} found")
        return "\n".join(lines)
