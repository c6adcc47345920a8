"""gateway.frozen.quick_init: the same instances as the dataclass's own __init__, quicker."""

from __future__ import annotations

import dataclasses
import pickle
from typing import ClassVar

import pytest

from gateway.config.schema import MethodKind
from gateway.engine import LookupOutcome, LookupStatus
from gateway.frozen import quick_init
from gateway.methods import MethodOutcome, MethodStatus
from gateway.numbers import Number, parse_number


@dataclasses.dataclass(frozen=True, slots=True)
class _Plain:
    a: int
    b: str = "x"
    c: tuple[int, ...] = ()
    k: ClassVar[int] = 3


@quick_init
@dataclasses.dataclass(frozen=True, slots=True)
class _Quick:
    a: int
    b: str = "x"
    c: tuple[int, ...] = ()
    k: ClassVar[int] = 3


@pytest.mark.parametrize("args,kwargs", [((1,), {}), ((1, "y"), {}), ((1,), {"c": (2,)}),
                                         ((), {"a": 1, "b": "z", "c": (3, 4)})])
def test_quick_init_builds_what_the_dataclass_builds(args, kwargs) -> None:
    plain, quick = _Plain(*args, **kwargs), _Quick(*args, **kwargs)
    assert dataclasses.astuple(plain) == dataclasses.astuple(quick)
    assert repr(plain).replace("_Plain", "_Quick") == repr(quick)
    assert quick == _Quick(*args, **kwargs) and hash(quick) == hash(_Quick(*args, **kwargs))
    assert pickle.loads(pickle.dumps(quick)) == quick
    assert dataclasses.replace(quick, a=9).a == 9
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.a = 2  # type: ignore[misc]


def test_quick_init_refuses_the_arguments_the_dataclass_refuses() -> None:
    for cls in (_Plain, _Quick):
        with pytest.raises(TypeError):
            cls()  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            cls(1, "y", (), 4)  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            cls(1, d=2)  # type: ignore[call-arg]


def test_quick_init_leaves_what_it_cannot_mirror() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Post:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclasses.dataclass(frozen=True, slots=True)
    class Factory:
        a: list[int] = dataclasses.field(default_factory=list)

    @dataclasses.dataclass(slots=True)
    class Mutable:
        a: int

    for cls in (Post, Factory, Mutable):
        init = cls.__init__
        assert quick_init(cls).__init__ is init


def test_the_lookup_path_classes_use_it() -> None:
    for cls in (LookupOutcome, MethodOutcome, Number):
        assert cls.__init__.__module__ == cls.__module__
        assert all(n.startswith("_set_") for n in cls.__init__.__code__.co_names)
    m = MethodOutcome(0, MethodKind.MAP_SRI_SM, "sri", MethodStatus.ANSWERED, False, "result")
    assert (m.latency, m.map, m.local, m.sip, m.timed_out) == (0.0, None, None, None, False)
    o = LookupOutcome("447534200001", LookupStatus.ANSWERED, "uk-ee", "447534", None, (m,),
                      0.01)
    assert o.detail == "" and o.final is m
    n = parse_number("447534200001")
    assert n == Number("447534200001", 44, "7534200001", "GB", n.type, n.valid)
