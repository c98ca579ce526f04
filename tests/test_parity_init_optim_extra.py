"""tg.nn.init's trunc_normal_, orthogonal_, eye_, dirac_, sparse_ and tg.optim's RAdam,
Adadelta, Rprop and ASGD against torch 2.13: distributions by moments and support (the random
streams differ), deterministic inits exactly, optimizers step by step on identical gradients,
state dicts (ours and torch's) and a compiled training step against eager."""

from __future__ import annotations

import math

import numpy as np
import pytest
import test_optim
from test_parity_optim import _numpy_state, compiled_steps_match_eager, make_pair

import tracegrad as tg
from tracegrad import nn
from tracegrad.nn import init

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- nn.init


@pytest.mark.parametrize("mean,std,a,b", [(0.0, 1.0, -2.0, 2.0), (0.0, 0.02, -0.04, 0.04),
                                          (1.0, 2.0, 0.0, 1.5)])
def test_trunc_normal_moments_and_support_match_torch(mean, std, a, b):
    tg.manual_seed(0)
    torch.manual_seed(0)
    w = init.trunc_normal_(tg.empty(400, 500), mean, std, a, b).numpy()
    tw = torch.nn.init.trunc_normal_(torch.empty(400, 500), mean, std, a, b).numpy()
    assert w.dtype == np.float32 and a <= w.min() and w.max() <= b
    # the analytic moments of the truncated normal, and torch's sample's
    al, be = (a - mean) / std, (b - mean) / std
    pdf = [math.exp(-x * x / 2) / math.sqrt(2 * math.pi) for x in (al, be)]
    z = 0.5 * (math.erf(be / math.sqrt(2)) - math.erf(al / math.sqrt(2)))
    mu = mean + std * (pdf[0] - pdf[1]) / z
    var = std**2 * (1 + (al * pdf[0] - be * pdf[1]) / z - ((pdf[0] - pdf[1]) / z) ** 2)
    for sample in (w, tw):
        assert sample.mean() == pytest.approx(mu, abs=4 * math.sqrt(var / w.size))
        assert sample.var() == pytest.approx(var, rel=0.01)
    # values close to both bounds are drawn (it is not a clipped normal)
    assert (w < a + 0.05 * (b - a)).mean() == pytest.approx((tw < a + 0.05 * (b - a)).mean(),
                                                              abs=0.005)


def test_trunc_normal_is_seeded_and_refuses_empty_bounds():
    tg.manual_seed(3)
    a = init.trunc_normal_(tg.empty(5, 5), std=0.02).numpy().copy()
    tg.manual_seed(3)
    np.testing.assert_array_equal(init.trunc_normal_(tg.empty(5, 5), std=0.02).numpy(), a)
    with pytest.raises(ValueError, match="a < b"):
        init.trunc_normal_(tg.empty(3), a=1.0, b=-1.0)


@pytest.mark.parametrize("shape", [(6, 10), (10, 6), (8, 3, 3, 3), (5, 5)])
def test_orthogonal_is_orthogonal_and_scaled_like_torch(shape):
    tg.manual_seed(1)
    w = init.orthogonal_(tg.empty(*shape), gain=2.0).numpy().reshape(shape[0], -1)
    tw = torch.nn.init.orthogonal_(torch.empty(*shape), gain=2.0).numpy().reshape(shape[0], -1)
    for m in (w, tw):
        small = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
        np.testing.assert_allclose(small, 4 * np.eye(len(small)), atol=1e-5)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.orthogonal_(tg.empty(3))


@pytest.mark.parametrize("shape,groups", [((4, 4), None), ((3, 5), None), ((6, 3, 3), 1),
                                          ((6, 3, 3, 4), 2), ((4, 2, 3, 3, 3), 2)])
def test_eye_and_dirac_equal_torch(shape, groups):
    if groups is None:
        got, want = init.eye_(tg.empty(*shape)), torch.nn.init.eye_(torch.empty(*shape))
    else:
        got = init.dirac_(tg.empty(*shape), groups)
        want = torch.nn.init.dirac_(torch.empty(*shape), groups)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_dirac_convolution_passes_its_input_through():
    w = nn.Parameter(init.dirac_(tg.empty(3, 3, 3, 3)))
    x = tg.randn(2, 3, 5, 5)
    np.testing.assert_allclose(nn.functional.conv2d(x, w, padding=1).numpy(), x.numpy(),
                               atol=1e-6)


def test_sparse_zeros_each_column_and_keeps_std():
    tg.manual_seed(2)
    w = init.sparse_(tg.empty(200, 300), sparsity=0.25, std=0.5).numpy()
    tw = torch.nn.init.sparse_(torch.empty(200, 300), sparsity=0.25, std=0.5).numpy()
    np.testing.assert_array_equal((w == 0).sum(0), (tw == 0).sum(0))  # 50 in every column
    assert w[w != 0].std() == pytest.approx(0.5, rel=0.02)


def test_zero_element_layers_build_and_train_like_torch():
    """nn.Linear(0, 3) is legal in torch (kaiming init of a zero-element weight is a no-op,
    with a warning); it raised ZeroDivisionError (fan_in 0)."""
    torch = pytest.importorskip("torch")
    with pytest.warns(UserWarning, match="zero-element"):
        model = nn.Linear(0, 3)
    with pytest.warns(UserWarning, match="zero-element"):
        init.kaiming_normal_(tg.zeros(4, 0))
    tmodel = torch.nn.Linear(0, 3)
    model.load_state_dict({k: v.detach().numpy() for k, v in tmodel.state_dict().items()})
    opt, topt = tg.optim.Adam(model.parameters(), lr=0.1), torch.optim.Adam(
        tmodel.parameters(), lr=0.1)
    model(tg.zeros(2, 0)).sum().backward()
    tmodel(torch.zeros(2, 0)).sum().backward()
    opt.step()
    topt.step()
    np.testing.assert_allclose(model.bias.numpy(), tmodel.bias.detach().numpy(), rtol=1e-6)


def test_deprecated_names_warn_and_work():
    with pytest.warns(FutureWarning, match="nn.init.constant is deprecated"):
        w = init.constant(tg.empty(2, 2), 3.0)
    np.testing.assert_array_equal(w.numpy(), np.full((2, 2), 3.0))
    for name in ("uniform", "normal", "eye", "dirac", "xavier_uniform", "xavier_normal",
                 "kaiming_uniform", "kaiming_normal", "orthogonal", "sparse"):
        assert callable(getattr(init, name)) and hasattr(torch.nn.init, name)


# ---------------------------------------------------------------- optimizers

CONFIGS = [
    ("RAdam", dict()),
    ("RAdam", dict(lr=0.01, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.1, maximize=True)),
    ("Rprop", dict()),
    ("Rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.08), maximize=True)),
    ("ASGD", dict()),
    ("ASGD", dict(lr=0.05, lambd=1e-2, alpha=0.5, t0=5.0, weight_decay=0.1)),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for name, kw in CONFIGS]


@pytest.fixture
def torch_dtype():
    old = torch.get_default_dtype()

    def use(dtype):  # torch's scalar state (step, ASGD's eta and mu) in the run's dtype
        torch.set_default_dtype(torch.float64 if dtype == np.float64 else torch.float32)

    yield use
    torch.set_default_dtype(old)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,kw", CONFIGS, ids=IDS)
def test_update_math_matches_torch_on_identical_gradients(name, kw, dtype, torch_dtype):
    torch_dtype(dtype)
    rng = np.random.default_rng(7)
    init_, ps, tps, opt, topt = test_optim.optimizer_twins(name, kw, dtype, rng)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    grads = rng.standard_normal((20, len(ps), 30))
    for step in range(20):
        # a gradient that keeps its sign on some steps (Rprop's step sizes grow)
        test_optim.step_both(opt, topt, [(grads[step, i, :p.numel()] + (step % 3 == 0))
                                         .reshape(p.shape).astype(dtype)
                                         for i, p in enumerate(ps)], tol)
        if name == "ASGD":
            for p, tp in zip(ps, tps):
                np.testing.assert_allclose(opt.state[p]["ax"].numpy(),
                                           topt.state[tp]["ax"].numpy(), rtol=tol, atol=tol)
    assert max(np.abs(p.numpy() - a).max() for p, a in zip(ps, init_)) > 1e-3


@pytest.mark.parametrize("name,kw", CONFIGS, ids=IDS)
def test_state_dicts_round_trip_and_load_torch_s(name, kw, torch_dtype):
    """4 steps in torch; load torch's state into ours, continue both; then our own state
    dict into a fresh optimizer, and torch's keys."""
    torch_dtype(np.float64)
    tmodel, model = make_pair()
    topt = getattr(torch.optim, name)(tmodel.parameters(), **kw)
    for step in range(4):
        test_optim.torch_step(tmodel, topt, step, np.float64, seed=100)
    model.load_state_dict({k: v.detach().numpy().copy() for k, v in
                           tmodel.state_dict().items()})
    opt = getattr(tg.optim, name)(model.parameters(), **kw)
    opt.load_state_dict(_numpy_state(topt.state_dict()))
    for step in range(4, 8):
        test_optim.tg_step(model, opt, step, np.float64, seed=100)
        test_optim.torch_step(tmodel, topt, step, np.float64, seed=100)
    ours = opt.state_dict()
    assert set(ours["state"][0]) == set(topt.state_dict()["state"][0])
    again = getattr(tg.optim, name)(model.parameters(), **kw)
    again.load_state_dict(ours)
    for step in range(8, 12):
        test_optim.tg_step(model, again, step, np.float64, seed=100)
        test_optim.torch_step(tmodel, topt, step, np.float64, seed=100)
    theirs = dict(tmodel.named_parameters())
    for k, p in model.named_parameters():
        np.testing.assert_allclose(p.numpy(), theirs[k].detach().numpy(), rtol=1e-9,
                                   atol=1e-12, err_msg=k)


def test_asgd_refuses_a_bad_scalar_state_and_changes_nothing():
    _, model = make_pair()
    opt = tg.optim.ASGD(model.parameters())
    test_optim.tg_step(model, opt, 0, np.float64, seed=100)
    sd = opt.state_dict()
    sd["state"][0]["mu"] = 2.0
    with pytest.raises(ValueError, match=r"\['mu'\] must be a number in \(0, 1\]"):
        opt.load_state_dict(sd)
    assert float(opt.state[model[0].weight]["mu"].item()) == 1.0


@pytest.mark.parametrize("name, kw, match", [
    ("RAdam", dict(betas=(1.0, 0.9)), "betas must be"),
    ("Adadelta", dict(rho=1.5), "rho must be a number in"),
    ("Rprop", dict(etas=(1.2, 0.5)), "etas must be"),
    ("ASGD", dict(lr=-1.0), "lr must be"),
])
def test_bad_hyperparameters_are_refused(name, kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        getattr(tg.optim, name)([nn.Parameter(tg.zeros(3))], **kw)
    with pytest.raises((ValueError, TypeError)):
        getattr(torch.optim, name)([torch.zeros(3, requires_grad=True)], **kw)


@pytest.mark.parametrize("name,kw", [("RAdam", dict(lr=0.01, weight_decay=0.01)),
                                     ("Adadelta", dict(lr=0.5)),
                                     ("Rprop", dict(lr=0.01)),
                                     ("ASGD", dict(lr=0.05, t0=3.0, lambd=1e-3))])
def test_compiled_training_step_matches_eager(name, kw):
    """8 steps: RAdam crosses rho_t > 5 (step 6 with the default betas) and ASGD crosses
    t0 inside the compiled program; a new learning rate does not recompile."""
    compiled_steps_match_eager(name, kw, steps=8, halve_lr_at=5)


# ---------------------------------------------------------------- CyclicLR


class Halving:
    """A scale_fn that is a callable object: its attributes are saved in the state dict."""

    def __init__(self):
        self.base = 0.5

    def __call__(self, x):
        return self.base ** x


@pytest.mark.parametrize("opt_name,kw", [
    ("SGD", dict(base_lr=0.01, max_lr=0.1, step_size_up=4)),
    ("SGD", dict(base_lr=[0.01, 0.002], max_lr=[0.1, 0.05], step_size_up=3, step_size_down=5,
                 mode="triangular2", base_momentum=[0.7, 0.8], max_momentum=0.95)),
    ("SGD", dict(base_lr=0.01, max_lr=0.1, step_size_up=5, mode="exp_range", gamma=0.97)),
    ("Adam", dict(base_lr=0.001, max_lr=0.01, step_size_up=4, mode="triangular2")),
    ("RMSprop", dict(base_lr=0.001, max_lr=0.01, step_size_up=6, cycle_momentum=False)),
    ("SGD", dict(base_lr=0.01, max_lr=0.1, step_size_up=3, scale_fn=Halving(),
                 scale_mode="iterations")),
])
def test_cyclic_lr_matches_torch(opt_name, kw):
    from test_parity_lr_scheduler import pair, run

    ours, theirs = pair(opt_name)
    s_ours = tg.optim.lr_scheduler.CyclicLR(ours, **kw)
    s_theirs = torch.optim.lr_scheduler.CyclicLR(theirs, **kw)
    momentum = "betas" if opt_name == "Adam" else "momentum"
    run(s_ours, s_theirs, group_keys=("lr",) if kw.get("cycle_momentum") is False else
        ("lr", momentum))
    # a state dict saved mid-run resumes the same sequence
    sd = s_ours.state_dict()
    again, _ = pair(opt_name)
    resumed = tg.optim.lr_scheduler.CyclicLR(again, **kw)
    resumed.load_state_dict(sd)
    for _ in range(7):
        s_ours.step()
        resumed.step()
        assert resumed.get_last_lr() == s_ours.get_last_lr()


def test_cyclic_lr_refuses_a_bad_mode_and_an_optimizer_without_momentum():
    sgd = tg.optim.SGD([nn.Parameter(tg.zeros(2))], lr=0.1)
    with pytest.raises(ValueError, match="mode must be one of"):
        tg.optim.lr_scheduler.CyclicLR(sgd, 0.01, 0.1, mode="zigzag")
    ada = tg.optim.Adagrad([nn.Parameter(tg.zeros(2))])
    with pytest.raises(ValueError, match="cycle_momentum=True needs an optimizer"):
        tg.optim.lr_scheduler.CyclicLR(ada, 0.01, 0.1)


# ---------------------------------------------------------------- swa_utils

swa = tg.optim.swa_utils


def bn_pair():
    torch.manual_seed(0)
    t = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Tanh(),
                            torch.nn.Linear(4, 2)).double()
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 2)).double()
    m.load_state_dict({k: v.detach().numpy().copy() for k, v in t.state_dict().items()})
    return m, t


@pytest.mark.parametrize("how", ["swa", "ema_multi", "ema_multi_buffers", "ema_avg_fn",
                                 "swa_avg_fn_buffers"])
def test_averaged_model_matches_torch(how):
    ts = torch.optim.swa_utils
    kw, tkw = {
        "swa": ({}, {}),
        "ema_multi": (dict(multi_avg_fn=swa.get_ema_multi_avg_fn(0.9)),
                      dict(multi_avg_fn=ts.get_ema_multi_avg_fn(0.9))),
        "ema_multi_buffers": (dict(multi_avg_fn=swa.get_ema_multi_avg_fn(0.8), use_buffers=True),
                              dict(multi_avg_fn=ts.get_ema_multi_avg_fn(0.8), use_buffers=True)),
        "ema_avg_fn": (dict(avg_fn=swa.get_ema_avg_fn(0.7)), dict(avg_fn=ts.get_ema_avg_fn(0.7))),
        "swa_avg_fn_buffers": (dict(avg_fn=swa.get_swa_avg_fn(), use_buffers=True),
                               dict(avg_fn=ts.get_swa_avg_fn(), use_buffers=True)),
    }[how]
    m, t = bn_pair()
    avg, tavg = swa.AveragedModel(m, **kw), ts.AveragedModel(t, **tkw)
    opt, topt = tg.optim.SGD(m.parameters(), lr=0.1), torch.optim.SGD(t.parameters(), lr=0.1)
    rng = np.random.default_rng(0)
    for _ in range(6):
        x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 2))
        for model, o, lib in ((m, opt, tg), (t, topt, torch)):
            o.zero_grad()
            ((model(lib.tensor(x)) - lib.tensor(y)) ** 2).mean().backward()
            o.step()
        avg.update_parameters(m)
        tavg.update_parameters(t)
        theirs = tavg.state_dict()
        assert list(avg.state_dict()) == list(theirs)
        for k, v in avg.state_dict().items():
            np.testing.assert_allclose(v.numpy(), theirs[k].numpy(), rtol=1e-10, atol=1e-12,
                                       err_msg=k)
    assert avg.n_averaged.item() == 6
    x = rng.standard_normal((5, 3))
    avg.eval(), tavg.eval()
    np.testing.assert_allclose(avg(tg.tensor(x)).numpy(), tavg(torch.tensor(x)).detach().numpy(),
                               rtol=1e-10)
    # the average is not the model
    assert not np.allclose(avg.module[0].weight.numpy(), m[0].weight.numpy())


def test_update_bn_matches_torch_and_restores_mode_and_momentum():
    m, t = bn_pair()
    rng = np.random.default_rng(1)
    data = [rng.standard_normal((4, 3)) for _ in range(5)]
    m.eval(), t.eval()
    swa.update_bn([(tg.tensor(x), 0) for x in data], m)
    torch.optim.swa_utils.update_bn([(torch.tensor(x), 0) for x in data], t)
    for k, v in t.state_dict().items():
        np.testing.assert_allclose(m.state_dict()[k].numpy(), v.numpy(), rtol=1e-10, err_msg=k)
    assert not m.training and m[1].momentum == 0.1
    # the statistics are the plain average over the batches (a cumulative average)
    h = [m[0](tg.tensor(x)).detach().numpy().mean(0) for x in data]
    np.testing.assert_allclose(m[1].running_mean.numpy(), np.mean(h, 0), rtol=1e-10)


@pytest.mark.parametrize("kw", [dict(swa_lr=0.05), dict(swa_lr=[0.05, 0.01], anneal_epochs=3,
                                                       anneal_strategy="linear")])
def test_swalr_matches_torch(kw):
    from test_parity_lr_scheduler import pair, run

    ours, theirs = pair("SGD")
    run(swa.SWALR(ours, **kw), torch.optim.swa_utils.SWALR(theirs, **kw), steps=15)


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)`")
def test_swalr_without_annealing_jumps_to_swa_lr_as_torch():
    from test_parity_lr_scheduler import pair

    ours, theirs = pair("SGD")
    s, ts = swa.SWALR(ours, 0.2, anneal_epochs=0), \
        torch.optim.swa_utils.SWALR(theirs, 0.2, anneal_epochs=0)
    for _ in range(3):
        assert s.get_last_lr() == ts.get_last_lr() == [0.2, 0.2]
        s.step()
        ts.step()


def test_swalr_refuses_bad_arguments():
    opt = tg.optim.SGD([nn.Parameter(tg.zeros(2))], lr=0.1)
    with pytest.raises(ValueError, match="anneal_strategy"):
        swa.SWALR(opt, 0.05, anneal_strategy="step")
    with pytest.raises(ValueError, match="anneal_epochs"):
        swa.SWALR(opt, 0.05, anneal_epochs=-1)


def test_swa_utils_leaves_tg_nn_to_first_use():
    """`import tracegrad` does not import tg.nn (bench/imports.py); tg.optim.swa_utils, which
    builds on it, is loaded on first use too."""
    import subprocess
    import sys

    code = ("import sys, tracegrad; assert 'tracegrad.nn' not in sys.modules; "
            "tracegrad.optim.swa_utils.AveragedModel; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "ok"
