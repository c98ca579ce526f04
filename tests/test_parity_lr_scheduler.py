"""tg.optim.lr_scheduler against torch.optim.lr_scheduler: the lr (and, for OneCycleLR,
momentum) sequence over 30 steps, with two parameter groups, exactly."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import tracegrad as tg
from tracegrad import nn

torch = pytest.importorskip("torch")

N = 30


def pair(opt_name="SGD", **kw):
    """The same two-group optimizer in both libraries (lrs 0.1 and 0.02)."""
    kw = kw or ({"momentum": 0.9} if opt_name == "SGD" else {})
    a, b = nn.Parameter(tg.zeros(2)), nn.Parameter(tg.zeros(3))
    ta, tb = torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)
    ours = getattr(tg.optim, opt_name)([{"params": [a]}, {"params": [b], "lr": 0.02}], lr=0.1,
                                       **kw)
    theirs = getattr(torch.optim, opt_name)([{"params": [ta]}, {"params": [tb], "lr": 0.02}],
                                            lr=0.1, **kw)
    return ours, theirs


def run(ours, theirs, steps=N, metric=None, group_keys=("lr",)):
    """Step both schedulers (optimizer first, as in a training loop) and compare."""
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's "step order" and deprecation warnings
        for i in range(steps):
            ours.optimizer.step()
            theirs.optimizer.step()
            if metric is None:
                ours.step()
                theirs.step()
            else:
                ours.step(metric(i))
                theirs.step(metric(i))
            for key in group_keys:
                got = [g[key] for g in ours.optimizer.param_groups]
                want = [g[key] for g in theirs.optimizer.param_groups]
                np.testing.assert_allclose(np.array(got, dtype=float),
                                           np.array(want, dtype=float), rtol=1e-12,
                                           atol=1e-15, err_msg=f"{key} at step {i}")
            np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-12)
            seen.append(tuple(g["lr"] for g in ours.optimizer.param_groups))
    assert len(set(seen)) > 1  # the schedule changed the rate
    return seen


def both(name, opt_name="SGD", opt_kw=None, **kw):
    ours, theirs = pair(opt_name, **(opt_kw or {}))
    s_ours = getattr(tg.optim.lr_scheduler, name)(ours, **kw)
    s_theirs = getattr(torch.optim.lr_scheduler, name)(theirs, **kw)
    np.testing.assert_allclose(s_ours.get_last_lr(), s_theirs.get_last_lr(), rtol=1e-12)
    return s_ours, s_theirs


SIMPLE = [
    ("StepLR", dict(step_size=7, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[3, 10, 10, 20], gamma=0.3)),
    ("ConstantLR", dict(factor=0.25, total_iters=6)),
    ("LinearLR", dict()),
    ("LinearLR", dict(start_factor=0.1, end_factor=0.9, total_iters=12)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("PolynomialLR", dict(total_iters=20, power=2.0)),
    ("CosineAnnealingLR", dict(T_max=8, eta_min=0.001)),
    ("CosineAnnealingWarmRestarts", dict(T_0=5)),
    ("CosineAnnealingWarmRestarts", dict(T_0=3, T_mult=2, eta_min=0.005)),
    ("OneCycleLR", dict(max_lr=0.5, total_steps=N)),
    ("OneCycleLR", dict(max_lr=[0.5, 0.2], epochs=5, steps_per_epoch=6, pct_start=0.4,
                        anneal_strategy="linear", three_phase=True)),
    ("OneCycleLR", dict(max_lr=0.3, total_steps=N + 5, cycle_momentum=False,
                        div_factor=10.0, final_div_factor=100.0)),
]


@pytest.mark.parametrize("name, kw", SIMPLE, ids=[f"{n}-{i}" for i, (n, _) in
                                                 enumerate(SIMPLE)])
def test_schedule_matches_torch(name, kw):
    ours, theirs = both(name, **kw)
    keys = ("lr", "momentum") if name == "OneCycleLR" else ("lr",)
    run(ours, theirs, group_keys=keys)


def test_one_cycle_cycles_adams_beta1():
    ours, theirs = both("OneCycleLR", "Adam", max_lr=0.01, total_steps=N)
    run(ours, theirs, group_keys=("lr", "betas"))
    assert ours.optimizer.param_groups[0]["betas"][1] == 0.999


def test_one_cycle_refuses_to_run_past_total_steps():
    ours, _ = both("OneCycleLR", max_lr=0.1, total_steps=3)
    for _ in range(2):
        ours.step()
    with pytest.raises(ValueError, match="total_steps is 3"):
        ours.step()
        ours.step()


def test_lambda_and_multiplicative_lr():
    ours, theirs = both("LambdaLR", lr_lambda=lambda e: 0.95**e)
    run(ours, theirs)
    fns = [lambda e: 1.0 / (e + 1), lambda e: 0.9 if e % 2 else 1.0]
    ours, theirs = both("LambdaLR", lr_lambda=fns)
    run(ours, theirs)
    ours, theirs = both("MultiplicativeLR", lr_lambda=lambda e: 0.97)
    run(ours, theirs)
    with pytest.raises(ValueError, match="got 3 values for 2 parameter groups"):
        tg.optim.lr_scheduler.LambdaLR(pair()[0], [fns[0]] * 3)


@pytest.mark.parametrize("make", [
    lambda m, opt: [m.LinearLR(opt, start_factor=0.1, total_iters=5),
                    m.ExponentialLR(opt, gamma=0.9)],
    lambda m, opt: [m.ConstantLR(opt, factor=0.5, total_iters=4),
                    m.CosineAnnealingLR(opt, T_max=10),
                    m.StepLR(opt, step_size=3, gamma=0.5)],
], ids=["warmup-exponential", "constant-cosine-step"])
def test_sequential_lr(make):
    ours_opt, theirs_opt = pair()
    mine = make(tg.optim.lr_scheduler, ours_opt)
    milestones = [5] if len(mine) == 2 else [4, 15]
    ours = tg.optim.lr_scheduler.SequentialLR(ours_opt, mine, milestones=milestones)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = torch.optim.lr_scheduler.SequentialLR(
            theirs_opt, make(torch.optim.lr_scheduler, theirs_opt), milestones=milestones)
    run(ours, theirs)


def test_chained_scheduler():
    ours_opt, theirs_opt = pair()
    m, tm = tg.optim.lr_scheduler, torch.optim.lr_scheduler
    ours = m.ChainedScheduler([m.ConstantLR(ours_opt, factor=0.1, total_iters=2),
                               m.ExponentialLR(ours_opt, gamma=0.9)])
    theirs = tm.ChainedScheduler([tm.ConstantLR(theirs_opt, factor=0.1, total_iters=2),
                                  tm.ExponentialLR(theirs_opt, gamma=0.9)])
    run(ours, theirs)


def test_combining_with_reduce_on_plateau_is_refused():
    opt = pair()[0]
    m = tg.optim.lr_scheduler
    with pytest.raises(ValueError, match="ReduceLROnPlateau .schedulers\\[1\\]. cannot"):
        m.SequentialLR(opt, [m.ExponentialLR(opt, 0.9), m.ReduceLROnPlateau(opt)], [3])


@pytest.mark.parametrize("kw", [dict(), dict(mode="max", factor=0.5, patience=2, cooldown=2),
                                dict(patience=1, threshold=0.1, threshold_mode="abs",
                                     min_lr=[0.01, 0.001]),
                                dict(patience=0, min_lr=0.03, eps=1e-3)])
def test_reduce_lr_on_plateau(kw):
    ours_opt, theirs_opt = pair()
    ours = tg.optim.lr_scheduler.ReduceLROnPlateau(ours_opt, **kw)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs_opt, **kw)
    # A metric that improves, stalls, improves a little, then stalls for good.
    curve = [1.0, 0.8, 0.7, 0.7, 0.71, 0.69, 0.695, 0.7, 0.7, 0.6] + [0.6] * 30

    def metric(i):
        return curve[i] if kw.get("mode") != "max" else -curve[i]

    run(ours, theirs, steps=40, metric=metric)
    # a tensor metric works too
    ours.step(tg.tensor(0.1))


@pytest.mark.parametrize("name, kw", [("StepLR", dict(step_size=4, gamma=0.5)),
                                      ("MultiStepLR", dict(milestones=[2, 6])),
                                      ("ExponentialLR", dict(gamma=0.8)),
                                      ("LinearLR", dict(total_iters=6)),
                                      ("PolynomialLR", dict(total_iters=8)),
                                      ("CosineAnnealingLR", dict(T_max=7)),
                                      ("CosineAnnealingWarmRestarts", dict(T_0=4, T_mult=2))])
def test_step_with_an_epoch_uses_the_closed_form(name, kw):
    ours, theirs = both(name, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in [3, 9, 5, 0, 12]:
            ours.step(epoch)
            theirs.step(epoch)
            np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-12,
                                       err_msg=f"epoch {epoch}")


def test_state_dict_resumes_a_schedule():
    opt = pair()[0]
    sched = tg.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=4, T_mult=2)
    for _ in range(7):
        sched.step()
    saved, lr_now = sched.state_dict(), [g["lr"] for g in opt.param_groups]
    expected = []
    for _ in range(5):
        sched.step()
        expected.append(sched.get_last_lr())
    opt2 = pair()[0]
    for g, lr in zip(opt2.param_groups, lr_now):
        g["lr"] = lr
    again = tg.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt2, T_0=4, T_mult=2)
    again.load_state_dict(saved)
    got = []
    for _ in range(5):
        again.step()
        got.append(again.get_last_lr())
    assert got == expected


def test_a_tensor_lr_is_updated_in_place():
    p = nn.Parameter(tg.zeros(2))
    lr = tg.tensor(0.1, dtype=tg.float64)
    opt = tg.optim.SGD([p], lr=lr)
    sched = tg.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    sched.step()
    assert opt.param_groups[0]["lr"] is lr and math.isclose(lr.item(), 0.05)
