"""Module hooks against torch.nn's: forward pre-hooks and forward hooks (prepend,
with_kwargs, always_call, handles), full backward hooks and pre-hooks (the gradients they see
and the gradients they return), and tg.compile with hooks added, removed and changing values."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

import tracegrad as tg
from tracegrad import nn

torch = pytest.importorskip("torch")
tnn = torch.nn


def twins(make):
    """The same float64 module in both libraries (torch's initial weights copied into ours)."""
    torch.manual_seed(0)
    theirs = make(tnn).double()
    ours = make(nn).double()
    ours.load_state_dict({k: v.detach().numpy().copy() for k, v in
                          theirs.state_dict().items()})
    return ours, theirs


def mlp(lib):
    return lib.Sequential(lib.Linear(3, 4), lib.Tanh(), lib.Linear(4, 2))


X = np.random.default_rng(0).standard_normal((5, 3))
W = np.random.default_rng(1).standard_normal((5, 2))  # d loss / d output


def arrays(gs):
    return [None if g is None else (g.numpy() if isinstance(g, tg.Tensor) else
                                    g.detach().numpy()) for g in gs]


def assert_same(ours, theirs, rtol=1e-10):
    assert len(ours) == len(theirs)
    for a, b in zip(arrays(ours), arrays(theirs)):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-12)


def run(model, lib, x_grad=True):
    """Output and (x.grad, every parameter's grad) of sum(model(x) * W)."""
    if lib is tg:
        x = tg.tensor(X, requires_grad=x_grad)
        y = model(x)
        (y * tg.tensor(W)).sum().backward()
    else:
        x = torch.tensor(X, requires_grad=x_grad)
        y = model(x)
        (y * torch.tensor(W)).sum().backward()
    grads = [x.grad] + [p.grad for p in model.parameters()]
    return y, grads


def test_forward_pre_hook_and_forward_hook_change_args_and_output_as_torch():
    ours, theirs = twins(mlp)
    for m in (ours, theirs):
        m[0].register_forward_pre_hook(lambda mod, args: args[0] * 2)  # one value: a 1-tuple
        m[2].register_forward_hook(lambda mod, args, out: out + args[0].sum())
    (y1, g1), (y2, g2) = run(ours, tg), run(theirs, torch)
    assert_same([y1], [y2])
    assert_same(g1, g2)
    plain, _ = twins(mlp)
    assert not np.allclose(y1.numpy(), run(plain, tg)[0].numpy())  # the hooks did something


def test_handles_remove_hooks_and_work_as_context_managers():
    ours, _ = twins(mlp)
    x = tg.tensor(X)
    before = ours(x).numpy()
    h = ours.register_forward_hook(lambda m, a, out: out * 0)
    assert (ours(x).numpy() == 0).all()
    h.remove()
    h.remove()  # twice: nothing more happens
    np.testing.assert_array_equal(ours(x).numpy(), before)
    with ours.register_forward_pre_hook(lambda m, a: (a[0] * 0,)):
        np.testing.assert_allclose(ours(x).numpy(), ours(tg.zeros(5, 3, dtype=tg.float64))
                                   .numpy())
    np.testing.assert_array_equal(ours(x).numpy(), before)
    assert not ours._forward_hooks and not ours._forward_pre_hooks


@pytest.mark.parametrize("kind", ["forward_pre", "forward", "full_backward_pre",
                                  "full_backward"])
def test_hooks_run_in_registration_order_and_prepend_puts_one_first(kind):
    orders = []
    for m, lib in zip(twins(lambda lib: lib.Linear(3, 2)), (tg, torch)):
        order = []
        register = getattr(m, f"register_{kind}_hook")
        for name, prepend in (("a", False), ("b", True), ("c", False), ("d", True)):
            register(lambda *a, name=name, order=order: order.append(name), prepend=prepend)
        x = lib.tensor(X, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m(x).sum().backward()
        orders.append(order)
    assert orders[0] == orders[1] == ["d", "b", "a", "c"]


def test_with_kwargs_hooks_see_and_replace_kwargs_as_torch():
    class Scale:
        def __init__(self, lib):
            base = lib.nn.Module

            class M(base):
                def forward(self, x, *, scale=1.0):
                    return x * scale
            self.m = M()

    got = []
    for lib in (tg, torch):
        m = Scale(lib).m
        seen = []

        def pre(mod, args, kwargs, seen=seen):
            seen.append(dict(kwargs))
            return (args[0] + 1,), {"scale": kwargs["scale"] * 10}

        def post(mod, args, kwargs, out, seen=seen):
            seen.append(dict(kwargs))
            return out - kwargs["scale"]
        m.register_forward_pre_hook(pre, with_kwargs=True)
        m.register_forward_hook(post, with_kwargs=True)
        got.append((m(lib.tensor([1.0, 2.0]), scale=3.0).tolist(), seen))
    assert got[0] == got[1]
    assert got[0][0] == [30.0, 60.0]


def test_a_with_kwargs_pre_hook_must_return_args_and_kwargs():
    m = nn.Identity()
    m.register_forward_pre_hook(lambda mod, a, k: a, with_kwargs=True)
    with pytest.raises(RuntimeError, match="new_args, new_kwargs"):
        m(tg.ones(2))


def test_always_call_hooks_run_when_forward_raises_as_torch():
    got = []
    for lib in (tg, torch):
        class Broken(lib.nn.Module):
            def forward(self, x):
                raise ValueError("broken forward")
        m, calls = Broken(), []
        m.register_forward_hook(lambda mod, a, out, c=calls: c.append(("always", out)),
                                always_call=True)
        m.register_forward_hook(lambda mod, a, out, c=calls: c.append(("normal", out)))
        with pytest.raises(ValueError, match="broken forward"):
            m(lib.ones(2))
        got.append(calls)
    assert got[0] == got[1] == [("always", None)]


def test_an_always_call_hook_runs_once_when_a_later_hook_raises():
    m, calls = nn.Identity(), []
    m.register_forward_hook(lambda mod, a, out: calls.append("always"), always_call=True)

    def bad(mod, a, out):
        raise KeyError("later hook")
    m.register_forward_hook(bad)
    with pytest.raises(KeyError):
        m(tg.ones(2))
    assert calls == ["always"]


def test_full_backward_hook_on_linear_sees_torchs_gradients():
    seen = {}
    for m, lib in zip(twins(lambda lib: lib.Linear(3, 2)), ("tg", "torch")):
        m.register_full_backward_hook(
            lambda mod, gi, go, lib=lib: seen.setdefault(lib, (gi, go)) and None)
        x = (tg if lib == "tg" else torch).tensor(X, requires_grad=True)
        y = m(x)
        (y * (tg.tensor(W) if lib == "tg" else torch.tensor(W))).sum().backward()
    assert_same(seen["tg"][0], seen["torch"][0])
    assert_same(seen["tg"][1], seen["torch"][1])
    np.testing.assert_allclose(seen["tg"][1][0].numpy(), W)


@pytest.mark.parametrize("where", [0, 2])
def test_full_backward_hooks_replacing_grad_input_in_a_sequential_match_torch(where):
    ours, theirs = twins(mlp)
    for m in (ours, theirs):
        m[where].register_full_backward_hook(lambda mod, gi, go: (gi[0] * 3 + 1,))
        m[1].register_full_backward_hook(lambda mod, gi, go: None)  # no change
    (y1, g1), (y2, g2) = run(ours, tg), run(theirs, torch)
    assert_same([y1], [y2])
    assert_same(g1, g2)
    plain, _ = twins(mlp)
    assert not np.allclose(g1[0].numpy(), run(plain, tg)[1][0].numpy())


def test_backward_pre_hook_replacing_grad_output_matches_torch():
    ours, theirs = twins(mlp)
    seen = []
    for m in (ours, theirs):
        m[2].register_full_backward_pre_hook(lambda mod, go: (go[0] * -2,))
        m[0].register_full_backward_pre_hook(lambda mod, go: seen.append(go[0]))
    (_, g1), (_, g2) = run(ours, tg), run(theirs, torch)
    assert_same(g1, g2)
    assert_same(seen[:1], seen[1:])


def test_grad_input_is_none_for_inputs_that_need_no_gradient_as_torch():
    seen = {}
    for m, lib in zip(twins(mlp), (tg, torch)):
        m[0].register_full_backward_hook(lambda mod, gi, go, lib=lib: seen.setdefault(
            lib, (gi, go)) and None)
        with pytest.warns(UserWarning, match="no inputs require gradients"):
            run(m, lib, x_grad=False)
    assert seen[tg][0] == seen[torch][0] == (None,)
    assert_same(seen[tg][1], seen[torch][1])


def two_in_two_out(lib):
    class M(lib.Module):
        def __init__(self):
            super().__init__()
            self.fc = lib.Linear(3, 3)

        def forward(self, a, k, b, c):
            h = self.fc(a) * k
            return h * b, (h + c).tanh(), k
    return M()


def test_backward_hooks_of_a_module_of_several_inputs_and_outputs_match_torch():
    seen, grads = {}, {}
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    c32 = rng.standard_normal((4, 3)).astype(np.float32)
    for m, lib in zip(twins(two_in_two_out), (tg, torch)):
        m.register_full_backward_pre_hook(lambda mod, go: (go[0], go[1] * 0.5, None))
        m.register_full_backward_hook(lambda mod, gi, go, lib=lib: seen.setdefault(
            lib, (gi, go)) and None)
        m.register_full_backward_hook(lambda mod, gi, go: (gi[0] * 2, None, None, gi[3]))
        xa, xb = lib.tensor(a, requires_grad=True), lib.tensor(b)  # b: no gradient
        xc = lib.tensor(c32, requires_grad=True)  # float32 among float64
        y1, y2, _ = m(xa, 1.5, xb, xc)
        (y1.sum() + (y2 * 3).sum()).backward()
        grads[lib] = [xa.grad, xc.grad, m.fc.weight.grad]
    gi_ours, go_ours = seen[tg]
    gi_theirs, go_theirs = seen[torch]
    # (as torch: None for a number, zeros for a tensor that needs no gradient)
    assert gi_ours[1] is None and (gi_ours[2].numpy() == 0).all()
    assert go_ours[2] is None
    assert_same(gi_ours, gi_theirs, rtol=1e-6)
    assert_same(go_ours, go_theirs)
    assert_same(grads[tg], grads[torch], rtol=1e-6)
    assert grads[tg][1].dtype == tg.float32


def test_hooks_are_copied_with_the_module_and_restored_by_pickle_state():
    m = nn.Linear(2, 2)
    m.register_forward_hook(lambda mod, a, out: out * 0)
    twin = copy.deepcopy(m)
    assert (twin(tg.ones(1, 2)).numpy() == 0).all()
    old = nn.Linear(2, 2)
    state = {k: v for k, v in vars(old).items() if not k.endswith("hooks")}
    fresh = nn.Linear.__new__(nn.Linear)
    fresh.__setstate__(state)  # (a module pickled before modules had hooks)
    np.testing.assert_array_equal(fresh(tg.ones(1, 2)).numpy(), old(tg.ones(1, 2)).numpy())


# ------------------------------------------------------------------------ tg.compile


@pytest.mark.parametrize("through", ["model", "function"])
def test_a_forward_hook_added_or_removed_after_compiling_retraces(through):
    model, _ = twins(mlp)
    compiled = tg.compile(model) if through == "model" else \
        tg.compile(lambda x: model(x) * 1.0)
    x = tg.tensor(X)
    plain = model(x).numpy()
    for _ in range(3):
        np.testing.assert_allclose(compiled(x).numpy(), plain, rtol=1e-12)
    h = model[2].register_forward_hook(lambda m, a, out: out * 3 + 1)
    for _ in range(3):
        np.testing.assert_allclose(compiled(x).numpy(), plain * 3 + 1, rtol=1e-12)
    h2 = model[0].register_forward_pre_hook(lambda m, a: (a[0] * 0,), prepend=True)
    zero_in = model(tg.zeros(5, 3, dtype=tg.float64)).numpy()
    for _ in range(2):
        np.testing.assert_allclose(compiled(x).numpy(), zero_in, rtol=1e-12)
    h2.remove()
    h.remove()
    for _ in range(2):
        np.testing.assert_allclose(compiled(x).numpy(), plain, rtol=1e-12)
    assert compiled.cache_info().misses >= 3


def test_a_hook_whose_closure_changes_retraces():
    model, _ = twins(mlp)
    compiled = tg.compile(model)
    x = tg.tensor(X)
    plain = model(x).numpy()

    def make(scale):
        return lambda m, a, out: out * scale
    model.register_forward_hook(make(2.0))
    for _ in range(2):
        np.testing.assert_allclose(compiled(x).numpy(), plain * 2, rtol=1e-12)
    model._forward_hooks.clear()  # (PyTorch code does this to drop every hook)
    model.register_forward_hook(make(5.0))
    for _ in range(2):
        np.testing.assert_allclose(compiled(x).numpy(), plain * 5, rtol=1e-12)


def test_a_compiled_training_step_with_hooks_matches_eager():
    def build():
        model, _ = twins(mlp)
        model[1].register_forward_hook(lambda m, a, out: out * 0.5)
        model[2].register_full_backward_hook(lambda m, gi, go: (gi[0].clamp(-0.1, 0.1),))
        model[0].register_full_backward_pre_hook(lambda m, go: (go[0] * 2,))
        opt = tg.optim.SGD(model.parameters(), lr=0.1)

        def step(x):
            opt.zero_grad()
            loss = (model(x) * tg.tensor(W)).sum()
            loss.backward()
            opt.step()
            return loss
        return model, step

    (m1, eager), (m2, step) = build(), build()
    compiled = tg.compile(step)
    for i in range(4):
        x = tg.tensor(X * (i + 1))
        np.testing.assert_allclose(compiled(x).item(), eager(x).item(), rtol=1e-10)
        for p, q in zip(m1.parameters(), m2.parameters()):
            np.testing.assert_allclose(q.numpy(), p.numpy(), rtol=1e-10)
    assert compiled.cache_info().hits >= 2


def test_hooks_that_record_values_record_every_compiled_call_as_eager():
    model, _ = twins(mlp)
    outs, grads = [], []
    model[1].register_forward_hook(lambda m, a, out: outs.append(out.detach()))
    model[0].register_full_backward_hook(lambda m, gi, go: grads.append(go[0].detach()))
    compiled = tg.compile(model)
    with pytest.warns(UserWarning, match="closure variable 'outs'"):
        for i in range(4):
            x = tg.tensor(X * (i + 1), requires_grad=True)
            (compiled(x) * tg.tensor(W)).sum().backward()
    assert len(outs) == len(grads) == 4
    want = twins(mlp)[0]
    for i in range(4):
        np.testing.assert_allclose(outs[i].numpy(), want[:2](tg.tensor(X * (i + 1))).numpy(),
                                   rtol=1e-12)
    assert not np.allclose(grads[0].numpy(), grads[1].numpy())
