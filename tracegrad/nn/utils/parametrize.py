"""``tg.nn.utils.parametrize``, as ``torch.nn.utils.parametrize``: make a module's tensor
the output of a function of other parameters (``weight = f(original)``), recomputed at every
access, so gradients reach the originals.

>>> class Symmetric(nn.Module):
...     def forward(self, X):
...         return X.triu() + X.triu(1).T
>>> parametrize.register_parametrization(layer, "weight", Symmetric())
>>> layer.weight            # symmetric; layer.parametrizations.weight.original is trained

As in PyTorch, the module's class is swapped for a subclass (``ParametrizedLinear``) with a
property per parametrized tensor; the originals live in ``module.parametrizations[name]``
(state dict keys ``parametrizations.weight.original``, or ``original0``, ``original1``, ...
when ``right_inverse`` returns several tensors). `computed_attribute` is that class swap on
its own, which the older ``weight_norm`` and ``spectral_norm`` (weight_norm.py) use too.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from typing import Any, Callable, Iterator

from ...autograd import no_grad
from ...tensor import Tensor, _structure_epoch
from ..containers import ModuleDict
from ..module import Module, Parameter

_cache: dict[str, Any] = {"on": 0, "values": {}}


@contextlib.contextmanager
def cached() -> Iterator[None]:
    """Inside, each parametrized tensor is computed once (at its first access) and reused.

    >>> with parametrize.cached():
    ...     y = rnn(x)      # the recurrent weight's parametrization runs once, not per step
    """
    _cache["on"] += 1
    try:
        yield
    finally:
        _cache["on"] -= 1
        if not _cache["on"]:
            _cache["values"] = {}


# ---------------------------------------------------------------- the class swap


def computed_attribute(module: Module, name: str, get: Callable[[Module], Any],
                       set: Callable[[Module, Any], None] | None = None,
                       before_forward: Callable[[Module], None] | None = None) -> None:
    """Make ``module.<name>`` a property computed by ``get(module)`` (and assigned through
    ``set(module, value)``), by giving the module a subclass of its class of its own;
    ``before_forward(module)`` runs at the start of each forward (old spectral_norm's power
    iteration). Undo with `remove_computed_attribute`."""
    cls = _own_class(module)
    if not isinstance(module._parameters, _ComputedParameters):
        params = _ComputedParameters(module._parameters)
        params.module = module
        object.__setattr__(module, "_parameters", params)
    _add_property(cls, name, get, set, before_forward)
    _structure_epoch[0] += 1


def _own_class(module: Module) -> type:
    cls = type(module)
    if not getattr(cls, "_computed", None):
        cls = type(f"Parametrized{cls.__name__}", (cls,),
                   {"_computed": {}, "_before_forward": {}, "__setattr__": _setattr,
                    "forward": _forward, "__reduce_ex__": _reduce_ex})
        object.__setattr__(module, "__class__", cls)
    return cls


def _add_property(cls: type, name: str, get: Callable, set: Callable | None,
                  before_forward: Callable | None) -> None:
    cls._computed[name] = (get, set)
    if before_forward is not None:
        cls._before_forward[name] = before_forward
    setattr(cls, name, property(get, _setter(name, set)))


def remove_computed_attribute(module: Module, name: str) -> None:
    """Undo `computed_attribute` for ``name``; with none left, the module gets its class
    back."""
    cls = type(module)
    del cls._computed[name]
    cls._before_forward.pop(name, None)
    delattr(cls, name)
    if not cls._computed:
        object.__setattr__(module, "__class__", cls.__bases__[0])
        object.__setattr__(module, "_parameters", OrderedDict(module._parameters))
    _structure_epoch[0] += 1


class _ComputedParameters(OrderedDict):
    """A parametrized module's parameter registry: the parameters it holds, and, looked up
    by name, its computed tensors too. Layers read ``self._parameters["weight"]`` in their
    forward (quicker than ``self.weight``); this way they get the computed weight without
    change, while iterating (``parameters()``, ``state_dict()``) sees only real ones."""

    module: Module

    def __missing__(self, name: str) -> Any:
        if name in getattr(type(self.module), "_computed", ()):
            return getattr(self.module, name)
        raise KeyError(name)

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default


def _setter(name: str, set: Callable | None) -> Callable:
    def setter(module: Module, value: Any) -> None:
        if set is None:
            raise AttributeError(f"{name!r} of {type(module).__name__} is computed and "
                                 f"cannot be assigned")
        set(module, value)

    return setter


def _setattr(self: Module, name: str, value: Any) -> None:
    if name in type(self)._computed:
        object.__setattr__(self, name, value)  # the property's setter
    else:
        Module.__setattr__(self, name, value)


def _forward(self: Module, *args: Any, **kwargs: Any) -> Any:
    cls = type(self)
    for hook in cls._before_forward.values():
        hook(self)
    return super(cls, self).forward(*args, **kwargs)


def _reduce_ex(self: Module, protocol: int) -> Any:
    """Copies (copy.deepcopy) get a subclass of their own, so parametrizing or
    un-parametrizing the copy leaves the original's class alone."""
    cls = type(self)
    state = dict(self.__dict__)
    return (_rebuild, (cls.__bases__[0], dict(cls._computed), dict(cls._before_forward)),
            state)


def _rebuild(base: type, computed: dict, before: dict) -> Module:
    module = base.__new__(base)
    cls = _own_class(module)
    for name, (get, set) in computed.items():
        _add_property(cls, name, get, set, before.get(name))
    return module


# ---------------------------------------------------------------- parametrizations


class ParametrizationList(Module):
    """The parametrizations of one tensor, applied in order, and the original(s) they
    start from (``original``, or ``original0``, ``original1``, ... when the first
    parametrization's ``right_inverse`` returns several tensors)."""

    def __init__(self, modules: list[Module], original: Tensor, unsafe: bool = False):
        super().__init__()
        self.unsafe = unsafe
        self._chain: list[Module] = []
        for m in modules:
            self.append(m)
        with no_grad():
            new = original
            for m in reversed(self._chain):
                if hasattr(m, "right_inverse"):
                    new = m.right_inverse(new)
        self.is_tensor = isinstance(new, Tensor)
        self.ntensors = 1 if self.is_tensor else len(new)
        if self.is_tensor and new.shape == original.shape and new.dtype == original.dtype:
            # the same parameter object stays the original (an optimizer built before
            # holds it), as in PyTorch
            with no_grad():
                original.copy_(new)
            self._hold("original", original)
        elif self.is_tensor:
            self._hold("original", _parameter_like(new, original))
        else:
            for i, t in enumerate(new):
                self._hold(f"original{i}", _parameter_like(t, original))
        if not unsafe:
            self._check(original)

    def _hold(self, name: str, t: Tensor) -> None:
        """An original is a parameter if the parametrized tensor was one, else a buffer."""
        if isinstance(t, Parameter):
            setattr(self, name, t)
        else:
            self.register_buffer(name, t)

    def append(self, module: Module) -> None:
        self.add_module(str(len(self._chain)), module)
        self._chain.append(module)

    def __getitem__(self, i: int) -> Module:
        return self._chain[i]

    def __len__(self) -> int:
        return len(self._chain)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._chain)

    def originals(self) -> list[Tensor]:
        return [self.original] if self.is_tensor else \
            [getattr(self, f"original{i}") for i in range(self.ntensors)]

    def forward(self) -> Tensor:
        first, *rest = self._chain
        x = first(*self.originals())
        for m in rest:
            x = m(x)
        return x

    def right_inverse(self, value: Tensor) -> None:
        """Set the originals so that the parametrized tensor becomes ``value``."""
        with no_grad():
            for m in reversed(self._chain):
                if not hasattr(m, "right_inverse"):
                    raise RuntimeError(f"parametrize: cannot assign to a parametrized tensor: "
                                       f"{type(m).__name__} does not implement right_inverse")
                value = m.right_inverse(value)
            news = [value] if self.is_tensor else list(value)
            for old, new in zip(self.originals(), news):
                if tuple(new.shape) != tuple(old.shape):
                    raise ValueError(f"parametrize: right_inverse gave shape {new.shape} for "
                                     f"an original of shape {old.shape}")
                old.copy_(new.to(old.dtype))

    def _check(self, original: Tensor) -> None:
        with no_grad():
            out = self()
        if not isinstance(out, Tensor) or tuple(out.shape) != tuple(original.shape) or \
                out.dtype != original.dtype:
            raise ValueError(
                f"register_parametrization: the parametrization turns a tensor of shape "
                f"{tuple(original.shape)} ({original.dtype}) into "
                f"{_describe(out)}; it must keep the shape and dtype (or pass unsafe=True)")


def _describe(x: Any) -> str:
    if isinstance(x, Tensor):
        return f"shape {tuple(x.shape)} ({x.dtype})"
    return type(x).__name__


def _parameter_like(t: Tensor, original: Tensor) -> Tensor:
    if isinstance(original, Parameter):
        return Parameter(t.detach().clone(), requires_grad=original.requires_grad)
    return t.detach().clone()


def _get_parametrized(name: str) -> Callable[[Module], Tensor]:
    def get(module: Module) -> Tensor:
        plist = module.parametrizations[name]
        if not _cache["on"]:
            return plist()
        key = (id(module), name)
        if key not in _cache["values"]:
            _cache["values"][key] = plist()
        return _cache["values"][key]

    get.__name__ = name
    return get


def _set_parametrized(name: str) -> Callable[[Module, Any], None]:
    def set(module: Module, value: Any) -> None:
        module.parametrizations[name].right_inverse(value)

    return set


def register_parametrization(module: Module, tensor_name: str, parametrization: Module,
                             *, unsafe: bool = False) -> Module:
    """Make ``module.<tensor_name>`` be ``parametrization(original)``; a second call on the
    same name chains another parametrization after the first. If ``parametrization`` has
    ``right_inverse(value)``, the original is initialised with it (so the tensor keeps its
    value) and assigning to ``module.<tensor_name>`` goes through it.

    >>> parametrize.register_parametrization(model.fc, "weight", Symmetric())
    """
    if not isinstance(parametrization, Module):
        raise TypeError(f"register_parametrization: the parametrization must be a "
                        f"tg.nn.Module, got {type(parametrization).__name__}")
    if is_parametrized(module, tensor_name):
        plist = module.parametrizations[tensor_name]
        if not unsafe:
            with no_grad():
                out = parametrization(plist())
            if tuple(out.shape) != tuple(plist().shape):
                raise ValueError(f"register_parametrization: the new parametrization changes "
                                 f"the shape of {tensor_name!r} from {tuple(plist().shape)} "
                                 f"to {tuple(out.shape)} (pass unsafe=True)")
        plist.append(parametrization)
        _structure_epoch[0] += 1
        return module
    if tensor_name in module._parameters or tensor_name in module._buffers:
        original = getattr(module, tensor_name)
    else:
        raise AttributeError(f"register_parametrization: {type(module).__name__} has no "
                             f"parameter or buffer {tensor_name!r}")
    if original is None:
        raise ValueError(f"register_parametrization: {tensor_name!r} is None")
    plist = ParametrizationList([parametrization], original, unsafe=unsafe)
    delattr(module, tensor_name)
    if "parametrizations" not in module._modules:
        module.parametrizations = ModuleDict()
    module.parametrizations[tensor_name] = plist
    computed_attribute(module, tensor_name, _get_parametrized(tensor_name),
                       _set_parametrized(tensor_name))
    return module


def is_parametrized(module: Module, tensor_name: str | None = None) -> bool:
    """Whether ``module`` has any parametrization (or one on ``tensor_name``)."""
    plists = module._modules.get("parametrizations")
    if not isinstance(plists, ModuleDict) or not getattr(type(module), "_computed", None):
        return False
    return len(plists) > 0 if tensor_name is None else tensor_name in plists


def remove_parametrizations(module: Module, tensor_name: str,
                            leave_parametrized: bool = True) -> Module:
    """Undo `register_parametrization`: ``module.<tensor_name>`` becomes a plain parameter
    again, holding the current parametrized value (``leave_parametrized=True``) or the
    original (which must then be a single tensor of the right shape)."""
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"remove_parametrizations: {type(module).__name__} has no "
                         f"parametrization on {tensor_name!r}")
    plist = module.parametrizations[tensor_name]
    with no_grad():
        if leave_parametrized:
            value = plist()
        elif plist.is_tensor:
            value = plist.original
        else:
            raise ValueError("remove_parametrizations: leave_parametrized=False needs a "
                             "single original tensor (right_inverse returned several)")
    requires_grad = any(o.requires_grad for o in plist.originals())
    remove_computed_attribute(module, tensor_name)
    del module.parametrizations[tensor_name]
    first = plist.originals()[0]
    if isinstance(first, Parameter):
        setattr(module, tensor_name, Parameter(value.detach().clone(),
                                               requires_grad=requires_grad))
    else:
        module.register_buffer(tensor_name, value.detach().clone())
    if not len(module.parametrizations):
        del module.parametrizations
    return module


__all__ = ["ParametrizationList", "cached", "computed_attribute", "is_parametrized",
           "register_parametrization", "remove_computed_attribute", "remove_parametrizations"]
