"""Capture: run the user's function once and record every primitive into a `Graph`.

The function runs for real (eagerly, on the example values), with a `Tracer` listening at
the few places where tensors are made, read or changed (`tensor.apply`, `_leaf`, `detach`,
`_assign`, ``.grad``, ``.item()``...). Every tensor it meets is one of

- an argument: a graph input;
- captured: a tensor that existed before the call (a parameter, a buffer, optimizer state,
  a tensor in a closure): also a graph input, read afresh on every run, never frozen;
- born during the call from Python numbers or NumPy data: a constant;
- the result of a recorded primitive: a graph node.

``loss.backward()`` and ``optimizer.step()`` inside the function are recorded like anything
else, because the backward pass is made of primitives too. Changes to captured tensors (an
optimizer updating a weight, a new ``.grad``) are undone after the trace and become extra
outputs that the compiled program writes back after each run.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import threading
import traceback
import types
from contextlib import contextmanager
from dataclasses import dataclass, field
from threading import Lock, get_ident
from typing import Any, Callable

import numpy as np

from .. import autograd
from ..errors import TraceError
from ..tensor import Tensor, WeakScalar
from ..views import _memory
from .aliasing import alias_plan, overlapping
from .ir import Graph, Node

# The module, not the `tg.tensor` function that shadows its name on the package.
tensor_mod = importlib.import_module("tracegrad.tensor")

_TRACE_LOCK = Lock()
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


_gc_lock = threading.Lock()
_gc_paused = [0, False]  # compiles in progress, whether the collector ran before the first


@contextmanager
def paused_gc() -> Any:
    """Pause CPython's cyclic garbage collector while a function is compiled: tracing and
    the passes make hundreds of thousands of objects that all stay alive, and each full
    collection walks all of them again (40% of the time of compiling a 100,000-op
    chain). The collector resumes after the last compile in progress ends, as it was."""
    with _gc_lock:
        if _gc_paused[0] == 0:
            _gc_paused[1] = gc.isenabled()
            gc.disable()
        _gc_paused[0] += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_paused[0] -= 1
            if _gc_paused[0] == 0 and _gc_paused[1]:
                gc.enable()


class TensorSpec:
    """A placeholder argument for `tg.trace`: only a shape and a dtype (the define-then-run
    way of building a static graph).

    >>> g = tg.trace(lambda x: x.relu().sum(), tg.TensorSpec((4, 3)))
    """

    def __init__(self, shape: Any, dtype: Any = np.float32, requires_grad: bool = False):
        from ..dtypes import to_dtype

        self.shape = tuple(int(s) for s in shape)
        self.dtype = to_dtype(dtype)
        self.requires_grad = requires_grad

    def example(self) -> Tensor:
        # Ones, not zeros: fewer log(0)s while tracing. The values are never used. Float
        # matrices get 1, 2, 3, ... added on the diagonal: then they are invertible,
        # positive-definite and have distinct eigenvalues, for tg.linalg to factorize.
        fill = 1 if self.dtype.kind == "f" else 0
        a = np.full(self.shape, fill, dtype=self.dtype)
        if self.dtype.kind == "f" and len(self.shape) >= 2:
            diag = np.arange(min(self.shape[-2:]))
            a[..., diag, diag] += diag + 1
        t = Tensor(a)
        return t.requires_grad_() if self.requires_grad else t

    def __repr__(self) -> str:
        return f"TensorSpec({self.shape}, {self.dtype})"


class TracedArray(np.ndarray):
    """A NumPy array argument while its function is traced: the program reads the caller's
    array afresh on every call, so its values must not reach Python. Turning it into a
    tensor (``tg.tensor(a)``, ``x * a``) makes it a graph input; anything that computes on
    its values in NumPy or Python raises `TraceError` (and `tg.compile` then guards the
    array's contents instead)."""

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TraceError(
            f"NumPy code reads the values of an array argument at {user_line()}\n"
            f"A compiled program reads array arguments afresh on every call, but this "
            f"computation runs in NumPy, outside the program; convert the array to a tensor "
            f"first (tg.from_numpy(a)) to keep it in the program."
        )

    __array_ufunc__ = __array_function__ = _refuse
    __getitem__ = __setitem__ = __iter__ = __bool__ = __float__ = __int__ = __index__ = _refuse
    item = tolist = tobytes = copy = astype = _refuse

    def __repr__(self) -> str:
        return f"TracedArray(shape={self.shape}, dtype={self.dtype})"


def user_line() -> str:
    """``file:line: source`` of the innermost frame outside tracegrad (the user's code)."""
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR):
            return f"{frame.filename}:{frame.lineno}: {(frame.line or '').strip()}"
    return "<unknown>"


@dataclass
class Capture:
    """What a trace found, besides the graph: where each input comes from and what each
    extra output is written back into."""

    arg_paths: list = field(default_factory=list)  # (path in the flattened args, Node)
    captured: list = field(default_factory=list)  # (Tensor, Node): read T._data
    grad_inputs: list = field(default_factory=list)  # (Tensor, Node): read T.grad._data
    data_writes: list = field(default_factory=list)  # (Tensor, Node): T._data[...] = value
    grad_writes: list = field(default_factory=list)  # (Tensor, Node or None): T.grad = value
    out_tree: Any = None  # the returned structure, tensors replaced by output indices
    arg_index: dict = field(default_factory=dict)  # id(traced copy of an argument) -> k
    arg_grads: dict = field(default_factory=dict)  # id(that copy's .grad, when it has one) -> k
    n_user: int = 0  # how many graph outputs are the function's own (the rest: write-backs)
    grad_buffers: list = field(default_factory=list)  # (T, input Node, output index)
    grad_none: list = field(default_factory=list)  # tensors whose .grad was read as None
    # Floats the program takes as inputs: (path, Node) of float arguments, and
    # (param group dict, key, Node) of optimizer hyper-parameters (a scheduler's lr).
    float_args: list = field(default_factory=list)
    setting_inputs: list = field(default_factory=list)
    called_backward: bool = False
    # For a differentiable function (see `differentiate`): the cotangent inputs, one per
    # differentiable user output (output index, Node); what the gradients are with respect
    # to (("arg", k) or ("data", T)); and how many graph outputs at the end are gradients.
    cotangents: list = field(default_factory=list)
    grad_targets: list = field(default_factory=list)
    n_grad_outputs: int = 0
    # id(node) -> the user's line that made it, when asked for (tg.onnx names it in errors)
    lines: dict | None = None
    # User outputs that eager mode returns as an argument itself or a view of one (``x.T``,
    # ``x[1:].add_(1)``, ``x.add_(1)``), or of a tensor the function reads (a parameter):
    # output index -> (("arg", k) or ("tensor", T), the view steps from it). The call hands
    # these out as eager does, sharing that tensor's memory.
    views: dict = field(default_factory=dict)
    # The outputs among those that need grad: eager's graph of each is the view steps on that
    # tensor, so the call replays them with grad (``return x`` hands out ``x`` itself, whose
    # ``.grad`` the backward fills; ``return x.T`` a view whose gradient goes to ``x``).
    grad_views: set = field(default_factory=set)
    # (argument index, requires_grad) for the arguments whose flag the function changed
    # (``x.requires_grad_()`` to get an input's gradient): the call sets the caller's too
    arg_flags: list = field(default_factory=list)


class Tracer:
    """Listens to tensor operations during one call and builds the graph."""

    def __init__(self) -> None:
        self.inputs: list[Node] = []
        self.nodes: list[Node] = []
        self.env: dict[int, Node] = {}
        self.born: set[int] = set()
        self.computed: set[int] = set()  # tensors an op made during the trace (`record`)
        self.keep: list[Any] = []  # tensors seen: alive until the end, so ids stay unique
        self.capture = Capture()
        self.data_snapshots: dict[int, tuple[Tensor, np.ndarray]] = {}
        self.grad_snapshots: dict[int, tuple[Tensor, Any]] = {}
        self.dynamic: set[int] = set()  # ids of nodes whose value changes from run to run
        self.arguments: set[int] = set()
        self.argument_tensors: list[Tensor] = []
        self.grad_buffers = False  # compile: let the program write into existing .grad arrays
        self.grad_none_ids: set[int] = set()
        self.thread = get_ident()  # tracing sees only its own thread's operations
        self.setting_of: dict[int, str] = {}  # id(input of a hyper-parameter) -> its key
        self.items: list[TracedItem] = []  # what `.item()` gave on traced tensors
        self.arg_flags: list[tuple] = []  # (an argument's stand-in, its requires_grad then)
        self.results_as_args: set[int] = set()  # stand-ins of arguments that are op results
        self.array_inputs: dict[int, Node] = {}  # id(TracedArray) -> its input node
        self.array_sources: dict[int, tuple] = {}  # id(array made from one) -> (array, it)
        # Python numbers made into tensors before this trace (tensor._constants): constants.
        self.cached_constants = {id(t) for t in tensor_mod._constants.values()}
        # tg.compile's dynamic traces: a `dynamic.Recorder` whose SymInts `x.shape` gives
        self.symbolic: Any = None

    def symbolic_shape(self, t: Tensor) -> tuple:
        if get_ident() != self.thread:  # another thread's eager work: not this trace's
            return t._data.shape
        return self.symbolic.shape(t._data.shape)

    # ---------------------------------------------------------------- nodes for tensors

    def _input(self, t: Tensor, name: str) -> Node:
        node = Node("input", (), {}, t._data.shape, t._data.dtype, name=name)
        self.inputs.append(node)
        self.env[id(t)] = node
        self.dynamic.add(id(node))
        self.keep.append(t)
        return node

    def add_argument(self, t: Tensor, path: str) -> Node:
        self.arguments.add(id(t))
        self.arg_flags.append((t, t.requires_grad))
        self.argument_tensors.append(t)
        self.capture.arg_index[id(t)] = len(self.capture.arg_index)
        node = self._input(t, path)
        self.capture.arg_paths.append((path, node))
        return node

    def add_array_argument(self, traced: TracedArray, path: str) -> None:
        """A NumPy array argument: an input, which tensors made from it read."""
        node = Node("input", (), {}, traced.shape, traced.dtype, name=path)
        self.inputs.append(node)
        self.dynamic.add(id(node))
        self.keep.append(traced)
        self.array_inputs[id(traced)] = node
        self.capture.arg_index[id(traced)] = len(self.capture.arg_index)
        self.capture.arg_paths.append((path, node))

    def node_of(self, t: Tensor) -> Node:
        node = self.env.get(id(t))
        if node is not None:
            return node
        if id(t) in self.born or id(t) in self.cached_constants:
            node = Node("const", (), {}, t._data.shape, t._data.dtype,
                        value=np.array(t._data, copy=True))
            self.nodes.append(node)
            self.env[id(t)] = node
            return node
        node = self._input(t, f"captured{list(t._data.shape)}")
        self.capture.captured.append((t, node))
        return node

    def is_dynamic(self, t: Tensor) -> bool:
        node = self.env.get(id(t))
        if node is None:  # captured: its value changes between calls
            return id(t) not in self.born and id(t) not in self.cached_constants
        return id(node) in self.dynamic

    # ---------------------------------------------------------------- hooks (tensor.py)

    def record(self, prim: Any, inputs: tuple, attrs: dict, out: Tensor) -> None:
        if get_ident() != self.thread:  # another thread's eager work: not this trace's
            return
        args = [self.node_of(x) for x in inputs]
        node = Node(prim.name, args, attrs, out._data.shape, out._data.dtype)
        self.nodes.append(node)
        self.env[id(out)] = node
        self.computed.add(id(out))
        self.keep.append(out)
        if self.capture.lines is not None:
            self.capture.lines[id(node)] = user_line()
        if prim.kind == "random" or any(id(a) in self.dynamic for a in args):
            self.dynamic.add(id(node))

    def born_tensor(self, t: Tensor) -> None:
        if get_ident() != self.thread:  # another thread's eager work: not this trace's
            return
        source = self.array_sources.get(id(t._data))
        if source is not None and source[0] is t._data:  # made from an array argument
            node = self.array_inputs[id(source[1])]
            if node.dtype != t._data.dtype:
                node = self._derived("cast", [node], {"dtype": t._data.dtype}, node.shape,
                                     t._data.dtype)
            self.env[id(t)] = node
            self.keep.append(t)
            return
        self.born.add(id(t))
        self.keep.append(t)

    def array_read(self, traced: "TracedArray", arr: np.ndarray) -> None:
        """``arr`` (about to become a tensor's data) holds an array argument's values."""
        if get_ident() != self.thread:  # another thread's eager work: not this trace's
            return
        if id(traced) in self.array_inputs:
            self.array_sources[id(arr)] = (arr, traced)
            self.keep.append(arr)

    def alias(self, new: Tensor, src: Tensor) -> None:
        """``new`` holds the same value as ``src`` (detach, clone, copies)."""
        if get_ident() != self.thread:  # another thread's eager work: not this trace's
            return
        self.env[id(new)] = self.node_of(src)
        self.keep.append(new)

    def assign(self, target: Tensor, new: Tensor) -> None:
        """``target``'s data becomes ``new``'s: later reads see the new node; a captured
        target gets a write-back; the real data is restored after the trace."""
        if get_ident() != self.thread:  # another thread's eager work: not this trace's
            return
        value = self.node_of(new)
        old = self.node_of(target)  # before the change: earlier readers keep the old value
        if id(target) not in self.data_snapshots:
            self.data_snapshots[id(target)] = (target, np.array(target._data, copy=True))
        if value.dtype != old.dtype:
            value = self._derived("cast", [value], {"dtype": old.dtype}, value.shape, old.dtype)
        if value.shape != old.shape:
            value = self._derived("expand", [value], {"shape": old.shape}, old.shape, old.dtype)
        self.env[id(target)] = value

    def _derived(self, op: str, args: list, attrs: dict, shape: tuple, dtype: Any) -> Node:
        node = Node(op, args, attrs, shape, dtype)
        self.nodes.append(node)
        if any(id(a) in self.dynamic for a in args):
            self.dynamic.add(id(node))
        return node

    def grad_read(self, t: Tensor) -> None:
        """The traced code looks at ``t.grad``: a gradient that existed before the call is an
        input; one that did not is a guard (a variant traced while it was None must not run
        once it exists, and the other way round)."""
        if get_ident() != self.thread:  # another thread's eager work: not this trace's
            return
        g = t._grad
        if g is None:
            if id(t) not in self.grad_snapshots and id(t) not in self.born and \
                    id(t) not in self.grad_none_ids:
                self.grad_none_ids.add(id(t))
                self.capture.grad_none.append(t)
                self.keep.append(t)
        elif id(g) not in self.env and id(g) not in self.born:
            node = self._input(g, f"grad{list(g._data.shape)}")
            self.capture.grad_inputs.append((t, node))

    def grad_written(self, t: Tensor) -> None:
        if get_ident() != self.thread:  # another thread's eager work: not this trace's
            return
        if id(t) not in self.grad_snapshots:
            self.grad_snapshots[id(t)] = (t, t._grad)

    def backward_called(self) -> None:
        if get_ident() != self.thread:  # another thread's eager work: not this trace's
            return
        self.capture.called_backward = True

    def check_static(self, t: Tensor, what: str) -> None:
        if get_ident() != self.thread:  # another thread's eager work: not this trace's
            return
        if self.is_dynamic(t):
            raise self.value_error(t, what, user_line())

    def value_error(self, t: Tensor, what: str, where: str) -> TraceError:
        """The error for ``what`` turning the traced ``t`` into a Python value at ``where``."""
        error = TraceError(
            f"{what} reads the value of a traced tensor at {where}\n"
            f"The value changes from call to call, so a compiled function cannot turn it "
            f"into a Python value (an `if`, a `float(...)`, a NumPy array) without baking "
            f"in this one call's result. Keep the computation in tensors (tg.where(cond, "
            f"a, b) chooses elementwise), return the tensor (or its `.item()`) and use the "
            f"value outside, or do this part outside the compiled function."
        )
        # a hyper-parameter branched on (SGD's `if momentum:`): tg.compile guards it
        error.setting = self.setting_of.get(id(t))
        return error

    def leaf_changed(self, t: Tensor) -> None:
        """An in-place op under grad mode on (a view of) the leaf ``t``, which eager mode
        refuses: refused as a `TraceError` when ``t`` stands for an argument that is not a
        leaf (which eager mode changes, rebasing its graph: a compiled call cannot)."""
        if get_ident() == self.thread and id(t) in self.results_as_args:
            raise TraceError(
                f"tg.compile: the function changes an argument in place (or a view of it) at "
                f"{user_line()}, and that argument is the result of an op that needs grad: "
                f"eager mode would rebase the caller's tensor onto the change, which a "
                f"compiled call cannot do. Change a .clone() of it inside, or do it outside "
                f"the compiled function")

    def made(self, t: Tensor) -> bool:
        """Whether the traced function made ``t`` (not an argument, nor a tensor it reads)."""
        return id(t) in self.born or (id(t) in self.env and id(t) not in self.arguments
                                      and not any(c is t for c, _ in self.capture.captured))

    def reshaped(self, t: Tensor, move: Callable[[np.ndarray], np.ndarray]) -> None:
        """``t``'s shape changed in place (``squeeze_``, ``t_``): the values saved to put back
        when the trace ends (`restore`) move with it."""
        saved = self.data_snapshots.get(id(t))
        if saved is not None:
            self.data_snapshots[id(t)] = (t, move(saved[1]))

    def hook_added(self, t: Tensor, what: str) -> None:
        """Refuse a hook (``register_hook``, ``retain_grad()``) on a tensor that the function
        did not make (an argument, a parameter): eager mode adds one to it on every call,
        and the caller's tensor would keep it; the program cannot."""
        if get_ident() != self.thread:
            return
        if not self.made(t):
            raise TraceError(
                f"tg.compile: {what} at {user_line()} is on a tensor the function did not make "
                f"(an argument or a tensor it reads, such as a parameter): eager mode adds the "
                f"hook on every call and the tensor keeps it, which a compiled call cannot do. "
                f"Register it once, outside the compiled function")

    def deferred_item(self, t: Tensor) -> "TracedItem | None":
        """What ``t.item()`` gives in this trace: None (the value now) when ``t`` is the
        same on every call, else a `TracedItem` that the compiled call may return."""
        if get_ident() != self.thread or not self.is_dynamic(t):
            return None
        item = TracedItem(t, self, user_line())
        self.items.append(item)
        return item

    # ---------------------------------------------------------------- finishing

    def finish(self, result: Any, grads: list | None = None) -> tuple[Graph, Capture]:
        outputs: list[Node] = []

        def out_index(t: Any) -> int:
            if type(t) is TracedItem:  # (returned as the number: no view of anything)
                outputs.append(self.node_of(t.tensor))
                return len(outputs) - 1
            mine = autograd.hooks.get(id(t))
            if mine and autograd.RETAIN in mine:
                raise TraceError(
                    "tg.compile: the function returns a tensor it called retain_grad() on: "
                    "its .grad would be the gradient arriving from outside only, not eager "
                    "mode's (the program's own uses of it are inside the compiled backward). "
                    "Return what you need of that gradient, or call the function eagerly")
            outputs.append(self.node_of(t))
            source = self._source(t)
            # (one that needs grad is the compiled backward's, unless its graph is the view)
            if source is not None and (not t.requires_grad or self._graph_is_view(t, *source)):
                self.capture.views[len(outputs) - 1] = source
                if t.requires_grad:
                    self.capture.grad_views.add(len(outputs) - 1)
            return len(outputs) - 1

        self.capture.out_tree = _map_tree(result, out_index)
        self._check_items_returned(result)
        self.capture.arg_flags = [(self.capture.arg_index[id(t)], t.requires_grad)
                                  for t, flag in self.arg_flags if t.requires_grad != flag]
        self.capture.n_user = len(outputs)
        # Write-backs: the final value of every captured tensor changed in place (not of
        # one an op of the function made: the trace's own tensor, which no later call
        # sees) ...
        for tid, (t, _) in self.data_snapshots.items():
            node = self.env[tid]
            if node.op != "input" and not self._is_born(t) and tid not in self.computed:
                self.capture.data_writes.append((t, node))
                outputs.append(node)
        # ... and the final .grad of every tensor whose .grad was set.
        for t, before in self.grad_snapshots.values():
            if self._is_born(t):
                continue
            g = t._grad
            if g is None:
                self.capture.grad_writes.append((t, None))
            else:
                node = self.node_of(g)
                self.capture.grad_writes.append((t, node))
                if (self.grad_buffers and before is not None
                        and before._data.shape == node.shape
                        and before._data.dtype == node.dtype
                        and before._data.flags.writeable):  # (not an expanded .grad)
                    # The .grad array that exists now can receive the new gradient directly
                    # (an extra input the program writes into, see plan_memory).
                    buf = Node("input", (), {}, node.shape, node.dtype, name="grad-out")
                    self.inputs.append(buf)
                    self.capture.grad_buffers.append((t, buf, len(outputs)))
                outputs.append(node)
        for g in grads or ():
            outputs.append(self.node_of(g))
        self.capture.n_grad_outputs = len(grads or ())
        graph = Graph(self.inputs, self.nodes, outputs)
        return graph, self.capture

    def differentiate(self, result: Any, arguments: list[Tensor]) -> list[Tensor]:
        """Record the backward pass of ``result``'s differentiable tensors, for a compiled
        function whose outputs must support ``.backward()`` outside it.

        One cotangent input per differentiable output; the gradient of
        ``sum_i <output_i, cotangent_i>`` with respect to every argument and captured tensor
        that requires grad is recorded (on top of the forward), and returned.
        """
        from .. import autograd
        from ..tensor import _leaf

        outs: list[tuple[int, Any]] = []
        _map_tree(result, lambda t: outs.append((len(outs), t)) or len(outs) - 1)
        diff = [(k, t) for k, t in outs if type(t) is not TracedItem and t.requires_grad
                and t._data.dtype.kind == "f"]
        if not diff:
            return []
        targets: list[tuple[str, Any]] = []
        tensors: list[Tensor] = []
        for k, t in enumerate(arguments):
            if isinstance(t, Tensor) and t.requires_grad:
                targets.append(("arg", k))
                tensors.append(t)
        for t, _ in self.capture.captured:
            if t.requires_grad:  # a leaf, or a non-leaf whose own graph backward continues
                targets.append(("data", t))
                tensors.append(t)
        total = None
        for k, t in diff:
            cot = _leaf(np.ones(t._data.shape, dtype=t._data.dtype))
            node = self._input(cot, f"cotangent{k}")
            self.born.discard(id(cot))
            self.capture.cotangents.append((k, node))
            term = (t * cot).sum()
            total = term if total is None else total + term
        policy = autograd.GradsInTable(retain_graph=True, targets=tensors)
        with autograd.no_grad():
            autograd.backpropagate(total, _leaf(np.ones((), dtype=total._data.dtype)), policy)
        # (a target the outputs do not reach gets no gradient, as in eager: its .grad
        # stays None rather than becoming zeros)
        reached = [k for k, t in enumerate(tensors) if policy.results.get(id(t)) is not None]
        self.capture.grad_targets = [targets[k] for k in reached]
        return [policy.results[id(tensors[k])] for k in reached]

    def _source(self, t: Tensor) -> tuple | None:
        """(("arg", k) or ("tensor", T), view steps) when ``t`` is an argument or a tensor
        the call read (a parameter), or a view of one (see `Capture.views`), else None."""
        base, steps = _memory(t)
        for c in [*self.argument_tensors, *[c for c, _ in self.capture.captured]]:
            if not isinstance(c, Tensor) or type(c) is WeakScalar:  # (a float argument)
                continue
            if c is t:
                rest: tuple | None = ()
            else:  # t a view of c: the same memory, c's steps then more (the same objects)
                cbase, csteps = _memory(c)
                rest = steps[len(csteps):] if cbase is base and len(csteps) <= len(steps) \
                    and all(a is b for a, b in zip(csteps, steps)) else None
            if rest is not None:
                k = self.capture.arg_index.get(id(c))
                return (("arg", k) if k is not None else ("tensor", c)), rest
        return None

    def _check_items_returned(self, result: Any) -> None:
        """Refuse an ``x.item()`` of a traced tensor that the function kept anywhere but in
        its result (an attribute, a list, a global, a closure): the compiled call could not
        update it. What else holds one is found by the garbage collector's referrers; not
        counted: the tracer's list, the result's own containers, running frames and their
        locals (Python 3.10 shows both) and the argument tuple of the lookup (3.13 does)."""
        if not self.items:
            return
        expected = {id(self.items)}

        def containers(obj: Any) -> None:
            if isinstance(obj, (list, tuple, dict)) and id(obj) not in expected:
                expected.add(id(obj))
                for v in (obj.values() if isinstance(obj, dict) else obj):
                    containers(v)

        containers(result)
        # (Python 3.10 keeps a dict snapshot of a frame's locals once something asked for
        # them: the running frames' are not where the function kept an item)
        frame: Any = sys._getframe()
        while frame is not None:
            expected.add(id(frame.f_locals))
            frame = frame.f_back
        items = tuple(self.items)
        for holder in gc.get_referrers(*items):
            if id(holder) in expected or isinstance(holder, types.FrameType) or (
                    type(holder) is tuple and len(holder) == len(items)
                    and all(a is b for a, b in zip(holder, items))):  # (the call's arguments)
                continue
            held = [i for i in self.items if any(r is i for r in gc.get_referents(holder))]
            item = held[0] if held else self.items[0]
            error = TraceError(
                f"x.item() of a traced tensor at {item.line} is kept outside the function's "
                f"result (in an attribute, a list, a global, a closure): a compiled call can "
                f"only return it. Return it (or the tensor) and keep it outside, or call the "
                f"function eagerly")
            error.setting = self.setting_of.get(id(item.tensor))
            raise error

    def _graph_is_view(self, t: Tensor, where: tuple, steps: tuple) -> bool:
        """Whether ``t``'s graph is exactly the view ``steps`` on the tensor ``where`` names,
        whose own graph the call did not change: then eager's result, and its gradient, are
        those steps replayed on the caller's tensor (after the call's write-backs)."""
        for prim, attrs in reversed(steps):
            mine = t._attrs
            if t._op is not prim or len(t._children) != 1 or mine.keys() != attrs.keys() \
                    or any(mine[k] is not v for k, v in attrs.items()):
                return False
            t = t._children[0]
        kind, src = where
        reached = t is src if kind == "tensor" else \
            self.capture.arg_index.get(id(t)) == src and id(t) in self.arguments
        # (a leaf changed in place under no_grad, as by an optimizer step, is still a leaf)
        return reached and (t._op is None or id(t) not in self.data_snapshots)

    def _is_born(self, t: Tensor) -> bool:
        return id(t) in self.born

    def restore(self) -> None:
        """Undo every change the traced call made to tensors that existed before it."""
        for t, saved in self.data_snapshots.values():
            if not self._is_born(t):
                np.copyto(t._data, saved, casting="unsafe")
        for t, g in self.grad_snapshots.values():
            t._grad = g


class TracedItem:
    """What ``t.item()`` gives while ``t`` is traced: a stand-in for the Python number that
    the compiled call returns in its place (``return loss.item()`` works as in eager mode).
    Anything else done with it (arithmetic, a comparison, ``float()``, printing) needs this
    call's value and raises `TraceError` there, as ``.item()`` itself did before; one kept
    outside the result is refused when the trace ends (`Tracer._check_items_returned`)."""

    __slots__ = ("tensor", "tracer", "line")

    def __init__(self, tensor: Tensor, tracer: Tracer, line: str):
        self.tensor, self.tracer, self.line = tensor, tracer, line

    def __tg_operand_error__(self) -> TraceError:
        """What tracegrad raises when a function of it takes this as a number
        (``tg.full(shape, item)``, ``x.fill_(item)``): the error of any other use."""
        return self.tracer.value_error(
            self.tensor, f"x.item() (at {self.line}), then used here,", user_line())


def _refuse(name: str) -> Callable:
    def use(self: TracedItem, *args: Any, **kwargs: Any) -> Any:
        raise self.__tg_operand_error__()

    use.__name__ = name
    return use


for _name in ("__bool__", "__float__", "__int__", "__index__", "__complex__", "__round__",
              "__trunc__", "__floor__", "__ceil__", "__abs__", "__neg__", "__pos__",
              "__invert__", "__repr__", "__str__", "__format__", "__hash__", "__len__",
              "__iter__", "__getitem__", "__array__", "__eq__", "__ne__", "__lt__", "__le__",
              "__gt__", "__ge__", *(f"__{r}{op}__" for op in (
                  "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "divmod", "and",
                  "or", "xor", "lshift", "rshift", "matmul") for r in ("", "r"))):
    setattr(TracedItem, _name, _refuse(_name))


def _map_tree(obj: Any, fn: Callable[[Any], Any]) -> Any:
    """The structure of ``obj`` with every Tensor replaced by ``fn(tensor)`` (and every
    `TracedItem` by ``fn(item)``)."""
    if type(obj) is WeakScalar:  # a float computed from float inputs: a float, as in eager
        return ("float", fn(obj))
    if type(obj) is TracedItem:  # x.item() of a traced tensor: the number, as in eager
        return ("item", fn(obj))
    if isinstance(obj, Tensor):
        return ("tensor", fn(obj))
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return ("namedtuple", type(obj), [_map_tree(v, fn) for v in obj])
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, [_map_tree(v, fn) for v in obj])
    if isinstance(obj, dict):
        return ("dict", type(obj), [(k, _map_tree(v, fn)) for k, v in obj.items()])
    if isinstance(obj, np.ndarray):
        raise TraceError(
            f"the traced function returned a NumPy array (at {user_line()}); return tensors"
        )
    if type(obj).__name__ == "Value" and hasattr(obj, "_prev"):
        raise TraceError(
            "the traced function returned a scalar Value from tensor code: a function is "
            "compiled either as tensor code or as a Value program (when its arguments or "
            "what it refers to hold Values), not both; use tg.tensor values"
        )
    return ("static", obj)


def build_tree(tree: Any, leaf: Callable[[int], Any]) -> Any:
    """Rebuild a structure recorded by `_map_tree`, each output index through ``leaf``."""
    kind = tree[0]
    if kind == "tensor":
        return leaf(tree[1])
    if kind == "float":
        return float(leaf(tree[1]).item())
    if kind == "item":
        return leaf(tree[1]).item()
    if kind == "namedtuple":
        return tree[1](*[build_tree(v, leaf) for v in tree[2]])
    if kind in ("list", "tuple"):
        items = [build_tree(v, leaf) for v in tree[1]]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return tree[1]((k, build_tree(v, leaf)) for k, v in tree[2])
    return tree[1]


def flatten_args(args: tuple, kwargs: dict, containers: bool = False,
                 typed: bool = False) -> list[tuple[str, Any]]:
    """(path, value) for every leaf of the arguments; tensors and specs are the leaves that
    become graph inputs. With ``containers``, every list, tuple and dict too, before what
    it holds. With ``typed``, a path also names the type of each container on the way
    (``arg0<tuple>[1]``): the call's structure, for the cache key (guards.arg_key), as the
    function may tell a list from a tuple; `rebuild` reads untyped paths."""
    out: list[tuple[str, Any]] = []

    def visit(obj: Any, path: str) -> None:
        if containers and isinstance(obj, (list, tuple, dict)):
            out.append((path, obj))
        if isinstance(obj, (Tensor, TensorSpec)):
            out.append((path, obj))
        elif isinstance(obj, (list, tuple)):
            if typed:
                path += f"<{type(obj).__qualname__}>"
            for i, v in enumerate(obj):
                visit(v, f"{path}[{i}]")
        elif isinstance(obj, dict):
            if typed:
                path += f"<{type(obj).__qualname__}>"
            for k, v in obj.items():
                visit(v, f"{path}[{k!r}]")
        else:
            out.append((path, obj))

    for i, a in enumerate(args):
        visit(a, f"arg{i}")
    for k, v in kwargs.items():
        visit(v, k)
    return out


def rebuild(obj: Any, table: dict[str, Any], path: str) -> Any:
    """``obj`` with the leaves at the paths of ``table`` replaced (paths as `flatten_args`
    names them)."""
    if path in table:
        return table[path]
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*[rebuild(v, table, f"{path}[{i}]") for i, v in enumerate(obj)])
    if isinstance(obj, (list, tuple)):
        return type(obj)(rebuild(v, table, f"{path}[{i}]") for i, v in enumerate(obj))
    if isinstance(obj, dict):
        return type(obj)((k, rebuild(v, table, f"{path}[{k!r}]")) for k, v in obj.items())
    return obj


def rebuild_args(args: tuple, kwargs: dict, table: dict[str, Any]) -> tuple[tuple, dict]:
    """``(args, kwargs)`` with the leaves at the paths of ``table`` replaced (see `rebuild`)."""
    return (tuple(rebuild(a, table, f"arg{i}") for i, a in enumerate(args)),
            {k: rebuild(v, table, k) for k, v in kwargs.items()})


def is_input(leaf: Any, values: bool) -> bool:
    """Whether an argument leaf is a program input: a tensor; with ``values``, also a float
    and a NumPy array (read afresh on every call)."""
    return isinstance(leaf, Tensor) or values and (type(leaf) is float or
                                                   type(leaf) is np.ndarray)


def _weak_scalar(value: float) -> Tensor:
    from ..tensor import WeakScalar, _leaf

    t = _leaf(np.array(value, dtype=np.float64))
    t.__class__ = WeakScalar
    return t


def run_traced(fn: Callable, args: tuple, kwargs: dict, differentiable: bool = False,
               grad_buffers: bool = False, values: bool = False,
               settings: list | tuple = (), source_lines: bool = False,
               symbolic: Any = None) -> tuple[Graph, Capture]:
    """Call ``fn`` once under a tracer; return its graph and capture record. Tensors that
    existed before the call are left exactly as they were. With ``differentiable``, the
    backward pass of the outputs is recorded too (unless the function ran one itself).
    With ``values``, float and NumPy array arguments are inputs too (see `is_input`);
    ``settings`` lists (dict, key) of floats to take as inputs (an optimizer's lr);
    ``source_lines`` records the user's line of each primitive (``capture.lines``);
    ``symbolic`` (a `dynamic.Recorder`) makes ``x.shape`` give tracked sizes."""
    current = tensor_mod._tracer
    if current is not None and current.thread == get_ident():
        raise TraceError("tg.compile/tg.trace cannot be nested inside another trace")
    with _TRACE_LOCK:  # one trace at a time: the tracer slot is shared by all threads
        return _run_traced(fn, args, kwargs, differentiable, grad_buffers, values, settings,
                           source_lines, symbolic)


def _run_traced(fn: Callable, args: tuple, kwargs: dict, differentiable: bool,
                grad_buffers: bool, values: bool, settings: Any,
                source_lines: bool = False, symbolic: Any = None) -> tuple[Graph, Capture]:
    from ..scalar import Value

    for path, leaf in flatten_args(args, kwargs):
        if isinstance(leaf, Value):
            raise TypeError(
                f"tg.compile/tg.trace: argument {path} is a scalar Value in a tensor trace; "
                f"a function of Values is traced by tracegrad.compiler.values (tg.trace and "
                f"tg.compile pick it when an argument is a Value)"
            )
    tracer = Tracer()
    tracer.symbolic = symbolic
    tracer.grad_buffers = grad_buffers
    if source_lines:
        tracer.capture.lines = {}
    table: dict[int, Any] = {}  # id of an argument leaf -> what the trace sees there
    at: dict[str, Any] = {}  # the same by position (an object passed twice gets two)
    again: list = []  # (position, requires_grad) of a tensor or array passed before
    for path, leaf in flatten_args(args, kwargs):
        if id(leaf) in table and isinstance(leaf, (Tensor, np.ndarray)):
            again.append((path, getattr(leaf, "requires_grad", False)))
        if isinstance(leaf, (Tensor, TensorSpec)):
            t = leaf.example() if isinstance(leaf, TensorSpec) else leaf
            if isinstance(leaf, Tensor):
                # a fresh alias, so the caller's tensor is not changed or recorded into
                t = _fresh_argument(leaf)
                if leaf.requires_grad and leaf._op is not None:  # (a leaf stands for it)
                    tracer.results_as_args.add(id(t))
            tracer.add_argument(t, path)
            if t._grad is not None:  # (written in place: back into the caller's .grad)
                tracer.capture.arg_grads[id(t._grad)] = tracer.capture.arg_index[id(t)]
                tracer.keep.append(t._grad)
            table[id(leaf)] = t
        elif values and type(leaf) is float:
            t = _weak_scalar(leaf)
            tracer.add_argument(t, path)
            tracer.capture.float_args.append(path)
            table[id(leaf)] = t
        elif values and type(leaf) is np.ndarray:
            view = leaf.view(TracedArray)
            tracer.add_array_argument(view, path)
            table[id(leaf)] = view
        else:
            continue
        at[path] = table[id(leaf)]
    # Each position its own input, so that a variant traced from f(x, x) (or f(t, 0.5, 0.5),
    # one float object twice) reads each argument it is later given.
    args2, kwargs2 = rebuild_args(args, kwargs, at)
    layout = container_layout(args2, kwargs2)
    from .. import rng

    replaced = []
    for d, key in settings:  # a float, or a tuple of floats (Adam's betas)
        value = d[key]
        parts = value if type(value) is tuple else (value,)
        made = []
        for i, v in enumerate(parts):
            t = _weak_scalar(v)
            index = i if type(value) is tuple else None
            tracer.capture.setting_inputs.append((d, (key, index), tracer._input(t, key)))
            tracer.setting_of[id(t)] = key
            made.append(t)
        new = tuple(made) if type(value) is tuple else made[0]
        replaced.append((d, key, value, new))
        d[key] = new
    tensor_mod._tracer = tracer
    try:
        # (tracing must not use up random numbers: the compiled program draws them)
        with np.errstate(all="ignore"), rng.drawing_aside():
            try:
                result = fn(*args2, **kwargs2)
            except TraceError:
                raise
            except Exception as e:
                e._tg_raised_by_function = True  # (see `raised_by_function`)
                raise
            check_containers_unchanged(fn, layout, container_layout(args2, kwargs2))
            grads = []
            if differentiable and not tracer.capture.called_backward:
                arguments = list(at.values())  # every input, in `a`'s order
                with autograd.enable_grad():  # (a call under no_grad that turned it on)
                    grads = tracer.differentiate(result, arguments)
        graph, capture = tracer.finish(result, grads)
        if capture.data_writes or capture.grad_writes:  # an argument also read as state
            state = {id(t) for t, *_ in capture.captured + capture.grad_inputs}
            again += [(path, True) for path, leaf in flatten_args(args, kwargs)
                      if id(leaf) in state]
        if again and (capture.data_writes or any(rg for _, rg in again)):
            # one tensor at two positions, and it is written or differentiated: eager's
            # result depends on the aliasing, which separate inputs would not show
            raise TraceError(
                f"tg.compile: argument {again[0][0]} is the same tensor as an earlier "
                f"argument or one the function reads otherwise (a parameter), and the "
                f"function writes to tensors or needs its gradient; pass "
                f"distinct tensors (e.g. x and x.clone()) or call the function eagerly")
    finally:
        tensor_mod._tracer = None
        for d, key, value, t in replaced:
            if d.get(key) is t:
                d[key] = value
        tracer.restore()
    plan = alias_plan(capture)
    if plan is not None and overlapping([leaf for _, leaf in flatten_args(args, kwargs)
                                         if id(leaf) in table], plan):
        raise TraceError(
            "tg.compile: an argument shares memory with another argument or with a tensor "
            "the function reads (a parameter; e.g. a view or detach() of it), and one of "
            "them is written by the function; eager mode would see the write through both, "
            "a compiled program does not. Pass a copy (x.clone()) or call the function "
            "eagerly")
    return graph, capture


def raised_by_function(error: BaseException) -> bool:
    """Whether ``error`` was raised by the traced function itself (its own ``raise``, an op
    it called), not by tracing. The trace undoes what the call changed (`Tracer.restore`),
    where eager mode keeps what happened before the raise; tg.compile runs such a call
    again, eagerly, so that it raises with eager's state (the Python code before the raise
    runs twice)."""
    return getattr(error, "_tg_raised_by_function", False)


def container_layout(args: tuple, kwargs: dict) -> list[tuple[str, int, int]]:
    """What the argument containers hold: (path, id, length or -1) of every container and
    leaf, in order."""
    return [(path, id(v), len(v) if isinstance(v, (list, tuple, dict)) else -1)
            for path, v in flatten_args(args, kwargs, containers=True)]


def check_containers_unchanged(fn: Callable, before: list, after: list) -> None:
    """Raise if the traced call put, replaced or removed anything in a list or dict it was
    given (``state["h"] = h``, ``history.append(loss)``): a program does not replay that, so
    a compiled call would leave the caller's containers as they were."""
    if before == after:
        return
    where = next((a for a, b in zip(after, before) if a != b), None) or \
        max(after, before, key=len)[min(len(after), len(before))]
    raise TraceError(
        f"tg.compile: {getattr(fn, '__name__', 'the function')} changes a list or dict it "
        f"was given (at {where[0]}) while it runs; a compiled program computes tensors "
        f"but does not replay changes to Python containers, so the caller's container would "
        f"not change. Return the new value instead (or keep it in a Module attribute, or "
        f"change a tensor in place), or call the function eagerly")


def _fresh_argument(t: Tensor) -> Tensor:
    """The traced stand-in of argument ``t``: its values and requires_grad, a copy of its
    ``.grad`` when it has one (a backward() in the function adds to it, as in eager), and
    its gradient hooks."""
    from ..tensor import _leaf

    new = _leaf(np.array(t._data, copy=True))
    if t.requires_grad:
        new.requires_grad = True
    if t._grad is not None:
        new._grad = _leaf(np.array(t._grad._data, copy=True))
    autograd.copy_hooks(t, new)  # (its gradient hooks run in a backward)
    return new


def trace(fn: Callable, *example_args: Any, **example_kwargs: Any) -> Graph:
    """Capture ``fn`` as a static `Graph` (unoptimized) from example arguments: tensors or
    `TensorSpec` placeholders.

    >>> g = tg.trace(lambda x: (x * 2).relu().sum(), tg.TensorSpec((8,)))
    >>> print(g)
    """
    from . import values

    if values.is_value_program(fn, example_args, example_kwargs):  # micrograd-style Values
        return values.trace(fn, *example_args, **example_kwargs)
    graph, _ = run_traced(fn, example_args, example_kwargs)
    return graph
