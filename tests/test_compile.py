"""Tests of `tg.compile`: the compiled program computes what the eager code computes.

For every primitive and composite op, on shapes drawn by hypothesis (broadcasting and size-1
dimensions included), three implementations must agree on values *and* gradients: eager
execution, the reference graph interpreter (`tg.trace(...)(*arrays)`) and the compiled NumPy
program (`tg.compile`), the latter both as a differentiable function (``.backward()`` outside)
and with the backward pass traced inside it. Then whole compiled training steps against the
eager loop, the guards that force a retrace, randomness, the errors a trace raises, the
generated source, and the decorator / Module forms.

Every compiled function is called at least three times with different values: the first call
runs eagerly, the second traces and compiles, the third runs the cached program.

Known bugs would be pinned by ``xfail(strict=True)`` tests; there are none now.
"""

from __future__ import annotations

import ast
import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tracegrad as tg
import tracegrad.nn.functional as F

nn = tg.nn
FEW = settings(max_examples=10, deadline=None)
TOL = {np.dtype(np.float32): (2e-5, 2e-5), np.dtype(np.float64): (1e-10, 1e-10)}
HERE = os.path.abspath(__file__)


def assert_close(actual: Any, expected: Any, dtype: Any, what: str) -> None:
    """Same shape, same dtype, values within the dtype's tolerance."""
    actual = np.asarray(actual.numpy() if isinstance(actual, tg.Tensor) else actual)
    expected = np.asarray(expected.numpy() if isinstance(expected, tg.Tensor) else expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, want {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype}, want {expected.dtype}"
    if actual.dtype.kind != "f":
        np.testing.assert_array_equal(actual, expected, err_msg=what)
        return
    rtol, atol = TOL[np.dtype(dtype)]
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True,
                               err_msg=what)


# ------------------------------------------------------------------------------------------
# The op table: (name, fn(*tensors) -> tensor, inputs). ``inputs(draw)`` draws the shapes and
# returns ``make(rng, dtype) -> list of arrays``, so that one example can be called three times
# with the same shapes and different values. Float arrays become leaves that require grad;
# integer and boolean arrays are plain inputs (labels, indices).


def _normal(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def _positive(rng, shape, dtype):
    return rng.uniform(0.5, 2.0, shape).astype(dtype)


def _away_from_zero(rng, shape, dtype):
    return (rng.uniform(0.5, 2.0, shape) * rng.choice([-1, 1], shape)).astype(dtype)


def _small_ints(rng, shape, dtype):  # floats with ties, for comparisons and max/min
    return rng.integers(-2, 3, shape).astype(dtype)


KINDS = {"normal": _normal, "positive": _positive, "nonzero": _away_from_zero,
         "ties": _small_ints}

shape_st = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
nd_shape_st = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
pairs_st = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4)


def unary(kind: str = "normal", shapes: Any = shape_st) -> Callable:
    def inputs(draw):
        s = draw(shapes)
        return lambda rng, dt: [KINDS[kind](rng, s, dt)]
    return inputs


def binary(kind_a: str = "normal", kind_b: str = "normal") -> Callable:
    def inputs(draw):
        (sa, sb), _ = draw(pairs_st)
        return lambda rng, dt: [KINDS[kind_a](rng, sa, dt), KINDS[kind_b](rng, sb, dt)]
    return inputs


def ternary_where(draw):
    shapes, _ = draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3))
    return lambda rng, dt: [_normal(rng, s, dt) for s in shapes]


def with_dim(min_side: int = 1, min_dims: int = 1) -> Callable:
    """One array of at least ``min_dims`` dimensions; the op reads ``dim`` from its shape."""
    def inputs(draw):
        s = draw(hnp.array_shapes(min_dims=min_dims, max_dims=3, min_side=min_side,
                                  max_side=4))
        return lambda rng, dt: [_normal(rng, s, dt)]
    return inputs


def matmul_inputs(draw):
    (ba, bb), _ = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3))
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    vector_b = draw(st.booleans())
    sa, sb = (*ba, n, k), ((k,) if vector_b else (*bb, k, m))
    return lambda rng, dt: [_normal(rng, sa, dt), _normal(rng, sb, dt)]


def cat_inputs(draw):
    s = draw(nd_shape_st)
    dim = draw(st.integers(-len(s), len(s) - 1))
    t = list(s)
    t[dim] = draw(st.integers(1, 3))
    return lambda rng, dt: [_normal(rng, s, dt), _normal(rng, tuple(t), dt)]


def same_two(draw):
    s = draw(shape_st)
    return lambda rng, dt: [_normal(rng, s, dt), _normal(rng, s, dt)]


def expand_inputs(draw):
    (small, _), big = draw(pairs_st)
    small = (1,) * (len(big) - len(small)) + tuple(small)
    return lambda rng, dt: [_normal(rng, small, dt)]


def int_index_inputs(draw):
    s = draw(nd_shape_st)
    idx = draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=4))
    return lambda rng, dt: [_normal(rng, s, dt), rng.integers(-s[0], s[0], idx)]


def cross_entropy_inputs(draw):
    n, c = draw(st.integers(1, 5)), draw(st.integers(2, 5))
    return lambda rng, dt: [_normal(rng, (n, c), dt), rng.integers(0, c, n)]


def embedding_inputs(draw):
    v, d = draw(st.integers(2, 6)), draw(st.integers(1, 4))
    idx = draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=4))
    return lambda rng, dt: [rng.integers(0, v, idx), _normal(rng, (v, d), dt)]


def layer_norm_inputs(draw):
    s = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=4))
    return lambda rng, dt: [_normal(rng, s, dt), _normal(rng, s[-1:], dt),
                            _normal(rng, s[-1:], dt)]


def bce_inputs(draw):
    s = draw(shape_st)
    return lambda rng, dt: [_normal(rng, s, dt), rng.uniform(0, 1, s).astype(dt)]


def image_inputs(with_weight: bool) -> Callable:
    def inputs(draw):
        n, c, h, w = (draw(st.integers(1, 2)), draw(st.integers(1, 3)),
                      draw(st.integers(3, 6)), draw(st.integers(3, 6)))
        o = draw(st.integers(1, 3))

        def make(rng, dt):
            out = [_normal(rng, (n, c, h, w), dt)]
            if with_weight:
                out += [_normal(rng, (o, c, 3, 3), dt), _normal(rng, (o,), dt)]
            return out
        return make
    return inputs


def _last(x: tg.Tensor) -> int:
    return x.ndim - 1


@dataclass
class Op:
    name: str
    fn: Callable
    inputs: Callable


OPS = [
    # elementwise unary
    Op("neg", lambda x: -x, unary()),
    Op("abs", lambda x: x.abs(), unary("nonzero")),
    Op("exp", lambda x: x.exp(), unary()),
    Op("log", lambda x: x.log(), unary("positive")),
    Op("sqrt", lambda x: x.sqrt(), unary("positive")),
    Op("tanh", lambda x: x.tanh(), unary()),
    Op("sigmoid", lambda x: x.sigmoid(), unary()),
    Op("relu", lambda x: x.relu(), unary("nonzero")),
    Op("sin", lambda x: tg.sin(x), unary()),
    Op("cos", lambda x: tg.cos(x), unary()),
    Op("erf", lambda x: tg.erf(x), unary()),
    Op("sign", lambda x: tg.sign(x) * x, unary("nonzero")),
    Op("clamp", lambda x: tg.clamp(x, -0.5, 0.7), unary()),
    Op("square", lambda x: x**2, unary()),
    Op("rpow", lambda x: 2.0**x, unary()),
    Op("scalar_arith", lambda x: (3.0 - x) / 2.0 + 1.5 * x, unary()),
    Op("silu", lambda x: F.silu(x), unary()),
    Op("softplus", lambda x: F.softplus(x), unary()),
    Op("gelu", lambda x: F.gelu(x), unary()),
    Op("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), unary()),
    # elementwise binary, broadcasting
    Op("add", lambda a, b: a + b, binary()),
    Op("sub", lambda a, b: a - b, binary()),
    Op("mul", lambda a, b: a * b, binary()),
    Op("div", lambda a, b: a / b, binary("normal", "nonzero")),
    Op("pow", lambda a, b: a**b, binary("positive", "normal")),
    Op("maximum", lambda a, b: tg.maximum(a, b), binary()),
    Op("minimum", lambda a, b: tg.minimum(a, b), binary()),
    Op("lt", lambda a, b: a < b, binary("ties", "ties")),
    Op("le", lambda a, b: a <= b, binary("ties", "ties")),
    Op("gt", lambda a, b: a > b, binary("ties", "ties")),
    Op("ge", lambda a, b: a >= b, binary("ties", "ties")),
    Op("eq", lambda a, b: a == b, binary("ties", "ties")),
    Op("ne", lambda a, b: a != b, binary("ties", "ties")),
    Op("where", lambda c, a, b: tg.where(c > 0, a, b), ternary_where),
    Op("where_scalar", lambda a, b: tg.where(a > b, a * b, 0.0), binary()),
    # reductions
    Op("sum_all", lambda x: x.sum(), unary()),
    Op("sum_dim", lambda x: x.sum(dim=_last(x)), with_dim()),
    Op("sum_keepdim", lambda x: x.sum(dim=0, keepdim=True), with_dim()),
    Op("mean", lambda x: x.mean(dim=_last(x)), with_dim()),
    Op("mean_all", lambda x: x.mean(), unary()),
    Op("max_all", lambda x: x.max(), unary()),
    Op("max_dim", lambda x: x.max(dim=0).values, with_dim()),
    Op("max_dim_indices", lambda x: x.max(dim=_last(x)).indices, with_dim()),
    Op("min_dim", lambda x: x.min(dim=_last(x), keepdim=True).values, with_dim()),
    Op("amax", lambda x: tg.amax(x, dim=0), with_dim()),
    Op("argmax", lambda x: x.argmax(dim=0), with_dim()),
    Op("var", lambda x: x.var(dim=_last(x)), with_dim(min_side=2)),
    Op("var_biased", lambda x: x.var(dim=0, correction=0), with_dim()),
    Op("std", lambda x: x.std(dim=0, keepdim=True), with_dim(min_side=2)),
    Op("std_all", lambda x: x.std(), with_dim(min_side=2)),
    Op("logsumexp", lambda x: tg.logsumexp(x, dim=_last(x)), with_dim()),
    Op("softmax", lambda x: tg.softmax(x, dim=_last(x)), with_dim()),
    Op("softmax_dim0", lambda x: tg.softmax(x, dim=0), with_dim()),
    Op("log_softmax", lambda x: tg.log_softmax(x, dim=_last(x)), with_dim()),
    # movement
    Op("reshape", lambda x: x.reshape(-1), unary()),
    Op("reshape_2d", lambda x: x.reshape(x.shape[0], -1), with_dim()),
    Op("view_unsqueeze", lambda x: x.unsqueeze(0).unsqueeze(-1) * 2.0, unary()),
    Op("permute", lambda x: x.permute(*reversed(range(x.ndim))), unary()),
    Op("transpose", lambda x: x.transpose(0, -1), with_dim()),
    Op("T", lambda x: x.T, unary(shapes=hnp.array_shapes(min_dims=2, max_dims=2, max_side=4))),
    Op("expand", lambda x: x.expand(*[3 if d == 1 else d for d in x.shape]), expand_inputs),
    Op("flatten", lambda x: x.flatten(), unary()),
    Op("flatten_start", lambda x: x.flatten(start_dim=1), with_dim(min_dims=2)),
    Op("squeeze", lambda x: x.squeeze(), unary()),
    Op("squeeze_dim", lambda x: x.unsqueeze(1).squeeze(1), with_dim()),
    Op("getitem_slices", lambda x: x[1:, ::-1], unary(shapes=hnp.array_shapes(
        min_dims=2, max_dims=3, min_side=2, max_side=4))),
    Op("getitem_int_none", lambda x: x[0, None, ..., -1], with_dim(min_dims=2)),
    Op("getitem_tensor", lambda x, i: x[i], int_index_inputs),
    Op("mul_bool_mask", lambda x: x * (x > 0), unary("nonzero")),
    Op("cat", lambda a, b: tg.cat([a, b, a], dim=_cat_dim(a, b)), cat_inputs),
    Op("stack", lambda a, b: tg.stack([a, b], dim=-1), same_two),
    Op("stack_0", lambda a, b: tg.stack([a, b * 2.0]), same_two),
    Op("pad", lambda x: F.pad(x, (1, 2)), with_dim()),
    Op("pad_2d", lambda x: F.pad(x, (0, 1, 2, 1), value=-1.5), unary(shapes=hnp.array_shapes(
        min_dims=2, max_dims=3, max_side=4))),
    # linear algebra
    Op("matmul", lambda a, b: a @ b, matmul_inputs),
    # composites
    Op("layer_norm", lambda x, w, b: F.layer_norm(x, x.shape[-1:], w, b), layer_norm_inputs),
    Op("cross_entropy", lambda z, t: F.cross_entropy(z, t), cross_entropy_inputs),
    Op("cross_entropy_sum", lambda z, t: F.cross_entropy(z, t, reduction="sum",
                                                         label_smoothing=0.1),
       cross_entropy_inputs),
    Op("mse", lambda a, b: F.mse_loss(a, b), same_two),
    Op("bce_with_logits", lambda x, y: F.binary_cross_entropy_with_logits(x, y), bce_inputs),
    Op("conv2d", lambda x, w, b: F.conv2d(x, w, b), image_inputs(True)),
    Op("conv2d_stride_pad", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
       image_inputs(True)),
    Op("max_pool2d", lambda x: F.max_pool2d(x, 2), image_inputs(False)),
    Op("max_pool2d_overlap", lambda x: F.max_pool2d(x, 3, stride=1, padding=1),
       image_inputs(False)),
    Op("avg_pool2d", lambda x: F.avg_pool2d(x, 2), image_inputs(False)),
    Op("embedding", lambda i, w: F.embedding(i, w), embedding_inputs),
]


def _cat_dim(a: tg.Tensor, b: tg.Tensor) -> int:
    return next(d for d in range(a.ndim) if a.shape[d] != b.shape[d] or d == a.ndim - 1) \
        if a.shape != b.shape else 0


def _leaves(arrays: list[np.ndarray]) -> list[tg.Tensor]:
    return [tg.tensor(a, dtype=a.dtype, requires_grad=a.dtype.kind == "f") for a in arrays]


def _differentiable(out: tg.Tensor) -> bool:
    return out.requires_grad and out.dtype.kind == "f"


def eager(fn: Callable, arrays: list[np.ndarray], cot: np.ndarray | None):
    """The reference: value of ``fn`` and the gradients of ``sum(fn * cot)``."""
    xs = _leaves(arrays)
    out = fn(*xs)
    grads = None
    if cot is not None and _differentiable(out):
        (out * tg.tensor(cot, dtype=cot.dtype)).sum().backward()
        grads = [x.grad.numpy() if x.grad is not None else np.zeros_like(a)
                 for x, a in zip(xs, arrays) if a.dtype.kind == "f"]
    return out.numpy(), grads


def forward_backward(fn: Callable) -> Callable:
    """``(cot, *xs) -> (fn(xs), *grads)`` with the backward pass run inside the function."""
    def step(cot: tg.Tensor, *xs: tg.Tensor) -> tuple:
        out = fn(*xs)
        (out * cot).sum().backward()
        return (out, *[x.grad if x.grad is not None else tg.zeros_like(x)
                       for x in xs if x.requires_grad])
    return step


@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
@FEW
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16))
def test_compiled_equals_interpreter_equals_eager(op: Op, data, dtype, seed: int) -> None:
    check_op(op, data, dtype, seed, "numpy")


def check_op(op: Op, data, dtype, seed: int, backend: str) -> None:
    """One op: eager, the interpreter and the ``backend``'s compiled program agree."""
    make = op.inputs(data.draw)
    rng = np.random.default_rng(seed)
    compiled = tg.compile(op.fn, backend=backend)
    compiled_step = tg.compile(forward_backward(op.fn), backend=backend)
    for call in range(3):
        arrays = make(rng, np.dtype(dtype))
        value, _ = eager(op.fn, arrays, None)
        cot = _normal(rng, value.shape, value.dtype) if value.dtype.kind == "f" else None
        value, grads = eager(op.fn, arrays, cot)
        what = f"{op.name}{[a.shape for a in arrays]}, call {call + 1}"

        # the reference interpreter on the traced graph
        (interpreted,) = tg.trace(op.fn, *_leaves(arrays))(*arrays)
        assert_close(interpreted, value, dtype, f"{what}: interpreter value")

        # the compiled program; its outputs are differentiable
        xs = _leaves(arrays)
        out = compiled(*xs)
        assert_close(out, value, dtype, f"{what}: compiled value")
        if grads is None:
            continue
        assert out.requires_grad, f"{what}: a compiled output lost requires_grad"
        out.backward(tg.tensor(cot, dtype=cot.dtype))
        float_xs = [x for x in xs if x.requires_grad]
        for i, (x, g) in enumerate(zip(float_xs, grads)):
            # None and zeros both mean "no gradient" (a compiled backward writes zeros)
            got = np.zeros_like(g) if x.grad is None else x.grad
            assert_close(got, g, dtype, f"{what}: compiled backward, grad of input {i}")

        # forward and backward traced together: interpreter and compiled
        step_args = [cot, *arrays]
        interpreted = tg.trace(forward_backward(op.fn), *_leaves(step_args))(*step_args)
        assert_close(interpreted[0], value, dtype, f"{what}: interpreter forward+backward")
        for i, (a, g) in enumerate(zip(interpreted[1:], grads)):
            assert_close(a, g, dtype, f"{what}: interpreter, grad of input {i}")
        outs = compiled_step(*_leaves(step_args))
        assert_close(outs[0], value, dtype, f"{what}: compiled forward+backward")
        for i, (a, g) in enumerate(zip(outs[1:], grads)):
            assert_close(a, g, dtype, f"{what}: compiled forward+backward, grad of input {i}")
    assert compiled.cache_info().misses == 1
    assert compiled.cache_info().hits == 1


def test_cross_entropy_labels_are_an_input_not_a_constant() -> None:
    ce = tg.compile(lambda z, t: F.cross_entropy(z, t))
    z = tg.tensor(np.random.default_rng(0).standard_normal((6, 4)), requires_grad=True)
    labels = [np.array([0, 1, 2, 3, 0, 1]), np.array([3, 3, 3, 3, 3, 3]),
              np.array([1, 0, 1, 0, 1, 0]), np.array([2, 2, 0, 0, 1, 1])]
    losses = []
    for y in labels:
        loss = ce(z, tg.tensor(y))
        expected = F.cross_entropy(z, tg.tensor(y))
        assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
        losses.append(loss.item())
    assert len(set(losses)) == len(losses)
    assert ce.cache_info().misses == 1 and ce.cache_info().hits == 2
    assert "const" not in [n.op for n in ce.graph.inputs]


def test_int_tensor_index_is_an_input_not_a_constant() -> None:
    pick = tg.compile(lambda x, i: x[i] * 2.0)
    x = tg.arange(10.0)
    for idx in ([0, 1], [9, 3], [5, 5], [-1, 2]):
        np.testing.assert_array_equal(pick(x, tg.tensor(idx)).numpy(), 2.0 * x.numpy()[idx])
    assert pick.cache_info().hits == 2


# ------------------------------------------------------------------------------------------
# Training steps: compiled == eager over many steps, through a retrace.


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                         nn.Linear(16, 3))


def cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4 * 4 * 4, 3))


def twin(make: Callable) -> tuple[nn.Module, nn.Module]:
    tg.manual_seed(0)
    a = make()
    b = make()
    b.load_state_dict(a.state_dict())
    return a, b


def batches(shape: tuple, sizes: list[int], seed: int = 1) -> list[tuple[tg.Tensor, tg.Tensor]]:
    rng = np.random.default_rng(seed)
    return [(tg.tensor(rng.standard_normal((n, *shape)).astype(np.float32)),
             tg.tensor(rng.integers(0, 3, n))) for n in sizes]


def assert_same_parameters(a: nn.Module, b: nn.Module, what: str) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_allclose(sb[k].numpy(), sa[k].numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=f"{what}: {k}")


def train_step(model, opt, loss_fn=F.mse_loss):
    """A training step as a user writes it: ``loss_fn(model(x), y)``, or ``model(x).sum()``
    when called without targets."""

    def step(x, y=None):
        opt.zero_grad()
        out = model(x)
        loss = out.sum() if y is None else loss_fn(out, y)
        loss.backward()
        opt.step()
        return loss

    return step


@pytest.mark.parametrize("make, shape, make_opt", [
    (mlp, (8,), lambda p: tg.optim.Adam(p, lr=1e-2)),
    (cnn, (1, 8, 8), lambda p: tg.optim.SGD(p, lr=0.05, momentum=0.9)),
], ids=["mlp_adam", "cnn_sgd_momentum"])
def test_compiled_training_step_matches_eager(make, shape, make_opt) -> None:
    eager_model, model = twin(make)
    eager_opt, opt = make_opt(eager_model.parameters()), make_opt(model.parameters())
    step = tg.compile(train_step(model, opt, F.cross_entropy))
    data = batches(shape, [16] * 12 + [8] * 8)
    for i, (x, y) in enumerate(data):
        eager_opt.zero_grad()
        expected = F.cross_entropy(eager_model(x), y)
        expected.backward()
        eager_opt.step()
        loss = step(x, y)
        assert loss.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-6), f"step {i}"
        assert_same_parameters(eager_model, model, f"after step {i}")
        if i == 11:
            info = step.cache_info()
            assert (info.variants, info.misses, info.hits) == (1, 1, 10)
    info = step.cache_info()
    assert (info.variants, info.misses, info.hits) == (2, 2, 17)
    assert "shape" in info.reasons[-1]
    for p, q in zip(eager_model.parameters(), model.parameters()):
        np.testing.assert_allclose(q.grad.numpy(), p.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make, shape", [(mlp, (8,)), (cnn, (1, 8, 8))], ids=["mlp", "cnn"])
def test_compiled_module_in_an_eager_training_loop(make, shape) -> None:
    eager_model, model = twin(make)
    compiled = tg.compile(model)
    eager_opt = tg.optim.Adam(eager_model.parameters(), lr=1e-2)
    opt = tg.optim.Adam(compiled.parameters(), lr=1e-2)
    for i, (x, y) in enumerate(batches(shape, [16] * 6 + [5] * 4)):
        for m, o in ((eager_model, eager_opt), (compiled, opt)):
            o.zero_grad()
            loss = F.cross_entropy(m(x), y)
            loss.backward()
            o.step()
        assert_same_parameters(eager_model, model, f"after step {i}")
    info = compiled.cache_info()
    assert (info.misses, info.hits) == (2, 7)


# ------------------------------------------------------------------------------------------
# Guards


def test_train_and_eval_switch_variants() -> None:
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    reference = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    reference.load_state_dict(model.state_dict())
    compiled = tg.compile(model)
    rng = np.random.default_rng(0)
    for mode in ["train", "train", "train", "eval", "eval", "train", "eval"]:
        for m in (compiled, reference):
            getattr(m, mode)()
        x = tg.tensor(rng.standard_normal((5, 4)).astype(np.float32))
        with tg.no_grad():
            np.testing.assert_allclose(compiled(x).numpy(), reference(x).numpy(), rtol=1e-5,
                                       atol=1e-6, err_msg=mode)
        assert_same_parameters(reference, model, mode)  # running statistics too
    info = compiled.cache_info()
    assert (info.variants, info.misses, info.hits) == (2, 2, 4)
    assert any("train()" in r for r in info.reasons)


def test_a_float_argument_is_an_input_and_an_int_retraces() -> None:
    scale = tg.compile(lambda x, s: x * s + s)
    x = tg.tensor([1.0, 2.0])
    for s, want in [(2.0, [4.0, 6.0]), (2.0, [4.0, 6.0]), (2.0, [4.0, 6.0]), (3.0, [6.0, 9.0]),
                    (2.0, [4.0, 6.0]), (3.0, [6.0, 9.0])]:
        np.testing.assert_allclose(scale(x, s).numpy(), want)
    info = scale.cache_info()
    assert (info.variants, info.misses, info.hits) == (1, 1, 4)  # floats: program inputs
    for s, want in [(2, [4.0, 6.0]), (2, [4.0, 6.0]), (3, [6.0, 9.0])]:
        np.testing.assert_allclose(scale(x, s).numpy(), want)
    assert scale.cache_info().misses == 3  # ints are guards: each new one compiles


def test_replacing_a_parameter_retraces_and_uses_the_new_one() -> None:
    model = nn.Sequential(nn.Linear(3, 2))
    compiled = tg.compile(model)
    x = tg.tensor([[1.0, 2.0, 3.0]])
    for _ in range(3):
        np.testing.assert_allclose(compiled(x).numpy(), model(x).numpy(), rtol=1e-6)
    model[0].weight = nn.Parameter(np.ones((2, 3), dtype=np.float32))
    out = compiled(x)
    np.testing.assert_allclose(out.numpy(), 6.0 + model[0].bias.numpy()[None], rtol=1e-6)
    out.sum().backward()
    np.testing.assert_allclose(model[0].weight.grad.numpy(), [[1.0, 2.0, 3.0]] * 2)
    info = compiled.cache_info()
    assert info.misses == 2 and "reassigned" in info.reasons[-1]


def test_captured_tensors_are_read_afresh_and_rebinding_is_picked_up() -> None:
    w = tg.tensor([1.0, 2.0])
    f = tg.compile(lambda x: x * w)
    x = tg.tensor([3.0, 4.0])
    for _ in range(3):
        np.testing.assert_allclose(f(x).numpy(), [3.0, 8.0])
    w.data[...] = [5.0, 6.0]  # changed in place: same variant, new value
    np.testing.assert_allclose(f(x).numpy(), [15.0, 24.0])
    assert f.cache_info().misses == 1
    w = tg.tensor([-1.0, 0.5])  # rebound: the closure now names another tensor
    np.testing.assert_allclose(f(x).numpy(), [-3.0, 2.0])
    np.testing.assert_allclose(f(x).numpy(), [-3.0, 2.0])
    info = f.cache_info()
    assert info.misses == 2 and "replaced" in info.reasons[-1]
    w = tg.tensor([1.0, 1.0, 1.0])  # a new shape
    np.testing.assert_allclose(f(tg.tensor([1.0, 2.0, 3.0])).numpy(), [1.0, 2.0, 3.0])


def test_too_many_variants_warns_once_and_keeps_working() -> None:
    f = tg.compile(lambda x: (x * 2.0).sum(), dynamic=False)  # (dynamic: one variant)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(1, 13):
            for _ in range(2):
                assert f(tg.ones(n)).item() == 2.0 * n
    ours = [w for w in caught if "tg.compile" in str(w.message)]
    assert len(ours) == 1, [str(w.message) for w in caught]
    assert ours[0].filename == HERE
    info = f.cache_info()
    assert info.variants == 12 and info.misses == 12 and info.hits == 11
    assert len(info.reasons) == 12 and info.reasons[0] == "first compiled call"
    assert "12 variant(s), 11 hit(s), 12 miss(es)" in str(info)


def test_grad_mode_is_a_guard() -> None:
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    f = tg.compile(lambda x: (x * w).sum())
    x = tg.tensor([3.0, 4.0])
    for _ in range(3):
        f(x).backward()
    np.testing.assert_allclose(w.grad.numpy(), [9.0, 12.0])
    with tg.no_grad():
        out = f(x)
    assert not out.requires_grad and out.item() == 11.0
    assert f.cache_info().misses == 2


# ------------------------------------------------------------------------------------------
# Randomness (dropout and tg.rand inside compiled functions) -- see the bugs at the end.


def dropout_fn(x: tg.Tensor) -> tg.Tensor:
    return F.dropout(x, 0.5, training=True)


def rand_fn(x: tg.Tensor) -> tg.Tensor:
    return x + tg.rand(*x.shape)


def randint_fn(x: tg.Tensor) -> tg.Tensor:
    return x + tg.randint(0, 1000, x.shape).float()


@pytest.mark.parametrize("fn", [dropout_fn, rand_fn, randint_fn],
                         ids=["dropout", "rand", "randint"])
def test_randomness_stays_random_and_manual_seed_reproduces(fn) -> None:
    compiled = tg.compile(fn)
    x = tg.ones(200)
    tg.manual_seed(0)
    first = [compiled(x).numpy() for _ in range(4)]
    assert all(not np.array_equal(a, b) for a, b in zip(first, first[1:]))
    tg.manual_seed(0)
    second = [compiled(x).numpy() for _ in range(4)]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_train_and_eval_switch_with_dropout() -> None:
    model = nn.Sequential(nn.Linear(4, 64), nn.Dropout(0.5))
    compiled = tg.compile(model)
    x = tg.ones((2, 4))
    model.eval()
    evals = [compiled(x).numpy() for _ in range(3)]
    np.testing.assert_allclose(evals[2], model(x).numpy(), rtol=1e-6)
    model.train()
    trains = [compiled(x).numpy() for _ in range(3)]
    assert (trains[2] == 0).any() and not np.array_equal(trains[1], trains[2])
    assert compiled.cache_info().misses == 2


# ------------------------------------------------------------------------------------------
# Python control flow on traced values: a clear TraceError, and nothing changed.


def _line_of(marker: str) -> int:
    with open(HERE) as f:
        for lineno, line in enumerate(f, 1):
            if line.rstrip().endswith(f"# {marker}") and "_line_of" not in line:
                return lineno
    raise AssertionError(marker)


def branch_on_item(t):
    if t.item() > 0:  # TRACE-item
        return t * 2
    return t


def branch_on_bool(t):
    if t.sum() > 0:  # TRACE-bool
        return t * 2
    return t


def to_numpy(t):
    return tg.tensor(t.numpy() * 2)  # TRACE-numpy


def to_float(t):
    return t * float(t.sum())  # TRACE-float


@pytest.mark.parametrize("fn, marker", [(branch_on_item, "TRACE-item"),
                                        (branch_on_bool, "TRACE-bool"),
                                        (to_numpy, "TRACE-numpy"),
                                        (to_float, "TRACE-float")],
                         ids=["item", "bool", "numpy", "float"])
def test_reading_a_traced_value_raises_trace_error(fn, marker) -> None:
    compiled = tg.compile(fn)
    x = tg.ones((1,))
    compiled(x)  # eager
    with pytest.raises(tg.TraceError) as info:
        compiled(x)
    message = str(info.value)
    assert f"{HERE}:{_line_of(marker)}" in message, message
    assert "tg.where" in message


_ITEM_RESULTS = {
    "the item": lambda loss, acc: loss.item(),
    "a tuple": lambda loss, acc: (loss.item(), acc.item()),
    "a dict": lambda loss, acc: {"loss": loss.item(), "n": 3, "acc": acc.item()},
    "the same twice": lambda loss, acc: [loss.item()] * 2,
}


@pytest.mark.parametrize("case", sorted(_ITEM_RESULTS))
def test_a_step_may_return_loss_item(case) -> None:
    """``return loss.item()`` ends PyTorch training steps; tg.compile raised TraceError on it
    (".item() reads the value of a traced tensor"). The compiled call now returns the
    number (a Python float, an int for an int tensor), eager's to float32 rounding, from
    one variant."""
    def run(compiled):
        tg.manual_seed(0)
        model = mlp()
        opt = tg.optim.SGD(model.parameters(), lr=0.1)

        def step(x, y):
            opt.zero_grad()
            out = model(x)
            loss = F.cross_entropy(out, y)
            loss.backward()
            opt.step()
            right = (out.argmax(1) == y).sum()
            return _ITEM_RESULTS[case](loss, right)

        f = tg.compile(step) if compiled else step
        results = [f(x, y) for x, y in batches((8,), [4] * 4)]
        return results, f

    eager, _ = run(False)
    compiled, f = run(True)
    assert f.cache_info().misses == 1
    for e, c in zip(eager, compiled):
        assert type(e) is type(c)
        flat_e = list(e.values()) if isinstance(e, dict) else e if isinstance(e, (tuple, list)) \
            else [e]
        flat_c = list(c.values()) if isinstance(c, dict) else c if isinstance(c, (tuple, list)) \
            else [c]
        assert [type(v) for v in flat_e] == [type(v) for v in flat_c]
        assert flat_c == pytest.approx(flat_e, rel=1e-6)


def item_used(t):
    v = (t * 2).sum().item()
    return t * v  # TRACE-item-used


class _Holder:
    pass


_HOLDER = _Holder()


def item_kept(t):
    loss = (t * 2).sum()
    _HOLDER.last = loss.item()  # TRACE-item-kept
    return loss


def test_an_item_used_or_kept_inside_raises_trace_error() -> None:
    """Anything but returning the number needs this call's value: using it raises
    TraceError where it is used; keeping it (an attribute) where it was made."""
    for fn, marker in ((item_used, "TRACE-item-used"), (item_kept, "TRACE-item-kept")):
        compiled = tg.compile(fn)
        compiled(tg.ones(2))  # eager
        with pytest.raises(tg.TraceError) as info:
            compiled(tg.ones(2))
        assert f"{HERE}:{_line_of(marker)}" in str(info.value), str(info.value)


_ITEM_AS_A_NUMBER = {
    "tg.full": lambda t, v: tg.full((2,), v),
    "fill_": lambda t, v: tg.zeros(2).fill_(v),
    "mul_": lambda t, v: t.clone().mul_(v),
    "tg.where": lambda t, v: tg.where(t > 0, t, v),
    "masked_fill": lambda t, v: t.masked_fill(t > 0, v),
    "scatter": lambda t, v: tg.zeros(2).scatter(0, tg.tensor([1]), v),
    "tg.pow": lambda t, v: tg.pow(t, v),
    "x.lt": lambda t, v: t.lt(v),
}


@pytest.mark.parametrize("case", sorted(_ITEM_AS_A_NUMBER))
def test_an_item_given_to_tracegrad_as_a_number_raises_trace_error(case) -> None:
    """A traced ``.item()`` handed to a tracegrad function that takes a number raised
    TypeError ("expected a number, got TracedItem"), and ``tg.pow(x, v)``/``x.lt(v)``
    returned NotImplemented as the compiled result; each is the TraceError of any other use."""
    use = _ITEM_AS_A_NUMBER[case]
    compiled = tg.compile(lambda t: use(t, t.sum().item()))
    x = tg.tensor([1.0, -2.0])
    np.testing.assert_array_equal(compiled(x).numpy(), use(x, -1.0).numpy())  # eager
    with pytest.raises(tg.TraceError, match="then used here"):
        compiled(x)


@pytest.mark.parametrize("name", ["pow", "add", "lt", "eq", "atan2"])
def test_a_named_binary_method_of_an_unknown_operand_raises_type_error(name) -> None:
    """``x.pow(obj)`` and ``tg.add(x, obj)`` returned NotImplemented (the operator's answer,
    which only Python's ``x ** obj`` turns into an error); PyTorch raises TypeError."""
    x = tg.ones(2)
    for call in (lambda: getattr(x, name)(object()), lambda: getattr(tg, name)(x, object())):
        with pytest.raises(TypeError, match="unsupported operand type"):
            call()
    with pytest.raises(TypeError):
        x ** object()


def test_failed_trace_leaves_the_model_and_optimizer_unchanged() -> None:
    tg.manual_seed(0)
    model = mlp()
    opt = tg.optim.Adam(model.parameters(), lr=0.1)

    @tg.compile
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if loss.item() > 0:  # TRACE-step
            return loss * 1.0
        return loss

    (x, y), = batches((8,), [4])
    step(x, y)  # eager: really trains one step
    params = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    grads = [p.grad.numpy().copy() for p in model.parameters()]
    state = opt.state_dict()
    with pytest.raises(tg.TraceError, match="TRACE-step"):
        step(x, y)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), params[k], err_msg=k)
    for p, g in zip(model.parameters(), grads):
        np.testing.assert_array_equal(p.grad.numpy(), g)
    after = opt.state_dict()
    assert _flat_numbers(after) == _flat_numbers(state)


def _flat_numbers(obj: Any) -> list:
    if isinstance(obj, tg.Tensor):
        return obj.numpy().ravel().tolist()
    if isinstance(obj, dict):
        return [(k, _flat_numbers(v)) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))]
    if isinstance(obj, (list, tuple)):
        return [_flat_numbers(v) for v in obj]
    return obj


# ------------------------------------------------------------------------------------------
# The generated source, and the three ways to compile


def test_source_is_readable_python() -> None:
    f = tg.compile(lambda x, y: (x @ y).relu().sum(dim=0), backend="numpy")
    with pytest.raises(RuntimeError, match="twice"):
        f.source()
    x, y = tg.randn(4, 3), tg.randn(3, 5)
    for _ in range(3):
        f(x, y)
    src = f.source()
    ast.parse(src)
    assert "def program(" in src and "out=" in src


def test_decorator_on_a_function() -> None:
    @tg.compile
    def poly(x, y):
        """A polynomial."""
        return (x * x + 3.0 * y).sum()

    assert poly.__name__ == "poly" and poly.__doc__ == "A polynomial."
    for k in range(4):
        x, y = tg.full((3,), float(k)), tg.ones(3)
        assert poly(x, y).item() == pytest.approx(3 * (k * k + 3))
    assert poly.cache_info().hits == 2

    @tg.compile(backend="numpy")
    def double(x):
        return x * 2.0

    for k in range(3):
        np.testing.assert_array_equal(double(tg.full((2,), float(k))).numpy(), [2.0 * k] * 2)


def test_decorator_on_a_method() -> None:
    class Scaler:
        def __init__(self, s):
            self.s = s

        @tg.compile
        def __call__(self, x):
            return x * self.s

    a = Scaler(2.0)
    for k in range(3):
        np.testing.assert_array_equal(a(tg.full((2,), float(k))).numpy(), [2.0 * k] * 2)


def test_compiled_module_forwards_attributes() -> None:
    tg.manual_seed(0)
    model = mlp()
    compiled = tg.compile(model)
    assert [id(p) for p in compiled.parameters()] == [id(p) for p in model.parameters()]
    assert compiled.state_dict().keys() == model.state_dict().keys()
    compiled.eval()
    assert not model.training
    compiled.train()
    assert model.training
    assert "Linear" in repr(compiled)
    x = tg.randn(5, 8)
    for _ in range(3):
        np.testing.assert_allclose(compiled(x).numpy(), model(x).numpy(), rtol=1e-6)
    # A method that returns the module returns the compiled module, as torch.compile's
    # (`model = tg.compile(model).eval()` gave back the plain module: no longer compiled).
    for chained in (compiled.eval(), compiled.train(), compiled.to(tg.float32),
                    compiled.requires_grad_(True), compiled.apply(lambda m: None)):
        assert chained is compiled
    assert compiled.state_dict().keys() == model.state_dict().keys()


def test_compiled_outputs_keep_their_structure() -> None:
    f = tg.compile(lambda x: {"double": x * 2.0, "pair": (x.sum(), [x.max(dim=0)]), "n": 3})
    x = tg.tensor([[1.0, 5.0], [4.0, 2.0]])
    for _ in range(3):
        out = f(x)
        assert out["n"] == 3
        np.testing.assert_array_equal(out["double"].numpy(), x.numpy() * 2)
        assert out["pair"][0].item() == 12.0
        np.testing.assert_array_equal(out["pair"][1][0].values.numpy(), [4.0, 5.0])
        np.testing.assert_array_equal(out["pair"][1][0].indices.numpy(), [1, 0])


def test_state_changes_inside_are_written_back() -> None:
    counter = tg.zeros(1)
    w = tg.tensor([1.0, 2.0], requires_grad=True)

    def step(x):
        counter.add_(1.0)  # a captured buffer changed in place
        loss = (w * x).sum()
        loss.backward()  # no zero_grad: gradients accumulate, as in eager
        return loss + counter

    f = tg.compile(step)
    for k in range(1, 5):
        assert f(tg.tensor([1.0, 1.0])).item() == 3.0 + k
    assert counter.item() == 4.0
    np.testing.assert_array_equal(w.grad.numpy(), [4.0, 4.0])


def test_arguments_in_lists_kwargs_and_several_outputs() -> None:
    f = tg.compile(lambda xs, *, s=1.0, y=None: (sum(xs[1:], xs[0]) * s + y, xs[0].exp()))
    for k in range(3):
        x0 = tg.tensor([0.0, float(k)], requires_grad=True)
        a, b = f([x0, tg.ones(2), tg.ones(2)], s=2.0, y=tg.full((2,), float(k)))
        np.testing.assert_allclose(a.numpy(), [4.0 + k, 4.0 + 3 * k])
        (a.sum() + b.sum()).backward()
        np.testing.assert_allclose(x0.grad.numpy(), [3.0, 2.0 + np.exp(k)], rtol=1e-6)
    assert f.cache_info().hits == 1


def test_backward_of_an_older_output_uses_its_own_saved_values() -> None:
    f = tg.compile(lambda x: (x * x).sum())
    f(tg.tensor([1.0]))
    x1, x2 = tg.tensor([1.0], requires_grad=True), tg.tensor([5.0], requires_grad=True)
    o1, o2 = f(x1), f(x2)
    o1.backward()
    o2.backward()
    assert (x1.grad.item(), x2.grad.item()) == (2.0, 10.0)


def test_dtype_change_retraces() -> None:
    f = tg.compile(lambda x: x * 2)
    for dtype in (tg.float32, tg.float32, tg.float64, tg.float64, tg.int64, tg.int64):
        out = f(tg.ones(2, dtype=dtype))
        assert out.dtype == dtype and out.numpy().tolist() == [2, 2]
    assert f.cache_info().misses == 3


# ------------------------------------------------------------------------------------------
# Known bugs


def test_backward_inside_writes_argument_grads() -> None:
    def step(x):
        (x * x).sum().backward()
        return x * 1.0

    f = tg.compile(step)
    for k in range(1, 4):
        x = tg.tensor([float(k), 2.0], requires_grad=True)
        f(x)
        assert x.grad is not None, f"call {k}"
        np.testing.assert_allclose(x.grad.numpy(), [2.0 * k, 4.0])


def test_a_returned_gradient_is_the_grad_tensor_or_a_copy_that_stays() -> None:
    # `return x.grad`: the .grad tensor itself when the call made it (x is new each call),
    # as in eager mode; a copy when the .grad of an earlier call was reused in place (w's),
    # so a gradient returned by one call never changes under the next.
    w = tg.tensor([1.0, 2.0], requires_grad=True)

    def step(x):
        w.grad = None
        loss = (x * w).sum()
        loss.backward()
        return loss, x.grad, w.grad

    f = tg.compile(step)
    returned = []
    for k in range(1, 5):
        x = tg.tensor([3.0, float(k)], requires_grad=True)
        loss, gx, gw = f(x)
        assert gx is x.grad, f"call {k}"
        assert loss.item() == 3.0 + 2.0 * k
        assert gx.tolist() == [1.0, 2.0] and gw.tolist() == w.grad.tolist() == [3.0, float(k)]
        returned.append(gw)
    assert [g.tolist() for g in returned] == [[3.0, float(k)] for k in range(1, 5)]


def test_a_grad_someone_holds_is_not_written_over() -> None:
    # The program writes new gradients into the old .grad's memory only when nobody else
    # holds it (then no one can tell); a .grad kept from an earlier step stays as it was.
    model = nn.Linear(3, 2)
    opt = tg.optim.SGD(model.parameters(), lr=0.1)
    run = tg.compile(train_step(model, opt))
    rng = np.random.default_rng(0)
    kept, values = [], []
    for k in range(5):
        run(tg.tensor(rng.standard_normal((4, 3)).astype(np.float32)))
        if k % 2:
            kept.append(model.weight.grad)
            values.append(model.weight.grad.numpy().copy())
    assert all(np.array_equal(g.numpy(), v) for g, v in zip(kept, values))
    assert kept[0] is not kept[1] and not np.array_equal(values[0], values[1])


def test_plain_values_returned_pass_through_and_shape_changes_still_retrace() -> None:
    # The entry of the last variant is tried first, without the cache key: it must check
    # the argument shapes itself, and a returned str is a result, not a failed guard.
    def f(x):
        x.add_(1.0)
        return "done", x.sum()

    g = tg.compile(f, dynamic=False)  # (a static variant per shape: see test_dynamic.py)
    for n in (3, 3, 3, 5, 5, 3):
        x = tg.zeros(n)
        word, total = g(x)
        assert word == "done" and total.item() == n and x.tolist() == [1.0] * n
    info = g.cache_info()
    assert info.variants == 2 and info.misses == 2 and info.hits == 3


def test_freezing_a_layer_between_calls_recompiles() -> None:
    x = tg.ones(1, 2)
    results = {}
    for mode in ("eager", "compiled"):
        tg.manual_seed(0)
        net = tg.nn.Sequential(tg.nn.Linear(2, 2), tg.nn.Linear(2, 1))
        opt = tg.optim.SGD(net.parameters(), lr=0.1)

        step = train_step(net, opt)
        run = tg.compile(step) if mode == "compiled" else step
        for _ in range(3):
            run(x)
        net[0].requires_grad_(False)
        for _ in range(3):
            run(x)
        assert net[0].weight.grad is None, mode
        results[mode] = [p.detach().numpy().copy() for p in net.parameters()]
    for a, b in zip(results["eager"], results["compiled"]):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert "requires_grad" in run.cache_info().reasons[-1]


SCALE = 2.0


def test_a_changed_global_or_closure_number_recompiles() -> None:
    global SCALE
    offset = 1.0

    def f(x):
        return x * SCALE + offset

    g = tg.compile(f)
    x = tg.ones(2)
    try:
        assert g(x).tolist() == g(x).tolist() == [3.0, 3.0]
        SCALE = 3.0
        assert g(x).tolist() == [4.0, 4.0]
        offset = -1.0  # noqa: F841  (read through the closure)
        assert g(x).tolist() == [2.0, 2.0]
    finally:
        SCALE = 2.0
    assert g.cache_info().variants == 3
    assert "global or closure variable" in g.cache_info().reasons[-1]


def test_inplace_change_of_an_argument_is_written_back() -> None:
    def bump(x):
        x.add_(1.0)
        return x * 1.0

    f = tg.compile(bump)
    for k in range(3):
        x = tg.zeros(2)
        np.testing.assert_array_equal(f(x).numpy(), [1.0, 1.0])
        np.testing.assert_array_equal(x.numpy(), [1.0, 1.0], err_msg=f"call {k + 1}")


def test_captured_non_leaf_tensor() -> None:
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    v = w * 2.0
    f = tg.compile(lambda x: (x * v).sum())
    for _ in range(3):
        w.grad = None
        out = f(tg.tensor([1.0, 3.0]))
        assert out.item() == 14.0
        out.backward(retain_graph=True)
        np.testing.assert_array_equal(w.grad.numpy(), [2.0, 6.0])


def test_scalar_values_compile_as_value_programs_not_silently_frozen():
    f = tg.compile(lambda a: a * a + 1)
    assert f(tg.Value(2.0)).data == 5.0  # the first call runs eagerly
    assert f(tg.Value(3.0)).data == 10.0  # a Value program (tests/test_compile_values.py)
    assert f(tg.Value(4.0)).data == 17.0 and f.cache_info().variants == 1
    with pytest.raises(tg.TraceError, match="scalar Value"):  # a Value from tensor code
        tg.trace(lambda x: tg.Value(float(x.shape[0])), tg.TensorSpec((2,)))


def test_a_changed_learning_rate_or_module_setting_recompiles():
    def make():
        tg.manual_seed(0)
        model = nn.Linear(3, 1)
        opt = tg.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
        return model, opt, tg.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)

    class Trainer:  # reached through `self`, as in a training class
        def __init__(self):
            self.model, self.opt, self.sched = make()
            self.scale = 1.0

        def step(self, x, y):
            self.opt.zero_grad()
            loss = ((self.model(x) * self.scale - y) ** 2).mean()
            loss.backward()
            self.opt.step()
            return loss

    eager, compiled = Trainer(), Trainer()
    cstep = tg.compile(compiled.step)
    rng = np.random.default_rng(0)
    for i in range(7):
        x = tg.tensor(rng.standard_normal((8, 3)).astype(np.float32))
        y = tg.tensor(rng.standard_normal((8, 1)).astype(np.float32))
        if i == 3:  # a step where the learning rate does not change
            eager.scale = compiled.scale = 2.0
        np.testing.assert_allclose(cstep(x, y).item(), eager.step(x, y).item(), rtol=1e-5)
        eager.sched.step()
        compiled.sched.step()
    for a, b in zip(eager.model.parameters(), compiled.model.parameters()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5)
    reasons = " ".join(cstep.cache_info().reasons)
    # the scheduler's float lr is an input of the program: only `scale` recompiled
    assert "attribute of a Trainer" in reasons and "hyper-parameter" not in reasons
    assert cstep.cache_info().misses == 2


@pytest.mark.parametrize("make_opt", [
    lambda ps, lr: tg.optim.SGD(ps, lr=lr, momentum=0.9),
    lambda ps, lr: tg.optim.Adam(ps, lr=lr),
    lambda ps, lr: tg.optim.AdamW(ps, lr=lr, weight_decay=0.1),
], ids=["sgd", "adam", "adamw"])
def test_a_tensor_learning_rate_follows_a_schedule_without_recompiling(make_opt):
    # As with torch.compile: a float lr is a constant of the program (a schedule recompiles
    # it at every change); a tensor lr is an input, changed in place by the scheduler.
    rng = np.random.default_rng(0)
    batches = [(tg.tensor(rng.standard_normal((8, 3)).astype(np.float32)),
                tg.tensor(rng.standard_normal((8, 1)).astype(np.float32))) for _ in range(12)]
    params = {}
    for mode, lr in (("eager", 0.1), ("compiled", tg.tensor(0.1))):
        tg.manual_seed(0)
        model = nn.Linear(3, 1)
        opt = make_opt(model.parameters(), lr)
        sched = tg.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=12)

        step = train_step(model, opt)
        run = tg.compile(step) if mode == "compiled" else step
        for x, y in batches:
            run(x, y)
            sched.step()
        params[mode] = [p.detach().numpy().copy() for p in model.parameters()]
        if mode == "compiled":
            assert run.cache_info().misses == 1 and opt.param_groups[0]["lr"] is lr
    for a, b in zip(params["eager"], params["compiled"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_a_float_learning_rate_schedule_never_recompiles_and_a_replaced_lr_retraces():
    model = nn.Linear(2, 1)
    opt = tg.optim.SGD(model.parameters(), lr=0.1)

    def step(x):
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()

    run = tg.compile(step)
    x = tg.ones(1, 2)
    for k in range(12):
        before = model.weight.detach().numpy().copy()
        opt.param_groups[0]["lr"] = 0.1 / (k + 1)
        run(x)
        if k:  # (the first call runs eagerly)
            np.testing.assert_allclose(model.weight.numpy(), before - 0.1 / (k + 1) * x.numpy(),
                                       rtol=1e-6)
    assert run.cache_info().misses == 1
    opt.param_groups[0]["lr"] = tg.tensor(0.07)
    run(x)
    run(x)
    opt.param_groups[0]["lr"] = tg.tensor(0.07)  # a new tensor object: read afresh
    before = model.weight.detach().numpy().copy()
    run(x)
    np.testing.assert_allclose(model.weight.numpy(), before - 0.07 * x.numpy(), rtol=1e-6)
    assert "replaced" in run.cache_info().reasons[-1]


def test_accumulating_into_a_grad_the_user_replaced_reads_the_new_one():
    # A step without zero_grad adds to .grad: the program reads the parameter's .grad of
    # each call, not the .grad tensor that existed while tracing.
    w = tg.tensor([1.0, 2.0], requires_grad=True)

    def step(x):
        (w * x).sum().backward()
        return w.grad.sum()

    results = {}
    for mode in ("eager", "compiled"):
        w.grad = None
        f = tg.compile(step) if mode == "compiled" else step
        out = []
        for k in range(4):
            if k == 2:
                w.grad = tg.tensor([100.0, 100.0])
            out.append(f(tg.ones(2)).item())
        results[mode] = (out, w.grad.tolist())
    assert results["compiled"] == results["eager"] == ([2.0, 4.0, 202.0, 204.0], [102.0, 102.0])


def test_compiled_grad_and_value_and_grad_read_each_calls_input():
    # tg.grad makes a fresh leaf of its argument: the tracer must see it as the argument,
    # or every compiled call would return the traced call's gradient.
    f = lambda x: (x * x * x).sum()  # noqa: E731
    dfdx = tg.compile(tg.grad(f))
    vg = tg.compile(tg.value_and_grad(lambda x, y: (x * y).sum() * x.sum(), argnums=(0, 1)))
    inner = tg.compile(lambda x: tg.grad(f)(x) * 2)
    for v in (1.0, 2.0, 3.0, 4.0):
        x, y = tg.tensor([v, -v]), tg.tensor([3.0, v])
        np.testing.assert_allclose(dfdx(x).numpy(), 3 * x.numpy() ** 2)
        np.testing.assert_allclose(inner(x).numpy(), 6 * x.numpy() ** 2)
        value, (gx, gy) = vg(x, y)
        xs, ys = x.numpy(), y.numpy()
        np.testing.assert_allclose(value.numpy(), (xs * ys).sum() * xs.sum())
        np.testing.assert_allclose(gx.numpy(), ys * xs.sum() + (xs * ys).sum())
        np.testing.assert_allclose(gy.numpy(), xs * xs.sum())
