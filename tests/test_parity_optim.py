"""tg.optim's RMSprop, Adagrad, Adamax, NAdam and LBFGS against torch.optim: the update
math on identical gradients, whole training runs, parameter groups, state dicts (including
loading torch's), hyper-parameter checks, and a compiled training step."""

from __future__ import annotations

import numpy as np
import pytest
import test_optim

import tracegrad as tg
from tracegrad import nn

torch = pytest.importorskip("torch")
tnn = torch.nn

STEPS = 12


def make_pair(dtype=np.float64, seed=0):
    """The same MLP in torch and tracegrad, with identical initial weights."""
    torch.manual_seed(seed)
    tmodel = tnn.Sequential(tnn.Linear(5, 8), tnn.Tanh(), tnn.Linear(8, 3))
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    if dtype == np.float64:
        tmodel.double()
        model.double()
    model.load_state_dict({k: v.detach().numpy().copy() for k, v in
                           tmodel.state_dict().items()})
    return tmodel, model


# The shared optimizer-test steps, on float64 data of their own seed: the tightest comparison.
def batch(step, dtype=np.float64):
    return test_optim.batch(step, dtype, seed=100)


def tg_step(model, opt, step, dtype=np.float64):
    return test_optim.tg_step(model, opt, step, dtype, seed=100)


def torch_step(model, opt, step, dtype=np.float64):
    return test_optim.torch_step(model, opt, step, dtype, seed=100)


def assert_params_close(model, tmodel, rtol, atol=None):
    theirs = dict(tmodel.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.numpy(), theirs[name].detach().numpy(), rtol=rtol,
                                   atol=rtol if atol is None else atol, err_msg=name)


@pytest.fixture(autouse=True)
def torch_scalars():
    """torch's default dtype is float64 during these tests, so torch keeps its scalar
    optimizer state (step, NAdam's mu_product) in float64 as we do, and float64 runs agree
    to rounding (with torch's float32 default, NAdam differs by ~1e-8 relative);
    ``torch_scalars(np.float32)`` switches back to float32 for a float32 run."""
    old = torch.get_default_dtype()

    def use(dtype):
        torch.set_default_dtype(torch.float64 if dtype == np.float64 else torch.float32)

    use(np.float64)
    yield use
    torch.set_default_dtype(old)


CONFIGS = [
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.005, centered=True, momentum=0.5, weight_decay=0.01, maximize=True)),
    ("Adagrad", dict(lr=0.05)),
    ("Adagrad", dict(lr=0.05, lr_decay=0.1, weight_decay=0.1)),
    ("Adagrad", dict(lr=0.05, initial_accumulator_value=0.5, eps=1e-6, maximize=True)),
    ("Adamax", dict()),
    ("Adamax", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("Adamax", dict(lr=0.01, maximize=True)),
    ("NAdam", dict()),
    ("NAdam", dict(lr=0.01, betas=(0.8, 0.99), momentum_decay=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for name, kw in CONFIGS]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,kw", CONFIGS, ids=IDS)
def test_update_math_matches_torch_on_identical_gradients(name, kw, dtype, torch_scalars):
    """20 steps on the same gradients, to rounding."""
    torch_scalars(dtype)
    rng = np.random.default_rng(7)
    init, ps, tps, opt, topt = test_optim.optimizer_twins(name, kw, dtype, rng)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for _ in range(20):
        test_optim.step_both(opt, topt, [rng.standard_normal(p.shape).astype(dtype)
                                         for p in ps], tol)
    # The parameters moved: the comparison is not between two unchanged copies.
    assert max(np.abs(p.numpy() - a).max() for p, a in zip(ps, init)) > 1e-3


@pytest.mark.parametrize("name,kw", CONFIGS, ids=IDS)
def test_training_matches_torch(name, kw):
    tmodel, model = make_pair()
    topt = getattr(torch.optim, name)(tmodel.parameters(), **kw)
    opt = getattr(tg.optim, name)(model.parameters(), **kw)
    for step in range(STEPS):
        loss, tloss = tg_step(model, opt, step), torch_step(tmodel, topt, step)
        assert loss == pytest.approx(tloss, rel=1e-10)
        assert_params_close(model, tmodel, 1e-5, 1e-10)


@pytest.mark.parametrize("name", ["RMSprop", "Adagrad", "Adamax", "NAdam"])
def test_parameter_groups_match_torch(name):
    tmodel, model = make_pair()
    kw = {"RMSprop": dict(momentum=0.5), "Adagrad": dict(lr_decay=0.01),
          "Adamax": dict(betas=(0.5, 0.9)), "NAdam": dict(momentum_decay=0.1)}[name]

    def groups(m):
        return [{"params": m[0].parameters()},
                {"params": m[2].parameters(), "lr": 0.003, "weight_decay": 0.1, **kw}]

    topt = getattr(torch.optim, name)(groups(tmodel), lr=0.02)
    opt = getattr(tg.optim, name)(groups(model), lr=0.02)
    assert [g["lr"] for g in opt.param_groups] == [0.02, 0.003]
    for step in range(STEPS):
        tg_step(model, opt, step)
        torch_step(tmodel, topt, step)
    assert_params_close(model, tmodel, 1e-5, 1e-10)


def _numpy_state(sd):
    """torch's optimizer state dict with numpy arrays for tensors (what tg.load gives)."""
    return {"state": {i: {k: (v.numpy() if torch.is_tensor(v) else v) for k, v in st.items()}
                      for i, st in sd["state"].items()},
            "param_groups": [dict(g) for g in sd["param_groups"]]}


@pytest.mark.parametrize("name,kw", [c for c in CONFIGS if c[0] != "LBFGS"][::2],
                         ids=IDS[::2])
def test_resume_from_torch_state_dict(name, kw):
    """Train 4 steps in torch, load torch's optimizer state into ours, continue both."""
    tmodel, model = make_pair()
    topt = getattr(torch.optim, name)(tmodel.parameters(), **kw)
    for step in range(4):
        torch_step(tmodel, topt, step)
    model.load_state_dict({k: v.detach().numpy().copy() for k, v in
                           tmodel.state_dict().items()})
    opt = getattr(tg.optim, name)(model.parameters(), **kw)
    opt.load_state_dict(_numpy_state(topt.state_dict()))
    for step in range(4, 10):
        tg_step(model, opt, step)
        torch_step(tmodel, topt, step)
    assert_params_close(model, tmodel, 1e-5, 1e-10)
    # our own state dict round-trips as well, with PyTorch's keys
    ours = opt.state_dict()
    assert set(ours["state"][0]) == set(topt.state_dict()["state"][0])
    again = getattr(tg.optim, name)(model.parameters(), **kw)
    again.load_state_dict(ours)
    assert set(again.state_dict()["state"][0]) == set(ours["state"][0])


def test_load_state_dict_names_a_bad_entry_and_changes_nothing():
    _, model = make_pair()
    opt = tg.optim.RMSprop(model.parameters(), momentum=0.9)
    tg_step(model, opt, 0)
    sd = opt.state_dict()
    before = {k: v.numpy().copy() for k, v in opt.state[model[0].weight].items()}
    bad = {"state": {**sd["state"], 0: {**sd["state"][0],
                                         "square_avg": np.zeros((2, 2))}},
           "param_groups": sd["param_groups"]}
    with pytest.raises(tg.ShapeError, match=r"state\[0\]\['square_avg'\] has shape \(2, 2\)"):
        opt.load_state_dict(bad)
    missing = {"state": {0: {"step": 1.0, "square_avg": np.zeros((8, 5))}},
               "param_groups": sd["param_groups"]}
    with pytest.raises(ValueError, match="lacks 'momentum_buffer'"):
        opt.load_state_dict(missing)
    nadam = tg.optim.NAdam(model.parameters())
    tg_step(model, nadam, 0)
    nsd = nadam.state_dict()
    nsd["state"][0]["mu_product"] = 3.0
    with pytest.raises(ValueError, match=r"mu_product'\] must be a number in \(0, 1\]"):
        nadam.load_state_dict(nsd)
    after = {k: v.numpy() for k, v in opt.state[model[0].weight].items()}
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])


@pytest.mark.parametrize("name, kw, match", [
    ("RMSprop", dict(lr=-1.0), "lr must be a number >= 0"),
    ("RMSprop", dict(alpha=-0.1), "alpha must be"),
    ("Adagrad", dict(lr_decay=-1), "lr_decay must be"),
    ("Adagrad", dict(initial_accumulator_value=-1), "initial_accumulator_value"),
    ("Adamax", dict(betas=(1.0, 0.9)), "betas must be"),
    ("NAdam", dict(momentum_decay=-1.0), "momentum_decay must be"),
    # torch's LBFGS takes these and fails later (in step, or never); ours refuses them up
    # front
    ("LBFGS", dict(line_search_fn="armijo"), "line_search_fn must be None or 'strong_wolfe'"),
    ("LBFGS", dict(history_size=0), "history_size must be an int >= 1"),
])
def test_bad_hyperparameters_are_refused(name, kw, match):
    p = nn.Parameter(tg.zeros(3))
    with pytest.raises((ValueError, TypeError), match=match):
        getattr(tg.optim, name)([p], **kw)
    if name != "LBFGS":
        with pytest.raises((ValueError, TypeError)):  # torch refuses them too
            getattr(torch.optim, name)([torch.zeros(3, requires_grad=True)], **kw)


def test_adagrad_state_exists_before_the_first_step_as_in_torch():
    p, tp = nn.Parameter(tg.ones(3)), torch.ones(3, requires_grad=True)
    sd = tg.optim.Adagrad([p], initial_accumulator_value=0.25).state_dict()
    tsd = torch.optim.Adagrad([tp], initial_accumulator_value=0.25).state_dict()
    assert set(sd["state"][0]) == set(tsd["state"][0]) == {"step", "sum"}
    np.testing.assert_array_equal(sd["state"][0]["sum"].numpy(), [0.25] * 3)


@pytest.mark.parametrize("name,kw", [("RMSprop", dict(lr=0.01, momentum=0.9, centered=True)),
                                     ("Adagrad", dict(lr=0.05, lr_decay=0.01)),
                                     ("Adamax", dict(lr=0.01)),
                                     ("NAdam", dict(lr=0.01, weight_decay=0.01))])
def test_compiled_training_step_matches_eager(name, kw):
    compiled_steps_match_eager(name, kw, steps=6)


def compiled_steps_match_eager(name: str, kw: dict, steps: int, halve_lr_at: int = -1):
    """``steps`` training steps with optimizer ``name`` compiled, each equal to eager's, in
    one compiled variant (halving the learning rate before step ``halve_lr_at`` too: an
    input of the program, not a recompile)."""
    _, eager = make_pair(np.float32)
    _, model = make_pair(np.float32)
    eager_opt = getattr(tg.optim, name)(eager.parameters(), **kw)
    opt = getattr(tg.optim, name)(model.parameters(), **kw)

    def step(x, y):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss

    compiled = tg.compile(step)
    for i in range(steps):
        if i == halve_lr_at:
            for o in (opt, eager_opt):
                o.param_groups[0]["lr"] *= 0.5
        x, y = (tg.tensor(a) for a in batch(i, np.float32))
        tg_step(eager, eager_opt, i, np.float32)
        compiled(x, y)
        for (k, a), b in zip(eager.named_parameters(), model.parameters()):
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)
    assert compiled.cache_info().variants == 1


# ---------------------------------------------------------------- LBFGS


def _closures(model, tmodel, x, y):
    def closure():
        opt_holder[0].zero_grad()
        loss = nn.functional.mse_loss(model(tg.tensor(x)), tg.tensor(y))
        loss.backward()
        return loss

    def tclosure():
        opt_holder[1].zero_grad()
        loss = tnn.functional.mse_loss(tmodel(torch.tensor(x)), torch.tensor(y))
        loss.backward()
        return loss

    opt_holder: list = [None, None]
    return closure, tclosure, opt_holder


@pytest.mark.parametrize("kw", [dict(), dict(line_search_fn="strong_wolfe"),
                                dict(lr=0.5, max_iter=5, history_size=3),
                                dict(max_iter=7, history_size=4, line_search_fn="strong_wolfe")],
                         ids=["default", "strong_wolfe", "short-history", "wolfe-short"])
def test_lbfgs_matches_torch(kw):
    tmodel, model = make_pair()
    x, y = batch(0)
    closure, tclosure, holder = _closures(model, tmodel, x, y)
    holder[0] = opt = tg.optim.LBFGS(model.parameters(), **kw)
    holder[1] = topt = torch.optim.LBFGS(tmodel.parameters(), **kw)
    first = None
    for _ in range(4):
        loss, tloss = opt.step(closure), topt.step(tclosure)
        first = first if first is not None else loss.item()
        assert loss.item() == pytest.approx(tloss.item(), rel=1e-8)
        assert_params_close(model, tmodel, 1e-5, 1e-9)
    state, tstate = opt.state[model[0].weight], topt.state[tmodel[0].weight]
    assert (state["func_evals"], state["n_iter"]) == (tstate["func_evals"], tstate["n_iter"])
    assert closure().item() < 0.5 * first  # it optimised


def test_lbfgs_refuses_groups_and_a_missing_closure():
    _, model = make_pair()
    with pytest.raises(ValueError, match="parameter groups are not supported"):
        tg.optim.LBFGS([{"params": model[0].parameters()}, {"params": model[2].parameters()}])
    opt = tg.optim.LBFGS(model.parameters())
    with pytest.raises(TypeError, match="needs a closure"):
        opt.step(None)


# ---------------------------------------------------------------- gradient clipping


@pytest.mark.parametrize("clip", [0.05, 0.3, 10.0])
def test_clip_grad_value_matches_torch(clip):
    tmodel, model = make_pair()
    x, y = batch(3)
    nn.functional.mse_loss(model(tg.tensor(x)), tg.tensor(y)).backward()
    tnn.functional.mse_loss(tmodel(torch.tensor(x)), torch.tensor(y)).backward()
    assert nn.utils.clip_grad_value_(model.parameters(), clip) is None
    torch.nn.utils.clip_grad_value_(tmodel.parameters(), clip)
    theirs = dict(tmodel.named_parameters())
    clipped = 0
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs[name].grad.numpy(), rtol=1e-12,
                                   atol=1e-15)
        clipped += int((np.abs(p.grad.numpy()) == clip).sum())
    assert (clipped > 0) == (clip < 1.0)
    with pytest.raises(ValueError, match="clip_value must be >= 0"):
        nn.utils.clip_grad_value_(model.parameters(), -1.0)


def test_clip_grad_value_in_a_compiled_step():
    _, eager = make_pair(np.float32)
    _, model = make_pair(np.float32)
    eopt, opt = tg.optim.SGD(eager.parameters(), lr=0.1), tg.optim.SGD(model.parameters(), lr=0.1)

    def step(x, y):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        nn.utils.clip_grad_value_(model.parameters(), 0.05)
        opt.step()

    compiled = tg.compile(step)
    for i in range(3):
        x, y = (tg.tensor(a) for a in batch(i, np.float32))
        eopt.zero_grad()
        nn.functional.mse_loss(eager(x), y).backward()
        nn.utils.clip_grad_value_(eager.parameters(), 0.05)
        eopt.step()
        compiled(x, y)
    for a, b in zip(eager.parameters(), model.parameters()):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-6, atol=1e-7)


def test_lbfgs_state_dict_resumes_exactly():
    def run(split):
        _, model = make_pair()
        x, y = batch(1)
        holder = [tg.optim.LBFGS(model.parameters(), max_iter=3, history_size=4)]

        def closure():
            holder[0].zero_grad()
            loss = nn.functional.mse_loss(model(tg.tensor(x)), tg.tensor(y))
            loss.backward()
            return loss

        for i in range(4):
            if split and i == 2:
                saved = holder[0].state_dict()
                holder[0] = tg.optim.LBFGS(model.parameters(), max_iter=3, history_size=4)
                holder[0].load_state_dict(saved)
            holder[0].step(closure)
        return [p.numpy().copy() for p in model.parameters()]

    for a, b in zip(run(False), run(True)):
        np.testing.assert_array_equal(a, b)
