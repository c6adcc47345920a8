"""Turning TOML values into the schema's dataclasses, with every problem collected: wrong type,
out of range, unknown key (with a suggestion), missing required key, bad E.164/GT digits.

:func:`build` reads a table into a dataclass field by field. A bad value is reported and the
dataclass is still built when that field has a default (so later checks see the rest);
a bad required field drops the whole table (None), and its siblings still get checked.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import re
import types
import typing
from functools import cache
from typing import Any

from .loader import Document
from .locate import KeyPath

__all__ = ["build", "build_section", "describe", "suggest", "E164", "check_digits"]

E164 = re.compile(r"\+?[1-9][0-9]{0,14}")
_GT = re.compile(r"\+?[0-9]{1,15}")
_MISSING = dataclasses.MISSING


def describe(value: Any) -> str:
    """A TOML value's type, in words."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__.replace('datetime', 'date-time')}"


def suggest(word: str, known: typing.Iterable[str]) -> str:
    """``; did you mean 'x'?`` for the closest of ``known``, or ''."""
    match = difflib.get_close_matches(word, list(known), n=1, cutoff=0.5)
    return f"; did you mean '{match[0]}'?" if match else ""


def check_digits(value: str, kind: str) -> str | None:
    """Why ``value`` is not an E.164 number (``kind="e164"``) or a GT (``"gt"``), or None."""
    if kind == "e164" and not E164.fullmatch(value):
        return (f"'{value}' is not E.164 digits (1 to 15 digits, the first not 0, "
                f"optionally after '+')")
    if kind == "gt" and not _GT.fullmatch(value):
        return f"'{value}' is not a global title (1 to 15 digits, optionally after '+')"
    return None


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _fields(cls: type) -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is _MISSING and f.default_factory is _MISSING


def build(cls: type, raw: Any, path: KeyPath, doc: Document) -> Any | None:
    """Build dataclass ``cls`` from the TOML table ``raw`` at ``path``; None when a required
    field is missing or unusable."""
    if not isinstance(raw, dict):
        doc.problem(path, f"must be a table, not {describe(raw)}")
        return None
    kwargs = build_fields(cls, raw, path, doc)
    if kwargs is None:
        return None
    return cls(**kwargs)


def build_fields(cls: type, raw: dict[str, Any], path: KeyPath, doc: Document
                 ) -> dict[str, Any] | None:
    """The converted fields of ``cls`` present in ``raw`` (problems reported)."""
    fields = _fields(cls)
    for key in raw:
        if key not in fields:
            doc.problem((*path, key), f"unknown key '{key}'{suggest(key, fields)}")
    kwargs: dict[str, Any] = {}
    ok = True
    for name, f in fields.items():
        if name not in raw:
            if _required(f):
                doc.problem((*path, name), f"missing required key '{name}' "
                            f"({f.metadata.get('doc', '')})")
                ok = False
            continue
        good, value = convert(_hints(cls)[name], raw[name], (*path, name), f.metadata, doc)
        if good:
            kwargs[name] = value
        elif _required(f):
            ok = False
    return kwargs if ok else None


def build_section(cls: type, raw: Any, path: KeyPath, doc: Document) -> Any | None:
    """Like :func:`build`; an absent optional section (``raw`` None) gives its defaults."""
    if raw is None:
        return cls()
    return build(cls, raw, path, doc)


def convert(tp: Any, value: Any, path: KeyPath, meta: typing.Mapping[str, Any], doc: Document
            ) -> tuple[bool, Any]:
    """Convert one value to type ``tp``; (False, None) after reporting a problem."""
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = inner[0]
        origin = typing.get_origin(tp)
    if origin is tuple:
        item_tp = typing.get_args(tp)[0]
        if not isinstance(value, list):
            doc.problem(path, f"must be an array, not {describe(value)}")
            return False, None
        if meta.get("nonempty") and not value:
            doc.problem(path, "must not be empty")
            return False, None
        items = []
        item_meta = {k: v for k, v in meta.items() if k != "nonempty"}
        for k, item in enumerate(value):
            good, converted = convert(item_tp, item, (*path, k), item_meta, doc)
            if good:
                items.append(converted)
        # items that failed are left out (their problems are told), so later checks still
        # see the others
        return True, tuple(items)
    if dataclasses.is_dataclass(tp):
        built = build(tp, value, path, doc)
        return built is not None, built
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        choices = [m.value for m in tp]
        if not isinstance(value, str):
            doc.problem(path, f"must be a string, one of {', '.join(choices)}; "
                        f"not {describe(value)}")
            return False, None
        try:
            return True, tp(value)
        except ValueError:
            doc.problem(path, f"'{value}' is not one of {', '.join(choices)}"
                        f"{suggest(value, choices)}")
            return False, None
    if tp is bool:
        if not isinstance(value, bool):
            doc.problem(path, f"must be a boolean (true or false), not {describe(value)}")
            return False, None
        return True, value
    if tp is int or tp is float:
        ok_type = (isinstance(value, int) if tp is int else isinstance(value, int | float))
        if isinstance(value, bool) or not ok_type:
            want = "an integer" if tp is int else "a number"
            doc.problem(path, f"must be {want}, not {describe(value)}")
            return False, None
        value = tp(value)
        bounds = meta.get("range")
        if meta.get("positive") and value <= 0:
            doc.problem(path, f"must be greater than 0, not {value}")
            return False, None
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            doc.problem(path, f"{value} is out of range {_num(bounds[0])}..{_num(bounds[1])}")
            return False, None
        return True, value
    if tp is str:
        if not isinstance(value, str):
            doc.problem(path, f"must be a string, not {describe(value)}")
            return False, None
        kind = meta.get("digits")
        if kind is not None:
            why = check_digits(value, kind)
            if why is not None:
                doc.problem(path, why)
                return False, None
            value = value.lstrip("+")
        if meta.get("path"):
            value = str(doc.resolve_file(path, value))
        return True, value
    raise TypeError(f"schema type {tp!r} not handled")  # a bug in the schema, not the file


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)
