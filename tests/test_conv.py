"""Convolution and pooling: conv1d, conv2d, max_pool2d, avg_pool2d, nn.Conv1d, nn.Conv2d.

Values, gradients and second-order gradients (the gradient of a sum of gradients) against
PyTorch in float64, on shapes, strides, paddings, dilations and groups drawn by hypothesis;
the compiled training step of a conv net against eager; PyTorch state dicts and init; the
errors; and that no gradient goes through an index-array scatter (``np.add.at``).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tracegrad as tg
import tracegrad.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

SOME = settings(max_examples=15, deadline=None)


# ------------------------------------------------------------------------------------------
# The check: value, VJP and second-order VJP against PyTorch, float64


def _grads(lib, fn: Callable, arrays: Sequence[np.ndarray], v: np.ndarray,
           u: Sequence[np.ndarray]) -> tuple[np.ndarray, list, list]:
    """``fn``'s value; the gradients of ``sum(fn(xs) * v)``; and the gradients of
    ``sum_i sum(grad_i * u_i)`` (second order), in ``lib`` (tracegrad or torch)."""
    if lib is torch:
        xs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
        out = fn(*xs)
        first = torch.autograd.grad((out * torch.tensor(v)).sum(), xs, create_graph=True,
                                    allow_unused=True)
        total = sum((g * torch.tensor(w)).sum() for g, w in zip(first, u) if g is not None)
        second = torch.autograd.grad(total, xs, allow_unused=True) if total.requires_grad \
            else [None] * len(xs)
        as_np = lambda t: np.zeros(a.shape) if t is None else t.detach().numpy()  # noqa: E731
    else:  # tg.grad (JAX's): the gradient of the first-order gradients for the second
        xs = [tg.tensor(a, dtype=tg.float64, requires_grad=True) for a in arrays]
        out = fn(*xs)
        argnums = tuple(range(len(xs)))
        vt, ut = tg.tensor(v), [tg.tensor(w) for w in u]
        grad1 = tg.grad(lambda *ts: (fn(*ts) * vt).sum(), argnums=argnums)

        def total(*ts):
            gs = grad1(*ts)
            acc = (gs[0] * ut[0]).sum()
            for g, w in zip(gs[1:], ut[1:]):
                acc = acc + (g * w).sum()
            return acc

        first = grad1(*xs)
        second = tg.grad(total, argnums=argnums)(*xs)
        as_np = lambda t: t.numpy()  # noqa: E731
    value = out.detach().numpy()
    firsts, seconds = [], []
    for a, g, h in zip(arrays, first, second):
        firsts.append(np.zeros(a.shape) if g is None else as_np(g))
        seconds.append(np.zeros(a.shape) if h is None else as_np(h))
    return value, firsts, seconds


def check_with_torch(tg_fn: Callable, torch_fn: Callable, *arrays: np.ndarray,
                     seed: int = 0, second_order: bool = True) -> np.ndarray:
    """Assert tracegrad == PyTorch (float64) for the value and both orders of gradients;
    returns the value."""
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        shape = torch_fn(*[torch.tensor(a) for a in arrays]).shape
    v = rng.standard_normal(tuple(shape))
    u = [rng.standard_normal(a.shape) for a in arrays]
    ours = _grads(tg, tg_fn, arrays, v, u)
    theirs = _grads(torch, torch_fn, arrays, v, u)
    assert ours[0].shape == theirs[0].shape
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-10, atol=1e-10)
    for i, (a, b) in enumerate(zip(ours[1], theirs[1])):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10, err_msg=f"grad {i}")
    if second_order:
        for i, (a, b) in enumerate(zip(ours[2], theirs[2])):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10, err_msg=f"grad-grad {i}")
    return ours[0]


# ------------------------------------------------------------------------------------------
# conv1d / conv2d on drawn configurations


@st.composite
def conv_cases(draw, nd: int):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    depthwise = draw(st.booleans()) and groups > 1
    if depthwise:  # one input channel per group
        c_in = groups
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    mode = draw(st.sampled_from(["int", "tuple", "same", "valid"]))
    stride = (1,) * nd if mode == "same" else tuple(draw(st.integers(1, 3)) for _ in range(nd))
    if mode == "int":
        padding = draw(st.integers(0, 2))
        pads = (padding,) * nd
    elif mode == "tuple":
        pads = padding = tuple(draw(st.integers(0, 2)) for _ in range(nd))
    else:
        padding, pads = mode, (0,) * nd
    size = tuple(max(1, d * (k - 1) + 1 - 2 * p) + draw(st.integers(0, 4))
                 for k, d, p in zip(kernel, dilation, pads))
    n = draw(st.integers(1, 2))
    bias = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    return dict(n=n, c_in=c_in, c_out=c_out, kernel=kernel, size=size, groups=groups,
                args=dict(stride=stride, padding=padding, dilation=dilation, groups=groups),
                bias=bias, seed=seed)


def _run_conv(case: dict, tg_conv: Callable, torch_conv: Callable) -> np.ndarray:
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["n"], case["c_in"]) + case["size"])
    w = rng.standard_normal((case["c_out"], case["c_in"] // case["groups"]) + case["kernel"])
    args = case["args"]
    if case["bias"]:
        b = rng.standard_normal(case["c_out"])
        return check_with_torch(lambda x, w, b: tg_conv(x, w, b, **args),
                                lambda x, w, b: torch_conv(x, w, b, **args), x, w, b,
                                seed=case["seed"])
    return check_with_torch(lambda x, w: tg_conv(x, w, **args),
                            lambda x, w: torch_conv(x, w, **args), x, w, seed=case["seed"])


@SOME
@given(conv_cases(2))
def test_conv2d_matches_torch_to_second_order(case):
    out = _run_conv(case, F.conv2d, TF.conv2d)
    assert out.shape[:2] == (case["n"], case["c_out"])


@SOME
@given(conv_cases(1))
def test_conv1d_matches_torch_to_second_order(case):
    out = _run_conv(case, F.conv1d, TF.conv1d)
    assert out.shape[:2] == (case["n"], case["c_out"])


@pytest.mark.parametrize("kernel,dilation", [((2, 4), (1, 1)), ((4, 3), (2, 1)), ((2, 2), (3, 2))])
def test_conv2d_same_padding_with_even_kernels_pads_as_torch(kernel, dilation):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3) + kernel)
    out = check_with_torch(lambda x, w: F.conv2d(x, w, padding="same", dilation=dilation),
                           lambda x, w: TF.conv2d(x, w, padding="same", dilation=dilation),
                           x, w)
    assert out.shape == (2, 4, 7, 6)


def test_depthwise_conv2d_stride_2():
    rng = np.random.default_rng(2)
    x, w, b = (rng.standard_normal((2, 6, 9, 8)), rng.standard_normal((12, 1, 3, 3)),
               rng.standard_normal(12))
    out = check_with_torch(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=6),
                           lambda x, w, b: TF.conv2d(x, w, b, stride=2, padding=1, groups=6),
                           x, w, b)
    assert out.shape == (2, 12, 5, 4)


def test_unbatched_input_as_torch():
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((3, 6, 5)), rng.standard_normal((2, 3, 2, 2))
    out = check_with_torch(lambda x, w: F.conv2d(x, w, padding=1),
                           lambda x, w: TF.conv2d(x, w, padding=1), x, w)
    assert out.shape == (2, 7, 6)
    x1, w1 = rng.standard_normal((3, 9)), rng.standard_normal((4, 3, 3))
    assert check_with_torch(lambda x, w: F.conv1d(x, w, stride=2),
                            lambda x, w: TF.conv1d(x, w, stride=2), x1, w1).shape == (4, 4)


def test_conv2d_float32_values():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    ours = F.conv2d(tg.tensor(x), tg.tensor(w), padding=1, stride=(1, 2))
    assert ours.dtype == tg.float32
    theirs = TF.conv2d(torch.tensor(x), torch.tensor(w), padding=1, stride=(1, 2))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------
# pooling


@st.composite
def pool_cases(draw, dilated: bool, nd: int = 2):
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd)) if dilated else (1,) * nd
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)  # PyTorch's limit
    size = tuple(max(1, d * (k - 1) + 1 - 2 * p) + draw(st.integers(0, 4))
                 for k, d, p in zip(kernel, dilation, padding))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + size
    return dict(shape=shape, kernel=kernel, stride=stride, padding=padding,
                dilation=dilation, seed=draw(st.integers(0, 2**16)))


@SOME
@given(pool_cases(dilated=True))
def test_max_pool2d_matches_torch(case):
    x = np.random.default_rng(case["seed"]).standard_normal(case["shape"])
    args = (case["kernel"], case["stride"], case["padding"], case["dilation"])
    # A dilated window can hold only padding: its maximum is -inf, and PyTorch sends its
    # gradient to an element outside the window (its first index, clipped); we send none.
    assume(np.isfinite(TF.max_pool2d(torch.tensor(x), *args).numpy()).all())
    out = check_with_torch(lambda t: F.max_pool2d(t, *args), lambda t: TF.max_pool2d(t, *args),
                           x, seed=case["seed"])
    assert np.isfinite(out).all()


@SOME
@given(pool_cases(dilated=False), st.booleans(), st.sampled_from([None, 3]))
def test_avg_pool2d_matches_torch(case, count_include_pad, divisor):
    x = np.random.default_rng(case["seed"]).standard_normal(case["shape"])
    k, s, p = case["kernel"], case["stride"], case["padding"]
    out = check_with_torch(
        lambda t: F.avg_pool2d(t, k, s, p, count_include_pad=count_include_pad,
                               divisor_override=divisor),
        lambda t: TF.avg_pool2d(t, k, s, p, count_include_pad=count_include_pad,
                                divisor_override=divisor), x, seed=case["seed"])
    assert np.isfinite(out).all()


@SOME
@given(pool_cases(dilated=True, nd=1))
def test_max_pool1d_matches_torch(case):
    x = np.random.default_rng(case["seed"]).standard_normal(case["shape"])
    args = (case["kernel"], case["stride"], case["padding"], case["dilation"])
    assume(np.isfinite(TF.max_pool1d(torch.tensor(x), *args).numpy()).all())  # (as 2-d)
    check_with_torch(lambda t: F.max_pool1d(t, *args), lambda t: TF.max_pool1d(t, *args),
                     x, seed=case["seed"])
    unbatched = x[0]
    np.testing.assert_array_equal(F.max_pool1d(tg.tensor(unbatched), *args).numpy(),
                                  TF.max_pool1d(torch.tensor(unbatched), *args).numpy())


@SOME
@given(pool_cases(dilated=False, nd=1), st.booleans())
def test_avg_pool1d_matches_torch(case, count_include_pad):
    x = np.random.default_rng(case["seed"]).standard_normal(case["shape"])
    k, s, p = case["kernel"], case["stride"], case["padding"]
    check_with_torch(
        lambda t: F.avg_pool1d(t, k, s, p, count_include_pad=count_include_pad),
        lambda t: TF.avg_pool1d(t, k, s, p, count_include_pad=count_include_pad), x,
        seed=case["seed"])


@SOME
@given(conv_cases(3))
def test_conv3d_matches_torch_to_second_order(case):
    out = _run_conv(case, F.conv3d, TF.conv3d)
    assert out.shape[:2] == (case["n"], case["c_out"])


@SOME
@given(pool_cases(dilated=True, nd=3))
def test_max_pool3d_matches_torch(case):
    x = np.random.default_rng(case["seed"]).standard_normal(case["shape"])
    args = (case["kernel"], case["stride"], case["padding"], case["dilation"])
    assume(np.isfinite(TF.max_pool3d(torch.tensor(x), *args).numpy()).all())  # (as 2-d)
    check_with_torch(lambda t: F.max_pool3d(t, *args), lambda t: TF.max_pool3d(t, *args),
                     x, seed=case["seed"])


@SOME
@given(pool_cases(dilated=False, nd=3), st.booleans(), st.sampled_from([None, 3]))
def test_avg_pool3d_matches_torch(case, count_include_pad, divisor):
    x = np.random.default_rng(case["seed"]).standard_normal(case["shape"])
    k, s, p = case["kernel"], case["stride"], case["padding"]
    # PyTorch's avg_pool3d (only) refuses an input smaller than the kernel before padding
    assume(all(n >= kv for n, kv in zip(case["shape"][2:], k)))
    check_with_torch(
        lambda t: F.avg_pool3d(t, k, s, p, count_include_pad=count_include_pad,
                               divisor_override=divisor),
        lambda t: TF.avg_pool3d(t, k, s, p, count_include_pad=count_include_pad,
                                divisor_override=divisor), x, seed=case["seed"])


def test_pool1d_modules_print_and_agree_as_torch():
    x = np.random.default_rng(0).standard_normal((2, 3, 9))
    for make in (lambda nn: nn.MaxPool1d(3, 2, 1), lambda nn: nn.AvgPool1d(2),
                 lambda nn: nn.AvgPool1d(3, 1, 1, count_include_pad=False)):
        ours, theirs = make(tg.nn), make(torch.nn)
        assert repr(ours) == repr(theirs)
        np.testing.assert_allclose(ours(tg.tensor(x)).numpy(),
                                   theirs(torch.tensor(x)).numpy(), rtol=1e-12)


def test_max_pool2d_ties_nan_and_inf_values_as_torch():
    x = np.array([[[[1.0, 1.0, 2.0, np.nan],
                    [0.0, 1.0, 2.0, 2.0],
                    [np.inf, 0.0, -np.inf, -np.inf],
                    [3.0, 3.0, -np.inf, -np.inf]]]])
    ours = F.max_pool2d(tg.tensor(x, dtype=tg.float64), 2).numpy()
    theirs = TF.max_pool2d(torch.tensor(x), 2).numpy()
    np.testing.assert_array_equal(ours, theirs)  # nan, inf and -inf where torch has them
    # ties: the gradient goes to the first maximum of each window, as PyTorch's
    t = tg.tensor(np.array([[[[1.0, 1.0, 5.0, 5.0], [1.0, 1.0, 5.0, 5.0]]]]), requires_grad=True)
    F.max_pool2d(t, 2, padding=(0, 1)).sum().backward()
    tt = torch.tensor(t.numpy(), requires_grad=True)
    TF.max_pool2d(tt, 2, padding=(0, 1)).sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), tt.grad.numpy())


def test_max_pool2d_padding_is_minus_infinity():
    x = -np.abs(np.random.default_rng(5).standard_normal((1, 2, 5, 5))) - 1  # all < 0
    out = check_with_torch(lambda t: F.max_pool2d(t, 3, 2, 1),
                           lambda t: TF.max_pool2d(t, 3, 2, 1), x)
    assert (out < 0).all()


# ------------------------------------------------------------------------------------------
# no scatter with index arrays in the gradients (that is np.add.at)


def test_conv_and_pool_gradients_use_no_index_arrays():
    x = tg.randn(2, 2, 6, 6, requires_grad=True)
    w = tg.randn(4, 2, 3, 3, requires_grad=True)

    def step(x, w):
        y = F.avg_pool2d(F.max_pool2d(F.conv2d(x, w, padding=1).relu(), 2), 3, 1, 1)
        y.sum().backward()
        return x.grad, w.grad

    graph = tg.trace(step, x, w)
    ops = [n.op for n in graph.nodes]
    # The windows of the conv and the two pools, and their adjoints in the backward.
    assert ops.count("im2col") == 3 and ops.count("col2im") == 3
    for node in graph.nodes:
        if node.op in ("getitem", "scatter_add"):
            assert len(node.inputs) == 1, node  # a basic index: no index-array operand


# ------------------------------------------------------------------------------------------
# modules: PyTorch's arguments, parameter shapes, init, state dicts


@pytest.mark.parametrize("make", [
    lambda nn: nn.Conv2d(4, 6, 3, padding="same", groups=2),
    lambda nn: nn.Conv2d(3, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2),
                         bias=False),
    lambda nn: nn.Conv2d(4, 4, 3, groups=4, padding="valid"),
    lambda nn: nn.Conv1d(3, 4, 3, padding="same", dilation=2),
    lambda nn: nn.Conv1d(4, 6, 2, stride=2, padding=1, groups=2),
], ids=["conv2d-same-groups", "conv2d-rect", "conv2d-depthwise", "conv1d-same",
        "conv1d-groups"])
def test_modules_load_torch_state_dicts_and_agree(make):
    theirs = make(torch.nn).double()
    ours = make(tg.nn).double()
    assert repr(ours) == repr(theirs)
    state = {k: tg.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in state.items()}
    ours.load_state_dict(state)
    nd = len(theirs.kernel_size)
    x = np.random.default_rng(6).standard_normal((2, theirs.in_channels) + (9,) * nd)
    expected = theirs(torch.tensor(x)).detach().numpy()
    got = ours(tg.tensor(x, dtype=tg.float64)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_conv_init_is_torch_default():
    tg.manual_seed(0)
    conv = tg.nn.Conv2d(16, 32, 3)
    bound = 1 / math.sqrt(16 * 9)  # kaiming_uniform(a=sqrt(5)) and the bias: U(+-1/sqrt(fan_in))
    w, b = conv.weight.numpy(), conv.bias.numpy()
    assert w.shape == (32, 16, 3, 3) and b.shape == (32,) and w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.95 * bound  # spread over the whole interval
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    assert tg.nn.Conv1d(4, 8, 5, groups=2).weight.shape == (8, 2, 5)


# ------------------------------------------------------------------------------------------
# compiled == eager on a conv net's training step


class ConvNet(tg.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = tg.nn.Conv2d(2, 4, 3, padding="same")
        self.conv2 = tg.nn.Conv2d(4, 8, (3, 2), stride=(1, 2), padding=1, groups=2)
        self.pool = tg.nn.MaxPool2d(2)
        self.seq = tg.nn.Conv1d(8, 6, 3, padding=1, dilation=1)
        self.head = tg.nn.Linear(6 * 4, 3)

    def forward(self, x):
        x = self.pool(self.conv1(x).relu())  # (N, 4, 4, 4)
        # (N, 8, 4, 3) -> (N, 8, 5, 4)
        x = F.avg_pool2d(self.conv2(x).relu(), 2, 1, 1, count_include_pad=False)
        x = self.seq(x.mean(2))  # (N, 6, 4)
        return self.head(x.flatten(1))


def _train(compiled: bool, steps: int = 3):
    tg.manual_seed(0)
    model = ConvNet()
    opt = tg.optim.Adam(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(7)
    data = [(tg.tensor(rng.standard_normal((5, 2, 8, 8)).astype(np.float32)),
             tg.tensor(rng.integers(0, 3, 5))) for _ in range(steps)]

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    fn = tg.compile(step) if compiled else step
    losses = [fn(x, y).item() for x, y in data]
    return losses, {k: v.numpy().copy() for k, v in model.state_dict().items()}


def test_compiled_conv_net_step_equals_eager():
    eager_losses, eager_state = _train(False)
    compiled_losses, compiled_state = _train(True)
    assert len(set(eager_losses)) == 3  # the model learns: three different losses
    np.testing.assert_allclose(compiled_losses, eager_losses, rtol=1e-5)
    for k in eager_state:
        np.testing.assert_allclose(compiled_state[k], eager_state[k], rtol=1e-4, atol=1e-6,
                                   err_msg=k)


# ------------------------------------------------------------------------------------------
# errors name the op, the shapes and the fix


def _z(*shape):
    return tg.zeros(*shape)


@pytest.mark.parametrize("call,error,words", [
    (lambda: F.conv2d(_z(1, 4, 5, 5), _z(6, 2, 3, 3)), tg.ShapeError,
     ["conv2d", "(1, 4, 5, 5)", "(6, 2, 3, 3)", "groups=1", "groups=2"]),
    (lambda: F.conv2d(_z(1, 4, 5, 5), _z(6, 2, 3, 3), groups=0), ValueError,
     ["conv2d", "groups", "positive"]),
    (lambda: F.conv2d(_z(1, 4, 5, 5), _z(5, 2, 3, 3), groups=2), tg.ShapeError,
     ["conv2d", "C_out=5", "groups=2"]),
    (lambda: F.conv1d(_z(1, 2, 5), _z(3, 2, 3), stride=2, padding="same"), ValueError,
     ["conv1d", "same", "stride"]),
    (lambda: F.conv2d(_z(1, 2, 5, 5), _z(3, 2, 3, 3), padding="full"), ValueError,
     ["conv2d", "'full'", "same"]),
    (lambda: F.conv2d(_z(1, 2, 2, 2), _z(3, 2, 3, 3)), tg.ShapeError,
     ["conv2d", "smaller than the kernel", "padding"]),
    (lambda: F.conv2d(_z(1, 2, 5, 5), _z(3, 2, 3, 3), stride=(1, 2, 3)), ValueError,
     ["conv2d", "stride", "2 ints"]),
    (lambda: F.conv2d(_z(1, 2, 5, 5), _z(3, 2, 3, 3), _z(4)), tg.ShapeError,
     ["conv2d", "bias", "(3,)"]),
    (lambda: F.conv2d(_z(1, 2, 5, 5), tg.zeros(3, 2, 3, 3, dtype=tg.float64)), TypeError,
     ["conv2d", "float32", "float64", "cast"]),
    (lambda: F.max_pool2d(_z(1, 1, 4, 4), 2, padding=2), ValueError,
     ["max_pool2d", "padding", "half"]),
    (lambda: tg.nn.Conv2d(4, 6, 3, groups=4), ValueError, ["Conv2d", "groups=4", "divisible"]),
    (lambda: tg.nn.Conv1d(4, 6, 3, padding_mode="symmetric"), ValueError,
     ["Conv1d", "padding_mode", "reflect"]),
    (lambda: tg.nn.ConvTranspose2d(4, 6, 3, padding_mode="reflect"), ValueError,
     ["ConvTranspose2d", "padding_mode='zeros'", "transposed"]),
])
def test_errors_name_the_op_the_shapes_and_the_fix(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value), (word, str(info.value))
