"""A quicker ``__init__`` for the frozen, slotted dataclasses built on every lookup.

A frozen dataclass's generated ``__init__`` sets each field through
``object.__setattr__`` (its own ``__setattr__`` refuses): an attribute lookup and a call per
field, 1.5 us for eight fields on CPython 3.11. :func:`quick_init` replaces it with one that
calls each slot's own setter, bound once: a third of that. The instances are the same
(frozen: assignment still raises ``FrozenInstanceError``; equal, hashed and shown as
before), and so are the arguments the class takes, positional or by name, with the same
defaults."""

from __future__ import annotations

import dataclasses
from typing import TypeVar

__all__ = ["quick_init"]

T = TypeVar("T", bound=type)


def quick_init(cls: T) -> T:
    """``cls`` (a ``@dataclass(frozen=True, slots=True)``) with the quicker ``__init__``;
    a class it cannot do that for (a ``__post_init__``, an ``InitVar``, a keyword-only
    field, a default factory, a field left out of ``__init__``) is returned as it is."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in vars(cls) \
            or hasattr(cls, "__post_init__"):
        return cls
    names, args, ns = [], [], {}
    for f in cls.__dataclass_fields__.values():  # type: ignore[attr-defined]
        if f._field_type is dataclasses._FIELD_CLASSVAR:  # type: ignore[attr-defined]
            continue
        if (f._field_type is not dataclasses._FIELD or not f.init  # type: ignore[attr-defined]
                or f.kw_only or f.default_factory is not dataclasses.MISSING):
            return cls
        slot = vars(cls).get(f.name)
        if slot is None or not hasattr(slot, "__set__"):
            return cls
        ns[f"_set_{f.name}"] = slot.__set__
        names.append(f.name)
        if f.default is dataclasses.MISSING:
            args.append(f.name)
        else:
            ns[f"_default_{f.name}"] = f.default
            args.append(f"{f.name}=_default_{f.name}")
    body = "".join(f"    _set_{n}(self, {n})\n" for n in names) or "    pass\n"
    exec(f"def __init__(self, {', '.join(args)}):\n{body}", ns)  # noqa: S102
    init = ns["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    cls.__init__ = init  # type: ignore[misc]
    return cls
