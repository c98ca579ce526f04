"""Containers with PyTorch's behaviour: ModuleDict, ParameterList, ParameterDict.

Their entries are registered like attributes, so ``parameters()``, ``state_dict()`` (keys
``"blocks.encoder.weight"``, ``"params.0"``, ``"scales.alpha"``) and ``to()`` see them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Iterable, Iterator

from ..tensor import Tensor
from .module import Module, Parameter, restructured


def _as_parameter(value: Any, who: str) -> Parameter:
    if isinstance(value, Parameter):
        return value
    if isinstance(value, Tensor):  # PyTorch wraps plain tensors too
        return Parameter(value.detach().data)
    raise TypeError(f"{who}: entries must be tg.nn.Parameters or tensors, got "
                    f"{type(value).__name__}")


def _describe(p: Parameter) -> str:
    return f"Parameter containing: [tg.{p.dtype} of size {'x'.join(map(str, p.shape))}]"


class ModuleDict(Module):
    """A dict of named submodules.

    >>> heads = nn.ModuleDict({"cls": nn.Linear(8, 3), "box": nn.Linear(8, 4)})
    >>> heads["cls"](x)
    """

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple] | None = None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"ModuleDict: {key!r} must be a Module, got "
                            f"{type(module).__name__}")
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]
        restructured()

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def keys(self) -> Any:
        return self._modules.keys()

    def values(self) -> Any:
        return self._modules.values()

    def items(self) -> Any:
        return self._modules.items()

    def pop(self, key: str) -> Module:
        m = self._modules.pop(key)
        restructured()
        return m

    def clear(self) -> None:
        self._modules.clear()
        restructured()

    def update(self, modules: Mapping[str, Module] | Iterable[tuple]) -> None:
        pairs = modules.items() if isinstance(modules, Mapping) else modules
        for key, m in pairs:
            self[key] = m

    def forward(self, *args: Any) -> Any:
        raise TypeError("ModuleDict is a container and has no forward(); index it by name")


class ParameterList(Module):
    """A list of parameters, registered as ``"0"``, ``"1"``, ...

    >>> self.scales = nn.ParameterList([nn.Parameter(tg.ones(4)) for _ in range(3)])
    """

    def __init__(self, values: Iterable[Any] | None = None):
        super().__init__()
        for v in values or []:
            self.append(v)

    def __getitem__(self, i: int | slice) -> Any:
        items = list(self._parameters.values())
        if isinstance(i, slice):
            return ParameterList(items[i])
        return items[i]

    def __setitem__(self, i: int, value: Any) -> None:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"ParameterList: index {i} is out of range for {n} entries")
        self.register_parameter(str(i % n), _as_parameter(value, "ParameterList"))

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self._parameters.values())

    def append(self, value: Any) -> "ParameterList":
        self.register_parameter(str(len(self)), _as_parameter(value, "ParameterList"))
        return self

    def extend(self, values: Iterable[Any]) -> "ParameterList":
        for v in values:
            self.append(v)
        return self

    def forward(self, *args: Any) -> Any:
        raise TypeError("ParameterList is a container and has no forward()")

    def extra_repr(self) -> str:
        return "\n".join(f"({k}): {_describe(p)}" for k, p in self._parameters.items())


class ParameterDict(Module):
    """A dict of named parameters.

    >>> self.bias = nn.ParameterDict({"a": nn.Parameter(tg.zeros(3))})
    """

    def __init__(self, parameters: Mapping[str, Any] | Iterable[tuple] | None = None):
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def __getitem__(self, key: str) -> Parameter:
        return self._parameters[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.register_parameter(key, _as_parameter(value, "ParameterDict"))

    def __delitem__(self, key: str) -> None:
        del self._parameters[key]
        restructured()

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self) -> Iterator[str]:
        return iter(self._parameters)

    def __contains__(self, key: object) -> bool:
        return key in self._parameters

    def keys(self) -> Any:
        return self._parameters.keys()

    def values(self) -> Any:
        return self._parameters.values()

    def items(self) -> Any:
        return self._parameters.items()

    def pop(self, key: str) -> Parameter:
        p = self._parameters.pop(key)
        restructured()
        return p

    def get(self, key: str, default: Any = None) -> Any:
        return self._parameters.get(key, default)

    def update(self, parameters: Mapping[str, Any] | Iterable[tuple]) -> None:
        """Add ``parameters``: an OrderedDict or ParameterDict in its order, any other
        mapping in sorted key order (PyTorch's: so parameters() and the state dict come in
        the same order as torch's), or (key, value) pairs in their order."""
        if isinstance(parameters, (OrderedDict, ParameterDict)):
            pairs = parameters.items()
        elif isinstance(parameters, Mapping):
            pairs = sorted(parameters.items())
        else:
            pairs = parameters
        for key, value in pairs:
            self[key] = value

    def forward(self, *args: Any) -> Any:
        raise TypeError("ParameterDict is a container and has no forward()")

    def extra_repr(self) -> str:
        return "\n".join(f"({k}): {_describe(p)}" for k, p in self._parameters.items())
