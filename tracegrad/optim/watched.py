"""The containers an optimizer keeps its parameters and state in, which say when what they hold
changes.

A compiled training step holds the tensors it read by identity: the parameters of each group,
and each parameter's state (Adam's moments, SGD's momentum buffer). Whatever replaces one of
them (``opt.state.clear()`` to reset the moments, ``del opt.state[p]``,
``group["params"].append(p)``, an optimizer creating the state of a parameter that gets its
first gradient) bumps ``tensor._structure_epoch``, as assigning a module's parameter does, and
the compiled step traces again. Reading them costs what reading a dict or a list costs.
"""

from __future__ import annotations

from typing import Any

from ..tensor import _structure_epoch

_MISSING = object()


def _bump() -> None:
    _structure_epoch[0] += 1


class StateDict(dict):
    """``optimizer.state`` (parameter id -> its state) and each parameter's state (name ->
    tensor or number): any change of what a key holds is a structural change. A dict put in
    ``optimizer.state`` is kept as a `StateDict` of its items."""

    __slots__ = ()

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__()
        self.update(*args, **kwargs)

    def __setitem__(self, key: Any, value: Any) -> None:
        if type(value) is dict:
            value = StateDict(value)
        if dict.get(self, key, _MISSING) is not value:
            _bump()
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: Any) -> None:
        dict.__delitem__(self, key)
        _bump()

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return dict.__getitem__(self, key)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Any) -> StateDict:
        self.update(other)
        return self

    def pop(self, *args: Any) -> Any:
        _bump()
        return dict.pop(self, *args)

    def popitem(self) -> tuple:
        _bump()
        return dict.popitem(self)

    def clear(self) -> None:
        _bump()
        dict.clear(self)

    def __reduce__(self) -> tuple:  # (copy and pickle: one of the same items)
        return (type(self), (dict(self),))


class ParamStates(StateDict):
    """``optimizer.state``: parameter -> its state. A missing parameter's state is created
    empty on first access, as by PyTorch's ``defaultdict(dict)``."""

    __slots__ = ()

    def __missing__(self, key: Any) -> StateDict:
        self[key] = state = StateDict()
        return state


class ParamList(list):
    """A parameter group's ``"params"``, and ``optimizer.param_groups``: any change of what
    they hold is a structural change."""

    __slots__ = ()

    def __reduce__(self) -> tuple:
        return (type(self), (list(self),))


def _changing(name: str) -> Any:
    method = getattr(list, name)

    def change(self: ParamList, *args: Any) -> Any:
        _bump()
        return method(self, *args)

    change.__name__ = name
    return change


for _name in ("__setitem__", "__delitem__", "__iadd__", "__imul__", "append", "extend",
              "insert", "pop", "remove", "clear", "sort", "reverse"):
    setattr(ParamList, _name, _changing(_name))


class ParamGroup(StateDict):
    """One parameter group: a new ``"params"`` is a structural change (kept as a `ParamList`);
    a new value of a hyper-parameter is not (a compiled step reads each float afresh, and
    guards the others by value)."""

    __slots__ = ()

    def __setitem__(self, key: Any, value: Any) -> None:
        if key == "params":
            if type(value) is not ParamList:
                value = ParamList(value)
            _bump()
        dict.__setitem__(self, key, value)
