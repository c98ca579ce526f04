"""Strided views (the ``as_strided`` primitive, `views.strided`): ``as_strided``, the diagonals
of batches of sliced or permuted matrices, overlapping ``unfold`` windows, and the layout
methods (``stride``, ``storage_offset``, ``is_contiguous``). Each against PyTorch 2.13: the
values, that writes pass both ways between the view and its tensor, gradients (also against
float64 finite differences), and compiled against eager.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_grads, compare_with_torch
from helpers import strided_layouts
from hypothesis import given, settings
from hypothesis import strategies as st

import tracegrad as tg

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)

# Views whose planes do not flatten without a copy: (name, function for tg and torch alike)
VIEWS = {
    "sliced": lambda t: t[:, 1:, 1:],
    "stepped": lambda t: t[::2, :, ::2],
    "permuted": lambda t: t.permute(2, 0, 1),
    "transposed-sliced": lambda t: t.transpose(1, 2)[1:],
}


@pytest.mark.parametrize("view", list(VIEWS))
@pytest.mark.parametrize("offset,dim1,dim2", [(0, 1, 2), (1, -1, -2), (-1, 0, 2), (0, 2, 0)])
def test_a_diagonal_of_a_batch_of_planes_is_a_view_as_in_pytorch(view, offset, dim1, dim2):
    def run(lib):
        x = lib.tensor(np.arange(60.0).reshape(3, 4, 5))
        d = VIEWS[view](x).diagonal(offset, dim1, dim2)
        before = d.numpy().copy()
        d.mul_(-1)  # reaches x
        x.add_(0.5)  # seen through d
        return before, x.numpy().copy(), d.numpy().copy()

    for mine, theirs in zip(run(tg), run(torch)):
        np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("view", list(VIEWS))
def test_gradients_through_a_written_diagonal_view_match_pytorch(view):
    w0 = RNG.standard_normal((3, 4, 5))

    def run(lib):
        w = lib.tensor(w0, requires_grad=True)
        s = lib.tensor(2.5, dtype=lib.float64, requires_grad=True)
        y = w * 1.0
        VIEWS[view](y).diagonal(0, -2, -1).mul_(s)
        (y * y).sum().backward()
        return y.detach().numpy(), w.grad.numpy(), s.grad.numpy()

    for mine, theirs in zip(run(tg), run(torch)):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12)


@pytest.mark.parametrize("view", list(VIEWS))
def test_diagonal_of_a_batch_of_planes_differentiates_to_second_order(view):
    compare_with_torch(lambda t: VIEWS[view](t).diagonal(1, -2, -1) ** 2,
                       lambda t: VIEWS[view](t).diagonal(1, -2, -1) ** 2,
                       RNG.standard_normal((3, 4, 5)))


# ---------------------------------------------------------------- unfold's overlapping windows


@pytest.mark.parametrize("shape,dim,size,step", [((7,), 0, 3, 1), ((3, 8, 2), 1, 4, 2),
                                                 ((4, 5), -1, 3, 1), ((2, 9), 1, 5, 3)])
def test_overlapping_windows_are_a_read_only_view(shape, dim, size, step):
    x = tg.tensor(RNG.standard_normal(shape))
    w = x.unfold(dim, size, step)
    np.testing.assert_array_equal(
        w.numpy(), torch.tensor(x.numpy()).unfold(dim, size, step).numpy())
    assert np.shares_memory(w.numpy(), x.numpy())
    x.mul_(2)  # seen through the windows
    np.testing.assert_array_equal(
        w.numpy(), torch.tensor(x.numpy()).unfold(dim, size, step).numpy())
    before = x.numpy().copy()
    for write in (lambda t: t.add_(1), lambda t: t.copy_(t * 2)):
        with pytest.raises(RuntimeError, match="overlap"):
            write(w)
    np.testing.assert_array_equal(x.numpy(), before)  # (the refused writes changed nothing)
    # One value per location whatever the order (as PyTorch allows): fill_, zero_,
    # masked_fill_, and assigning to a window, which does not overlap itself
    for write in (lambda t: t.fill_(3.0), lambda t: t.masked_fill_(t > 0.5, -1.0),
                  lambda t: t.__setitem__(0, 1.0), lambda t: t.zero_()):
        y, expected = tg.tensor(before), torch.tensor(before)
        write(y.unfold(dim, size, step))
        write(expected.unfold(dim, size, step))
        np.testing.assert_array_equal(y.numpy(), expected.numpy())
    check_grads(lambda t: t.unfold(dim, size, step) ** 2, RNG.standard_normal(shape))


def test_a_refused_write_on_overlapping_windows_leaves_the_graph_usable():
    a = tg.arange(6.0, requires_grad=True)
    b = a * 2
    w = b.unfold(0, 3, 1)
    with pytest.raises(RuntimeError, match="overlap"):
        w.mul_(3)
    (w * w).sum().backward()
    t = torch.arange(6.0, requires_grad=True)
    tw = (t * 2).unfold(0, 3, 1)
    (tw * tw).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy())


# ---------------------------------------------------------------- as_strided


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_as_strided_matches_pytorch_on_drawn_layouts(data):
    n, size, stride, offset = strided_layouts(data.draw, 30)
    x = RNG.standard_normal(n)
    compare_with_torch(lambda t: t.as_strided(size, stride, offset) * 3,
                       lambda t: t.as_strided(size, stride, offset) * 3, x)


def test_as_strided_counts_from_the_base_memory_as_pytorch():
    x = np.arange(24.0).reshape(4, 6)
    for f in (lambda t: t[1:, 2:].as_strided((2, 3), (6, 1)),
              lambda t: t[1:].as_strided((3,), (7,), 2),
              lambda t: t.T.as_strided((4, 2), (1, 6)),
              lambda t: tg.as_strided(t, (3, 2), (2, 1), 5) if isinstance(t, tg.Tensor)
              else torch.as_strided(t, (3, 2), (2, 1), 5)):
        np.testing.assert_array_equal(f(tg.tensor(x)).numpy(), f(torch.tensor(x)).numpy())


def test_as_strided_windows_sum_their_gradients_and_second_order():
    check_grads(lambda t: t.as_strided((4, 3), (1, 1)).prod(dim=1), RNG.standard_normal(6))
    compare_with_torch(lambda t: t.as_strided((4, 3), (2, 1), 1).prod(dim=1),
                       lambda t: t.as_strided((4, 3), (2, 1), 1).prod(dim=1),
                       RNG.standard_normal(10))


def test_as_strided_forward_mode_matches_reverse_mode():
    x = tg.tensor(RNG.standard_normal(9))

    def f(t):
        return (t.as_strided((3, 4), (2, 1), 1) ** 2).sum(dim=0)

    np.testing.assert_allclose(tg.jacfwd(f)(x).numpy(), tg.jacrev(f)(x).numpy(), rtol=1e-12)


@pytest.mark.parametrize("call,error,words", [
    (lambda t: t.as_strided((3, 3), (4, 4)), tg.ShapeError,
     ["as_strided", "(3, 3)", "(4, 4)", "12 elements"]),
    (lambda t: t.as_strided((2,), (-1,), 5), ValueError, ["negative", "(-1,)"]),
    (lambda t: t.as_strided((2, 2), (1,)), tg.ShapeError, ["one stride per dimension"]),
    (lambda t: t.as_strided((2,), (1,), -1), ValueError, ["storage_offset", "-1"]),
])
def test_as_strided_errors(call, error, words):
    with pytest.raises(RuntimeError):
        call(torch.arange(12.0).reshape(3, 4))
    with pytest.raises(error) as info:
        call(tg.arange(12.0).reshape(3, 4))
    for w in words:
        assert w in str(info.value)


def test_as_strided_of_a_strided_numpy_array_asks_for_contiguous():
    x = tg.from_numpy(np.arange(12.0).reshape(3, 4)[:, ::2])
    with pytest.raises(RuntimeError, match="contiguous"):
        x.as_strided((2,), (1,))
    c = x.contiguous()  # (its rows were evenly spaced in memory: contiguous() was a view)
    assert c.is_contiguous() and not np.shares_memory(c.numpy(), x.numpy())
    np.testing.assert_array_equal(c.as_strided((2,), (2,)).numpy(), [0.0, 4.0])


# ---------------------------------------------------------------- the layout methods


@pytest.mark.parametrize("f", [lambda t: t, lambda t: t.T, lambda t: t[1:, ::2],
                               lambda t: t[:, 1], lambda t: t.reshape(2, 6)[1],
                               lambda t: t.permute(1, 0)[2:], lambda t: t.diagonal(),
                               lambda t: t.reshape(-1).unfold(0, 4, 2)])
def test_stride_storage_offset_and_is_contiguous_match_pytorch(f):
    x = np.arange(12.0).reshape(3, 4)
    mine, theirs = f(tg.tensor(x)), f(torch.tensor(x))
    assert mine.stride() == theirs.stride()
    assert mine.stride(-1) == theirs.stride(-1)
    assert mine.storage_offset() == theirs.storage_offset()
    assert mine.is_contiguous() == theirs.is_contiguous()
    assert mine.nbytes == theirs.nbytes and mine.itemsize == theirs.itemsize
    base = f(tg.tensor(x))
    assert base.data_ptr() == base.numpy().__array_interface__["data"][0]


# ---------------------------------------------------------------- compiled


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_compiled_writes_through_strided_views_match_eager(backend):
    def f(a, s):
        b = a * 1.0
        b[:, 1:, 1:].diagonal(dim1=1, dim2=2).mul_(s)
        windows = b.reshape(-1).unfold(0, 4, 2)
        strided = a.as_strided((5, 3), (3, 2), 1)
        return (b * b).sum() + (windows ** 2).sum() + strided.sum(), b

    compiled = tg.compile(f, backend=backend)
    for k in range(3):
        a0 = np.random.default_rng(k).standard_normal((3, 4, 4))
        got = []
        for fn in (f, compiled):
            a, s = tg.tensor(a0, requires_grad=True), tg.tensor(1.5, dtype=tg.float64,
                                                                 requires_grad=True)
            total, b = fn(a, s)
            total.backward()
            got.append((total.item(), b.numpy(), a.grad.numpy(), s.grad.item()))
        (t0, b0, ga0, gs0), (t1, b1, ga1, gs1) = got
        np.testing.assert_allclose(t1, t0, rtol=1e-12)
        np.testing.assert_allclose(b1, b0, rtol=1e-12)
        np.testing.assert_allclose(ga1, ga0, rtol=1e-12)
        np.testing.assert_allclose(gs1, gs0, rtol=1e-12)


def test_compiled_in_place_on_overlapping_windows_raises_as_eager():
    def f(a):
        a.unfold(0, 3, 1).mul_(2)
        return a

    with pytest.raises(RuntimeError, match="overlap"):
        f(tg.arange(5.0))
    compiled = tg.compile(f)
    for _ in range(3):
        with pytest.raises(RuntimeError, match="overlap"):
            compiled(tg.arange(5.0))


# ---------------------------------------------------------------- writes into expanded tensors

_ONE_VALUE_WRITES = {  # (one value for each memory location whichever element it goes through)
    "fill_": lambda t: t.fill_(2.5), "zero_": lambda t: t.zero_(),
    "masked_fill_": lambda t: t.masked_fill_(t > 4, -1.0),
    "a part": lambda t: t.__setitem__((0, slice(1, 3)), 7.0),
    "a part that overlaps": lambda t: t.__setitem__((slice(None), 1), 7.0),
}


@pytest.mark.parametrize("write", sorted(_ONE_VALUE_WRITES))
def test_one_value_writes_into_an_expanded_tensor_reach_its_base(write):
    """fill_, zero_, masked_fill_ and assigning a number wrote nothing: an expanded tensor
    refused every in-place op. They write one value per location, as PyTorch's fill_ does
    (PyTorch itself refuses ``e[:, 1] = 7`` here; its ``e[:, 1].fill_(7)`` runs)."""
    results = []
    for lib in (tg, torch):
        y = lib.tensor(np.arange(12.0).reshape(3, 4))
        e = y.unsqueeze(0).expand(2, 3, 4)
        if write == "a part that overlaps" and lib is torch:
            e[:, 1].fill_(7.0)
        else:
            _ONE_VALUE_WRITES[write](e)
        results.append(y.numpy().copy())
    np.testing.assert_array_equal(*results)


def test_the_gradient_through_a_masked_fill_of_an_expanded_tensor_counts_each_location_once():
    """Each location was written once per element that shares it, so the gradient of what it
    kept counted twice (PyTorch refuses this backward)."""
    x = tg.tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    y = x * 1.0
    y.unsqueeze(0).expand(2, 3, 4).masked_fill_(y.unsqueeze(0) > 3, 2.0)
    w = np.arange(12.0).reshape(3, 4) + 1
    (y * tg.tensor(w)).sum().backward()
    np.testing.assert_array_equal(y.numpy().ravel(), [0, 1, 2, 3] + [2.0] * 8)
    np.testing.assert_array_equal(x.grad.numpy(), np.where(np.arange(12).reshape(3, 4) > 3,
                                                           0.0, w))


def test_writes_that_read_an_expanded_tensor_are_refused():
    e = tg.tensor(np.arange(12.0).reshape(3, 4)).unsqueeze(0).expand(2, 3, 4)
    for write in (lambda t: t.add_(1), lambda t: t.copy_(t * 2),
                  lambda t: t.__setitem__((slice(None), 1), tg.ones(2, 4))):
        with pytest.raises(RuntimeError, match="same memory location"):
            write(e)


def test_the_diagonal_of_a_detached_expanded_tensor_is_a_view():
    """It was a copy: writes into the base did not show in it."""
    y = tg.tensor(np.arange(12.0).reshape(4, 3))
    d = y.unsqueeze(0).expand(2, 4, 3).detach().diagonal()
    y[1, 0] = 100.0
    expected = torch.tensor(y.numpy()).unsqueeze(0).expand(2, 4, 3).diagonal()
    np.testing.assert_array_equal(d.numpy(), expected.numpy())
    assert np.shares_memory(d.numpy(), y.numpy())
