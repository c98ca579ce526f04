"""The IR: `tg.trace` builds a `Graph` (inputs, SSA nodes, outputs) that prints like a jaxpr,
checks itself, and runs with the reference interpreter."""

from __future__ import annotations

import os

import numpy as np
import pytest

import tracegrad as tg
from tracegrad.compiler.ir import Graph
from tracegrad.compiler.passes import fuse

S = tg.TensorSpec


def ops(graph: Graph) -> list[str]:
    return [n.op for n in graph.nodes]


def rng_arrays(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


# ---------------------------------------------------------------- structure


def test_trace_gives_inputs_nodes_and_outputs():
    g = tg.trace(lambda x, y: (x * y).exp(), S((4, 3)), S((4, 3)))
    assert [n.op for n in g.inputs] == ["input", "input"]
    assert [n.shape for n in g.inputs] == [(4, 3), (4, 3)]
    assert [n.name for n in g.inputs] == ["arg0", "arg1"]
    assert ops(g) == ["mul", "exp"]
    mul, exp = g.nodes
    assert mul.inputs == (g.inputs[0], g.inputs[1])
    assert exp.inputs == (mul,)
    assert g.outputs == [exp]
    assert exp.shape == (4, 3) and exp.dtype == np.float32


def test_trace_with_tensor_examples_and_several_outputs():
    x = tg.randn(2, 5)
    g = tg.trace(lambda x: (x.sum(dim=1), x.relu()), x)
    assert len(g.inputs) == 1 and g.inputs[0].shape == (2, 5)
    assert ops(g) == ["sum", "relu"]
    assert [o.shape for o in g.outputs] == [(2,), (2, 5)]
    assert g.outputs == g.nodes


def test_tensorspec_dtype_is_recorded():
    g = tg.trace(lambda x: x + x, S((3,), tg.float64))
    assert g.inputs[0].dtype == np.float64
    assert g.nodes[0].dtype == np.float64
    assert "%0:f64[3] arg0" in str(g)


def test_str_is_typed_ssa_text():
    g = tg.trace(lambda x, y: x * y, S((4, 3)), S((4, 3)))
    assert str(g) == (
        "graph(%0:f32[4,3] arg0, %1:f32[4,3] arg1) {\n"
        "  %2:f32[4,3] = mul %0 %1\n"
        "  return %2\n"
        "}"
    )


def test_str_shows_constants_and_attributes():
    g = tg.trace(lambda x: (x * 2).sum(dim=1), S((4, 3)))
    assert str(g) == (
        "graph(%0:f32[4,3] arg0) {\n"
        "  %1:f32[] = const 2.0\n"
        "  %2:f32[4,3] = mul %0 %1\n"
        "  %3:f32[4] = sum[axes=(1,), keepdim=False] %2\n"
        "  return %3\n"
        "}"
    )
    assert repr(g) == "<Graph: 1 inputs, 3 nodes, 1 outputs>"


# ---------------------------------------------------------------- check()


def mlp_step_graph():
    F = tg.nn.functional
    model = tg.nn.Sequential(tg.nn.Linear(4, 8), tg.nn.ReLU(), tg.nn.Linear(8, 3))

    def step(x, y):
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    return tg.trace(step, tg.randn(5, 4), tg.tensor([0, 1, 2, 1, 0]))


@pytest.mark.parametrize(
    "fn, specs",
    [
        (lambda x: (x * 2 + 1).exp().sum(), [S((4, 3))]),
        (lambda x, w: (x @ w).relu().mean(dim=0), [S((5, 4)), S((4, 2))]),
        (lambda x: x.softmax(dim=1).T.reshape(-1), [S((2, 3))]),
        (lambda x, y: tg.where(x > y, x, y * 0.5), [S((3, 4)), S((4,))]),
    ],
)
def test_check_passes_for_traced_graphs(fn, specs):
    g = tg.trace(fn, *specs)
    assert g.check() is g


def test_check_passes_for_a_traced_training_step():
    mlp_step_graph().check()


def test_check_names_a_use_before_definition():
    g = tg.trace(lambda x: (x * 2).exp(), S((3,)))
    const, mul, exp = g.nodes
    broken = Graph(g.inputs, [const, exp, mul], g.outputs)
    with pytest.raises(ValueError, match=r"%2 = exp uses %3 before it is defined"):
        broken.check()


def test_check_names_a_node_with_a_wrong_recorded_shape():
    g = tg.trace(lambda x, y: x * y, S((4, 3)), S((4, 3)))
    g.nodes[0].shape = (3, 4)
    with pytest.raises(ValueError, match=r"%2 = mul: recorded as f32\[3,4\].*f32\[4, 3\]"):
        g.check()


def test_check_names_a_node_with_a_wrong_recorded_dtype():
    g = tg.trace(lambda x: x.exp(), S((2,)))
    g.nodes[0].dtype = np.dtype(np.float64)
    with pytest.raises(ValueError, match=r"%1 = exp: recorded as f64\[2\]"):
        g.check()


def test_check_names_an_output_that_is_not_defined():
    g = tg.trace(lambda x: (x * 2).exp(), S((3,)))
    exp = g.nodes[-1]
    broken = Graph(g.inputs, g.nodes[:-1], [exp])
    with pytest.raises(ValueError, match=r"output %3 is not defined by the graph"):
        broken.check()


def test_check_rejects_a_non_input_in_the_inputs():
    g = tg.trace(lambda x: x.exp(), S((3,)))
    broken = Graph([g.nodes[0]], [], [g.nodes[0]])
    with pytest.raises(ValueError, match=r"graph input %0 has op 'exp'"):
        broken.check()


# ---------------------------------------------------------------- the interpreter


@pytest.mark.parametrize(
    "fn, shapes",
    [
        (lambda x: (x * 2 + 1).exp().sum(), [(4, 3)]),
        (lambda x, w: (x @ w).tanh() - x.mean(dim=1, keepdim=True), [(5, 4), (4, 4)]),
        (lambda x, y: tg.maximum(x, y).sigmoid() / (y.abs() + 1), [(3, 4), (4,)]),
        (lambda x: (x.T.reshape(12)[2:9] ** 2).max(), [(3, 4)]),
        (lambda x: tg.cat([x, -x], dim=0).logsumexp(dim=0), [(2, 3)]),
        (lambda x, y: tg.where(x > 0, x, y) * 3, [(3, 4), (3, 1)]),
    ],
)
def test_interpreter_equals_eager(fn, shapes):
    arrays = rng_arrays(*shapes)
    eager = fn(*[tg.tensor(a) for a in arrays]).numpy()
    g = tg.trace(fn, *[S(s) for s in shapes])
    (got,) = g(*arrays)
    assert got.shape == eager.shape and got.dtype == eager.dtype
    np.testing.assert_allclose(got, eager, rtol=1e-6, atol=1e-6)
    # and with other values: the graph is not tied to the example
    arrays2 = rng_arrays(*shapes, seed=1)
    (got2,) = g(*arrays2)
    np.testing.assert_allclose(got2, fn(*[tg.tensor(a) for a in arrays2]).numpy(),
                               rtol=1e-6, atol=1e-6)


def test_interpreter_rejects_wrong_arguments():
    g = tg.trace(lambda x: x.exp(), S((3,)))
    with pytest.raises(TypeError, match="takes 1 inputs, got 2"):
        g(np.ones(3, np.float32), np.ones(3, np.float32))
    with pytest.raises(ValueError, match=r"expects shape \(3,\), got \(4,\)"):
        g(np.ones(4, np.float32))


def test_interpreter_of_a_training_step_equals_eager_gradients():
    F = tg.nn.functional
    model = tg.nn.Sequential(tg.nn.Linear(4, 8), tg.nn.Tanh(), tg.nn.Linear(8, 3))

    def step(x, y):
        for p in model.parameters():
            p.grad = None
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return [loss] + [p.grad for p in model.parameters()]

    x, y = tg.randn(6, 4), tg.tensor([0, 1, 2, 2, 1, 0])
    g = tg.trace(step, x, y)
    assert all(p.grad is None for p in model.parameters())  # the trace changed nothing
    params = [p.numpy().copy() for p in model.parameters()]
    got = g(x.numpy(), y.numpy(), *params)
    want = step(x, y)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- what becomes what


def test_captured_tensors_become_inputs_not_constants():
    w = tg.randn(3, 2)
    g = tg.trace(lambda x: x @ w, S((4, 3)))
    assert len(g.inputs) == 2
    assert g.inputs[1].shape == (3, 2) and g.inputs[1].name.startswith("captured")
    assert "const" not in ops(g)
    x = rng_arrays((4, 3))[0]
    (before,) = g(x, w.numpy())
    np.testing.assert_allclose(before, x @ w.numpy(), rtol=1e-6)
    w.data[...] = w.data * 2 + 1  # the weight is updated (as an optimizer would)
    (after,) = g(x, w.numpy())
    np.testing.assert_allclose(after, x @ w.numpy(), rtol=1e-6)
    assert not np.allclose(before, after)


def test_module_parameters_become_inputs():
    lin = tg.nn.Linear(3, 2)
    g = tg.trace(lin, S((5, 3)))
    assert sorted(n.shape for n in g.inputs) == [(2,), (2, 3), (5, 3)]
    assert "const" not in ops(g)


def test_python_numbers_become_constants():
    g = tg.trace(lambda x: x * 3.0 + 1, S((2,)))
    assert len(g.inputs) == 1
    consts = [n for n in g.nodes if n.op == "const"]
    assert [float(c.value) for c in consts] == [3.0, 1.0]
    assert all(c.dtype == np.float32 for c in consts)
    (got,) = g(np.array([1.0, 2.0], np.float32))
    np.testing.assert_array_equal(got, [4.0, 7.0])


def test_tensors_made_inside_become_constants():
    g = tg.trace(lambda x: x + tg.tensor([1.0, 2.0]), S((2,)))
    (const,) = [n for n in g.nodes if n.op == "const"]
    np.testing.assert_array_equal(const.value, [1.0, 2.0])
    assert len(g.inputs) == 1


def test_rand_inside_is_a_rand_node_drawn_on_every_run():
    g = tg.trace(lambda x: x + tg.rand(3), S((3,)))
    assert ops(g) == ["rand", "add"]
    assert "const" not in ops(g)
    zeros = np.zeros(3, np.float32)
    (a,), (b,) = g(zeros), g(zeros)
    assert a.shape == (3,) and np.all((0 <= a) & (a < 1))
    assert not np.array_equal(a, b)


# ---------------------------------------------------------------- control flow errors


def branch_on_sum(x):
    if x.sum() > 0:  # the line the error must name
        return x
    return -x


def call_float(x):
    return x * float(x.sum())


def call_item(x):
    return x * x.sum().item()


def call_numpy(x):
    return tg.tensor(x.numpy() * 2)


def call_bool(x):
    return x if bool(x.max() > 1) else -x


@pytest.mark.parametrize("fn", [branch_on_sum, call_float, call_item, call_numpy, call_bool])
def test_data_dependent_python_raises_trace_error(fn):
    with pytest.raises(tg.TraceError) as info:
        tg.trace(fn, S((3,)))
    message = str(info.value)
    line = fn.__code__.co_firstlineno + 1
    assert f"{__file__}:{line}:" in message
    assert os.path.basename(__file__) in message
    assert "tg.where" in message
    assert isinstance(info.value, RuntimeError)


def test_trace_error_also_with_tensor_examples():
    with pytest.raises(tg.TraceError, match="x.item()"):
        tg.trace(call_item, tg.ones(3))


def test_reading_a_constant_is_allowed():
    g = tg.trace(lambda x: x * tg.tensor(2.0).item(), S((3,)))
    assert ops(g) == ["const", "mul"]


# ---------------------------------------------------------------- copies


def test_copy_gives_new_nodes_that_run_the_same():
    g = tg.trace(lambda x: (x * 2).exp(), S((3,)))
    c = g.copy()
    assert all(a is not b for a, b in zip(g.nodes, c.nodes))
    assert str(c) == str(g)
    x = np.arange(3, dtype=np.float32)
    np.testing.assert_array_equal(c(x)[0], g(x)[0])


def test_copy_of_a_fused_graph_runs():
    g, _ = fuse(tg.trace(lambda x: (x * 2).exp(), S((3,))))
    assert "kernel" in ops(g)
    c = g.copy().check()
    x = np.arange(3, dtype=np.float32)
    np.testing.assert_allclose(c(x)[0], np.exp(x * 2), rtol=1e-6)
