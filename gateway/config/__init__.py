"""The gateway's configuration: one TOML file (plus included files) read into frozen
dataclasses (:mod:`.schema`), every problem reported with its file, line and key path.

>>> config = load_config("config/demo.toml")      # raises ConfigInvalid(problems)
>>> problems = check_file("config/demo.toml")     # [] when the file is good

See docs/operations.md for the sections and config/*.toml for commented examples.
"""

from __future__ import annotations

import os

from .loader import Document, read_document
from .locate import KeyPath, LineIndex, format_path
from .problems import ConfigInvalid, ConfigProblem
from .schema import (
    MAP_METHODS,
    AdminSection,
    AspRole,
    AssociationSection,
    Config,
    LinkSetMode,
    LinkSetSection,
    MapSection,
    MethodKind,
    MethodSection,
    MnpKind,
    MnpSourceSection,
    RangeTableSection,
    RouteSection,
    SccpSection,
    SipTargetSection,
    TraceSection,
    TrafficMode,
    Transport,
)
from .validate import SIP_NOT_AVAILABLE, SIP_TLS_NOT_AVAILABLE, check

__all__ = [
    "MAP_METHODS",
    "SIP_NOT_AVAILABLE",
    "SIP_TLS_NOT_AVAILABLE",
    "AdminSection",
    "AspRole",
    "AssociationSection",
    "Config",
    "ConfigInvalid",
    "ConfigProblem",
    "Document",
    "KeyPath",
    "LineIndex",
    "LinkSetMode",
    "LinkSetSection",
    "MapSection",
    "MethodKind",
    "MethodSection",
    "MnpKind",
    "MnpSourceSection",
    "RangeTableSection",
    "RouteSection",
    "SccpSection",
    "SipTargetSection",
    "TraceSection",
    "TrafficMode",
    "Transport",
    "check_file",
    "format_path",
    "load_config",
    "read_document",
]


def check_file(path: str | os.PathLike[str]) -> tuple[Config | None, list[ConfigProblem]]:
    """Read and check ``path``: (the config, []) or (None, every problem in file order)."""
    doc = read_document(path)
    config = None if _fatal(doc) else check(doc)
    order = {s.display: i for i, s in enumerate(doc.sources)}
    problems = sorted(doc.problems, key=lambda p: (order.get(p.file, len(order)), p.file,
                                                   p.line or 0, p.key_path))
    return (config if not problems else None), problems


def load_config(path: str | os.PathLike[str]) -> Config:
    """The configuration in ``path``; raises :class:`ConfigInvalid` with every problem."""
    config, problems = check_file(path)
    if problems or config is None:
        raise ConfigInvalid(problems)
    return config


def _fatal(doc: Document) -> bool:
    """A file that could not be read or parsed (or a bad include) stops the check there:
    what is missing would only show as spurious problems."""
    return bool(doc.problems) or not doc.sources
