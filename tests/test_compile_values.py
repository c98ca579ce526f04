"""tg.compile / tg.trace / tg.explain on micrograd-style Value programs (issue 15).

Every compiled result is compared with the same code run eagerly on Values. A compiled Value
program runs the same float64 operations in the same order as eager, so losses agree to
1e-12 (the NumPy backend's exp/log/tanh may differ from Python's math in the last bit)."""

import math
import random

import numpy as np
import pytest

import tracegrad as tg
from tracegrad import Value
from tracegrad.compiler.backends.toolchain import compiler_problem
from tracegrad.nn.scalar import MLP

BACKENDS = ["numpy", pytest.param("c", marks=pytest.mark.skipif(
    compiler_problem() is not None, reason="no working C compiler"))]


def close(a, b, tol=1e-12):
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


# ---------------------------------------------------------------- micrograd's demo


def moons(n):
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.make_moons(n_samples=n, noise=0.1, random_state=1337)
    return X.tolist(), (y * 2 - 1).tolist()


def demo_step(model, X, y):
    """micrograd's demo loop body, as a function of the learning rate."""
    def step(learning_rate):
        inputs = [list(map(Value, xrow)) for xrow in X]
        scores = list(map(model, inputs))
        losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        reg_loss = 1e-4 * sum(p * p for p in model.parameters())
        total_loss = data_loss + reg_loss
        accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(y, scores)]
        model.zero_grad()
        total_loss.backward()
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        return total_loss.data, sum(accuracy) / len(accuracy)

    return step


@pytest.mark.parametrize("backend", BACKENDS)
def test_demo_loop_matches_eager_at_every_step_with_one_compile(backend):
    X, y = moons(30)
    random.seed(1337)
    eager_model = MLP(2, [16, 16, 1])
    random.seed(1337)
    model = MLP(2, [16, 16, 1])
    eager, compiled = demo_step(eager_model, X, y), tg.compile(demo_step(model, X, y),
                                                             backend=backend)
    for k in range(100):
        lr = 1.0 - 0.9 * k / 100
        (loss_e, acc_e), (loss_c, acc_c) = eager(lr), compiled(lr)
        assert type(loss_c) is float and type(acc_c) is float
        assert close(loss_c, loss_e), (k, loss_c, loss_e)
        assert acc_c == acc_e, k
    info = compiled.cache_info()
    assert (info.variants, info.misses, info.hits) == (1, 1, 98)
    assert info.backend.startswith(backend)
    for p, q in zip(model.parameters(), eager_model.parameters()):
        assert type(p.data) is float and close(p.data, q.data)
        assert close(p.grad, q.grad)
    assert acc_e > 0.8 and loss_e < 0.3  # it learned
    # the same decision boundary: the two models score a grid of points alike
    for a in np.linspace(-1.5, 2.5, 9):
        for b in np.linspace(-1.0, 1.5, 7):
            s1, s2 = model([Value(a), Value(b)]).data, eager_model([Value(a), Value(b)]).data
            assert close(s1, s2) and (s1 > 0) == (s2 > 0)


# ---------------------------------------------------------------- every op


OPS = {
    "add": lambda a, b: a + b,
    "radd": lambda a, b: 2.5 + a,
    "sub": lambda a, b: a - b,
    "rsub": lambda a, b: 1.5 - b,
    "mul": lambda a, b: a * b,
    "rmul": lambda a, b: 3 * a,
    "div": lambda a, b: a / b,
    "div_number": lambda a, b: a / 4.0,
    "rdiv": lambda a, b: 2.0 / b,
    "neg": lambda a, b: -a,
    "pow2": lambda a, b: a ** 2,
    "pow3": lambda a, b: b ** 3,
    "pow_neg": lambda a, b: a ** -1.5,
    "pow_half": lambda a, b: b ** 0.5,
    "pow_value": lambda a, b: a ** b,
    "rpow": lambda a, b: 2.0 ** a,
    "relu": lambda a, b: (a - 1).relu() + (a - 0.1).relu(),
    "tanh": lambda a, b: (a * b).tanh(),
    "exp": lambda a, b: (a - b).exp(),
    "log": lambda a, b: (a * b).log(),
    "sigmoid": lambda a, b: (a - 2 * b).sigmoid() + (-3 * a).sigmoid(),
    "mixed": lambda a, b: ((a * b + b ** 2).tanh() * a.exp() - b.log() / a).relu(),
}


def grads_of(op):
    def f(a, b):
        a.grad = 0
        b.grad = 0
        out = op(a, b)
        out.backward()
        return out.data, a.grad, b.grad

    return f


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(OPS))
def test_every_op_compiled_matches_eager(name, backend):
    f = grads_of(OPS[name])
    compiled = tg.compile(f, backend=backend)
    for a0, b0 in [(0.7, 1.3), (1.9, 0.4), (0.2, 2.2), (1.1, 1.7)]:
        a, b = Value(a0), Value(b0)
        expected = f(a, b)
        a2, b2 = Value(a0), Value(b0)
        got = compiled(a2, b2)
        for x, e in zip(got, expected):
            assert close(x, e), (name, a0, b0, got, expected)
        assert close(a2.grad, a.grad) and close(b2.grad, b.grad)  # written back to the args
    assert compiled.cache_info().variants == 1


def test_graph_is_scalar_float64_ir_and_runs_in_the_interpreter():
    w = Value(0.5)

    def f(x):
        y = (w * x).tanh() + x ** 2
        w.grad = 0
        y.backward()
        return y.data, w.grad

    graph = tg.trace(f, 1.5)
    assert isinstance(graph, tg.Graph)
    graph.check()
    assert all(n.shape == () for n in graph.inputs + graph.nodes)
    assert {n.dtype for n in graph.inputs + graph.nodes} <= {np.dtype("float64"),
                                                             np.dtype("bool")}
    assert "tanh" in str(graph) and "mul" in str(graph)
    assert [n.name for n in graph.inputs] == ["arg0", "data"]  # the float, then w.data
    y, w_grad = [float(v) for v in graph(np.float64(1.5), np.float64(0.5))[:2]]
    assert close(y, math.tanh(0.75) + 2.25)
    assert close(w_grad, (1 - math.tanh(0.75) ** 2) * 1.5)
    assert w.data == 0.5 and w.grad == 0  # tracing changes no Value


def test_explain_reports_the_scalar_passes():
    a, b = Value(2.0), Value(3.0)

    def f():
        c = a * b + a * b  # a repeated subexpression: cse merges it
        d = (c * 0).exp()  # dead below: only c is returned
        del d
        return c

    text = str(tg.explain(f))
    for name in ("dce", "cse", "fold_constants", "lower"):
        assert name in text
    assert "merged 1 duplicate" in text


# ---------------------------------------------------------------- write-backs


@pytest.mark.parametrize("backend", BACKENDS)
def test_data_and_grad_are_written_back(backend):
    def make():
        w, b = Value(0.3), Value(-0.2)

        def step(x, lr):
            w.grad = 0
            b.grad = 0
            loss = (w * x + b - 1.0) ** 2
            loss.backward()
            w.data -= lr * w.grad
            b.data += -lr * b.grad
            return loss

        return w, b, step

    w1, b1, eager = make()
    w2, b2, step = make()
    compiled = tg.compile(step, backend=backend)
    for k in range(6):
        x, lr = 0.5 + k * 0.1, 0.1 / (k + 1)
        loss_e, loss_c = eager(x, lr), compiled(x, lr)
        assert isinstance(loss_c, Value) and close(loss_c.data, loss_e.data)
        for p, q in ((w1, w2), (b1, b2)):
            assert type(q.data) is float and close(p.data, q.data)
            assert type(q.grad) is float and close(p.grad, q.grad)
    assert compiled.cache_info().variants == 1  # x and lr are inputs


def test_grad_read_before_it_is_written_is_an_input():
    w = Value(1.0)

    def accumulate(x):
        (w * x).backward()  # adds into w.grad, as in micrograd
        return w.grad

    compiled = tg.compile(accumulate)
    w.grad = 0
    assert accumulate(2.0) == 2.0  # (the first call runs eagerly)
    assert compiled(2.0) == 2.0 + 2.0 and w.grad == 4.0
    assert compiled(3.0) == 7.0 and w.grad == 7.0
    w.grad = 0.5
    assert compiled(1.0) == 1.5


# ---------------------------------------------------------------- guards


def test_a_python_branch_on_data_raises_trace_error_naming_the_line():
    w = Value(0.5)

    def step(x):
        y = w * x
        if y.data > 0:  # a branch on a traced number
            return y.relu()
        return y

    compiled = tg.compile(step)
    compiled(1.0)  # eager
    with pytest.raises(tg.TraceError, match=r"if y\.data > 0"):
        compiled(1.0)
    with pytest.raises(tg.TraceError, match="bool"):
        tg.trace(step, 1.0)
    with pytest.raises(tg.TraceError, match="float conversion"):
        tg.trace(lambda x: float((w * x).data), 1.0)
    assert w.data == 0.5


def test_a_float_argument_changes_every_call_without_recompiling():
    w = Value(2.0)

    def f(scale):
        return (w * scale).tanh().data

    compiled = tg.compile(f)
    for k in range(12):
        s = 0.1 * k - 0.4
        assert close(compiled(s), math.tanh(2.0 * s))
    info = compiled.cache_info()
    assert (info.variants, info.misses) == (1, 1)


def test_a_branch_on_a_float_argument_guards_floats_by_value():
    w = Value(2.0)

    def f(scale):
        if scale > 0:  # Python control flow on the float itself
            return (w * scale).data
        return (w - scale).data

    compiled = tg.compile(f)
    assert [compiled(s) for s in (1.0, 1.0, -1.0, 3.0, -1.0)] == [2.0, 2.0, 3.0, 6.0, 3.0]
    assert compiled.cache_info().variants == 3


def test_a_different_number_of_points_recompiles():
    random.seed(0)
    model = MLP(2, [4, 1])

    def loss_of(X):
        scores = [model([Value(a), Value(b)]) for a, b in X]
        return sum((s - 1) ** 2 for s in scores).data

    compiled = tg.compile(loss_of)
    five = [[0.1 * i, -0.2 * i] for i in range(5)]
    seven = [[0.3 * i, 0.1 * i] for i in range(7)]
    for X in (five, five, seven, five, seven, [[x + 0.5, y] for x, y in five]):
        assert close(compiled(X), loss_of(X))
    info = compiled.cache_info()
    assert info.variants == 2 and info.misses == 2


def test_changing_the_model_structure_or_a_global_recompiles():
    random.seed(0)
    model = MLP(2, [3, 1])
    scale = {"k": 2.0}

    def f(a):
        return (model([Value(a), Value(1.0)]) * scale["k"]).data

    compiled = tg.compile(f)
    compiled(0.5)
    assert close(compiled(0.5), f(0.5))
    model.layers[0].neurons[0].w[0] = Value(5.0)  # a new parameter Value
    assert close(compiled(0.5), f(0.5))
    scale["k"] = 3.0  # a global the function reads (not an argument): guarded by value
    assert close(compiled(0.5), f(0.5))
    assert compiled.cache_info().variants == 3


# ---------------------------------------------------------------- graph shapes


@pytest.mark.parametrize("backend", BACKENDS)
def test_fan_out_and_repeated_subexpressions(backend):
    xs = [Value(0.1 * i + 0.3) for i in range(6)]

    def f(k):
        s = xs[0] * k
        h = s.tanh()
        # h fans out to every term; (h * x) is computed twice per term
        total = sum((h * x + h * x).relu() * (h * x).exp() for x in xs) + h * h * h
        for x in xs:
            x.grad = 0
        total.backward()
        return [total.data] + [x.grad for x in xs]

    compiled = tg.compile(f, backend=backend)
    for k in (0.5, -0.25, 1.75, 0.5):
        got, expected = compiled(k), f(k)
        assert len(got) == len(expected)
        assert all(close(a, b) for a, b in zip(got, expected)), (got, expected)
    records = {r.name: r.note for r in compiled._scalar.last.records}
    assert "merged" in records["cse"] and not records["cse"].startswith("merged 0")


def test_level_program_groups_nodes_and_joins_chains():
    xs = [Value(float(i)) for i in range(40)]

    def f(k):
        return sum(x * k for x in xs).data  # 40 products at one level, one chain of adds

    compiled = tg.compile(f, backend="numpy")
    compiled(1.0)
    assert compiled(0.5) == sum(x.data * 0.5 for x in xs)
    program = compiled._scalar.last.program
    assert program.calls <= 3  # the products, the chain (and nothing per node)
    assert "accumulate" in compiled.source()


def test_returned_values_are_new_leaves_with_the_number():
    w = Value(3.0)
    compiled = tg.compile(lambda x: (w * x, [w + x, 7], "tag", (w * x).data > 6.5))
    compiled(2.0)
    v, (u, seven), tag, above = compiled(2.0)
    assert isinstance(v, Value) and v.data == 6.0 and v._children == ()
    assert u.data == 5.0 and seven == 7 and tag == "tag" and above is False
    assert compiled(2.5)[3] is True


# ---------------------------------------------------------------- domain errors


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_domain_error_raises_eagers_error_and_writes_nothing(backend):
    """Where eager raises (log(0), 1/0, exp(1000), a negative base of a Value exponent),
    the program computes a nan or an inf: the call runs eagerly instead, which raises, and
    the parameters keep their numbers (they were written nan)."""
    w = Value(0.5)

    def step(x, lr):
        loss = (w * x).log() + (w * x).exp() * 1e-3
        w.grad = 0
        loss.backward()
        w.data -= lr * w.grad
        return loss.data

    eager_w = Value(0.5)

    def eager_step(x, lr):
        loss = (eager_w * x).log() + (eager_w * x).exp() * 1e-3
        eager_w.grad = 0
        loss.backward()
        eager_w.data -= lr * eager_w.grad
        return loss.data

    compiled = tg.compile(step, backend=backend)
    for x in (1.0, 2.0, 3.0):
        assert compiled(x, 0.01) == eager_step(x, 0.01)
    for x, error in ((0.0, ValueError), (-1.0, ValueError), (5000.0, OverflowError)):
        with pytest.raises(error):
            eager_step(x, 0.01)
        before = w.data
        with pytest.raises(error):
            compiled(x, 0.01)
        assert w.data == before == eager_w.data and math.isfinite(w.grad)
    assert compiled(1.5, 0.01) == eager_step(1.5, 0.01)
    assert compiled.cache_info().misses == 1

    def divide(x, y):
        return (Value(x) / Value(y)).data, (Value(x) ** Value(y)).data

    compiled = tg.compile(divide, backend=backend)
    for x, y in ((1.0, 2.0), (3.0, 4.0), (2.0, 0.5)):
        assert compiled(x, y) == divide(x, y)
    with pytest.raises(ZeroDivisionError):
        compiled(1.0, 0.0)

    def power(x, k):
        base, exponent = Value(x), Value(k)
        y = base ** exponent
        y.backward()
        return y.data, base.grad, exponent.grad

    compiled = tg.compile(power, backend=backend)
    for x in (2.0, 3.0, 0.0):
        assert compiled(x, 2.0) == power(x, 2.0)
    with pytest.raises(ValueError, match="undefined"):
        compiled(-2.0, 2.0)  # (the exponent's gradient was 0 here)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_infinity_eager_computes_too_is_returned(backend):
    def big(x):
        return (Value(x) * 1e308).data

    compiled = tg.compile(big, backend=backend)
    for x in (1.0, 0.5):
        assert compiled(x) == big(x)
    with pytest.warns(UserWarning, match="nan or an infinity"):
        assert compiled(10.0) == big(10.0) == math.inf
    for x in (-10.0, 2.0):
        assert compiled(x) == big(x)
