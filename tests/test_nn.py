"""tg.nn against torch.nn: Module bookkeeping, layers on identical weights, default inits.

Every layer test builds the torch layer, copies its weights into ours through
``load_state_dict`` (NumPy arrays), runs the same input through both and compares the
outputs and the gradients with respect to the input and to every parameter.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import tracegrad as tg
from tracegrad import nn
from tracegrad.errors import ShapeError

torch = pytest.importorskip("torch")
tnn = torch.nn


# ---------------------------------------------------------------- helpers


def np_state(tmod) -> dict:
    return {k: v.detach().numpy().copy() for k, v in tmod.state_dict().items()}


def copy_weights(tmod, mod) -> None:
    """Give ``mod`` (ours) exactly the parameters and buffers of ``tmod`` (torch's)."""
    result = mod.load_state_dict(np_state(tmod))
    assert list(result.missing_keys) == [] and list(result.unexpected_keys) == []


def assert_close(ours, theirs, tol: float) -> None:
    a = ours.numpy() if isinstance(ours, tg.Tensor) else np.asarray(ours)
    b = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def run_both(tmod, mod, x: np.ndarray, *extra, dtype=np.float32, tol=1e-5, seed=0):
    """Forward ``x`` (and extra non-differentiable arguments) through both modules, pull a
    random cotangent back, and compare outputs, input grads and parameter grads."""
    if dtype == np.float64:
        tmod.double()
        mod.double()
    copy_weights(tmod, mod)
    x = x.astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    gx = tg.tensor(x, requires_grad=True)
    tout = tmod(tx, *[torch.as_tensor(e) for e in extra])
    out = mod(gx, *[tg.tensor(e) for e in extra])
    assert out.dtype == dtype
    assert_close(out, tout, tol)
    cot = np.random.default_rng(seed).standard_normal(tout.shape).astype(dtype)
    (tout * torch.tensor(cot)).sum().backward()
    (out * tg.tensor(cot)).sum().backward()
    assert_close(gx.grad, tx.grad, tol)
    tparams = dict(tmod.named_parameters())
    ours = dict(mod.named_parameters())
    assert list(ours) == list(tparams)
    for name, p in ours.items():
        assert p.grad is not None, name
        assert_close(p.grad, tparams[name].grad, tol)
    return out, tout


def rand(*shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------- Module: registration


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.scale = nn.Parameter(tg.ones(3))
        self.register_buffer("steps", tg.zeros(1))
        self.block = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 2, bias=False))
        self.plain = [1, 2, 3]  # an ordinary attribute: not registered
        self.not_param = tg.ones(2)  # a plain tensor: not a parameter

    def forward(self, x):
        return self.block(self.fc1(x) * self.scale)


class TorchNet(tnn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = tnn.Linear(4, 3)
        self.scale = tnn.Parameter(torch.ones(3))
        self.register_buffer("steps", torch.zeros(1))
        self.block = tnn.Sequential(tnn.Linear(3, 3), tnn.ReLU(), tnn.Linear(3, 2, bias=False))

    def forward(self, x):
        return self.block(self.fc1(x) * self.scale)


def test_registration_of_parameters_submodules_and_buffers():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == [n for n, _ in TorchNet().named_parameters()]
    # PyTorch's order: the module's own parameters first, then each submodule's
    assert names == ["scale", "fc1.weight", "fc1.bias", "block.0.weight", "block.0.bias",
                     "block.2.weight"]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())
    assert [n for n, _ in net.named_buffers()] == ["steps"]
    assert [n for n, _ in net.named_children()] == ["fc1", "block"]
    assert net.plain == [1, 2, 3]
    assert not isinstance(net.not_param, nn.Parameter)
    assert list(net.parameters(recurse=False)) == [net.scale]
    assert net.fc1.weight.shape == (3, 4)  # PyTorch's (out, in) layout


def test_parameter_identity_and_attribute_access():
    lin = nn.Linear(2, 3)
    ps = list(lin.parameters())
    assert ps[0] is lin.weight and ps[1] is lin.bias
    assert "weight" in lin._parameters and "weight" not in lin.__dict__
    with pytest.raises(AttributeError, match="nothing"):
        lin.nothing  # noqa: B018


def test_reassigning_a_parameter_replaces_it_and_none_is_allowed():
    lin = nn.Linear(2, 3)
    new = nn.Parameter(tg.zeros(3, 2))
    lin.weight = new
    assert lin.weight is new and any(p is new for p in lin.parameters())
    assert len(list(lin.parameters())) == 2
    lin.bias = None
    assert [n for n, _ in lin.named_parameters()] == ["weight"]
    assert list(lin.state_dict()) == ["weight"]


def test_deleting_a_registered_attribute():
    net = Net()
    del net.fc1
    assert "fc1.weight" not in dict(net.named_parameters())


def test_named_parameters_match_torch_for_nested_sequential():
    ours = nn.Sequential(nn.Linear(2, 4), nn.Sequential(nn.Linear(4, 4), nn.Tanh()),
                         nn.LayerNorm(4), nn.BatchNorm1d(4))
    theirs = tnn.Sequential(tnn.Linear(2, 4), tnn.Sequential(tnn.Linear(4, 4), tnn.Tanh()),
                            tnn.LayerNorm(4), tnn.BatchNorm1d(4))
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]


def test_shared_module_and_shared_parameter_listed_once():
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    tshared = tnn.Linear(3, 3)
    tmodel = tnn.Sequential(tshared, tnn.ReLU(), tshared)
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in tmodel.named_parameters()]
    assert len(list(model.parameters())) == 2

    a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    b.weight = a.weight  # weight tying
    tied = nn.Sequential(a, b)
    ta, tb = tnn.Linear(3, 3), tnn.Linear(3, 3)
    tb.weight = ta.weight
    ttied = tnn.Sequential(ta, tb)
    assert [n for n, _ in tied.named_parameters()] == ["0.weight", "0.bias", "1.bias"]
    assert [n for n, _ in tied.named_parameters()] == [n for n, _ in ttied.named_parameters()]
    # state_dict lists every name, as PyTorch's does
    assert sorted(tied.state_dict()) == sorted(ttied.state_dict())


def test_reassigning_a_parameter_keeps_its_position():
    lin, tlin = nn.Linear(2, 3), tnn.Linear(2, 3)
    lin.weight = nn.Parameter(tg.zeros(3, 2))
    tlin.weight = tnn.Parameter(torch.zeros(3, 2))
    assert [n for n, _ in lin.named_parameters()] == [n for n, _ in tlin.named_parameters()]


def test_state_dict_of_reused_submodule_matches_torch():
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    tshared = tnn.Linear(3, 3)
    tmodel = tnn.Sequential(tshared, tnn.ReLU(), tshared)
    assert list(model.state_dict()) == list(tmodel.state_dict())


def test_children_and_modules():
    inner = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    model = nn.Sequential(nn.Linear(2, 2), inner, nn.Tanh())
    children = list(model.children())
    assert len(children) == 3 and children[1] is inner
    mods = list(model.modules())
    assert mods[0] is model and len(mods) == 6
    assert [type(m).__name__ for m in mods] == ["Sequential", "Linear", "Sequential", "Linear",
                                               "ReLU", "Tanh"]
    shared = nn.Linear(2, 2)
    dup = nn.Sequential(shared, shared)
    assert len(list(dup.children())) == 1
    assert len(list(dup.modules())) == 2


def test_train_eval_propagate():
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(0.5), nn.BatchNorm1d(2)))
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model.train(False)
    assert not any(m.training for m in model.modules())
    model[1].train()
    assert not model.training and model[1][0].training and model[1][1].training


def test_zero_grad():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    model(tg.ones(4, 3)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad(set_to_none=False)
    for p in model.parameters():
        assert p.grad is not None and p.grad.shape == p.shape
        assert not p.grad.numpy().any()
    model(tg.ones(4, 3)).sum().backward()
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_sequential_indexing_len_iter_and_ordered_dict():
    from collections import OrderedDict

    model = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 3)), ("act", nn.ReLU())]))
    assert [n for n, _ in model.named_parameters()] == ["fc.weight", "fc.bias"]
    assert len(model) == 2 and isinstance(model[1], nn.ReLU)
    assert isinstance(model[-1], nn.ReLU)
    assert len(model[:1]) == 1
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU"]


def test_module_list_registers():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert [n for n, _ in layers.named_parameters()][:2] == ["0.weight", "0.bias"]
    assert len(list(layers.parameters())) == 6 and len(layers) == 3


# ---------------------------------------------------------------- Module: errors


def test_assigning_non_parameter_to_parameter_name_raises_type_error():
    lin = nn.Linear(2, 3)
    before = lin.weight
    with pytest.raises(TypeError, match="weight"):
        lin.weight = tg.zeros(3, 2)
    with pytest.raises(TypeError, match="weight"):
        lin.weight = np.zeros((3, 2), dtype=np.float32)
    assert lin.weight is before
    model = nn.Sequential(nn.Linear(2, 2))
    with pytest.raises(TypeError):
        setattr(model, "0", 5)


def test_forgetting_super_init_is_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    class BadParam(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(tg.zeros(2))

    for cls in (Bad, BadParam):
        with pytest.raises(RuntimeError, match=r"super\(\).__init__\(\)") as info:
            cls()
        assert cls.__name__ in str(info.value)


def test_module_without_forward_is_a_clear_error():
    class NoForward(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

    with pytest.raises(TypeError, match="forward") as info:
        NoForward()(tg.ones(1, 2))
    assert "NoForward" in str(info.value)


# ---------------------------------------------------------------- Module: state dicts


def make_model():
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


def snapshot(model) -> dict:
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def test_state_dict_keys_values_and_round_trip():
    model = make_model()
    tmodel = tnn.Sequential(tnn.Linear(3, 4), tnn.BatchNorm1d(4), tnn.ReLU(), tnn.Linear(4, 2))
    sd = model.state_dict()
    assert list(sd) == list(tmodel.state_dict())
    assert sd["1.num_batches_tracked"].dtype == np.int64
    assert all(not t.requires_grad for t in sd.values())
    other = make_model()
    result = other.load_state_dict(sd)
    assert list(result.missing_keys) == [] and list(result.unexpected_keys) == []
    for k, v in snapshot(other).items():
        np.testing.assert_array_equal(v, sd[k].numpy())
    # loaded values are copies, not aliases of the source
    src = {k: v.copy() for k, v in snapshot(model).items()}
    other.load_state_dict(src)
    src["0.weight"][...] = 123.0
    assert not (other[0].weight.numpy() == 123.0).any()
    # tg tensors and float64 arrays load too; the model keeps its dtype
    other.load_state_dict({k: tg.tensor(v.astype(np.float64) if v.dtype.kind == "f" else v)
                           for k, v in snapshot(model).items()})
    assert other[0].weight.dtype == np.float32
    np.testing.assert_allclose(other[0].weight.numpy(), model[0].weight.numpy())


def test_load_state_dict_missing_keys():
    model = make_model()
    before = snapshot(model)
    sd = snapshot(make_model())
    del sd["3.bias"]
    with pytest.raises(KeyError, match="missing") as info:
        model.load_state_dict(sd)
    assert "3.bias" in str(info.value)
    for k, v in snapshot(model).items():  # nothing changed
        np.testing.assert_array_equal(v, before[k])
    result = model.load_state_dict(sd, strict=False)
    assert list(result.missing_keys) == ["3.bias"] and list(result.unexpected_keys) == []
    np.testing.assert_array_equal(model[0].weight.numpy(), sd["0.weight"])
    np.testing.assert_array_equal(model[3].bias.numpy(), before["3.bias"])


def test_load_state_dict_unexpected_keys():
    model = make_model()
    before = snapshot(model)
    sd = snapshot(make_model())
    sd["9.weight"] = np.zeros(3, np.float32)
    with pytest.raises(KeyError, match="unexpected") as info:
        model.load_state_dict(sd)
    assert "9.weight" in str(info.value)
    for k, v in snapshot(model).items():
        np.testing.assert_array_equal(v, before[k])
    result = model.load_state_dict(sd, strict=False)
    assert list(result.missing_keys) == [] and list(result.unexpected_keys) == ["9.weight"]
    np.testing.assert_array_equal(model[3].weight.numpy(), sd["3.weight"])


@pytest.mark.parametrize("strict", [True, False])
def test_load_state_dict_wrong_shape_changes_nothing(strict):
    model = make_model()
    before = snapshot(model)
    sd = snapshot(make_model())
    sd["3.weight"] = np.zeros((4, 2), np.float32)  # transposed: the last key loaded
    with pytest.raises(ShapeError) as info:
        model.load_state_dict(sd, strict=strict)
    msg = str(info.value)
    assert "3.weight" in msg and "(4, 2)" in msg and "(2, 4)" in msg
    for k, v in snapshot(model).items():  # not even the keys before the bad one
        np.testing.assert_array_equal(v, before[k])


# ---------------------------------------------------------------- Module: repr


def test_repr_matches_torch():
    ours = nn.Sequential(
        nn.Linear(2, 3), nn.ReLU(),
        nn.Sequential(nn.Linear(3, 3, bias=False), nn.Tanh()),
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.Conv2d(8, 8, (3, 5), stride=2, dilation=2,
                                                             groups=4),
        nn.Embedding(10, 3), nn.Flatten(), nn.Flatten(0, 2), nn.AvgPool2d(2),
        nn.GELU(), nn.GELU(approximate="tanh"), nn.Sigmoid(), nn.SiLU(),
        nn.Softmax(dim=1), nn.LogSoftmax(dim=-1), nn.Identity(),
    )
    theirs = tnn.Sequential(
        tnn.Linear(2, 3), tnn.ReLU(),
        tnn.Sequential(tnn.Linear(3, 3, bias=False), tnn.Tanh()),
        tnn.Conv2d(3, 8, 3, padding=1, bias=False), tnn.Conv2d(8, 8, (3, 5), stride=2,
                                                               dilation=2, groups=4),
        tnn.Embedding(10, 3), tnn.Flatten(), tnn.Flatten(0, 2), tnn.AvgPool2d(2),
        tnn.GELU(), tnn.GELU(approximate="tanh"), tnn.Sigmoid(), tnn.SiLU(),
        tnn.Softmax(dim=1), tnn.LogSoftmax(dim=-1), tnn.Identity(),
    )
    assert repr(ours) == repr(theirs)


def test_repr_of_custom_module_matches_torch():
    assert repr(Net()) == repr(TorchNet()).replace("TorchNet(", "Net(", 1)


@pytest.mark.parametrize("make", [
    pytest.param(lambda m: m.Dropout(0.2), id="Dropout"),
    pytest.param(lambda m: m.LayerNorm(3), id="LayerNorm"),
    pytest.param(lambda m: m.LayerNorm((2, 3), elementwise_affine=False), id="LayerNorm-noaffine"),
    pytest.param(lambda m: m.BatchNorm1d(4), id="BatchNorm1d"),
    pytest.param(lambda m: m.MaxPool2d(2), id="MaxPool2d"),
    pytest.param(lambda m: m.CrossEntropyLoss(), id="CrossEntropyLoss"),
    pytest.param(lambda m: m.MSELoss(), id="MSELoss"),
    pytest.param(lambda m: m.ModuleList([m.Linear(2, 3), m.Linear(2, 3)]), id="ModuleList"),
])
def test_repr_differences_from_torch(make):
    assert repr(nn.Sequential(make(nn))) == repr(tnn.Sequential(make(tnn)))


def test_repr_with_extra_repr_and_children_matches_torch():
    class A(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def extra_repr(self):
            return "scale=2"

    class TA(tnn.Module):
        def __init__(self):
            super().__init__()
            self.fc = tnn.Linear(2, 2)

        def extra_repr(self):
            return "scale=2"

    assert repr(A()) == repr(TA()).replace("TA(", "A(", 1)


def test_parameter_repr():
    p = nn.Parameter(tg.zeros(2))
    assert repr(p).startswith("Parameter containing:\n")


# ---------------------------------------------------------------- layers vs torch


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear(dtype, tol, shape, bias):
    run_both(tnn.Linear(4, 6, bias=bias), nn.Linear(4, 6, bias=bias), rand(*shape),
             dtype=dtype, tol=tol)


def test_linear_wrong_input_shape():
    with pytest.raises(ShapeError, match="Linear"):
        nn.Linear(4, 2)(tg.ones(3, 5))


@pytest.mark.parametrize("kw", [
    dict(),
    dict(stride=2),
    dict(padding=1),
    dict(padding=(2, 1), stride=(1, 2)),
    dict(dilation=2, padding=2),
    dict(groups=2),
    dict(groups=4, stride=2, padding=1, dilation=(1, 2)),
    dict(bias=False, padding=1),
])
def test_conv2d(kw):
    cin, cout = 4, 8
    run_both(tnn.Conv2d(cin, cout, 3, **kw), nn.Conv2d(cin, cout, 3, **kw),
             rand(2, cin, 9, 10), dtype=np.float64, tol=1e-10)


def test_conv2d_float32_and_rectangular_kernel():
    run_both(tnn.Conv2d(3, 5, (2, 3), stride=(2, 1), padding=(1, 0)),
             nn.Conv2d(3, 5, (2, 3), stride=(2, 1), padding=(1, 0)),
             rand(2, 3, 7, 6), tol=1e-5)


def test_conv2d_groups_must_divide():
    with pytest.raises(ValueError, match="groups"):
        nn.Conv2d(3, 4, 3, groups=2)


def test_embedding():
    temb, emb = tnn.Embedding(7, 4), nn.Embedding(7, 4)
    copy_weights(temb, emb)
    idx = np.array([[0, 3, 3], [6, 1, 3]])
    out, tout = emb(tg.tensor(idx)), temb(torch.tensor(idx))
    assert_close(out, tout, 0)
    cot = rand(2, 3, 4)
    (out * tg.tensor(cot)).sum().backward()
    (tout * torch.tensor(cot)).sum().backward()
    assert_close(emb.weight.grad, temb.weight.grad, 1e-6)  # repeated index 3 accumulates
    with pytest.raises(IndexError):
        emb(tg.tensor([7]))


@pytest.mark.parametrize("shape,norm,kw", [
    ((4, 6), 6, {}),
    ((2, 3, 6), (3, 6), {}),
    ((3, 5), 5, dict(elementwise_affine=False)),
    ((3, 5), 5, dict(eps=1e-3)),
])
def test_layer_norm(shape, norm, kw):
    tln, ln = tnn.LayerNorm(norm, **kw), nn.LayerNorm(norm, **kw)
    with torch.no_grad():
        for p in tln.parameters():  # not the trivial ones/zeros
            p.add_(torch.randn(p.shape))
    run_both(tln, ln, rand(*shape) * 3 + 1, tol=1e-5)


def test_layer_norm_float64():
    run_both(tnn.LayerNorm(7), nn.LayerNorm(7), rand(3, 7), dtype=np.float64, tol=1e-12)


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5)])
@pytest.mark.parametrize("kw", [{}, dict(momentum=0.3, eps=1e-3), dict(affine=False)])
def test_batch_norm_1d_train_then_eval(shape, kw):
    tbn, bn = tnn.BatchNorm1d(3, **kw).double(), nn.BatchNorm1d(3, **kw).double()
    with torch.no_grad():
        for p in tbn.parameters():
            p.add_(torch.randn(p.shape, dtype=torch.float64))
    copy_weights(tbn, bn)
    for step in range(4):
        x = rand(*shape, seed=step).astype(np.float64) * (step + 1) + step
        tx, gx = torch.tensor(x, requires_grad=True), tg.tensor(x, requires_grad=True)
        out, tout = bn(gx), tbn(tx)
        assert_close(out, tout, 1e-10)
        cot = rand(*shape, seed=10 + step).astype(np.float64)
        (out * tg.tensor(cot)).sum().backward()
        (tout * torch.tensor(cot)).sum().backward()
        assert_close(gx.grad, tx.grad, 1e-10)
        for (_, p), (_, tp) in zip(bn.named_parameters(), tbn.named_parameters()):
            assert_close(p.grad, tp.grad, 1e-10)
            p.grad, tp.grad = None, None
    assert_close(bn.running_mean, tbn.running_mean, 1e-12)
    assert_close(bn.running_var, tbn.running_var, 1e-12)
    assert int(bn.num_batches_tracked.item()) == int(tbn.num_batches_tracked) == 4
    sd, tsd = bn.state_dict(), tbn.state_dict()
    assert list(sd) == list(tsd)
    # eval: normalizes with the running statistics, which stay put
    bn.eval()
    tbn.eval()
    run_both(tbn, bn, rand(*shape, seed=99), dtype=np.float64, tol=1e-10)
    assert int(bn.num_batches_tracked.item()) == 4
    assert_close(bn.running_mean, tbn.running_mean, 1e-12)


def test_batch_norm_1d_without_running_stats():
    tbn = tnn.BatchNorm1d(3, track_running_stats=False)
    bn = nn.BatchNorm1d(3, track_running_stats=False)
    assert list(bn.state_dict()) == list(tbn.state_dict()) == ["weight", "bias"]
    run_both(tbn, bn, rand(6, 3, 2), tol=1e-5)
    bn.eval()
    tbn.eval()  # still normalizes with the batch's statistics
    run_both(tbn, bn, rand(6, 3, seed=4), tol=1e-5)


def test_batch_norm_1d_momentum_none_is_cumulative_average():
    tbn, bn = tnn.BatchNorm1d(3, momentum=None), nn.BatchNorm1d(3, momentum=None)
    for step in range(3):
        x = rand(8, 3, seed=step) + step
        bn(tg.tensor(x))
        tbn(torch.tensor(x))
    assert_close(bn.running_mean, tbn.running_mean, 1e-6)
    assert_close(bn.running_var, tbn.running_var, 1e-6)


def test_batch_norm_1d_float32():
    tbn, bn = tnn.BatchNorm1d(5), nn.BatchNorm1d(5)
    run_both(tbn, bn, rand(16, 5) * 2 + 1, tol=1e-5)
    assert_close(bn.running_mean, tbn.running_mean, 1e-6)
    assert_close(bn.running_var, tbn.running_var, 1e-6)


def test_batch_norm_1d_errors():
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ShapeError):
        bn(tg.ones(4, 5))
    with pytest.raises(ValueError, match="more than 1 value"):
        bn(tg.ones(1, 3))


def test_dropout_eval_is_identity():
    drop = nn.Dropout(0.7).eval()
    x = tg.tensor(rand(20, 30), requires_grad=True)
    out = drop(x)
    np.testing.assert_array_equal(out.numpy(), x.numpy())
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((20, 30), np.float32))


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_dropout_train_scales_kept_elements(p):
    tg.manual_seed(0)
    drop = nn.Dropout(p)
    x = tg.tensor(rand(200, 100) + 5.0, requires_grad=True)
    out = drop(x)
    o, xv = out.numpy(), x.numpy()
    kept = o != 0
    np.testing.assert_allclose(o[kept], xv[kept] / (1 - p), rtol=1e-6)
    assert abs((~kept).mean() - p) < 0.02
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), kept / (1 - p), rtol=1e-6)
    # unbiased, as torch's: E[out] = x (4 standard errors of the sample mean)
    torch.manual_seed(0)
    tout = tnn.Dropout(p)(torch.tensor(xv)).numpy()
    err = 4 * xv.mean() * math.sqrt(p / (1 - p) / xv.size)
    assert abs(o.mean() - xv.mean()) < err
    assert abs(tout.mean() - xv.mean()) < err


def test_dropout_edge_probabilities():
    x = tg.tensor(rand(4, 5))
    np.testing.assert_array_equal(nn.Dropout(0.0)(x).numpy(), x.numpy())
    assert not nn.Dropout(1.0)(x).numpy().any()
    with pytest.raises(ValueError):
        nn.Dropout(1.5)


def test_dropout_reproducible_with_manual_seed():
    x = tg.ones(10, 10)
    tg.manual_seed(3)
    a = nn.Dropout(0.5)(x).numpy()
    tg.manual_seed(3)
    b = nn.Dropout(0.5)(x).numpy()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("args", [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=1),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(2, 3), stride=(1, 2)),
    dict(kernel_size=2, stride=1, dilation=2),
])
def test_max_pool2d(args):
    # distinct values, so the argmax (and the gradient) is unambiguous
    x = np.random.default_rng(0).permutation(2 * 3 * 8 * 9).reshape(2, 3, 8, 9) / 10.0
    run_both(tnn.MaxPool2d(**args), nn.MaxPool2d(**args), x.astype(np.float32), tol=1e-6)


@pytest.mark.parametrize("args", [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=1),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
    dict(kernel_size=(2, 3), stride=(1, 2)),
])
def test_avg_pool2d(args):
    run_both(tnn.AvgPool2d(**args), nn.AvgPool2d(**args), rand(2, 3, 8, 9), tol=1e-6)


@pytest.mark.parametrize("name,args", [
    ("MaxPool2d", (3, 2, 1, 1, False, True)),  # PyTorch's positional order: ceil_mode last
    ("AvgPool2d", (3, 2, 1, True, False, 5)),  # ceil_mode, count_include_pad, divisor
    ("AvgPool2d", (3, 2, 1, True)),
    ("MaxPool1d", (3, 2, 1, 1, False, True)),
    ("AvgPool1d", (3, 2, 1, True, False)),
])
def test_pool_modules_take_pytorchs_arguments_in_its_order(name, args):
    shape = (2, 3, 8, 9) if name.endswith("2d") else (2, 3, 9)
    x = rand(*shape)
    ours, theirs = getattr(nn, name)(*args), getattr(tnn, name)(*args)
    assert repr(ours) == repr(theirs)
    run_both(theirs, ours, x, tol=1e-6)


@pytest.mark.parametrize("nd", [1, 2])
def test_max_pool_modules_return_indices_for_unpooling(nd):
    x = np.random.default_rng(1).permutation(2 * 3 * 8 * 8).reshape(
        (2, 3, 8, 8) if nd == 2 else (2, 3, 64))[..., :8] / 10.0
    x = np.ascontiguousarray(x).astype(np.float32)
    pool, unpool = getattr(nn, f"MaxPool{nd}d"), getattr(nn, f"MaxUnpool{nd}d")
    tpool, tunpool = getattr(tnn, f"MaxPool{nd}d"), getattr(tnn, f"MaxUnpool{nd}d")
    y, i = pool(2, return_indices=True)(tg.tensor(x))
    ty, ti = tpool(2, return_indices=True)(torch.tensor(x))
    np.testing.assert_array_equal(y.numpy(), ty.numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    np.testing.assert_array_equal(unpool(2)(y, i).numpy(), tunpool(2)(ty, ti).numpy())


@pytest.mark.parametrize("dims", [(), (0, -1), (2, 3), (1, 2)])
def test_flatten(dims):
    tout, out = run_both(tnn.Flatten(*dims), nn.Flatten(*dims), rand(2, 3, 4, 5), tol=0)
    assert out.shape == tuple(tout.shape)


def test_identity():
    x = tg.tensor(rand(3, 2))
    assert nn.Identity()(x) is x


ACTIVATIONS = [
    ("ReLU", {}), ("Tanh", {}), ("Sigmoid", {}), ("SiLU", {}), ("GELU", {}),
    ("GELU", {"approximate": "tanh"}), ("Softmax", {"dim": 1}), ("Softmax", {"dim": -1}),
    ("LogSoftmax", {"dim": 1}), ("LogSoftmax", {"dim": 0}),
]


@pytest.mark.parametrize("name,kw", ACTIVATIONS)
def test_activations(name, kw):
    x = rand(4, 5, 3) * 3
    x[0, 0, 0] = 0.3  # keep off the ReLU kink
    run_both(getattr(tnn, name)(**kw), getattr(nn, name)(**kw), x, tol=1e-5)
    run_both(getattr(tnn, name)(**kw), getattr(nn, name)(**kw), x, dtype=np.float64, tol=1e-12)


def _loss_case(name, kw, x, target, dtype=np.float32, tol=1e-5):
    tloss, loss = getattr(tnn, name)(**{k: _to_torch(v) for k, v in kw.items()}), \
        getattr(nn, name)(**{k: _to_tg(v) for k, v in kw.items()})
    x = x.astype(dtype)
    if target.dtype.kind == "f":
        target = target.astype(dtype)
    tx, gx = torch.tensor(x, requires_grad=True), tg.tensor(x, requires_grad=True)
    tout, out = tloss(tx, torch.tensor(target)), loss(gx, tg.tensor(target))
    assert_close(out, tout, tol)
    cot = np.random.default_rng(1).standard_normal(tout.shape).astype(dtype)
    (tout * torch.tensor(cot)).sum().backward()
    (out * tg.tensor(cot)).sum().backward()
    assert_close(gx.grad, tx.grad, tol)


def _to_torch(v):
    return torch.tensor(v) if isinstance(v, np.ndarray) else v


def _to_tg(v):
    return tg.tensor(v) if isinstance(v, np.ndarray) else v


_W = np.array([0.2, 1.0, 3.0, 0.5], np.float32)
_IDX = np.array([0, 3, 1, 1, 2, 3])


@pytest.mark.parametrize("kw", [
    {}, {"reduction": "sum"}, {"reduction": "none"}, {"weight": _W},
    {"weight": _W, "reduction": "none"}, {"ignore_index": 1}, {"label_smoothing": 0.1},
    {"label_smoothing": 0.2, "weight": _W},
])
def test_cross_entropy_loss(kw):
    _loss_case("CrossEntropyLoss", kw, rand(6, 4) * 2, _IDX)


def test_cross_entropy_loss_spatial_and_probabilities():
    _loss_case("CrossEntropyLoss", {}, rand(2, 4, 3, 3),
               np.random.default_rng(0).integers(0, 4, (2, 3, 3)))
    probs = np.random.default_rng(0).dirichlet(np.ones(4), 6)
    _loss_case("CrossEntropyLoss", {}, rand(6, 4), probs)
    _loss_case("CrossEntropyLoss", {"label_smoothing": 0.1}, rand(6, 4), probs,
               dtype=np.float64, tol=1e-12)


@pytest.mark.parametrize("kw", [{}, {"reduction": "sum"}, {"weight": _W}, {"ignore_index": 3}])
def test_nll_loss(kw):
    logp = np.log(np.random.default_rng(0).dirichlet(np.ones(4), 6))
    _loss_case("NLLLoss", kw, logp, _IDX)


@pytest.mark.parametrize("name", ["MSELoss", "L1Loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_losses(name, reduction):
    _loss_case(name, {"reduction": reduction}, rand(5, 3), rand(5, 3, seed=1))


@pytest.mark.parametrize("kw", [
    {}, {"reduction": "sum"}, {"reduction": "none"},
    {"weight": np.array([0.5, 2.0, 1.0], np.float32)},
    {"pos_weight": np.array([3.0, 0.5, 1.0], np.float32)},
])
def test_bce_with_logits_loss(kw):
    target = (np.random.default_rng(2).random((5, 3)) > 0.5).astype(np.float32)
    target[0, 0] = 0.3  # soft targets too
    _loss_case("BCEWithLogitsLoss", kw, rand(5, 3) * 4, target)


@pytest.mark.parametrize("kw", [{}, {"reduction": "sum"},
                                {"weight": np.array([0.5, 2.0, 1.0], np.float32)}])
def test_bce_loss(kw):
    probs = 1 / (1 + np.exp(-rand(5, 3) * 2))
    target = np.random.default_rng(3).random((5, 3)).astype(np.float32)
    _loss_case("BCELoss", kw, probs, target, tol=1e-5)


def test_small_network_end_to_end_matches_torch():
    tmodel = tnn.Sequential(tnn.Conv2d(2, 4, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
                            tnn.Flatten(), tnn.Linear(4 * 3 * 3, 8), tnn.LayerNorm(8),
                            tnn.Tanh(), tnn.Linear(8, 3))
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(4 * 3 * 3, 8), nn.LayerNorm(8),
                          nn.Tanh(), nn.Linear(8, 3))
    run_both(tmodel, model, rand(5, 2, 6, 6), dtype=np.float64, tol=1e-10)


def test_double_and_float_cast_in_place():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    w = model[0].weight
    model.double()
    assert model[0].weight is w and w.dtype == np.float64
    assert model[1].running_mean.dtype == np.float64
    assert model[1].num_batches_tracked.dtype == np.int64
    model.float()
    assert w.dtype == np.float32


# ---------------------------------------------------------------- init


def test_linear_default_init_distribution():
    tg.manual_seed(0)
    fan_in = 400
    lin = nn.Linear(fan_in, 500)
    bound = 1 / math.sqrt(fan_in)
    w = lin.weight.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert abs(w.mean()) < 0.01 * bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)  # uniform's std
    counts, _ = np.histogram(w, bins=8, range=(-bound, bound))
    np.testing.assert_allclose(counts / w.size, 1 / 8, atol=0.01)  # roughly flat
    b = lin.bias.numpy()
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.9 * bound
    assert lin.weight.dtype == np.float32


def test_linear_init_matches_torch_statistics():
    tw = tnn.Linear(300, 400).weight.detach().numpy()
    w = nn.Linear(300, 400).weight.numpy()
    assert np.abs(w).max() == pytest.approx(np.abs(tw).max(), rel=1e-3)
    assert w.std() == pytest.approx(tw.std(), rel=0.02)


@pytest.mark.parametrize("cin,groups,k", [(8, 1, 3), (8, 2, 3), (6, 1, (2, 5))])
def test_conv2d_default_init_uses_fan_in_with_kernel(cin, groups, k):
    tg.manual_seed(1)
    conv = nn.Conv2d(cin, 64, k, groups=groups)
    kh, kw = (k, k) if isinstance(k, int) else k
    fan_in = cin // groups * kh * kw
    bound = 1 / math.sqrt(fan_in)
    w = conv.weight.numpy()
    assert w.shape == (64, cin // groups, kh, kw)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.97 * bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.04)
    assert np.abs(conv.bias.numpy()).max() <= bound
    tconv = tnn.Conv2d(cin, 64, k, groups=groups)
    assert np.abs(tconv.weight.detach().numpy()).max() <= bound


def test_embedding_default_init_is_standard_normal():
    tg.manual_seed(2)
    w = nn.Embedding(1000, 64).weight.numpy()
    assert abs(w.mean()) < 0.01
    assert w.std() == pytest.approx(1.0, rel=0.01)
    assert np.abs(w).max() > 3.5  # not uniform


def test_layer_norm_and_batch_norm_init():
    ln, bn = nn.LayerNorm(5), nn.BatchNorm1d(5)
    for m in (ln, bn):
        np.testing.assert_array_equal(m.weight.numpy(), np.ones(5))
        np.testing.assert_array_equal(m.bias.numpy(), np.zeros(5))
    np.testing.assert_array_equal(bn.running_mean.numpy(), np.zeros(5))
    np.testing.assert_array_equal(bn.running_var.numpy(), np.ones(5))
    assert int(bn.num_batches_tracked.item()) == 0


def _big(shape):
    return nn.Parameter(tg.zeros(*shape))


@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_xavier(gain):
    tg.manual_seed(0)
    shape = (300, 200, 3)
    fan_in, fan_out = 200 * 3, 300 * 3
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    w = nn.init.xavier_uniform_(_big(shape), gain=gain).numpy()
    bound = math.sqrt(3.0) * std
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.999 * bound
    assert w.std() == pytest.approx(std, rel=0.01)
    w = nn.init.xavier_normal_(_big(shape), gain=gain).numpy()
    assert w.std() == pytest.approx(std, rel=0.01)
    assert abs(w.mean()) < 0.01 * std


@pytest.mark.parametrize("a,mode,nonlinearity", [
    (0.0, "fan_in", "relu"), (0.0, "fan_out", "relu"), (math.sqrt(5), "fan_in", "leaky_relu"),
    (0.2, "fan_out", "leaky_relu"), (0.0, "fan_in", "tanh"), (0.0, "fan_in", "linear"),
])
def test_kaiming(a, mode, nonlinearity):
    tg.manual_seed(0)
    shape = (250, 400)
    fan = 400 if mode == "fan_in" else 250
    std = torch.nn.init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    w = nn.init.kaiming_uniform_(_big(shape), a=a, mode=mode, nonlinearity=nonlinearity).numpy()
    bound = math.sqrt(3.0) * std
    assert np.abs(w).max() <= bound * (1 + 1e-6) and np.abs(w).max() > 0.999 * bound
    assert w.std() == pytest.approx(std, rel=0.01)
    w = nn.init.kaiming_normal_(_big(shape), a=a, mode=mode, nonlinearity=nonlinearity).numpy()
    assert w.std() == pytest.approx(std, rel=0.01)
    # same statistics as torch's
    tw = torch.empty(shape)
    torch.nn.init.kaiming_normal_(tw, a=a, mode=mode, nonlinearity=nonlinearity)
    assert w.std() == pytest.approx(tw.std().item(), rel=0.02)


def test_simple_inits_in_place():
    t = _big((3, 4))
    assert nn.init.constant_(t, 2.5) is t
    np.testing.assert_array_equal(t.numpy(), np.full((3, 4), 2.5))
    nn.init.ones_(t)
    assert (t.numpy() == 1).all()
    nn.init.zeros_(t)
    assert (t.numpy() == 0).all()
    tg.manual_seed(0)
    w = nn.init.uniform_(_big((200, 200)), -2.0, 3.0).numpy()
    assert w.min() >= -2 and w.max() <= 3 and w.mean() == pytest.approx(0.5, abs=0.02)
    w = nn.init.normal_(_big((200, 200)), 1.0, 0.5).numpy()
    assert w.mean() == pytest.approx(1.0, abs=0.01) and w.std() == pytest.approx(0.5, rel=0.01)
    assert t.dtype == np.float32


def test_init_errors():
    with pytest.raises(ValueError):
        nn.init.xavier_uniform_(_big((5,)))
    with pytest.raises(ValueError):
        nn.init.kaiming_uniform_(_big((5, 5)), mode="fan_middle")
    with pytest.raises(ValueError):
        nn.init.calculate_gain("swish")


@pytest.mark.parametrize("name,param", [
    ("linear", None), ("conv1d", None), ("conv2d", None), ("conv3d", None),
    ("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", None),
    ("leaky_relu", 0.2), ("leaky_relu", 0), ("leaky_relu", math.sqrt(5)), ("selu", None),
])
def test_calculate_gain_matches_torch(name, param):
    assert nn.init.calculate_gain(name, param) == pytest.approx(
        torch.nn.init.calculate_gain(name, param), rel=1e-12)


@pytest.mark.parametrize("name", ["conv_transpose1d", "conv_transpose2d", "conv_transpose3d"])
def test_calculate_gain_conv_transpose(name):
    assert nn.init.calculate_gain(name) == torch.nn.init.calculate_gain(name)


def test_manual_seed_reproducible_init():
    def build():
        return nn.Sequential(nn.Linear(5, 4), nn.Conv2d(2, 3, 3), nn.Embedding(6, 2))

    tg.manual_seed(123)
    a = build()
    tg.manual_seed(123)
    b = build()
    c = build()
    for (k, va), (_, vb), (_, vc) in zip(a.state_dict().items(), b.state_dict().items(),
                                         c.state_dict().items()):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
        if va.numpy().size > 1 and k != "1.num_batches_tracked":
            assert not np.array_equal(va.numpy(), vc.numpy()), k
