"""`Module` and `Parameter`: PyTorch's model-building interface.

A Module registers the Parameters, buffers and sub-Modules assigned to its attributes, so
``parameters()``, ``state_dict()``, ``train()``/``eval()`` and the printed tree come for free.
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple
from collections.abc import Mapping
from typing import Any, Callable, Iterator

import numpy as np

from .. import dtypes
from ..autograd import no_grad
from ..errors import ShapeError
from ..tensor import Tensor, _as_array, _bump, _structure_epoch, _to_args
from . import hooks as _hooks
from .hooks import RemovableHandle


class Parameter(Tensor):
    """A tensor that is a module's learnable weight: ``requires_grad`` is on by default.

    >>> w = tg.nn.Parameter(tg.randn(3, 2))
    """

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True):
        if data is None:
            data = np.zeros((0,), dtype=dtypes.default_float)
        super().__init__(_as_array(data))
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict`` returns: the keys it did not find and the keys it did not
    use (both empty unless ``strict=False``), as PyTorch's ``_IncompatibleKeys``."""

    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()


def _held(d: dict, name: str) -> Any:
    """What a module (its ``__dict__``: ``d``) holds under ``name`` now, else a fresh object."""
    for reg in ("_parameters", "_buffers", "_modules"):
        if name in d.get(reg, ()):
            return d[reg][name]
    return d.get(name, _held)


class Module:
    """Base class of every layer and model. Subclasses set attributes in ``__init__`` (after
    ``super().__init__()``) and define ``forward``; calling the module calls ``forward``.

    >>> class Net(tg.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = tg.nn.Linear(4, 2)
    ...     def forward(self, x):
    ...         return self.fc(x).relu()
    """

    # State-dict entries a loaded state dict may lack (they keep their values); see
    # `_may_lack`. BatchNorm's num_batches_tracked, as in PyTorch.
    _optional_state: tuple[str, ...] = ()

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        for name in _HOOK_DICTS:
            object.__setattr__(self, name, OrderedDict())

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        for name in _HOOK_DICTS:  # (a module pickled before it had hooks)
            self.__dict__.setdefault(name, OrderedDict())

    # ---------------------------------------------------------------- registration

    def _registries(self) -> tuple[dict, dict, dict]:
        try:
            return self._parameters, self._buffers, self._modules
        except AttributeError:
            raise RuntimeError(
                f"{type(self).__name__}.__init__ must call super().__init__() before "
                f"assigning parameters or submodules"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        if (isinstance(value, (Tensor, Module)) or value is None) and \
                _held(d, name) is not value:  # (x += 1 on a tensor attribute: the same one)
            _structure_epoch[0] += 1
        if isinstance(value, (Parameter, Module)):
            params, buffers, modules = self._registries()
            target = params if isinstance(value, Parameter) else modules
            for reg in (params, buffers, modules):
                if reg is not target:
                    reg.pop(name, None)
            d.pop(name, None)
            target[name] = value  # a name already there keeps its place, as in PyTorch
            return
        for reg, expected in (("_parameters", "a tg.nn.Parameter"), ("_modules", "a Module"),
                              ("_buffers", "a tg.Tensor")):
            if name in d.get(reg, ()):
                ok = value is None or (reg == "_buffers" and isinstance(value, Tensor))
                if not ok:
                    raise TypeError(
                        f"cannot assign {type(value).__name__} to {name!r} of "
                        f"{type(self).__name__}: {expected} or None expected"
                    )
                d[reg][name] = value
                return
        object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for reg in ("_parameters", "_buffers", "_modules"):
            if reg in d and name in d[reg]:
                return d[reg][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for reg in (self._parameters, self._buffers, self._modules):
            if name in reg:
                del reg[name]
                restructured()
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a tg.nn.Parameter or None")
        self._registries()[0][name] = param
        restructured()

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """A tensor that is state but not learned (e.g. BatchNorm's running mean);
        ``persistent=False`` keeps it out of ``state_dict()``."""
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"register_buffer: the name must be a non-empty string without "
                           f"'.', got {name!r}")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a tg.Tensor or None")
        params, buffers, modules = self._registries()
        if name in params or name in modules or (name in self.__dict__
                                                 and name not in buffers):
            raise KeyError(f"register_buffer: {type(self).__name__} already has an attribute "
                           f"{name!r} that is not a buffer; pick another name or delete it")
        buffers[name] = tensor
        restructured()
        if persistent:
            self._non_persistent.discard(name)  # re-registering can make it persistent
        else:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a tg.nn.Module or None, got "
                            f"{type(module).__name__}")
        if not isinstance(name, str) or "." in name or not name:
            raise KeyError(f"add_module: the name must be a non-empty string without '.', "
                           f"got {name!r}")
        self._registries()[2][name] = module
        restructured()

    register_module = add_module

    # ---------------------------------------------------------------- lookup by path

    def get_submodule(self, target: str) -> "Module":
        """The submodule at a dotted path: ``model.get_submodule("encoder.0.fc")``; ``""``
        is the module itself."""
        m = self
        for i, name in enumerate(target.split(".") if target else []):
            child = m._modules.get(name) if name in m._modules else None
            if child is None:
                where = ".".join(target.split(".")[:i]) or type(self).__name__
                raise AttributeError(f"get_submodule({target!r}): {where} has no submodule "
                                     f"{name!r}")
            m = child
        return m

    def _owner_of(self, target: str, registry: str, what: str) -> tuple:
        path, _, name = target.rpartition(".")
        m = self.get_submodule(path)
        if name not in getattr(m, registry):
            raise AttributeError(f"get_{what}({target!r}): {type(m).__name__} has no {what} "
                                 f"{name!r}")
        return m, name

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at a dotted path: ``model.get_parameter("0.weight")``."""
        m, name = self._owner_of(target, "_parameters", "parameter")
        return m._parameters[name]

    def get_buffer(self, target: str) -> Tensor:
        """The buffer at a dotted path: ``model.get_buffer("bn.running_mean")``."""
        m, name = self._owner_of(target, "_buffers", "buffer")
        return m._buffers[name]

    def set_submodule(self, target: str, module: "Module", strict: bool = False) -> None:
        """Put ``module`` at a dotted path (its parent must exist); with ``strict=True``
        only in place of a submodule that is there."""
        if not target:
            raise ValueError("set_submodule: cannot set the module itself (target is '')")
        if not isinstance(module, Module):
            raise TypeError(f"set_submodule: {type(module).__name__} is not a tg.nn.Module")
        path, _, name = target.rpartition(".")
        parent = self.get_submodule(path)
        if strict and name not in parent._modules:
            raise AttributeError(f"set_submodule({target!r}, strict=True): "
                                 f"{type(parent).__name__} has no submodule {name!r}")
        if name in parent.__dict__ and name not in parent._modules:
            raise AttributeError(f"set_submodule({target!r}): {name!r} of "
                                 f"{type(parent).__name__} is not a submodule")
        setattr(parent, name, module)

    # ---------------------------------------------------------------- calling

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"{type(self).__name__} has no forward(); a tg.nn.Module subclass defines "
            f"forward(self, ...) to say what calling it computes"
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        d = self.__dict__  # (one attribute lookup: Module's __getattr__ makes each slow)
        if d["_forward_pre_hooks"] or d["_forward_hooks"] or d["_backward_hooks"] or \
                d["_backward_pre_hooks"]:
            return _hooks.call(self, args, kwargs)
        return self.forward(*args, **kwargs)

    # ---------------------------------------------------------------- hooks (see hooks.py)

    def register_forward_pre_hook(self, hook: Callable, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """Run ``hook(module, args)`` before each ``forward``; it may return new args (a
        tuple, or one value) or None. With ``with_kwargs=True``: ``hook(module, args,
        kwargs)``, returning None or ``(args, kwargs)``. ``prepend=True`` runs it first.

        >>> h = model.register_forward_pre_hook(lambda m, args: (args[0] * 2,))
        >>> h.remove()
        """
        flags = (self._forward_pre_hooks_with_kwargs,) if with_kwargs else ()
        return _hooks.add(self._forward_pre_hooks, hook, prepend, flags)

    def register_forward_hook(self, hook: Callable, *, prepend: bool = False,
                              with_kwargs: bool = False,
                              always_call: bool = False) -> RemovableHandle:
        """Run ``hook(module, args, output)`` after each ``forward``; it may return a new
        output. ``with_kwargs=True``: ``hook(module, args, kwargs, output)``;
        ``always_call=True``: it runs even when ``forward`` raises (output None).

        >>> acts = {}
        >>> h = model.fc.register_forward_hook(lambda m, args, out: acts.update(fc=out))
        """
        flags = ((self._forward_hooks_with_kwargs,) if with_kwargs else ()) + \
            ((self._forward_hooks_always_called,) if always_call else ())
        return _hooks.add(self._forward_hooks, hook, prepend, flags)

    def register_full_backward_pre_hook(self, hook: Callable,
                                        prepend: bool = False) -> RemovableHandle:
        """Run ``hook(module, grad_output)`` when the gradients of the module's outputs are
        known; it may return a replacement ``grad_output`` (a tuple, one per output)."""
        return _hooks.add(self._backward_pre_hooks, hook, prepend)

    def register_full_backward_hook(self, hook: Callable,
                                    prepend: bool = False) -> RemovableHandle:
        """Run ``hook(module, grad_input, grad_output)`` when the gradients of the module's
        tensor inputs are computed (None for an input that needs no gradient); it may return
        a replacement ``grad_input`` tuple.

        >>> h = model.register_full_backward_hook(lambda m, gi, go: tuple(
        ...     None if g is None else g.clamp(-1, 1) for g in gi))
        """
        return _hooks.add(self._backward_hooks, hook, prepend)

    # ---------------------------------------------------------------- traversal

    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple]:
        """Every (name, module) below and including this one, depth first. A module reused
        in two places is listed once, unless ``remove_duplicate=False`` (then under every
        path, as state dicts name them), as PyTorch's."""
        if not remove_duplicate:
            stack = [(prefix, self)]
            while stack:
                p, m = stack.pop()
                yield p, m
                stack += reversed([(f"{p}.{n}" if p else n, c)
                                   for n, c in m._modules.items() if c is not None])
            return
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(memo, f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple]:
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator["Module"]:
        for _, m in self.named_children():
            yield m

    def _named(self, registry: str, prefix: str, recurse: bool,
               remove_duplicate: bool = True) -> Iterator[tuple]:
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) \
            if recurse else [(prefix, self)]
        for mod_prefix, m in mods:
            for name, t in getattr(m, registry).items():
                if t is None or (remove_duplicate and id(t) in seen):
                    continue
                seen.add(id(t))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), t

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple]:
        """(name, parameter) pairs; a parameter shared by two modules (tied weights) comes
        once, under its first name, unless ``remove_duplicate=False``."""
        return self._named("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple]:
        return self._named("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ---------------------------------------------------------------- modes and grads

    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad = Tensor(np.zeros_like(p.grad._data))

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def apply(self, fn: Callable[["Module"], None]) -> "Module":
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def to(self, *args: Any, **kwargs: Any) -> "Module":
        """Cast every float parameter and buffer (in place, keeping identity), as
        ``torch.nn.Module.to``: ``model.to(tg.float64)``, ``model.to(device)`` (the CPU: no
        change), ``model.to(device, dtype)``."""
        dt = _to_args("Module.to", args, kwargs)
        if dt is None:
            return self
        if dt.kind != "f":  # (casting the weights to ints would truncate them)
            raise TypeError(f"Module.to only accepts floating-point dtypes, got {dt}; it "
                            f"casts the float parameters and buffers (ints stay ints)")
        for t in list(self.parameters()) + list(self.buffers()):
            if t._data.dtype.kind == "f":
                t._data = t._data.astype(dt)
                if t.grad is not None:
                    t.grad = Tensor(t.grad._data.astype(dt))
        return self

    def cpu(self) -> "Module":
        return self

    def type(self, dst_type: Any) -> "Module":
        """Cast every float parameter and buffer to ``dst_type`` (``model.type(tg.float64)``)."""
        return self.to(dst_type)

    def share_memory(self) -> "Module":
        """(PyTorch's, for worker processes: tracegrad's arrays are ordinary memory; returns
        the module unchanged.)"""
        return self

    def to_empty(self, *, device: Any = None, recurse: bool = True) -> "Module":
        """(PyTorch's, to materialise a module built on the meta device: tracegrad's modules
        always hold their arrays; returns the module unchanged.)"""
        return self.to(device) if device is not None else self

    def cuda(self, *args: Any, **kwargs: Any) -> "Module":
        return self.to("cuda")  # raises: tracegrad runs on the CPU

    def double(self) -> "Module":
        return self.to(np.float64)

    def float(self) -> "Module":
        return self.to(np.float32)

    def half(self) -> "Module":
        return self.to(np.float16)

    # ---------------------------------------------------------------- state

    def _state_entries(self, extra: str = "") -> Iterator[tuple]:
        """(key, owning module, attribute name, tensor) of every state-dict entry: each
        parameter and persistent buffer under every path (tied weights under each name);
        with ``extra`` ("get_extra_state" or "set_extra_state"), also (key, module, None,
        None) for the ``_extra_state`` of each module whose class defines that method."""
        for mod_prefix, m in self.named_modules(remove_duplicate=False):
            base = f"{mod_prefix}." if mod_prefix else ""
            for name, p in m._parameters.items():
                if p is not None:
                    yield base + name, m, name, p
            for name, b in m._buffers.items():
                if b is not None and name not in m._non_persistent:
                    yield base + name, m, name, b
            if extra and getattr(type(m), extra) is not getattr(Module, extra):
                yield base + "_extra_state", m, None, None

    def get_extra_state(self) -> Any:
        """Define this (and `set_extra_state`) in a subclass to keep Python state of its own
        in ``state_dict()``, under ``"<prefix>_extra_state"``, as PyTorch's."""
        raise RuntimeError("Module.get_extra_state is called only for a subclass that "
                           "defines it")

    def set_extra_state(self, state: Any) -> None:
        """Define this (and `get_extra_state`) in a subclass: ``load_state_dict`` gives it
        the value `get_extra_state` returned, after loading the module's tensors."""
        raise RuntimeError("Module.set_extra_state is called only for a subclass that "
                           "defines it")

    def state_dict(self, *args: Any, destination: Any = None, prefix: str = "",
                   keep_vars: bool = False) -> "OrderedDict[str, Tensor]":
        """Name -> tensor for every parameter and persistent buffer, PyTorch's key names
        (``"0.weight"``). The tensors share memory with the module's and carry no graph
        (``keep_vars=True``: the parameters and buffers themselves). ``destination``, a
        dict to fill and return; ``prefix``, put before every key as it is (``"enc."``
        gives ``"enc.weight"``, as in PyTorch). (Positional arguments
        in PyTorch's order: destination, prefix, keep_vars.)"""
        if len(args) > 3:
            raise TypeError(f"state_dict takes at most 3 positional arguments (destination, "
                            f"prefix, keep_vars), got {len(args)}")
        destination, prefix, keep_vars = (*args, *(destination, prefix, keep_vars)[len(args):])
        out = OrderedDict() if destination is None else destination
        for key, m, _, t in self._state_entries("get_extra_state"):
            out[prefix + key] = m.get_extra_state() if t is None else \
                t if keep_vars else t.detach()
        return out

    def load_state_dict(self, state_dict: Mapping, strict: bool = True,
                        assign: bool = False) -> IncompatibleKeys:
        """Copy values from ``state_dict`` into this module's tensors (in place, so views
        of them and tensors from an earlier ``state_dict()`` see the new values).

        Every entry is checked before any is written, so a state dict that does not fit
        leaves the module bit-identical: with ``strict=True`` (the default) the keys must be
        exactly the module's; shapes must always match; a value is cast to the tensor's dtype
        as PyTorch casts it (float64 into a float32 parameter, ints or bools into floats),
        but a value that the dtype cannot hold (nan, inf, 2.5 or 1e30 into an int buffer, -1
        into a uint8 one, a finite float64 that overflows float32) is refused, not wrapped.
        One error names every bad key. Returns ``(missing_keys, unexpected_keys)`` as a named
        tuple, like PyTorch's.

        ``assign=True``, as PyTorch's: the state dict's tensors become the module's (no copy,
        no cast: they keep their dtype); a parameter's becomes a ``Parameter`` that requires
        grad as the one it replaces did.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"load_state_dict for {type(self).__name__}: expected a dict of name -> tensor "
                f"(a state_dict() or tg.load(path)), got {type(state_dict).__name__}"
            )
        own = {key: (m, name, t) for key, m, name, t in self._state_entries("set_extra_state")}
        missing = [k for k, (m, name, _) in own.items() if k not in state_dict
                   and not _may_lack(state_dict, k, m, name)]
        unexpected = [k for k in state_dict if k not in own]
        problems: list[tuple[type, str]] = []
        if strict and missing:
            problems.append((StateDictKeyError, "missing keys (in the model, not in the state "
                             f"dict): {', '.join(map(repr, missing))}"))
        if strict and unexpected:
            problems.append((StateDictKeyError, "unexpected keys (in the state dict, not in "
                             f"the model): {', '.join(map(repr, unexpected))}"))
        arrays = {}
        for k, (_, _, target) in own.items():
            if k in state_dict and target is not None:
                if assign:
                    arr = _assignable(k, state_dict[k], target, problems)
                else:
                    arr = _checked_value(k, state_dict[k], target._data, problems)
                if arr is not None:
                    arrays[k] = arr
        if problems:
            raise _load_error(type(self).__name__, problems, strict)
        # Everything fits: only assignments from here on, so nothing can fail half-way
        # (but a module's own set_extra_state, called in PyTorch's order: after its tensors).
        with no_grad():
            for k, (m, name, target) in own.items():
                if target is None and k in state_dict:
                    m.set_extra_state(state_dict[k])
                if k not in arrays:
                    continue
                arr = arrays[k]
                if assign:
                    setattr(m, name, arr)
                elif target._data.flags.writeable:
                    np.copyto(target._data, arr)  # into its memory: views see it, as torch's
                    _bump(target)
                else:  # (read-only memory of its own, from a read-only NumPy array)
                    target._data = arr
                    _bump(target)
        return IncompatibleKeys(missing, unexpected)

    # ---------------------------------------------------------------- printing

    def extra_repr(self) -> str:
        return ""

    def _child_lines(self) -> list[str]:
        return [f"({name}): " + repr(m).replace("\n", "\n  ")
                for name, m in self._modules.items()]

    def __repr__(self) -> str:
        extra = self.extra_repr()
        children = self._child_lines()
        if not children and "\n" not in extra:
            return f"{type(self).__name__}({extra})"
        lines = (extra.split("\n") if extra else []) + children
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


# A module's hooks (see hooks.py), as PyTorch names them. The last three only flag entries of
# the first two, and change only with them (tg.compile guards the first four).
_HOOK_DICTS = ("_forward_pre_hooks", "_forward_hooks", "_backward_pre_hooks", "_backward_hooks",
               "_forward_pre_hooks_with_kwargs", "_forward_hooks_with_kwargs",
               "_forward_hooks_always_called")


class _ModuleSequence(Module):
    """What Sequential and ModuleList share: their modules in order, named 0, 1, ...,
    indexed, changed and iterated as a list (negative indices and slices too)."""

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return self._sliced(list(self._modules.items())[i])
        return self._modules[_key_at(self._modules, i)]

    def __setitem__(self, i: int, module: Module) -> None:
        setattr(self, _key_at(self._modules, i), module)

    def __delitem__(self, i: int | slice) -> None:
        if isinstance(i, slice):
            for key in list(self._modules)[i]:
                delattr(self, key)
        else:
            delattr(self, _key_at(self._modules, i))
        _renumber(self)  # (the names become 0, 1, ..., as in PyTorch)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> Any:
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules: Any) -> Any:
        for m in modules:
            self.append(m)
        return self

    def pop(self, i: int | slice) -> Any:
        m = self[i]
        del self[i]
        return m


class Sequential(_ModuleSequence):
    """Modules applied one after another: ``Sequential(Linear(2, 16), ReLU(), Linear(16, 1))``,
    or with names: ``Sequential(OrderedDict(fc=Linear(2, 16), act=ReLU()))``. Indexing,
    ``append``, ``insert``, ``extend``, ``pop``, ``del``, ``+`` and ``*`` work as PyTorch's."""

    def __init__(self, *modules: Module):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def _sliced(self, items: list) -> "Sequential":
        return type(self)(OrderedDict(items))  # (the names are kept, as PyTorch keeps them)

    def forward(self, x: Any) -> Any:
        for m in self._modules.values():
            x = m(x)
        return x

    def insert(self, index: int, module: Module) -> "Sequential":
        _insert(self, index, module)
        return self

    def __add__(self, other: "Sequential") -> "Sequential":
        if not isinstance(other, Sequential):
            raise ValueError(f"add operator supports only objects of Sequential class, but "
                             f"{type(other)} is given.")
        return Sequential(*self, *other)

    def __iadd__(self, other: "Sequential") -> "Sequential":
        if not isinstance(other, Sequential):
            raise ValueError(f"add operator supports only objects of Sequential class, but "
                             f"{type(other)} is given.")
        return self.extend(list(other))

    def __mul__(self, n: int) -> "Sequential":
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError(f"Sequential * n: n must be an int, got {type(n).__name__}")
        if n <= 0:
            raise ValueError(f"Sequential * n: n must be positive, got {n}")
        return Sequential(*(list(self) * n))

    __rmul__ = __mul__

    def __imul__(self, n: int) -> "Sequential":
        return self.extend(list((self * n))[len(self):])


class ModuleList(_ModuleSequence):
    """A list of modules whose parameters are registered: ``ModuleList([Linear(4, 4)] * 3)``.
    Indexing (slices too), ``del``, ``insert``, ``pop``, ``+`` work as on a list."""

    def __init__(self, modules: Any = None):
        super().__init__()
        for m in modules or []:
            self.append(m)

    def _sliced(self, items: list) -> "ModuleList":
        return type(self)([m for _, m in items])

    def insert(self, index: int, module: Module) -> None:
        _insert(self, index, module)

    def __add__(self, other: Any) -> "ModuleList":
        return ModuleList([*self, *other])

    def __iadd__(self, other: Any) -> "ModuleList":
        return self.extend(other)

    def forward(self, *args: Any) -> Any:
        raise TypeError("ModuleList is a container and has no forward(); iterate over it")

    def _child_lines(self) -> list[str]:
        # PyTorch folds runs of identical children: "(0-2): 3 x Linear(...)".
        lines, items = [], list(self._modules.items())
        i = 0
        while i < len(items):
            body = repr(items[i][1])
            j = i
            while j + 1 < len(items) and repr(items[j + 1][1]) == body:
                j += 1
            body = body.replace("\n", "\n  ")
            if j > i:
                lines.append(f"({items[i][0]}-{items[j][0]}): {j - i + 1} x {body}")
            else:
                lines.append(f"({items[i][0]}): {body}")
            i = j + 1
        return lines


def restructured() -> None:
    """Count a change to which parameters, buffers or submodules a module holds: tg.compile
    checks the count on every call (a compiled call must see a module appended since)."""
    _structure_epoch[0] += 1


def _key_at(modules: OrderedDict, i: int) -> str:
    """The name of a list-like container's ``i``-th module (negative from the end)."""
    import operator

    i = operator.index(i)
    n = len(modules)
    if not -n <= i < n:
        raise IndexError(f"index {i} is out of range for a container of {n} modules")
    return list(modules)[i % n]


def _renumber(container: Module, mods: list | None = None) -> None:
    """Name a list-like container's modules (``mods``, else its own) 0, 1, ..., in place."""
    d = container._modules
    mods = list(d.values()) if mods is None else mods
    d.clear()
    d.update((str(i), m) for i, m in enumerate(mods))
    restructured()


def _insert(container: Module, index: int, module: Module) -> None:
    """Put ``module`` before position ``index`` (as list.insert, but out of range raises,
    as in PyTorch); the names become 0, 1, ..."""
    if not isinstance(module, Module):
        raise TypeError(f"insert: {type(module).__name__} is not a tg.nn.Module")
    n = len(container._modules)
    if not -n <= index <= n:
        raise IndexError(f"insert: index {index} is out of range for a container of {n} "
                         f"modules")
    mods = list(container._modules.values())
    mods.insert(index + n if index < 0 else index, module)
    _renumber(container, mods)


def _may_lack(state_dict: Mapping, key: str, module: Module, name: str) -> bool:
    """Whether ``state_dict`` may go without ``key`` (it then keeps its value): an entry a
    module's class lists in ``_optional_state``, when the state dict does not say it comes
    from a version of the module that had it, as PyTorch's BatchNorm takes a state dict
    without ``num_batches_tracked`` and without version metadata (from a file, or a dict
    comprehension: every tracegrad state dict)."""
    if name not in type(module)._optional_state:
        return False
    metadata = getattr(state_dict, "_metadata", None)
    prefix = key[: -len(name) - 1]
    version = metadata.get(prefix, {}).get("version") if isinstance(metadata, Mapping) else None
    return not isinstance(version, int) or version < 2


class StateDictKeyError(KeyError):
    """load_state_dict's error for missing or unexpected keys: a KeyError (as before) whose
    message prints as written (KeyError's own str() would quote it)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# Which exception a failed load raises when it has several kinds of problems: the first kind
# present in this order (the message lists them all).
_ERROR_ORDER = (StateDictKeyError, ShapeError, TypeError, ValueError)
_FIXES = {
    StateDictKeyError: "pass strict=False to load only the keys that match, or build the model "
                "that the state dict was saved from",
    ShapeError: "the state dict comes from a model of other sizes; build the model with the "
                "sizes it was saved with",
    TypeError: "give numeric arrays or tensors (bool, int or float)",
    ValueError: "fix those values in the state dict (casting would wrap or truncate them "
                "into wrong numbers), or make the tensor a dtype that holds them",
}


def _load_error(module: str, problems: list, strict: bool) -> Exception:
    kinds = [cls for cls in _ERROR_ORDER if any(c is cls for c, _ in problems)]
    lines = [f"  {text}" for _, text in problems]
    fixes = [f"  - {_FIXES[cls]}" for cls in kinds]
    n = len(problems)
    msg = (f"load_state_dict for {module}: {n} problem{'s' if n > 1 else ''}, nothing was "
           f"loaded (the module is unchanged):\n" + "\n".join(lines)
           + "\nto fix:\n" + "\n".join(fixes))
    return kinds[0](msg)


def _checked_value(key: str, value: Any, target: np.ndarray, problems: list) -> Any:
    """``value`` as a new array of ``target``'s dtype, or None after appending why it cannot
    be loaded into ``target`` to ``problems``."""
    if isinstance(value, Tensor):
        arr = value._data
    else:
        try:
            arr = np.asarray(value)
        except Exception as e:  # ragged lists and other non-arrays
            problems.append((TypeError, f"{key!r}: a {type(value).__name__} that is not an "
                                        f"array ({e})"))
            return None
    if arr.dtype.kind not in "biuf":
        problems.append((TypeError, f"{key!r}: dtype {arr.dtype} "
                                    f"({type(value).__name__}) cannot be loaded into a "
                                    f"{target.dtype} tensor"))
        return None
    if arr.shape != target.shape:
        problems.append((ShapeError, f"{key!r}: shape {arr.shape} ({arr.dtype}) in the state "
                                     f"dict, {target.shape} ({target.dtype}) in the model"))
        return None
    dt = target.dtype
    why = _unrepresentable(arr, dt)
    if why:
        problems.append((ValueError, f"{key!r}: the state dict's {arr.dtype} values include "
                                     f"{why}, which the model's {dt} tensor {arr.shape} "
                                     f"cannot hold ({_holds(dt)})"))
        return None
    with np.errstate(all="ignore"):
        return np.array(arr, dtype=dt, copy=True)


def _assignable(key: str, value: Any, target: Tensor, problems: list) -> Any:
    """What ``load_state_dict(assign=True)`` puts in ``target``'s place (``value`` itself
    when it is a tensor), or None after appending why it cannot to ``problems``."""
    if not isinstance(value, Tensor):
        try:
            value = Tensor(np.asarray(value))  # (a NumPy array's memory is kept, as torch's)
        except Exception as e:  # ragged lists, strings and other non-arrays
            problems.append((TypeError, f"{key!r}: a {type(value).__name__} that is not a "
                                        f"numeric array ({e})"))
            return None
    if value.dtype.kind not in "biuf":
        problems.append((TypeError, f"{key!r}: dtype {value.dtype} cannot be assigned to "
                                    f"a {target.dtype} tensor"))
        return None
    if value.shape != target.shape:
        problems.append((ShapeError, f"{key!r}: shape {value.shape} ({value.dtype}) in the "
                                     f"state dict, {target.shape} ({target.dtype}) in the "
                                     f"model"))
        return None
    if not isinstance(target, Parameter):
        return value
    if target.requires_grad and value.dtype.kind != "f":
        problems.append((TypeError, f"{key!r}: a {value.dtype} tensor cannot become a "
                                    f"parameter that requires grad (only floats can)"))
        return None
    if isinstance(value, Parameter):
        return value.requires_grad_(target.requires_grad)
    return Parameter(value.detach(), requires_grad=target.requires_grad)


def _holds(dt: np.dtype) -> str:
    if dt.kind == "f":
        return f"finite values up to {float(np.finfo(dt).max):.4g} in magnitude"
    if dt.kind == "b":
        return "only 0 and 1"
    info = np.iinfo(dt)
    return f"only whole numbers from {info.min} to {info.max}"


def _unrepresentable(arr: np.ndarray, dt: np.dtype) -> str | None:
    """A value of ``arr`` that casting to ``dt`` would change beyond rounding, or None."""
    if arr.size == 0 or arr.dtype == dt:
        return None
    flat = arr.reshape(-1)
    if dt.kind == "f":
        if arr.dtype.kind == "f" and np.finfo(arr.dtype).max > np.finfo(dt).max:
            big = np.isfinite(flat) & (np.abs(flat) > np.finfo(dt).max)
            if big.any():
                return repr(flat[big][0].item())
        return None
    if dt.kind == "b":
        bad = (flat != 0) & (flat != 1)
        return repr(flat[bad][0].item()) if bad.any() else None
    if arr.dtype.kind == "b":
        return None
    info = np.iinfo(dt)
    if arr.dtype.kind == "f":
        # Bounds as exact floats (-2**63 and 2**63 for int64): comparing with info.max
        # itself would round it up to 2**63 and let 2**63 through.
        flat = flat.astype(np.float64)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(flat) | (np.floor(flat) != flat)
            bad |= (flat < float(info.min)) | (flat >= float(info.max + 1))
        return repr(flat[bad][0].item()) if bad.any() else None
    lo, hi = int(flat.min()), int(flat.max())  # ints: Python ints compare exactly
    if lo < info.min:
        return repr(lo)
    if hi > info.max:
        return repr(hi)
    return None
