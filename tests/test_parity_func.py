"""tg.func and tg.autograd against torch.func / torch.autograd on the idioms of PyTorch's
tutorials: transforms over trees of tensors (a dict of a model's weights), custom
Functions in forward mode, batched gradients, vmap."""

from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg

torch = pytest.importorskip("torch")


def _np(tree):
    """A tree of tg or torch tensors as the same tree of arrays."""
    if isinstance(tree, dict):
        return {k: _np(v) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(_np(v) for v in tree)
    return tree.detach().numpy() if isinstance(tree, torch.Tensor) else tree.numpy()


def _close(ours, theirs, tol=1e-10):
    """Two trees of tensors: the same structure, the same values."""
    a, b = _np(ours), _np(theirs)
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(b, dict):
        assert list(a) == list(b), (list(a), list(b))
        for k in b:
            _close(ours[k], theirs[k], tol)
    elif isinstance(b, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(ours, theirs):
            _close(x, y, tol)
    else:
        assert a.shape == b.shape, (a.shape, b.shape)
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def _models(rng):
    """The same two-layer tanh network in both libraries, and its weights as dicts."""
    ours = tg.nn.Sequential(tg.nn.Linear(3, 4), tg.nn.Tanh(), tg.nn.Linear(4, 2)).double()
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),
                                 torch.nn.Linear(4, 2)).double()
    w = {k: rng.standard_normal(tuple(p.shape)) for k, p in ours.named_parameters()}
    return (ours, {k: tg.tensor(v) for k, v in w.items()},
            theirs, {k: torch.tensor(v) for k, v in w.items()})


def test_transforms_take_a_dict_of_weights_as_torch_func_does():
    rng = np.random.default_rng(0)
    net, p, tnet, tp = _models(rng)
    x = rng.standard_normal((5, 3))
    X, tX = tg.tensor(x), torch.tensor(x)

    def loss(p, x):
        return (tg.func.functional_call(net, p, (x,)) ** 2).mean()

    def tloss(p, x):
        return (torch.func.functional_call(tnet, p, (x,)) ** 2).mean()

    _close(tg.func.grad(loss)(p, X), torch.func.grad(tloss)(tp, tX))
    g, v = tg.func.grad_and_value(loss, argnums=(0, 1))(p, X)
    tg_, tv = torch.func.grad_and_value(tloss, argnums=(0, 1))(tp, tX)
    _close(g, tg_)
    _close(v, tv)
    out = lambda p: tg.func.functional_call(net, p, (X,))  # noqa: E731
    tout = lambda p: torch.func.functional_call(tnet, p, (tX,))  # noqa: E731
    _close(tg.func.jacrev(out)(p), torch.func.jacrev(tout)(tp))
    _close(tg.func.jacfwd(out)(p), torch.func.jacfwd(tout)(tp))
    t = {k: v.sin() for k, v in p.items()}
    _close(tg.func.jvp(out, (p,), (t,)), torch.func.jvp(tout, (tp,), ({k: v.sin() for k, v
                                                                         in tp.items()},)))
    y, vjp_fn = tg.func.vjp(out, p)
    ty, tvjp_fn = torch.func.vjp(tout, tp)
    _close(vjp_fn(y), tvjp_fn(ty))
    biases = {k: v for k, v in p.items() if k.endswith("bias")}
    tbiases = {k: v for k, v in tp.items() if k.endswith("bias")}
    h = tg.func.hessian(lambda b: loss({**p, **b}, X))(biases)
    th = torch.func.hessian(lambda b: tloss({**tp, **b}, tX))(tbiases)
    _close(h, th, 1e-8)


def test_trees_of_inputs_and_outputs_nest_as_in_torch_func():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(3), rng.standard_normal(2)

    def f(m, pair, c):
        x, y = pair
        return {"p": x.sin() * y.sum() * c, "s": (x * c).sum()}

    ours = ((tg.tensor(a), tg.tensor(b)), tg.tensor(a))
    theirs = ((torch.tensor(a), torch.tensor(b)), torch.tensor(a))
    for argnums, theirs_argnums in ((1, 0), ((1, 2), (0, 1)), (-1, -1)):
        _close(tg.func.jacrev(f, argnums)(tg, *ours),
               torch.func.jacrev(lambda p, c: f(torch, p, c), theirs_argnums)(*theirs))
        # (against torch's jacrev: torch 2.13's jacfwd gives zeros for argnums=-1)
        _close(tg.func.jacfwd(f, argnums)(tg, *ours),
               torch.func.jacrev(lambda p, c: f(torch, p, c), theirs_argnums)(*theirs))
    g = tg.func.grad(lambda pair: (pair[0] ** 2).sum() * pair[1].prod())(ours[0])
    tg_ = torch.func.grad(lambda pair: (pair[0] ** 2).sum() * pair[1].prod())(theirs[0])
    assert isinstance(g, tuple)
    _close(g, tg_)


def _scaled_exp(lib):
    """PyTorch 2's custom Function form, with a forward-mode rule that reads
    save_for_forward's tensors."""

    class ScaledExp(lib.autograd.Function):
        @staticmethod
        def forward(x, k, scale):
            return x.exp() * k * scale

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(output)
            ctx.save_for_forward(output, inputs[1])

        @staticmethod
        def backward(ctx, g):
            (out,) = ctx.saved_tensors
            return g * out, None, None

        @staticmethod
        def jvp(ctx, tx, tk, tscale):
            out, k = ctx.saved_tensors
            assert tk is not None and tscale is None  # zeros for a tensor without a tangent
            return tx * out + tk * out / k

    return ScaledExp


def test_a_function_s_jvp_reads_save_for_forward_and_gets_zero_tangents():
    import torch.autograd.forward_ad as tfw

    import tracegrad.autograd.forward_ad as fw

    rng = np.random.default_rng(2)
    x, t, k = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal(3) + 2
    with fw.dual_level():
        y = _scaled_exp(tg).apply(fw.make_dual(tg.tensor(x), tg.tensor(t)), tg.tensor(k), 2.0)
        ours = fw.unpack_dual(y).tangent
    with tfw.dual_level():
        y = _scaled_exp(torch).apply(tfw.make_dual(torch.tensor(x), torch.tensor(t)),
                                     torch.tensor(k), 2.0)
        theirs = tfw.unpack_dual(y).tangent
    _close(ours, theirs)
    f = lambda lib: lambda x, k: _scaled_exp(lib).apply(x, k, 2.0)  # noqa: E731
    _close(tg.func.jvp(f(tg), (tg.tensor(x), tg.tensor(k)), (tg.tensor(t), tg.tensor(t))),
           torch.func.jvp(f(torch), (torch.tensor(x), torch.tensor(k)),
                          (torch.tensor(t), torch.tensor(t))))
    _close(tg.func.jacfwd(f(tg))(tg.tensor(x), tg.tensor(k)),
           torch.func.jacrev(f(torch))(torch.tensor(x), torch.tensor(k)))


def test_per_sample_gradients_with_vmap_as_in_the_torch_func_tutorial():
    rng = np.random.default_rng(3)
    net, p, tnet, tp = _models(rng)
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))

    def loss(p, x, y):
        return ((tg.func.functional_call(net, p, (x[None],)) - y) ** 2).mean()

    def tloss(p, x, y):
        return ((torch.func.functional_call(tnet, p, (x[None],)) - y) ** 2).mean()

    ours = tg.func.vmap(tg.func.grad(loss), in_dims=(None, 0, 0))(p, tg.tensor(x),
                                                                 tg.tensor(y))
    theirs = torch.func.vmap(torch.func.grad(tloss), in_dims=(None, 0, 0))(
        tp, torch.tensor(x), torch.tensor(y))
    _close(ours, theirs)
    assert ours["0.weight"].shape == (6, 4, 3)


@pytest.mark.parametrize("case", ["in_dims", "out_dims", "trees", "nested", "composed"])
def test_vmap_matches_torch_func(case):
    rng = np.random.default_rng(4)
    a, b, c = rng.standard_normal((4, 3)), rng.standard_normal((3, 4)), \
        rng.standard_normal((4, 3, 2))

    def run(lib, F):
        A, B, C = lib.tensor(a), lib.tensor(b), lib.tensor(c)
        if case == "in_dims":
            return (F.vmap(lambda u, v: u * v, in_dims=(0, 1))(A, B),
                    F.vmap(lambda u, w: u @ w, in_dims=(0, None))(A, B),
                    F.vmap(lambda u: u.softmax(0), in_dims=-1)(C))
        if case == "out_dims":
            return (F.vmap(lambda u: u * 2, out_dims=-1)(C),
                    F.vmap(lambda u: u * 2, out_dims=(1,))(C),
                    F.vmap(lambda u, w: (u.sum(0), w * 2), in_dims=(0, None),
                           out_dims=(1, None))(C, B))
        if case == "trees":
            return F.vmap(lambda d: {"p": d["a"] * d["b"], "s": d["a"].sum()},
                          in_dims=({"a": 0, "b": None},))({"a": A, "b": A[0]})
        if case == "nested":
            return F.vmap(F.vmap(lambda u: u.exp().sum()))(C)
        return (F.jacrev(F.vmap(lambda u: u.sin() * u.sum()))(A),
                F.vmap(F.hessian(lambda u: (u.sin() * u.sum()).sum()))(A),
                F.vmap(lambda u, t: F.jvp(lambda s: s.exp() * s, (u,), (t,)))(A, A * 2))

    _close(run(tg, tg.func), run(torch, torch.func))


def test_vmap_misuse_and_randomness_as_torch():
    x = tg.tensor(np.ones((4, 3)))
    with pytest.raises(ValueError, match="different sizes"):
        tg.func.vmap(lambda u, v: u + v)(x, tg.ones(3, 4))
    with pytest.raises(ValueError, match="only tensors can be mapped"):
        tg.func.vmap(lambda u, k: u * k)(x, 2.0)
    with pytest.raises(ValueError, match="out_dims is None"):
        tg.func.vmap(lambda u: u.sin(), out_dims=None)(x * tg.arange(4.0)[:, None])
    with pytest.raises(RuntimeError, match="randomness"):
        tg.func.vmap(lambda u: u + tg.rand(3))(x)
    same = tg.func.vmap(lambda u: u * 0 + tg.rand(3), randomness="same")(x)
    different = tg.func.vmap(lambda u: u * 0 + tg.rand(3), randomness="different")(x)
    assert (same[0] == same[3]).all() and not (different[0] == different[3]).all()
    c = tg.compile(tg.func.vmap(lambda u: u * 0 + tg.rand(3), randomness="same"))
    c(x)  # (the first call runs eagerly)
    with pytest.raises(tg.TraceError, match="randomness='same'"):
        c(x)
    c = tg.compile(tg.func.vmap(lambda u: u + tg.rand(3)))
    for _ in range(2):  # (eager, then traced)
        with pytest.raises(RuntimeError, match="randomness"):
            c(x)
    c = tg.compile(tg.func.vmap(lambda u: u.sin() @ u))
    for rows in (4, 4, 5):
        u = tg.tensor(np.random.default_rng(rows).standard_normal((rows, 3)))
        np.testing.assert_array_equal(c(u).numpy(),
                                      tg.func.vmap(lambda u: u.sin() @ u)(u).numpy())


def test_linearize_matches_torch_func():
    rng = np.random.default_rng(5)
    x, v = rng.standard_normal(3), rng.standard_normal(3)

    def run(lib, F):
        out, jvp_fn = F.linearize(lambda a, b: (a.sin() * b, a.sum()), lib.tensor(x),
                                  lib.tensor(v))
        return out, jvp_fn(lib.tensor(v), lib.tensor(x)), jvp_fn(lib.tensor(x), lib.tensor(x))

    _close(run(tg, tg.func), run(torch, torch.func))


def test_autograd_grad_with_batched_grad_outputs_and_backward_inputs():
    rng = np.random.default_rng(6)
    x, y, rows = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal((4, 3))

    def run(lib):
        a = lib.tensor(x, requires_grad=True)
        b = lib.tensor(y, requires_grad=True)
        h = a.exp()
        out = (h * b).sum(0, keepdim=True) * h
        g = lib.autograd.grad(out, [h, a, b], grad_outputs=lib.tensor(rows),
                              is_grads_batched=True, create_graph=True)
        gg = lib.autograd.grad(g[1].sum(), a, retain_graph=True)
        (out ** 2).sum().backward(inputs=[b])
        assert a.grad is None
        return g, gg, b.grad

    _close(run(tg), run(torch))


@pytest.mark.parametrize("mode", ["jacrev", "jacfwd"])
def test_norm_and_std_have_gradient_zero_at_zero_in_both_modes(mode):
    x = np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 2.0]])

    def f(lib):
        return lambda a: (a.norm(dim=1), a.norm(p=3, dim=1), a[:, :1].std(1, correction=0),
                          lib.std_mean(a * 0, 0)[0], lib.linalg.vector_norm(a, dim=1))

    ours = getattr(tg.func, mode)(f(tg))(tg.tensor(x))
    theirs = getattr(torch.func, mode)(f(torch))(torch.tensor(x))
    _close(ours, theirs)
    assert not np.isnan(np.concatenate([o.numpy().ravel() for o in ours])).any()


def test_model_ensembling_with_stack_module_state_as_in_the_torch_func_tutorial():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 3))

    def run(lib, F):
        models = [lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.BatchNorm1d(4), lib.nn.ReLU(),
                                    lib.nn.Linear(4, 2)).double() for _ in range(3)]
        weights = np.random.default_rng(8)
        for m in models:
            with lib.no_grad():
                for p in m.parameters():
                    p.copy_(lib.tensor(weights.standard_normal(tuple(p.shape))))
            m.eval()
        params, buffers = F.stack_module_state(models)
        assert all(p.requires_grad and p.is_leaf for p in params.values())
        assert sorted(buffers) == ["1.num_batches_tracked", "1.running_mean", "1.running_var"]

        def call(p, b, x):
            return F.functional_call(models[0], (p, b), (x,))

        out = F.vmap(call, in_dims=(0, 0, None))(params, buffers, lib.tensor(x))
        return out, F.vmap(F.grad(lambda p, b, x: call(p, b, x).sum()),
                           in_dims=(0, 0, None))(params, buffers, lib.tensor(x))

    _close(run(tg, tg.func), run(torch, torch.func))


def test_jacobians_of_an_empty_output():
    x = np.array([0.5, 1.0, -2.0])

    def f(a):
        return a[:0] * 2, a.sum()

    for mode in ("jacrev", "jacfwd"):
        _close(getattr(tg.func, mode)(f)(tg.tensor(x)),
               getattr(torch.func, mode)(f)(torch.tensor(x)))
    _close(tg.func.jacrev(f, chunk_size=1)(tg.tensor(x)),
           torch.func.jacrev(f, chunk_size=1)(torch.tensor(x)))
    _close(tg.func.jacrev(lambda a: f(a)[0])(tg.tensor(x)),
           torch.func.jacrev(lambda a: f(a)[0])(torch.tensor(x)))


def test_median_with_nans_and_ties_matches_torch_values_indices_and_gradients():
    x = np.array([[2.0, np.nan, 2.0, np.nan], [1.0, 3.0, 3.0, 0.0], [0.1, 0.1, 0.1, 0.7]])

    def run(lib, F):
        med = lib.median(lib.tensor(x), 1)
        rows = lib.tensor(x[1:])
        return (med.values, med.indices, lib.median(lib.tensor(x)),
                F.jacrev(lambda a: lib.median(a) * 3)(lib.tensor(x)),
                F.jacrev(lambda a: lib.median(a) * 3)(rows),
                F.jacrev(lambda a: lib.nanmedian(a) * 3)(lib.tensor(x)),
                F.jacrev(lambda a: lib.median(a, 1).values)(lib.tensor(x)))

    ours, theirs = run(tg, tg.func), run(torch, torch.func)
    assert np.isnan(ours[0].numpy()[0]) and np.isnan(ours[2].item())
    np.testing.assert_array_equal(ours[1].numpy(), theirs[1].numpy())
    _close(ours[3:], theirs[3:])
    assert tg.median(tg.tensor(x[2])).item() == torch.median(torch.tensor(x[2])).item()
    _close(tg.func.jacfwd(lambda a: tg.median(a) * 3)(tg.tensor(x[1:])), theirs[4])


@pytest.mark.parametrize("case", ["jacobian", "vjp", "jvp", "hessian", "hvp", "vhp"])
def test_autograd_functional_strict_raises_where_torch_does(case):
    x, y = np.array([0.5, 1.0, -2.0]), np.array([1.0, 2.0, 3.0])

    def call(lib, fn):
        F = tg.autograd.functional if lib is tg else torch.autograd.functional
        a, b = lib.tensor(x), lib.tensor(y)
        if case == "jacobian":
            return F.jacobian(fn, (a, b), strict=True)
        if case == "vjp":
            return F.vjp(fn, (a, b), a, strict=True)
        if case == "jvp":
            return F.jvp(fn, (a, b), (a, b), strict=True)
        scalar = lambda a, b: fn(a, b).sum()  # noqa: E731
        if case == "hessian":
            return F.hessian(scalar, (a, b), strict=True)
        return getattr(F, case)(scalar, (a, b), (b, a), strict=True)

    dependent = lambda a, b: a * a * b * b  # noqa: E731
    independent = lambda a, b: a * a  # noqa: E731
    _close(call(tg, dependent), call(torch, dependent))
    with pytest.raises(RuntimeError, match="input 1"):
        call(torch, independent)
    with pytest.raises(RuntimeError, match="independent of input 1"):
        call(tg, independent)
