"""Tests of `tracegrad.Tensor` as a PyTorch user meets it: creation, dtypes, properties,
printing, indexing, movement, reductions and shape errors.

Values are compared with NumPy (the data model) and with PyTorch (the interface) when it is
installed. Autograd semantics (backward, grad modes, in-place, higher order, anomaly
detection, memory) live in test_autograd.py.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tracegrad as tg

SETTINGS = settings(max_examples=40, deadline=None)


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def torch_dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")


# --------------------------------------------------------------------------------------
# Creation


@pytest.mark.parametrize(
    "data, dtype",
    [
        ([1.0, 2.0], tg.float32),
        (3.5, tg.float32),
        ([[1.0, 2.0], [3.0, 4.0]], tg.float32),
        ([1, 2.5], tg.float32),
        ([1, 2], tg.int64),
        (7, tg.int64),
        ([True, False], tg.bool),
        (True, tg.bool),
        ([True, 2], tg.int64),
    ],
)
def test_tensor_infers_dtype_like_pytorch(data, dtype, torch):
    t = tg.tensor(data)
    assert t.dtype == dtype
    assert torch_dtype_name(torch.tensor(data).dtype) == str(t.dtype)
    np.testing.assert_array_equal(t.numpy(), np.array(data))


@pytest.mark.parametrize("np_dtype", [np.float64, np.float32, np.float16, np.int32, np.int64,
                                      np.int8, np.uint8, np.bool_])
def test_tensor_from_numpy_array_keeps_dtype(np_dtype):
    arr = np.array([1, 0, 1], dtype=np_dtype)
    t = tg.tensor(arr)
    assert t.dtype == np_dtype
    np.testing.assert_array_equal(t.numpy(), arr)


def test_tensor_copies_but_from_numpy_shares_memory():
    arr = np.array([1.0, 2.0, 3.0])
    copied = tg.tensor(arr)
    shared = tg.from_numpy(arr)
    arr[0] = 10.0
    assert copied.tolist() == [1.0, 2.0, 3.0]
    assert shared.tolist() == [10.0, 2.0, 3.0]
    assert shared.dtype == tg.float64
    assert np.shares_memory(shared.numpy(), arr)
    shared.data[1] = 20.0  # writes through, both ways
    assert arr[1] == 20.0


def test_from_numpy_rejects_lists():
    with pytest.raises(TypeError, match="ndarray"):
        tg.from_numpy([1.0, 2.0])


@pytest.mark.parametrize(
    "data, dtype, expected",
    [
        ([1, 2], tg.float64, tg.float64),
        ([1.7, 2.2], tg.int32, tg.int32),
        ([1.0, 0.0], tg.bool, tg.bool),
        (np.array([1, 2]), tg.float32, tg.float32),
        ([1, 2], "float64", tg.float64),
        ([1, 2], float, tg.float32),
    ],
)
def test_dtype_argument_overrides(data, dtype, expected):
    t = tg.tensor(data, dtype=dtype)
    assert t.dtype == expected
    np.testing.assert_array_equal(t.numpy(), np.asarray(data).astype(expected))


def test_ragged_lists_raise_value_error():
    with pytest.raises(ValueError, match="ragged"):
        tg.tensor([[1.0, 2.0], [3.0]])


@pytest.mark.parametrize(
    "data",
    [["a", "b"], [object()], None, {"a": 1}, [1.0, None], [[1, 2], [3, "x"]],
     np.array(["a"]), np.array([1, 2], dtype=object), np.array([1 + 2j])],
    ids=["strings", "object", "None", "dict", "list-with-None", "mixed-str", "str-array",
         "object-array", "complex-array"],
)
def test_non_numeric_data_raises_type_error_never_object_array(data):
    with pytest.raises(TypeError, match="tensor"):
        tg.tensor(data)


def test_requires_grad_on_int_tensor_is_a_clear_type_error():
    with pytest.raises(TypeError, match=r"only float tensors can require gradients.*int64"):
        tg.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="float"):
        tg.tensor([True], requires_grad=True)
    with pytest.raises(TypeError, match="float"):
        tg.arange(3).requires_grad_()
    assert tg.tensor([1, 2], dtype=tg.float64, requires_grad=True).requires_grad


@pytest.mark.parametrize("make", [tg.zeros, tg.ones])
def test_zeros_ones_shapes_and_dtypes(make):
    fill = 0.0 if make is tg.zeros else 1.0
    for args in [(2, 3), ((2, 3),), ([2, 3],)]:
        t = make(*args)
        assert t.shape == (2, 3) and t.dtype == tg.float32
        assert t.tolist() == [[fill] * 3] * 2
    assert make(()).shape == ()
    assert make(0).shape == (0,)
    assert make(2, dtype=tg.int64).dtype == tg.int64
    assert make(2, requires_grad=True).requires_grad


def test_full_infers_dtype_from_fill_value(torch):
    for value in [3, 3.0, True]:
        t = tg.full((2, 2), value)
        assert str(t.dtype) == torch_dtype_name(torch.full((2, 2), value).dtype)
        assert t.tolist() == [[value] * 2] * 2
    assert tg.full(3, 2.5).tolist() == [2.5, 2.5, 2.5]
    assert tg.full((2,), 1, dtype=tg.float64).dtype == tg.float64


def test_arange_matches_torch(torch):
    for args in [(5,), (2, 7), (0, 1, 0.25), (5.0,), (10, 0, -3), (-1.5, 1.5, 0.5)]:
        t, r = tg.arange(*args), torch.arange(*args)
        assert str(t.dtype) == torch_dtype_name(r.dtype), args
        np.testing.assert_allclose(t.numpy(), r.numpy())
    assert tg.arange(3, dtype=tg.float64).dtype == tg.float64


def test_linspace_eye_zeros_like(torch):
    np.testing.assert_allclose(tg.linspace(0, 1, 5).numpy(), torch.linspace(0, 1, 5).numpy())
    assert tg.linspace(0, 1, 5).dtype == tg.float32
    np.testing.assert_array_equal(tg.eye(3).numpy(), np.eye(3, dtype=np.float32))
    np.testing.assert_array_equal(tg.eye(2, 3).numpy(), torch.eye(2, 3).numpy())
    x = tg.tensor([[1, 2, 3]])
    z = tg.zeros_like(x)
    assert z.shape == (1, 3) and z.dtype == tg.int64 and z.tolist() == [[0, 0, 0]]
    assert tg.zeros_like(x, dtype=tg.float32).dtype == tg.float32
    o = tg.ones_like(tg.tensor([1.0, 2.0]))
    assert o.tolist() == [1.0, 1.0] and o.dtype == tg.float32


def test_random_creation_is_seeded_and_in_range():
    tg.manual_seed(123)
    a, b, c = tg.rand(3, 4), tg.randn(5), tg.randint(0, 10, (50,))
    tg.manual_seed(123)
    a2, b2, c2 = tg.rand(3, 4), tg.randn(5), tg.randint(0, 10, (50,))
    np.testing.assert_array_equal(a.numpy(), a2.numpy())
    np.testing.assert_array_equal(b.numpy(), b2.numpy())
    np.testing.assert_array_equal(c.numpy(), c2.numpy())
    assert a.dtype == b.dtype == tg.float32 and c.dtype == tg.int64
    assert a.shape == (3, 4) and b.shape == (5,) and c.shape == (50,)
    assert 0 <= a.numpy().min() and a.numpy().max() < 1
    assert 0 <= c.numpy().min() and c.numpy().max() < 10
    assert not np.array_equal(tg.rand(3, 4).numpy(), a.numpy())  # the stream moves on
    tg.manual_seed(124)
    assert not np.array_equal(tg.rand(3, 4).numpy(), a.numpy())
    assert tg.randn(2, 2, dtype=tg.float64, requires_grad=True).requires_grad
    assert tg.randint(5, size=(2, 2)).shape == (2, 2)


def test_randn_statistics():
    tg.manual_seed(0)
    x = tg.randn(20000).numpy()
    assert abs(x.mean()) < 0.05 and abs(x.std() - 1) < 0.05


# --------------------------------------------------------------------------------------
# dtype promotion (PyTorch's table)

PROMO_DTYPES = ["bool", "uint8", "int8", "int32", "int64", "float16", "float32", "float64"]
PROMO_OPS = {
    "add": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "lt": lambda a, b: a < b,
    "eq": lambda a, b: a == b,
}


def _pairs():
    for d1, d2 in itertools.product(PROMO_DTYPES, PROMO_DTYPES):
        if {d1, d2} == {"uint8", "int8"}:
            continue  # PyTorch gives int16, which tracegrad does not support
        yield d1, d2


@pytest.mark.parametrize("op", sorted(PROMO_OPS))
def test_tensor_tensor_promotion_matches_torch(op, torch):
    fn = PROMO_OPS[op]
    for d1, d2 in _pairs():
        a = np.array([1, 0, 1], dtype=d1)
        b = np.array([1, 1, 1], dtype=d2)
        got = fn(tg.tensor(a), tg.tensor(b))
        want = fn(torch.tensor(a), torch.tensor(b))
        assert str(got.dtype) == torch_dtype_name(want.dtype), (op, d1, d2)
        np.testing.assert_allclose(got.numpy().astype(float), want.numpy().astype(float))


def test_sub_and_maximum_where_promotion_match_torch(torch):
    for d1, d2 in _pairs():
        a = np.array([2, 0, 1], dtype=d1)
        b = np.array([1, 1, 0], dtype=d2)
        ta, tb = torch.tensor(a), torch.tensor(b)
        x, y = tg.tensor(a), tg.tensor(b)
        assert str(tg.maximum(x, y).dtype) == torch_dtype_name(torch.maximum(ta, tb).dtype)
        cond = np.array([True, False, True])
        w = tg.where(tg.tensor(cond), x, y)
        tw = torch.where(torch.tensor(cond), ta, tb)
        assert str(w.dtype) == torch_dtype_name(tw.dtype), (d1, d2)
        np.testing.assert_array_equal(w.numpy(), tw.numpy())
        if "bool" not in (d1, d2):  # PyTorch refuses bool subtraction
            assert str((x - y).dtype) == torch_dtype_name((ta - tb).dtype), (d1, d2)


@pytest.mark.parametrize("scalar", [True, 2, 2.5])
@pytest.mark.parametrize("op", ["add", "mul", "div", "lt"])
def test_tensor_scalar_promotion_matches_torch(op, scalar, torch):
    fn = PROMO_OPS[op]
    for d in PROMO_DTYPES:
        a = np.array([1, 2, 1]).astype(d)
        for reverse in (False, True):
            got = fn(scalar, tg.tensor(a)) if reverse else fn(tg.tensor(a), scalar)
            want = fn(scalar, torch.tensor(a)) if reverse else fn(torch.tensor(a), scalar)
            assert str(got.dtype) == torch_dtype_name(want.dtype), (op, d, scalar, reverse)
            np.testing.assert_allclose(
                got.numpy().astype(float), want.numpy().astype(float), rtol=1e-3
            )


def test_promotion_examples_from_design():
    f32 = tg.tensor([1.0, 2.0])
    assert (f32 * 2.5).dtype == tg.float32
    assert (f32 + tg.tensor([1.0], dtype=tg.float64)).dtype == tg.float64
    assert (tg.tensor([1, 2]) * 1.5).dtype == tg.float32
    assert (tg.tensor([1, 2]) * 1.5).tolist() == [1.5, 3.0]
    assert (tg.tensor([1, 2]) + tg.tensor([0.5])).dtype == tg.float32
    assert (tg.tensor([1, 2], dtype=tg.int32) + 7).dtype == tg.int32
    assert (tg.tensor([True, False]) + 1).tolist() == [2, 1]
    # true division of ints is float32, as in PyTorch
    q = tg.tensor([1, 2]) / tg.tensor([2, 4])
    assert q.dtype == tg.float32 and q.tolist() == [0.5, 0.5]
    assert (tg.tensor([3]) / 2).tolist() == [1.5]
    assert (3 / tg.tensor([2])).tolist() == [1.5]
    assert tg.tensor([1, 2]).exp().dtype == tg.float32
    assert (tg.tensor([1, 2]) == tg.tensor([1.0, 3.0])).tolist() == [True, False]


# --------------------------------------------------------------------------------------
# Properties and conversion


def test_basic_properties():
    x = tg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    assert x.shape == (2, 3) and x.ndim == 2 and x.numel() == 6 and x.dim() == 2
    assert x.size() == (2, 3) and x.size(1) == 3 and x.size(-1) == 3
    assert x.dtype == tg.float32 and x.dtype == np.float32 and x.dtype == np.dtype("float32")
    assert x.T.shape == (3, 2) and x.T.tolist() == [[1, 4], [2, 5], [3, 6]]
    assert tg.zeros(2, 3, 4).T.shape == (4, 3, 2)
    assert x.is_leaf and not (x * 2).is_leaf
    assert x.requires_grad and not tg.tensor([1.0]).requires_grad
    assert tg.float64 == np.float64 and tg.int64 == np.int64 and tg.bool == np.bool_


def test_numpy_works_with_requires_grad_and_shares_data():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    arr = x.numpy()
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float32
    np.testing.assert_array_equal(arr, [1.0, 2.0])
    np.testing.assert_array_equal(x.detach().numpy(), [1.0, 2.0])
    assert np.shares_memory(x.detach().numpy(), arr)


def test_array_protocol():
    x = tg.tensor([[1.0, 2.0]], requires_grad=True)
    a = np.asarray(x)
    assert isinstance(a, np.ndarray) and a.shape == (1, 2) and a.dtype == np.float32
    assert np.asarray(x, dtype=np.float64).dtype == np.float64
    assert np.array(x).tolist() == [[1.0, 2.0]]


def test_item_tolist_float_int():
    assert tg.tensor(2.5).item() == 2.5 and isinstance(tg.tensor(2.5).item(), float)
    assert tg.tensor([[7]]).item() == 7 and isinstance(tg.tensor([[7]]).item(), int)
    assert tg.tensor(True).item() is True
    with pytest.raises(ValueError, match=r"one-element.*\(2,\)"):
        tg.tensor([1.0, 2.0]).item()
    assert tg.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert tg.tensor(1.5).tolist() == 1.5
    assert float(tg.tensor([2.5])) == 2.5
    assert int(tg.tensor(3.7)) == 3
    assert [10, 20, 30][tg.tensor(1)] == 20  # __index__
    with pytest.raises(TypeError):
        [10, 20][tg.tensor(1.0)]
    with pytest.raises(ValueError):
        float(tg.tensor([1.0, 2.0]))


def test_len_and_iteration():
    x = tg.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], requires_grad=True)
    assert len(x) == 3
    rows = list(x)
    assert len(rows) == 3 and all(isinstance(r, tg.Tensor) for r in rows)
    assert [r.tolist() for r in rows] == [[1, 2], [3, 4], [5, 6]]
    sum(r.sum() * (i + 1) for i, r in enumerate(rows)).backward()
    assert x.grad.tolist() == [[1, 1], [2, 2], [3, 3]]
    with pytest.raises(TypeError, match="0-d"):
        len(tg.tensor(1.0))
    with pytest.raises(TypeError, match="0-d"):
        list(tg.tensor(1.0))


def test_bool_of_tensors():
    assert bool(tg.tensor([1.0])) and not bool(tg.tensor(0.0))
    assert bool(tg.tensor([[3]]))
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(tg.tensor([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="ambiguous"):
        if tg.tensor([1.0, 2.0]) > 0:  # the `if` itself must raise
            pytest.fail("a two-element tensor was taken as a truth value")


def test_grad_is_none_until_backward_and_settable():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    assert x.grad is None
    (x * x).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]
    assert isinstance(x.grad, tg.Tensor) and x.grad.dtype == tg.float32
    x.grad = None
    assert x.grad is None
    x.grad = tg.tensor([1.0, 1.0])
    (x * 3).sum().backward()
    assert x.grad.tolist() == [4.0, 4.0]


def test_grad_assignment_of_wrong_shape_raises():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises((RuntimeError, ValueError)):
        x.grad = tg.tensor([1.0, 1.0, 1.0])


def test_dtype_conversions():
    x = tg.tensor([1.7, -2.2])
    assert x.double().dtype == tg.float64 and x.long().tolist() == [1, -2]
    assert x.int().dtype == tg.int32 and x.bool().tolist() == [True, True]
    assert x.to(tg.float64).dtype == tg.float64 and x.to(tg.float32) is x
    assert tg.tensor([1, 2]).float().dtype == tg.float32
    with pytest.raises(TypeError, match="dtype"):
        x.to(np.complex64)


def test_numpy_scalar_on_the_left_keeps_a_tensor():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = np.float64(2.0) * x
    assert isinstance(y, tg.Tensor) and y.requires_grad


def test_numpy_scalar_on_the_right_keeps_a_tensor():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * np.float64(2.0) + np.int64(1)
    assert isinstance(y, tg.Tensor) and y.requires_grad
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


# --------------------------------------------------------------------------------------
# Printing


def _torch_repr(t) -> str:
    return re.sub(r"Backward\d+", "Backward", repr(t).replace("torch.", ""))


REPR_CASES = [
    ([1.0, 2.0], {}),
    ([1.5, 2.25], {}),
    ([[1.0, 2.0], [3.0, 4.0]], {}),
    (3.5, {}),
    (2.0, {}),
    ([1, 2], {}),
    ([-1.5, 2.0], {}),
    ([0.1, 0.2, 0.3], {}),
    ([1.2345678, 100.0], {}),
    ([1.0, 2.0], {"requires_grad": True}),
    ([1.0, 2.0], {"dtype": "float64"}),
    ([1, 2], {"dtype": "int32"}),
    ([1.0, 2.0], {"dtype": "float16"}),
]


@pytest.mark.parametrize("data, kwargs", REPR_CASES)
def test_repr_matches_torch(data, kwargs, torch):
    tkw = dict(kwargs)
    if "dtype" in tkw:
        tkw["dtype"] = getattr(torch, tkw["dtype"])
    assert repr(tg.tensor(data, **kwargs)) == _torch_repr(torch.tensor(data, **tkw))


def test_repr_examples():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    assert repr(tg.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(x) == "tensor([1., 2.], requires_grad=True)"
    assert repr(x * 2) == "tensor([2., 4.], grad_fn=<MulBackward>)"
    assert repr((x * x).sum()) == "tensor(5., grad_fn=<SumBackward>)"
    assert repr(x + 1) == "tensor([2., 3.], grad_fn=<AddBackward>)"
    assert repr(tg.tensor([1.0], dtype=tg.float64)) == "tensor([1.], dtype=float64)"
    assert "dtype=float64" in repr(x.double() * 2) and "grad_fn=" in repr(x.double() * 2)
    with tg.no_grad():
        assert repr(x * 2) == "tensor([2., 4.])"
    assert str(tg.tensor([1, 2])) == "tensor([1, 2])"


@pytest.mark.parametrize("data", [[True], [float("nan"), 1.0], [float("inf"), 1.0],
                                  [1e10, 1.0]])
def test_repr_matches_torch_special_values(data, torch):
    assert repr(tg.tensor(data)) == _torch_repr(torch.tensor(data))


# --------------------------------------------------------------------------------------
# Indexing

A = np.arange(24, dtype=np.float32).reshape(2, 3, 4)

INDEXES = [
    0, -1, (1, 2), (1, -2, 3), slice(None, None, -1), (slice(None), slice(None, None, -2)),
    (slice(5, 0, -2),), (slice(None), slice(-1, None, -1), slice(None, None, -3)),
    None, (None, 0), (0, None, slice(1, 3)), Ellipsis, (Ellipsis, 1), (0, Ellipsis, None),
    (Ellipsis, slice(None, None, 2)), A > 10, (0, A[0] > 5), (1, slice(None), A[0, 0] > 1),
    (slice(None), A[0, :, 0] > 3), [1, 0, 1], np.array([[0, 1], [1, 0]]),
    (slice(None), [0, 2, 2]), ([0, 1], [1, 2]), ([0, 1], slice(None), [1, 3]),
    (0, [0, 0, 2], slice(1, 3)), (slice(None), [[0], [1]], [0, 1]),
    (Ellipsis, [True, False, True, False]), [True, False], np.int64(1),
    (None, [1, 0], Ellipsis, slice(None, None, -1)),
]


def _ids(index):
    return re.sub(r"\s+", "", repr(index))[:40]


@pytest.mark.parametrize("index", INDEXES, ids=_ids)
def test_getitem_matches_numpy(index):
    x = tg.tensor(A, requires_grad=True)
    got = x[index]
    want = A[index]
    assert got.shape == want.shape
    np.testing.assert_array_equal(got.numpy(), want)
    # gradient: d sum(w * x[index]) / dx, counted independently of tracegrad's rule
    w = np.random.default_rng(0).standard_normal(want.shape).astype(np.float32)
    (got * tg.tensor(w)).sum().backward()
    ids = np.arange(A.size).reshape(A.shape)[index]
    expected = np.bincount(np.ravel(ids), weights=np.ravel(w), minlength=A.size)
    np.testing.assert_allclose(x.grad.numpy(), expected.reshape(A.shape), rtol=1e-5, atol=1e-6)


def test_getitem_with_int_tensors_matches_torch(torch):
    x = tg.tensor(A)
    t = torch.tensor(A)
    for idx in [tg.tensor([1, 0]), tg.tensor(1), tg.tensor([[0, 1], [1, 1]])]:
        np.testing.assert_array_equal(x[idx].numpy(), t[torch.tensor(idx.numpy())].numpy())
    i, j = tg.tensor([0, 1, 1]), tg.tensor([2, 0, 1])
    np.testing.assert_array_equal(
        x[i, j].numpy(), t[torch.tensor(i.numpy()), torch.tensor(j.numpy())].numpy()
    )
    np.testing.assert_array_equal(x[x > 7].numpy(), t[t > 7].numpy())
    np.testing.assert_array_equal(x[:, tg.tensor([2, 0])].numpy(), t[:, [2, 0]].numpy())


def test_repeated_integer_indices_accumulate_gradient(torch):
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    idx = tg.tensor([[0, 0], [2, 0]])
    w = tg.tensor([[1.0, 2.0], [3.0, 4.0]])
    (x[idx] * w).sum().backward()
    tx = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (tx[torch.tensor([[0, 0], [2, 0]])] * torch.tensor(w.numpy())).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())
    assert x.grad.tolist() == [7.0, 0.0, 3.0]


def test_gradient_through_mask_and_negative_steps():
    m = tg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    (m[m > 2] * 2).sum().backward()
    assert m.grad.tolist() == [[0, 0, 0], [2, 2, 2]]
    m = tg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    (m[:, ::-1][0, None] ** 2).sum().backward()
    assert m.grad.tolist() == [[0, 2, 4], [0, 0, 0]]


@st.composite
def shape_and_index(draw):
    """A shape and an index into it: ints, slices (negative steps too), None, Ellipsis, and
    either integer arrays (all one length, so they broadcast) or one boolean mask."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    nd = len(shape)
    mode = draw(st.sampled_from(["basic", "int-arrays", "mask"]))
    used = draw(st.integers(0, nd))
    ellipsis_at = draw(st.none() | st.integers(0, used)) if used < nd else None
    if ellipsis_at is None:
        dims = list(range(used))
    else:  # indices after the Ellipsis address the last dimensions
        dims = list(range(ellipsis_at)) + list(range(nd - (used - ellipsis_at), nd))
    k = draw(st.integers(1, 3))
    mask_dim = draw(st.sampled_from(dims)) if (mode == "mask" and dims) else None
    parts: list = []
    for d in dims:
        n = shape[d]
        if d == mask_dim:
            parts.append(np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n))))
            continue
        kinds = ["int", "slice"] + (["array"] if mode == "int-arrays" else [])
        kind = draw(st.sampled_from(kinds))
        if kind == "int":
            parts.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            start = draw(st.none() | st.integers(-n - 1, n + 1))
            stop = draw(st.none() | st.integers(-n - 1, n + 1))
            step = draw(st.sampled_from([None, 1, 2, -1, -2, 3]))
            parts.append(slice(start, stop, step))
        else:
            parts.append(np.array(draw(st.lists(st.integers(-n, n - 1), min_size=k,
                                                max_size=k))))
    if ellipsis_at is not None:
        parts.insert(ellipsis_at, Ellipsis)
    if draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), None)
    return shape, tuple(parts)


@SETTINGS
@given(shape_and_index())
def test_getitem_hypothesis_matches_numpy_with_gradient(case):
    shape, index = case
    data = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    x = tg.tensor(data, requires_grad=True)
    got = x[index]
    want = data[index]
    assert got.shape == want.shape
    np.testing.assert_array_equal(got.numpy(), want)
    w = np.arange(1.0, want.size + 1).reshape(want.shape)
    (got * tg.tensor(w)).sum().backward()
    ids = np.arange(data.size).reshape(shape)[index]
    expected = np.bincount(np.ravel(ids), weights=np.ravel(w), minlength=data.size)
    np.testing.assert_allclose(x.grad.numpy(), expected.reshape(shape))


def test_out_of_range_index_error_names_op_index_and_shape(torch):
    x = tg.tensor(A)
    with pytest.raises(IndexError, match=r"getitem.*\[2\].*\(2, 3, 4\).*out of bounds"):
        x[2]
    with pytest.raises(IndexError, match=r"getitem.*\(2, 3, 4\).*index 5 is out of bounds"):
        x[0, 5]
    with pytest.raises(IndexError, match=r"getitem.*2, 3, 4.*index 5 is out of bounds"):
        x[[0, 5]]
    with pytest.raises(IndexError, match="too many indices"):
        x[0, 0, 0, 0]
    with pytest.raises(IndexError, match="boolean"):
        x[np.array([True, False, True])]
    with pytest.raises(IndexError, match="float"):
        x[1.5]
    with pytest.raises(IndexError, match="str"):
        x["a"]
    with pytest.raises(IndexError, match="integers or bools"):
        x[tg.tensor([0.0, 1.0])]


def test_setitem_under_no_grad_on_leaf():
    w = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with tg.no_grad():
        w[0] = 10.0
        w[1:] = tg.tensor([20.0, 30.0])
    assert w.tolist() == [10.0, 20.0, 30.0] and w.requires_grad and w.is_leaf
    with pytest.raises(RuntimeError, match="leaf"):
        w[0] = 5.0
    assert w.tolist() == [10.0, 20.0, 30.0]


def test_setitem_variants_match_numpy():
    z = tg.zeros(2, 3)
    z[:, 1] = tg.tensor([1.0, 2.0])
    assert z.tolist() == [[0, 1, 0], [0, 2, 0]]
    z[z == 0] = 7
    assert z.tolist() == [[7, 1, 7], [7, 2, 7]]
    z[tg.tensor([1])] = tg.tensor([4.0, 5.0, 6.0])
    assert z.tolist() == [[7, 1, 7], [4, 5, 6]]
    z[..., -1] = 0.5
    assert z.tolist() == [[7, 1, 0.5], [4, 5, 0.5]]
    i = tg.zeros(3, dtype=tg.int64)
    i[1] = 2
    assert i.tolist() == [0, 2, 0] and i.dtype == tg.int64
    v = z._version
    z[0, 0] = 1.0
    assert z._version == v + 1


def test_setitem_with_repeated_indices_assigns():
    z = tg.zeros(3)
    z[[0, 0, 1]] = 5.0
    assert z.tolist() == [5.0, 5.0, 0.0]  # got [10., 5., 0.]


def test_setitem_value_with_leading_unit_dims():
    z = tg.zeros(2, 2)
    z[0] = tg.tensor([[1.0, 2.0]])
    assert z.tolist() == [[1, 2], [0, 0]]


def test_setitem_on_non_leaf_with_grad_matches_torch(torch):
    a = tg.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    y = a * 2
    y[1:3] = tg.tensor([0.0, 0.0])
    y[0] = a[3] * a[3]
    (y * tg.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    ta = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    ty = ta * 2
    ty[1:3] = torch.tensor([0.0, 0.0])
    ty[0] = ta[3] * ta[3]
    (ty * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy())
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy())
    assert a.grad.tolist() == [0.0, 0.0, 0.0, 16.0]


def test_setitem_value_gets_gradient():
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    b = tg.tensor(3.0, requires_grad=True)
    y = a * 1
    y[0] = b * 2
    (y * tg.tensor([5.0, 7.0])).sum().backward()
    assert a.grad.tolist() == [0.0, 7.0] and b.grad.item() == 10.0


def test_failed_setitem_changes_nothing():
    z = tg.tensor([1.0, 2.0, 3.0])
    v = z._version
    with pytest.raises(IndexError, match=r"\(3,\)"):
        z[5] = 1.0
    with pytest.raises(ValueError):  # ShapeError
        z[:] = tg.tensor([1.0, 2.0])
    assert z.tolist() == [1.0, 2.0, 3.0] and z._version == v


# --------------------------------------------------------------------------------------
# Movement


def test_reshape_view_and_minus_one(torch):
    x = tg.tensor(A)
    for shape in [(6, 4), (-1,), (4, -1), (2, -1, 2), (24,), (1, 24, 1)]:
        assert x.reshape(shape).shape == tuple(torch.tensor(A).reshape(shape).shape)
        np.testing.assert_array_equal(x.reshape(*shape).numpy(), A.reshape(shape))
        assert x.view(shape).shape == x.reshape(shape).shape
    assert tg.reshape(x, (4, 6)).shape == (4, 6)
    with pytest.raises(tg.ShapeError, match=r"reshape.*\(2, 3, 4\).*\(5, 5\)"):
        x.reshape(5, 5)
    with pytest.raises(tg.ShapeError, match="only one dimension can be -1"):
        x.reshape(-1, -1)
    with pytest.raises(tg.ShapeError, match=r"reshape.*\(2, 3, 4\).*\(5, -1\)"):
        x.view(5, -1)


def test_permute_transpose_T(torch):
    x, t = tg.tensor(A), torch.tensor(A)
    for dims in [(2, 0, 1), (0, 2, 1), (-1, 0, 1)]:
        np.testing.assert_array_equal(x.permute(dims).numpy(), t.permute(dims).numpy())
        np.testing.assert_array_equal(x.permute(*dims).numpy(), t.permute(*dims).numpy())
    for d0, d1 in [(0, 1), (0, -1), (-1, -2), (1, 1)]:
        np.testing.assert_array_equal(x.transpose(d0, d1).numpy(), t.transpose(d0, d1).numpy())
    np.testing.assert_array_equal(tg.transpose(x, 0, 2).numpy(), A.transpose(2, 1, 0))
    with pytest.raises(tg.ShapeError, match=r"permute.*\(2, 3, 4\)"):
        x.permute(0, 0, 1)


def test_permute_out_of_range_dim_raises():
    with pytest.raises((tg.ShapeError, IndexError)):
        tg.ones(2, 3).permute(0, 3)


def test_transpose_out_of_range_dim_message():
    with pytest.raises((tg.ShapeError, IndexError), match=r"transpose.*\(2, 3\)"):
        tg.ones(2, 3).transpose(0, 2)


def test_expand(torch):
    x = tg.tensor([[1.0], [2.0], [3.0]], requires_grad=True)
    y = x.expand(-1, 4)
    assert y.shape == (3, 4) and y.tolist() == [[1] * 4, [2] * 4, [3] * 4]
    assert x.expand(2, -1, 4).shape == (2, 3, 4)
    (y * tg.arange(4).float()).sum().backward()
    assert x.grad.tolist() == [[6.0], [6.0], [6.0]]
    with pytest.raises(tg.ShapeError, match=r"expand.*\(3, 1\).*\(2, 4\)"):
        x.expand(2, 4)


def test_flatten(torch):
    x, t = tg.tensor(A), torch.tensor(A)
    for s, e in [(0, -1), (1, 2), (0, 1), (1, -1), (2, 2)]:
        assert x.flatten(s, e).shape == tuple(t.flatten(s, e).shape)
        np.testing.assert_array_equal(x.flatten(s, e).numpy(), t.flatten(s, e).numpy())
    assert x.flatten().shape == (24,)
    assert tg.tensor(3.0).flatten().shape == (1,)


def test_squeeze_flatten_out_of_range_dims_raise():
    with pytest.raises((tg.ShapeError, IndexError)):
        tg.ones(2, 1).squeeze(3)
    with pytest.raises((tg.ShapeError, IndexError)):
        tg.ones(2, 3).flatten(0, 5)


def test_squeeze_unsqueeze(torch):
    b = np.ones((2, 1, 3, 1), dtype=np.float32)
    x, t = tg.tensor(b), torch.tensor(b)
    for dim in [None, 1, -1, 0, (1, 3)]:
        want = t.squeeze() if dim is None else t.squeeze(dim)
        got = x.squeeze() if dim is None else x.squeeze(dim)
        assert got.shape == tuple(want.shape), dim
    for dim in [0, 2, 4, -1, -5]:
        assert x.unsqueeze(dim).shape == tuple(t.unsqueeze(dim).shape), dim
    with pytest.raises(tg.ShapeError, match="unsqueeze: dim 5"):
        x.unsqueeze(5)
    assert tg.squeeze(x).shape == (2, 3) and tg.unsqueeze(x, 0).shape == (1, 2, 1, 3, 1)


def test_cat_stack_values_dims_and_errors(torch):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.arange(6, 12, dtype=np.float32).reshape(2, 3)
    ta, tb = torch.tensor(a), torch.tensor(b)
    for dim in [0, 1, -1, -2]:
        np.testing.assert_array_equal(
            tg.cat([tg.tensor(a), tg.tensor(b)], dim=dim).numpy(), torch.cat([ta, tb], dim).numpy()
        )
    for dim in [0, 1, 2, -1, -3]:
        np.testing.assert_array_equal(
            tg.stack([tg.tensor(a), tg.tensor(b)], dim=dim).numpy(),
            torch.stack([ta, tb], dim).numpy(),
        )
    assert tg.cat([tg.tensor([1]), tg.tensor([2.5])]).dtype == tg.float32
    with pytest.raises(tg.ShapeError, match=r"cat.*\(2, 3\), \(2, 2\)"):
        tg.cat([tg.tensor(a), tg.ones(2, 2)])
    with pytest.raises(tg.ShapeError, match=r"cat: dim 2"):
        tg.cat([tg.tensor(a), tg.tensor(b)], dim=2)
    with pytest.raises(tg.ShapeError, match="cat.*zero-dimensional"):
        tg.cat([tg.tensor(1.0), tg.tensor(2.0)])
    with pytest.raises(tg.ShapeError, match=r"stack.*\(2, 3\).*\(4,\)"):
        tg.stack([tg.tensor(a), tg.ones(4)])
    with pytest.raises(tg.ShapeError, match="stack: dim 3"):
        tg.stack([tg.tensor(a), tg.tensor(b)], dim=3)
    with pytest.raises(ValueError, match="at least one"):
        tg.cat([])


def test_movement_gradients_match_torch(torch):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((2, 3, 4))
    b = rng.standard_normal((2, 3, 4))
    w = rng.standard_normal((4, 4, 3))

    def run(lib, x, y, wt):
        cat, stack = (tg.cat, tg.stack) if lib is tg else (torch.cat, torch.stack)
        z = cat([x, y], 0).permute(2, 0, 1)                # (4, 4, 3)
        s = stack([x, y * 2], -1).flatten(1, 2).sum(-1)     # (2, 12)
        u = x.reshape(6, 4)[:, None].expand(6, 2, 4).transpose(0, 1)
        v = y.unsqueeze(0).squeeze(0).reshape(-1)
        return (z * wt).sum() + (s * s).sum() + (u * u).sum() + (v ** 3).sum()

    x = tg.tensor(a, requires_grad=True)
    y = tg.tensor(b, requires_grad=True)
    run(tg, x, y, tg.tensor(w)).backward()
    tx = torch.tensor(a, requires_grad=True)
    ty = torch.tensor(b, requires_grad=True)
    run(torch, tx, ty, torch.tensor(w)).backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(y.grad.numpy(), ty.grad.numpy(), rtol=1e-10)


@SETTINGS
@given(data=st.data())
def test_reshape_permute_hypothesis(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, max_side=4))
    arr = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    perm = data.draw(st.permutations(range(len(shape))))
    x = tg.tensor(arr, requires_grad=True)
    y = x.permute(perm)
    np.testing.assert_array_equal(y.numpy(), arr.transpose(perm))
    flat = y.reshape(-1)
    np.testing.assert_array_equal(flat.numpy(), arr.transpose(perm).ravel())
    (flat * tg.tensor(np.arange(flat.shape[0], dtype=np.float64))).sum().backward()
    want = np.arange(arr.size, dtype=np.float64).reshape(arr.transpose(perm).shape)
    np.testing.assert_array_equal(x.grad.numpy(), want.transpose(np.argsort(perm)))


# --------------------------------------------------------------------------------------
# Reductions

RNG = np.random.default_rng(0)
R = RNG.standard_normal((2, 3, 4)).astype(np.float32)


@pytest.mark.parametrize("name", ["sum", "mean", "var", "std", "amax", "amin", "logsumexp"])
@pytest.mark.parametrize("dim", [0, -1, (0, 2), [1, 2]])
@pytest.mark.parametrize("keepdim", [False, True])
def test_reductions_match_torch(name, dim, keepdim, torch):
    x = tg.tensor(R)
    got = getattr(x, name)(dim=dim, keepdim=keepdim)
    tdim = tuple(dim) if isinstance(dim, list) else dim
    want = getattr(torch.tensor(R), name)(dim=tdim, keepdim=keepdim)
    assert got.shape == tuple(want.shape)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["sum", "mean", "var", "std", "max", "min"])
def test_full_reductions_are_0d(name, torch):
    got = getattr(tg.tensor(R), name)()
    want = getattr(torch.tensor(R), name)()
    assert got.shape == () and got.dtype == tg.float32
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-5)


def test_numpy_axis_keepdims_spelling():
    x = tg.tensor(R)
    assert x.sum(axis=1, keepdims=True).shape == (2, 1, 4)
    np.testing.assert_allclose(x.sum(axis=1, keepdims=True).numpy(),
                               R.sum(axis=1, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(x.mean(axis=(0, 1)).numpy(), R.mean(axis=(0, 1)), rtol=1e-5)
    np.testing.assert_allclose(x.var(axis=2).numpy(), R.var(axis=2, ddof=1), rtol=1e-5)
    assert x.max(axis=0).values.shape == (3, 4)
    assert x.argmax(axis=1, keepdims=True).shape == (2, 1, 4)
    assert tg.sum(x, 0).shape == (3, 4) and tg.mean(x, dim=-1).shape == (2, 3)
    with pytest.raises(TypeError, match="not both"):
        x.sum(dim=0, axis=1)
    # every reduction takes the NumPy spelling
    np.testing.assert_allclose(x.amax(axis=1, keepdims=True).numpy(),
                               R.max(axis=1, keepdims=True))
    np.testing.assert_allclose(tg.amin(x, axis=(0, 2)).numpy(), R.min(axis=(0, 2)))
    np.testing.assert_allclose(x.logsumexp(axis=2, keepdims=True).numpy(),
                               np.log(np.exp(R).sum(axis=2, keepdims=True)), rtol=1e-5)
    np.testing.assert_array_equal((x > 0).any(axis=1).numpy(), (R > 0).any(axis=1))
    np.testing.assert_array_equal((x > 0).all(axis=0, keepdims=True).numpy(),
                                  (R > 0).all(axis=0, keepdims=True))
    with pytest.raises(TypeError, match="not both"):
        x.amax(1, axis=1)


def test_max_min_with_dim_return_values_and_indices(torch):
    x, t = tg.tensor(R), torch.tensor(R)
    for name in ["max", "min"]:
        for dim in [0, 1, -1]:
            for keepdim in [False, True]:
                got = getattr(x, name)(dim=dim, keepdim=keepdim)
                want = getattr(t, name)(dim=dim, keepdim=keepdim)
                np.testing.assert_allclose(got.values.numpy(), want.values.numpy())
                np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
                values, indices = got  # a named tuple
                assert indices.dtype == tg.int64 and values.shape == indices.shape
    assert tg.max(x).shape == ()
    np.testing.assert_array_equal(tg.max(x, tg.zeros(1)).numpy(), np.maximum(R, 0))


def test_argmax_argmin_match_torch(torch):
    x, t = tg.tensor(R), torch.tensor(R)
    assert x.argmax().item() == t.argmax().item()
    assert x.argmin().item() == t.argmin().item()
    for dim in [0, 1, 2, -1]:
        for keepdim in [False, True]:
            np.testing.assert_array_equal(x.argmax(dim, keepdim).numpy(),
                                          t.argmax(dim, keepdim).numpy())
            np.testing.assert_array_equal(x.argmin(dim=dim, keepdim=keepdim).numpy(),
                                          t.argmin(dim=dim, keepdim=keepdim).numpy())
    assert x.argmax().dtype == tg.int64
    # ties: the first occurrence, as in PyTorch on CPU and NumPy
    assert tg.tensor([3, 1, 3]).argmax().item() == 0
    assert tg.tensor([1, 3, 1]).argmin().item() == 0
    assert tg.argmax(tg.tensor([[1.0, 5.0], [7.0, 2.0]]), dim=1).tolist() == [1, 0]


def test_min_of_unsigned_and_bool_tensors():
    u = tg.tensor([0, 5], dtype=tg.uint8)
    assert u.min().item() == 0
    assert u.argmin().item() == 0
    assert tg.tensor([True, False]).min().item() is False


def test_sum_of_bool_and_ints_is_int64(torch):
    b = tg.tensor([[True, False], [True, True]])
    assert b.sum().item() == 3 and b.sum().dtype == tg.int64
    assert b.sum(dim=0).tolist() == [2, 1]
    assert tg.tensor([1, 2], dtype=tg.int32).sum().dtype == tg.int64
    assert str(torch.tensor([1, 2], dtype=torch.int32).sum().dtype) == "torch.int64"
    assert (tg.tensor([1.0, 2.0]) > 1).sum().item() == 1
    with pytest.raises(TypeError, match="mean.*float"):
        tg.tensor([1, 2]).mean()


def test_reduction_errors_name_op_and_dim():
    x = tg.ones(2, 3)
    with pytest.raises(tg.ShapeError, match=r"sum: dim 2 is out of range.*2 dimension"):
        x.sum(dim=2)
    with pytest.raises(tg.ShapeError, match="max: dim 3"):
        x.max(dim=3)
    with pytest.raises(tg.ShapeError, match="same dimension twice"):
        x.sum(dim=(0, -2))
    with pytest.raises(tg.ShapeError, match="max.*size 0"):
        tg.zeros(0).max()


@SETTINGS
@given(
    shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
    data=st.data(),
    keepdim=st.booleans(),
)
def test_reduction_gradients_match_torch_hypothesis(shape, data, keepdim):
    torch = pytest.importorskip("torch")
    arr = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-3, 3)))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    for name in ["sum", "mean", "amax", "logsumexp"]:
        x = tg.tensor(arr, requires_grad=True)
        t = torch.tensor(arr, requires_grad=True)
        out = getattr(x, name)(dim=dim, keepdim=keepdim)
        tout = getattr(t, name)(dim=dim, keepdim=keepdim)
        np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
        w = np.arange(1.0, out.numel() + 1).reshape(out.shape)
        (out * tg.tensor(w)).sum().backward()
        (tout * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------------------
# Broadcasting and shape errors


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "maximum": lambda a, b: a.maximum(b),
}


@SETTINGS
@given(data=st.data(), op=st.sampled_from(sorted(BINARY)))
def test_broadcasting_values_and_gradients_match_torch(data, op):
    torch = pytest.importorskip("torch")
    shapes = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3))
    sa, sb = shapes.input_shapes
    elems = st.floats(0.5, 2.0) if op == "div" else st.floats(-2.0, 2.0)
    a = data.draw(hnp.arrays(np.float64, sa, elements=elems))
    b = data.draw(hnp.arrays(np.float64, sb, elements=elems))
    fn = BINARY[op]
    x, y = tg.tensor(a, requires_grad=True), tg.tensor(b, requires_grad=True)
    tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    out, tout = fn(x, y), fn(tx, ty)
    assert out.shape == tuple(tout.shape) == shapes.result_shape
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-12)
    w = np.linspace(-1, 1, out.numel()).reshape(out.shape)
    (out * tg.tensor(w)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(y.grad.numpy(), ty.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert x.grad.shape == sa and y.grad.shape == sb


def test_shape_error_is_a_value_error():
    assert issubclass(tg.ShapeError, ValueError)


@pytest.mark.parametrize(
    "make, pattern",
    [
        (lambda: tg.ones(2, 3) + tg.ones(4), r"add: shapes \(2, 3\), \(4,\) do not broadcast"),
        (lambda: tg.ones(2, 3) * tg.ones(3, 2), r"mul: shapes \(2, 3\), \(3, 2\)"),
        (lambda: tg.ones(3) - tg.ones(2), r"sub: shapes \(3,\), \(2,\)"),
        (lambda: tg.ones(2, 3) @ tg.ones(4), r"matmul: shapes \(2, 3\) @ \(4,\)"),
        (lambda: tg.ones(2, 3) @ tg.ones(2, 3), r"matmul: shapes \(2, 3\) @ \(2, 3\)"),
        (lambda: tg.ones(3) @ tg.ones(4), r"matmul: shapes \(3,\) @ \(4,\)"),
        (lambda: tg.ones(2, 3).reshape(4, 2), r"reshape: cannot reshape \(2, 3\).*\(4, 2\)"),
        (lambda: tg.cat([tg.ones(2, 3), tg.ones(4)]), r"cat: shapes \(2, 3\), \(4,\)"),
        (lambda: tg.where(tg.ones(2) > 0, tg.ones(3), 0.0), r"where: shapes"),
        (lambda: tg.ones(2, 3).expand(3, 3), r"expand: cannot expand shape \(2, 3\)"),
    ],
)
def test_shape_errors_name_op_and_shapes(make, pattern):
    with pytest.raises(tg.ShapeError, match=pattern):
        make()


def test_matmul_values_match_torch(torch):
    rng = np.random.default_rng(2)
    for sa, sb in [((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
                   ((5, 2, 3), (3, 4)), ((1, 2, 3), (5, 3, 2))]:
        a, b = rng.standard_normal(sa), rng.standard_normal(sb)
        x, y = tg.tensor(a, requires_grad=True), tg.tensor(b, requires_grad=True)
        tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
        out, tout = x @ y, tx @ ty
        np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-12)
        out.sum().backward()
        tout.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(y.grad.numpy(), ty.grad.numpy(), rtol=1e-10)
    assert tg.matmul(tg.ones(2, 2), tg.ones(2)).tolist() == [2.0, 2.0]


def test_dot_product_of_vectors_forward():
    assert (tg.tensor([1.0, 2.0]) @ tg.tensor([3.0, 4.0])).item() == 11.0


def test_dot_product_of_vectors_gradient():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = tg.tensor([3.0, 4.0], requires_grad=True)
    (x @ y).backward()
    assert x.grad.tolist() == [3.0, 4.0] and y.grad.tolist() == [1.0, 2.0]


def test_failed_inplace_op_changes_nothing():
    x = tg.tensor([1.0, 2.0, 3.0])
    data, v = x.numpy().copy(), x._version
    with pytest.raises(tg.ShapeError, match=r"add: shapes \(3,\), \(2,\)"):
        x += tg.ones(2)
    assert np.array_equal(x.numpy(), data) and x._version == v
    y = tg.ones(3, 1)
    with pytest.raises(tg.ShapeError, match=r"in-place.*\(3, 3\).*\(3, 1\)"):
        y += tg.ones(3, 3)
    assert y.shape == (3, 1) and y.tolist() == [[1.0]] * 3 and y._version == 0
    i = tg.tensor([1, 2])
    with pytest.raises(TypeError):
        i += 1.5  # PyTorch: "result type Float can't be cast to ... Long"
    assert i.tolist() == [1, 2] and i.dtype == tg.int64 and i._version == 0
    # a failing update of a non-leaf that is being recorded leaves it alone too
    w = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    h = w * 2
    with pytest.raises(tg.ShapeError):
        h += tg.ones(2)
    assert h.tolist() == [2.0, 4.0, 6.0] and h._version == 0 and h.grad_fn == "<MulBackward>"
    h.sum().backward()
    assert w.grad.tolist() == [2.0, 2.0, 2.0]


def test_inplace_on_recorded_non_leaf_keeps_shape_and_dtype():
    w = tg.ones(3, 1, requires_grad=True)
    h = w * 1
    with pytest.raises((tg.ShapeError, RuntimeError)):
        h += tg.ones(1, 3)
    assert h.shape == (3, 1)
    g = tg.ones(2, requires_grad=True) * 1
    g += tg.ones(2, dtype=tg.float64)
    assert g.dtype == tg.float32


def test_negative_zero_is_not_taken_for_zero():
    # Numbers are cached as constants by value; 0.0 == -0.0, but 1 / -0.0 is -inf.
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with np.errstate(divide="ignore"):
        assert (1 / (x * 0.0)).tolist() == [np.inf, np.inf]
        assert (1 / (x * -0.0)).tolist() == [-np.inf, -np.inf]
    (x * -0.0).sum().backward()
    assert np.signbit(x.grad.numpy()).all()


def test_format_spec_formats_a_0d_tensor_like_its_number():
    assert f"{tg.tensor(1.5):.3f}" == "1.500" and f"{tg.tensor(7):>3d}" == "  7"
    assert f"{tg.tensor([1.0, 2.0])}" == str(tg.tensor([1.0, 2.0]))
    with pytest.raises(TypeError):
        f"{tg.tensor([1.0, 2.0]):.3f}"


def test_changed_input_message_says_whether_the_gradient_reads_it():
    leaf = tg.tensor([1.0, 2.0], requires_grad=True)
    for make, reads in [(lambda h: h.sin(), True), (lambda h: h * leaf, True),
                        (lambda h: h.exp(), False), (lambda h: h + 3, False)]:
        h = leaf * 1
        out = make(h)
        h += 1
        with pytest.raises(RuntimeError, match="changed in place") as err:
            out.sum().backward()
        assert ("its gradient needs the old value" in str(err.value)) == reads
        assert ("refuses every changed input" in str(err.value)) == (not reads)


def test_mask_operators_and_logical_functions_like_torch(torch):
    a, b = np.array([True, False, True, False]), np.array([[True], [False]])
    ops = [lambda x, y: x & y, lambda x, y: x | y, lambda x, y: x ^ y, lambda x, y: ~x,
           lambda x, y: x & True, lambda x, y: False | x, lambda x, y: True ^ y]
    for op in ops:
        got = op(tg.tensor(a), tg.tensor(b))
        want = op(torch.tensor(a), torch.tensor(b)).numpy()
        assert got.dtype == tg.bool
        np.testing.assert_array_equal(got.numpy(), want)
    x, y = np.array([0, 2, -1, 0]), np.array([0.0, 0.0, 3.0, 0.5])
    for name in ("logical_and", "logical_or", "logical_xor"):
        want = getattr(torch, name)(torch.tensor(x), torch.tensor(y)).numpy()
        np.testing.assert_array_equal(getattr(tg, name)(tg.tensor(x), tg.tensor(y)).numpy(), want)
        np.testing.assert_array_equal(getattr(tg.tensor(x), name)(tg.tensor(y)).numpy(), want)
    np.testing.assert_array_equal(tg.logical_not(tg.tensor(y)).numpy(), y == 0)
    # on integers the operators are bitwise, as PyTorch's
    np.testing.assert_array_equal((tg.tensor(x) & tg.tensor(x + 3)).numpy(),
                                  (torch.tensor(x) & torch.tensor(x + 3)).numpy())
    with pytest.raises(TypeError, match=r"& works on bool tensors \(masks\) and integers, "
                                        r"got a float"):
        tg.tensor(x) & tg.tensor(y)
    with pytest.raises(TypeError, match="~ works on bool tensors"):
        ~tg.tensor(y)
