"""Every compiler pass: its effect on a small graph (before/after), and that it keeps results.

Passes may rewrite the nodes of the graph they are given, so a test that wants the graph
from before a pass hands the pass a `Graph.copy()`.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracegrad as tg
from tracegrad.compiler.backends.numpy import Program
from tracegrad.compiler.ir import Graph
from tracegrad.compiler.optimize import optimize
from tracegrad.compiler.passes import (
    PIPELINE,
    cse,
    dce,
    fold_constants,
    fuse,
    plan_memory,
    simplify,
)

S = tg.TensorSpec
F = tg.nn.functional


def ops(graph: Graph) -> list[str]:
    return [n.op for n in graph.nodes]


def count(graph: Graph, op: str) -> int:
    return ops(graph).count(op)


def by_op(graph: Graph, op: str) -> list:
    return [n for n in graph.nodes if n.op == op]


# ---------------------------------------------------------------- dce


def test_dce_drops_an_unused_branch():
    def f(x):
        unused = (x * 3).tanh()  # noqa: F841  (computed, never returned)
        return x.exp()

    before = tg.trace(f, S((4,)))
    assert ops(before) == ["const", "mul", "tanh", "exp"]
    after, note = dce(before.copy())
    assert ops(after) == ["exp"]
    assert note == "removed 3 dead node(s)"
    after.check()
    x = np.linspace(-1, 1, 4, dtype=np.float32)
    np.testing.assert_array_equal(after(x)[0], before(x)[0])


def test_dce_keeps_everything_that_is_used():
    g = tg.trace(lambda x: (x * 2).exp(), S((4,)))
    after, note = dce(g.copy())
    assert ops(after) == ops(g) and note == "removed 0 dead node(s)"


# ---------------------------------------------------------------- cse


def test_cse_merges_the_same_computation_done_twice():
    before = tg.trace(lambda x: (x * 2).exp() + (x * 2).tanh(), S((4,)))
    assert count(before, "mul") == 2 and count(before, "const") == 1
    after, note = cse(before.copy())
    assert count(after, "mul") == 1 and count(after, "const") == 1
    assert note == "merged 1 duplicate node(s)"
    (mul,) = by_op(after, "mul")
    assert by_op(after, "exp")[0].inputs == (mul,) and by_op(after, "tanh")[0].inputs == (mul,)
    assert str(after) == (
        "graph(%0:f32[4] arg0) {\n"
        "  %1:f32[] = const 2.0\n"
        "  %2:f32[4] = mul %0 %1\n"
        "  %3:f32[4] = exp %2\n"
        "  %4:f32[4] = tanh %2\n"
        "  %5:f32[4] = add %3 %4\n"
        "  return %5\n"
        "}"
    )
    x = np.linspace(-1, 1, 4, dtype=np.float32)
    np.testing.assert_allclose(after(x)[0], before(x)[0], rtol=1e-6)


def test_cse_merges_equal_constants_and_what_uses_them():
    def f(x):
        return x * tg.tensor([1.0, 2.0, 3.0]) + x * tg.tensor([1.0, 2.0, 3.0])

    before = tg.trace(f, S((3,)))
    assert count(before, "const") == 2 and count(before, "mul") == 2
    after, note = cse(before.copy())
    assert count(after, "const") == 1 and count(after, "mul") == 1
    assert note == "merged 2 duplicate node(s)"
    (add,) = by_op(after, "add")
    assert add.inputs[0] is add.inputs[1]


def test_cse_keeps_different_attributes_apart():
    g = tg.trace(lambda x: x.sum(dim=0) + x.sum(dim=1), S((3, 3)))
    after, note = cse(g.copy())
    assert count(after, "sum") == 2 and note == "merged 0 duplicate node(s)"


def test_cse_never_merges_two_random_draws():
    g = tg.trace(lambda x: x + (tg.rand(3) - tg.rand(3)), S((3,)))
    after, note = cse(g.copy())
    assert count(after, "rand") == 2 and note == "merged 0 duplicate node(s)"
    (y,) = after(np.zeros(3, np.float32))
    assert np.any(y != 0)


# ---------------------------------------------------------------- fold_constants


def test_fold_constants_turns_const_times_const_into_one_const():
    before = tg.trace(lambda x: x * (tg.tensor(2.0) * tg.tensor(3.0)), S((3,)))
    assert ops(before) == ["const", "const", "mul", "mul"]
    after, note = fold_constants(before.copy())
    assert note == "folded 1 node(s) into constants"
    after, _ = dce(after)
    assert ops(after) == ["const", "mul"]
    const, mul = after.nodes
    assert float(const.value) == 6.0 and const.dtype == np.float32
    assert mul.inputs == (after.inputs[0], const)
    x = np.arange(3, dtype=np.float32)
    np.testing.assert_array_equal(after(x)[0], before(x)[0])


def test_fold_constants_folds_whole_constant_subtrees_but_not_inputs_or_rand():
    def f(x):
        c = (tg.arange(4) * 0.5).exp().sum()  # all constant
        return x * c + tg.rand(4) * 2

    before = tg.trace(f, S((4,)))
    after, note = fold_constants(before.copy())
    after, _ = dce(after)
    assert note.startswith("folded ") and int(note.split()[1]) >= 3
    assert count(after, "exp") == 0 and count(after, "sum") == 0
    assert count(after, "rand") == 1
    folded = [n for n in after.nodes if n.op == "const" and n.shape == ()]
    assert any(np.isclose(float(n.value), np.exp(np.arange(4) * 0.5).sum()) for n in folded)


# ---------------------------------------------------------------- simplify


@pytest.mark.parametrize(
    "src, before_ops",
    [
        ("x * 1", ["const", "mul"]),
        ("1 * x", ["const", "mul"]),
        ("x + 0", ["const", "add"]),
        ("0 + x", ["const", "add"]),
        ("x - 0", ["const", "sub"]),
        ("x / 1", ["const", "div"]),
        ("-(-x)", ["neg", "neg"]),
        ("x.reshape(6).reshape(2, 3)", ["reshape", "reshape"]),
        ("x.permute(1, 0).permute(1, 0)", ["permute", "permute"]),
        ("x.reshape(1, 2, 3).permute(2, 0, 1).permute(1, 2, 0).reshape(2, 3)",
         ["reshape", "permute", "permute", "reshape"]),
    ],
)
def test_simplify_removes_identities(src, before_ops):
    fn = eval("lambda x: " + src)
    before = tg.trace(fn, S((2, 3)))
    assert ops(before) == before_ops
    after, note = simplify(before.copy())
    after, _ = dce(after)
    assert note != "rewrote 0 node(s)"
    assert after.nodes == [] and after.outputs == after.inputs
    x = np.arange(6, dtype=np.float32).reshape(2, 3) - 2
    np.testing.assert_array_equal(after(x)[0], before(x)[0])


def test_simplify_merges_reshape_of_reshape_and_composes_permutes():
    g = tg.trace(lambda x: x.reshape(3, 2).reshape(6), S((2, 3)))
    after, _ = dce(simplify(g.copy())[0])
    (r,) = after.nodes
    assert r.op == "reshape" and r.inputs == (after.inputs[0],) and r.shape == (6,)

    g = tg.trace(lambda x: x.permute(2, 0, 1).permute(0, 2, 1), S((2, 3, 4)))
    after, _ = dce(simplify(g.copy())[0])
    (p,) = after.nodes
    assert p.op == "permute" and p.attrs["dims"] == (2, 1, 0) and p.shape == (4, 3, 2)
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_array_equal(after(x)[0], g(x)[0])


def test_simplify_makes_a_splits_gradient_one_cat():
    # d/dx of f(q, k, v) with q, k, v = x.split: three scatters into zeros, added, become
    # one cat of the three pieces (and two adjacent ones a scatter of their cat)
    def f(x):
        q, k, v = x.split(4, dim=-1)
        return (q.exp() + k * k - v.tanh()).sum()

    g = tg.trace(lambda x: tg.grad(f)(x), S((3, 5, 12)))
    assert count(g, "scatter_add") == 3
    after, _ = dce(simplify(g.copy())[0])
    assert count(after, "scatter_add") == 0 and count(after, "cat") == 1
    x = np.random.default_rng(0).standard_normal((3, 5, 12)).astype(np.float32)
    np.testing.assert_array_equal(after(x)[0], g(x)[0])

    g = tg.trace(lambda x: tg.grad(lambda x: x[:, 2:5].exp().sum() + (x[:, 5:7] ** 2).sum())(x),
                 S((4, 9)))
    after, _ = dce(simplify(g.copy())[0])
    (scatter,) = [n for n in after.nodes if n.op == "scatter_add"]
    assert scatter.inputs[0].op == "cat" and scatter.attrs["index"][1] == slice(2, 7)
    x = np.random.default_rng(1).standard_normal((4, 9)).astype(np.float32)
    np.testing.assert_array_equal(after(x)[0], g(x)[0])


def test_simplify_reports_a_merged_reshape():
    g = tg.trace(lambda x: x.reshape(3, 2).reshape(6), S((2, 3)))
    _, note = simplify(g.copy())
    assert note != "rewrote 0 node(s)"


@pytest.mark.parametrize("src", ["0 - x", "x * 2", "x + 1", "1 / x", "-x"])
def test_simplify_leaves_non_identities(src):
    g = tg.trace(eval("lambda x: " + src), S((3,)))
    after, note = simplify(g.copy())
    assert ops(after) == ops(g) and note == "rewrote 0 node(s)"


def test_simplify_keeps_a_broadcasting_identity():
    # x * ones(2, 3) with x of shape (3,) changes the shape: not an identity
    g = tg.trace(lambda x: x * tg.ones(2, 3), S((3,)))
    after, _ = simplify(g.copy())
    assert "mul" in ops(after) and after.outputs[0].shape == (2, 3)


def test_simplify_turns_a_transposed_product_around_twice():
    # The backward of x @ W.T computes W's gradient as ((g.T @ x).T).T: both transposes go
    # into the product, and a transpose of a transpose is no transpose.
    g = tg.trace(lambda a, b: ((a.T @ b).T).T, S((5, 3)), S((5, 4)))
    after, _ = dce(simplify(g.copy())[0])
    assert ops(after) == ["permute", "matmul"]
    (t, m) = after.nodes
    assert t.inputs == (after.inputs[0],) and m.inputs == (t, after.inputs[1])
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(after(a, b)[0], a.T @ b, rtol=1e-6)


def test_simplify_keeps_a_rewritten_node_once_when_a_later_rule_returns_it():
    # ((a @ b).T).T * 1: the transposes turn the product around twice (a new node), then
    # x * 1 returns that same node; it must appear once in the graph (hypothesis found it).
    g = tg.trace(lambda a, b: ((a @ b).T).T * 1.0, S((3, 4)), S((4, 4)))
    after, _ = simplify(g.copy())
    after.check()
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(4, 4)).astype(np.float32)
    np.testing.assert_allclose(dce(after)[0](a, b)[0], a @ b, rtol=1e-6)


def test_simplify_computes_a_unary_op_before_an_expand():
    g = tg.trace(lambda x, y: x.reshape(1).expand(4).exp() * y, S(()), S((4,)))
    assert ops(g) == ["reshape", "expand", "exp", "mul"]
    after, _ = dce(simplify(g.copy())[0])
    assert ops(after) == ["reshape", "exp", "mul"]  # exp of one number, broadcast by mul
    x, y = np.float32(0.5), np.arange(4, dtype=np.float32)
    np.testing.assert_allclose(after(np.asarray(x), y)[0], np.exp(x) * y, rtol=1e-6)


def test_simplify_moves_elementwise_ops_inside_a_permute_so_permutes_cancel():
    # The convolution computes in a batch-last layout and permutes to NCHW; ReLU on that
    # view, then a permute back for pooling: computed on the unpermuted array, both
    # permutes cancel (eager NumPy keeps the layout the same way).
    dims, back = (3, 0, 1, 2), (1, 2, 3, 0)
    def f(x, y):
        a = x.permute(*dims).relu()
        b = (a * 2.0 - y.permute(*dims)).permute(*back)
        return tg.where(b > 0, b, 0.5) + 1.0
    g = tg.trace(f, S((2, 3, 4, 5)), S((2, 3, 4, 5)))
    after, _ = dce(simplify(g.copy())[0])
    assert count(after, "permute") == 0, ops(after)
    rng = np.random.default_rng(0)
    x, y = (rng.normal(size=(2, 3, 4, 5)).astype(np.float32) for _ in range(2))
    np.testing.assert_array_equal(after(x, y)[0], f(tg.tensor(x), tg.tensor(y)).numpy())


def test_simplify_keeps_a_permute_when_operands_are_permuted_differently_or_broadcast():
    # Different permutations, or an operand of lower rank that broadcasts: no rewrite.
    g = tg.trace(lambda x, y: x.permute(1, 0, 2) * y.permute(2, 1, 0), S((3, 3, 3)),
                 S((3, 3, 3)))
    assert count(dce(simplify(g.copy())[0])[0], "permute") == 2
    g = tg.trace(lambda x, y: x.permute(1, 0) + y, S((3, 4)), S((3,)))
    after, _ = dce(simplify(g.copy())[0])
    assert ops(after) == ["permute", "add"]
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(3,)).astype(np.float32)
    np.testing.assert_array_equal(after(x, y)[0], x.T + y)


def test_scatter_add_at_distinct_positions_is_an_assignment():
    # A gather by rows (cross-entropy's picked log-probabilities) names every position at
    # most once: its gradient assigns instead of calling add_at (np.add.at's scatter-add).
    w = tg.tensor(np.ones((4, 3), np.float32), requires_grad=True)

    def rows(t):
        loss = (w[tg.arange(4), t] * 2).sum()
        loss.backward()
        return loss

    def repeated(t):
        loss = (w[t, t] * 2).sum()
        loss.backward()
        return loss

    t = np.array([2, 0, 2, 1])
    for fn, at in ((rows, False), (repeated, True)):
        w.grad = None
        graph = tg.trace(fn, tg.tensor(t))
        program = Program(optimize(graph)[0])
        assert ("add_at(" in program.source()) == at
        grad = program(t, w.numpy())[-1]
        expected = np.zeros((4, 3), np.float32)
        np.add.at(expected, (np.arange(4), t) if fn is rows else (t, t), 2.0)
        np.testing.assert_array_equal(grad, expected)


# ---------------------------------------------------------------- fuse


def test_fuse_turns_an_elementwise_chain_and_its_reduction_into_one_kernel():
    before = tg.trace(lambda x: (x * 2 + 1).exp().sum(), S((4, 3)))
    assert ops(before) == ["const", "mul", "const", "add", "exp", "sum"]
    after, note = fuse(before.copy())
    assert note == "fused 4 node(s) into 1 kernel(s)"
    (kernel,) = [n for n in after.nodes if n.op != "const"]
    assert kernel.op == "kernel" and after.outputs == [kernel]
    assert kernel.inputs == (after.inputs[0],)
    assert kernel.shape == () and kernel.dtype == np.float32
    assert [s.op for s in kernel.value] == ["mul", "add", "exp", "sum"]
    assert [r[0] for r in kernel.value[0].refs] == ["input", "const"]
    assert [r[0] for r in kernel.value[1].refs] == ["step", "const"]
    assert kernel.value[2].refs == [("step", 1)]
    assert kernel.value[3].attrs == {"axes": (0, 1), "keepdim": False}
    assert (
        "  %3:f32[] = kernel %0 {\n"
        "      t0 = mul %0 2.0\n"
        "      t1 = add t0 1.0\n"
        "      t2 = exp t1\n"
        "      t3 = sum[axes=(0, 1), keepdim=False] t2\n"
        "    }\n"
    ) in str(after)
    after.check()
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    np.testing.assert_allclose(after(x)[0], before(x)[0], rtol=1e-6)


def test_fuse_does_not_fuse_a_value_used_twice():
    before = tg.trace(lambda x: (lambda y: y * 2 + y)(x.exp()), S((4,)))
    after, _ = fuse(before.copy())
    (exp,) = by_op(after, "exp")  # read twice: stays a node of its own
    (kernel,) = by_op(after, "kernel")
    assert [s.op for s in kernel.value] == ["mul", "add"]
    assert kernel.inputs == (exp,)
    x = np.linspace(-1, 1, 4, dtype=np.float32)
    np.testing.assert_allclose(after(x)[0], before(x)[0], rtol=1e-6)


def test_fuse_does_not_chain_through_an_op_that_reads_the_value_twice():
    before = tg.trace(lambda x: (lambda t: t * t)(x.exp()), S((4,)))
    after, note = fuse(before.copy())
    assert ops(after) == ["exp", "mul"] and note == "fused 0 node(s) into 0 kernel(s)"


def test_fuse_does_not_fuse_an_output_or_across_a_matmul():
    g = tg.trace(lambda x, w: (lambda h: (h, (h @ w).tanh()))(x.exp()), S((2, 2)), S((2, 2)))
    after, _ = fuse(g.copy())
    assert ops(after) == ["exp", "matmul", "tanh"]


def test_fuse_continues_the_longer_of_two_meeting_chains():
    # exp(x) * 2 + y * 3: two chains meet at the add; the longer continues through it and
    # the shorter one's result is an input of the kernel.
    g = tg.trace(lambda x, y: (x.exp() * 2) + y * 3, S((4,)), S((4,)))
    after, note = fuse(g.copy())
    assert note == "fused 3 node(s) into 1 kernel(s)"
    kernel = by_op(after, "kernel")[0]
    assert [s.op for s in kernel.value] == ["exp", "mul", "add"]
    assert after.outputs == [kernel] and by_op(after, "mul")[0] in kernel.inputs
    x, y = np.linspace(-1, 1, 4, dtype=np.float32), np.arange(4, dtype=np.float32)
    np.testing.assert_allclose(Program(after)(x, y)[0], np.exp(x) * 2 + y * 3, rtol=1e-6)


# ---------------------------------------------------------------- plan_memory


def test_plan_memory_reuses_buffers():
    def chain(x, w):
        h = x @ w
        h = h @ w
        h = h @ w
        return h @ w

    g = tg.trace(chain, S((4, 4)), S((4, 4)))
    intermediates = sum(n.nbytes for n in g.nodes)
    assert intermediates == 4 * 64
    before = str(g)
    plan = plan_memory(g)
    note = plan.summary()
    assert ops(g) == ["matmul"] * 4 and str(g) == before  # an analysis: the graph unchanged
    assert plan.pool_bytes == 128 < intermediates
    # three intermediates share two pooled buffers; the output gets new memory per run
    assert [plan.buffer_of.get(id(n)) for n in g.nodes] == [0, 1, 0, None]
    assert [id(n) in plan.fresh for n in g.nodes] == [False, False, False, True]
    assert plan.in_place == 0
    assert plan.peak_bytes == 128
    assert note == ("2 buffer(s), 128 bytes pooled, 0 in place (0 into their inputs), "
                    "peak 128 bytes")


def test_plan_memory_writes_in_place_over_a_dead_intermediate():
    g = tg.trace(lambda x, w: (x @ w).exp().sum(dim=0), S((4, 4)), S((4, 4)))
    plan = plan_memory(g)
    note = plan.summary()
    matmul, exp, total = g.nodes
    assert plan.in_place == 1
    assert plan.buffer_of[id(exp)] == plan.buffer_of[id(matmul)]
    assert id(total) in plan.fresh  # the output: new memory, handed to the caller
    assert plan.pool_bytes == 64 and plan.peak_bytes == 64 + 16
    assert "1 in place" in note and "peak 80 bytes" in note


def test_plan_memory_never_writes_over_a_graph_input():
    g = tg.trace(lambda x: x.exp().tanh().sum(dim=0), S((4, 4)))
    plan = plan_memory(g)
    exp, tanh, _ = g.nodes
    assert plan.in_place == 1  # tanh over exp, but exp not over the input
    assert plan.buffer_of[id(tanh)] == plan.buffer_of[id(exp)]
    x = np.linspace(-1, 1, 16, dtype=np.float32).reshape(4, 4)
    keep = x.copy()
    out = Program(g)(x)
    np.testing.assert_array_equal(x, keep)
    np.testing.assert_allclose(out[0], np.tanh(np.exp(keep)).sum(0), rtol=1e-6)


def test_plan_memory_never_writes_over_a_value_needed_later():
    g = tg.trace(lambda x, w: (lambda m: (m.exp() + m.sum()).sum(dim=0))(x @ w),
                 S((4, 4)), S((4, 4)))
    buf = plan_memory(g).buffer_of
    matmul, exp, total, add, _ = g.nodes
    assert buf[id(exp)] != buf[id(matmul)]  # m is still read by the sum
    assert buf[id(add)] == buf[id(exp)]  # exp is dead after the add: in place is fine
    x, w = np.eye(4, dtype=np.float32), np.full((4, 4), 0.5, np.float32)
    np.testing.assert_allclose(Program(g)(x, w)[0], (np.exp(w) + w.sum()).sum(0), rtol=1e-6)


def test_plan_memory_never_writes_over_an_output():
    g = tg.trace(lambda x, w: (lambda m: (m, m.exp()))(x @ w), S((4, 4)), S((4, 4)))
    plan = plan_memory(g)
    matmul, exp = g.nodes
    assert id(matmul) in plan.fresh and id(exp) in plan.fresh and plan.in_place == 0
    x, w = np.eye(4, dtype=np.float32), np.full((4, 4), 0.5, np.float32)
    m, e = Program(g)(x, w)
    assert not np.shares_memory(m, e)
    np.testing.assert_allclose(e, np.exp(m), rtol=1e-6)


def test_plan_memory_peak_counts_values_live_at_once():
    def f(x, w):
        a = x @ w  # 64 bytes
        b = a.sum(dim=0)  # 16 bytes, a still live for c
        c = a @ w  # 64 bytes; a dies here
        return c.sum() + b.sum()

    g = tg.trace(f, S((4, 4)), S((4, 4)))
    plan = plan_memory(g)
    note, peak = plan.summary(), plan.peak_bytes
    assert peak == 64 + 16 + 64
    assert f"peak {peak:,} bytes" in note


def test_plan_memory_in_place_kernel_respects_views_read_later():
    f = lambda a, b: (lambda m: m.exp() + m.T)(a @ b)  # noqa: E731
    g, _, _ = optimize(tg.trace(f, S((3, 3)), S((3, 3))))
    a = np.arange(9, dtype=np.float32).reshape(3, 3) / 10
    b = np.eye(3, dtype=np.float32)
    want = np.exp(a @ b) + (a @ b).T
    np.testing.assert_allclose(Program(g)(a, b)[0], want, rtol=1e-5)


def test_plan_memory_writes_a_new_state_over_the_old_once_nothing_reads_it():
    # v * b2 + (1 - b2) g^2 (Adam's second moment): the old v's last reader is the first
    # product, so the new v (a write-back of v) may go straight into v's memory
    g = tg.trace(lambda v, d: v * 0.99 + d * d * 0.01, S((4, 4)), S((4, 4)))
    v = g.inputs[0]
    plan = plan_memory(g, donations={id(g.outputs[0]): v})
    assert plan.into_input.get(id(g.outputs[0])) is v
    assert id(g.outputs[0]) not in plan.fresh
    v0, d0 = np.full((4, 4), 2.0, np.float32), np.full((4, 4), 3.0, np.float32)
    want = v0 * np.float32(0.99) + d0 * d0 * np.float32(0.01)
    got = Program(g, plan)(v0, d0)[0]
    assert got is v0
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # ... but not while a later node still reads v
    g = tg.trace(lambda v, d: (v * 0.99 + d, v.sum()), S((4, 4)), S((4, 4)))
    plan = plan_memory(g, donations={id(g.outputs[0]): g.inputs[0]})
    assert not plan.into_input


# ---------------------------------------------------------------- results are preserved


def mlp_step():
    model = tg.nn.Sequential(tg.nn.Linear(4, 8), tg.nn.ReLU(), tg.nn.Linear(8, 3))
    params = list(model.parameters())

    def step(x, y):
        for p in params:
            p.grad = None
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return [loss] + [p.grad for p in params]

    return step, params


def run_everything(fn, arrays, extra=()):
    """``arrays`` feed the function's arguments, ``extra`` the captured tensors' data."""
    tensors = [tg.tensor(a) for a in arrays]
    eager = fn(*tensors)
    eager = [t.numpy() for t in (eager if isinstance(eager, (list, tuple)) else [eager])]
    feed = [a.copy() for a in arrays] + [e.copy() for e in extra]

    def same(got, where):
        for g, e in zip(got, eager):
            g = np.asarray(g)
            assert g.shape == e.shape and g.dtype == e.dtype, where
            np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5, equal_nan=True,
                                       err_msg=where)

    graph = tg.trace(fn, *tensors).check()
    same(graph(*feed), "trace")
    for name, p in PIPELINE:
        before = structure(graph)
        new, _ = p(graph)
        assert structure(graph) == before, f"{name} changed the graph it was given"
        graph = new
        graph.check()
        same(graph(*feed), name)
    traced = tg.trace(fn, *tensors)
    before = structure(traced)
    optimized, _, _ = optimize(traced)
    assert structure(traced) == before, "optimize changed the graph it was given"
    program = Program(optimized)
    same(program(*feed), "numpy program")
    same(program(*feed), "numpy program, second run")
    for a, b in zip(feed, list(arrays) + list(extra)):
        np.testing.assert_array_equal(a, b)  # the program never writes into its inputs


def structure(graph) -> list:
    """Everything a pass could change in place: each node's op, operands and attributes."""
    return [(id(n), n.op, tuple(id(i) for i in n.inputs), repr(n.attrs), n.shape, n.dtype)
            for n in graph.nodes] + [tuple(id(o) for o in graph.outputs)]


def negate(a):
    return -a


W = np.random.default_rng(7).standard_normal((4, 4)).astype(np.float32)
w_captured = tg.tensor(W)

FUNCTIONS = {
    "chain_and_sum": (lambda x: (x * 2 + 1).exp().sum(), [(4, 3)]),
    "broadcast": (lambda x, y, z: (x - y).tanh() * z + (x / (y.abs() + 1)), [(3, 4), (4,), (3, 1)]),
    "reductions": (lambda x: x.softmax(dim=1) - x.max(dim=0, keepdim=True).values
                   + x.mean(dim=1, keepdim=True), [(3, 4)]),
    "matmul_chain": (lambda x, w: ((x @ w).relu() @ w.T).sigmoid().sum(dim=0), [(3, 4), (4, 4)]),
    "movement": (lambda x: (x.T.reshape(2, 6).permute(1, 0) * 1 + 0).exp()[::2], [(3, 4)]),
    "shared_values": (lambda x: (lambda e: e * 2 + e.sum() - negate(negate(e)))(x.exp()), [(3, 4)]),
    "captured_weight": (lambda x: (x @ w_captured).tanh() + 1, [(3, 4)]),
    "cat_where": (lambda x: tg.where(x > 0, tg.cat([x, x * 2], 0)[:3], x.exp()), [(3, 4)]),
}


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_every_pass_preserves_results(name):
    fn, shapes = FUNCTIONS[name]
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    extra = [W] if name == "captured_weight" else []
    run_everything(fn, arrays, extra)


def test_every_pass_preserves_a_training_step():
    step, params = mlp_step()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    y = np.array([0, 1, 2, 2, 1, 0])
    graph = tg.trace(step, tg.tensor(x), tg.tensor(y)).check()
    assert graph.outputs[0].shape == () and len(graph.outputs) >= 5
    feed = [x, y] + [p.numpy().copy() for p in params]
    want = [t.numpy() for t in step(tg.tensor(x), tg.tensor(y))]

    def same(got, where):
        for g, e in zip(got, want):
            np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6, err_msg=where)

    same(graph(*feed), "trace")
    for name, p in PIPELINE:
        before = structure(graph)
        new, _ = p(graph)
        assert structure(graph) == before, f"{name} changed the graph it was given"
        graph = new
        graph.check()
        same(graph(*feed), name)
    assert "kernel" in ops(graph)
    program = Program(optimize(tg.trace(step, tg.tensor(x), tg.tensor(y)))[0])
    same(program(*feed), "numpy program")
    # new data and new weights: the same program follows them
    x2 = rng.standard_normal((6, 4)).astype(np.float32)
    y2 = np.array([2, 2, 1, 0, 0, 1])
    for p in params:
        p.data[...] = p.data * 0.5 - 0.1
    want = [t.numpy() for t in step(tg.tensor(x2), tg.tensor(y2))]
    same(program(x2, y2, *[p.numpy().copy() for p in params]), "numpy program, new values")


# A random expression: a tree of elementwise ops, reductions (keepdim, so results broadcast),
# broadcasting between (3, 4), (4,), (3, 1), and matmul by a (4, 4) argument.

UNARY = {
    "neg": lambda a: -a,
    "exp": lambda a: a.tanh().exp(),
    "tanh": lambda a: a.tanh(),
    "sigmoid": lambda a: a.sigmoid(),
    "relu": lambda a: a.relu(),
    "abs": lambda a: a.abs(),
    "log": lambda a: (a.abs() + 1).log(),
    "sqrt": lambda a: (a * a + 1).sqrt(),
    "times1": lambda a: a * 1,
    "plus0": lambda a: a + 0,
    "scale": lambda a: a * 0.5 - 1.5,
    "negneg": lambda a: negate(negate(a)),
    "transpose2": lambda a: a.T.T,
    "transposed": lambda a: (((a.T.relu() * 2 - a.T.exp()) / (a.T.abs() + 1)).T
                             if a.ndim == 2 else a),
    "sum0": lambda a: a.sum(dim=0, keepdim=True) if a.ndim else a,
    "sum1": lambda a: a.sum(dim=-1, keepdim=True) if a.ndim else a,
    "max1": lambda a: a.max(dim=-1, keepdim=True).values if a.ndim else a,
    "mean0": lambda a: a.mean(dim=0, keepdim=True) if a.ndim else a,
    "sumall": lambda a: a.sum(),
    "matmul": lambda a: a.expand(3, 4) @ tg_w,
}
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b.abs() + 1),
    "maximum": lambda a, b: tg.maximum(a, b),
    "where": lambda a, b: tg.where(a > b, a, b * 2),
}
tg_w = None  # the matmul operand, set while an expression runs

leaves = st.sampled_from(["x", "y", "z"])
expressions = st.recursive(
    leaves,
    lambda sub: st.one_of(
        st.tuples(st.sampled_from(sorted(UNARY)), sub),
        st.tuples(st.sampled_from(sorted(BINARY)), sub, sub),
    ),
    max_leaves=8,
)


def evaluate(expr, env):
    if isinstance(expr, str):
        return env[expr]
    if len(expr) == 2:
        return UNARY[expr[0]](evaluate(expr[1], env))
    return BINARY[expr[0]](evaluate(expr[1], env), evaluate(expr[2], env))


def random_function(expr):
    def fn(x, y, z, w):
        global tg_w
        tg_w = w
        return evaluate(expr, {"x": x, "y": y, "z": z}) * 1.0

    return fn


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=expressions, seed=st.integers(0, 2**16))
def test_every_pass_preserves_a_random_expression(expr, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in [(3, 4), (4,), (3, 1), (4, 4)]]
    run_everything(random_function(expr), arrays)


# ---------------------------------------------------------------- explain


def test_explain_has_a_row_per_pass_and_ends_with_the_final_ir():
    report = tg.explain(lambda x: (x * 2 + 1).exp().sum(), S((4, 3)))
    text = str(report)
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["pass", "nodes", "kernels", "peak"]
    assert "peak memory" in lines[0]
    rows = lines[2:2 + 2 + len(PIPELINE)]
    assert [r.split()[0] for r in rows] == \
        ["trace"] + [name for name, _ in PIPELINE] + ["plan_memory"]
    table = {}
    for r in rows:
        m = re.match(r"(\S+)\s+(\d+)\s+(\d+)\s+([\d.]+ (?:B|KiB|MiB))\s", r)
        assert m, r
        table.setdefault(m.group(1), []).append((int(m.group(2)), int(m.group(3)), m.group(4)))
    assert table["trace"] == [(4, 4, "96 B")]
    assert table["fuse"][0][:2] == (1, 1)
    assert table["plan_memory"][0][:2] == (1, 1)
    assert "fused 4 node(s) into 1 kernel(s)" in text
    assert text.endswith(str(report.graph))
    assert "final graph:" in text
    assert lines[-1] == "}" and "= kernel %0 {" in text


def test_explain_reports_what_each_pass_did():
    def f(x):
        dead = x.tanh()  # noqa: F841
        return (x * 2).exp() + (x * 2) * 1

    report = tg.explain(f, S((8,)))
    notes = {r.name: r.note for r in report.records}
    assert notes["cse"] == "merged 1 duplicate node(s)"
    assert report.records[1].name == "dce" and report.records[1].note == "removed 1 dead node(s)"
    assert notes["simplify"] == "rewrote 1 node(s)"
    assert report.records[-1].peak_bytes == report.plan.peak_bytes


# A reduction kernel whose chain would need a large scratch runs over blocks of rows.


@pytest.mark.parametrize("reduce, axis, keepdim", [
    ("sum", 1, True), ("sum", 0, False), ("sum", (0, 1), False), ("amax", 0, True),
    ("amin", 1, False), ("amax", (0, 1), True),
])
def test_a_large_reduction_kernel_runs_block_by_block(reduce, axis, keepdim):
    from tracegrad.compiler.passes.plan_memory import BLOCKS_ABOVE, block_rows

    def f(x, col, row):  # full-size, (n, 1) and (m,) operands: the last two broadcast
        return getattr((x * col - row).exp(), reduce)(dim=axis, keepdim=keepdim)

    n, m = 1024, 512  # a 2 MiB chain
    g, plan, _ = optimize(tg.trace(f, S((n, m)), S((n, 1)), S((m,))))
    (kernel,) = by_op(g, "kernel")
    rows = block_rows(kernel)
    assert rows is not None and n % rows == 0 and n // rows > 1
    assert 4 * n * m > BLOCKS_ABOVE
    assert plan.buffers[plan.scratch_of[id(kernel)]] == 4 * m * rows  # one block, not all
    assert "for _r in range(0, 1024, " in Program(g).source()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, m)).astype(np.float32)
    col = rng.standard_normal((n, 1)).astype(np.float32)
    row = rng.standard_normal(m).astype(np.float32)
    expected = getattr(np, reduce.removeprefix("a"))(np.exp(x * col - row), axis=axis,
                                                     keepdims=keepdim)
    (out,) = Program(g)(x, col, row)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=2e-5)


def test_a_small_reduction_kernel_or_an_awkward_row_count_runs_in_one_go():
    from tracegrad.compiler.passes.plan_memory import block_rows

    for shape in [(64, 64), (1021, 1024)]:  # too small; a prime number of rows
        g = optimize(tg.trace(lambda x: (x * 2).exp().sum(dim=1), S(shape)))[0]
        (kernel,) = by_op(g, "kernel")
        assert block_rows(kernel) is None
        assert "for _r" not in Program(g).source()
