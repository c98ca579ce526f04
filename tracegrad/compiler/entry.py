"""A variant's entry point, generated as Python like the program it calls.

Every call of a compiled function checks the variant's guards, reads the arrays the program
takes (arguments, captured tensors, ``.grad`` buffers), runs it, and writes parameters and
gradients back. Written as a loop over tables, that glue costs more than the small ops of a
training step; written out as straight-line code for one variant, with every shape, dtype
and flag a literal, it is a short list of comparisons and assignments.

``entry(args)`` (the tensors among the call's arguments, in order) returns what the call
returns: the function's result, built from the program's outputs (for a differentiable
function, the outputs themselves: `tg.compile` attaches the compiled backward). When a guard
fails it returns a `Miss`, the reason, which `tg.compile` reports as the cause of a retrace.
``entry.source`` is the code.
"""

from __future__ import annotations

import linecache
import sys
import threading
from typing import Any, Callable

import numpy as np

from .. import autograd, dtypes
from ..tensor import Tensor, _Anomaly, _bump, _leaf
from ..views import view_of
from .guards import Ident, fingerprint

_files = iter(range(1 << 62))


def _copy_data(t: Tensor, value: np.ndarray) -> None:
    """Write a new value into a tensor's own memory (the program computed it elsewhere)."""
    if not t._data.flags.writeable:
        t._data = t._data.copy()
    np.copyto(t._data, value, casting="same_kind")


def _write_grad(t: Tensor, value: np.ndarray, owned: bool) -> None:
    """Set ``t.grad`` to a value the program did not compute into ``t.grad`` itself: into
    the old .grad's memory if nobody else holds it, else as a new tensor (as eager does)."""
    g = t._grad
    d = g._data if g is not None else None
    if d is not None and d.shape == value.shape and d.dtype == value.dtype \
            and d.flags.writeable and not np.may_share_memory(d, value) \
            and sys.getrefcount(g) <= 3 and sys.getrefcount(d) <= 3:  # slot, local, argument
        np.copyto(d, value)
        _bump(g)
    else:
        t._grad = _leaf(value if owned and value.dtype == t._data.dtype
                        else np.array(value, dtype=t._data.dtype, copy=True))


def _reason(what: str, fp: Any) -> str:
    """Why a variant no longer fits, when a value it read (see guards.py) changed."""
    if type(fp) is Ident and isinstance(fp.obj, Tensor):
        return f"a tensor the function refers to was replaced ({what})"
    if what.startswith(("global", "closure")):
        return f"{what} changed: a global or closure variable the function read while tracing"
    return f"{what} changed (the function read it while tracing)"


def _f64(value: float) -> np.ndarray:
    """A float input of the program (an argument, a learning rate) as its 0-d array."""
    return np.array(value, dtype=np.float64)


class Miss(str):
    """Why a variant does not fit a call (returned by an entry instead of a result)."""


class EagerRun(str):
    """What an entry returns when this call runs the function eagerly (see
    dynamic_program.BUILD_AFTER)."""


class VerifyRun(str):
    """What an entry returns when tg.compile must first trace this call, at a size the
    variant has not run at, and check that the trace is the template at that size
    (`DynamicProgram.verify`). ``n``: the size."""

    n = 0


def _new_grad(now: Tensor, before: Any, value: np.ndarray) -> Tensor:
    """A returned ``.grad``: the tensor itself if this call created it, else a copy."""
    return now if now is not before else _leaf(np.array(value, copy=True))


def _type(dtype: np.dtype, shape: tuple) -> str:
    return f"{dtype}{list(shape)}"


def build_entry(variant: Any, epoch_box: list, mode: Any) -> Callable:
    """The entry function of a `Variant` (see the module docstring). ``epoch_box`` counts
    structural changes to modules and optimizers; ``mode.enabled`` is the grad mode."""
    env: dict[str, Any] = {"_copy_data": _copy_data, "_write_grad": _write_grad, "_bump": _bump,
                           "_leaf": _leaf, "_copy": np.array, "_new_grad": _new_grad,
                           "_refs": sys.getrefcount, "_empty_like": np.empty_like,
                           "_fp": fingerprint, "_ndarray": np.ndarray, "_f64": _f64,
                           "_view_of": view_of, "_lock": threading.Lock()}

    names_of: dict[int, list[str]] = {}  # id(value) -> its names (a scan was quadratic)
    for k, v in env.items():
        names_of.setdefault(id(v), []).append(k)

    def name(prefix: str, value: Any) -> str:
        for k in names_of.get(id(value), ()):  # one name per object
            if k.startswith(prefix):
                return k
        key = f"{prefix}{len(env)}"
        env[key] = value
        names_of.setdefault(id(value), []).append(key)
        return key

    capture = variant.capture
    body: list[str] = []

    misses: dict[str, str] = {}

    def guard(condition: str, reason: str) -> None:
        if reason not in misses:
            misses[reason] = name("miss", Miss(reason))
        body.extend([f"if check and ({condition}):", f"    return {misses[reason]}"])

    # What `tg.compile` keys its variants by, checked here too: a call that reaches this
    # variant without the key (the last variant used, tried first) is still guarded.
    guard(f"len(a) != {len(variant.arg_types)}", "a different number of tensor arguments")
    dynamic = variant.dynamic  # ({argument: its axes of size n}, its DynamicProgram)
    has_n = False
    for j, kind in enumerate(variant.arg_types):
        if kind[0] == "T":
            _, shape, dtype, requires_grad = kind
            body.append(f"a{j} = a[{j}]._data")
            literal = repr(tuple(shape))
            if dynamic is not None and j in dynamic[0]:  # a dimension of size n
                guard(f"a{j}.ndim != {len(shape)}", "new argument shapes, dtypes or "
                                                     "requires_grad")
                if not has_n:
                    body.append(f"n = a{j}.shape[{dynamic[0][j][0]}]")
                    has_n = True
                literal = "(" + "".join(("n" if d is None else str(d)) + ", "
                                        for d in shape) + ")"
            guard(f"a{j}.shape != {literal} or a{j}.dtype != {name('dt', dtype)} "
                  f"or a[{j}].requires_grad != {requires_grad}",
                  "new argument shapes, dtypes or requires_grad")
        elif kind[0] == "A":
            _, shape, dtype = kind
            body.append(f"a{j} = a[{j}]")
            guard(f"type(a{j}) is not _ndarray or a{j}.shape != {tuple(shape)!r} or "
                  f"a{j}.dtype != {name('dt', dtype)}", "new NumPy argument shapes or dtypes")
        else:  # a float
            guard(f"type(a[{j}]) is not float", "an argument that was a float is not")
            body.append(f"a{j} = _f64(a[{j}])")
    guard(f"{name('mode', mode)}.enabled != {variant.grad_enabled}", "grad mode changed")
    guard(f"{name('dtypes', dtypes)}.default_float is not {name('dt', variant.default_float)}",
          "tg.set_default_dtype changed the default float dtype")
    an = name("anomaly", _Anomaly)  # (on in this thread: see tensor._Anomaly)
    guard(f"bool({an}.enabled and {an}.here.on) != {variant.anomaly}",
          "tg.detect_anomaly() was turned on or off")

    # (only for a function that uses modules or tensors it did not get as arguments: a
    # model built elsewhere must not recompile `lambda x: x + 1`)
    if variant.modules or capture.captured or capture.grad_inputs or capture.grad_none \
            or capture.setting_inputs:
        guard(f"{name('epoch', epoch_box)}[0] != {variant.structure_epoch}",
              "a module's or optimizer's parameters/submodules were reassigned")
    for m, flag in zip(variant.modules, variant.training):
        guard(f"{name('m', m)}.training != {flag}",
              "a module switched between train() and eval()")
    for what, d, keys, values in variant.settings:
        dn, vn = name("d", d), name("s", values)
        read = ", ".join(f"{dn}.get({k!r})" for k in keys)
        guard(f"({read},) != {vn}", f"{what} changed (its value was read as a constant while "
                                    f"tracing)")
    if variant.hooks_epoch is not None:
        guard(f"{name('hooks', autograd.hooks_changed)}[0] != {variant.hooks_epoch}",
              "a gradient hook was registered or removed (the function runs a backward pass)")

    def target(t: Tensor) -> str:  # the caller's argument (or its .grad), for the traced
        k = capture.arg_index.get(id(t)) if capture.arg_index else None  # copy of one
        if k is not None:
            return f"a[{k}]"
        k = capture.arg_grads.get(id(t)) if capture.arg_grads else None
        return f"a[{k}]._grad" if k is not None else name("t", t)

    for t in capture.grad_none:
        guard(f"{target(t)}._grad is not None",
              "a .grad the function read as None exists now")
    for what, getter, fp in variant.guards:
        ref = name("ref", getter)
        if type(fp) is Ident:  # the same object (held by the fingerprint: never a new one)
            guard(f"{ref}() is not {name('o', fp.obj)}", _reason(what, fp))
        elif type(fp) is tuple and len(fp) == 2 and fp[0] in (int, bool, str, type(None)):
            body.append(f"v = {ref}()")
            guard(f"type(v) is not {name('type', fp[0])} or v != {name('k', fp[1])}",
                  _reason(what, fp))
        else:
            guard(f"_fp({ref}()) != {name('fp', fp)}", _reason(what, fp))
    graph = variant.graph
    read = {id(i) for n in graph.nodes for i in n.inputs} | {id(o) for o in graph.outputs}
    feeds: list[str] = []
    held: dict[tuple, str] = {}  # (id(tensor), "data" | "grad") -> the local holding it
    for kind, src in variant.feeders:
        if kind == "arg":
            feeds.append(f"a{src}")
            continue
        x = f"x{len(feeds)}"
        if kind == "setting":  # a float the program takes as an input (a learning rate)
            d, (k, index) = src
            item = "" if index is None else f"[{index}]"
            body.append(f"{x} = _f64({name('d', d)}[{k!r}]{item})")
            feeds.append(x)
            continue
        t, node = src
        tn, dt = name("t", t), name("dt", node.dtype)
        if kind == "data":
            body.append(f"{x} = {tn}._data")
            held[id(t), "data"] = x
            guard(f"{x}.shape != {tuple(node.shape)!r} or {x}.dtype != {dt} "
                  f"or {tn}.requires_grad != {t.requires_grad}",
                  f"a captured tensor changed shape, dtype or requires_grad (was "
                  f"{_type(node.dtype, node.shape)}, requires_grad={t.requires_grad})")
        else:
            g = f"g{len(feeds)}"
            body.append(f"{g} = {target(t)}._grad")
            guard(f"{g} is None", "a .grad the function uses appeared, disappeared or changed "
                                  "shape")
            body.append(f"{x} = {g}._data")
            held[id(t), "grad"] = g
            buffer = id(node) not in read
            guard(f"{x}.shape != {tuple(node.shape)!r} or {x}.dtype != {dt}"
                  + (f" or not {x}.flags.writeable" if buffer else ""),  # (not expanded)
                  "a .grad the function uses appeared, disappeared or changed shape")
            if buffer:
                # A buffer the program only writes the new gradient into: the old .grad's
                # memory. Nobody can tell that from eager mode's new .grad tensor, unless
                # someone still holds the old one (a list of past gradients): then the
                # gradient goes to new memory, and the old .grad is left as it was.
                held[id(t), "grad", "buffer"] = x
                body += [f"if _refs({g}) > 3 or _refs({x}) > 3:  # slot, local, argument",
                         f"    {x} = _empty_like({x})"]

        feeds.append(x)
    if dynamic is not None:  # the size's own program, if the variant serves it: asked last,
        # once every other guard holds (a new size with a reassigned parameter is a Miss,
        # not a size to run eagerly or verify with this variant)
        body += [f"r = {name('admit', dynamic[1].admit)}(n)",
                 "if check and r is not True:", "    return r"]
    body.append(f"outs = {name('program', variant.program.run)}({', '.join(feeds)})")

    for i, (where, src) in variant._grad_alias.items():  # see _result
        body.append(f"pre{i} = {_grad_of(where, src, name)}")
    for j, flag in capture.arg_flags:  # requires_grad_() on an argument, as eager sets it
        body.append(f"a[{j}].requires_grad = {flag}")
    k = variant.n_user_outputs  # then the data write-backs, the gradients, the saved values
    for t, _ in capture.data_writes:
        tn = target(t)
        data = held.get((id(t), "data"), f"{tn}._data")
        body += [f"_bump({tn})",
                 f"if outs[{k}] is not {data}:",
                 f"    _copy_data({tn}, outs[{k}])"]
        k += 1
    for t, node in capture.grad_writes:
        tn = target(t)
        if node is None:
            body.append(f"{tn}._grad = None")
            continue
        g, x = held.get((id(t), "grad")), held.get((id(t), "grad", "buffer"))
        if g is None:  # a .grad the program did not receive as a buffer
            g = "g"
            body.append(f"g = {tn}._grad")
        body += [f"if {g} is not None and outs[{k}] is {g}._data:",
                 f"    _bump({g})"]
        if x is not None:
            body += [f"elif outs[{k}] is {x}:",
                     f"    {tn}._grad = _leaf({x})"]
        body += ["else:",
                 f"    _write_grad({tn}, outs[{k}], {variant._owns[k]})"]
        k += 1
    if variant.backward is not None:  # tg.compile wraps them in differentiable tensors
        # ... after the lock is released: what lives in the program's buffers is copied now
        n, first_saved = len(graph.outputs), len(graph.outputs) - variant.n_saved
        items = [f"outs[{i}]" if variant._owns[i] or variant.n_user_outputs <= i < first_saved
                 else f"_copy(outs[{i}], copy=True)" for i in range(n)]
        body.append(f"return ({''.join(x + ', ' for x in items)})")
    else:
        body.append(f"return {_result(variant, variant.capture.out_tree, name)}")
    # One call at a time: the program computes into buffers it keeps between calls.
    lines = [f"def make({', '.join(env)}):", "    def entry(a, check=True):",
             "        with _lock:"]
    lines += ["            " + line for line in body]
    lines.append("    return entry")
    source = "\n".join(lines) + "\n"
    filename = f"<tracegrad-entry-{next(_files)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {}
    exec(compile(source, filename, "exec"), namespace)
    entry = namespace["make"](*env.values())  # (by keyword: a linear search per name)
    entry.source = source
    return entry


def _grad_of(where: str, src: Any, name: Callable[[str, Any], str]) -> str:
    return f"a[{src}]._grad" if where == "arg" else f"{name('t', src)}._grad"


def _result(variant: Any, tree: Any, name: Callable[[str, Any], str]) -> str:
    """The expression that builds the function's result (see `trace._map_tree`) from the
    program's outputs ``outs`` and the caller's tensors ``a``."""
    kind = tree[0]
    if kind == "float":  # a float the function computed from float inputs
        return f"float(outs[{tree[1]}])"
    if kind == "item":  # x.item() of a tensor the program computed
        return f"outs[{tree[1]}].item()"
    if kind == "tensor":
        i = tree[1]
        view = variant.capture.views.get(i)
        if view is not None:  # an argument or a tensor read, or a view of it, as in eager
            (where, src), steps = view
            tensor = f"a[{src}]" if where == "arg" else name("t", src)
            return f"_view_of({tensor}, {name('steps', steps)}, " \
                   f"{i in variant.capture.grad_views})"
        alias = variant._grad_alias.get(i)
        if alias is not None:
            # A gradient the function wrote: handed out as the .grad tensor itself when this
            # call made it (as in eager mode: no copy), else as a copy, since the .grad
            # tensor of an earlier call is written over in place by the next one.
            return f"_new_grad({_grad_of(*alias, name)}, pre{i}, outs[{i}])"
        if variant._owns[i]:  # the program's new memory, handed over
            return f"_leaf(outs[{i}])"
        return f"_leaf(_copy(outs[{i}], copy=True))"
    if kind in ("list", "tuple"):
        items = [_result(variant, v, name) for v in tree[1]]
        if kind == "list":
            return f"[{', '.join(items)}]"
        return f"({''.join(x + ', ' for x in items)})"  # (a, ) is a tuple, () too
    if kind == "namedtuple":
        items = [_result(variant, v, name) for v in tree[2]]
        return f"{name('nt', tree[1])}({', '.join(items)})"
    if kind == "dict":
        pairs = [f"({name('k', k)}, {_result(variant, v, name)})" for k, v in tree[2]]
        return f"{name('dict', tree[1])}([{', '.join(pairs)}])"
    return name("k", tree[1])  # a plain value the function returned
