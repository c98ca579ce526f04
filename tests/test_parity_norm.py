"""Normalization against torch 2.13: F.batch_norm (running statistics, training and eval,
momentum), F.instance_norm and InstanceNorm1d/2d/3d (affine, track_running_stats, unbatched),
BatchNorm3d, F.rms_norm and RMSNorm (eps=None), F.local_response_norm and LocalResponseNorm:
values, gradients (also against finite differences), state dicts, errors, and compiled
against eager."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_grads, compare_with_torch

import tracegrad as tg
from tracegrad import nn
from tracegrad.nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _x(shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).normal(size=shape) * scale + 0.3


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 6), (2, 3, 4, 5), (2, 3, 2, 3, 4)])
def test_batch_norm_function_matches_torch(training, shape):
    c = shape[1]
    stats = _x((c,), 1), np.abs(_x((c,), 2)) + 0.5
    ours = [tg.tensor(s) for s in stats]
    theirs = [torch.tensor(s) for s in stats]
    compare_with_torch(
        lambda x, w, b: F.batch_norm(x, *ours, w, b, training, 0.3, 1e-3),
        lambda x, w, b: TF.batch_norm(x, *theirs, w, b, training, 0.3, 1e-3),
        _x(shape), _x((c,), 3), _x((c,), 4), order=1)
    for a, b in zip(ours, theirs):  # (the running statistics moved the same way, once)
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)
    if not training:
        np.testing.assert_array_equal(ours[0].numpy(), stats[0])


def test_batch_norm_gradients_match_finite_differences():
    check_grads(lambda x, w: F.batch_norm(x, None, None, w, None, True), tg.tensor(_x((4, 2, 3))),
                tg.tensor(_x((2,), 1)))


def _steps_match(ours, theirs, steps):
    """The two modules, stepped through ``steps`` ((training, input array) each): the same
    outputs, input gradients and state (running statistics) after every step."""
    for training, x_np in steps:
        ours.train(training)
        theirs.train(training)
        x, tx = tg.tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)
        y, ty = ours(x), theirs(tx)
        np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-10,
                                   atol=1e-12)
        (y * y * y).sum().backward()
        (ty * ty * ty).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-11)
        for k, v in theirs.state_dict().items():
            np.testing.assert_allclose(ours.state_dict()[k].numpy(), v.numpy(), rtol=1e-12)


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("affine,track", [(True, True), (False, True), (True, False)])
def test_batchnorm3d_module_matches_torch_over_steps(momentum, affine, track):
    ours = nn.BatchNorm3d(3, momentum=momentum, affine=affine, track_running_stats=track)
    theirs = torch.nn.BatchNorm3d(3, momentum=momentum, affine=affine,
                                  track_running_stats=track).double()
    ours.double()
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _steps_match(ours, theirs, [(training, _x((2, 3, 2, 3, 2), step, 2.0)) for step, training
                                in enumerate([True, True, False, True, False])])
    with pytest.raises(tg.ShapeError, match=r"BatchNorm3d\(3\).*\(N, 3, D, H, W\)"):
        ours(tg.tensor(_x((2, 3, 4, 4))))


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("affine,track", [(False, False), (True, False), (True, True),
                                          (False, True)])
def test_instance_norm_modules_match_torch(nd, affine, track):
    name = f"InstanceNorm{nd}d"
    ours = getattr(nn, name)(3, affine=affine, track_running_stats=track, momentum=0.2).double()
    theirs = getattr(torch.nn, name)(3, affine=affine, track_running_stats=track,
                                     momentum=0.2).double()
    if affine:
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(_x((3,), 7)))
            theirs.bias.copy_(torch.tensor(_x((3,), 8)))
        ours.load_state_dict({k: tg.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    spatial = (5, 4, 3)[:nd]
    _steps_match(ours, theirs, [
        (training, _x(((2,) if batched else ()) + (3,) + spatial, step, 1.5))
        for step, (training, batched) in enumerate([(True, True), (True, False), (False, True),
                                                    (False, False), (True, True)])])
    if affine:  # (the weight's gradient, summed over the steps)
        np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(),
                                   rtol=1e-9)
    with pytest.raises(tg.ShapeError, match=name):
        ours(tg.tensor(_x((3,) * (nd + 3))))


def test_instance_norm_function_and_errors():
    compare_with_torch(lambda x, w, b: F.instance_norm(x, weight=w, bias=b, eps=1e-3),
                       lambda x, w, b: TF.instance_norm(x, weight=w, bias=b, eps=1e-3),
                       _x((2, 3, 7)), _x((3,), 1), _x((3,), 2))
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        F.instance_norm(tg.tensor(_x((2, 3, 1))))
    with pytest.raises(ValueError, match="use_input_stats=False"):
        F.instance_norm(tg.tensor(_x((2, 3, 4))), use_input_stats=False)
    with pytest.raises(tg.ShapeError, match="running_mean should have 3 elements"):
        F.instance_norm(tg.tensor(_x((2, 3, 4))), tg.zeros(4), tg.ones(3))
    with pytest.warns(UserWarning, match="num_features is not used"):
        nn.InstanceNorm1d(4)(tg.tensor(_x((2, 3, 5))))
    with pytest.raises(tg.ShapeError, match="expected 4"):
        nn.InstanceNorm1d(4, affine=True)(tg.tensor(_x((2, 3, 5))))


def test_batch_norm_errors():
    x = tg.tensor(_x((4, 3, 2)))
    with pytest.raises(ValueError, match="training=False"):
        F.batch_norm(x, None, None)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(tg.tensor(_x((1, 3))), None, None, training=True)
    with pytest.raises(tg.ShapeError, match="weight should have 3 elements"):
        F.batch_norm(x, None, None, tg.ones(2), training=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("eps", [None, 1e-2])
@pytest.mark.parametrize("normalized", [(5,), (4, 5)])
def test_rms_norm_matches_torch(dtype, eps, normalized):
    x = (_x((3, 4, 5)) * 1e-3).astype(dtype)  # (small, so eps matters)
    w = _x(normalized, 1).astype(dtype)
    compare_with_torch(lambda t, w: F.rms_norm(t, normalized, w, eps),
                       lambda t, w: TF.rms_norm(t, normalized, w, eps), x, w,
                       rtol=1e-5 if dtype == np.float32 else 1e-10)
    ours, theirs = nn.RMSNorm(normalized, eps), torch.nn.RMSNorm(normalized, eps)
    assert repr(ours) == repr(theirs) and list(ours.state_dict()) == list(theirs.state_dict())
    np.testing.assert_allclose(ours(tg.tensor(x)).numpy(), theirs(torch.tensor(x)).detach(),
                               rtol=1e-5 if dtype == np.float32 else 1e-10)
    assert nn.RMSNorm(5, elementwise_affine=False).weight is None
    with pytest.raises(tg.ShapeError, match="rms_norm: normalized_shape"):
        F.rms_norm(tg.tensor(x), (3,))


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("shape", [(2, 5, 3), (2, 5, 3, 4), (1, 5, 2, 3, 2)])
def test_local_response_norm_matches_torch(size, shape):
    compare_with_torch(lambda t: F.local_response_norm(t, size, 0.5, 0.6, 2.0),
                       lambda t: TF.local_response_norm(t, size, 0.5, 0.6, 2.0), _x(shape),
                       rtol=1e-9)
    ours, theirs = nn.LocalResponseNorm(size), torch.nn.LocalResponseNorm(size)
    assert repr(ours) == repr(theirs)
    np.testing.assert_allclose(ours(tg.tensor(_x(shape))).numpy(),
                               theirs(torch.tensor(_x(shape))).numpy(), rtol=1e-12)
    with pytest.raises(tg.ShapeError, match="3 or more"):
        F.local_response_norm(tg.tensor(_x((2, 3))), size)


def test_local_response_norm_gradients_match_finite_differences():
    check_grads(lambda t: F.local_response_norm(t, 3, 0.5, 0.75, 1.0), tg.tensor(_x((1, 4, 3))))


def _compiled_matches_eager(make, shape):
    eager_model, compiled_model = make(), make()

    def step(model, x):
        y = model(x * 1.0)
        return y, (y * y * y).sum()

    compiled = tg.compile(lambda x: step(compiled_model, x))
    for i in range(3):
        got = []
        for model, f in ((eager_model, lambda x: step(eager_model, x)),
                         (compiled_model, compiled)):
            x = tg.tensor(_x(shape, i, 1.0 + i), requires_grad=True)
            y, loss = f(x)
            loss.backward()
            got.append((y.detach().numpy(), x.grad.numpy(),
                        {k: v.numpy() for k, v in model.state_dict().items()}))
        np.testing.assert_allclose(got[1][0], got[0][0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got[1][1], got[0][1], rtol=1e-9, atol=1e-12)
        for k in got[0][2]:
            np.testing.assert_allclose(got[1][2][k], got[0][2][k], rtol=1e-12)


@pytest.mark.parametrize("make,shape", [
    (lambda: nn.BatchNorm3d(3, momentum=None).double(), (2, 3, 2, 2, 3)),
    (lambda: nn.InstanceNorm2d(3, affine=True, track_running_stats=True).double(), (2, 3, 4, 5)),
    (lambda: nn.RMSNorm((4, 5)).double(), (2, 3, 4, 5)),
    (lambda: nn.LocalResponseNorm(3), (2, 5, 4)),
], ids=["BatchNorm3d", "InstanceNorm2d", "RMSNorm", "LocalResponseNorm"])
def test_compiled_matches_eager(make, shape):
    _compiled_matches_eager(make, shape)
