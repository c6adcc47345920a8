"""Reading a configuration: the main file, its includes (relative to the including file, with
cycle detection), merged into one document that remembers where every part came from.

Merging: ``include`` lists files read before the including file's own content. Arrays of
tables (``[[routes]]``, ``[[associations]]``, ...) are concatenated; a plain section
(``[sccp]``, ``[map]``, ...) may be written in one file only. :class:`Document` maps every key
path of the merged document back to its file and its key path there, so each problem can name
the file and line an engineer has to open.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .locate import KeyPath, LineIndex, format_path
from .problems import ConfigProblem

__all__ = ["Document", "Source", "read_document", "ARRAY_SECTIONS"]

#: top-level arrays of tables, concatenated across included files
ARRAY_SECTIONS = frozenset({"associations", "linksets", "routes", "sip_targets", "mnp_sources",
                            "range_tables", "routing_numbers"})

_TOML_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")


@dataclass(slots=True)
class Source:
    """One file that was read."""

    display: str  # as it appears in problems (the given path, includes joined to it)
    path: Path  # resolved
    text: str
    index: LineIndex

    @property
    def directory(self) -> Path:
        return self.path.parent


@dataclass(slots=True)
class Document:
    """The merged content of a main file and its includes, with the origin of every part."""

    main: str
    data: dict[str, Any] = field(default_factory=dict)
    sources: list[Source] = field(default_factory=list)
    origins: dict[KeyPath, tuple[Source, KeyPath]] = field(default_factory=dict)
    problems: list[ConfigProblem] = field(default_factory=list)

    def origin(self, path: KeyPath) -> tuple[Source | None, KeyPath]:
        """The file a key path comes from and the key path within that file."""
        for n in range(len(path), -1, -1):
            found = self.origins.get(tuple(path[:n]))
            if found is not None:
                src, local = found
                return src, (*local, *path[n:])
        return None, tuple(path)

    def where(self, path: KeyPath) -> tuple[str, int | None, str]:
        """(file, line, key path as written in that file) of a merged key path."""
        src, local = self.origin(path)
        if src is None:
            return self.main, None, format_path(local)
        return src.display, src.index.line_of(local), format_path(local)

    def problem(self, path: KeyPath, message: str) -> None:
        file, line, key = self.where(path)
        self.problems.append(ConfigProblem(file, line, key, message))

    def cite(self, path: KeyPath) -> str:
        """``file:line`` of a key path, for messages that point elsewhere."""
        file, line, _ = self.where(path)
        return f"{file}:{line}" if line is not None else file

    def resolve_file(self, path: KeyPath, value: str) -> Path:
        """A file named at ``path``, relative to the directory of the file that names it."""
        src, _ = self.origin(path)
        p = Path(os.path.expanduser(value))
        if p.is_absolute() or src is None:
            return p
        return src.directory / p


def read_document(path: str | os.PathLike[str]) -> Document:
    """Read ``path`` and everything it includes; problems go to :attr:`Document.problems`."""
    display = os.fspath(path)
    doc = Document(display)
    _read(doc, display, Path(display), None, [])
    return doc


def _read(doc: Document, display: str, path: Path, includer: tuple[Source, KeyPath] | None,
          stack: list[Path]) -> None:
    def report(message: str) -> None:
        if includer is None:
            doc.problems.append(ConfigProblem(display, None, "", message))
        else:
            src, key = includer
            doc.problems.append(ConfigProblem(src.display, src.index.line_of(key),
                                              format_path(key), message))

    try:
        resolved = path.resolve(strict=True)
    except (FileNotFoundError, RuntimeError):
        report(f"file not found: {display}" if includer is None
               else f"included file not found: {display}")
        return
    except OSError as exc:
        report(f"cannot open {display}: {exc.strerror or exc}")
        return
    if resolved in stack:
        names = [s.display for s in doc.sources if s.path in stack]
        chain = " -> ".join([*names[stack.index(resolved):], display])
        report(f"include cycle: {chain}")
        return
    if any(s.path == resolved for s in doc.sources):
        report(f"{display} is already included; a file may be read only once")
        return
    try:
        text = resolved.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        report(f"cannot read {display}: {exc}")
        return
    src = Source(display, resolved, text, LineIndex.scan(text))
    doc.sources.append(src)
    if includer is None:
        doc.origins[()] = (src, ())
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_LINE.search(msg)
        line = int(m.group(1)) if m else None
        doc.problems.append(ConfigProblem(display, line, "",
                                          f"TOML syntax: {_TOML_LINE.sub('', msg).strip()}"))
        return

    includes = data.pop("include", [])
    if isinstance(includes, str):
        includes = [includes]
        keys: list[KeyPath] = [("include",)]
    elif isinstance(includes, list):
        keys = [("include", k) for k in range(len(includes))]
    else:
        doc.problems.append(ConfigProblem(display, src.index.line_of(("include",)), "include",
                                          "must be a file name or an array of file names"))
        includes, keys = [], []
    for name, key in zip(includes, keys):
        if not isinstance(name, str) or not name:
            doc.problems.append(ConfigProblem(display, src.index.line_of(key), format_path(key),
                                              "must be a file name (a string)"))
            continue
        inc_display = os.path.normpath(os.path.join(os.path.dirname(display), name))
        inc_path = Path(os.path.expanduser(name))
        if not inc_path.is_absolute():
            inc_path = resolved.parent / inc_path
        _read(doc, inc_display, inc_path, (src, key), [*stack, resolved])

    for key, value in data.items():
        if key in ARRAY_SECTIONS:
            if not isinstance(value, list):
                doc.problems.append(ConfigProblem(
                    display, src.index.line_of((key,)), key,
                    f"must be an array of tables ([[{key}]]), not a single table"))
                continue
            merged = doc.data.setdefault(key, [])
            for local_index, item in enumerate(value):
                doc.origins[(key, len(merged))] = (src, (key, local_index))
                merged.append(item)
            continue
        if key in doc.data:
            first = doc.cite((key,))
            doc.problems.append(ConfigProblem(
                display, src.index.line_of((key,)), key,
                f"already defined in {first}; a section may be written in one file only"))
            continue
        doc.data[key] = value
        doc.origins[(key,)] = (src, (key,))
