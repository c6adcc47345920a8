"""Building frozen, slotted dataclasses on the hot path without their ``__init__``.

A frozen dataclass's generated ``__init__`` sets each field through ``object.__setattr__``
(the class's own ``__setattr__`` refuses), one global lookup and one call per field; for the
values decoded or built once per dialogue (addresses) that is most of their cost.
:func:`mutable_twin` makes a plain slotted dataclass with the same slots: an instance of the
twin is built by its ordinary ``__init__`` and then given the frozen class
(``obj.__class__ = cls``, which CPython allows between classes of the same layout). The result
is an ordinary instance of ``cls``: equal, hashable and frozen like one from its constructor.

``__post_init__`` does not run: a caller gives values already as the constructor would
leave them (the tests compare each such builder with the constructor).
"""

from __future__ import annotations

import dataclasses


def mutable_twin(cls: type) -> type:
    """A mutable dataclass with the slots of the frozen, slotted dataclass ``cls``: its
    ``__init__`` takes every field of ``cls`` positionally, in order."""
    names = tuple(f.name for f in dataclasses.fields(cls))
    if getattr(cls, "__slots__", None) != names:
        raise TypeError(f"{cls.__name__} is not a slotted dataclass")
    return dataclasses.make_dataclass(f"_{cls.__name__}Twin", names, slots=True, eq=False)
