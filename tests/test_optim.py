"""tg.optim against torch.optim: update math, parameter groups, state dicts and exact resume,
learning-rate schedules, and nn.utils.clip_grad_norm_.

Each comparison builds the same small model in both libraries (torch's initial weights copied
into ours), trains it on the same data with the same optimizer settings, and compares the
parameters after every step.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import tracegrad as tg
from tracegrad import nn
from tracegrad.io import load, save

torch = pytest.importorskip("torch")
tnn = torch.nn

STEPS = 20


# ---------------------------------------------------------------- helpers


def make_pair(dtype=np.float32, batchnorm=False, seed=0):
    """The same MLP in torch and tracegrad, with identical initial weights."""
    torch.manual_seed(seed)
    layers = [tnn.Linear(5, 8)] + ([tnn.BatchNorm1d(8)] if batchnorm else []) + [
        tnn.Tanh(), tnn.Linear(8, 3)]
    ours = [nn.Linear(5, 8)] + ([nn.BatchNorm1d(8)] if batchnorm else []) + [
        nn.Tanh(), nn.Linear(8, 3)]
    tmodel, model = tnn.Sequential(*layers), nn.Sequential(*ours)
    if dtype == np.float64:
        tmodel.double()
        model.double()
    model.load_state_dict({k: v.detach().numpy().copy() for k, v in
                           tmodel.state_dict().items()})
    return tmodel, model


def batch(step: int, dtype=np.float32, seed: int = 1000):
    rng = np.random.default_rng(seed + step)
    return rng.standard_normal((16, 5)).astype(dtype), rng.standard_normal((16, 3)).astype(dtype)


def _sign(opt) -> float:
    # maximize=True climbs the objective: give it -loss, so the run stays bounded
    return -1.0 if opt.param_groups[0].get("maximize") else 1.0


def tg_step(model, opt, step, dtype=np.float32, seed: int = 1000):
    x, y = batch(step, dtype, seed)
    opt.zero_grad()
    loss = nn.functional.mse_loss(model(tg.tensor(x)), tg.tensor(y))
    (loss * _sign(opt)).backward()
    opt.step()
    return loss.item()


def torch_step(model, opt, step, dtype=np.float32, seed: int = 1000):
    x, y = batch(step, dtype, seed)
    opt.zero_grad()
    loss = tnn.functional.mse_loss(model(torch.tensor(x)), torch.tensor(y))
    (loss * _sign(opt)).backward()
    opt.step()
    return loss.item()


def assert_params_close(model, tmodel, tol):
    theirs = dict(tmodel.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.numpy(), theirs[name].detach().numpy(), rtol=tol, atol=tol,
                                   err_msg=name)


def params(model) -> dict:
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01, maximize=True)),
    ("SGD", dict(lr=0.1, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.05, maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True, betas=(0.85, 0.95))),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for name, kw in CONFIGS]


# ---------------------------------------------------------------- update math vs torch


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,kw", CONFIGS, ids=IDS)
def test_update_math_matches_torch_on_identical_gradients(name, kw, dtype):
    """The optimizer alone: the same gradients fed to both for 20 steps."""
    rng = np.random.default_rng(7)
    _, ps, tps, opt, topt = optimizer_twins(name, kw, dtype, rng)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    for _ in range(STEPS):
        step_both(opt, topt, [rng.standard_normal(p.shape).astype(dtype) for p in ps], tol)


def optimizer_twins(name: str, kw: dict, dtype, rng) -> tuple:
    """(initial values, tracegrad parameters, torch's, tracegrad's optimizer ``name``,
    torch's): three parameters of mixed shapes, the same values in both."""
    init = [rng.standard_normal(s).astype(dtype) for s in [(6, 5), (6,), (3, 3, 2)]]
    tps = [torch.tensor(a, requires_grad=True) for a in init]
    ps = [nn.Parameter(tg.tensor(a)) for a in init]
    return init, ps, tps, getattr(tg.optim, name)(ps, **kw), \
        getattr(torch.optim, name)(tps, **kw)


def step_both(opt, topt, grads: list, tol: float) -> None:
    """One step of both optimizers on the same gradients; their parameters then agree."""
    ps = [p for g in opt.param_groups for p in g["params"]]
    tps = [p for g in topt.param_groups for p in g["params"]]
    for p, tp, g in zip(ps, tps, grads):
        p.grad, tp.grad = tg.tensor(g), torch.tensor(g)
    opt.step()
    topt.step()
    for p, tp in zip(ps, tps):
        assert p.dtype == tp.detach().numpy().dtype
        np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,kw", CONFIGS, ids=IDS)
def test_training_matches_torch(name, kw, dtype):
    """Forward, backward and update together, 20 steps: 1e-6 in float32 (the two libraries'
    forward and backward round differently, ~1e-7), 1e-12 in float64."""
    tmodel, model = make_pair(dtype)
    topt = getattr(torch.optim, name)(tmodel.parameters(), **kw)
    opt = getattr(tg.optim, name)(model.parameters(), **kw)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    for step in range(STEPS):
        loss, tloss = tg_step(model, opt, step, dtype), torch_step(tmodel, topt, step, dtype)
        assert loss == pytest.approx(tloss, rel=tol, abs=tol)
        assert_params_close(model, tmodel, tol)
    assert all(p.dtype == dtype for p in model.parameters())


@pytest.mark.parametrize("name,kw", [("Adam", dict(lr=0.01)), ("AdamW", dict(lr=0.01)),
                                     ("SGD", dict(lr=0.05, momentum=0.9))])
def test_optimizer_state_matches_torch(name, kw):
    tmodel, model = make_pair(np.float64)
    topt = getattr(torch.optim, name)(tmodel.parameters(), **kw)
    opt = getattr(tg.optim, name)(model.parameters(), **kw)
    for step in range(3):
        tg_step(model, opt, step, np.float64)
        torch_step(tmodel, topt, step, np.float64)
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sorted(sd) == ["param_groups", "state"]
    assert sorted(sd["state"]) == sorted(tsd["state"])
    for i, tstate in tsd["state"].items():
        assert sorted(sd["state"][i]) == sorted(tstate)
        for k, tv in tstate.items():
            v = sd["state"][i][k]
            np.testing.assert_allclose(np.asarray(v.numpy() if isinstance(v, tg.Tensor) else v),
                                       tv.numpy(), rtol=1e-12, atol=1e-12, err_msg=k)
    (group,), (tgroup,) = sd["param_groups"], tsd["param_groups"]
    assert group["params"] == tgroup["params"] == list(range(4))
    for k, v in group.items():
        if k in tgroup and k != "params":
            assert v == tgroup[k], k


def test_param_groups_with_different_hyperparameters():
    tmodel, model = make_pair(np.float64)
    tgroups = [{"params": tmodel[0].parameters()},
               {"params": tmodel[2].parameters(), "lr": 0.01, "momentum": 0.5}]
    groups = [{"params": model[0].parameters()},
              {"params": model[2].parameters(), "lr": 0.01, "momentum": 0.5}]
    topt = torch.optim.SGD(tgroups, lr=0.1, momentum=0.9, weight_decay=0.01)
    opt = tg.optim.SGD(groups, lr=0.1, momentum=0.9, weight_decay=0.01)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01]
    assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.5]
    assert opt.param_groups[1]["weight_decay"] == 0.01  # default filled in
    for step in range(STEPS):
        tg_step(model, opt, step, np.float64)
        torch_step(tmodel, topt, step, np.float64)
    assert_params_close(model, tmodel, 1e-12)
    assert opt.state_dict()["param_groups"][1]["params"] == [2, 3]


def test_param_groups_adam_and_add_param_group():
    tmodel, model = make_pair(np.float64)
    topt = torch.optim.Adam(tmodel[0].parameters(), lr=0.02)
    opt = tg.optim.Adam(model[0].parameters(), lr=0.02)
    topt.add_param_group({"params": tmodel[2].parameters(), "lr": 0.005, "amsgrad": True})
    opt.add_param_group({"params": model[2].parameters(), "lr": 0.005, "amsgrad": True})
    for step in range(STEPS):
        tg_step(model, opt, step, np.float64)
        torch_step(tmodel, topt, step, np.float64)
    assert_params_close(model, tmodel, 1e-12)


def test_optimizer_argument_errors():
    _, model = make_pair()
    with pytest.raises(ValueError):
        tg.optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="nesterov"):
        tg.optim.SGD(model.parameters(), lr=0.1, nesterov=True)
    with pytest.raises(ValueError):
        tg.optim.SGD(model.parameters(), lr=-1.0)
    with pytest.raises(ValueError, match="betas"):
        tg.optim.Adam(model.parameters(), betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="two groups"):
        tg.optim.SGD([{"params": model[0].parameters()}, {"params": [model[0].weight]}],
                     lr=0.1)
    with pytest.raises(TypeError):
        tg.optim.SGD([np.zeros(3)], lr=0.1)


def test_param_groups_keep_extra_keys_and_names_like_torch():
    """A group's own keys ("name", timm's "lr_scale") are kept and saved, and an optimizer
    built over model.named_parameters() records "param_names", as torch's (both raised)."""
    tmodel, model = make_pair()
    for lib, m in ((torch, tmodel), (tg, model)):
        opt = lib.optim.SGD([{"params": m[0].parameters(), "name": "first", "lr_scale": 0.5}],
                            lr=0.1)
        group = opt.state_dict()["param_groups"][0]
        assert group["name"] == "first" and group["lr_scale"] == 0.5
        opt = lib.optim.SGD(m.named_parameters(), lr=0.1, momentum=0.9)
        assert opt.param_groups[0]["params"] == list(m.parameters())
        assert opt.state_dict()["param_groups"][0]["param_names"] == [
            "0.weight", "0.bias", "2.weight", "2.bias"]
        with pytest.raises(ValueError, match="with.*names"):
            opt.add_param_group({"params": [lib.zeros(2, requires_grad=True)]})
    opt = tg.optim.SGD(model.named_parameters(), lr=0.1, momentum=0.9)
    tg_step(model, opt, 0)
    fresh = tg.optim.SGD(model.named_parameters(), lr=0.1, momentum=0.9)
    fresh.load_state_dict(opt.state_dict())
    assert fresh.param_groups[0]["param_names"][0] == "0.weight"


def test_frozen_parameters_are_accepted_and_skipped_like_torch():
    """Fine-tuning: freeze a layer, then hand all of model.parameters() to the optimizer."""
    tmodel, model = make_pair(np.float64)
    tmodel[0].requires_grad_(False)
    model[0].requires_grad_(False)
    topt = torch.optim.Adam(tmodel.parameters(), lr=0.1)
    opt = tg.optim.Adam(model.parameters(), lr=0.1)
    before = model[0].weight.numpy().copy()
    for step in range(3):
        tg_step(model, opt, step, np.float64)
        torch_step(tmodel, topt, step, np.float64)
    np.testing.assert_array_equal(model[0].weight.numpy(), before)
    assert_params_close(model, tmodel, 1e-12)
    assert sorted(opt.state_dict()["state"]) == sorted(topt.state_dict()["state"]) == [2, 3]


def test_optimizer_refuses_what_torch_refuses():
    _, model = make_pair()
    w = model[0].weight
    with pytest.raises(ValueError, match="non-leaf"):
        tg.optim.SGD([w * 2], lr=0.1)
    with pytest.raises(TypeError, match="one Tensor"):  # not its rows, silently
        tg.optim.SGD(w, lr=0.1)
    with pytest.raises(TypeError, match="set"):
        tg.optim.SGD({w}, lr=0.1)
    opt = tg.optim.SGD([w], lr=0.1)
    with pytest.raises(TypeError, match="set"):
        opt.add_param_group({"params": {model[0].bias}})


def test_optimizer_state_is_keyed_by_parameter_and_survives_deepcopy():
    _, model = make_pair(np.float64)
    opt = tg.optim.Adam(model.parameters(), lr=0.1)
    for step in range(2):
        tg_step(model, opt, step, np.float64)
    w = model[0].weight
    assert opt.state[w]["exp_avg"].shape == w.shape  # torch's opt.state[p]
    model2, opt2 = copy.deepcopy((model, opt))
    for p, p2 in zip(opt.param_groups[0]["params"], opt2.param_groups[0]["params"]):
        assert p2 in opt2.state and p2 is not p
        np.testing.assert_array_equal(opt2.state[p2]["exp_avg"].numpy(),
                                      opt.state[p]["exp_avg"].numpy())
    for step in range(2, 4):  # the copy continues exactly as the original
        tg_step(model, opt, step, np.float64)
        tg_step(model2, opt2, step, np.float64)
    for a, b in zip(model.parameters(), model2.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


# ---------------------------------------------------------------- zero_grad and None grads


def test_zero_grad_set_to_none():
    _, model = make_pair()
    opt = tg.optim.SGD(model.parameters(), lr=0.1)
    x, y = batch(0)
    nn.functional.mse_loss(model(tg.tensor(x)), tg.tensor(y)).backward()
    opt.zero_grad(set_to_none=False)
    for p in model.parameters():
        assert p.grad is not None and p.grad.shape == p.shape and not p.grad.numpy().any()
    before = params(model)
    opt.step()  # zero gradients: plain SGD leaves the weights alone
    for k, v in params(model).items():
        np.testing.assert_array_equal(v, before[k])
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    opt.zero_grad(set_to_none=True)
    assert all(p.grad is None for p in model.parameters())


def test_zero_grad_false_then_accumulate_matches_torch():
    tmodel, model = make_pair(np.float64)
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.1, momentum=0.9)
    opt = tg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for step in range(5):
        for o, m, lib in ((opt, model, "tg"), (topt, tmodel, "torch")):
            o.zero_grad(set_to_none=False)
            for micro in range(2):  # gradient accumulation over two micro-batches
                x, y = batch(10 * step + micro, np.float64)
                if lib == "tg":
                    nn.functional.mse_loss(m(tg.tensor(x)), tg.tensor(y)).backward()
                else:
                    tnn.functional.mse_loss(m(torch.tensor(x)), torch.tensor(y)).backward()
            o.step()
    assert_params_close(model, tmodel, 1e-12)


def test_parameters_without_grad_are_skipped_like_torch():
    tmodel, model = make_pair(np.float64)
    topt = torch.optim.Adam(tmodel.parameters(), lr=0.1)
    opt = tg.optim.Adam(model.parameters(), lr=0.1)
    for o, m in ((opt, model), (topt, tmodel)):
        for p in m[2].parameters():  # only the last layer gets gradients
            p.requires_grad_(True)
        o.zero_grad()
    x, y = batch(0, np.float64)
    out = model(tg.tensor(x))
    nn.functional.mse_loss(out, tg.tensor(y)).backward()
    model[0].weight.grad = model[0].bias.grad = None
    tout = tmodel(torch.tensor(x))
    tnn.functional.mse_loss(tout, torch.tensor(y)).backward()
    tmodel[0].weight.grad = tmodel[0].bias.grad = None
    before = model[0].weight.numpy().copy()
    opt.step()
    topt.step()
    np.testing.assert_array_equal(model[0].weight.numpy(), before)
    assert sorted(opt.state_dict()["state"]) == sorted(topt.state_dict()["state"]) == [2, 3]
    assert_params_close(model, tmodel, 1e-12)


# ---------------------------------------------------------------- state dicts and resume


RESUME_CONFIGS = [
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
]


def _train(model, opt, steps, sched=None):
    for step in steps:
        tg_step(model, opt, step)
        if sched is not None:
            sched.step()


@pytest.mark.parametrize("through_file", [False, True], ids=["memory", "file"])
@pytest.mark.parametrize("name,kw", RESUME_CONFIGS, ids=[c[0] for c in RESUME_CONFIGS])
def test_resume_is_bit_for_bit(name, kw, through_file, tmp_path):
    _, model = make_pair(batchnorm=True)
    opt = getattr(tg.optim, name)(model.parameters(), **kw)
    sched = tg.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)
    _train(model, opt, range(10), sched)

    ckpt = {"model": model.state_dict(), "optim": opt.state_dict(), "sched": sched.state_dict()}
    if through_file:
        save(ckpt, tmp_path / "ckpt.safetensors")
        ckpt = load(tmp_path / "ckpt.safetensors")
    else:
        ckpt = copy.deepcopy(ckpt)

    _train(model, opt, range(10, 20), sched)

    tg.manual_seed(12345)  # a fresh model with different initial weights
    _, fresh = make_pair(batchnorm=True, seed=99)
    fresh.load_state_dict(ckpt["model"])
    fresh_opt = getattr(tg.optim, name)(fresh.parameters(), **kw)
    fresh_sched = tg.optim.lr_scheduler.StepLR(fresh_opt, step_size=4, gamma=0.5)
    fresh_opt.load_state_dict(ckpt["optim"])
    fresh_sched.load_state_dict(ckpt["sched"])
    assert fresh_opt.param_groups[0]["lr"] == kw["lr"] * 0.25  # 10 steps: halved twice
    assert fresh_sched.get_last_lr() == [kw["lr"] * 0.25]
    _train(fresh, fresh_opt, range(10, 20), fresh_sched)

    final, resumed = params(model), params(fresh)
    assert list(final) == list(resumed)
    for k in final:
        assert np.array_equal(final[k], resumed[k]), k
    assert sched.get_last_lr() == fresh_sched.get_last_lr()


def test_scheduler_created_after_optimizer_load_keeps_the_lr():
    results = []
    for lib in (torch, tg):
        w = [lib.nn.Parameter(lib.ones(2))]
        opt = lib.optim.SGD(w, lr=0.05)
        sched = lib.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)
        for _ in range(10):
            opt.step()
            sched.step()
        w2 = [lib.nn.Parameter(lib.ones(2))]
        opt2 = lib.optim.SGD(w2, lr=0.05)
        opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
        sched2 = lib.optim.lr_scheduler.StepLR(opt2, step_size=4, gamma=0.5)
        sched2.load_state_dict(copy.deepcopy(sched.state_dict()))
        results.append((opt2.param_groups[0]["lr"], sched2.get_last_lr()))
    assert results[0] == (0.0125, [0.0125])
    assert results[1] == results[0]


def test_loaded_optimizer_state_does_not_alias_the_checkpoint():
    _, model = make_pair()
    opt = tg.optim.Adam(model.parameters(), lr=0.01)
    _train(model, opt, range(3))
    ckpt_model = copy.deepcopy(model.state_dict())
    ckpt_opt = copy.deepcopy(opt.state_dict())
    saved = copy.deepcopy(ckpt_opt)
    runs = []
    for _ in range(2):  # load the same checkpoint twice: both runs must agree
        _, m = make_pair(seed=5)
        m.load_state_dict(ckpt_model)
        o = tg.optim.Adam(m.parameters(), lr=0.01)
        o.load_state_dict(ckpt_opt)
        _train(m, o, range(3, 8))
        runs.append(params(m))
    for k in runs[0]:
        assert np.array_equal(runs[0][k], runs[1][k])
    for i, st in saved["state"].items():
        for k, v in st.items():
            assert np.array_equal(ckpt_opt["state"][i][k].numpy(), v.numpy())


def test_optimizer_state_dict_round_trip_through_file(tmp_path):
    _, model = make_pair()
    opt = tg.optim.AdamW(model.parameters(), lr=0.01, betas=(0.8, 0.9), amsgrad=True)
    _train(model, opt, range(2))
    save(opt.state_dict(), tmp_path / "opt.safetensors")
    sd = load(tmp_path / "opt.safetensors")
    original = opt.state_dict()
    assert sorted(sd["state"]) == sorted(original["state"])
    assert sd["param_groups"][0]["betas"] == (0.8, 0.9)
    for i, st in original["state"].items():
        for k, v in st.items():
            np.testing.assert_array_equal(sd["state"][i][k].numpy(), v.numpy())
            assert sd["state"][i][k].dtype == v.dtype
    other = tg.optim.AdamW(make_pair()[1].parameters(), lr=0.5)
    other.load_state_dict(sd)
    assert other.param_groups[0]["lr"] == 0.01
    assert other.param_groups[0]["betas"] == (0.8, 0.9)


def test_optimizer_load_state_dict_errors():
    _, model = make_pair()
    opt = tg.optim.Adam(model.parameters(), lr=0.01)
    _train(model, opt, range(1))
    sd = opt.state_dict()
    smaller = tg.optim.Adam(model[0].parameters(), lr=0.01)
    with pytest.raises(ValueError, match="groups"):
        smaller.load_state_dict(sd)
    bad = copy.deepcopy(sd)
    bad["state"][0]["exp_avg"] = tg.zeros(2, 2)
    fresh = tg.optim.Adam(model.parameters(), lr=0.01)
    with pytest.raises(ValueError, match="shape"):
        fresh.load_state_dict(bad)
    assert fresh.state_dict()["state"] == {}  # a failed load leaves the optimizer as it was


# ---------------------------------------------------------------- learning-rate schedules


def _lr_sequences(make_sched, lrs=(0.1, 0.03), steps=30):
    tmodel, model = make_pair()
    tparams = [{"params": tmodel[0].parameters(), "lr": lrs[0]},
               {"params": tmodel[2].parameters(), "lr": lrs[1]}]
    ours = [{"params": model[0].parameters(), "lr": lrs[0]},
            {"params": model[2].parameters(), "lr": lrs[1]}]
    topt, opt = torch.optim.SGD(tparams), tg.optim.SGD(ours)
    tsched = make_sched(torch.optim.lr_scheduler, topt)
    sched = make_sched(tg.optim.lr_scheduler, opt)
    seq, tseq = [sched.get_last_lr()], [tsched.get_last_lr()]
    for _ in range(steps):
        opt.step()
        topt.step()
        sched.step()
        tsched.step()
        seq.append(sched.get_last_lr())
        tseq.append(tsched.get_last_lr())
        assert [g["lr"] for g in opt.param_groups] == seq[-1]
    return seq, tseq


@pytest.mark.parametrize("make", [
    pytest.param(lambda m, o: m.StepLR(o, step_size=7), id="StepLR-7"),
    pytest.param(lambda m, o: m.StepLR(o, step_size=3, gamma=0.5), id="StepLR-3-0.5"),
    pytest.param(lambda m, o: m.StepLR(o, step_size=1, gamma=0.9), id="StepLR-1-0.9"),
    pytest.param(lambda m, o: m.CosineAnnealingLR(o, T_max=30), id="Cosine-30"),
    pytest.param(lambda m, o: m.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
                 id="Cosine-10-etamin"),
    pytest.param(lambda m, o: m.CosineAnnealingLR(o, T_max=7, eta_min=0.01), id="Cosine-7"),
])
def test_lr_sequences_match_torch(make):
    seq, tseq = _lr_sequences(make)
    assert len(seq) == 31
    for ours, theirs in zip(seq, tseq):
        assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-15)


def test_scheduler_initial_state():
    _, model = make_pair()
    opt = tg.optim.SGD(model.parameters(), lr=0.2)
    sched = tg.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5)
    assert sched.last_epoch == 0 and sched.get_last_lr() == [0.2]
    assert opt.param_groups[0]["initial_lr"] == 0.2
    with pytest.raises(TypeError):
        tg.optim.lr_scheduler.StepLR(object(), step_size=2)
    opt2 = tg.optim.SGD(model.parameters(), lr=0.2)
    with pytest.raises(KeyError, match="initial_lr"):
        tg.optim.lr_scheduler.StepLR(opt2, step_size=2, last_epoch=3)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("name,kw,make", [
    ("SGD", dict(lr=0.1, momentum=0.9), lambda m, o: m.StepLR(o, step_size=5, gamma=0.5)),
    ("Adam", dict(lr=0.02), lambda m, o: m.CosineAnnealingLR(o, T_max=10, eta_min=1e-3)),
    ("AdamW", dict(lr=0.02, weight_decay=0.1), lambda m, o: m.CosineAnnealingLR(o, T_max=25)),
], ids=["SGD-StepLR", "Adam-Cosine", "AdamW-Cosine"])
def test_training_with_scheduler_matches_torch(name, kw, make, dtype, tol):
    tmodel, model = make_pair(dtype)
    topt = getattr(torch.optim, name)(tmodel.parameters(), **kw)
    opt = getattr(tg.optim, name)(model.parameters(), **kw)
    tsched, sched = make(torch.optim.lr_scheduler, topt), make(tg.optim.lr_scheduler, opt)
    for step in range(STEPS):
        tg_step(model, opt, step, dtype)
        torch_step(tmodel, topt, step, dtype)
        sched.step()
        tsched.step()
        assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12)
        assert_params_close(model, tmodel, tol)


# ---------------------------------------------------------------- clip_grad_norm_


def _grads_pair(dtype, scale):
    tmodel, model = make_pair(dtype)
    x, y = batch(0, dtype)
    (scale * nn.functional.mse_loss(model(tg.tensor(x)), tg.tensor(y))).backward()
    (scale * tnn.functional.mse_loss(tmodel(torch.tensor(x)), torch.tensor(y))).backward()
    return tmodel, model


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-6), (np.float64, 1e-12)])
@pytest.mark.parametrize("norm_type", [2.0, math.inf, 1.0])
@pytest.mark.parametrize("max_norm", [0.05, 1e6])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, dtype, tol):
    tmodel, model = _grads_pair(dtype, scale=10.0)
    total = nn.utils.clip_grad_norm_(model.parameters(), max_norm, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tmodel.parameters(), max_norm, norm_type=norm_type)
    assert isinstance(total, tg.Tensor) and total.shape == ()
    assert total.item() == pytest.approx(ttotal.item(), rel=tol)
    theirs = dict(tmodel.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs[name].grad.numpy(), rtol=tol,
                                   atol=tol, err_msg=name)
    if max_norm < total.item():  # clipped: the new total norm is max_norm
        grads = np.concatenate([p.grad.numpy().ravel() for p in model.parameters()])
        new = np.abs(grads).max() if norm_type == math.inf else np.linalg.norm(grads, norm_type)
        assert new == pytest.approx(max_norm, rel=1e-4)


@pytest.mark.parametrize("norm_type", [0, 0.0, -math.inf, -1.0, 0.5, 3])
def test_clip_grad_norm_unusual_orders_match_torch(norm_type):
    """torch takes the norm_type norm of each gradient, then of those norms: for 0 that
    counts the gradients that are not all zeros, for -inf it is the smallest magnitude."""
    grads = [np.array([1.0, 0.0, 2.0]), np.zeros(3), np.array([0.0, -3.0, 0.5])]
    ps = [nn.Parameter(tg.zeros(3, dtype=tg.float64)) for _ in grads]
    tps = [torch.zeros(3, dtype=torch.float64, requires_grad=True) for _ in grads]
    for p, tp, g in zip(ps, tps, grads):
        p.grad, tp.grad = tg.tensor(g), torch.tensor(g)
    total = nn.utils.clip_grad_norm_(ps, 0.25, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tps, 0.25, norm_type=norm_type)
    assert total.item() == pytest.approx(ttotal.item(), rel=1e-12)
    for p, tp in zip(ps, tps):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-12)


def test_clip_grad_norm_single_tensor_and_missing_grads():
    w = nn.Parameter(tg.tensor([3.0, 4.0]))
    w.grad = tg.tensor([3.0, 4.0])
    tw = torch.tensor([3.0, 4.0], requires_grad=True)
    tw.grad = torch.tensor([3.0, 4.0])
    total = nn.utils.clip_grad_norm_(w, 1.0)
    ttotal = torch.nn.utils.clip_grad_norm_(tw, 1.0)
    assert total.item() == pytest.approx(ttotal.item()) == 5.0
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-6)
    a = nn.Parameter(tg.ones(2))
    b = nn.Parameter(tg.ones(2))
    b.grad = tg.tensor([0.0, 2.0])
    assert nn.utils.clip_grad_norm_([a, b], 10.0).item() == pytest.approx(2.0)
    assert a.grad is None
    assert nn.utils.clip_grad_norm_([nn.Parameter(tg.ones(2))], 1.0).item() == 0.0


def test_clip_grad_norm_nonfinite():
    w = nn.Parameter(tg.ones(2))
    w.grad = tg.tensor([np.inf, 1.0])
    with pytest.raises(RuntimeError, match="norm"):
        nn.utils.clip_grad_norm_([w], 1.0, error_if_nonfinite=True)


def test_clip_then_step_matches_torch():
    tmodel, model = make_pair(np.float64)
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.1, momentum=0.9)
    opt = tg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for step in range(10):
        x, y = batch(step, np.float64)
        opt.zero_grad()
        topt.zero_grad()
        (5 * nn.functional.mse_loss(model(tg.tensor(x)), tg.tensor(y))).backward()
        (5 * tnn.functional.mse_loss(tmodel(torch.tensor(x)), torch.tensor(y))).backward()
        n = nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        tn = torch.nn.utils.clip_grad_norm_(tmodel.parameters(), 0.5)
        assert n.item() == pytest.approx(tn.item(), rel=1e-12)
        opt.step()
        topt.step()
    assert_params_close(model, tmodel, 1e-12)
