"""Long programs: compiling is linear in the program's length and never recurses per node.

Timing is `bench/compile.py`'s business (its "compile time against chain length" table);
these tests check values: a 20,000-op chain compiles (no RecursionError at Python's default
limit) and gives eager's result, and every rewrite made for speed (the passes and the NumPy
backend) still does what it did.
"""

from __future__ import annotations

import gc
import sys

import numpy as np
import pytest

import tracegrad as tg
from tracegrad.compiler.backends import numpy as numpy_backend
from tracegrad.compiler.backends.numpy import Program
from tracegrad.compiler.ir import Graph, Node
from tracegrad.compiler.passes import fuse, plan_memory
from tracegrad.compiler.passes.plan_memory import _last_use, _may_overwrite, peak_without_plan
from tracegrad.compiler.trace import paused_gc

S = tg.TensorSpec
N_OPS = 20_000


def _chain(reps: int, backward: bool):
    def f(x):
        y = x
        for _ in range(reps):
            y = y * 0.999 + 0.001
        loss = y.sum()
        if backward:
            loss.backward()
            return loss, x.grad
        return loss

    return f


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "forward+backward"])
def test_a_20000_op_chain_compiles_and_gives_eagers_value(backward):
    assert sys.getrecursionlimit() <= 10_000  # far below the chain's depth
    fn = tg.compile(_chain(N_OPS // 2, backward))
    x0 = np.linspace(-1, 1, 4, dtype=np.float32)
    eager = fn(tg.tensor(x0, requires_grad=backward))  # the first call runs eagerly
    compiled = fn(tg.tensor(x0, requires_grad=backward))  # the second traces and compiles
    again = fn(tg.tensor(x0, requires_grad=backward))  # the third runs the program
    assert fn.cache_info().misses == 1
    for out in (compiled, again):
        if backward:
            np.testing.assert_allclose(out[0].numpy(), eager[0].numpy(), rtol=1e-5)
            np.testing.assert_allclose(out[1].numpy(), eager[1].numpy(), rtol=1e-5)
        else:
            np.testing.assert_allclose(out.numpy(), eager.numpy(), rtol=1e-5)
    # the whole chain is one kernel, and its constant (0.999, 0.001) is one name each
    assert sum(1 for n in fn.graph.nodes if n.op == "kernel") >= 1
    program = fn.last_variant.program
    assert len([k for k in program._env if k.startswith("c")]) <= 4


def test_a_differentiable_20000_op_chain_compiles_forward_and_backward_programs():
    def f(x):
        for _ in range(N_OPS // 2):
            x = x * 0.999 + 0.001
        return x.sum()

    fn = tg.compile(f)
    x0 = np.linspace(-1, 1, 4, dtype=np.float32)
    xs = [tg.tensor(x0, requires_grad=True) for _ in range(3)]
    outs = [fn(x) for x in xs]
    for out in outs:
        out.backward()
    np.testing.assert_allclose(outs[2].numpy(), outs[0].numpy(), rtol=1e-5)
    np.testing.assert_allclose(xs[2].grad.numpy(), xs[0].grad.numpy(), rtol=1e-5)
    assert fn.last_variant.backward is not None


# ---------------------------------------------------------------- the NumPy backend


def test_a_program_with_many_names_takes_them_as_globals():
    # A different constant for every step: more names than a closure is given.
    def f(x):
        for k in range(600):
            x = x * (1 + k * 1e-5)
        return x

    graph = tg.trace(f, S((3,)))
    program = Program(graph)
    assert len(program._env) > numpy_backend.MAX_CLOSURE
    assert program.source().startswith("def make():")
    x = np.array([1.0, 2.0, 3.0], np.float32)
    np.testing.assert_allclose(program(x)[0], graph(x)[0], rtol=1e-6)


def test_a_small_program_keeps_its_names_as_closure_variables():
    program = Program(tg.trace(lambda x: (x * 2 + 1).exp(), S((3,))))
    assert len(program._env) <= numpy_backend.MAX_CLOSURE
    header = program.source().splitlines()[0]
    assert header.startswith("def make(") and header != "def make():"
    x = np.array([0.0, 1.0, 2.0], np.float32)
    np.testing.assert_allclose(program(x)[0], np.exp(x * 2 + 1), rtol=1e-6)


def test_one_name_per_constant_object():
    graph = tg.trace(lambda x: x * 3 + 3 - 3 * x, S((3,)))
    program = Program(graph)
    consts = [v for k, v in program._env.items() if k.startswith("c")]
    assert len({id(v) for v in consts}) == len(consts)  # no object under two names


# ---------------------------------------------------------------- fuse


def test_fuse_lists_each_input_of_a_long_kernel_once():
    def f(x, w, v):
        for _ in range(50):
            x = x * w + v
        return x

    graph = tg.trace(f, S((4,)), S((4,)), S((4,)))
    fused, _ = fuse(graph)
    (kernel,) = [n for n in fused.nodes if n.op == "kernel"]
    assert len(kernel.value) == 100
    assert [n.name for n in kernel.inputs] == [n.name for n in graph.inputs]
    x, w, v = (np.array([1, 2, 3, 4], np.float32) / k for k in (2, 3, 5))
    want = x
    for _ in range(50):
        want = want * w + v
    np.testing.assert_allclose(Program(fused)(x, w, v)[0], want, rtol=1e-5)


# ---------------------------------------------------------------- plan_memory


def _reference_last_use(graph: Graph) -> dict:
    """_last_use as it was written before (nodes x outputs), for comparison."""
    from tracegrad.compiler.passes.plan_memory import _alias_roots

    outputs = {id(o) for o in graph.outputs}
    base = _alias_roots(graph)
    last_index, holder = {}, {}
    for k, node in enumerate(graph.nodes):
        for i in node.inputs:
            root = base.get(id(i), i)
            last_index[id(root)] = k
            holder[id(root)] = root
        last_index.setdefault(id(base.get(id(node), node)), k)
        holder.setdefault(id(base.get(id(node), node)), base.get(id(node), node))
    dead = {}
    for key, k in last_index.items():
        n = holder[key]
        if id(n) in outputs or any(base.get(id(o), o) is n for o in graph.outputs):
            continue
        dead.setdefault(k, []).append(n)
    return dead


@pytest.mark.parametrize("fn,shapes", [
    (lambda x, w: ((x @ w).relu() @ w.T).sigmoid().sum(dim=0), [(3, 4), (4, 4)]),
    (lambda x: (x.T.reshape(2, 6).permute(1, 0) * 1 + 0).exp()[::2], [(3, 4)]),
    (lambda x: (lambda m: (m, m.T, m.exp()))(x * 2), [(3, 3)]),
    (lambda x: (x.reshape(4, 3) * 2, x.sum()), [(3, 4)]),
])
def test_last_use_is_unchanged(fn, shapes):
    graph = tg.trace(fn, *[S(s) for s in shapes])
    got = {k: [id(n) for n in v] for k, v in _last_use(graph).items()}
    want = {k: [id(n) for n in v] for k, v in _reference_last_use(graph).items()}
    assert got == want
    assert peak_without_plan(graph) > 0


def test_plan_memory_picks_the_smallest_fitting_buffer_freed_first():
    # Values of 64, 16, 64 and 32 bytes die together; then a 32-byte value and a 64-byte
    # value are made: the 32-byte buffer (not a 64-byte one) fits the first, the 64-byte
    # buffer freed first takes the second.
    def f(x):  # x: (4, 4) float32, 64 bytes
        a = x.exp()  # 64
        b = x[0].exp()  # 16
        c = x.tanh()  # 64
        d = x[:2].exp()  # 32
        s = a.sum() + b.sum() + c.sum() + d.sum()  # a, b, c, d die here
        e = (x[2:] * s).exp()  # 32
        g = (x * s).exp()  # 64
        return e.sum() + g.sum()

    graph = tg.trace(f, S((4, 4)))
    plan = plan_memory(graph)
    # (the assignment the scan over the free list made before it became a sorted search)
    assert [plan.buffer_of.get(id(n)) for n in graph.nodes] == [
        0, None, 1, 2, None, 3, 4, 5, 4, 5, 4, 5, 4, None, 3, 3, 0, 0, 5, 4, None]
    assert plan.buffers == [64, 16, 64, 32, 4, 4]
    x = np.linspace(-1, 1, 16, dtype=np.float32).reshape(4, 4)
    np.testing.assert_allclose(Program(graph)(x)[0], graph(x)[0], rtol=1e-5)


def test_may_overwrite_with_counts_made_once_gives_the_same_answers():
    x = Node("input", (), {}, (4,), np.float32)
    y = Node("input", (), {}, (4,), np.float32)
    t = Node("permute", (x,), {"dims": (0,)}, (4,), np.float32)
    add = Node("add", (x, t), {}, (4,), np.float32)
    mul = Node("mul", (x, y), {}, (4,), np.float32)
    square = Node("mul", (x, x), {}, (4,), np.float32)
    base = {id(t): x}
    assert not _may_overwrite(add, x, base)  # x + x.T: the other operand shares x's memory
    assert _may_overwrite(mul, x, base) and _may_overwrite(mul, y, base)
    assert _may_overwrite(square, x, base)  # x * x: both operands are x itself


def test_a_kernel_never_overwrites_an_operand_a_later_step_reads():
    def f(a, b):
        m = a @ b  # a pooled value, dead after the kernel
        n = a @ b.T
        return ((m.exp() + n) * m).sum(dim=0)  # m is read again by a later step

    graph, _, _ = tg.compiler.api.optimize(tg.trace(f, S((3, 3)), S((3, 3))))
    a = np.arange(9, dtype=np.float32).reshape(3, 3) / 10
    b = np.eye(3, dtype=np.float32) + 0.1
    m, n = a @ b, a @ b.T
    np.testing.assert_allclose(Program(graph)(a, b)[0], ((np.exp(m) + n) * m).sum(0),
                               rtol=1e-5)


# ---------------------------------------------------------------- the garbage collector


def test_compiling_pauses_the_collector_and_restores_it():
    seen = []

    def f(x):
        seen.append(gc.isenabled())
        return x * 2

    fn = tg.compile(f)
    x = tg.ones(3)
    assert gc.isenabled()
    fn(x)  # eager
    fn(x)  # compiles: the function runs under the tracer
    assert seen == [True, False]
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the user's choice stays
    finally:
        gc.enable()


def test_the_collector_resumes_after_a_failed_compile():
    def f(x):
        if float(x.sum()) > 0:  # reads a traced value: a TraceError while tracing
            return x
        return -x

    fn = tg.compile(f)
    fn(tg.ones(2))
    with pytest.raises(tg.TraceError):
        fn(tg.ones(2))
    assert gc.isenabled()


# ---------------------------------------------------------------- many parameters


def test_a_training_step_with_600_parameters_compiles_and_matches_eager():
    # Hundreds of captured tensors: the entry's names and the program's outputs (one
    # write-back per weight and per gradient) are indexed, not scanned.
    def make():
        tg.manual_seed(0)
        layers = []
        for _ in range(300):
            layers += [tg.nn.Linear(3, 3), tg.nn.Tanh()]
        model = tg.nn.Sequential(*layers)
        opt = tg.optim.SGD(model.parameters(), lr=0.05)

        def step(x):
            opt.zero_grad()
            loss = (model(x) ** 2).sum()
            loss.backward()
            opt.step()
            return loss

        return model, step

    (m_eager, eager), (m_comp, comp) = make(), make()
    comp = tg.compile(comp)
    x = tg.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3))
    for _ in range(3):
        np.testing.assert_allclose(comp(x).numpy(), eager(x).numpy(), rtol=1e-5)
    assert comp.cache_info().misses == 1
    for p, q in zip(m_comp.parameters(), m_eager.parameters()):
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-7)
    assert len(comp.last_variant.graph.outputs) >= 1200


def test_a_function_of_2000_tensor_arguments_compiles_and_matches_eager():
    def f(*xs):
        acc = xs[0]
        for x in xs[1:]:
            acc = acc * 0.5 + x
        return acc

    fn = tg.compile(f)
    args = [tg.tensor(np.full(2, k / 1000, np.float32)) for k in range(2000)]
    want = f(*args).numpy()
    for _ in range(3):  # eager, compiling, compiled
        np.testing.assert_allclose(fn(*args).numpy(), want, rtol=1e-6)
    assert fn.cache_info().misses == 1 and len(fn.last_variant.graph.inputs) == 2000
