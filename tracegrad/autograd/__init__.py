"""The backward engine: one order of the nodes, one propagation loop.

Both `Value` (scalars) and `Tensor` are nodes of the same kind to this module. A node has

- ``_children``: the tuple of nodes it was computed from (empty for a leaf),
- ``_seq``: for an interior node, its number from `next_seq` when it was made (later than
  its children's), and
- ``_vjp(g, free)``: given the gradient ``g`` of the final output with respect to this
  node, the gradients with respect to each child (``None`` where a child needs none); with
  ``free``, the node also lets go of its children (the graph is not kept).

The engine never recurses, so a chain of a million operations backpropagates. What differs
between the scalar and the tensor engine is only *where gradients live* and *what is kept
afterwards*, and that is a small policy object (`GradsOnNodes`, `GradsInTable`).

The engine imports nothing else from tracegrad (but ``pytree.py``, which imports nothing).
PyTorch's autograd API lives beside it in this package, loaded when first used: `grad`
(``torch.autograd.grad``, in ``api.py``), `Function` (``function.py``), ``functional``
(jacobian, hessian, vjp, jvp, hvp) and `gradcheck`/`gradgradcheck` (``gradcheck.py``).
tracegrad's JAX-style ``tg.grad`` is in ``tracegrad/transforms.py``.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import sys
import threading
from heapq import heappop, heappush, heapreplace
from typing import Any, Callable, Iterable

from ..pytree import tree_flatten, tree_map

# Creation numbers: every node made by an op takes the next one (see backpropagate), as
# ``next(seqs)`` (Python specializes that call; calling ``next_seq``, the counter's bound
# ``__next__``, goes through the generic path) or ``next_seq()``.
seqs = itertools.count(1)
next_seq = seqs.__next__

# --------------------------------------------------------------------------------------
# Grad mode: thread-local, as in PyTorch.

# How many threads have grad mode off right now. While none has (nearly always: outside
# no_grad blocks and backward passes), an op knows that grad mode is on without reading the
# thread-local, which costs a tenth of a small op: ``not off_threads[0] or _mode.enabled``.
# (A thread that ends with grad mode off leaves it counted: ops only take the slower test.)
off_threads = [0]
_off_lock = threading.Lock()


class _Mode(threading.local):
    """This thread's grad mode, ``enabled``; setting it keeps `off_threads` counted."""

    _on = True  # every thread starts with grad mode on

    @property
    def enabled(self) -> bool:
        return self._on

    @enabled.setter
    def enabled(self, on: Any) -> None:
        on = bool(on)
        if on is not self._on:
            with _off_lock:
                off_threads[0] += -1 if on else 1
            self._on = on


_mode = _Mode()


def is_grad_enabled() -> bool:
    """True unless inside ``no_grad()`` (on this thread)."""
    return _mode.enabled


class _GradMode:
    """Context manager and decorator (``@tg.no_grad()`` or bare ``@tg.no_grad``) that sets
    grad mode to ``enabled``, restoring the previous mode on exit.

    An instance remembers the mode to restore, so a decorated function gets a fresh one per
    call (recursive calls and threads each restore their own). In a decorated generator
    function the mode is set while the body runs, and the caller's is back at every yield.
    """

    enabled = True

    def __new__(cls, fn: Callable | None = None) -> Any:
        self = super().__new__(cls)
        return self(fn) if fn is not None else self

    def __enter__(self) -> None:
        self._saved = _mode.enabled
        _mode.enabled = self.enabled

    def __exit__(self, *exc: Any) -> None:
        _mode.enabled = self._saved

    def _fresh(self) -> "_GradMode":
        """A new scope like this one, for one call of a decorated function."""
        return type(self)()

    def __call__(self, fn: Callable) -> Callable:
        scope = self._fresh
        if inspect.isgeneratorfunction(fn):
            return _wrap_generator(scope, fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with scope():
                return fn(*args, **kwargs)

        return wrapper


def _wrap_generator(scope: Callable[[], Any], fn: Callable) -> Callable:
    """Generator function ``fn`` with every resumption of its body (``next``, ``send``,
    ``throw``, ``close``) run inside a fresh ``scope()``: the mode is in force while the body
    runs, and the caller's own mode is back whenever the body yields to it. (``yield from``
    inside a single scope would leak the mode to the caller between yields.)"""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        gen = fn(*args, **kwargs)
        resume, arg = gen.send, None
        while True:
            try:
                with scope():
                    value = resume(arg)
            except StopIteration as stop:  # the body returned
                return stop.value
            try:
                arg = yield value
            except GeneratorExit:  # we are being closed: close the body, in the mode too
                with scope():
                    gen.close()
                raise
            except BaseException as exc:  # thrown in by the caller: on to the body
                resume, arg = gen.throw, exc
            else:
                resume = gen.send

    return wrapper


class no_grad(_GradMode):
    """Operations inside record no graph::

    with tg.no_grad():
        w -= 0.1 * w.grad
    """

    enabled = False


class enable_grad(_GradMode):
    """Turns graph recording back on inside a ``no_grad`` block."""

    enabled = True


class set_grad_enabled(_GradMode):
    """Sets grad mode to ``mode`` at once (on this thread), as in PyTorch::

        tg.set_grad_enabled(False)            # a plain call: stays set

        with tg.set_grad_enabled(is_train):   # restored on leaving the block
            ...

        @tg.set_grad_enabled(False)           # set around each call (or resumption)
        def predict(x): ...

    The mode restored on exit is the one in force when this was made.
    """

    def __new__(cls, mode: bool) -> set_grad_enabled:
        return object.__new__(cls)  # (no bare-decorator form: the argument is the mode)

    def __init__(self, mode: bool) -> None:
        self.enabled = bool(mode)
        _GradMode.__enter__(self)  # set now, remembering the mode to restore

    def __enter__(self) -> None:
        _mode.enabled = self.enabled  # (the mode to restore was taken when this was made)

    def __call__(self, fn: Callable) -> Callable:
        # A decorator sets the mode around calls only, not while the `def` runs.
        self.__exit__()
        return (enable_grad if self.enabled else no_grad)()(fn)

    def __repr__(self) -> str:
        return f"tg.set_grad_enabled(mode={self.enabled})"


class _Inference(threading.local):
    on = False


_inference = _Inference()


def is_inference_mode_enabled() -> bool:
    """True inside ``inference_mode()`` (on this thread), as in PyTorch."""
    return _inference.on


class inference_mode(_GradMode):
    """``no_grad`` for code that only evaluates, as ``torch.inference_mode``: a context
    manager and decorator (``@tg.inference_mode`` or ``@tg.inference_mode()``); with
    ``mode=False`` it does nothing but leave inference mode. Unlike PyTorch, tensors made
    inside are ordinary tensors (PyTorch's "inference tensors" refuse autograd later)::

        with tg.inference_mode():
            logits = model(x)
    """

    def __new__(cls, mode: Any = True) -> Any:
        self = object.__new__(cls)
        if callable(mode) and not isinstance(mode, bool):  # bare decorator
            self.mode = True
            return self(mode)
        self.mode = bool(mode)
        return self

    def __init__(self, mode: Any = True) -> None:
        pass  # (set by __new__, which a bare decorator does not get past)

    def _fresh(self) -> "inference_mode":
        return inference_mode(self.mode)

    def __enter__(self) -> None:
        self._saved = _mode.enabled, _inference.on
        if self.mode:
            _mode.enabled = False
        _inference.on = self.mode

    def __exit__(self, *exc: Any) -> None:
        _mode.enabled, _inference.on = self._saved

    def __repr__(self) -> str:
        return f"tg.inference_mode(mode={self.mode})"


# --------------------------------------------------------------------------------------
# Ordering


def all_nodes(root: Any) -> list:
    """Every node reachable from ``root`` (leaves included), each once, root first."""
    seen = {id(root)}
    out = [root]
    stack = [root]
    while stack:
        for child in stack.pop()._children:
            if id(child) not in seen:
                seen.add(id(child))
                out.append(child)
                stack.append(child)
    return out


def reverse_topological_order(root: Any) -> list:
    """The interior nodes under ``root``, each before every node it was computed from.

    Kahn's algorithm on consumer counts: iterative, so graph depth is unlimited, and a node
    used twice (``b = a + a``) appears once, after both of its uses. Leaves (nodes without
    children) are left out: nothing flows out of them, the policy stores their gradients
    as they arrive.
    """
    # Nodes are the dict keys themselves: they hash by identity, and a dict compares
    # hashes before it would ever call a (tensor-valued) __eq__.
    consumers: dict[Any, int] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        for child in node._children:
            if child._children:
                if child in consumers:
                    consumers[child] += 1
                else:
                    consumers[child] = 1
                    stack.append(child)
    order = []
    ready = [root]
    while ready:
        node = ready.pop()
        order.append(node)
        for child in node._children:
            if child._children:
                left = consumers[child] - 1
                consumers[child] = left
                if left == 0:
                    ready.append(child)
    return order


# --------------------------------------------------------------------------------------
# Hooks (Tensor.register_hook, retain_grad): id(tensor) -> its hooks, in the order they were
# registered. Empty unless some live tensor has one; the engine looks only then.

hooks: dict[int, list] = {}
RETAIN = "retain_grad"  # the hook retain_grad() registers: the node keeps its gradient
# Counts hooks registered and removed outside a trace of the same thread: a compiled program
# that ran a backward pass baked in the hooks there were then, and checks this on every call
# (compiler/entry.py). (A hook the traced code registers is part of its program.)
hooks_changed = [0]
_hook_changes = itertools.count(1)  # (next() is atomic: each change stores a new value)


def _count_hook_change() -> None:
    tracer = getattr(sys.modules.get("tracegrad.tensor"), "_tracer", None)
    if tracer is None or tracer.thread != threading.get_ident():
        hooks_changed[0] = next(_hook_changes)


class RemovableHandle:
    """What ``register_hook`` returns: ``handle.remove()`` takes the hook off."""

    def __init__(self, key: int, hook: Any):
        self.key, self.hook = key, hook

    def remove(self) -> None:
        mine = hooks.get(self.key)
        if mine is not None and self.hook in mine:
            _count_hook_change()
            mine.remove(self.hook)
            if not mine:
                del hooks[self.key]


def add_hook(node: Any, hook: Any) -> RemovableHandle:
    """Register ``hook`` on ``node``; it goes when the node does."""
    import weakref

    key = id(node)
    if key not in hooks:
        hooks[key] = []
        weakref.finalize(node, hooks.pop, key, None)
    hooks[key].append(hook)
    _count_hook_change()
    return RemovableHandle(key, hook)


def copy_hooks(src: Any, dst: Any) -> None:
    """Give ``dst`` the hooks of ``src`` (the compiler's stand-in for an argument: the same
    hooks, so no change is counted)."""
    import weakref

    mine = hooks.get(id(src))
    if mine:
        hooks[id(dst)] = list(mine)
        weakref.finalize(dst, hooks.pop, id(dst), None)


# --------------------------------------------------------------------------------------
# Propagation


def backpropagate(root: Any, seed: Any, policy: Any) -> None:
    """Send ``seed`` back from ``root`` (see `_propagate`), then let the policy finish
    (hooks of leaves run on their whole gradient)."""
    _propagate(root, seed, policy)
    finish = getattr(policy, "finish", None)
    if finish is not None:
        finish()


def _propagate(root: Any, seed: Any, policy: Any) -> None:
    """Send ``seed`` (d root / d root) back through the graph under ``root``.

    **Order.** A node is visited after every node that consumes it. Every interior node
    carries ``_seq``, a number given when it was made, and an op's result is always made after
    its inputs: so newest first is a reverse topological order, with no pass over the graph
    to find one. The next node is the newest one that is waiting; a node that is the only
    newly reached input of the one just visited, with nothing else waiting, is next without
    further ado, which is every step of a chain (its gradient is then handed straight on,
    never stored in the table); the others wait in a heap.

    **Policy.** ``policy`` decides where gradients are read from and written to:
    ``seed(root, g)``, ``take(node, None) -> g or None`` and ``add(node, g)``. Two
    attributes make the common case cheap: ``table``, when not None, is the dict the policy
    keeps interior nodes' gradients in (the engine sums into it directly, and a node in the
    heap has an entry there; ``add`` then only sees leaves), and
    ``frees``, whether each node drops its graph once its VJP has run.

    **Chains.** A node type may offer ``node._chain(g, frees, hooks) -> (node, g)``: walk down
    from ``node`` while each step is one whose gradient goes to one input only, which nothing
    else consumes and which has no hooks, and return where it stopped. The engine calls it
    (with a table) when nothing is waiting, which is exactly when such a node's input would
    be next with its whole gradient anyway; the walk spares the engine's round trip per node
    of a chain.
    """
    policy.seed(root, seed)
    if not root._children:  # a leaf: the policy already has its gradient
        return
    take, add, table, frees = policy.take, policy.add, policy.table, policy.frees
    get = table.get if table is not None else None
    seen = {root} if table is None else None  # without a table: the nodes reached so far
    chain = table is not None and hasattr(root, "_chain")
    waiting: list = []  # a heap of (-_seq, node)
    node = root
    g = take(root, None)
    while True:
        children = node._children
        # The first node this one reaches for the first time, and (with a table) its
        # gradient, kept here rather than in the table: it is usually the next node.
        reached = first = None
        if hooks and g is not None:
            mine = hooks.get(id(node))
            if mine:
                g = node._run_hooks(g, mine)
        if g is not None:
            if chain and not waiting:  # (see the docstring)
                node, g = node._chain(g, frees, hooks)
                children = node._children
            grads = node._vjp(g, frees)
            if grads is None:  # (a micrograd `_backward` wrote its children's grads itself)
                grads = (None,) * len(children)
            i = 0  # (zip(children, grads) makes six objects: a tenth of a chain's step)
            for child in children:
                child_grad = grads[i]
                i += 1
                if get is not None:  # interior nodes' gradients go to the table
                    if child_grad is None:
                        continue
                    if not child._children:  # a leaf
                        add(child, child_grad)
                        continue
                    if child is reached:  # (b = a + a)
                        first = first + child_grad
                        continue
                    old = get(child)
                    if old is not None:  # already waiting
                        table[child] = old + child_grad
                        continue
                    if reached is None:
                        reached, first = child, child_grad
                        continue
                    table[child] = child_grad
                else:
                    if child_grad is not None:
                        add(child, child_grad)
                    if not child._children or child in seen:
                        continue
                    seen.add(child)
                    if reached is None:
                        reached = child
                        continue
                heappush(waiting, (-child._seq, child))
        if reached is not None:
            if waiting and waiting[0][0] < -reached._seq:  # something newer is waiting
                if get is not None:
                    table[reached] = first
                node = heapreplace(waiting, (-reached._seq, reached))[1]
                g = take(node, None)
            else:  # its gradient is whole: every node that could add to it is done
                node = reached
                g = first if get is not None else take(node, None)
        elif waiting:
            node = heappop(waiting)[1]
            g = take(node, None)
        else:
            return


class GradsOnNodes:
    """micrograd's policy: every node keeps ``.grad``, and it accumulates across calls.

    The graph is kept, so ``backward()`` may be called again; as in micrograd, the root's
    grad is set (not added) and every other node's grad is added to.
    """

    table = None
    frees = False

    @staticmethod
    def seed(root: Any, g: Any) -> None:
        root.grad = g

    @staticmethod
    def take(node: Any, default: Any) -> Any:
        return node.grad

    @staticmethod
    def add(node: Any, g: Any) -> None:
        node.grad += g


class GradsInTable:
    """PyTorch's policy: gradients flow through a temporary table; only leaves keep them.

    A leaf that requires grad accumulates into ``.grad`` (or, when ``targets`` is given, into
    ``self.results`` and ``.grad`` is left alone, for ``tg.grad``; a target's gradient stops
    there). Unless ``retain_graph``, each node drops its inputs after use, so the arrays it
    saved can be freed, and marks itself so that a second backward through it raises.
    """

    def __init__(self, retain_graph: bool = False, targets: Iterable[Any] | None = None,
                 through_targets: bool = False):
        pending: dict[Any, Any] = {}  # keyed by the nodes themselves (identity hash)
        # (torch.autograd.grad: a gradient also flows on through an interior target)
        self.through = through_targets
        self.hooked: dict[int, Any] = {}  # leaves with hooks: (leaf, gradient so far)
        self.pending = pending
        self.take = pending.pop
        self.frees = not retain_graph
        self.targets = None if targets is None else {id(t): t for t in targets}
        # Without targets every interior node's gradient goes to the table: the engine
        # sums there itself. With targets, `add` has to look at every node first.
        self.table = pending if targets is None else None
        self.results: dict[int, Any] = {}

    def seed(self, root: Any, g: Any) -> None:
        self.add(root, g)

    def add(self, node: Any, g: Any) -> None:
        targets = self.targets
        if targets is not None:
            key = id(node)
            if key in targets:
                old = self.results.get(key)
                self.results[key] = g if old is None else old + g
                if not (self.through and node._children):
                    return
                if getattr(g, "owned", False):  # (a first-order GradArray) the object is
                    g.owned = False  # kept here and goes on: no rule may take it over
        if not node._children:
            if not node._is_leaf():
                raise RuntimeError(
                    "backward: trying to go through part of a graph a second time; its saved "
                    "values were freed by the first backward(). Pass retain_graph=True to the "
                    "first backward() if you need to call it twice"
                )
            if targets is None and node.requires_grad:
                if hooks and id(node) in hooks:  # hooks see the leaf's whole gradient
                    old = self.hooked.get(id(node))
                    self.hooked[id(node)] = (node, g if old is None else old[1] + g)
                    return
                node._accumulate_grad(g)
            return
        old = self.pending.get(node)
        self.pending[node] = g if old is None else old + g

    def finish(self) -> None:
        """Run the hooks of the leaves reached, then accumulate what they return."""
        hooked, self.hooked = self.hooked, {}
        for node, g in hooked.values():
            mine = hooks.get(id(node))
            if mine:
                g = node._run_hooks(g, mine)
            if g is not None:
                node._accumulate_grad(g)


# --------------------------------------------------------------------------------------
# Functional gradients


def _as_tuple(argnums: int | tuple[int, ...]) -> tuple[int, ...]:
    return (argnums,) if isinstance(argnums, int) else tuple(argnums)


def value_and_grad(
    fn: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False
) -> Callable:
    """``value_and_grad(f)(x) -> (f(x), df/dx)``; never writes ``.grad``.

    >>> f = tg.value_and_grad(lambda x: (x * x).sum())
    >>> f(tg.tensor([1.0, 2.0]))   # (tensor(5.), tensor([2., 4.]))

    Gradients are built with the graph kept, so they can be differentiated again
    (``tg.grad(tg.grad(f))``).
    """
    nums = _as_tuple(argnums)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        args = list(args)
        trees = []  # per argnum: its leaves and how to rebuild it (a dict of weights, ...)
        for i in nums:
            if not -len(args) <= i < len(args):
                raise TypeError(
                    f"grad: argnums={argnums} but the function was called with "
                    f"{len(args)} positional argument(s)"
                )
            leaves, rebuild = tree_flatten(args[i])
            for x in leaves:
                if not hasattr(x, "_grad_input"):
                    what = type(x).__name__ if len(leaves) == 1 else \
                        f"a tree with a {type(x).__name__} leaf"
                    raise TypeError(
                        f"grad: argument {i} must be a tg.Tensor (or a tuple, list or dict "
                        f"of them), got {what}; wrap it with tg.tensor(...)"
                    )
            trees.append((leaves, rebuild))
        # An argument that is already part of a graph (we are inside an outer grad) stays
        # connected, and then the gradient is recorded too, so the outer grad can
        # differentiate it. Otherwise it becomes a fresh leaf and nothing extra is recorded.
        nested = any(x.requires_grad for leaves, _ in trees for x in leaves)
        inputs = []
        for k, (i, (leaves, rebuild)) in enumerate(zip(nums, trees)):
            fresh = [x._grad_input() for x in leaves]
            trees[k] = (fresh, rebuild)
            args[i] = rebuild(fresh)
            inputs += fresh
        with enable_grad():
            out = fn(*args, **kwargs)
        if has_aux and not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError("grad: with has_aux=True the function must return (value, aux)")
        value, aux = (out if has_aux else (out, None))
        if not hasattr(value, "_grad_wrt") or value.numel() != 1:
            shape = getattr(value, "shape", type(value).__name__)
            raise TypeError(
                f"grad: the function must return a scalar (one-element) tensor, got {shape}; "
                f"reduce it first, e.g. with .sum()"
            )
        if not value.requires_grad:  # the output does not depend on the inputs at all
            flat = [x.detach() * 0 for x in inputs]
        else:
            flat = value._grad_wrt(inputs, create_graph=nested)
        grads, k = [], 0
        for leaves, rebuild in trees:
            grads.append(rebuild(list(flat[k:k + len(leaves)])))
            k += len(leaves)
        grads = grads[0] if isinstance(argnums, int) else tuple(grads)
        if not nested:  # top level: plain values, as JAX returns them
            value = value.detach()
            aux = _detached(aux)
        return ((value, aux), grads) if has_aux else (value, grads)

    return wrapper


def _detached(obj: Any) -> Any:
    return tree_map(lambda x: x.detach() if hasattr(x, "_grad_wrt") else x, obj)


_LAZY = {
    "grad": ("api", "grad"),
    "backward": ("api", "backward"),
    "Function": ("function", "Function"),
    "FunctionCtx": ("function", "FunctionCtx"),
    "once_differentiable": ("function", "once_differentiable"),
    "gradcheck": ("gradcheck", "gradcheck"),
    "gradgradcheck": ("gradcheck", "gradgradcheck"),
    "GradcheckError": ("gradcheck", "GradcheckError"),
}


def __getattr__(name: str) -> Any:
    # PyTorch's API, loaded at first use: those modules import tensor.py, which imports this.
    import importlib

    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
        globals()[name] = value
        return value
    if name in ("functional", "forward_ad"):
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
