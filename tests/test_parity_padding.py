"""F.pad's modes (constant with cropping, reflect, replicate, circular) and the padding
layers (ZeroPad, ConstantPad, ReflectionPad, ReplicationPad, CircularPad in 1-3 d): values
and gradients against torch 2.13 and finite differences, PyTorch's dimension rules and
errors, and compiled against eager."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_grads, compare_with_torch
from helpers import compiled_steps_match
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tracegrad as tg
from tracegrad import nn
from tracegrad.nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

MODES = ["constant", "reflect", "replicate", "circular"]
# (input shape, pad): 1, 2 and 3 padded dimensions, batched and not, cropping included
CASES = [
    ((2, 5), (2, 3)),
    ((2, 3, 5), (4, 1)),
    ((2, 3, 5), (-1, 2)),
    ((3, 4, 5), (1, 2, 3, 0)),
    ((2, 3, 4, 5), (2, -1, -1, 2)),
    ((3, 4, 5, 2), (1, 1, 0, 2, 3, 1)),
    ((1, 2, 3, 4, 5), (-1, 1, 2, 0, 1, 2)),
]


def _x(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape,pad", CASES)
def test_pad_matches_torch_with_gradients(mode, shape, pad):
    compare_with_torch(lambda t: F.pad(t, pad, mode=mode), lambda t: TF.pad(t, pad, mode=mode),
                       _x(shape))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_pad_gradients_match_finite_differences(mode):
    check_grads(lambda t: F.pad(t, (2, 1, 1, 2), mode=mode) ** 2, tg.tensor(_x((1, 3, 4))))


@settings(max_examples=40, deadline=None)
@given(mode=st.sampled_from(MODES), n=st.integers(1, 3), batched=st.booleans(),
       data=st.data())
def test_pad_any_shape_matches_torch(mode, n, batched, data):
    shape = tuple(data.draw(st.lists(st.integers(1, 5), min_size=n + 1 + batched,
                                     max_size=n + 1 + batched)))
    pad = tuple(data.draw(st.lists(st.integers(-2, 5), min_size=2 * n, max_size=2 * n)))
    x = _x(shape)
    # (circular padding wider than what cropping leaves makes PyTorch copy between
    # overlapping parts of its output: those results depend on the copy order; we raise)
    kept = [s + min(lo, 0) + min(hi, 0) for s, lo, hi in zip(shape[::-1], pad[::2], pad[1::2])]
    assume(mode != "circular" or all(max(lo, hi) <= k or s + lo + hi == 0 for s, k, lo, hi
                                     in zip(shape[::-1], kept, pad[::2], pad[1::2])))
    try:
        expected = TF.pad(torch.tensor(x), pad, mode=mode).numpy()
    except (RuntimeError, NotImplementedError):
        with pytest.raises((ValueError, NotImplementedError)):
            F.pad(tg.tensor(x), pad, mode=mode)
        return
    np.testing.assert_array_equal(F.pad(tg.tensor(x), pad, mode=mode).numpy(), expected)


def test_pad_value_and_float32():
    x = _x((2, 3, 4)).astype(np.float32)
    compare_with_torch(lambda t: F.pad(t, (1, -2, 2, 0), value=-1.5),
                       lambda t: TF.pad(t, (1, -2, 2, 0), value=-1.5), x)


def test_pad_errors_name_the_rule():
    x = tg.tensor(_x((2, 3, 4)))
    with pytest.raises(ValueError, match="mode must be one of"):
        F.pad(x, (1, 1), mode="symmetric")
    with pytest.raises(ValueError, match="less than the size"):
        F.pad(x, (4, 0), mode="reflect")
    with pytest.raises(ValueError, match="wraps around once"):
        F.pad(x, (5, 0), mode="circular")
    with pytest.raises(ValueError, match="takes no value"):
        F.pad(x, (1, 1), mode="replicate", value=2.0)
    with pytest.raises(NotImplementedError, match="last 1, 2 or 3 dimensions"):
        F.pad(tg.tensor(_x((4,))), (1, 1), mode="reflect")
    with pytest.raises(NotImplementedError, match="4-d input"):
        F.pad(tg.tensor(_x((1, 2, 3, 4))), (1, 1), mode="replicate")
    with pytest.raises(tg.ShapeError, match="crops more"):
        F.pad(x, (-3, -2))
    with pytest.raises(tg.ShapeError, match="non-empty"):
        F.pad(tg.tensor(_x((2, 0, 4))), (1, 1), mode="reflect")
    with pytest.raises(tg.ShapeError, match="pairs"):
        F.pad(x, (1, 1, 1))


LAYERS = [(kind, nd) for kind in ("Zero", "Constant", "Reflection", "Replication", "Circular")
          for nd in (1, 2, 3)]


@pytest.mark.parametrize("kind,nd", LAYERS)
def test_layers_match_torch(kind, nd):
    name = f"{kind}Pad{nd}d"
    extra = (1.25,) if kind == "Constant" else ()
    x_np = _x((2, 3) + (4, 5, 4)[:nd])
    for padding in (2, (3, 1, 2, 0, 1, 2)[:2 * nd]):
        ours, theirs = getattr(nn, name)(padding, *extra), getattr(torch.nn, name)(padding, *extra)
        assert repr(ours) == repr(theirs)
        assert ours.padding == theirs.padding
        x, tx = tg.tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)
        y, ty = ours(x), theirs(tx)
        np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
        w = _x(tuple(ty.shape), 1)
        (y * tg.tensor(w)).sum().backward()
        (ty * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
        # unbatched input
        np.testing.assert_array_equal(ours(tg.tensor(x_np[0])).numpy(),
                                      theirs(torch.tensor(x_np[0])).numpy())
    with pytest.raises(ValueError, match=f"{name}: padding must be"):
        getattr(nn, name)((1,) * (2 * nd + 1), *extra)


@pytest.mark.parametrize("mode", MODES)
def test_compiled_matches_eager(mode):
    compiled_steps_match(lambda x: F.pad(x, (2, -1, 1, 2), mode=mode),
                         [_x((2, 3, 4, 5)) * scale for scale in (1.0, 2.0)], rtol=1e-12)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("nd,padding,dilation", [(1, 2, 1), (2, (1, 2), 1), (2, "same", (2, 1)),
                                                 (1, "same", 1), (2, "valid", 1)])
def test_conv_padding_mode_matches_torch(mode, nd, padding, dilation):
    name = f"Conv{nd}d"
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(2, 3, 4 if nd == 1 else (3, 4), padding=padding,
                                     dilation=dilation, padding_mode=mode).double()
    ours = getattr(nn, name)(2, 3, 4 if nd == 1 else (3, 4), padding=padding,
                             dilation=dilation, padding_mode=mode).double()
    ours.load_state_dict({k: tg.tensor(v.detach().numpy()) for k, v in
                          theirs.state_dict().items()})
    assert repr(ours) == repr(theirs)
    x_np = _x((2, 2) + (7, 9)[:nd])
    x, tx = tg.tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)
    y, ty = ours(x), theirs(tx)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_compiled_stays_dynamic_in_the_padded_size(mode):
    compiled = tg.compile(lambda x: F.pad(x * 1.0, (2, -1, 1, 2), mode=mode))
    for n in (5, 6, 8, 9):
        x = tg.tensor(_x((2, 3, 4, n)))
        np.testing.assert_array_equal(compiled(x).numpy(), F.pad(x, (2, -1, 1, 2), mode=mode)
                                      .numpy())
    assert compiled.cache_info().misses == 2  # (the second size made it symbolic)
