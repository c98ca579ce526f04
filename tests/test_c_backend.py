"""The C backend (compiler/backends/c.py, c_codegen.py): every op of the compiled tests, under
``backend="c"``, agrees with eager (values and gradients, float32 and float64, broadcasting,
size-0 and size-1 dimensions); non-contiguous inputs; randomized elementwise programs; the
training steps; the NumPy fallback of ``auto`` without a compiler, and the error of ``"c"``.

Tolerances: float32 results may differ from NumPy's in the last bits (the C backend's own
float32 exp/tanh/sigmoid are within 1-2 ulp of the exact value, as NumPy's SIMD ones are, but
not the same bits; libm's sin, erf... are not NumPy's): the op table's 2e-5. Sums are
NumPy's bit for bit (pairwise in the input dtype, in NumPy's order), except a row program's
sum over everything (its rows' sums added in double: within 1e-6 of the sum of |terms|).
"""

from __future__ import annotations

import numpy as np
import pytest
import test_compile as tc
from hypothesis import given, settings
from hypothesis import strategies as st

import tracegrad as tg
import tracegrad.nn.functional as F
from tracegrad.compiler.backends import c as cbackend
from tracegrad.compiler.backends import c_codegen, toolchain
from tracegrad.compiler.backends.c import CProgram
from tracegrad.compiler.optimize import optimize
from tracegrad.compiler.trace import run_traced
from tracegrad.ops.base import having

pytestmark = pytest.mark.skipif(cbackend.available() is not None,
                                reason=f"no C backend here: {cbackend.available()}")
FEW = settings(max_examples=6, deadline=None)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    # one cache directory for the whole session (compiled kernels are reused across tests)
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "tgcache"))


def program(fn, *specs):
    graph, _ = run_traced(fn, specs, {})
    graph, plan, _ = optimize(graph, backend=cbackend.C_BACKEND)
    return CProgram(graph, plan, every_kernel=True)


# ---------------------------------------------------------------- the lowering table


def test_every_fusible_primitive_has_a_c_lowering():
    missing = sorted(having("fusible") - c_codegen.C_OPS.keys())
    assert missing == [], f"add a line to c_codegen.C_OPS for {missing}"


@pytest.mark.parametrize("op", sorted(c_codegen.C_OPS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_each_c_op_matches_numpy_with_nan_and_inf(op, dtype):
    rng = np.random.default_rng(0)
    prim = tg.ops.PRIMITIVES[op]
    special = np.array([0.0, -0.0, 1.0, -1.0, 0.5, 30.0, -30.0, 100.0, -100.0, np.inf,
                        -np.inf, np.nan], dtype)
    a = np.concatenate([special, rng.standard_normal(52).astype(dtype)])
    b = np.concatenate([rng.standard_normal(12).astype(dtype) * 3, special[::-1],
                        rng.standard_normal(40).astype(dtype)])
    n_in = len(prim.inputs)
    if op in ("log", "sqrt", "pow"):
        a = np.abs(a)

    graph_args = (a,) if n_in == 1 else (a, b)
    want = np.asarray(prim.forward(*graph_args))
    # (a second tan or acos magnifies the last-bit difference of the first one, NumPy's
    # float32 loop against libm's, by its condition number: these ops are checked once)
    twice = op not in ONCE
    if twice:
        want = np.asarray(prim.forward(want, *graph_args[1:])) if n_in == 2 else \
            np.asarray(prim.forward(want))
    got = _run_chain(op, graph_args, twice)
    np.testing.assert_allclose(got, want, rtol=16 * np.finfo(dtype).eps, atol=0,
                               equal_nan=True, err_msg=op)


ONCE = {"tan", "asin", "acos", "acosh", "atanh"}


def _run_chain(op: str, arrays: tuple, twice: bool = True) -> np.ndarray:
    """``op(op(x, y), y)`` (or ``op(op(x))``; ``op(x)`` unless ``twice``) as one kernel node
    run in C."""
    from tracegrad.compiler.ir import Graph, Node, Step

    ins = [Node("input", [], {}, a.shape, a.dtype) for a in arrays]
    dtype = arrays[0].dtype
    rest = [("input", i) for i in ins[1:]]
    steps = [Step(op, [("input", ins[0])] + rest, {}, arrays[0].shape, dtype),
             Step(op, [("step", 0)] + rest, {}, arrays[0].shape, dtype)][:2 if twice else 1]
    k = Node("kernel", ins, {}, arrays[0].shape, dtype, value=steps)
    p = CProgram(Graph(ins, [k], [k]), every_kernel=True)
    assert p._kernels, c_codegen.why_not(k)
    return p(*arrays)[0]


# ---------------------------------------------------------------- every op, as test_compile


@pytest.mark.parametrize("op", tc.OPS, ids=[op.name for op in tc.OPS])
@FEW
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16))
def test_every_compiled_op_under_the_c_backend(op, data, dtype, seed):
    tc.check_op(op, data, dtype, seed, "c")


@pytest.mark.parametrize("make, shape, make_opt", [
    (tc.mlp, (8,), lambda p: tg.optim.Adam(p, lr=1e-2)),
    (tc.cnn, (1, 8, 8), lambda p: tg.optim.SGD(p, lr=0.05, momentum=0.9)),
], ids=["mlp_adam", "cnn_sgd_momentum"])
def test_training_steps_under_the_c_backend(make, shape, make_opt):
    eager_model, model = tc.twin(make)
    eager_opt, opt = make_opt(eager_model.parameters()), make_opt(model.parameters())
    # (dynamic=False: the smaller last batches compile a static C variant of their own,
    # not a dynamic variant, which runs on NumPy)
    step = tg.compile(tc.train_step(model, opt, F.cross_entropy), backend="c", dynamic=False)
    for i, (x, y) in enumerate(tc.batches(shape, [16] * 6 + [8] * 3)):
        eager_opt.zero_grad()
        expected = F.cross_entropy(eager_model(x), y)
        expected.backward()
        eager_opt.step()
        loss = step(x, y)
        assert loss.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-6), f"step {i}"
        tc.assert_same_parameters(eager_model, model, f"after step {i}")
    assert "C backend" in step.cache_info().backend
    assert "kernel(s) in C" in step.cache_info().backend


# ---------------------------------------------------------------- layouts and shapes


def _gelu_ln(x, w):
    y = F.gelu(x, approximate="tanh") * w
    return (y - y.mean(dim=-1, keepdim=True)).relu().sum(dim=-1), y.max(dim=0).values


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced", "broadcast"])
def test_non_contiguous_inputs(dtype, layout):
    rng = np.random.default_rng(1)
    base = rng.standard_normal((12, 10)).astype(dtype)
    x = {"contiguous": base[:6, :5].copy(), "transposed": base[:5, :6].T,
         "sliced": base[::2, ::2], "broadcast": np.broadcast_to(base[0, :5], (6, 5))}[layout]
    w = rng.standard_normal(5).astype(dtype)[::-1]  # a negative stride
    want = _gelu_ln(tg.tensor(np.ascontiguousarray(x)), tg.tensor(w.copy()))
    f = tg.compile(_gelu_ln, backend="c")
    for _ in range(3):
        got = f(tg.from_numpy(x), tg.from_numpy(w))
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for g, e in zip(got, want):
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=tol, atol=tol)
    # and the C kernel itself, on the strided arrays (not a contiguous copy)
    p = program(_gelu_ln, tg.TensorSpec((6, 5), dtype), tg.TensorSpec((5,), dtype))
    assert p._kernels or p._segments
    for g, e in zip(p(x, w), want):
        np.testing.assert_allclose(g, e.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 4), (1,), (1, 1), (1, 5), (5, 1), (),
                                   (2, 1, 3)])
def test_size_0_and_size_1_dimensions(shape):
    rng = np.random.default_rng(2)

    def f(x, b):
        y = (x * 2 + b).tanh() * x
        return y, y.sum(), (y + 1).sum(dim=-1) if len(shape) else y.exp()

    x = rng.standard_normal(shape).astype(np.float32)
    b = np.float32(0.5) * np.ones(shape[-1:] or (), np.float32)
    want = f(tg.tensor(x), tg.tensor(b))
    c = tg.compile(f, backend="c")
    for _ in range(3):
        got = c(tg.tensor(x), tg.tensor(b))
    for g, e in zip(got, want):
        assert g.shape == e.shape
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 8, 15, 129, 1000, 100_003])
def test_sums_are_numpys_bit_for_bit(n, dtype):
    """A sum over a contiguous axis adds pairwise in NumPy's order, in the input dtype."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(n) * 10 + 3).astype(dtype)
    p = program(lambda x: (x * 1.5).sum(), tg.TensorSpec((n,), dtype))
    assert p(x)[0] == (x * dtype(1.5)).sum()
    assert p(np.full(n, -0.0, dtype))[0] == 0 and not np.signbit(p(np.full(n, -0.0, dtype))[0])


@pytest.mark.parametrize("shape, axis", [((64, 300), 1), ((300, 64), 0), ((5, 7, 9), (0, 2)),
                                         ((33, 17), (0, 1)), ((4, 12), 1)])
def test_sums_over_axes_are_numpys_bit_for_bit(shape, axis):
    rng = np.random.default_rng(4)
    x = (rng.standard_normal(shape) * 10 + 3).astype(np.float32)
    p = program(lambda x: (x * 1.5).sum(axis), tg.TensorSpec(shape))
    np.testing.assert_array_equal(p(x)[0], (x * np.float32(1.5)).sum(axis))


def _ulps(got: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """|got - exact| in units of float32's spacing at the exact value (float64)."""
    spacing = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    return np.abs(got.astype(np.float64) - exact) / spacing


VECTOR_MATH = ["libmvec", "own"] if toolchain.vector_math() else ["own"]


@pytest.mark.parametrize("math", VECTOR_MATH)
@pytest.mark.parametrize("op, ulps", [("exp", 1.0), ("tanh", 1.5), ("sigmoid", 2.0)])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_float32_exp_tanh_sigmoid_are_accurate_to_float32_rounding(op, ulps, math,
                                                                   monkeypatch):
    """The C backend's float32 exp/tanh/sigmoid against float64 over 2 million points, and
    libm's results on the special values: its own (c_codegen.HEADER, vectorized), and tanh
    from glibc's vector math library where it works (c_codegen.VECTOR_MATH)."""
    monkeypatch.setenv("TRACEGRAD_VECTOR_MATH", "1" if math == "libmvec" else "0")
    rng = np.random.default_rng(5)
    lo, hi = (-87.0, 88.0) if op == "exp" else (-12.0, 12.0)
    x = np.concatenate([rng.uniform(-1, 1, 500_000), rng.uniform(lo, hi, 1_000_000),
                        np.exp(rng.uniform(-30, 2, 500_000))]).astype(np.float32)
    p = program(lambda x: getattr(x, op)() * 2.0, tg.TensorSpec(x.shape))
    assert ("libmvec" in p.source()) == (math == "libmvec" and op == "tanh")
    got = p(x)[0] / np.float32(2)
    x64 = x.astype(np.float64)
    exact = {"exp": np.exp(x64), "tanh": np.tanh(x64),
             "sigmoid": 1 / (1 + np.exp(-x64))}[op]
    assert _ulps(got, exact).max() <= ulps
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 88.8, -88.0, -104.0, -200.0,
                        1e-30, -1e-30, 20.0, -20.0], np.float32)
    p = program(lambda x: getattr(x, op)() * 2.0, tg.TensorSpec(special.shape))
    got = p(special)[0] / np.float32(2)
    want = {"exp": np.exp, "tanh": np.tanh,
            "sigmoid": lambda v: np.float32(1) / (np.float32(1) + np.exp(-v))}[op](special)
    number = ~np.isnan(want)
    np.testing.assert_array_equal(np.signbit(got[number]), np.signbit(want[number]))
    np.testing.assert_allclose(got, want, rtol=2e-7, atol=1e-44, equal_nan=True)


@pytest.mark.parametrize("math", VECTOR_MATH)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_gelu_tanh_layer_norm_with_nan_and_inf_agrees_with_eager(math, monkeypatch):
    """GELU (tanh form) and layer norm, forward and backward, as one row program (the
    issue's benchmark), with and without the vector math library: eager's values, NaN and
    inf where eager has them (a row holding inf or NaN is NaN after layer norm)."""
    monkeypatch.setenv("TRACEGRAD_VECTOR_MATH", "1" if math == "libmvec" else "0")
    rng = np.random.default_rng(9)
    x = rng.standard_normal((64, 256)).astype(np.float32) * 3
    x[0, :4] = [np.inf, -np.inf, np.nan, 100.0]
    x[1, 5], x[2, 7], x[3, :] = -np.inf, 1e30, 0.0
    w = tg.tensor((1 + 0.1 * rng.standard_normal(256)).astype(np.float32), requires_grad=True)
    r = tg.tensor(rng.standard_normal(x.shape).astype(np.float32))

    def f(x):
        h = F.gelu(x, approximate="tanh")
        y = F.layer_norm(h, (256,), w)
        (y * r).sum().backward()
        return h, y, x.grad, w.grad

    outs, compiled = [], tg.compile(f, backend="c")
    for fn in (f, compiled):
        for _ in range(3):  # eager, then compiled (traced, then run)
            w.grad = None
            got = [o.numpy().copy() for o in fn(tg.tensor(x, requires_grad=True))]
        outs.append(got)
    assert ("libmvec" in compiled.source()) == (math == "libmvec")
    assert np.isnan(outs[1][1][0]).all() and np.isnan(outs[1][1][1]).all()
    for want, got in zip(*outs):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_float32_erf_is_the_numpy_backends_bit_for_bit():
    """The C backend's float32 erf (vectorized, c_codegen.erf_float32) runs the NumPy
    backend's rational function in the same order: the same bits, special values too, in a
    kernel large enough that C runs it rather than NumPy."""
    rng = np.random.default_rng(6)
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 4.0, -4.0, 4.5, 1e-30, -1e-30,
                        1e-45, 0.5, -0.5], np.float32)
    x = np.concatenate([special, rng.uniform(-5, 5, 1 << 16),
                        rng.standard_normal(1 << 16) * 1e-3]).astype(np.float32)
    fn = lambda x: (x.erf() * 2.0) * x  # noqa: E731  (a kernel of erf, mul, mul)
    p = program(fn, tg.TensorSpec(x.shape))
    assert "C: " in p.source_text and "tg_erf(" in p.source()
    got = p(x)[0]
    want = fn(tg.tensor(x)).numpy()
    np.testing.assert_array_equal(got, want)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_gpt_training_step_on_c_gives_eagers_losses():
    """One GPT block, AdamW with weight decay, gradient clipping: a row program over one
    weight's (512, 128) update ran a node that shared a buffer with one of its members
    ahead of itself (hoisted), and the other weight's decay term was overwritten: from
    the first compiled step the losses left eager's (3.88 against 3.50)."""
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    from bench import models

    sizes = dict(models.GPT_SIZES, n_layer=1, block_size=16)
    state, data = models.gpt_state(sizes), models.gpt_batches(3, sizes)
    eager = models.gpt_step(tg, state, data, sizes=sizes)
    model = models.gpt_model(tg, state, sizes)
    groups = models.gpt_example().param_groups(model, models.GPT_DECAY)
    opt = tg.optim.AdamW(groups, lr=models.GPT_LR, betas=(0.9, 0.95))
    train_step, _ = models.gpt_example().training_functions(model, opt, models.GPT_CLIP)
    compiled = tg.compile(train_step, backend="c")
    batches = [(tg.from_numpy(x), tg.from_numpy(y)) for x, y in data]
    for k in range(4):
        want = eager(k)
        got = compiled(*batches[k % len(batches)]).item()
        assert got == pytest.approx(want, rel=1e-5), k
    assert compiled.cache_info().backend.startswith("C")


def test_multiply_then_add_rounds_twice_as_numpy():
    """``x * c + d`` is two roundings in NumPy; a C compiler left to itself fuses it into one
    fused multiply-add under -march=native, and a long chain then drifts from eager."""
    def chain(x):
        for _ in range(200):
            x = x * 0.999 + 0.001
        return x

    xs = np.linspace(-3, 3, 64, dtype=np.float32)
    f = tg.compile(chain, backend="c")
    for _ in range(2):
        got = f(tg.tensor(xs)).numpy()
    np.testing.assert_array_equal(got, chain(tg.tensor(xs)).numpy())


def test_max_and_min_propagate_nan_as_numpy():
    x = np.array([[1.0, np.nan, 3.0], [-np.inf, 2.0, 0.5]], np.float32)
    p = program(lambda x: ((x * 2).max(dim=1).values, (x * 2).min(dim=0).values),
                tg.TensorSpec((2, 3)))
    got = p(x)
    np.testing.assert_array_equal(got[0], (x * 2).max(axis=1))
    np.testing.assert_array_equal(got[1], (x * 2).min(axis=0))


# ---------------------------------------------------------------- random programs

UNARY = ["neg", "exp", "tanh", "sigmoid", "relu", "sin", "softplus", "erf", "abs"]
BINARY = ["add", "sub", "mul", "maximum"]


@settings(max_examples=25, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(UNARY + BINARY), st.integers(0, 3)),
                    min_size=2, max_size=12),
       rows=st.integers(1, 5), cols=st.integers(1, 6), reduce=st.sampled_from(
           [None, "sum0", "sum1", "max1", "all"]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 1000))
def test_random_elementwise_programs_agree_with_eager(ops, rows, cols, reduce, dtype, seed):
    rng = np.random.default_rng(seed)
    shapes = [(rows, cols), (cols,), (rows, 1), ()]

    def f(x, a, b, c):
        operands = [x, a, b, c]
        y = x
        for op, k in ops:
            if op in BINARY:
                y = getattr(tg, op)(y, operands[k]) if op == "maximum" else \
                    {"add": y + operands[k], "sub": y - operands[k],
                     "mul": y * operands[k].tanh()}[op]
            else:
                y = {"neg": -y, "exp": (y * 0.1).exp(), "tanh": y.tanh(),
                     "sigmoid": y.sigmoid(), "relu": y.relu(), "sin": y.sin(),
                     "softplus": F.softplus(y), "erf": y.erf(), "abs": y.abs()}[op]
        if reduce == "sum0":
            y = y.sum(dim=0)
        elif reduce == "sum1":
            y = y.sum(dim=1, keepdim=True)
        elif reduce == "max1":
            y = y.max(dim=1).values
        elif reduce == "all":
            y = y.sum()
        return y

    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    xs = [tg.tensor(a, requires_grad=True) for a in arrays]
    want = f(*xs)
    want.sum().backward()
    grads = [np.zeros_like(a) if x.grad is None else x.grad.numpy()
             for x, a in zip(xs, arrays)]
    c = tg.compile(f, backend="c")
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for _ in range(3):
        ys = [tg.tensor(a, requires_grad=True) for a in arrays]
        got = c(*ys)
        got.sum().backward()
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=tol, atol=tol)
        for y, g in zip(ys, grads):
            got_g = np.zeros_like(g) if y.grad is None else y.grad.numpy()
            np.testing.assert_allclose(got_g, g, rtol=tol, atol=tol)


# ---------------------------------------------------------------- choosing, errors, source


def test_source_shows_the_c_of_each_kernel_with_its_ir():
    f = tg.compile(lambda x: (x * 2 + 1).tanh().sum(dim=1), backend="c")
    x = tg.randn(4, 3)
    for _ in range(3):
        f(x)
    src = f.source()
    assert "# ---- C kernels" in src and "void k" in src
    assert "t2 = tanh t1" in src and "tanh(t1);  /* t2 = tanh t1 */" in src
    assert "acc += t2;  /* t3 = sum[axes=(1,), keepdim=False] t2 */" in src


def test_auto_without_a_compiler_falls_back_to_numpy_with_a_note(monkeypatch):
    x = tg.randn(3, 4)

    def fn(x):
        return (x.exp() * 2).sum(dim=1)

    auto_c = tg.compile(fn)
    for _ in range(3):
        with_c = auto_c(x)
    assert "C backend" in auto_c.cache_info().backend
    monkeypatch.setenv("CC", "/nonexistent")
    toolchain.clear_memory()
    try:
        auto = tg.compile(fn)
        for _ in range(3):
            got = auto(x)
        np.testing.assert_allclose(got.numpy(), with_c.numpy(), rtol=1e-6)
        note = auto.cache_info().backend
        assert "NumPy" in note and "auto" in note and "/nonexistent" in note
        with pytest.raises(RuntimeError, match="apt-get install gcc"):
            tg.compile(fn, backend="c")
    finally:
        monkeypatch.delenv("CC")
        toolchain.clear_memory()


def test_a_kernel_the_compiler_rejects_raises_with_its_message(monkeypatch):
    monkeypatch.setitem(c_codegen.C_OPS, "tanh", "tanh({0}) +* broken")
    f = tg.compile(lambda x: (x * 2).tanh() + 1, backend="c")
    x = tg.randn(3)
    f(x)
    with pytest.raises(toolchain.CompileError, match="source kept at"):
        f(x)


def test_explain_names_the_backend_and_each_kernels_bytes(monkeypatch):
    text = str(tg.explain(lambda x: (x * 2).exp().sum(dim=1), tg.TensorSpec((8, 16))))
    assert "backend: c" in text
    assert "kernel [mul exp sum]: C, reads 512 B, writes 32 B" in text
    text = str(tg.explain(lambda x: (x - x.mean(dim=1, keepdim=True)).exp() * 2,
                          tg.TensorSpec((128, 256))))
    assert "row program of" in text and "over (128, 256): C, reads 128.0 KiB" in text
    # a run of small nodes run by one C call: listed as one segment, its kernels in it
    text = str(tg.explain(lambda x, y: ((x * 2).exp() + y).tanh().sum() * 3 + (x - 1).sum(),
                          tg.TensorSpec((8,)), tg.TensorSpec((8,))))
    assert ("%2..%4: segment of 3 small nodes [mul exp add tanh sum, sub sum, mul add]: "
            "one C call, reads 104 B, writes 12 B") in text, text
    assert "kernel [mul exp add tanh sum]:" not in text  # (not listed twice)
    monkeypatch.setenv("CC", "/nonexistent")
    toolchain.clear_memory()
    try:
        text = str(tg.explain(lambda x: (x * 2).exp(), tg.TensorSpec((8,))))
        assert "backend: numpy (auto: tg.compile: backend 'c' cannot run here" in text
    finally:
        monkeypatch.delenv("CC")
        toolchain.clear_memory()


# ---------------------------------------------------------------- row programs (c_rows.py)


@pytest.fixture
def rows_everywhere(monkeypatch):
    """Row programs for matrices of any size (normally from 4,096 elements and 8 columns)."""
    from tracegrad.compiler.backends import c_rows

    monkeypatch.setattr(c_rows, "MIN_ELEMENTS", 0)
    monkeypatch.setattr(c_rows, "MIN_COLUMNS", 2)


@pytest.mark.parametrize("op", tc.OPS, ids=[op.name for op in tc.OPS])
@settings(max_examples=4, deadline=None)
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16))
def test_every_compiled_op_in_row_programs(op, data, dtype, seed):
    from tracegrad.compiler.backends import c_rows

    saved = c_rows.MIN_ELEMENTS, c_rows.MIN_COLUMNS
    c_rows.MIN_ELEMENTS, c_rows.MIN_COLUMNS = 0, 2
    try:
        tc.check_op(op, data, dtype, seed, "c")
    finally:
        c_rows.MIN_ELEMENTS, c_rows.MIN_COLUMNS = saved


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_two_selects_of_one_mask_in_a_row_program(dtype):
    """GCC 12.2 (-O3 -march=native, Zen 3 tuning) compiled `m ? a * b : 0` and `m ? c : 0`
    in one loop over rows of 2 into masked loads and gave the second the first's mask: the
    last element of where(a > b, c, 0) came out 0 (hypothesis found it as the gradient of
    where(a > b, a * b, 0.0)). tg_where now selects bits."""
    from tracegrad.compiler.backends import c_rows

    saved = c_rows.MIN_ELEMENTS, c_rows.MIN_COLUMNS
    c_rows.MIN_ELEMENTS, c_rows.MIN_COLUMNS = 0, 2
    try:
        fn = lambda a, b, c: (tg.where(a > b, a * b, 0.0), tg.where(a > b, c, 0.0))  # noqa: E731
        a = tg.tensor(np.array([[1.0]], dtype))
        b = tg.tensor(np.array([[[0.5, 2.0], [-1.0, 0.25]]], dtype))
        c = tg.tensor(np.array([[[1.0, 2.0], [3.0, 4.0]]], dtype))
        compiled = tg.compile(fn, backend="c")
        for _ in range(3):
            first, second = compiled(a, b, c)
        assert "row program" in compiled.cache_info().backend
        np.testing.assert_array_equal(first.numpy().ravel(), [0.5, 0.0, -1.0, 0.25])
        np.testing.assert_array_equal(second.numpy().ravel(), [1.0, 0.0, 3.0, 4.0])
    finally:
        c_rows.MIN_ELEMENTS, c_rows.MIN_COLUMNS = saved


def _gelu_ln_step(n, w, b, r):
    def f(x):
        y = F.layer_norm(F.gelu(x, approximate="tanh"), (n,), w, b)
        (y * r).sum().backward()
        return y, x.grad, w.grad, b.grad
    return f


def _gelu_ln_twin(w0, b0, r, compiled):
    """New w and b (needing grad) from ``w0``, ``b0``, and the step on them, compiled with
    the C backend or eager."""
    w = tg.tensor(w0, requires_grad=True)
    b = tg.tensor(b0, requires_grad=True)
    f = _gelu_ln_step(len(w0), w, b, r)
    return w, b, (tg.compile(f, backend="c") if compiled else f)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(64, 48), (7, 9), (128, 1024), (4, 16, 48)])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_gelu_layer_norm_forward_backward_in_one_row_program(dtype, shape, layout,
                                                             rows_everywhere):
    # (a (B, T, C) value is B*T rows of C)
    rng = np.random.default_rng(4)
    n = shape[-1]
    w0, b0 = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    r = tg.tensor(rng.standard_normal(shape).astype(dtype))
    x0 = rng.standard_normal(shape).astype(dtype)
    if layout == "transposed":  # a strided input: the row program hands over to NumPy
        x0 = np.ascontiguousarray(x0.T).T
    results = []
    for compiled in (False, True):
        w, b, f = _gelu_ln_twin(w0, b0, r, compiled)
        for _ in range(3):
            w.grad = b.grad = None
            x = tg.tensor(x0, requires_grad=True) if layout == "contiguous" else \
                tg.from_numpy(x0).requires_grad_()
            out = [o.numpy().copy() for o in f(x)]
        results.append(out)
        if compiled:
            assert "1 row program(s)" in f.cache_info().backend, f.cache_info().backend
            # rows of 1 KiB or more: the next row is asked of memory during the loops
            wide = n * np.dtype(dtype).itemsize >= 1024
            assert ("{ TG_PREFETCH(" in f.source()) == wide
    tol = 2e-5 if dtype == np.float32 else 1e-11
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1, np.abs(want).max()))


@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_gradients_added_to_existing_grads_stay_in_one_row_program(layout, rows_everywhere):
    """With w.grad and b.grad already there (gradient accumulation), the new gradient is
    ``w.grad + column sum``, which only the finished run knows: the run stopped at that add
    and the rest of GELU + layer norm's backward ran as a second row program and on NumPy,
    2.5x slower at 1024x1024. The add now runs after the run, which goes on; the values
    are eager's, on the C path and on its NumPy fallback (a strided input)."""
    n = 256
    rng = np.random.default_rng(5)
    w0, b0 = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    r = tg.tensor(rng.standard_normal((n, n)).astype(np.float32))
    xs = [rng.standard_normal((n, n)).astype(np.float32) for _ in range(4)]
    if layout == "transposed":
        xs = [np.ascontiguousarray(x.T).T for x in xs]
    results = []
    for compiled in (False, True):
        w, b, f = _gelu_ln_twin(w0, b0, r, compiled)
        for x0 in xs:  # w.grad and b.grad accumulate over the calls
            x = tg.from_numpy(x0).requires_grad_()
            y, gx = [o.numpy().copy() for o in f(x)][:2]
        results.append([y, gx, w.grad.numpy().copy(), b.grad.numpy().copy()])
        if compiled:
            assert "1 row program(s)" in f.cache_info().backend, f.cache_info().backend
            assert "on NumPy" not in f.cache_info().backend, f.cache_info().backend
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * max(1, np.abs(want).max()))


def test_a_row_programs_fallback_keeps_no_buffers(rows_everywhere):
    """The NumPy fallback of a row program (an input that is not C-contiguous) ran on pooled
    buffers that the program kept between calls: 7 arrays of the (256, 256) input's size for
    GELU + layer norm, though the C call needs none of them. It writes new memory now; the
    pool keeps what the C calls and the other nodes use (2 such arrays)."""
    n = 256
    rng = np.random.default_rng(0)
    w = tg.tensor(rng.standard_normal(n).astype(np.float32), requires_grad=True)
    b = tg.tensor(rng.standard_normal(n).astype(np.float32), requires_grad=True)
    r = tg.tensor(rng.standard_normal((n, n)).astype(np.float32))
    f = tg.compile(_gelu_ln_step(n, w, b, r), backend="c")
    x0 = rng.standard_normal((n, n)).astype(np.float32)
    for _ in range(3):
        w.grad = b.grad = None
        f(tg.tensor(x0, requires_grad=True))
    assert "1 row program(s)" in f.cache_info().backend
    pool = sum(a.nbytes for a in f.last_variant.program.pool)
    assert pool <= 2 * x0.nbytes, pool / x0.nbytes


def test_row_programs_in_a_training_step(rows_everywhere):
    eager_model, model = tc.twin(tc.mlp)
    eager_opt = tg.optim.Adam(eager_model.parameters(), lr=1e-2)
    opt = tg.optim.Adam(model.parameters(), lr=1e-2)
    step = tg.compile(tc.train_step(model, opt, F.cross_entropy), backend="c")
    for i, (x, y) in enumerate(tc.batches((8,), [16] * 6)):
        eager_opt.zero_grad()
        expected = F.cross_entropy(eager_model(x), y)
        expected.backward()
        eager_opt.step()
        loss = step(x, y)
        assert loss.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-6), f"step {i}"
        tc.assert_same_parameters(eager_model, model, f"after step {i}")
    assert "row program" in step.cache_info().backend


@pytest.mark.parametrize("shape", [(96, 300), (4, 24, 300)])
def test_row_program_sums_are_numpys_bit_for_bit(shape, rows_everywhere):
    """Per-row sums pairwise (NumPy's order), per-column sums row after row, in float32:
    NumPy's results exactly; the sum over everything adds the rows' sums in double. A
    (B, T, C) value is B*T rows: sums over C, over (B, T) (a bias gradient), over all."""
    rng = np.random.default_rng(6)
    x = (rng.standard_normal(shape) * 10 + 3).astype(np.float32)
    c = rng.standard_normal(300).astype(np.float32)
    lead = tuple(range(len(shape) - 1))

    def f(x, c):
        y = x * c
        return y.sum(-1), (y * 2.0).sum(lead), (y * x).sum()

    cf = tg.compile(f, backend="c")
    for _ in range(2):
        got = [o.numpy() for o in cf(tg.tensor(x), tg.tensor(c))]
    assert "row program" in cf.cache_info().backend
    y = x * c
    np.testing.assert_array_equal(got[0], y.sum(-1))
    np.testing.assert_array_equal(got[1], (y * np.float32(2)).sum(lead))
    terms = (y * x).astype(np.float64)
    assert abs(got[2] - terms.sum()) <= 1e-6 * np.abs(terms).sum()


def test_a_row_programs_sums_share_the_loops_around_them(rows_everywhere):
    """The values of a sum over the row, over the rows and over everything are computed in
    the loop of the elementwise nodes around them (one loop over the row's columns for all
    of them; the row's sum after it), with NumPy's sums bit for bit; a node that reads the
    row's sum starts the next loop."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((40, 300)) * 10 + 3).astype(np.float32)
    c = rng.standard_normal(300).astype(np.float32)

    def f(x, c):
        y = x * c
        z = y * 2.0
        s = z.sum(-1, keepdim=True)
        return s, y.sum(0), (y * x).sum(), (z - s) * x

    cf = tg.compile(f, backend="c")
    for _ in range(2):
        got = [o.numpy() for o in cf(tg.tensor(x), tg.tensor(c))]
    assert "1 row program(s)" in cf.cache_info().backend, cf.cache_info().backend
    c_lines = [line[2:].strip() for line in cf.source().splitlines() if line.startswith("# ")]
    row_program = c_lines[next(k for k, line in enumerate(c_lines) if "row program:" in line):]
    assert row_program.count("TG_IVDEP") == 2  # (4 before: one per sum, one for the rest)
    y = x * c
    z = y * np.float32(2)
    np.testing.assert_array_equal(got[0], z.sum(-1, keepdims=True))
    np.testing.assert_array_equal(got[1], y.sum(0))
    terms = (y * x).astype(np.float64)
    assert abs(got[2] - terms.sum()) <= 1e-6 * np.abs(terms).sum()
    np.testing.assert_array_equal(got[3], (z - z.sum(-1, keepdims=True)) * x)


def test_a_row_program_computes_a_cheap_value_again_rather_than_keep_its_row(
        rows_everywhere):
    """y = x * c, read by the loop after the row's sum, is computed again there (the same
    product: the same bits) instead of being written to a scratch row and read back."""
    rng = np.random.default_rng(8)
    x = (rng.standard_normal((40, 300)) * 10 + 3).astype(np.float32)
    c = rng.standard_normal(300).astype(np.float32)

    def f(x, c):
        y = x * c
        return (y - y.sum(-1, keepdim=True)) * 2.0

    cf = tg.compile(f, backend="c")
    for _ in range(2):
        got = cf(tg.tensor(x), tg.tensor(c)).numpy()
    assert "1 row program(s)" in cf.cache_info().backend, cf.cache_info().backend
    c_lines = [line[2:].strip() for line in cf.source().splitlines() if line.startswith("# ")]
    row_program = "\n".join(
        c_lines[next(k for k, line in enumerate(c_lines) if "row program:" in line):])
    assert "scratch" not in row_program and row_program.count("E0[r * 300 + j]") == 2
    y = x * c
    np.testing.assert_array_equal(got, (y - y.sum(-1, keepdims=True)) * np.float32(2))


def test_a_training_run_on_c_gives_the_numpy_backends_losses():
    """Over 40 Adam steps the C backend's losses are the NumPy backend's to 1e-6 (they
    were 1e-4 apart when C summed in double)."""
    from tracegrad.demo.compiler import digits_step
    from tracegrad.demo.digits import digits_data

    X, y = digits_data()
    steps = {b: tg.compile(digits_step(), backend=b) for b in ("c", "numpy")}
    losses: dict = {b: [] for b in steps}
    for k in range(40):
        xb, yb = tg.from_numpy(X[k * 32:(k + 1) * 32]), tg.from_numpy(y[k * 32:(k + 1) * 32])
        for b, step in steps.items():
            losses[b].append(step(xb, yb).item())
    np.testing.assert_allclose(losses["c"], losses["numpy"], rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_comparisons_casts_and_where_in_row_programs(rows_everywhere, dtype):
    """Comparisons (a bool value inside the run, a bool array when returned), casts and
    where run in the row program, with NaN as NumPy compares it."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((64, 48)).astype(dtype)
    x[3, 5] = np.nan
    c = rng.standard_normal(48).astype(dtype)

    def f(x, c):
        y = x * c
        mask = y > 0.25
        z = tg.where(x <= c, y * 2.0, x - 1.0) * mask.to(x.dtype)
        eq = (z != z) | (y >= x)
        return (z + eq.to(x.dtype)).sum(1), mask, (y < c).to(tg.float64 if dtype == np.float32
                                                            else tg.float32)

    cf = tg.compile(f, backend="c")
    for _ in range(2):
        got = cf(tg.tensor(x), tg.tensor(c))
    want = f(tg.tensor(x), tg.tensor(c))
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g.numpy(), w.numpy())
    source = cf.source()
    assert "row program" in source and "?" in source and " > " in source


def test_a_wider_row_never_lands_on_a_narrower_row_not_yet_read():
    """The memory plan may give a stored float64 row the buffer of a float32 value that dies
    in the same row program; written row by row, each float64 row would land on float32 rows
    the program had not read yet. (Found by a random-program fuzzer: every result was off.)"""
    def f(xt, w):
        x = xt.T  # (a transposed input: the first run of rows falls back to NumPy)
        a = tg.where(w > x, w, x * 0.5)
        o = (a > 0.1).float() * a  # a float32 mask times float64
        (o * 1.5).sum().backward()
        return o.detach(), xt.grad, w.grad

    rng = np.random.default_rng(2100)
    x0, w0 = rng.standard_normal((32, 128)), rng.standard_normal(32)

    def call(fn):
        xt, w = tg.tensor(x0, requires_grad=True), tg.tensor(w0, requires_grad=True)
        return [t.numpy() for t in fn(xt, w)]

    want = call(f)
    cf = tg.compile(f, backend="c")
    for _ in range(3):
        for got, expected in zip(call(cf), want):
            np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_small_program_is_one_c_call(dtype):
    """Kernels, single nodes, a reduction and a cast on small arrays: one segment, one C
    call for the whole program, agreeing with eager (the sum bit for bit)."""
    rng = np.random.default_rng(8)
    x, y = (rng.standard_normal(n).astype(dtype) for n in (6, 6))

    def f(x, y):
        s = (x * 2.0 + y).sum()
        w = ((x - s).tanh() * 3.0 + y).max()
        return (x * w - s).to(tg.float32), s, -w

    cf = tg.compile(f, backend="c")
    for _ in range(2):
        got = cf(tg.tensor(x), tg.tensor(y))
    want = f(tg.tensor(x), tg.tensor(y))
    for g, e in zip(got, want):
        assert g.dtype == e.dtype
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=2e-6, atol=1e-6)
    assert got[1].numpy() == want[1].numpy()
    source = cf.source()
    program = source[:source.index("# ---- C")]
    calls = [line for line in program.splitlines()
             if "(" in line and "np.empty(" not in line
             and not line.strip().startswith(("#", "def", "return"))]
    assert len(calls) == 1 and "# C: s" in calls[0], program
    assert "segment(s)" in cf.cache_info().backend


def test_the_row_program_source_names_its_nodes():
    f = tg.compile(lambda x: (x - x.mean(dim=1, keepdim=True)).exp().sum(dim=0),
                   backend="c")
    x = tg.randn(64, 128)
    for _ in range(3):
        got = f(x)
    want = (x - x.mean(dim=1, keepdim=True)).exp().sum(dim=0)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5)
    src = f.source()
    assert "a row program over (64, 128)" in src and "int r" in src
    assert "for (intptr_t r = 0; r < 64; r++)" in src


def test_a_long_chain_rounds_as_numpy_does_step_by_step():
    # (no fused multiply-add: x * 1.01 + 0.01 is two roundings, as in NumPy)
    def chain(x):
        for _ in range(1000):
            x = x * 1.01 + 0.01
        return x

    x = np.array([0.5, -1.0, 2.0, 0.25], np.float32)
    f = tg.compile(chain, backend="c")
    for _ in range(3):
        got = f(tg.tensor(x)).numpy()
    assert "kernel(s) in C" in f.cache_info().backend
    np.testing.assert_array_equal(got, chain(tg.tensor(x)).numpy())


def test_a_reduction_kernel_over_an_operand_it_still_reads():
    # The plan may put a (2,) sum over axis 0 into the memory of a dying (2, 1) operand
    # (same bytes): the C loop must not overwrite what it still reads.
    def f(x, a):
        return (-x * a.tanh()).sum(dim=1, keepdim=True)

    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((2, 2)).astype(np.float32)
    a0 = rng.standard_normal(2).astype(np.float32)
    grads = []
    for backend in ("numpy", "c"):
        g = tg.compile(f, backend=backend)
        for _ in range(3):
            x, a = tg.tensor(x0, requires_grad=True), tg.tensor(a0, requires_grad=True)
            g(x, a).sum().backward()
        grads.append((x.grad.numpy(), a.grad.numpy()))
    for got, want in zip(grads[1], grads[0]):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_an_integer_index_scalar_handed_to_c_is_made_an_array():
    # x[0, 1] is NumPy's scalar object, not an ndarray: C reads arrays only
    f = tg.compile(lambda x, y: (x[0, 1] * y + 1).exp(), backend="c")
    x, y = tg.randn(3, 4), tg.randn(5)
    for _ in range(3):
        got = f(x, y)
    np.testing.assert_allclose(got.numpy(), (x[0, 1] * y + 1).exp().numpy(), rtol=1e-6)
    assert "np.asarray(v" in f.source()


def test_a_c_program_refuses_what_is_not_an_array():
    """The kernels read an operand's data pointer from the object: a NumPy scalar handed to
    the program raises instead of being read as an array (fed to the GPT step's program,
    one crashed the process)."""
    graph = tg.trace(lambda x, s: ((x * s + 1).tanh() * s).sum(), tg.TensorSpec((3,)),
                     tg.TensorSpec((), dtype=tg.float64))
    g, plan, _ = optimize(graph, backend=cbackend.C_BACKEND)
    program = CProgram(g, plan, every_kernel=True)
    x = np.arange(3, dtype=np.float32)
    want = program(x, np.asarray(0.5))[0]
    np.testing.assert_allclose(want, np.tanh(x * 0.5 + 1).sum() * 0.5, rtol=1e-6)
    with pytest.raises(TypeError, match="input 1 is a float64"):
        program(x, np.float64(0.5))


def _state_update_program(update, shape, dtype, every_kernel=True):
    """The program of ``(m, g) -> (new = update(m, g), a sum of it)`` whose first output
    replaces m (a donation, as an optimizer's state update), and its memory plan."""
    specs = [tg.TensorSpec(shape, dtype=dtype) for _ in range(2)]

    def f(m, g):
        new = update(m, g)
        return new, (new * (new * g).sum(dim=1, keepdim=True)).sum()

    graph, _ = run_traced(f, specs, {})
    graph, plan, _ = optimize(graph, [(0, graph.inputs[0])], backend=cbackend.C_BACKEND)
    return CProgram(graph, plan, every_kernel=every_kernel), plan


@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
@pytest.mark.parametrize("update, dtype, shape, late", [
    (lambda m, g: m + (g - m) * 0.1, np.float32, (64, 64), True),  # Adam's first moment
    (lambda m, g: m * 0.999 + g * 0.001 * g, np.float32, (64, 64), False),  # its second
    (lambda m, g: m + (g - m).exp() * 0.1, np.float64, (200, 100), True),
], ids=["lerp", "second_moment", "exp"])
def test_a_state_update_is_written_over_the_state_it_reads(update, dtype, shape, late,
                                                           layout):
    """A kernel reading m in its first and last steps is one C loop: its result may go
    over m (NumPy's steps would overwrite m before the last one reads it: the C program
    runs those through a temporary); m * b2 read before the kernel may be overwritten
    too. Not new memory and a copy on every step."""
    prog, plan = _state_update_program(update, shape, dtype, every_kernel=False)
    new = prog.graph.outputs[0]
    assert plan.into_input.get(id(new)) is prog.graph.inputs[0]
    assert "row program" in prog.source_text
    assert ("_t = np.empty" in prog.source_text) == late  # (the NumPy fallback's)
    rng = np.random.default_rng(0)
    for _ in range(2):
        m0, g = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
        if layout == "transposed":  # the row program hands over to NumPy
            m0 = np.ascontiguousarray(m0.T).T
        m = m0.copy(order="A")
        got, total = prog(m, g)
        want = update(tg.tensor(m0), tg.tensor(g)).numpy()
        assert got is m
        np.testing.assert_allclose(got, want, rtol=1e-6)
        np.testing.assert_allclose(total, (want * (want * g).sum(1, keepdims=True)).sum(),
                                   rtol=1e-4)


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("batch", [(3, 5), (0, 4)])
def test_a_batch_of_rows_times_a_matrix_is_one_matrix_product(backend, batch):
    """x (B, T, C) @ W.T, and W's gradient: one product over the B*T rows each (as
    reshaped views), equal to eager."""
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal(batch + (6,)).astype(np.float32)
    w0 = rng.standard_normal((4, 6)).astype(np.float32)

    def f(x, w):
        y = x @ w.T
        (y * y).sum().backward()
        return y

    f_c = tg.compile(f, backend=backend)
    for _ in range(3):
        w = tg.tensor(w0, requires_grad=True)
        got = f_c(tg.tensor(x0), w)
    we = tg.tensor(w0, requires_grad=True)
    want = f(tg.tensor(x0), we)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w.grad.numpy(), we.grad.numpy(), rtol=1e-5, atol=1e-5)
    assert f".reshape({batch[0] * batch[1]}, 6)" in f_c.last_variant.program.source_text


def test_a_relu_backward_mask_starts_a_row_program():
    """gt, mul, sum over the rows (a ReLU's backward and its bias gradient): one row
    program, started by the bool comparison (its frame: the operands' float32)."""
    rng = np.random.default_rng(3)
    x, g = (rng.standard_normal((128, 256)).astype(np.float32) for _ in range(2))

    def f(x, g):
        d = g * (x > 0)
        return d, d.sum(0)

    cf = tg.compile(f, backend="c")
    for _ in range(2):
        got = [o.numpy() for o in cf(tg.tensor(x), tg.tensor(g))]
    assert "row program" in cf.cache_info().backend, cf.cache_info().backend
    for a, b in zip(got, f(tg.tensor(x), tg.tensor(g))):
        np.testing.assert_array_equal(a, b.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(16, 2), (4, 8), (4, 4, 2)])
def test_nested_where_in_a_row_program(dtype, shape, rows_everywhere):
    """where(m2, y, where(m1, x, 0)) row by row (the gradient of minimum): with its arms'
    loads under a mask, GCC 12.2 -O3 -march=native gave 0 for some elements."""
    rng = np.random.default_rng(5)
    m1, m2 = (rng.random(shape) < 0.5 for _ in range(2))
    x, y = (rng.standard_normal(shape).astype(dtype) for _ in range(2))

    def f(m1, m2, x, y):
        return -tg.where(m2, y * 2, tg.where(m1, x, 0.0))

    cf = tg.compile(f, backend="c")
    args = [tg.tensor(a) for a in (m1, m2, x, y)]
    for _ in range(2):
        got = cf(*args).numpy()
    assert "row program" in cf.cache_info().backend, cf.cache_info().backend
    np.testing.assert_array_equal(got, f(*args).numpy())


def test_a_program_puts_at_most_c_steps_kernel_steps_in_c(monkeypatch):
    """A 100,000-op chain on a (4,) array was one C kernel of 22 MB of source: GCC ran ten
    minutes and crashed (10,000 ops took 10 s to compile). A program puts at most C_STEPS
    kernel steps in C, fused kernels and segments alike; NumPy runs the rest, with the same
    results, and the program says why."""
    monkeypatch.setattr(cbackend, "C_STEPS", 64)

    def chain(n):
        def f(x):
            for _ in range(n):
                x = x * 0.999 + 0.001
            return x
        return f

    x = tg.tensor(np.linspace(-1, 1, 4, dtype=np.float32))
    long = tg.compile(chain(100), backend="c")  # one fused kernel of 200 steps
    long(x)
    np.testing.assert_allclose(long(x).numpy(), chain(100)(x).numpy(), rtol=1e-6)
    program = long.last_variant.program
    assert program.c_source == ""
    assert any("64 kernel steps" in why for _, why in program.on_numpy)

    def two(x):  # two kernels of 40 steps, parted by a reduction: one fits
        y = chain(20)(x)
        return chain(20)(y - y.sum())

    f = tg.compile(two, backend="c")
    f(x)
    np.testing.assert_allclose(f(x).numpy(), two(x).numpy(), rtol=1e-5, atol=1e-6)
    program = f.last_variant.program
    assert program.c_source and program._c_steps <= 64
    assert any("64 kernel steps" in why for _, why in program.on_numpy)
