"""PyTorch parity for the ops added late: dtype queries and modes, the fused products
(addmv, addr, baddbmm, addbmm), the scatters (indexing.py) and the searching and order
statistics (searching.py). Values and dtypes against torch, gradients against torch and
float64 central finite differences (`gradcheck`), and each group compiled against eager.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_grads, compare_with_torch

import tracegrad as tg

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)


def _n(*shape):
    return RNG.standard_normal(shape)


def _distinct(*shape):
    """Values far apart (no ties), so that picks and their gradients are unambiguous."""
    return RNG.permutation(int(np.prod(shape))).reshape(shape) * 0.5 + RNG.random(shape) * 0.1


def _compiled_matches(fn, *arrays, grad=True):
    """``tg.compile(fn)`` gives eager's values and (through backward inside) gradients."""
    def run(f):
        xs = [tg.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
        out = f(*xs)
        outs = out if isinstance(out, tuple) else (out,)
        if grad:
            sum(o.sum() for o in outs if o.dtype.kind == "f").backward()
        return [o.numpy().copy() for o in outs] + [x.grad.numpy().copy() for x in xs
                                                   if x.grad is not None]

    compiled = tg.compile(fn)
    want = run(fn)
    for _ in range(2):  # (the trace, then the compiled program)
        got = run(compiled)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12, equal_nan=True)


# ------------------------------------------------------------------ dtype queries and modes


@pytest.mark.parametrize("name", ["float16", "float32", "float64"])
def test_finfo_matches_torch(name):
    got, want = tg.finfo(getattr(tg, name)), torch.finfo(getattr(torch, name))
    for field in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype"):
        assert getattr(got, field) == getattr(want, field), field
    assert tg.finfo().dtype == "float32" and tg.finfo(tg.float64).eps == 2.0 ** -52
    assert "eps=1.19209e-07" in repr(tg.finfo(tg.float32))


@pytest.mark.parametrize("name", ["uint8", "int8", "int16", "int32", "int64"])
def test_iinfo_matches_torch(name):
    got, want = tg.iinfo(getattr(tg, name)), torch.iinfo(getattr(torch, name))
    assert (got.bits, got.min, got.max, got.dtype) == (want.bits, want.min, want.max,
                                                       want.dtype)


def test_info_refuses_the_other_kind():
    with pytest.raises(TypeError, match="finfo: int64 is not a floating point dtype"):
        tg.finfo(tg.int64)
    with pytest.raises(TypeError, match="iinfo: float32 is not an integer dtype"):
        tg.iinfo(tg.float32)


DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]


def test_promote_types_and_can_cast_match_torch():
    for a in DTYPES:
        for b in DTYPES:
            ta, tb = getattr(tg, a), getattr(tg, b)
            pa, pb = getattr(torch, a), getattr(torch, b)
            assert str(tg.promote_types(ta, tb)) == str(torch.promote_types(pa, pb)).replace(
                "torch.", ""), (a, b)
            assert tg.can_cast(ta, tb) == torch.can_cast(pa, pb), (a, b)


def test_result_type_matches_torch():
    cases = [([1, 2], "int32", 2.5), ([1.0], "float16", 3), ([1], "int64", True),
             (1, "int32", [1.0]), (1.5, "float64", [1]), (2, "uint8", [1])]
    for left, dtype, right in cases:
        def make(v, lib, dt):
            if isinstance(v, list):
                return lib.tensor(v, dtype=getattr(lib, "int16" if dt == "int32" else "float32"))
            return v

        def zero_d(v, lib):
            return lib.tensor(v, dtype=getattr(lib, dtype))

        for a, b in [(zero_d(left, tg) if not isinstance(left, list) else
                      tg.tensor(left, dtype=getattr(tg, dtype)), make(right, tg, dtype))]:
            pa = (torch.tensor(left, dtype=getattr(torch, dtype)))
            pb = make(right, torch, dtype)
            want = str(torch.result_type(pa, pb)).replace("torch.", "")
            assert str(tg.result_type(a, b)) == want, (left, dtype, right)
            assert str(tg.result_type(b, a)) == want, (right, left, dtype)
    assert str(tg.result_type(1, 2.0)) == str(torch.result_type(1, 2.0)).replace("torch.", "")


def test_is_complex_and_is_nonzero():
    assert tg.is_complex(tg.ones(2)) is False
    assert tg.is_nonzero(tg.tensor([0.5])) is True and tg.is_nonzero(tg.tensor(0)) is False
    with pytest.raises(RuntimeError, match="is_nonzero: the tensor has 2 elements"):
        tg.is_nonzero(tg.ones(2))


def test_as_tensor_shares_numpy_memory_like_torch():
    a = np.zeros(3)
    t, p = tg.as_tensor(a), torch.as_tensor(a)
    a[0] = 5.0
    assert t.dtype == tg.float64 and t.numpy()[0] == 5.0 and p[0].item() == 5.0
    t[1] = 7.0
    assert a[1] == 7.0
    copied = tg.as_tensor(a, dtype=tg.float32)
    a[2] = 1.0
    assert copied.dtype == tg.float32 and copied.numpy()[2] == 0.0
    x = tg.ones(2)
    assert tg.as_tensor(x) is x and tg.as_tensor([1, 2]).dtype == tg.int64
    assert tg.as_tensor([1.0]).dtype == tg.float32


def test_inference_mode_like_no_grad():
    x = tg.ones(2, requires_grad=True)
    assert not tg.is_inference_mode_enabled()
    with tg.inference_mode():
        assert tg.is_inference_mode_enabled() and not tg.is_grad_enabled()
        assert not (x * 2).requires_grad
        with tg.inference_mode(False):
            assert not tg.is_inference_mode_enabled()
    assert tg.is_grad_enabled() and not tg.is_inference_mode_enabled()

    @tg.inference_mode
    def bare(y):
        return y * 2, tg.is_inference_mode_enabled()

    @tg.inference_mode()
    def called(y):
        return y * 2

    out, inside = bare(x)
    assert inside and not out.requires_grad and not called(x).requires_grad
    assert (x * 2).requires_grad and not tg.is_inference_mode_enabled()


# ------------------------------------------------------------------ fused products

FUSED = [
    ("addmv", (3,), (3, 4), (4,)),
    ("addr", (3, 4), (3,), (4,)),
    ("baddbmm", (2, 3, 5), (2, 3, 4), (2, 4, 5)),
    ("addbmm", (3, 5), (2, 3, 4), (2, 4, 5)),
    ("addmm", (1, 5), (3, 4), (4, 5)),
]


@pytest.mark.parametrize("name,s0,s1,s2", FUSED, ids=[f[0] for f in FUSED])
@pytest.mark.parametrize("beta,alpha", [(1, 1), (0.5, -2.0), (0, 3)])
def test_fused_products_match_torch(name, s0, s1, s2, beta, alpha):
    arrays = _n(*s0), _n(*s1), _n(*s2)
    compare_with_torch(lambda a, b, c: getattr(tg, name)(a, b, c, beta=beta, alpha=alpha),
                       lambda a, b, c: getattr(torch, name)(a, b, c, beta=beta, alpha=alpha),
                       *arrays)
    check_grads(lambda a, b, c: getattr(a, name)(b, c, beta=beta, alpha=alpha), *arrays)


def test_fused_beta_zero_ignores_nan_and_inplace_forms():
    inp = np.full((3, 5), np.nan)
    b, c = _n(2, 3, 4), _n(2, 4, 5)
    got = tg.addbmm(tg.tensor(inp), tg.tensor(b), tg.tensor(c), beta=0)
    want = torch.addbmm(torch.tensor(inp), torch.tensor(b), torch.tensor(c), beta=0)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    x, px = tg.tensor(_n(2, 3, 5)), None
    px = torch.tensor(x.numpy().copy())
    assert x.baddbmm_(tg.tensor(b), tg.tensor(c), alpha=2) is x
    px.baddbmm_(torch.tensor(b), torch.tensor(c), alpha=2)
    np.testing.assert_allclose(x.numpy(), px.numpy(), rtol=1e-12)
    m, pm = tg.tensor(_n(3, 5)), None
    pm = torch.tensor(m.numpy().copy())
    m.addmm_(tg.tensor(b[0]), tg.tensor(c[0]), beta=2)
    pm.addmm_(torch.tensor(b[0]), torch.tensor(c[0]), beta=2)
    np.testing.assert_allclose(m.numpy(), pm.numpy(), rtol=1e-12)
    with pytest.raises(tg.ShapeError, match=r"addmv: input of shape \(4,\) does not "
                                            r"broadcast to the product's shape \(3,\)"):
        tg.addmv(tg.ones(4), tg.ones(3, 2), tg.ones(2))


def test_fused_products_compile():
    _compiled_matches(lambda a, b, c: tg.baddbmm(a, b, c, beta=0.5, alpha=2.0),
                      _n(2, 3, 5), _n(2, 3, 4), _n(2, 4, 5))
    _compiled_matches(lambda a, b, c: a.addr(b, c, alpha=3), _n(3, 4), _n(3), _n(4))
