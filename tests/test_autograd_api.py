"""PyTorch's autograd API in tg.autograd, tested against PyTorch running the same programs:
custom Functions, hooks, retain_grad, autograd.grad, autograd.functional, gradcheck."""

from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg
from tracegrad.errors import ShapeError

torch = pytest.importorskip("torch")


def _close(a, b, **kw):
    kw.setdefault("rtol", 1e-6)
    kw.setdefault("atol", 1e-8)
    np.testing.assert_allclose(a.numpy(), b.detach().numpy(), **kw)


def _pair(values, dtype=np.float64):
    a = np.asarray(values, dtype=dtype)
    return tg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


# ---------------------------------------------------------------- custom Functions
# The same class body for both libraries: `lib` is tracegrad or torch.


def clamp_ste(lib):
    class ClampSTE(lib.autograd.Function):
        """A clamp whose gradient passes straight through."""

        @staticmethod
        def forward(ctx, x, lo, hi):
            return x.clamp(lo, hi)

        @staticmethod
        def backward(ctx, g):
            return g, None, None

    return ClampSTE


def saved_exp(lib):
    class Exp(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            out = x.exp()
            ctx.save_for_backward(out)
            return out

        @staticmethod
        def backward(ctx, g):
            (out,) = ctx.saved_tensors
            return g * out

    return Exp


def test_a_straight_through_clamp_matches_torch():
    x, tx = _pair([-2.0, -0.5, 0.25, 3.0])
    w = [1.0, 2.0, 3.0, 4.0]
    y, ty = clamp_ste(tg).apply(x, -1.0, 1.0), clamp_ste(torch).apply(tx, -1.0, 1.0)
    _close(y, ty)
    (y * tg.tensor(w, dtype=tg.float64)).sum().backward()
    (ty * torch.tensor(w, dtype=torch.float64)).sum().backward()
    _close(x.grad, tx.grad)
    assert y.grad_fn == "<ClampSTEBackward>" and not y.is_leaf and x.is_leaf


def test_an_exp_with_saved_output_differentiates_twice_like_torch():
    x, tx = _pair([0.5, -1.0, 2.0])
    y, ty = saved_exp(tg).apply(x), saved_exp(torch).apply(tx)
    (g,) = tg.autograd.grad((y * y).sum(), x, create_graph=True)
    (tgr,) = torch.autograd.grad((ty * ty).sum(), tx, create_graph=True)
    _close(g, tgr)
    (gg,) = tg.autograd.grad(g.sum(), x)
    (tgg,) = torch.autograd.grad(tgr.sum(), tx)
    _close(gg, tgg)
    assert tg.autograd.gradcheck(saved_exp(tg).apply, (x,))
    assert tg.autograd.gradgradcheck(saved_exp(tg).apply, (x,))


def test_needs_input_grad_and_non_differentiable_outputs_match_torch():
    seen = []

    def scaled(lib):
        class Scaled(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x, scale):
                seen.append(tuple(ctx.needs_input_grad))
                top = x * 0 + x.max()  # a float output that is not differentiable
                ctx.mark_non_differentiable(top)
                ctx.save_for_backward(scale)
                return x * scale, top

            @staticmethod
            def backward(ctx, g, g_top):
                (scale,) = ctx.saved_tensors
                return g * scale, None

        return Scaled

    x, tx = _pair([3.0, 1.0, 2.0])
    scale, tscale = tg.tensor([2.0], dtype=tg.float64), torch.tensor([2.0], dtype=torch.float64)
    (v, top), (tv, ttop) = scaled(tg).apply(x, scale), scaled(torch).apply(tx, tscale)
    assert seen == [(True, False), (True, False)]
    assert not top.requires_grad and not ttop.requires_grad
    (v * tg.tensor([1.0, 10.0, 100.0], dtype=tg.float64)).sum().backward()
    (tv * torch.tensor([1.0, 10.0, 100.0], dtype=torch.float64)).sum().backward()
    _close(x.grad, tx.grad)
    assert v.grad_fn == "<ScaledBackward>"


def test_setup_context_form_and_a_function_in_a_compiled_step():
    class Square(tg.autograd.Function):
        @staticmethod
        def forward(x):
            return x * x

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g

    def step(x):
        loss = (Square.apply(x) + saved_exp(tg).apply(x)).sum()
        loss.backward()
        return loss

    compiled = tg.compile(step)
    for k in range(3):
        a = np.array([0.5, 1.0, -0.25], dtype=np.float32) + k
        x, xe = tg.tensor(a, requires_grad=True), tg.tensor(a, requires_grad=True)
        loss = compiled(x)
        want = step(xe)
        np.testing.assert_allclose(loss.item(), want.item(), rtol=1e-6)
        np.testing.assert_allclose(x.grad.numpy(), xe.grad.numpy(), rtol=1e-6)
        np.testing.assert_allclose(x.grad.numpy(), 2 * a + np.exp(a), rtol=1e-6)
    assert compiled.cache_info().misses == 1


def test_a_function_that_hands_its_input_back_runs_compiled_on_each_calls_values():
    class ClampGrad(tg.autograd.Function):  # the identity, with a clamped gradient
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, g):
            return g.clamp(-1.0, 1.0)

    w = tg.tensor([1.0, -2.0, 3.0], requires_grad=True)

    def step(x):
        y = ClampGrad.apply(w * x)
        loss = (y * y).sum()
        loss.backward()
        return y, loss

    compiled = tg.compile(step)
    for k in range(4):
        x = tg.tensor([0.1, 0.2, 0.3]) * (k + 1)
        w.grad = None
        y, loss = compiled(x)
        got = (y.numpy(), loss.item(), w.grad.numpy())
        w.grad = None
        y, loss = step(x)
        np.testing.assert_allclose(got[0], y.numpy(), rtol=1e-6)
        np.testing.assert_allclose(got[1], loss.item(), rtol=1e-6)
        np.testing.assert_allclose(got[2], w.grad.numpy(), rtol=1e-6)


def test_a_function_with_a_jvp_rule_is_used_in_forward_mode():
    class Cube(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * x * x * g

        @staticmethod
        def jvp(ctx, t):
            (x,) = ctx.saved_tensors
            return 3 * x * x * t

    x = tg.tensor([1.0, 2.0], dtype=tg.float64)
    _, t = tg.jvp(Cube.apply, (x,), (tg.tensor([1.0, 0.5], dtype=tg.float64),))
    np.testing.assert_allclose(t.numpy(), [3.0, 6.0])
    assert tg.autograd.gradcheck(Cube.apply, (x.requires_grad_(),), check_forward_ad=True)


def test_backward_returning_the_wrong_number_of_gradients_says_so():
    class Bad(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, g):
            return g  # two arguments, one gradient

    x, _ = _pair([1.0, 2.0])
    y, _ = _pair([3.0, 4.0])
    with pytest.raises(RuntimeError, match=r"Bad.backward returned 1 gradient\(s\), but "
                                           r"forward took 2 argument\(s\)"):
        Bad.apply(x, y).sum().backward()

    class WrongShape(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g[:1]

    with pytest.raises(ShapeError, match=r"gradient of shape \(1,\) for argument 0, of "
                                         r"shape \(2,\)"):
        WrongShape.apply(x).sum().backward()


# ---------------------------------------------------------------- hooks, retain_grad


def test_a_hook_that_clips_the_gradient_and_retain_grad_match_torch():
    x, tx = _pair([1.0, -3.0, 0.5])
    w = [5.0, -0.5, 2.0]
    results = []
    for lib, leaf in ((tg, x), (torch, tx)):
        h = leaf * 2
        h.retain_grad()
        h.register_hook(lambda g, lib=lib: g.clamp(-1, 1))
        leaf.register_hook(lambda g: g * 10)
        (h.sin() * lib.tensor(w, dtype=lib.float64)).sum().backward()
        results.append((h.grad, leaf.grad))
    (hg, xg), (thg, txg) = results
    _close(hg, thg)
    _close(xg, txg)


def test_a_hook_handle_removes_the_hook_and_retain_grad_accumulates():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    handle = x.register_hook(lambda g: g * 0)
    handle.remove()
    h = x * 3
    h.retain_grad()
    assert h.retains_grad and not x.retains_grad
    h.sum().backward(retain_graph=True)
    h.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])
    np.testing.assert_allclose(h.grad.numpy(), [2.0, 2.0])


def test_a_hook_returning_the_wrong_shape_says_so():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: g.sum())
    with pytest.raises(ShapeError, match=r"returned shape \(\) for a gradient of shape \(2,\)"):
        (x * x).sum().backward()
    with pytest.raises(RuntimeError, match="does not require gradient"):
        tg.tensor([1.0]).register_hook(lambda g: g)


def test_a_gradient_a_hook_kept_is_not_overwritten_by_a_later_rule():
    """relu's rule writes into its incoming gradient when that memory is the backward
    pass's own (4,096 elements and more): a hook that kept the gradient of relu's output saw
    it turn into relu's input gradient (zeros where x < 0; PyTorch's kept all 3s). Also for
    a leaf's hook: the kept gradient must not become x.grad's memory, which the next
    backward adds into."""
    x0 = np.random.default_rng(0).standard_normal(5000).astype(np.float32)
    got = {}
    for lib in (tg, torch):
        kept = []
        x = lib.tensor(x0, requires_grad=True)
        y = (x * 1.0).relu()
        y.register_hook(kept.append)
        (y * 3.0).sum().backward()
        x.register_hook(kept.append)
        (y.detach() * 0 + x * 2.0).sum().backward()
        (x * 2.0).sum().backward()
        got[lib.__name__] = [k.numpy().copy() for k in kept] + [x.grad.numpy().copy()]
    for a, b in zip(got["tracegrad"], got["torch"]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.unique(got["tracegrad"][0]), [3.0])


# ---------------------------------------------------------------- autograd.grad


def test_autograd_grad_with_grad_outputs_allow_unused_and_interior_inputs_matches_torch():
    x, tx = _pair([0.5, 1.5])
    z, tz = _pair([2.0])
    v = [1.0, -2.0]
    out = []
    for lib, a, c in ((tg, x, z), (torch, tx, tz)):
        h = a.tanh()
        y = h * h * 3
        gv = lib.tensor(v, dtype=lib.float64)
        gx, gh, gz = lib.autograd.grad(y, (a, h, c), grad_outputs=gv, allow_unused=True,
                                       retain_graph=True)
        assert gz is None
        (gx2,) = lib.autograd.grad([y, h.sum()], [a], grad_outputs=[gv, None])
        out.append((gx, gh, gx2))
    for ours, theirs in zip(*out):
        _close(ours, theirs)
    assert x.grad is None  # autograd.grad never writes .grad


def test_autograd_grad_of_an_interior_input_of_a_chain_matches_torch():
    # y's gradient is both a result and what goes on to x: the backward of y * c must not
    # take over its object (first-order rules pass one gradient object down a chain)
    out = []
    for lib in (tg, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        c = lib.tensor([3.0, 5.0])
        y = x * c
        z = y * c
        out.append(lib.autograd.grad((z * c).sum(), [y, z, x]))
    for ours, theirs in zip(*out):
        _close(ours, theirs)


def test_autograd_grad_errors_match_torchs_cases():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    z = tg.tensor([1.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="not used to compute the outputs.*allow_unused"):
        tg.autograd.grad(y.sum(), [x, z], retain_graph=True)
    with pytest.raises(RuntimeError, match="only for one-element outputs"):
        tg.autograd.grad(y, x)
    with pytest.raises(ShapeError, match=r"grad_outputs\[0\] has shape \(3,\)"):
        tg.autograd.grad(y, x, tg.ones(3))
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.autograd.grad(y.sum(), tg.tensor([1.0]))
    (g,) = tg.autograd.grad(y.sum(), [z], allow_unused=True, materialize_grads=True)
    np.testing.assert_allclose(g.numpy(), [0.0])


# ---------------------------------------------------------------- autograd.functional


def test_autograd_functional_matches_torch():
    import torch.autograd.functional as TAF

    import tracegrad.autograd.functional as AF

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(3), rng.standard_normal(3)

    def f(x, y):
        return ((x * y.sin()).sum() ** 2 + (x * x * y).sum())

    def g(x):
        return (x.exp() * 2).tanh()

    tga, tgb = tg.tensor(a), tg.tensor(b)
    ta, tb = torch.tensor(a), torch.tensor(b)
    pairs = [
        (AF.jacobian(g, tga), TAF.jacobian(g, ta)),
        (AF.jacobian(g, tga, strategy="forward-mode"), TAF.jacobian(g, ta)),
        (AF.hessian(f, (tga, tgb)), TAF.hessian(f, (ta, tb))),
        (AF.vjp(g, tga, tgb)[1], TAF.vjp(g, ta, tb)[1]),
        (AF.jvp(g, tga, tgb)[1], TAF.jvp(g, ta, tb)[1]),
        (AF.hvp(f, (tga, tgb), (tgb, tga))[1], TAF.hvp(f, (ta, tb), (tb, ta))[1]),
        (AF.vhp(f, (tga, tgb), (tgb, tga))[1], TAF.vhp(f, (ta, tb), (tb, ta))[1]),
    ]

    def walk(ours, theirs):
        if isinstance(theirs, tuple):
            assert isinstance(ours, tuple) and len(ours) == len(theirs)
            for o, t in zip(ours, theirs):
                walk(o, t)
        else:
            assert ours.shape == tuple(theirs.shape)
            _close(ours, theirs, rtol=1e-9)

    for ours, theirs in pairs:
        walk(ours, theirs)


def test_gradcheck_catches_a_wrong_backward():
    class Wrong(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.sin()

        @staticmethod
        def backward(ctx, g):
            return g  # should be g * cos(x)

    x = tg.tensor([0.3, 1.2], dtype=tg.float64, requires_grad=True)
    assert tg.autograd.gradcheck(lambda x: x.sin(), (x,), check_forward_ad=True)
    assert not tg.autograd.gradcheck(Wrong.apply, (x,), raise_exception=False)
    with pytest.raises(tg.autograd.GradcheckError, match="output 0 with respect to input 0"):
        tg.autograd.gradcheck(Wrong.apply, (x,))


def test_grad_fn_has_torchs_name_and_next_functions():
    x, tx = _pair([1.0, 2.0])
    c, tc = tg.tensor([3.0, 4.0], dtype=tg.float64), torch.tensor([3.0, 4.0], dtype=torch.float64)
    y, ty = (x * c).sum(), (tx * tc).sum()
    assert y.grad_fn == "<SumBackward>" and y.grad_fn.name() == "SumBackward"
    ((mul, _),) = y.grad_fn.next_functions
    assert mul == "<MulBackward>" and ty.grad_fn.next_functions[0][0].name() == "MulBackward0"
    (acc, _), (none, _) = mul.next_functions
    assert acc.name() == "AccumulateGrad" and acc.variable is x and none is None
    ((tacc, _), (tnone, _)) = ty.grad_fn.next_functions[0][0].next_functions
    assert tacc.name().endswith("AccumulateGrad") and tnone is None


def test_forward_ad_dual_tensors_match_torch():
    import torch.autograd.forward_ad as tfw

    fw = tg.autograd.forward_ad
    a, v = np.array([0.3, -1.2, 2.0]), np.array([1.0, 0.5, -2.0])
    with fw.dual_level():
        x = fw.make_dual(tg.tensor(a), tg.tensor(v))
        y = (x.sin() * x).exp().sum()
        primal, tangent = fw.unpack_dual(y)
        assert fw.unpack_dual(primal).tangent is None
    with tfw.dual_level():
        tx = tfw.make_dual(torch.tensor(a), torch.tensor(v))
        ty = (tx.sin() * tx).exp().sum()
        tprimal, ttangent = tfw.unpack_dual(ty)
    _close(primal, tprimal)
    _close(tangent, ttangent)
    with pytest.raises(RuntimeError, match="no dual level is open"):
        fw.make_dual(tg.tensor(a), tg.tensor(v))
    with fw.dual_level(), pytest.raises(ShapeError, match=r"tangent has shape \(2,\)"):
        fw.make_dual(tg.tensor(a), tg.tensor(v[:2]))
