"""Tensor methods that PyTorch has and tracegrad lacked: ``unfold``; the in-place shape
methods ``squeeze_``, ``unsqueeze_``, ``t_``, ``transpose_``, ``swapdims_``; ``detach_``;
``index_put(_)``; ``random_`` and ``bernoulli_``. Each against PyTorch 2.13 (values, dtypes,
shapes, gradients to second order, errors), against float64 finite differences where there
is a gradient, and compiled by `tg.compile` against eager mode.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_grads, compare_with_torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tracegrad as tg

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)


def _compiled_matches_eager(fn, *args) -> None:
    """``tg.compile(fn)`` gives eager's values on every call (the first runs eagerly, the
    next ones trace and then run the program), or raises tg.TraceError."""
    compiled = tg.compile(fn)
    want = fn(*args)
    for _ in range(3):
        got = compiled(*args)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)


# ---------------------------------------------------------------- unfold

UNFOLDS = [((5,), 0, 2, 1), ((6,), 0, 2, 2), ((5,), 0, 2, 3), ((3, 7, 2), 1, 3, 2),
           ((3, 7, 2), 1, 2, 3), ((3, 6, 2), -2, 2, 3), ((4,), 0, 0, 1), ((4,), 0, 4, 1),
           ((2, 3), 0, 2, 1), ((4, 5), -1, 5, 2), ((), 0, 1, 2), ((0, 3), 1, 2, 1)]


@pytest.mark.parametrize("shape,dim,size,step", UNFOLDS)
def test_unfold_matches_torch(shape, dim, size, step) -> None:
    x = RNG.standard_normal(shape)
    out = compare_with_torch(lambda t: t.unfold(dim, size, step),
                             lambda t: t.unfold(dim, size, step), x)
    assert out.shape == tuple(torch.tensor(x).unfold(dim, size, step).shape)


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(0, 6), min_size=1, max_size=3), data=st.data())
def test_unfold_matches_torch_on_drawn_shapes(shape, data) -> None:
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    size = data.draw(st.integers(0, shape[dim]))
    step = data.draw(st.integers(1, 7))
    x = RNG.standard_normal(shape)
    compare_with_torch(lambda t: t.unfold(dim, size, step),
                       lambda t: t.unfold(dim, size, step), x)
    ints = np.arange(int(np.prod(shape))).reshape(shape)
    np.testing.assert_array_equal(tg.tensor(ints).unfold(dim, size, step).numpy(),
                                  torch.tensor(ints).unfold(dim, size, step).numpy())


@pytest.mark.parametrize("shape,dim,size,step", [u for u in UNFOLDS if np.prod(u[0]) > 1])
def test_unfold_gradients_against_finite_differences(shape, dim, size, step) -> None:
    check_grads(lambda t: t.unfold(dim, size, step), RNG.standard_normal(shape))


def test_unfold_overlapping_windows_sum_their_gradients() -> None:
    x = tg.zeros(5, requires_grad=True)
    x.unfold(0, 3, 1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1, 2, 3, 2, 1])


def test_unfold_is_a_view_and_overlapping_windows_refuse_in_place_ops() -> None:
    x = tg.zeros(2, 6)
    x.unfold(1, 2, 3).add_(1)  # windows [0:2] and [3:5]: a view, as in PyTorch
    np.testing.assert_array_equal(x.numpy(), [[1, 1, 0, 1, 1, 0]] * 2)
    patches = x.unfold(1, 3, 3)
    patches[:, 1] = 7.0
    np.testing.assert_array_equal(x.numpy()[:, 3:], 7)
    y = tg.zeros(5)
    w = y.unfold(0, 2, 1)  # overlapping: a view that refuses writes, as PyTorch's
    assert np.shares_memory(w.numpy(), y.numpy())
    with pytest.raises(RuntimeError, match="overlap"):  # (PyTorch's result: [1, 2, 2, 2, 1],
        w.add_(1)  # its order of visiting the elements; NumPy's would be all ones)
    np.testing.assert_array_equal(y.numpy(), 0)
    y.add_(tg.arange(5.0))  # seen through the windows
    np.testing.assert_array_equal(w.numpy(), torch.arange(5.0).unfold(0, 2, 1).numpy())


def test_unfold_view_carries_gradients_of_an_in_place_change() -> None:
    a = tg.tensor([1.0, 2, 3, 4, 5, 6], requires_grad=True)
    b = a * 1
    b.unfold(0, 2, 3).mul_(tg.tensor([10.0, 100.0]))
    (b * tg.arange(6.0)).sum().backward()
    pa = torch.tensor([1.0, 2, 3, 4, 5, 6], requires_grad=True)
    pb = pa * 1
    pb.unfold(0, 2, 3).mul_(torch.tensor([10.0, 100.0]))
    (pb * torch.arange(6.0)).sum().backward()
    np.testing.assert_allclose(b.numpy(), pb.detach().numpy())
    np.testing.assert_allclose(a.grad.numpy(), pa.grad.numpy())


@pytest.mark.parametrize("call,error,words", [
    (lambda x: x.unfold(0, 6, 1), tg.ShapeError, ["unfold", "size 6", "(5,)"]),
    (lambda x: x.unfold(0, 2, 0), ValueError, ["unfold", "step is 0"]),
    (lambda x: x.unfold(0, 2, -1), ValueError, ["unfold", "step is -1"]),
    (lambda x: x.unfold(1, 2, 1), tg.ShapeError, ["unfold", "dim 1", "(5,)"]),
])
def test_unfold_errors_match_torch(call, error, words) -> None:
    with pytest.raises(RuntimeError if error is not tg.ShapeError else (RuntimeError,
                                                                       IndexError)):
        call(torch.arange(5.0))
    with pytest.raises(error) as info:
        call(tg.arange(5.0))
    assert all(w in str(info.value) for w in words), str(info.value)


def test_unfold_compiles() -> None:
    x = tg.tensor(RNG.standard_normal((3, 8)), requires_grad=True)
    _compiled_matches_eager(lambda t: (t.unfold(1, 3, 2) * 2).sum(-1), x)
    _compiled_matches_eager(lambda t: t.unfold(1, 4, 4).exp(), x)


def test_tg_nn_functional_unfold_is_not_this_one() -> None:
    # (PyTorch's F.unfold is im2col of a batch of images, tests/test_parity_spatial.py)
    assert tg.nn.functional.unfold(tg.ones(2, 3, 4, 5), 2).shape == (2, 12, 12)


# ---------------------------------------------------------------- in-place shape methods

SHAPE_METHODS = [
    ((3, 1, 2), lambda t: t.squeeze_()),
    ((3, 1, 2), lambda t: t.squeeze_(1)),
    ((3, 1, 1), lambda t: t.squeeze_((1, 2))),
    ((3, 2), lambda t: t.squeeze_(0)),
    ((3, 2), lambda t: t.unsqueeze_(1)),
    ((3, 2), lambda t: t.unsqueeze_(-1)),
    ((3, 2), lambda t: t.t_()),
    ((3,), lambda t: t.t_()),
    ((2, 3, 4), lambda t: t.transpose_(0, 2)),
    ((2, 3, 4), lambda t: t.swapdims_(1, -1)),
    ((2, 3, 4), lambda t: t.swapaxes_(0, 1)),
]


@pytest.mark.parametrize("shape,method", SHAPE_METHODS)
def test_shape_method_in_place_matches_torch(shape, method) -> None:
    x = RNG.standard_normal(shape)

    def run(t):  # on a non-leaf, as PyTorch allows; the same object comes back
        y = t * 1
        assert method(y) is y
        return y * y

    compare_with_torch(run, run, x)
    tx, px = tg.tensor(x), torch.tensor(x)
    method(tx), method(px)
    assert tx.shape == tuple(px.shape)
    np.testing.assert_array_equal(tx.numpy(), px.numpy())
    check_grads(run, x)


def test_shape_method_in_place_keeps_memory_and_counts_a_version() -> None:
    x = tg.zeros(3, 1)
    data = x.numpy()
    x.squeeze_()
    assert x.shape == (3,) and np.shares_memory(x.numpy(), data) and x._version == 1
    x.unsqueeze_(0).t_()
    assert x.shape == (3, 1) and x._version == 3


def test_shape_method_in_place_on_a_leaf_that_requires_grad_refuses() -> None:
    with pytest.raises(RuntimeError, match="leaf"):
        torch.ones(3, 1, requires_grad=True).squeeze_()
    x = tg.ones(3, 1, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"squeeze_: a leaf tensor that requires grad"):
        x.squeeze_()
    assert x.shape == (3, 1)
    with tg.no_grad():
        x.t_()  # (under no_grad, as PyTorch allows)
    assert x.shape == (1, 3) and x.requires_grad


def test_views_and_aliases_keep_their_elements_when_the_base_changes_shape() -> None:
    x = tg.zeros(3, 1)
    v, d = x[:, :], x.detach()
    x.squeeze_()
    assert v.shape == (3, 1) and d.shape == (3, 1)
    v.add_(1)
    d.add_(1)
    np.testing.assert_array_equal(x.numpy(), [2, 2, 2])
    x.unsqueeze_(0)
    x[0, 1] = 7.0
    np.testing.assert_array_equal(v.numpy()[:, 0], [2, 7, 2])
    y = tg.arange(6.0).reshape(2, 3)
    row = y[0]
    y.t_()
    row.mul_(10)
    np.testing.assert_array_equal(y.numpy(), [[0, 3], [10, 4], [20, 5]])


def test_view_of_a_base_whose_shape_changed_in_place_gives_torch_gradients() -> None:
    def run(lib, ones):
        b = ones(2, 1, requires_grad=True)
        c = b * 3
        v = c[:, 0]
        c.squeeze_()
        v.mul_(lib.tensor([1.0, 2.0]))
        (c * lib.tensor([5.0, 7.0])).sum().backward()
        return c.detach().numpy(), b.grad.numpy()

    for mine, theirs in zip(run(tg, tg.ones), run(torch, torch.ones)):
        np.testing.assert_allclose(mine, theirs)


@pytest.mark.parametrize("call,words", [
    (lambda x: x.t_(), ["t_", "(2, 3, 4)", "transpose_"]),
    (lambda x: x.transpose_(0, 5), ["transpose", "dim 5"]),
    (lambda x: x.squeeze_(5), ["squeeze", "dim 5"]),
    (lambda x: x.unsqueeze_(5), ["unsqueeze", "dim 5"]),
])
def test_shape_method_in_place_errors(call, words) -> None:
    with pytest.raises((RuntimeError, IndexError)):
        call(torch.ones(2, 3, 4))
    x = tg.ones(2, 3, 4)
    with pytest.raises(tg.ShapeError) as info:
        call(x)
    assert all(w in str(info.value) for w in words), str(info.value)
    assert x.shape == (2, 3, 4)


def test_shape_methods_in_place_compile() -> None:
    def f(x):
        y = x * 2
        y.unsqueeze_(0).squeeze_(0).t_()
        return y.transpose_(0, 1).exp()

    _compiled_matches_eager(f, tg.tensor(RNG.standard_normal((2, 3))))


def test_shape_method_in_place_on_an_argument_under_compile_raises_trace_error() -> None:
    def f(x):
        x.squeeze_()
        return x + 1

    compiled = tg.compile(f)
    np.testing.assert_array_equal(compiled(tg.ones(2, 1)).numpy(), [2, 2])  # (eager, 1st)
    with pytest.raises(tg.TraceError, match="squeeze_"):
        compiled(tg.ones(2, 1))


# ---------------------------------------------------------------- detach_


def test_detach_in_place_matches_torch() -> None:
    for lib in (tg, torch):
        a = lib.ones(3, requires_grad=True)
        b = a * 2
        assert b.detach_() is b
        assert not b.requires_grad and b.grad_fn is None if lib is torch else b._op is None
        a.detach_()  # a leaf may, too
        assert not a.requires_grad
        c = lib.ones(3, requires_grad=True) * 1
        e = c.exp()
        c.detach_()  # the graph recorded so far still works
        e.sum().backward()


def test_detach_in_place_of_a_view_refuses_as_in_torch() -> None:
    with pytest.raises(RuntimeError, match="Can't detach views in-place"):
        torch.ones(3)[:2].detach_()
    with pytest.raises(RuntimeError, match=r"detach_: a view \(shape \(2,\)\).*\.detach\(\)"):
        tg.ones(3)[:2].detach_()
    tg.ones(3, requires_grad=True).detach().detach_()  # (an alias is no view)


def test_detach_in_place_compiles_and_cuts_the_gradient() -> None:
    def f(x):
        y = x * 2
        y.detach_()
        return (y * x).sum()

    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    compiled = tg.compile(f)
    for _ in range(3):
        compiled(x).backward()
        np.testing.assert_array_equal(x.grad.numpy(), [2, 4, 6])  # y's branch cut off
        x.grad = None
    _compiled_matches_eager(f, x)


# ---------------------------------------------------------------- index_put(_)

I, J = np.array([0, 2, 0]), np.array([1, 1, 1])


@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("indices,values_shape", [
    ((I, J), (3,)), ((I,), (4,)), ((I,), ()), ((np.array([True, False, True]),), (2, 4)),
    ((np.array([[0], [2]]), np.array([1, 3])), (2, 2)),
])
def test_index_put_matches_torch(accumulate, indices, values_shape) -> None:
    x, v = RNG.standard_normal((3, 4)), RNG.standard_normal(values_shape)

    def run(lib):
        ix = tuple(lib.tensor(i) for i in indices)
        return (lambda a, b: a.index_put(ix, b, accumulate),
                lambda a, b: (a * 1).index_put_(ix, b, accumulate=accumulate))

    for mine, theirs in zip(run(tg), run(torch)):
        compare_with_torch(mine, theirs, x, v)
    if not accumulate and len(indices[0]) > 2 and indices[0].dtype != bool:
        return  # (a repeated index: the last write wins, which finite differences cannot see)
    check_grads(run(tg)[1], x, v)


def test_index_put_accumulate_sums_repeated_indices_and_leaves_the_input() -> None:
    x = tg.zeros(3)
    out = x.index_put((tg.tensor([0, 0, 2]),), tg.tensor(1.0), accumulate=True)
    np.testing.assert_array_equal(out.numpy(), [2, 0, 1])
    np.testing.assert_array_equal(x.numpy(), 0)
    assert x.index_put_((tg.tensor([1, 1]),), tg.tensor([3.0, 4.0]), True) is x
    np.testing.assert_array_equal(x.numpy(), [0, 7, 0])
    np.testing.assert_array_equal(tg.index_put(x, (tg.tensor([2]),), tg.tensor(5.0)).numpy(),
                                  [0, 7, 5])


@pytest.mark.parametrize("indices,values,error,words", [
    ((I,), np.array([1, 2, 3, 4]), TypeError, ["index_put", "int64", "float32"]),
    ((I,), np.array([1.0, 2.0], np.float32), tg.ShapeError, ["index_put", "(2,)", "(3, 4)"]),
    ((I, J), np.ones((1, 3), np.float32), tg.ShapeError, ["index_put", "(1, 3)", "(3,)"]),
    (I, np.float32(1), TypeError, ["index_put", "tuple of tensors"]),
    ((I.astype(np.float32),), np.float32(1), IndexError, ["index_put", "int or bool"]),
    ((I, J, J), np.float32(1), IndexError, ["index_put", "(3, 4)", "too many"]),
    ((I, np.array([1, 2])), np.float32(1), IndexError, ["index_put", "(3,), (2,)"]),
    ((np.array([5]),), np.float32(1), IndexError, ["index 5", "size 3"]),
])
def test_index_put_errors_match_torch(indices, values, error, words) -> None:
    def ix(lib):
        return lib.tensor(indices) if isinstance(indices, np.ndarray) else \
            tuple(lib.tensor(i) for i in indices)

    with pytest.raises((RuntimeError, IndexError, TypeError)):
        torch.zeros(3, 4).index_put_(ix(torch), torch.tensor(values))
    with pytest.raises(error) as info:
        tg.zeros(3, 4).index_put_(ix(tg), tg.tensor(values))
    assert all(w in str(info.value) for w in words), str(info.value)


def test_index_put_on_a_leaf_that_requires_grad_refuses() -> None:
    with pytest.raises(RuntimeError, match="leaf"):
        tg.ones(3, requires_grad=True).index_put_((tg.tensor([0]),), tg.tensor(1.0))


@pytest.mark.parametrize("accumulate", [False, True])
def test_index_put_compiles(accumulate) -> None:
    ix = (tg.tensor([0, 2, 0]), tg.tensor([1, 1, 3]))

    def f(x, v):
        y = x * 1
        y.index_put_(ix, v, accumulate=accumulate)
        return y.index_put(ix, v * 2, accumulate)

    _compiled_matches_eager(f, tg.tensor(RNG.standard_normal((3, 4))),
                            tg.tensor(RNG.standard_normal(3)))


# ---------------------------------------------------------------- random_ and bernoulli_


@pytest.mark.parametrize("dtype,args,low,high", [
    (tg.float32, (), 0, 2 ** 24), (tg.float64, (), 0, 2 ** 53), (tg.float32, (5,), 0, 4),
    (tg.float32, (3, 5), 3, 4), (tg.float32, (-3, 5), -3, 4), (tg.int64, (-3, 5), -3, 4),
    (tg.int32, (), 0, 2 ** 31 - 1), (tg.bool, (), 0, 1), (tg.float32, (3, None), 3, 2 ** 24),
    (tg.uint8, (), 0, 255),
])
def test_random_range_dtype_and_integers(dtype, args, low, high) -> None:
    x = tg.empty(4000, dtype=dtype)
    assert x.random_(*args) is x and x.dtype == dtype
    a = x.numpy().astype(np.float64)
    assert a.min() >= low and a.max() <= high and np.array_equal(a, np.round(a))
    if high - low < 10:  # every value comes up, each about equally often
        counts = np.bincount((a - low).astype(np.int64), minlength=high - low + 1)
        assert counts.min() > 4000 / (high - low + 1) * 0.8
    else:
        assert abs(a.mean() - (low + high) / 2) < 0.05 * (high - low)
    torch_x = torch.empty(4000, dtype=getattr(torch, str(np.dtype(dtype)))).random_(*args)
    t = torch_x.double().numpy()
    assert t.min() >= low and t.max() <= high


def test_random_to_keyword_and_errors_match_torch() -> None:
    a = tg.empty(1000).random_(to=3).numpy()
    assert set(np.unique(a)) == {0, 1, 2}
    for dtype, args, words in [("float32", (5, 3), ["'from' to be less than 'to'", "from=5"]),
                               ("uint8", (-3, 5), ["uint8", "-3"]),
                               ("bool", (0, 3), ["bool", "[0, 3)"])]:
        with pytest.raises(RuntimeError):
            torch.empty(3, dtype=getattr(torch, dtype)).random_(*args)
        with pytest.raises(RuntimeError) as info:
            tg.empty(3, dtype=getattr(tg, dtype)).random_(*args)
        assert all(w in str(info.value) for w in words), str(info.value)


@pytest.mark.parametrize("dtype,p", [(tg.float32, 0.5), (tg.float64, 0.2), (tg.int64, 0.9),
                                     (tg.bool, 0.3), (tg.float32, 0.0), (tg.float32, 1.0)])
def test_bernoulli_values_dtype_and_mean(dtype, p) -> None:
    x = tg.empty(20000, dtype=dtype)
    assert x.bernoulli_(p) is x and x.dtype == dtype
    a = x.numpy().astype(np.float64)
    assert set(np.unique(a)) <= {0.0, 1.0}
    assert abs(a.mean() - p) < 0.02
    assert tg.empty(3).bernoulli_().dtype == tg.float32


def test_bernoulli_with_a_tensor_of_probabilities_and_errors() -> None:
    p = tg.tensor([0.0, 1.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(tg.empty(2, 5).bernoulli_(p).numpy(),
                                  torch.empty(2, 5).bernoulli_(torch.tensor(p.numpy())).numpy())
    for bad, words in [(1.5, ["p=1.5", "[0, 1]"]), (-0.1, ["p=-0.1"]),
                       (tg.tensor([0.0, 1.5, 0.0, 1.0, 1.0]), ["[0, 1]", "1.5"]),
                       (tg.tensor([0.0, 1.0, 0.0]), ["(3,)", "(5,)"])]:
        with pytest.raises(RuntimeError):
            torch.empty(5).bernoulli_(torch.tensor(bad.numpy()) if isinstance(bad, tg.Tensor)
                                      else bad)
        with pytest.raises(RuntimeError) as info:
            tg.empty(5).bernoulli_(bad)
        assert all(w in str(info.value) for w in words), str(info.value)


@pytest.mark.parametrize("fill", [lambda t: t.random_(0, 1000), lambda t: t.bernoulli_(0.5)],
                         ids=["random_", "bernoulli_"])
def test_random_fills_are_reproducible_under_manual_seed(fill) -> None:
    tg.manual_seed(3)
    first = fill(tg.empty(100)).numpy().copy()
    second = fill(tg.empty(100)).numpy().copy()
    tg.manual_seed(3)
    np.testing.assert_array_equal(fill(tg.empty(100)).numpy(), first)
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("fill", [lambda t: t.random_(0, 1000), lambda t: t.bernoulli_(0.5)],
                         ids=["random_", "bernoulli_"])
def test_random_fills_compiled_give_eagers_numbers_for_the_same_seed(fill) -> None:
    def f(x):
        y = x * 1
        fill(y)
        return y + x

    compiled = tg.compile(f)
    x = tg.ones(50)
    for _ in range(3):
        tg.manual_seed(1)
        want = f(x).numpy()
        tg.manual_seed(1)
        np.testing.assert_array_equal(compiled(x).numpy(), want)


def test_random_fill_on_a_leaf_that_requires_grad_refuses() -> None:
    for fill in (lambda t: t.random_(), lambda t: t.bernoulli_()):
        with pytest.raises(RuntimeError, match="leaf"):
            fill(torch.ones(3, requires_grad=True))
        with pytest.raises(RuntimeError, match="leaf"):
            fill(tg.ones(3, requires_grad=True))


def test_forward_mode_through_unfold_and_in_place_shape_methods() -> None:
    def f(x):
        y = x * 1
        y.unsqueeze_(0).t_()
        return y.unfold(0, 2, 1).sin()

    x, t = RNG.standard_normal(4), RNG.standard_normal(4)
    _, tangent = tg.jvp(f, (tg.tensor(x),), (tg.tensor(t),))
    eps = 1e-6
    fd = (f(tg.tensor(x + eps * t)).numpy() - f(tg.tensor(x - eps * t)).numpy()) / (2 * eps)
    np.testing.assert_allclose(tangent.numpy(), fd, atol=1e-8)
    np.testing.assert_allclose(tg.jacfwd(f)(tg.tensor(x)).numpy(),
                               tg.jacrev(f)(tg.tensor(x)).numpy(), atol=1e-12)


@pytest.mark.parametrize("fill", ["random_", "bernoulli_", "uniform_", "normal_"])
def test_random_fill_of_a_result_that_requires_grad_gives_a_zero_gradient_as_torch(fill):
    for lib in (tg, torch):
        x = lib.ones(3, requires_grad=True)
        y = x * 2
        getattr(y, fill)()
        assert y.requires_grad
        (y * 1).sum().backward()
        np.testing.assert_array_equal(np.asarray(x.grad.tolist()), [0, 0, 0])


def test_views_of_a_tensor_whose_shape_changed_in_place_compile() -> None:
    def f(x):
        y = x * 1
        v = y[0]
        y.unsqueeze_(0)
        v.mul_(tg.tensor([1.0, 2.0, 3.0]))  # through the view: y changes too
        y.squeeze_(0).t_()
        v.add_(1)
        return (y * y).sum()

    x = tg.tensor(RNG.standard_normal((2, 3)), requires_grad=True)
    want = f(x)
    want.backward()
    grad, x.grad = x.grad.numpy().copy(), None
    compiled = tg.compile(f)
    for _ in range(3):
        got = compiled(x)
        got.backward()
        np.testing.assert_allclose(got.item(), want.item(), rtol=1e-12)
        np.testing.assert_allclose(x.grad.numpy(), grad, rtol=1e-12)
        x.grad = None
    px = torch.tensor(x.numpy(), requires_grad=True)
    py = px * 1
    pv = py[0]
    py.unsqueeze_(0)
    pv.mul_(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    py.squeeze_(0).t_()
    pv.add_(1)
    (py * py).sum().backward()
    np.testing.assert_allclose(grad, px.grad.numpy(), rtol=1e-12)
