"""tg.jvp, tg.vjp, tg.jacrev, tg.jacfwd, tg.hessian: against torch.func on the same
programs, composed with each other, with tg.grad and with tg.compile; on Values; misuse."""

from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg
from tracegrad import Value
from tracegrad.errors import ShapeError

torch = pytest.importorskip("torch")
tF = torch.nn.functional
F = tg.nn.functional


def _mlp_params(rng, sizes=(4, 8, 3)):
    ps = []
    for i, o in zip(sizes[:-1], sizes[1:]):
        ps += [rng.standard_normal((o, i)) / np.sqrt(i), rng.standard_normal(o) * 0.1]
    return ps


def ours_mlp(x, w1, b1, w2, b2):
    return F.linear(F.linear(x, w1, b1).tanh(), w2, b2).log_softmax(-1)


def torch_mlp(x, w1, b1, w2, b2):
    return tF.linear(tF.linear(x, w1, b1).tanh(), w2, b2).log_softmax(-1)


def _both(arrays):
    return tuple(tg.tensor(a) for a in arrays), tuple(torch.tensor(a) for a in arrays)


def _close(a, b, **kw):
    kw.setdefault("rtol", 1e-8)
    kw.setdefault("atol", 1e-10)
    np.testing.assert_allclose(np.asarray(a.numpy() if hasattr(a, "numpy") else a),
                               b.detach().numpy() if hasattr(b, "detach") else b, **kw)


def test_jvp_of_an_mlp_matches_torch_func():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((5, 4))] + _mlp_params(rng)
    tangents = [rng.standard_normal(a.shape) for a in arrays]
    (ps, tps), (vs, tvs) = _both(arrays), _both(tangents)
    out, t = tg.jvp(ours_mlp, ps, vs)
    tout, tt = torch.func.jvp(torch_mlp, tps, tvs)
    _close(out, tout)
    _close(t, tt)


def test_vjp_matches_torch_func_and_can_be_called_again():
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((5, 4))] + _mlp_params(rng)
    ps, tps = _both(arrays)
    out, vjp_fn = tg.vjp(ours_mlp, *ps)
    tout, tvjp = torch.func.vjp(torch_mlp, *tps)
    for seed in (2, 3):
        u = np.random.default_rng(seed).standard_normal(out.shape)
        for g, tgr in zip(vjp_fn(tg.tensor(u)), tvjp(torch.tensor(u))):
            _close(g, tgr)
    assert not out.requires_grad


def test_jacobians_both_ways_match_torch_with_several_inputs_and_outputs():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((3, 2)), rng.standard_normal(2)

    def ours(x, y):
        return (x * y).tanh(), (x @ y).exp().sum()

    def theirs(x, y):
        return (x * y).tanh(), (x @ y).exp().sum()

    (x, y), (tx, ty) = _both([a, b])
    want = torch.func.jacrev(theirs, argnums=(0, 1))(tx, ty)
    for jac in (tg.jacrev, tg.jacfwd):
        got = jac(ours, argnums=(0, 1))(x, y)
        for go, wo in zip(got, want):
            for gi, wi in zip(go, wo):
                assert gi.shape == tuple(wi.shape)
                _close(gi, wi)
    # one argnum: the Jacobian itself, no tuple
    single = tg.jacfwd(lambda x: (x * 2).sin())(x)
    _close(single, torch.func.jacfwd(lambda x: (x * 2).sin())(tx))
    # chunks of rows give the same
    _close(tg.jacrev(lambda x: x.exp() @ y, chunk_size=1)(x),
           torch.func.jacrev(lambda x: x.exp() @ ty)(tx))


def test_hessian_forward_over_reverse_and_reverse_over_forward_agree_with_torch():
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal((6, 4))] + _mlp_params(rng)
    labels = rng.integers(0, 3, size=6)
    w = arrays[1]

    def ours(w1):
        return F.cross_entropy(ours_mlp(tg.tensor(arrays[0]), w1, *[tg.tensor(a) for a in
                                                                 arrays[2:]]),
                               tg.tensor(labels))

    def theirs(w1):
        return tF.cross_entropy(torch_mlp(torch.tensor(arrays[0]), w1,
                                          *[torch.tensor(a) for a in arrays[2:]]),
                                torch.tensor(labels))

    want = torch.func.hessian(theirs)(torch.tensor(w))
    fwd_rev = tg.hessian(ours)(tg.tensor(w))
    rev_fwd = tg.jacrev(tg.jacfwd(ours))(tg.tensor(w))
    rev_rev = tg.jacrev(tg.jacrev(ours))(tg.tensor(w))
    assert fwd_rev.shape == w.shape + w.shape
    for h in (fwd_rev, rev_fwd, rev_rev):
        _close(h, want, rtol=1e-7, atol=1e-9)


def test_forward_mode_composes_with_grad():
    rng = np.random.default_rng(4)
    a, v = rng.standard_normal(5), rng.standard_normal(5)

    def f(x):
        return (x.sin() * x).sum() ** 2

    def tf(x):
        return (x.sin() * x).sum() ** 2

    x, tx = tg.tensor(a), torch.tensor(a)
    # Hessian-vector product, forward over reverse
    _, hv = tg.jvp(tg.grad(f), (x,), (tg.tensor(v),))
    _, thv = torch.func.jvp(torch.func.grad(tf), (tx,), (torch.tensor(v),))
    _close(hv, thv)
    # reverse over forward: the gradient of a directional derivative
    g = tg.grad(lambda x: tg.jvp(f, (x,), (tg.tensor(v),))[1])(x)
    tgr = torch.func.grad(lambda x: torch.func.jvp(tf, (x,), (torch.tensor(v),))[1])(tx)
    _close(g, tgr)
    # forward over forward: the second directional derivative vᵀHv
    _, second = tg.jvp(lambda x: tg.jvp(f, (x,), (tg.tensor(v),))[1], (x,), (tg.tensor(v),))
    _close(second, (thv * torch.tensor(v)).sum())
    # value_and_grad under jvp keeps the value's tangent too
    (_, t) = tg.jvp(lambda x: tg.value_and_grad(f)(x)[1], (x,), (tg.tensor(v),))
    _close(t, thv)


def test_a_compiled_jvp_is_one_graph_and_matches_eager():
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal((5, 4)).astype(np.float32)] + \
        [p.astype(np.float32) for p in _mlp_params(rng)]
    v = rng.standard_normal((5, 4)).astype(np.float32)
    params = [tg.tensor(a) for a in arrays[1:]]

    def directional(x, v):
        return tg.jvp(lambda x: ours_mlp(x, *params), (x,), (v,))

    compiled = tg.compile(directional)
    for k in range(3):
        x = tg.tensor(arrays[0] + k)
        out, t = compiled(x, tg.tensor(v))
        want_out, want_t = directional(x, tg.tensor(v))
        _close(out, want_out.numpy(), rtol=1e-5, atol=1e-6)
        _close(t, want_t.numpy(), rtol=1e-5, atol=1e-6)
    assert compiled.cache_info().misses == 1
    graph = tg.trace(directional, tg.TensorSpec((5, 4)), tg.TensorSpec((5, 4)))
    assert len(graph.outputs) == 2
    # a compiled function inside tg.jvp runs its Python, so that tangents go through
    cf = tg.compile(lambda x: (x * x).sin())
    x = tg.tensor(arrays[0])
    for _ in range(3):
        _, t = tg.jvp(cf, (x,), (tg.tensor(v),))
        _close(t, tg.jvp(lambda x: (x * x).sin(), (x,), (tg.tensor(v),))[1].numpy())
    # jacfwd inside a compiled function too
    jac = tg.compile(tg.jacfwd(lambda x: (x * x).tanh()))
    x = tg.tensor(arrays[0][0])
    _close(jac(x), tg.jacfwd(lambda x: (x * x).tanh())(x).numpy(), rtol=1e-6)


def test_jvp_through_in_place_ops_no_grad_and_detach():
    a, v = np.array([0.5, 1.5, -1.0]), np.array([1.0, 2.0, 3.0])

    def f(x):
        y = x * 1
        y.mul_(x)          # y = x², in place
        y[0] = y[0] * 3    # through a view
        with tg.no_grad():  # forward mode does not depend on grad mode
            z = y.exp()
        return z + x.detach()  # detach cuts tangents

    def tf(x):
        y = x * 1
        y.mul_(x)
        y[0] = y[0] * 3
        with torch.no_grad():
            z = y.exp()
        return z + x.detach()

    _, t = tg.jvp(f, (tg.tensor(a),), (tg.tensor(v),))
    _, tt = torch.func.jvp(tf, (torch.tensor(a),), (torch.tensor(v),))
    _close(t, tt)


def test_jvp_on_values_is_forward_mode_on_micrograds_example():
    def f(a, b):
        c = a + b
        d = a * b + b**3
        c += c + 1
        c += 1 + c + (-a)
        d += d * 2 + (b + a).relu()
        d += 3 * d + (b - a).relu()
        e = c - d
        f = e**2
        g = f / 2.0
        g += 10.0 / f
        return g

    a, b = Value(-4.0), Value(2.0)
    out = f(a, b)
    out.backward()
    value, da = tg.jvp(f, (Value(-4.0), Value(2.0)), (1.0, 0.0))
    _, db = tg.jvp(f, (Value(-4.0), Value(2.0)), (Value(0.0), Value(1.0)))
    assert value.data == pytest.approx(24.70408163265306)
    assert da == pytest.approx(a.grad) and da == pytest.approx(138.83381924198252)
    assert db == pytest.approx(b.grad) and db == pytest.approx(645.5772594752186)
    # both directions at once: the tangents add
    _, both = tg.jvp(f, (Value(-4.0), Value(2.0)), (1.0, 1.0))
    assert both == pytest.approx(da + db)


def test_misuse_gets_clear_errors():
    x = tg.tensor([1.0, 2.0])
    with pytest.raises(ShapeError, match=r"tangent 0 has shape \(3,\).*primal has shape \(2,\)"):
        tg.jvp(lambda x: x * 2, (x,), (tg.tensor([1.0, 2.0, 3.0]),))
    with pytest.raises(TypeError, match="tangent 0 is float64 but its primal is float32"):
        tg.jvp(lambda x: x * 2, (x,), (tg.tensor([1.0, 2.0], dtype=tg.float64),))
    with pytest.raises(TypeError, match="primals must be a tuple"):
        tg.jvp(lambda x: x * 2, x, (x,))
    with pytest.raises(TypeError, match="1 primal.*2 tangent"):
        tg.jvp(lambda x: x * 2, (x,), (x, x))
    with pytest.raises(TypeError, match="forward mode needs float"):
        tg.jvp(lambda x: x * 2, (tg.tensor([1, 2]),), (tg.tensor([1, 2]),))
    with pytest.raises(TypeError, match=r"tg\.autograd\.grad\(outputs, inputs\)"):
        tg.grad(tg.tensor([1.0], requires_grad=True))
    out, vjp_fn = tg.vjp(lambda x: x * 2, x)
    with pytest.raises(ShapeError, match=r"cotangent 0 has shape \(3,\)"):
        vjp_fn(tg.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(TypeError, match="argnums=2"):
        tg.jacrev(lambda x: x)(x) if False else tg.jacfwd(lambda x: x, argnums=2)(x)


def test_a_primitive_without_a_jvp_rule_says_so(monkeypatch):
    from tracegrad.ops import PRIMITIVES

    monkeypatch.setattr(PRIMITIVES["tanh"], "jvp", None)
    with pytest.raises(NotImplementedError, match="'tanh' has a VJP but no JVP rule"):
        tg.jvp(lambda x: x.tanh(), (tg.tensor([1.0]),), (tg.tensor([1.0]),))
    # reverse mode is unaffected
    assert tg.jacrev(lambda x: x.tanh())(tg.tensor([0.0])).item() == 1.0


def test_forward_mode_is_per_thread():
    import threading

    started, release = threading.Event(), threading.Event()
    seen = {}

    def other():
        started.wait()
        x = tg.tensor([1.0, 2.0])
        seen["plain"] = (x * 3).exp().sum().item()  # runs while the main thread is in jvp
        release.set()

    def f(x):
        started.set()
        release.wait(10)
        return (x * x).sum()

    thread = threading.Thread(target=other)
    thread.start()
    _, t = tg.jvp(f, (tg.tensor([1.0, 2.0]),), (tg.tensor([1.0, 1.0]),))
    thread.join()
    assert t.item() == 6.0
    assert seen["plain"] == pytest.approx(float(np.exp(3.0) + np.exp(6.0)), rel=1e-6)


def test_tg_func_has_torch_funcs_names():
    x = tg.tensor([1.0, 2.0], dtype=tg.float64)
    g, value = tg.func.grad_and_value(lambda x: (x * x).sum())(x)
    np.testing.assert_allclose(g.numpy(), [2.0, 4.0])
    assert value.item() == 5.0
    for name in ("jvp", "vjp", "jacrev", "jacfwd", "hessian", "grad", "vmap"):
        assert getattr(tg.func, name) is getattr(tg, name)


def test_forward_mode_keeps_only_live_tangents_through_a_long_loop():
    from tracegrad import forward

    sizes = []

    def f(x):
        for _ in range(3000):  # a long chain: no graph is kept, nor dead tangents
            x = (x * 0.999).sin() + 0.001
        sizes.append(len(forward._state.levels[-1].entries))
        return x

    x0 = np.array([0.3, 0.7])
    _, t = tg.jvp(f, (tg.tensor(x0),), (tg.tensor(np.array([1.0, 0.0])),))
    assert sizes[0] < 600
    # the derivative of the chain, by the chain rule on the values
    x, d = x0.copy(), np.array([1.0, 0.0])
    for _ in range(3000):
        d = np.cos(x * 0.999) * 0.999 * d
        x = np.sin(x * 0.999) + 0.001
    np.testing.assert_allclose(t.numpy(), d, rtol=1e-10)
