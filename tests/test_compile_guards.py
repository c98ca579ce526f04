"""A compiled function returns eager's result or raises tg.TraceError, never another number.

Each test is a pattern an outside check found where tg.compile silently returned a stale
value: `.grad` that comes and goes, Python values read in helpers, NumPy arrays, side
effects, floats and learning rates, threads. Every call is compared with eager code.
"""

# ruff: noqa: B023 (each loop iteration builds and runs its own step: eager, then compiled)
from __future__ import annotations

import array
import collections
import dataclasses
import functools
import itertools
import threading
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracegrad as tg
from tracegrad import nn
from tracegrad.compiler.backends.toolchain import compiler_problem


def _regression_step(model, opt):
    """One SGD-style training step of a regression model, as a user writes it."""
    def step(x, y):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        return loss
    return step


# ---------------------------------------------------------------- 1. gradients come and go


def test_a_variant_traced_without_a_grad_is_not_reused_once_it_exists():
    results = {}
    for mode in ("eager", "compiled"):
        w = nn.Parameter(tg.tensor([1.0]))
        opt = tg.optim.SGD([w], lr=0.1)

        def update():
            opt.step()
            opt.zero_grad()

        run = tg.compile(update) if mode == "compiled" else update
        for i in range(6):
            if i != 3:
                w.grad = tg.tensor([1.0])
            run()
        results[mode] = w.numpy().copy()
    np.testing.assert_allclose(results["compiled"], results["eager"])
    np.testing.assert_allclose(results["compiled"], [0.5], rtol=1e-6)


def test_gradient_accumulation_with_grad_reset_every_third_step():
    rng = np.random.default_rng(0)
    xs = [tg.tensor(rng.standard_normal((4, 3)).astype(np.float32)) for _ in range(10)]
    out = {}
    for mode in ("eager", "compiled"):
        tg.manual_seed(0)
        model = nn.Linear(3, 2)

        def step(x):
            loss = (model(x) ** 2).mean()
            loss.backward()
            return loss

        run = tg.compile(step) if mode == "compiled" else step
        grads = []
        for i, x in enumerate(xs):
            if i % 3 == 0:
                model.weight.grad = None
                model.bias.grad = None
            run(x)
            grads.append(model.weight.grad.numpy().copy())
        out[mode] = grads
    for a, b in zip(out["eager"], out["compiled"]):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)


def test_freezing_and_unfreezing_a_layer_keeps_training_it():
    rng = np.random.default_rng(1)
    batches = [(tg.tensor(rng.standard_normal((8, 3)).astype(np.float32)),
                tg.tensor(rng.standard_normal((8, 1)).astype(np.float32))) for _ in range(9)]
    out = {}
    for mode in ("eager", "compiled"):
        tg.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
        opt = tg.optim.SGD(model.parameters(), lr=0.1)

        step = _regression_step(model, opt)
        run = tg.compile(step) if mode == "compiled" else step
        losses = []
        for i, (x, y) in enumerate(batches):
            if i == 3:
                model[0].requires_grad_(False)
            if i == 6:
                model[0].requires_grad_(True)
            losses.append(run(x, y).item())
        out[mode] = (losses, [p.numpy().copy() for p in model.parameters()])
    np.testing.assert_allclose(out["compiled"][0], out["eager"][0], rtol=1e-5)
    for a, b in zip(out["eager"][1], out["compiled"][1]):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)


_STATEFUL = {
    "adam": lambda ps: tg.optim.Adam(ps, lr=0.05),
    "sgd momentum": lambda ps: tg.optim.SGD(ps, lr=0.1, momentum=0.9),
    "rmsprop": lambda ps: tg.optim.RMSprop(ps, lr=0.01, momentum=0.5),
}


def _eager_and_compiled(make_opt, batches, between, **compile_kw):
    """Losses and parameters (and every .grad) of the same steps run eagerly and compiled,
    ``between(i, model, opt)`` before step i."""
    out = {}
    for mode in ("eager", "compiled"):
        tg.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
        opt = make_opt(model.parameters())
        step = _regression_step(model, opt)
        run = tg.compile(step, **compile_kw) if mode == "compiled" else step
        losses = []
        for i, (x, y) in enumerate(batches):
            between(i, model, opt)
            losses.append(run(x, y).item())
        out[mode] = (losses, [p.numpy().copy() for p in model.parameters()])
    np.testing.assert_allclose(out["compiled"][0], out["eager"][0], rtol=1e-5)
    for a, b in zip(out["eager"][1], out["compiled"][1]):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("optimizer", sorted(_STATEFUL))
@pytest.mark.parametrize("sizes", ["same batch", "growing batch"])
def test_a_layer_unfrozen_after_compiling_starts_its_moments_as_eager_does(optimizer, sizes):
    """Fine-tuning: the backbone frozen at first, unfrozen later. Its first step creates its
    optimizer state (moments, momentum buffer); that step was traced, and the program held
    the new zero moments as constants, so every later step restarted from them (and the
    dynamic-shape traces left the moments of a discarded trace behind): other weights. Such
    a call now runs eagerly, as the first call does."""
    rng = np.random.default_rng(1)
    n = [8] * 7 if sizes == "same batch" else [4, 5, 6, 7, 8, 9, 10]
    batches = [(tg.tensor(rng.standard_normal((k, 3)).astype(np.float32)),
                tg.tensor(rng.standard_normal((k, 1)).astype(np.float32))) for k in n]

    def between(i, model, opt):
        if i == 0:
            model[0].weight.requires_grad_(False)
        if i == 2:
            model[0].weight.requires_grad_(True)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no warning about the function's side effects)
        _eager_and_compiled(_STATEFUL[optimizer], batches, between)


def test_one_compiled_step_training_two_models_passed_as_arguments():
    """The second model's first compiled call was traced, and its Adam moments, created by
    that step, became constants of its variant: every later step of that model restarted
    from them."""
    def step(model, opt, x):
        opt.zero_grad()
        loss = model(x).pow(2).mean()
        loss.backward()
        opt.step()
        return loss.item()

    def pairs():
        out = []
        for k in range(2):
            tg.manual_seed(k)
            model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
            out.append((model, tg.optim.Adam(model.parameters(), lr=0.01)))
        return out

    eager, compiled, run = pairs(), pairs(), tg.compile(step)
    for j in range(6):
        for k in range(2):
            x = tg.ones(3, 4) * (j % 3 + 1)
            assert run(*compiled[k], x) == pytest.approx(step(*eager[k], x), rel=1e-5)


def _first_weight(model):
    return model[0].weight


_OPTIMIZER_EDITS = {
    "state.clear()": lambda model, opt: opt.state.clear(),
    "del state[p]": lambda model, opt: opt.state.__delitem__(_first_weight(model)),
    "state[p] = {}": lambda model, opt: opt.state.__setitem__(_first_weight(model), {}),
    "state[p].clear()": lambda model, opt: opt.state[_first_weight(model)].clear(),
    "state[p][k] = new": lambda model, opt: [
        opt.state[_first_weight(model)].__setitem__(k, v.clone() * 0.5)
        for k, v in list(opt.state[_first_weight(model)].items())],
    "state = {}": lambda model, opt: setattr(opt, "state", {}),
    "params.pop(0)": lambda model, opt: opt.param_groups[0]["params"].pop(0),
    "group['params'] = ...": lambda model, opt: opt.param_groups[0].__setitem__(
        "params", opt.param_groups[0]["params"][1:]),
    "param_groups = ...": lambda model, opt: setattr(
        opt, "param_groups", [dict(opt.param_groups[0], params=list(model[2].parameters()))]),
}


@pytest.mark.parametrize("edit", sorted(_OPTIMIZER_EDITS))
@pytest.mark.parametrize("optimizer", sorted(_STATEFUL))
def test_changing_an_optimizers_state_or_parameters_between_calls(optimizer, edit):
    """Resetting the moments (``opt.state.clear()``) or taking a parameter out of a group
    between calls: the program kept reading and writing the tensors it was traced with (the
    old moments, the old parameter list), so the weights differed from eager's. The
    optimizer's containers now count as its structure, as a module's parameters do."""
    rng = np.random.default_rng(2)
    batches = [(tg.tensor(rng.standard_normal((8, 3)).astype(np.float32)),
                tg.tensor(rng.standard_normal((8, 1)).astype(np.float32))) for _ in range(6)]

    def between(i, model, opt):
        if i == 3:
            _OPTIMIZER_EDITS[edit](model, opt)

    _eager_and_compiled(_STATEFUL[optimizer], batches, between)


def test_an_optimizers_containers_stay_dicts_and_lists_that_copy_and_save():
    model = nn.Linear(3, 2)
    opt = tg.optim.Adam(model.parameters(), lr=0.1)
    opt.zero_grad()
    model(tg.ones(2, 3)).sum().backward()
    opt.step()
    assert isinstance(opt.state, dict) and isinstance(opt.param_groups, list)
    assert isinstance(opt.param_groups[0], dict) and isinstance(opt.param_groups[0]["params"],
                                                                 list)
    twin = __import__("copy").deepcopy(opt)
    assert type(twin.state) is type(opt.state) and len(twin.state) == len(opt.state)
    saved = opt.state_dict()
    assert type(saved["state"]) is dict and type(saved["state"][0]) is dict
    opt.load_state_dict(saved)
    assert sorted(opt.state[model.weight]) == ["exp_avg", "exp_avg_sq", "step"]


class _BadBatch(Exception):
    pass


_SCALES = [1.0] * 9 + [None] + [1.0] * 9  # (by batch size: none for 9)


@pytest.mark.parametrize("backend", ["numpy", "auto"])
def test_a_call_that_raises_leaves_eagers_state(backend):
    """A step that raises on some calls (a bad batch, its own check), after it changed state
    (a running count, the .grad a backward wrote, an optimizer step): the call was traced,
    and the trace undid every change before the exception left, so the compiled step kept
    the state of before the call while eager kept the changes; every later number differed.
    Such a call now runs again eagerly and raises from there. Also at a new size of a
    dynamic variant (whose first call at a size is traced: the function reads the size)."""
    out = []
    for compiled in (False, True):
        tg.manual_seed(0)
        model = nn.Linear(3, 1)
        opt = tg.optim.SGD(model.parameters(), lr=0.1)
        count = tg.zeros(())

        def step(x, fail):
            count.add_(1)
            opt.zero_grad()
            (model(x) ** 2).mean().backward()
            opt.step()
            if fail:
                raise _BadBatch
            return count * _SCALES[x.shape[0]]  # (TypeError at 9)

        run = tg.compile(step, backend=backend) if compiled else step
        seen = []
        for n, fail in [(2, False), (2, False), (2, True), (2, False), (2, True), (3, False),
                        (4, False), (5, False), (9, False), (6, False), (9, False),
                        (10, False)]:
            try:
                run(tg.ones(n, 3) * 0.5, fail)
                seen.append("ok")
            except (_BadBatch, TypeError) as e:
                seen.append(type(e).__name__)
            seen.append([count.item(), model.weight.grad.numpy().copy(),
                         model.weight.numpy().copy()])
        out.append(seen)
    for a, b in zip(*out):
        if isinstance(a, str):
            assert a == b
        else:
            assert a[0] == b[0]
            np.testing.assert_allclose(b[1], a[1], rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(b[2], a[2], rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------- 2. what the function reads

S = 2.0
CONFIG = {"scale": 2.0, "shift": [1.0, 2.0]}
W = tg.tensor([1.0, 2.0, 3.0])


def _helper(x):
    return x * S


def _config_helper(x):
    return x * CONFIG["scale"] + CONFIG["shift"][1]


def _tensor_helper(x):
    return x * W


def test_a_global_read_in_a_helper_is_guarded():
    global S
    f = tg.compile(lambda x: _helper(x).sum())
    x = tg.ones(3)
    assert f(x).item() == f(x).item() == 6.0
    S = 10.0
    try:
        assert f(x).item() == 30.0
        assert "global 'S'" in f.cache_info().reasons[-1]
    finally:
        S = 2.0
    assert f(x).item() == 6.0


def test_entries_of_a_global_dict_and_list_are_guarded():
    f = tg.compile(lambda x: _config_helper(x).sum())
    x = tg.ones(2)
    assert f(x).item() == f(x).item() == 8.0
    CONFIG["scale"] = 3.0
    try:
        assert f(x).item() == 10.0
        CONFIG["shift"][1] = 5.0
        assert f(x).item() == 16.0
    finally:
        CONFIG["scale"], CONFIG["shift"][1] = 2.0, 2.0


def test_a_global_tensor_rebound_is_read_anew():
    global W
    f = tg.compile(lambda x: _tensor_helper(x).sum())
    x = tg.ones(3)
    assert f(x).item() == f(x).item() == 6.0
    saved = W
    W = tg.tensor([10.0, 10.0, 10.0])
    try:
        assert f(x).item() == 30.0
        assert "replaced" in f.cache_info().reasons[-1]
    finally:
        W = saved


def test_a_dict_attribute_of_a_module_is_guarded():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)
            self.cfg = {"scale": 1.0}

        def forward(self, x):
            return self.fc(x) * self.cfg["scale"]

    m = Scaled()
    f = tg.compile(m)
    x = tg.ones(1, 2)
    for scale in (1.0, 1.0, 3.0, 3.0, 0.5):
        m.cfg["scale"] = scale
        np.testing.assert_allclose(f(x).numpy(), m(x).numpy(), rtol=1e-6)


def test_a_closure_cell_changed_by_nonlocal_is_guarded():
    scale = 1.0

    def step(x):
        return (x * scale).sum()

    def set_scale(v):
        nonlocal scale
        scale = v

    f = tg.compile(step)
    x = tg.ones(2)
    assert f(x).item() == f(x).item() == 2.0
    set_scale(4.0)
    assert f(x).item() == 8.0


def test_the_contents_of_a_numpy_argument_are_an_input():
    f = tg.compile(lambda x, a: (x * tg.from_numpy(a)).sum())
    x = tg.ones(3)
    a = np.ones(3, dtype=np.float32)
    assert f(x, a).item() == f(x, a).item() == 3.0
    a[:] = 5.0
    assert f(x, a).item() == 15.0
    b = np.full(3, 2.0, dtype=np.float32)  # a new array: the same program reads it
    assert f(x, b).item() == 6.0
    assert f.cache_info().misses == 1


def test_a_numpy_argument_used_by_numpy_code_is_guarded_by_value():
    # `a.sum()` runs in NumPy, outside the program: the array is a guard then, not an input
    f = tg.compile(lambda x, a: (x * float(a.sum())).sum())
    x = tg.ones(2)
    a = np.ones(3)
    assert f(x, a).item() == f(x, a).item() == 6.0
    a[0] = 4.0
    assert f(x, a).item() == 12.0


def test_a_new_array_at_a_freed_address_does_not_hit_an_old_variant():
    f = tg.compile(lambda x, a: x * int(a.sum()))
    x = tg.ones(2)
    for k in range(1, 6):  # each array is freed before the next is made
        a = np.full(3, k, dtype=np.int64)
        f(x, a)
        np.testing.assert_allclose(f(x, a).numpy(), [3.0 * k] * 2)
        del a


def test_a_global_numpy_array_is_guarded_by_its_contents():
    table = np.array([1.0, 2.0], dtype=np.float32)
    f = tg.compile(lambda x: (x * tg.tensor(table)).sum())
    x = tg.ones(2)
    assert f(x).item() == f(x).item() == 3.0
    table[1] = 7.0
    assert f(x).item() == 8.0


# ---------------------------------------------------------------- 3. no branch on data


@pytest.mark.parametrize("read", [
    lambda x: np.asarray(x).sum() > 0,
    lambda x: x.numpy().sum() > 0,
    lambda x: float(x.sum()) > 0,
    lambda x: x.data.sum() > 0,
], ids=["asarray", "numpy", "float", "data"])
def test_reading_a_traced_tensor_into_python_raises(read):
    h = tg.compile(lambda x: (x * 2).sum() if read(x) else (-x).sum())
    assert h(tg.ones(2)).item() == 4.0
    with pytest.raises(tg.TraceError, match="test_compile_guards.py"):
        h(tg.ones(2))


@pytest.mark.parametrize("copy", [
    lambda x: x.new_tensor(x * 2),
    lambda x: x.new_tensor(x * 2, dtype=tg.float64),
    lambda x: tg.tensor(x * 2),
    lambda x: (x * 2).detach().clone(),
], ids=["new_tensor", "new_tensor_dtype", "tensor", "detach_clone"])
def test_a_copy_of_a_traced_tensor_is_each_calls_value(copy):
    """``x.new_tensor(y)`` copied the traced call's values into a constant: after [1, 1],
    [5, 1] still gave 3 where eager gives 11."""
    h = tg.compile(lambda x: copy(x) + 1)
    assert [h(tg.tensor([v, 1.0])).tolist() for v in (1.0, 1.0, 5.0)] == \
        [[3.0, 3.0], [3.0, 3.0], [11.0, 3.0]]


def test_one_hot_that_infers_its_width_from_the_values_raises_when_compiled():
    """``F.one_hot(y)`` without num_classes took its width from the traced call's labels:
    labels [0, 3, 1] after tracing [0, 1, 2] gave three columns, not eager's four."""
    h = tg.compile(lambda y: nn.functional.one_hot(y).float().sum(0))
    assert h(tg.tensor([0, 1, 2])).tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(tg.TraceError, match="pass num_classes"):
        h(tg.tensor([0, 3, 1]))
    fixed = tg.compile(lambda y: nn.functional.one_hot(y, 5).float().sum(0))
    assert [fixed(tg.tensor(y)).tolist() for y in ([0, 1], [0, 1], [4, 4])] == \
        [[1.0, 1.0, 0.0, 0.0, 0.0]] * 2 + [[0.0, 0.0, 0.0, 0.0, 2.0]]


# ---------------------------------------------------------------- 4. side effects


def test_numpy_random_in_a_compiled_function_raises():
    f = tg.compile(lambda x: x * tg.tensor(np.random.rand(2).astype(np.float32)))
    f(tg.ones(2))
    with pytest.raises(tg.TraceError, match="np.random"):
        f(tg.ones(2))


def test_a_numpy_generator_or_pythons_random_in_a_compiled_function_raises():
    import random

    rng = np.random.default_rng(0)
    f = tg.compile(lambda x: x * float(rng.standard_normal()))
    f(tg.ones(2))
    with pytest.raises(tg.TraceError, match="random numbers"):
        f(tg.ones(2))
    g = tg.compile(lambda x: x * random.random())
    g(tg.ones(2))
    with pytest.raises(tg.TraceError, match="Python's random module"):
        g(tg.ones(2))


def test_print_warns_that_it_runs_once():
    def f(x):
        print("tracing")
        return x + 1

    g = tg.compile(f)
    g(tg.ones(1))
    with pytest.warns(UserWarning, match=r"print\(\).*runs once, while tracing"):
        g(tg.ones(1))


COUNT = 0
SEEN: list = []


def test_a_global_counter_and_a_list_the_function_changes_keep_eager_results():
    global COUNT

    def f(x):
        global COUNT
        COUNT += 1
        SEEN.append(1)
        return x * COUNT

    g = tg.compile(f)
    x = tg.ones(1)
    COUNT = 0
    SEEN.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = [g(x).item() for _ in range(4)]
    assert got == [1.0, 2.0, 3.0, 4.0]  # what eager gives
    assert COUNT == 4 and len(SEEN) == 4
    messages = " ".join(str(w.message) for w in caught)
    assert "COUNT" in messages and "SEEN" in messages
    assert "test_compile_guards.py" in messages  # where: the append's line, f's definition


# ---------------------------------------------------------------- 5. floats are inputs


def _check_schedule(make_opt, make_sched):
    """Train one regression model eagerly and compiled, the scheduler stepping after every
    batch: the losses agree, and the compiled step compiled once."""
    rng = np.random.default_rng(0)
    batches = [(tg.tensor(rng.standard_normal((8, 3)).astype(np.float32)),
                tg.tensor(rng.standard_normal((8, 1)).astype(np.float32))) for _ in range(12)]
    out = {}
    for mode in ("eager", "compiled"):
        tg.manual_seed(0)
        model = nn.Linear(3, 1)
        opt = make_opt(model.parameters())
        sched = make_sched(opt)
        step = _regression_step(model, opt)
        run = tg.compile(step) if mode == "compiled" else step
        losses = []
        for x, y in batches:
            losses.append(run(x, y).item())
            sched.step()
        out[mode] = losses
        if mode == "compiled":
            assert run.cache_info().misses == 1, run.cache_info()
    np.testing.assert_allclose(out["compiled"], out["eager"], rtol=1e-5)


def test_an_lr_scheduler_never_recompiles_and_matches_eager():
    _check_schedule(lambda ps: tg.optim.Adam(ps, lr=0.05),
                    lambda opt: tg.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5))


def test_a_float_argument_keeps_python_float_promotion():
    f = tg.compile(lambda x, s: x * s + 1.5 * s)
    for x in (tg.tensor([1, 2]), tg.tensor([1.0, 2.0]), tg.tensor([1.0], dtype=tg.float64)):
        for s in (0.1, 0.1, 0.3):
            want = (lambda x, s: x * s + 1.5 * s)(x, s)
            got = f(x, s)
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_a_float_argument_used_in_a_branch_is_guarded_by_value():
    f = tg.compile(lambda x, s: x * 2 if s > 0 else x * 3)
    x = tg.ones(1)
    assert [f(x, s).item() for s in (1.0, 1.0, -1.0, 2.0, -3.0)] == [2.0, 2.0, 3.0, 2.0, 3.0]


# ---------------------------------------------------------------- 6. threads


def _in_threads(work, n):
    """Run ``work(k)`` for k in range(n), each in its own thread, all at once."""
    threads = [threading.Thread(target=work, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_threads_calling_one_compiled_function_get_their_own_results():
    f = tg.compile(lambda x: (x.tanh() * 2 + x).sum(dim=1))
    rng = np.random.default_rng(0)
    xs = [tg.tensor(rng.standard_normal((64, 32)).astype(np.float32)) for _ in range(8)]
    f(xs[0])
    f(xs[0])
    wants = [(x.tanh() * 2 + x).sum(dim=1).numpy() for x in xs]
    wrong = []

    def work(k):
        for _ in range(100):
            got = f(xs[k]).numpy()
            # (the C backend's float32 sums round differently from NumPy's: 1e-5)
            if not np.allclose(got, wants[k], rtol=1e-5, atol=1e-5):
                wrong.append(k)

    _in_threads(work, 8)
    assert wrong == []


def test_threads_meeting_a_new_shape_at_once_compile_it_once():
    """Four threads calling with a shape no variant has: one traces it, the others wait and
    then run that variant (each traced a twin before, 9 variants for 4 shapes, and the
    recompile warning blamed a changing value)."""
    w = tg.tensor(np.linspace(-1.0, 1.0, 8, dtype=np.float32))
    f = tg.compile(lambda x: (x * w).tanh().sum(dim=1))
    f(tg.ones(1, 8))  # (eager)
    start = threading.Barrier(4)
    results = {}

    def work(k):
        x = tg.tensor(np.full((3, 8), float(k), dtype=np.float32))
        start.wait()
        results[k] = f(x).numpy()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _in_threads(work, 4)
    for k in range(4):
        np.testing.assert_allclose(results[k], np.tanh(np.full((3, 8), k) * w.numpy()).sum(1),
                                   rtol=1e-6)
    assert f.cache_info().variants == 1


def test_threads_calling_one_compiled_training_step_get_their_own_results():
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 1))
    opt = tg.optim.SGD(model.parameters(), lr=0.0)  # parameters stay: results are per input

    def step(x, y):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        return loss, model[0].weight.grad.sum()

    rng = np.random.default_rng(0)
    data = [(tg.tensor(rng.standard_normal((8, 16)).astype(np.float32)),
             tg.tensor(rng.standard_normal((8, 1)).astype(np.float32))) for _ in range(8)]
    wants = [tuple(v.item() for v in step(x, y)) for x, y in data]
    run = tg.compile(step)
    run(*data[0])
    run(*data[0])
    wrong = []

    def work(k):
        for _ in range(100):
            got = tuple(v.item() for v in run(*data[k]))
            if not np.allclose(got, wants[k], rtol=1e-5, atol=1e-6):
                wrong.append((k, got, wants[k]))

    _in_threads(work, 8)
    assert wrong == []


def test_threads_differentiating_through_one_compiled_module_get_their_own_gradients():
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
    run = tg.compile(model)
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((4, 8)).astype(np.float32) for _ in range(8)]

    def grad_of(f, a):
        x = tg.tensor(a, requires_grad=True)
        (f(x) ** 2).sum().backward()
        return x.grad.numpy().copy()

    wants = [grad_of(model, a) for a in xs]
    grad_of(run, xs[0])
    grad_of(run, xs[0])
    wrong = []

    def work(k):
        for _ in range(50):
            if not np.allclose(grad_of(run, xs[k]), wants[k], rtol=1e-5, atol=1e-6):
                wrong.append(k)

    _in_threads(work, 8)
    assert wrong == []


def test_a_trace_records_only_its_own_threads_operations():
    p = tg.tensor([1.0, 2.0])
    inside, done = threading.Event(), threading.Event()

    def other():
        inside.wait(10)
        with tg.no_grad():
            p.add_(1.0)  # another thread's eager work, while the trace runs
        done.set()

    def f(x):
        y = x * p
        if not inside.is_set():
            inside.set()
            done.wait(10)
        return y.sum()

    g = tg.compile(f)
    x = tg.ones(2)
    g(x)  # eager
    inside.clear()
    t = threading.Thread(target=other)
    t.start()
    g(x)  # traced while `other` adds 1 to p
    t.join()
    np.testing.assert_allclose(p.numpy(), [2.0, 3.0])
    for _ in range(3):
        assert g(x).item() == 5.0
    np.testing.assert_allclose(p.numpy(), [2.0, 3.0])  # not added again by the program


def test_grad_mode_is_per_thread():
    seen = []

    def other():
        seen.append(tg.is_grad_enabled())

    with tg.no_grad():
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert seen == [True]


# ---------------------------------------------------------------- randomized


_STATE = {"g": 1.0, "d": {"k": 2.0}, "l": [3.0]}


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["g", "d", "l", "cell", "arr", "grad", "none"]),
                          st.sampled_from([0.5, 1.0, 2.0, -1.0])), min_size=3, max_size=8),
       st.sampled_from(["mul", "add", "tanh"]))
def test_random_mutations_between_calls_match_eager(mutations, op):
    cell = [1.0]
    arr = np.array([1.0, 2.0], dtype=np.float32)
    w = tg.tensor([0.5, -0.5], requires_grad=True)

    def use(x, scale):
        return {"mul": x * scale, "add": x + scale, "tanh": (x * scale).tanh()}[op]

    def step(x, a):
        y = use(x, _STATE["g"]) + use(x, _STATE["d"]["k"]) * _STATE["l"][0]
        y = y * cell[0] + tg.from_numpy(a) * w
        z = y.sum()
        if w.grad is not None:
            z = z + (w.grad * w).sum()
        return z

    compiled = tg.compile(step)
    x = tg.tensor([1.0, 3.0])
    saved = {"g": _STATE["g"], "k": _STATE["d"]["k"], "l": _STATE["l"][0]}
    try:
        for what, v in [("none", 0.0)] + mutations:
            if what == "g":
                _STATE["g"] = v
            elif what == "d":
                _STATE["d"]["k"] = v
            elif what == "l":
                _STATE["l"][0] = v
            elif what == "cell":
                cell[0] = v
            elif what == "arr":
                arr[0] = v
            elif what == "grad":
                w.grad = None if w.grad is not None else tg.tensor([v, v])
            with tg.no_grad():
                want = step(x, arr).item()
                got = compiled(x, arr).item()
            # (float32 terms of size ~1 may cancel: their rounding, not the result's)
            assert got == pytest.approx(want, rel=1e-6, abs=1e-6), (what, v)
    finally:
        _STATE["g"], _STATE["d"]["k"], _STATE["l"][0] = saved["g"], saved["k"], saved["l"]


# ---------------------------------------------------------------- 9. anomaly mode


def test_a_compiled_program_checks_every_value_under_detect_anomaly():
    f = tg.compile(lambda x: (x.log() * 2).sum())
    x = tg.tensor([1.0, 2.0])
    f(x)
    f(x)
    bad = tg.tensor([-1.0, 2.0])
    assert np.isnan(f(bad).item())  # outside anomaly mode: nan, as eager
    with tg.detect_anomaly():
        assert f(x).item() == pytest.approx(2 * np.log(2.0))  # compiles a checking variant
        with pytest.raises(FloatingPointError,
                           match=r"kernel \(log.*produced nan in a compiled program"):
            f(bad)
    assert "detect_anomaly" in f.cache_info().reasons[-1]
    assert np.isnan(f(bad).item())  # the variant without checks again


class _Cfg:
    scale = 2.0


def test_a_class_attribute_and_a_module_global_read_through_an_attribute_are_guarded(
        tmp_path, monkeypatch):
    (tmp_path / "tg_user_config.py").write_text("SCALE = 2.0\nTABLE = {'k': 1.0}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import tg_user_config as cfg

    f = tg.compile(lambda x: (x * _Cfg.scale * cfg.SCALE + cfg.TABLE["k"]).sum())
    x = tg.ones(2)
    assert f(x).item() == f(x).item() == 10.0
    try:
        _Cfg.scale = 3.0
        assert f(x).item() == 14.0
        cfg.SCALE = 1.0
        assert f(x).item() == 8.0
        cfg.TABLE["k"] = 0.0
        assert f(x).item() == 6.0
    finally:
        _Cfg.scale = 2.0


def test_a_large_global_array_is_compared_on_every_call_with_a_warning():
    """A NumPy array of over 1 MiB read from Python was guarded by its identity and shape
    only: after ``big[0] = 3``, compiled calls still returned the traced 1. Its contents are
    compared on every call now, and a warning says that this takes time."""
    big = np.ones(300_000, dtype=np.float32)
    f = tg.compile(lambda x: x * float(big[0]))
    f(tg.ones(1))
    with pytest.warns(UserWarning, match="compares its contents"):
        assert f(tg.ones(1)).item() == 1.0
    big[0] = 3.0
    assert f(tg.ones(1)).item() == 3.0
    big[-1] = 5.0  # (not read: a new variant, the same result)
    assert f(tg.ones(1)).item() == 3.0


def _scaled(x, scale=1.0):
    return x * scale


_CONTAINER_CHANGES_DEEP = {
    # name: (make, change between calls, what the function reads)
    "partial's keywords": (lambda: functools.partial(_scaled, scale=1.0),
                           lambda o, k: o.keywords.__setitem__("scale", k + 2.0),
                           lambda o, x: o(x)),
    "a list nested 8 deep": (lambda: [[[[[[[[1.0]]]]]]]],
                             lambda o, k: o[0][0][0][0][0][0][0].__setitem__(0, k + 2.0),
                             lambda o, x: x * o[0][0][0][0][0][0][0][0]),
    "a list of 20,000": (lambda: [1.0] * 20_000, lambda o, k: o.__setitem__(5, k + 2.0),
                         lambda o, x: x * o[5]),
    "a dict of 20,000": (lambda: {i: 1.0 for i in range(20_000)},
                         lambda o, k: o.__setitem__(5, k + 2.0), lambda o, x: x * o[5]),
    "a list of 20,000 arrays": (lambda: [np.ones(2)] * 20_000,
                                lambda o, k: o.__setitem__(5, np.full(2, k + 2.0)),
                                lambda o, x: x * float(o[5][0])),
}


@pytest.mark.parametrize("case", sorted(_CONTAINER_CHANGES_DEEP))
def test_values_deep_or_in_large_containers_are_guarded(case):
    """These were guarded by identity (and size): a changed value kept the traced one
    (1, 2, 2, 2 for eager's 1, 2, 3, 4)."""
    make, change, read = _CONTAINER_CHANGES_DEEP[case]
    assert _eager_then_compiled(make, change, read) == [[1.0, 2.0, 3.0, 4.0]] * 2


class _WeightedLoss:  # a callable object that is not a Module
    def __init__(self, weight):
        self.weight = weight

    def __call__(self, x):
        return (x * self.weight).sum()


LOSS = _WeightedLoss(2.0)


def test_the_attributes_of_a_callable_object_the_function_calls_are_guarded():
    f = tg.compile(lambda x: LOSS(x))
    x = tg.ones(3)
    assert f(x).item() == f(x).item() == 6.0
    LOSS.weight = 5.0
    try:
        assert f(x).item() == 15.0
    finally:
        LOSS.weight = 2.0


def test_building_a_model_elsewhere_does_not_recompile_a_function_that_uses_none():
    f = tg.compile(lambda x: x + 1)
    x = tg.ones(2)
    f(x)
    f(x)
    nn.Linear(2, 2)  # a new module anywhere bumps the structure counter
    tg.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    f(x)
    assert f.cache_info().misses == 1


def test_anomaly_mode_in_one_thread_does_not_switch_another_threads_variant():
    f = tg.compile(lambda x: (x * 2).sum())
    x = tg.ones(2)
    f(x)
    f(x)
    inside, done = threading.Event(), threading.Event()

    def checker():
        with tg.detect_anomaly():
            inside.set()
            done.wait(10)

    t = threading.Thread(target=checker)
    t.start()
    inside.wait(10)
    try:
        assert f(x).item() == 4.0
        assert f.cache_info().misses == 1  # this thread is not in anomaly mode
    finally:
        done.set()
        t.join()


class _Config:
    def __init__(self):
        self.scale = 1.0


def test_a_plain_object_held_by_a_module_is_guarded():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.cfg = _Config()

        def forward(self, x):
            return x * self.cfg.scale

    m = Scaled()
    f = tg.compile(m)
    x = tg.ones(2)
    assert f(x).tolist() == f(x).tolist() == [1.0, 1.0]
    m.cfg.scale = 3.0
    assert f(x).tolist() == [3.0, 3.0]


def test_a_float_returned_from_float_inputs_is_a_float_as_in_eager():
    f = tg.compile(lambda x, s: ((x * s).sum(), s * 2, s))
    x = tg.ones(2)
    for s in (0.5, 0.5, 0.25):
        loss, twice, same = f(x, s)
        assert type(twice) is float and type(same) is float
        assert (loss.item(), twice, same) == (2 * s, 2 * s, s)


def test_hyper_parameters_an_optimizer_computes_with_are_inputs_one_cycle_never_recompiles():
    # OneCycleLR cycles lr and momentum (SGD) or beta1 (Adam) every step. SGD branches on
    # `if momentum:`, so momentum is a guard there; Adam's betas and every lr are inputs.
    for make in (lambda ps: tg.optim.Adam(ps, lr=0.01), lambda ps: tg.optim.AdamW(ps, lr=0.01),
                 lambda ps: tg.optim.SGD(ps, lr=0.01)):
        _check_schedule(make, lambda opt: tg.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=0.1, total_steps=12,
            cycle_momentum=not isinstance(opt, tg.optim.SGD)))


def test_an_argument_passed_twice_is_traced_as_two_inputs():
    """A variant traced from f(x, x) (or f(t, 0.5, 0.5): one float object at two places) used
    one input for both places and then served f(x, y) with y - y; each place is its own input
    now, and an aliased argument that the function writes to raises TraceError."""
    f = tg.compile(lambda a, b: a - b)
    x, y = tg.tensor([1.0, 2.0]), tg.tensor([5.0, 7.0])
    for _ in range(3):
        np.testing.assert_array_equal(f(x, x).numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(f(x, y).numpy(), [-4.0, -5.0])
    np.testing.assert_array_equal(f(y, x).numpy(), [4.0, 5.0])

    g = tg.compile(lambda t, a, b: t * a + b)
    half = 0.5
    for _ in range(3):
        g(x, half, half)
    np.testing.assert_array_equal(g(x, 0.5, 2.0).numpy(), (x * 0.5 + 2.0).numpy())

    def bump_then_read(a, b):
        a.add_(1.0)
        return b * 2

    h = tg.compile(bump_then_read)
    h(tg.tensor([1.0, 2.0]), tg.tensor([1.0, 2.0]))  # (eager, the first call)
    with pytest.raises(tg.TraceError, match="same tensor as an earlier argument"):
        z = tg.tensor([1.0, 2.0])
        h(z, z)

    spec = tg.TensorSpec((2,))
    assert len(tg.trace(lambda a, b: a - b, spec, spec).inputs) == 2


def test_a_parameter_passed_as_the_argument_of_a_step_traced_without_it_raises():
    """Traced with a distinct argument, then called with the parameter itself as the
    argument: eager accumulates both roles' gradients into one .grad ([2, 4]); the program,
    which has them as two tensors, gave [1, 2]. Now the call retraces and raises TraceError,
    and distinct arguments still run compiled."""
    w = tg.tensor([1.0, 2.0], requires_grad=True)

    def step(a):
        (a * w).sum().backward()
        return w.grad.clone()

    f = tg.compile(step)
    for _ in range(3):
        w.grad = None
        x = tg.tensor([3.0, 4.0], requires_grad=True)
        np.testing.assert_array_equal(f(x).numpy(), [3.0, 4.0])
        np.testing.assert_array_equal(x.grad.numpy(), [1.0, 2.0])
    w.grad = None
    with pytest.raises(tg.TraceError, match="one the function reads otherwise"):
        f(w)
    w.grad = None
    x = tg.tensor([3.0, 4.0], requires_grad=True)
    np.testing.assert_array_equal(f(x).numpy(), [3.0, 4.0])


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("view", ["detach", "slice", "reversed"])
def test_an_argument_sharing_memory_with_a_written_parameter_raises(backend, view):
    """A view or detach() of a parameter passed as the argument of a step that halves the
    parameter in place after reading the argument: eager returns the argument as it was
    before the update (0.125, ...); the program, traced with separate memory, returned it
    after (0.0625, ...). Now such a call raises TraceError, whether it is traced first or
    would be served by an existing variant, and leaves the parameter as it was."""
    if backend == "c" and compiler_problem():
        pytest.skip("no C compiler")
    make = {"detach": lambda w: w.detach(), "slice": lambda w: w.detach()[0:3],
            "reversed": lambda w: w.detach()[::-1]}[view]

    def run(compiled: bool):
        w = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)

        def step(x):
            z = x + 0.0
            with tg.no_grad():
                w.mul_(0.5)
            return z

        f = tg.compile(step, backend=backend) if compiled else step
        for _ in range(3):
            np.testing.assert_array_equal(f(tg.tensor([5.0, 5.0, 5.0])).numpy(), [5.0] * 3)
        return f, w

    f, w = run(False)
    expected = f(make(w)).numpy().copy()  # eager: z = x + 0 before the update
    np.testing.assert_array_equal(np.sort(expected), [0.125, 0.25, 0.375])
    f, w = run(True)
    with pytest.raises(tg.TraceError, match="shares memory"):
        f(make(w))
    np.testing.assert_array_equal(w.detach().numpy(), [0.125, 0.25, 0.375])  # untouched
    w2 = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)

    def first(x):
        with tg.no_grad():
            w2.mul_(0.5)
        return x * 1.0

    g = tg.compile(first, backend=backend)
    np.testing.assert_array_equal(np.sort(g(make(w2)).numpy()), [0.5, 1.0, 1.5])  # eager
    with pytest.raises(tg.TraceError, match="shares memory"):  # the call that traces
        g(make(w2))


def test_overlapping_arguments_that_are_only_read_run_compiled():
    """A language model's inputs and targets are overlapping slices of one token array; the
    step writes only its parameters, so the overlap cannot matter and it must not raise."""
    data = tg.arange(0, 12, dtype=tg.float32)
    w = tg.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)

    def step(x, y):
        loss = ((x * w - y) ** 2).sum()
        loss.backward()
        with tg.no_grad():
            w.sub_(0.001 * w.grad)
        w.grad = None
        return loss

    f = tg.compile(step)
    w_eager = tg.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    for i in range(5):
        x, y = data[i:i + 4], data[i + 1:i + 5]
        loss = f(x, y)
        e = ((x * w_eager - y) ** 2).sum()
        e.backward()
        with tg.no_grad():
            w_eager.sub_(0.001 * w_eager.grad)
        w_eager.grad = None
        np.testing.assert_allclose(loss.item(), e.item(), rtol=1e-6)
    np.testing.assert_allclose(w.detach().numpy(), w_eager.detach().numpy(), rtol=1e-6)
    assert f.cache_info().hits >= 3


_CONTAINER_CHANGES = {
    # name: (the step, a fresh argument); each changes the list or dict it is given
    "dict entry replaced": (lambda st: st.__setitem__("x", st["x"] + 1) or st["x"] * 1.0,
                            lambda: {"x": tg.ones(3)}),
    "int counter in a dict": (lambda st: st.__setitem__("n", st["n"] + 1) or st["x"] * st["n"],
                              lambda: {"x": tg.ones(3), "n": 0}),
    "list append": (lambda st: st["hist"].append(st["x"] * 2) or st["x"].sum(),
                    lambda: {"x": tg.ones(3), "hist": []}),
    "list pop": (lambda st: st["l"].pop() and st["x"].sum(),
                 lambda: {"l": [1, 2, 3, 4], "x": tg.ones(2)}),
    "state swapped for a new tensor": (
        lambda st: st.__setitem__("h", (st["h"] * 0.5).tanh()) or st["h"].sum(),
        lambda: {"h": tg.ones(4)}),
    "new key": (lambda st: st.__setitem__("cache", []) or st["x"] * 2.0,
                lambda: {"x": tg.ones(2)}),
}


@pytest.mark.parametrize("case", sorted(_CONTAINER_CHANGES))
def test_a_function_that_changes_a_container_argument_raises(case):
    """A program computes tensors; it does not replay Python's changes to a list or dict
    argument. Each step here, compiled, silently returned other numbers than eager from the
    third call on (a dict's "x" stayed at its value after the first call: 2, 3, 3 for
    eager's 2, 3, 4), and left the caller's dict unchanged. Now its trace raises."""
    step, make = _CONTAINER_CHANGES[case]
    eager_state, compiled_state = make(), make()
    f = tg.compile(step)
    step(eager_state)
    f(compiled_state)  # the first call runs eagerly
    step(eager_state)
    with pytest.raises(tg.TraceError, match="changes a list or dict it was given"):
        f(compiled_state)


def test_containers_that_are_only_read_still_compile():
    """Reading lists and dicts (and building new ones) is not a change."""

    def step(st):
        local = dict(st)
        local["y"] = [t * 2 for t in st["l"]]
        return local["y"][0] + st["x"]

    f = tg.compile(step)
    st = {"x": tg.ones(2), "l": [tg.ones(2), tg.zeros(2)]}
    for k in range(3):
        st["x"] = tg.full((2,), float(k))
        np.testing.assert_array_equal(f(st).numpy(), [2.0 + k] * 2)
    assert f.cache_info().misses == 1


_VIEW_RESULTS = {
    "slice": lambda x: x[1:],
    "transpose": lambda x: x.T,
    "reshape": lambda x: x.reshape(-1),
    "in place through a view": lambda x: x[1:].add_(1),
    "in place, then a view": lambda x: x.mul_(2).view(-1),
    "the argument, changed in place": lambda x: x.add_(1),
    "two views": lambda x: (x[0], x[1]),
    "a view of a detach": lambda x: x.detach()[:, ::2],
}


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("case", sorted(_VIEW_RESULTS))
def test_a_result_that_eager_returns_as_a_view_of_an_argument_shares_its_memory(backend, case):
    """Eager returns ``x[1:]``, ``x.T`` or ``x.add_(1)`` as (a view of) the argument: a later
    in-place change through the result changes the argument, and the other way round. The
    program returned new memory, so after ``y.mul_(10)`` eager's x held 30, 40, 50 where the
    compiled call's still held 3, 4, 5. Now the call hands out the argument's own view."""
    if backend == "c" and compiler_problem():
        pytest.skip("no C compiler")
    fn = _VIEW_RESULTS[case]
    got = []
    for compiled in (False, True):
        f = tg.compile(fn, backend=backend) if compiled else fn
        x = tg.arange(6.0).reshape(2, 3)
        for _ in range(3):
            y = f(x)
        ys = y if isinstance(y, tuple) else (y,)
        for t in ys:
            t.mul_(10)  # through the result
        x.sub_(1)  # and through the argument
        got.append((x.tolist(), [t.tolist() for t in ys]))
    assert got[1] == got[0]
    assert f.cache_info().misses == 1


def test_a_view_of_an_argument_that_needs_grad_keeps_its_gradient():
    """A result that needs grad stays the compiled backward's (its gradient is checked),
    and a result made under no_grad from such an argument shares its memory, detached."""
    def f(x):
        with tg.no_grad():
            v = x[0]
        return (x * 2).sum(), v

    g = tg.compile(f)
    for _ in range(3):
        x = tg.arange(6.0).reshape(2, 3).requires_grad_()
        loss, v = g(x)
        loss.backward()
        np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 2.0))
        assert not v.requires_grad
        with tg.no_grad():
            x[0, 0] = 7.0
        assert v[0].item() == 7.0


_GRAD_VIEW_RESULTS = {
    "the argument itself": lambda x: (x, (x * 2).sum()),
    "its transpose": lambda x: (x.T, (x * 3).sum()),
    "a row": lambda x: (x[1], (x * x).sum()),
    "a transpose of a transpose": lambda x: (x.T.T, x.sum()),
    "a detach": lambda x: (x.detach(), (x * 2).sum()),
    "a view of a detach": lambda x: (x.detach()[0], (x * 2).sum()),
}


@pytest.mark.parametrize("leaf", [True, False], ids=["leaf", "non-leaf"])
@pytest.mark.parametrize("case", sorted(_GRAD_VIEW_RESULTS))
def test_a_result_that_needs_grad_and_is_an_argument_or_its_view_is_eagers(case, leaf):
    """``return x, loss`` with ``x.requires_grad``: eager returns ``x`` itself, so
    ``y.grad`` after ``loss.backward()`` is ``x.grad``, and a change of ``y`` under
    ``no_grad`` changes ``x``. The compiled call handed out a new tensor pointing to its
    compiled backward: ``y is x`` was False, ``y.grad`` None and x unchanged. Now a result
    whose graph is view steps on an argument is those steps replayed on the caller's
    tensor, recording them: its gradient flows to the argument as in eager (a ``detach``
    too: it used to come back as the argument itself, which needs grad)."""
    fn = _GRAD_VIEW_RESULTS[case]
    got = []
    for compiled in (False, True):
        f = tg.compile(fn) if compiled else fn
        for _ in range(3):
            a = tg.arange(1.0, 7.0).reshape(2, 3).requires_grad_()
            x = a if leaf else a * 2
            y, loss = f(x)
        (loss + (y * tg.arange(float(y.numel())).reshape(y.shape)).sum()
         if y.requires_grad else loss).backward()
        state = [y is x, y.requires_grad, y.is_leaf, a.grad.tolist(),
                 None if y.grad is None else y.grad.tolist()]
        with tg.no_grad():
            y.mul_(10)
        got.append(state + [x.tolist(), y.tolist()])
    assert got[1] == got[0]
    assert f.cache_info().misses == 1


def test_a_step_that_returns_the_parameter_it_updates_returns_it():
    """A training step returning ``model.weight`` after ``opt.step()``: eager returns the
    parameter itself (updated in place under no_grad, still a leaf that needs grad); the
    compiled call returned a copy that did not need grad."""
    got = []
    for compiled in (False, True):
        lin = tg.nn.Linear(2, 1)
        with tg.no_grad():
            lin.weight.copy_(tg.tensor([[1.0, 2.0]]))
            lin.bias.fill_(0.5)
        opt = tg.optim.SGD(lin.parameters(), lr=0.1)

        def step(x):
            opt.zero_grad()
            loss = lin(x).sum()
            loss.backward()
            opt.step()
            return lin.weight, lin.weight[0], loss

        f = tg.compile(step) if compiled else step
        for _ in range(4):
            w, row, loss = f(tg.ones(1, 2))
        got.append([w is lin.weight, w.requires_grad, row.requires_grad, row.is_leaf,
                    w.tolist(), row.tolist(), loss.item()])
        with tg.no_grad():
            row.mul_(10)
        got[-1].append(lin.weight.tolist())
    assert got[1] == got[0]
    assert got[0][4][0] == pytest.approx([0.6, 1.6])


_READ_VIEW_RESULTS = {
    "the tensor itself": lambda w: (lambda x: (w, (x * 2).sum())),
    "its transpose": lambda w: (lambda x: (w.T, (x * 2).sum())),
    "changed in place, then returned": lambda w: (lambda x: (w.add_(x), x.sum())),
    "a row changed in place": lambda w: (lambda x: (w[0].add_(1), x.sum())),
}


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("case", sorted(_READ_VIEW_RESULTS))
def test_a_result_that_is_a_tensor_the_function_reads_shares_its_memory(backend, case):
    """The same for a tensor the function reads rather than takes (a parameter, a buffer;
    here a view itself, made by reshape): eager returns it or its view."""
    if backend == "c" and compiler_problem():
        pytest.skip("no C compiler")
    got = []
    for compiled in (False, True):
        w = tg.arange(6.0).reshape(2, 3)
        fn = _READ_VIEW_RESULTS[case](w)
        f = tg.compile(fn, backend=backend) if compiled else fn
        for _ in range(3):
            y = f(tg.ones(3))[0]
        y.mul_(10)
        w.sub_(1)
        got.append((w.tolist(), y.tolist()))
    assert got[1] == got[0]


def _scheduler_step():
    lin = nn.Linear(2, 2)
    opt = tg.optim.SGD(lin.parameters(), lr=0.1)
    sched = tg.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)

    def step(x):
        opt.zero_grad()
        lin(x).pow(2).sum().backward()
        opt.step()
        sched.step()
        return opt.param_groups[0]["lr"] * x.sum()

    return step


def _loader_step():
    it = iter(tg.utils.data.DataLoader(
        tg.utils.data.TensorDataset(tg.arange(16.0).reshape(8, 2)), batch_size=2))

    def step(w):
        (xb,) = next(it)
        return (xb * w).sum()

    return step


def _seed_step():
    def step(x):
        tg.manual_seed(3)
        return x * tg.rand(2)

    return step


@pytest.mark.parametrize("make", [_scheduler_step, _loader_step, _seed_step],
                         ids=["scheduler step", "DataLoader batch", "manual_seed"])
def test_library_state_changed_inside_a_compiled_function_raises(make):
    """A scheduler's step(), a DataLoader's next batch and tg.manual_seed change Python-side
    state that a program does not replay. Compiled, the schedule stayed where the trace
    left it (lr 0.025 from the third call on), every call returned the traced batch (22, 22,
    22 for eager's 22, 38, 54), and the seed was not reset (new numbers on every call where
    eager repeats them). Now the trace raises TraceError, and eager is unchanged."""
    x = tg.ones(2)
    eager = make()
    first = [eager(x).tolist() for _ in range(3)]
    assert len({str(v) for v in first}) == (1 if make is _seed_step else 3)
    f = tg.compile(make())
    f(x)  # the first call runs eagerly
    with pytest.raises(tg.TraceError, match="cannot be compiled"):
        f(x)
    if make is _loader_step:  # the refused call drew no batch
        assert f.fn(x).item() == 22.0  # the batch after the first call's


def test_create_graph_through_a_compiled_result_raises_and_the_whole_compiles():
    """A gradient penalty through a compiled function's result: its compiled backward is
    first order, so the penalty's own gradient was silently missing (w.grad -4.195 where
    eager gives -19.638). Now that backward raises; compiling the whole computation, the
    gradient included, gives eager's numbers."""
    def run(compile_fn, compile_step):
        w = tg.tensor([0.5, -1.0, 2.0], requires_grad=True)

        def f(x):
            return (x * w).sin().sum()

        g = tg.compile(f) if compile_fn else f

        def step(x):
            y = g(x)
            (gx,) = tg.autograd.grad(y, [x], create_graph=True)
            w.grad = None
            (y + (gx ** 2).sum()).backward()
            return w.grad.clone()

        s = tg.compile(step) if compile_step else step
        return [s(tg.tensor([1.0, 2.0, 3.0 + k], requires_grad=True)).numpy() for k in range(3)]

    eager = run(False, False)
    np.testing.assert_allclose(eager[-1], [1.437366, -2.692255, -19.638098], rtol=1e-5)
    np.testing.assert_allclose(run(False, True), eager, rtol=1e-5)
    with pytest.raises(RuntimeError, match="create_graph=True"):
        run(True, False)


@pytest.mark.parametrize("make", [lambda: iter(range(100)), lambda: itertools.count(),
                                  lambda: (k * k for k in range(100))],
                         ids=["range iterator", "itertools.count", "generator"])
def test_an_iterator_the_function_advances_gives_eager_results(make):
    """The position of an iterator the function reads (a global, a closure) cannot be
    watched: a compiled call returned the traced call's item forever (0, 1, 1, 1 for
    eager's 0, 1, 2, 3). Now such a function traces every call, with a warning."""
    got = []
    for compiled in (False, True):
        it = make()

        def f(x):
            return x * next(it)

        g = tg.compile(f) if compiled else f
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got.append([g(tg.ones(1)).item() for _ in range(4)])
        if compiled:
            assert any("changes" in str(w.message) for w in caught)
    assert got[1] == got[0]


class _Slotted:
    __slots__ = ("scale", "__private")

    def __init__(self):
        self.scale = 1.0
        self.__private = 0


@dataclasses.dataclass(slots=True)
class _SlottedConfig:
    scale: float = 1.0


_HIDDEN_STATE = {
    # name: (make, change between calls, what the function reads)
    "__slots__ attribute": (_Slotted, lambda o, k: setattr(o, "scale", k + 2.0),
                            lambda o: o.scale),
    "dataclass(slots=True)": (_SlottedConfig, lambda o, k: setattr(o, "scale", k + 2.0),
                              lambda o: o.scale),
    "deque": (lambda: collections.deque([1.0]), lambda o, k: o.append(k + 2.0),
              lambda o: o[-1]),
    "array.array": (lambda: array.array("d", [1.0]), lambda o, k: o.__setitem__(0, k + 2.0),
                    lambda o: o[0]),
    "bytearray": (lambda: bytearray(b"\x01"), lambda o, k: o.__setitem__(0, k + 2),
                  lambda o: o[0]),
}


@pytest.mark.parametrize("case", sorted(_HIDDEN_STATE))
def test_a_value_read_from_a_slotted_object_or_a_buffer_is_guarded(case):
    """A number read from an object without a ``__dict__`` (``__slots__``) or from a deque,
    an array.array or a bytearray was guarded by the object's identity only: after it
    changed, compiled calls kept the traced value (1, 2, 2, 2 for eager's 1, 2, 3, 4)."""
    make, change, read = _HIDDEN_STATE[case]
    got = _eager_then_compiled(make, change, lambda o, x: x * read(o))
    assert got == [[1.0, 2.0, 3.0, 4.0]] * 2


def _eager_then_compiled(make, change, fn) -> list:
    """``fn(obj, x)`` called four times with ``change(obj, k)`` after each call, eagerly
    and compiled, each on a fresh ``make()``: the two lists of results."""
    got = []
    for compiled in (False, True):
        obj = make()

        def f(x):
            return fn(obj, x)

        g = tg.compile(f) if compiled else f
        out = []
        for k in range(4):
            out.append(float(g(tg.ones(1)).item()))
            change(obj, k)
        got.append(out)
    return got


def test_a_backward_in_the_function_adds_to_an_arguments_existing_grad():
    """An argument's .grad that exists before the call is added to, as in eager (2, 4 then
    4, 8). The trace's stand-in for the argument had no .grad, so every compiled call set
    it afresh (2, 4 each time), and its guard looked at the stand-in, not the argument."""
    got = []
    for compiled in (False, True):
        x = tg.tensor([1.0, 2.0], requires_grad=True)

        def f(x):
            (x * x).sum().backward()
            return x.grad * 1.0

        g = tg.compile(f) if compiled else f
        out = []
        for k in range(5):
            out.append(g(x).tolist())
            if k == 1:
                x.grad = None
        got.append((out, x.grad.tolist()))
    assert got[1] == got[0]
    assert got[0][0] == [[2.0, 4.0], [4.0, 8.0], [2.0, 4.0], [4.0, 8.0], [6.0, 12.0]]


def test_a_result_made_under_enable_grad_inside_a_call_under_no_grad_needs_grad():
    """Called under no_grad, a function that turns grad mode on inside returns a tensor
    that needs grad, in eager mode. Compiled, it did not (from the second call on), so its
    share of a later backward was silently missing."""
    def f(x):
        with tg.enable_grad():
            return x * 2

    for compiled in (False, True):
        g = tg.compile(f) if compiled else f
        for _ in range(3):
            x = tg.ones(2, requires_grad=True)
            with tg.no_grad():
                y = g(x)
            assert y.requires_grad
            (y.sum() + (x * 3).sum()).backward()
            assert x.grad.tolist() == [5.0, 5.0]


def test_an_in_place_change_of_an_arguments_grad_reaches_the_caller():
    """``x.grad.mul_(0.5)`` inside: eager halves the caller's .grad on every call (1.5,
    0.75, 0.375); the traced stand-in's copy of it must not take the write instead."""
    got = []
    for compiled in (False, True):
        x = tg.tensor([1.0, 2.0], requires_grad=True)
        (x * 3).sum().backward()

        def f(x):
            x.grad.mul_(0.5)
            return x.grad * 1.0

        g = tg.compile(f) if compiled else f
        got.append(([g(x).tolist() for _ in range(3)], x.grad.tolist()))
    assert got[1] == got[0] == ([[1.5, 1.5], [0.75, 0.75], [0.375, 0.375]], [0.375, 0.375])


@pytest.mark.parametrize("backend", ["numpy", "auto"])
def test_a_grad_set_to_an_expanded_or_strided_tensor_between_calls(backend):
    """``w.grad = tg.zeros(1, 4).expand(4, 4)``: the trace took the .grad as memory to write
    the new gradient into, which its own guard refuses (an expanded array is read-only), and
    the call failed with "AssertionError: a new variant fails its own guard"."""
    out = []
    for compiled in (False, True):
        w = tg.ones(4, 4, requires_grad=True)

        def f(x):
            (x * w).tanh().sum().backward()
            return w.grad * 1.0

        g = tg.compile(f, backend=backend) if compiled else f
        got = []
        for i in range(6):
            if i == 2:
                w.grad = tg.full((1, 4), 0.5).expand(4, 4)
            if i == 4:
                w.grad = tg.zeros(4, 8)[:, ::2]
            got.append(g(tg.full((4, 4), 0.1 * i)).numpy().copy())
        out.append(got)
    for a, b in zip(*out):
        np.testing.assert_allclose(b, a, rtol=1e-6)


@pytest.mark.parametrize("on", ["parameter", "argument"])
def test_gradient_hooks_that_a_backward_in_the_function_runs_are_followed(on):
    """A backward pass inside the function runs the gradient hooks there are: a hook added
    or removed between calls changes eager's gradients (1, 2, then 30, 40, then 5); the
    program had baked in the hooks of its trace (3, 4 where eager gives 30, 40), and an
    argument's hooks were not run at all."""
    got = []
    for compiled in (False, True):
        w = tg.ones(2, requires_grad=True)

        def step(x, v):
            p = w if on == "parameter" else v  # (w: a tensor the function reads)
            p.grad = None
            (p * x).sum().backward()
            return p.grad * 1.0

        g = tg.compile(step) if compiled else step
        arg = tg.ones(2, requires_grad=True)
        out = []
        handle = None
        for k in range(5):
            if k == 2:
                handle = (w if on == "parameter" else arg).register_hook(lambda gr: gr * 10)
            if k == 4:
                handle.remove()
            out.append(g(tg.ones(2) * (k + 1), arg).tolist())
        got.append(out)
    assert got[1] == got[0] == [[1.0] * 2, [2.0] * 2, [30.0] * 2, [40.0] * 2, [5.0] * 2]


def test_hooks_registered_while_tracing_do_not_recompile_other_functions():
    """Two compiled steps called in turn, one registering a hook inside, the other given an
    argument that has one: neither trace counts as a hook change for the other (each trace
    made the other's variant fail its guard, so both traced on every call)."""
    w = tg.ones(2, requires_grad=True)
    a = tg.ones(2, requires_grad=True)
    a.register_hook(lambda g: g * 2)

    def f(x):
        y = w * x
        y.register_hook(lambda g: g * 3)
        w.grad = None
        y.sum().backward()
        return w.grad * 1.0

    def h(x):
        x.grad = None
        (x * x).sum().backward()
        return x.grad * 1.0

    F, H = tg.compile(f), tg.compile(h)
    for _ in range(6):
        assert F(tg.ones(2)).tolist() == [3.0, 3.0]
        assert H(a).tolist() == [4.0, 4.0]
    assert F.cache_info().misses == H.cache_info().misses == 1


def _flag_on(x):
    x.requires_grad_()
    return (x * 2).sum()


def _flag_off(x, w):
    w.requires_grad = False
    return (x * w).sum()


def _saliency(x, w):
    x.requires_grad_()
    (x * w).tanh().sum().backward()
    return x.grad.abs()


@pytest.mark.parametrize("fn", [_flag_on, _flag_off, _saliency])
def test_a_function_that_changes_requires_grad_of_an_argument_changes_the_callers(fn):
    """``x.requires_grad_()`` on an argument (an input's gradient, a saliency map): eager's
    x then needs grad, and a backward fills x.grad. The compiled call changed only its
    stand-in's flag: x.requires_grad stayed False, and the loss's backward left x.grad None
    ([2, 2] in eager). Now the call sets the caller's flag as the function did."""
    got = []
    for compiled in (False, True):
        f = tg.compile(fn) if compiled else fn
        for k in range(3):
            x, w = tg.full((2,), 0.5 * k), tg.tensor([1.0, -2.0], requires_grad=True)
            out = f(x, w) if fn is not _flag_on else f(x)
            if out.requires_grad:
                out.backward()
        got.append((x.requires_grad, w.requires_grad, out.tolist(),
                    None if x.grad is None else x.grad.tolist(),
                    None if w.grad is None else w.grad.tolist()))
    assert got[1] == got[0]


def _hook_on_argument(x):
    x.register_hook(lambda g: g * 10)  # HOOK-argument
    return (x * 2).sum()


def _retained_result(x):
    y = x * 2
    y.retain_grad()
    return y, (y * y).sum()


def _hook_inside(x):
    y = x * 2
    y.register_hook(lambda g: g * 10)
    y.retain_grad()
    return (y * y).sum()


def test_hooks_a_compiled_call_cannot_keep_are_refused():
    """A hook registered on an argument (or a parameter) inside: eager's tensor keeps it, so
    the returned loss's backward scales x.grad by 10 (20 where the compiled call gave 2).
    retain_grad() on a returned tensor: eager's y.grad after loss.backward() is [4, 4], the
    compiled output's was None. Both are refused now; hooks on the function's own
    intermediate tensors stay part of the program, as before."""
    f = tg.compile(_hook_on_argument)
    f(tg.ones(2, requires_grad=True))
    with pytest.raises(tg.TraceError, match="register_hook at .* did not make") as info:
        f(tg.ones(2, requires_grad=True))
    line = next(i for i, text in enumerate(open(__file__), 1) if text.rstrip().endswith(
        "# HOOK-argument"))
    assert f"{__file__}:{line}" in str(info.value)
    g = tg.compile(_retained_result)
    g(tg.ones(2, requires_grad=True))
    with pytest.raises(tg.TraceError, match="retain_grad"):
        g(tg.ones(2, requires_grad=True))
    got = []
    for compiled in (False, True):
        h = tg.compile(_hook_inside) if compiled else _hook_inside
        for k in range(3):
            x = tg.full((2,), 1.0 + k, requires_grad=True)
            h(x).backward()
        got.append(x.grad.tolist())
    assert got[1] == got[0] == [240.0, 240.0]  # 2 * (2 * 6) * 10 at x = 3


class _LastOutput(tg.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = tg.nn.Linear(2, 2)
        self.last = None
        self.calls = 0

    def forward(self, x):
        y = self.lin(x)
        self.last = y.detach()
        self.calls += 1
        return y.sum()


class _GrowingCache(tg.nn.Module):
    def __init__(self):
        super().__init__()
        self.cache = tg.zeros(0, 2)

    def forward(self, x):
        self.cache = tg.cat([self.cache, x])
        return self.cache.sum(0)


class _ReboundBuffer(tg.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("acc", tg.zeros(2))

    def forward(self, x):
        self.acc = self.acc + x.sum(0)
        return self.acc * 1


@pytest.mark.parametrize("cls", [_LastOutput, _GrowingCache, _ReboundBuffer])
def test_a_module_that_reassigns_its_tensor_attributes_gives_eagers_results(cls):
    """``self.last = y.detach()``, a growing ``self.cache = cat(...)``, a buffer rebound
    (``self.acc = self.acc + ...``): the compiled module crashed with an AssertionError ("a
    new variant fails its own guard"). Such a call changes what it reads: like a function
    bumping a global counter, it warns and traces on every call, giving eager's results."""
    got = []
    for compiled in (False, True):
        tg.manual_seed(0)
        m = cls()
        f = tg.compile(m) if compiled else m
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            outs = [f(tg.full((1, 2), float(k + 1))).tolist() for k in range(4)]
        if compiled:
            assert any("module attribute" in str(w.message) for w in caught)
        state = {k: (v.tolist() if isinstance(v, tg.Tensor) else v)
                 for k, v in vars(m).items() if k in ("last", "calls", "cache")}
        got.append((outs, state, {k: v.tolist() for k, v in m.state_dict().items()}))
    assert got[1] == got[0]


def test_assigning_the_same_tensor_to_a_module_attribute_is_not_a_change():
    """``self.w += 1`` on a tensor attribute is an in-place op then an assignment of the same
    tensor: no structure change, so a compiled module using it keeps its one variant."""
    class Counter(tg.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("n", tg.zeros(1))

        def forward(self, x):
            self.n += 1
            return x * self.n

    m = Counter()
    f = tg.compile(m)
    outs = [f(tg.ones(1)).item() for _ in range(5)]
    assert outs == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert f.cache_info().misses == 1


def test_a_function_that_turns_grad_mode_off_and_leaves_it_off():
    """``tg.set_grad_enabled(False)`` inside, not undone: eager leaves grad mode off after
    every call; the compiled call crashed with an AssertionError ("a new variant fails its
    own guard: grad mode changed"). The call changes what it reads: it traces every call,
    so grad mode is left off as in eager."""
    def f(x):
        tg.set_grad_enabled(False)
        return x * 2

    g = tg.compile(f)
    try:
        for _ in range(3):
            tg.set_grad_enabled(True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                y = g(tg.ones(2, requires_grad=True))
            assert not tg.is_grad_enabled() and not y.requires_grad
            assert y.tolist() == [2.0, 2.0]
    finally:
        tg.set_grad_enabled(True)


def _change_argument(x):
    x[0].mul_(2)  # CHANGE-argument
    return x.sum()


def test_changing_a_non_leaf_argument_in_place_is_a_trace_error():
    """Eager mode changes a non-leaf argument in place (rebasing its graph); the compiled
    call's stand-in for it is a leaf, so the trace failed with "a view of a leaf tensor that
    requires grad is being used in an in-place op", which is not what the user did. Now a
    TraceError that says what cannot be compiled and names the line."""
    f = tg.compile(_change_argument)
    f(tg.ones(2, 2, requires_grad=True) * 1)
    with pytest.raises(tg.TraceError, match="result of an op that needs grad") as info:
        f(tg.ones(2, 2, requires_grad=True) * 1)
    line = next(i for i, text in enumerate(open(__file__), 1) if text.rstrip().endswith(
        "# CHANGE-argument"))
    assert f"{__file__}:{line}" in str(info.value)


# --------------------------------------------------------------------------------------
# The call's structure: the same leaves, passed another way


def test_a_float_by_keyword_is_not_taken_for_a_positional_one():
    def f(x, scale=2.0, *, shift=1.0):
        return x * scale + shift

    compiled = tg.compile(f)
    x = tg.tensor([1.0, 2.0])
    calls = [((x,), {}), ((x, 3.0), {}), ((x,), {"shift": 5.0}),
             ((x,), {"scale": 4.0, "shift": 0.0}), ((x, 3.0), {"shift": -1.0}),
             ((x,), {"shift": 5.0, "scale": 3.0})]
    for args, kwargs in calls:
        np.testing.assert_array_equal(compiled(*args, **kwargs).numpy(),
                                      f(*args, **kwargs).numpy())


def test_tensors_by_keyword_and_in_other_containers_are_told_apart():
    def f(a, b=None, c=None):
        first = a[0] if isinstance(a, (list, tuple)) else a
        bonus = 10.0 if isinstance(a, list) else 0.0
        return first * 2 + (0 if b is None else b * 3) + (0 if c is None else c * 5) + bonus

    compiled = tg.compile(f)
    x, y = tg.tensor([1.0]), tg.tensor([2.0])
    for args, kwargs in [((x, y), {}), ((x,), {"c": y}), (([x],), {"b": y}),
                         (((x,),), {"b": y}), (([x],), {"c": y}), ((x,), {"b": y})]:
        assert compiled(*args, **kwargs).tolist() == f(*args, **kwargs).tolist()


def test_the_order_of_a_dicts_entries_is_part_of_the_call():
    def f(d):
        first, second = d.values()
        return first - second * 2

    compiled = tg.compile(f)
    x, y = tg.tensor([1.0]), tg.tensor([5.0])
    for d in ({"a": x, "b": y}, {"b": y, "a": x}, {"a": y, "b": x}):
        assert compiled(d).tolist() == f(d).tolist()


# --------------------------------------------------------------------------------------
# Values behind an object's class, a partial, a callable object, a helper's closure


def _class_attribute_cases() -> dict:
    """name: (make, change between calls, what the function reads). Each was read while
    tracing and not guarded: compiled calls kept the traced value."""
    def instance_of_local_class():
        class C:
            k = 1.0
        return C()

    def instance_of_subclass():
        class Base:
            k = 1.0

        class C(Base):
            pass
        return C()

    def method_of_local_class():  # a method's closure cell, reached through its class
        box = [1.0]

        class Helper:
            def scale(self, x):
                return x * box[0]

            @staticmethod
            def shift(x):
                return x + 0 * box[0]
        return Helper()  # (box only in the methods' closures)

    return {
        "a class attribute read through the instance":
            (instance_of_local_class, lambda o, k: setattr(type(o), "k", k + 2.0),
             lambda o, x: x * o.k),
        "a base class's attribute":
            (instance_of_subclass, lambda o, k: setattr(type(o).__mro__[1], "k", k + 2.0),
             lambda o, x: x * o.k),
        "a closure cell of a method of a class made in a function":
            (method_of_local_class,
             lambda o, k: type(o).scale.__closure__[0].cell_contents.__setitem__(0, k + 2.0),
             lambda o, x: type(o).shift(o.scale(x))),
    }


@pytest.mark.parametrize("case", sorted(_class_attribute_cases()))
def test_values_behind_an_objects_class_are_guarded(case):
    make, change, read = _class_attribute_cases()[case]
    assert _eager_then_compiled(make, change, read) == [[1.0, 2.0, 3.0, 4.0]] * 2


def _compiled_entry_cases() -> dict:
    """name: (make the function to compile and a way to change what it reads)."""
    class Scale:
        def __init__(self):
            self.k = 1.0

        def __call__(self, x):
            return x * self.k

    class Scaled(nn.Module):
        k = 1.0

        def forward(self, x):
            return x * self.k

    def partial():
        box = [1.0]
        return functools.partial(lambda x, b: x * b[0], b=box), \
            lambda k: box.__setitem__(0, k + 2.0)

    def callable_object():
        obj = Scale()
        return obj, lambda k: setattr(obj, "k", k + 2.0)

    def module_class_attribute():
        m = Scaled()
        return m, lambda k: setattr(type(m), "k", k + 2.0)

    return {"a partial's keyword's contents": partial, "a callable object": callable_object,
            "a module's class attribute": module_class_attribute}


@pytest.mark.parametrize("case", sorted(_compiled_entry_cases()))
def test_what_a_compiled_partial_callable_object_or_module_holds_is_guarded(case):
    got = []
    for compiled in (False, True):
        fn, change = _compiled_entry_cases()[case]()
        run = tg.compile(fn) if compiled else fn
        out = []
        for k in range(4):
            out.append(float(run(tg.ones(1)).item()))
            change(k)
        got.append(out)
    assert got == [[1.0, 2.0, 3.0, 4.0]] * 2


def test_an_argument_the_outputs_do_not_reach_keeps_no_grad_after_backward_outside():
    """The compiled backward handed every argument that requires grad a gradient, zeros for
    one the outputs do not depend on: its .grad became tensor([0.]) where eager leaves None."""
    f = tg.compile(lambda x, g: x * 2 + (g.detach() * 0).sum())
    for _ in range(3):
        x, g = tg.ones(2, requires_grad=True), tg.ones(1, requires_grad=True)
        f(x, g).sum().backward()
        assert x.grad.tolist() == [2.0, 2.0] and g.grad is None
    h = tg.compile(lambda x, g: x.detach() * 2 + 0 * g.sum())  # (reached: zeros, as eager)
    for _ in range(3):
        x, g = tg.ones(2, requires_grad=True), tg.ones(1, requires_grad=True)
        h(x, g).sum().backward()
        assert x.grad is None and g.grad.tolist() == [0.0]


def test_code_that_exec_made_inside_tracegrad_is_not_the_users():
    """A dataclass's generated __init__ (filename "<string>") counted as the user's code: each
    trace searched the heap for its closure and guarded tracegrad's own internals."""
    w = tg.ones(3, requires_grad=True)
    f = tg.compile(lambda x: (x * w).sum())
    f(tg.ones(3))
    f(tg.ones(3))
    guards = [what for variants in f.variants.values() for v in variants
              for what, *_ in v.guards]
    assert guards and not [g for g in guards if "tracegrad" in g or "__init__" in g], guards


def test_a_module_that_changes_its_own_python_state_in_forward_runs_it_every_call():
    class Counting(tg.nn.Module):
        def __init__(self):
            super().__init__()
            self.seen = []

        def forward(self, x):
            self.seen.append(tuple(x.shape))
            return x * 2

    m = Counting()
    f = tg.compile(m)
    with pytest.warns(UserWarning, match="'seen' of Counting"):
        for _ in range(4):
            np.testing.assert_allclose(f(tg.ones(2)).numpy(), [2.0, 2.0])
    assert len(m.seen) == 4
