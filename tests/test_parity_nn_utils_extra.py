"""tg.nn.utils against torch.nn.utils 2.13: weight_norm and spectral_norm (the older functions
and the parametrizations), parametrize (register/remove/is_parametrized/cached), fusion of
batch norm, skip_init, clip_grad_norm and functional_call; values, state dict keys and
gradients, eager and compiled."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import tracegrad as tg
from tracegrad import nn
from tracegrad.nn.utils import parametrizations, parametrize

torch = pytest.importorskip("torch")
tnn = torch.nn

TOL = dict(rtol=1e-5, atol=1e-6)
# torch deprecates its older weight_norm/spectral_norm, which are compared here on purpose
pytestmark = pytest.mark.filterwarnings("ignore:.*is deprecated in favor of:FutureWarning")


def pair(make, tmake):
    """The same layer in both libraries, torch's weights copied into ours."""
    torch.manual_seed(0)
    t = tmake()
    m = make()
    m.load_state_dict({k: v.detach().numpy().copy() for k, v in t.state_dict().items()})
    return m, t


def copy_state(m, t):
    m.load_state_dict({k: v.detach().numpy().copy() for k, v in t.state_dict().items()})


def close(a, b, **kw):
    a = a.detach().numpy() if hasattr(a, "detach") else a
    np.testing.assert_allclose(a.numpy() if hasattr(a, "numpy") else a,
                               b.detach().numpy(), **{**TOL, **kw})


def loss_and_grads(m, t, x):
    """A loss of each model's output on the same input, backward, and both outputs."""
    y, ty = m(tg.tensor(x)), t(torch.tensor(x))
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    return y, ty


LAYERS = [
    (lambda: nn.Linear(5, 4), lambda: tnn.Linear(5, 4), (3, 5)),
    (lambda: nn.Conv2d(2, 3, 3), lambda: tnn.Conv2d(2, 3, 3), (2, 2, 6, 6)),
    (lambda: nn.ConvTranspose2d(3, 2, 3), lambda: tnn.ConvTranspose2d(3, 2, 3), (2, 3, 4, 4)),
]


# ---------------------------------------------------------------- weight norm


@pytest.mark.parametrize("layer", range(3))
@pytest.mark.parametrize("dim", [0, 1, None])
@pytest.mark.parametrize("style", ["old", "parametrization"])
def test_weight_norm_matches_torch(layer, dim, style):
    make, tmake, shape = LAYERS[layer]
    fn, tfn = ((nn.utils.weight_norm, tnn.utils.weight_norm) if style == "old" else
               (parametrizations.weight_norm, tnn.utils.parametrizations.weight_norm))
    m, t = pair(make, tmake)
    fn(m, dim=dim)
    tfn(t, dim=dim)
    assert list(m.state_dict()) == list(t.state_dict())
    for k, v in t.state_dict().items():
        close(m.state_dict()[k], v)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    y, ty = loss_and_grads(m, t, x)
    close(y, ty)
    tparams = dict(t.named_parameters())
    for k, p in m.named_parameters():
        close(p.grad, tparams[k].grad, rtol=1e-4, atol=1e-5)
    assert type(m).__name__ == type(t).__name__ or style == "old"
    close(m.weight, t.weight)


def test_remove_weight_norm_leaves_the_weight_and_torch_s_keys():
    for remove, tremove, fn, tfn in [
        (nn.utils.remove_weight_norm, tnn.utils.remove_weight_norm, nn.utils.weight_norm,
         tnn.utils.weight_norm),
        (lambda m: parametrize.remove_parametrizations(m, "weight"),
         lambda t: tnn.utils.parametrize.remove_parametrizations(t, "weight"),
         parametrizations.weight_norm, tnn.utils.parametrizations.weight_norm)]:
        m, t = pair(lambda: nn.Linear(4, 3), lambda: tnn.Linear(4, 3))
        fn(m)
        tfn(t)
        with torch.no_grad():
            t.weight_g.mul_(2) if hasattr(t, "weight_g") else \
                t.parametrizations.weight.original0.mul_(2)
        copy_state(m, t)
        remove(m)
        tremove(t)
        assert type(m) is nn.Linear and list(m.state_dict()) == list(t.state_dict())
        assert isinstance(m.weight, nn.Parameter)
        close(m.weight, t.weight)
        close(m(tg.ones(2, 4)), t(torch.ones(2, 4)))


# ---------------------------------------------------------------- spectral norm


@pytest.mark.parametrize("layer", range(3))
@pytest.mark.parametrize("style", ["old", "parametrization"])
@pytest.mark.parametrize("n_iter", [1, 3])
def test_spectral_norm_matches_torch_step_by_step(layer, style, n_iter):
    """Same weights and the same starting u, v (torch's, loaded): the same power iteration
    each training forward, the same outputs and gradients, then eval mode (no iteration)."""
    make, tmake, shape = LAYERS[layer]
    fn, tfn = ((nn.utils.spectral_norm, tnn.utils.spectral_norm) if style == "old" else
               (parametrizations.spectral_norm, tnn.utils.parametrizations.spectral_norm))
    m, t = pair(make, tmake)
    fn(m, n_power_iterations=n_iter)
    tfn(t, n_power_iterations=n_iter)
    assert list(m.state_dict()) == list(t.state_dict())
    copy_state(m, t)
    rng = np.random.default_rng(2)
    for _ in range(3):
        x = rng.standard_normal(shape).astype(np.float32)
        m.zero_grad()
        t.zero_grad()
        y, ty = loss_and_grads(m, t, x)
        close(y, ty)
        tparams = dict(t.named_parameters())
        for k, p in m.named_parameters():
            close(p.grad, tparams[k].grad, rtol=1e-4, atol=1e-5)
        for k, b in t.named_buffers():
            close(m.state_dict()[k], b)
    m.eval()
    t.eval()
    before = {k: v.numpy().copy() for k, v in m.state_dict().items()}
    x = rng.standard_normal(shape).astype(np.float32)
    close(m(tg.tensor(x)), t(torch.tensor(x)))
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])  # eval: u, v unchanged


@pytest.mark.parametrize("style", ["old", "parametrization"])
def test_spectral_norm_converges_to_unit_top_singular_value(style):
    fn = nn.utils.spectral_norm if style == "old" else parametrizations.spectral_norm
    tg.manual_seed(0)
    m = fn(nn.Linear(8, 6))
    for _ in range(60):
        m(tg.zeros(1, 8))
    s = np.linalg.svd(m.weight.detach().numpy(), compute_uv=False)
    assert s[0] == pytest.approx(1.0, rel=1e-4)


def test_remove_spectral_norm_matches_torch():
    m, t = pair(lambda: nn.Linear(5, 4), lambda: tnn.Linear(5, 4))
    nn.utils.spectral_norm(m)
    tnn.utils.spectral_norm(t)
    copy_state(m, t)
    m(tg.ones(1, 5))
    t(torch.ones(1, 5))
    nn.utils.remove_spectral_norm(m)
    tnn.utils.remove_spectral_norm(t)
    assert list(m.state_dict()) == list(t.state_dict()) == ["bias", "weight"] or \
        sorted(m.state_dict()) == sorted(t.state_dict())
    close(m.weight, t.weight)
    with pytest.raises(ValueError, match="spectral_norm of 'weight' not found"):
        nn.utils.remove_spectral_norm(m)


# ---------------------------------------------------------------- parametrize


class Symmetric(nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).transpose(0, 1)

    def right_inverse(self, A):
        return A.triu()


class TSymmetric(tnn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).transpose(0, 1)

    def right_inverse(self, A):
        return A.triu()


class Scale(nn.Module):
    def forward(self, X):
        return X * 2.0

    def right_inverse(self, X):
        return X / 2.0


class TScale(tnn.Module):
    def forward(self, X):
        return X * 2.0

    def right_inverse(self, X):
        return X / 2.0


class Transposed(nn.Module):
    def forward(self, X):
        return X.T


class Counting2(nn.Module):
    def forward(self, X):
        return X + 1.0


def test_register_parametrization_matches_torch():
    m, t = pair(lambda: nn.Linear(4, 4), lambda: tnn.Linear(4, 4))
    P, TP = parametrize, tnn.utils.parametrize
    assert not P.is_parametrized(m)
    P.register_parametrization(m, "weight", Symmetric())
    TP.register_parametrization(t, "weight", TSymmetric())
    P.register_parametrization(m, "weight", Scale())  # chained after the first
    TP.register_parametrization(t, "weight", TScale())
    assert P.is_parametrized(m) and P.is_parametrized(m, "weight")
    assert not P.is_parametrized(m, "bias")
    assert type(m).__name__ == type(t).__name__ == "ParametrizedLinear"
    assert list(m.state_dict()) == list(t.state_dict())
    w = m.weight.numpy()
    np.testing.assert_allclose(w, w.T)
    close(m.weight, t.weight)
    x = np.random.default_rng(3).standard_normal((3, 4)).astype(np.float32)
    loss_and_grads(m, t, x)
    close(m.parametrizations.weight.original.grad, t.parametrizations.weight.original.grad)
    # assigning goes through right_inverse
    a = np.arange(16, dtype=np.float32).reshape(4, 4)
    m.weight = tg.tensor(a + a.T)
    with torch.no_grad():
        t.weight = torch.tensor(a + a.T)
    close(m.parametrizations.weight.original, t.parametrizations.weight.original)
    close(m.weight, t.weight)
    # without a right_inverse, assigning is refused (in both)
    lin = parametrize.register_parametrization(nn.Linear(2, 2), "weight", Counting2())
    with pytest.raises(RuntimeError, match="does not implement right_inverse"):
        lin.weight = tg.eye(2)
    # the parameters an optimizer sees: the original, the bias
    assert len(list(m.parameters())) == len(list(t.parameters())) == 2


def test_parametrized_original_is_the_same_parameter_an_optimizer_holds():
    lin = nn.Linear(3, 3)
    w = lin.weight
    opt = tg.optim.SGD(lin.parameters(), lr=0.1)
    parametrize.register_parametrization(lin, "weight", Scale())
    assert lin.parametrizations.weight.original is w
    (lin(tg.ones(1, 3)) ** 2).sum().backward()
    before = w.numpy().copy()
    opt.step()
    assert not np.array_equal(w.numpy(), before)


def test_remove_parametrizations_both_ways_and_errors():
    for leave in (True, False):
        m, t = pair(lambda: nn.Linear(3, 3), lambda: tnn.Linear(3, 3))
        parametrize.register_parametrization(m, "weight", Scale())
        tnn.utils.parametrize.register_parametrization(t, "weight", TScale())
        parametrize.remove_parametrizations(m, "weight", leave_parametrized=leave)
        tnn.utils.parametrize.remove_parametrizations(t, "weight", leave_parametrized=leave)
        assert type(m) is nn.Linear and not parametrize.is_parametrized(m)
        assert list(m.state_dict()) == list(t.state_dict())
        close(m.weight, t.weight)
    with pytest.raises(ValueError, match="no parametrization on 'weight'"):
        parametrize.remove_parametrizations(m, "weight")
    with pytest.raises(ValueError, match="must keep the shape"):
        parametrize.register_parametrization(nn.Linear(3, 2), "weight", Transposed())


def test_cached_computes_a_parametrization_once():
    calls = []

    class Counting(nn.Module):
        def forward(self, X):
            calls.append(1)
            return X * 1.0

    lin = parametrize.register_parametrization(nn.Linear(3, 3), "weight", Counting())
    calls.clear()
    _ = lin.weight, lin.weight
    assert len(calls) == 2
    calls.clear()
    with parametrize.cached():
        a, b = lin.weight, lin.weight
        assert a is b
    assert len(calls) == 1
    _ = lin.weight
    assert len(calls) == 2  # the cache ends with the block


def test_deepcopy_of_a_parametrized_module_is_independent():
    m = parametrizations.weight_norm(nn.Linear(3, 2))
    c = copy.deepcopy(m)
    parametrize.remove_parametrizations(c, "weight")
    assert type(c) is nn.Linear and parametrize.is_parametrized(m, "weight")
    np.testing.assert_allclose(c.weight.numpy(), m.weight.detach().numpy(), rtol=1e-6)
    m(tg.ones(1, 3))


@pytest.mark.parametrize("fn", [nn.utils.weight_norm, parametrizations.weight_norm,
                                nn.utils.spectral_norm, parametrizations.spectral_norm])
def test_compiled_training_step_matches_eager(fn):
    def build():
        tg.manual_seed(4)
        model = nn.Sequential(fn(nn.Linear(4, 6)), nn.Tanh(), nn.Linear(6, 2))
        return model, tg.optim.SGD(model.parameters(), lr=0.1)

    (eager, eopt), (model, opt) = build(), build()

    def step(model, opt, x, y):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss

    compiled = tg.compile(lambda x, y: step(model, opt, x, y))
    rng = np.random.default_rng(5)
    for _ in range(5):
        x = tg.tensor(rng.standard_normal((8, 4)).astype(np.float32))
        y = tg.tensor(rng.standard_normal((8, 2)).astype(np.float32))
        a, b = step(eager, eopt, x, y), compiled(x, y)
        assert b.item() == pytest.approx(a.item(), rel=1e-5)
        for (k, v), w in zip(eager.state_dict().items(), model.state_dict().values()):
            np.testing.assert_allclose(w.numpy(), v.numpy(), rtol=1e-5, atol=1e-6,
                                       err_msg=k)
    assert compiled.cache_info().variants == 1


# ---------------------------------------------------------------- fusion, skip_init, ...


@pytest.mark.parametrize("kind", ["conv", "conv_transpose", "linear"])
def test_fuse_bn_eval_matches_torch(kind):
    make, tmake, shape = {"conv": LAYERS[1], "conv_transpose": LAYERS[2],
                          "linear": LAYERS[0]}[kind]
    bn, tbn = ((nn.BatchNorm1d, tnn.BatchNorm1d) if kind == "linear" else
               (nn.BatchNorm2d, tnn.BatchNorm2d))
    m, t = pair(make, tmake)
    ch = 4 if kind == "linear" else (3 if kind == "conv" else 2)
    b, tb = pair(lambda: bn(ch), lambda: tbn(ch))
    with torch.no_grad():  # running statistics that are not 0 and 1
        tb.running_mean.uniform_(-1, 1)
        tb.running_var.uniform_(0.5, 2)
        tb.weight.uniform_(0.5, 2)
        tb.bias.uniform_(-1, 1)
    copy_state(b, tb)
    m.eval(), t.eval(), b.eval(), tb.eval()
    if kind == "linear":
        fused, tfused = nn.utils.fuse_linear_bn_eval(m, b), tnn.utils.fuse_linear_bn_eval(t, tb)
    else:
        tr = kind == "conv_transpose"
        fused = nn.utils.fuse_conv_bn_eval(m, b, transpose=tr)
        tfused = tnn.utils.fuse_conv_bn_eval(t, tb, transpose=tr)
    x = np.random.default_rng(6).standard_normal(shape).astype(np.float32)
    close(fused(tg.tensor(x)), tfused(torch.tensor(x)), rtol=1e-4, atol=1e-5)
    close(fused(tg.tensor(x)), b(m(tg.tensor(x))), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="eval mode"):
        nn.utils.fuse_conv_bn_eval(m.train(), b)


def test_skip_init_builds_the_module_without_drawing_random_numbers():
    tg.manual_seed(0)
    expected = tg.rand(3).numpy()
    tg.manual_seed(0)
    lin = nn.utils.skip_init(nn.Linear, 5, 4, bias=False)
    assert type(lin) is nn.Linear and lin.weight.shape == (4, 5) and lin.bias is None
    np.testing.assert_array_equal(tg.rand(3).numpy(), expected)


def test_clip_grad_norm_is_the_deprecated_alias():
    p = nn.Parameter(tg.ones(4))
    p.grad = tg.full((4,), 3.0)
    with pytest.warns(FutureWarning, match="clip_grad_norm_"):
        total = nn.utils.clip_grad_norm(p, 1.0)
    assert total.item() == pytest.approx(6.0)
    np.testing.assert_allclose(np.linalg.norm(p.grad.numpy()), 1.0, rtol=1e-5)


# ---------------------------------------------------------------- functional_call


def test_functional_call_matches_torch_and_gives_gradients():
    m, t = pair(lambda: nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)),
                lambda: tnn.Sequential(tnn.Linear(3, 4), tnn.BatchNorm1d(4), tnn.Linear(4, 2)))
    m.double(), t.double()  # (batch norm's gradient cancels: float32 would blur it)
    rng = np.random.default_rng(7)
    new = {k: rng.standard_normal(v.shape) for k, v in t.named_parameters()}
    new["1.running_mean"] = np.zeros(4)
    ours = {k: tg.tensor(v, requires_grad="running" not in k) for k, v in new.items()}
    theirs = {k: torch.tensor(v, requires_grad="running" not in k) for k, v in new.items()}
    before = {k: v.numpy().copy() for k, v in m.state_dict().items()}
    x = rng.standard_normal((5, 3))
    y = nn.utils.stateless.functional_call(m, ours, (tg.tensor(x),))
    ty = torch.func.functional_call(t, theirs, (torch.tensor(x),))
    close(y, ty)
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    for k in ours:
        if ours[k].requires_grad:
            close(ours[k].grad, theirs[k].grad, err_msg=k)
    # the module's own tensors of the given names are untouched; the given buffer took the
    # running-mean update (as in torch); the running variance, not given, is the module's
    for k in ours:
        np.testing.assert_array_equal(m.state_dict()[k].numpy(), before[k], err_msg=k)
    close(m.state_dict()["1.running_var"], t.state_dict()["1.running_var"])
    close(ours["1.running_mean"], theirs["1.running_mean"])
    assert np.abs(ours["1.running_mean"].numpy()).max() > 0
    assert tg.func.functional_call is nn.utils.stateless.functional_call


def test_functional_call_ties_weights_and_checks_keys():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(2, 2, bias=False)
            self.b = nn.Linear(2, 2, bias=False)
            self.b.weight = self.a.weight

        def forward(self, x):
            return self.b(self.a(x))

    m = Tied()
    eye = {"a.weight": tg.eye(2)}
    x = tg.tensor([[1.0, 2.0]])
    np.testing.assert_allclose(tg.func.functional_call(m, eye, x).numpy(), [[1.0, 2.0]])
    half = tg.func.functional_call(m, eye, x, tie_weights=False).numpy()
    np.testing.assert_allclose(half, m.b(x).detach().numpy(), rtol=1e-6)
    with pytest.raises(RuntimeError, match="missing"):
        tg.func.functional_call(m, eye, x, strict=True)
    with pytest.raises(ValueError, match="no parameter or buffer 'c.weight'"):
        tg.func.functional_call(m, {"c.weight": tg.eye(2)}, x)


@pytest.mark.parametrize("fn, names", [
    (nn.utils.weight_norm, ("weight_g", "weight_v")),
    (parametrizations.weight_norm, ("parametrizations.weight.original0",
                                    "parametrizations.weight.original1")),
    (nn.utils.spectral_norm, ("weight_orig",)),
    (parametrizations.spectral_norm, ("parametrizations.weight.original",)),
])
def test_gradients_through_normalisations_match_finite_differences(fn, names):
    """float64, eval mode (no power iteration: the function is fixed), through
    functional_call so that the originals are the checked inputs."""
    tg.manual_seed(0)
    m = fn(nn.Conv2d(2, 3, 2).double()).eval()
    x = tg.randn(2, 2, 4, 4, dtype=tg.float64)
    state = m.state_dict()
    inputs = [state[n].detach().clone().requires_grad_() for n in names]

    def f(*originals):
        return tg.func.functional_call(m, dict(zip(names, originals)), (x,)).tanh().sum()

    assert tg.autograd.gradcheck(f, inputs)


def test_a_parametrized_buffer_stays_a_buffer_as_in_torch():
    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("scale", tg.ones(3))

    class THolder(tnn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("scale", torch.ones(3))

    m, t = Holder(), THolder()
    parametrize.register_parametrization(m, "scale", Scale())
    tnn.utils.parametrize.register_parametrization(t, "scale", TScale())
    assert list(m.state_dict()) == list(t.state_dict())
    assert list(m.parameters()) == [] and len(list(m.buffers())) == 1
    close(m.scale, t.scale)
    parametrize.remove_parametrizations(m, "scale")
    assert dict(m.named_buffers()).keys() == {"scale"}
