"""tg.nn layers and Module methods against torch.nn: outputs and gradients in float64,
running statistics, state-dict names, containers."""

from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg
from tracegrad import nn

torch = pytest.importorskip("torch")
tnn = torch.nn


def twin(make, dtype=torch.float64):
    """The same layer in both libraries, torch's initial state copied into ours."""
    theirs = make(tnn).to(dtype)
    ours = make(nn)
    if dtype == torch.float64:
        ours.double()
    ours.load_state_dict({k: v.detach().numpy().copy() for k, v in
                          theirs.state_dict().items()})
    return ours, theirs


def compare(ours, theirs, *inputs, grad=True, rtol=1e-10, atol=1e-12):
    """Forward both on the same float64 inputs; compare outputs and the gradients of
    sum(out * w) with respect to inputs and parameters."""
    xs = [tg.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in inputs]
    txs = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in inputs]
    out, tout = ours(*xs), theirs(*txs)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=rtol, atol=atol)
    if not grad:
        return out
    w = np.random.default_rng(1).standard_normal(tout.shape)
    (out * tg.tensor(w)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    for x, tx in zip(xs, txs):
        if tx.requires_grad:
            np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), rtol=1e-9,
                                   atol=1e-11, err_msg=name)
    return out


rng = np.random.default_rng(0)
X = rng.standard_normal((4, 6)) * 3


@pytest.mark.parametrize("make", [
    lambda m: m.LeakyReLU(), lambda m: m.Sequential(m.Linear(6, 6), m.LeakyReLU(0.2, inplace=True)),
    lambda m: m.ELU(),
    lambda m: m.ELU(alpha=0.5), lambda m: m.SiLU(), lambda m: m.Softplus(),
    lambda m: m.Softplus(beta=2.0, threshold=5.0), lambda m: m.Softmax(dim=1),
    lambda m: m.LogSoftmax(dim=0), lambda m: m.Sequential(m.Linear(6, 6), m.ReLU(inplace=True)),
    lambda m: m.Identity(3, a=1),
    lambda m: m.Unflatten(1, (2, 3)), lambda m: m.Sequential(m.Unflatten(1, (3, 2)),
                                                             m.Flatten()),
], ids=["LeakyReLU", "LeakyReLU-0.2", "ELU", "ELU-0.5", "SiLU", "Softplus", "Softplus-beta",
        "Softmax", "LogSoftmax", "ReLU-inplace", "Identity", "Unflatten", "Unflatten-Flatten"])
def test_activation_and_shape_layers(make):
    ours, theirs = twin(make)
    compare(ours, theirs, X)
    assert repr(ours) == repr(theirs)


def _probs(shape, seed):
    return 1 / (1 + np.exp(-np.random.default_rng(seed).standard_normal(shape)))


def _logp(shape, seed):
    return np.log(np.random.default_rng(seed).dirichlet(np.ones(shape[-1]), size=shape[0]))


LOSSES = [
    ("MSELoss", {}, lambda: (X, X[::-1].copy())),
    ("L1Loss", {"reduction": "sum"}, lambda: (X, X[::-1].copy())),
    ("SmoothL1Loss", {"beta": 0.5}, lambda: (X, X[::-1].copy())),
    ("HuberLoss", {"delta": 2.0, "reduction": "none"}, lambda: (X, X[::-1].copy())),
    ("CrossEntropyLoss", {}, lambda: (X, np.array([0, 5, 2, 1]))),
    ("CrossEntropyLoss", {"label_smoothing": 0.1, "weight": None}, lambda: (X, np.array(
        [0, 5, 2, 1]))),
    ("NLLLoss", {"ignore_index": 2}, lambda: (_logp((4, 6), 3), np.array([0, 5, 2, 1]))),
    ("BCELoss", {}, lambda: (_probs((4, 6), 4), _probs((4, 6), 5))),
    ("BCEWithLogitsLoss", {}, lambda: (X, _probs((4, 6), 5))),
    ("KLDivLoss", {"reduction": "batchmean"}, lambda: (_logp((4, 6), 6),
                                                      np.exp(_logp((4, 6), 7)))),
    ("KLDivLoss", {"reduction": "sum", "log_target": True}, lambda: (_logp((4, 6), 6),
                                                                     _logp((4, 6), 7))),
]


@pytest.mark.parametrize("name, kw, data", LOSSES, ids=[f"{n}-{i}" for i, (n, _, _) in
                                                        enumerate(LOSSES)])
def test_loss_modules(name, kw, data):
    ours, theirs = getattr(nn, name)(**kw), getattr(tnn, name)(**kw)
    x, y = data()
    xt, tx = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, tout = ours(xt, tg.tensor(y)), theirs(tx, torch.tensor(y))
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(xt.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    assert repr(ours) == repr(theirs)


# ---------------------------------------------------------------- normalization


@pytest.mark.parametrize("name, shape", [("BatchNorm1d", (8, 3)), ("BatchNorm1d", (8, 3, 5)),
                                         ("BatchNorm2d", (4, 3, 5, 6))])
@pytest.mark.parametrize("kw", [dict(), dict(momentum=0.3, eps=1e-3), dict(momentum=None),
                                dict(affine=False), dict(track_running_stats=False)],
                         ids=["default", "momentum-eps", "cumulative", "no-affine",
                              "no-running-stats"])
def test_batchnorm_matches_torch(name, shape, kw):
    ours, theirs = twin(lambda m: getattr(m, name)(3, **kw))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    g = np.random.default_rng(2)
    if kw.get("affine", True):  # non-trivial affine parameters
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(g.standard_normal(3)))
            theirs.bias.copy_(torch.tensor(g.standard_normal(3)))
        ours.load_state_dict({k: v.detach().numpy().copy() for k, v in
                              theirs.state_dict().items()})
    for step in range(3):  # training: batch statistics, running statistics updated
        x = g.standard_normal(shape) * (step + 1) + step
        for p in ours.parameters():
            p.grad = None
        theirs.zero_grad()
        compare(ours, theirs, x)
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k].numpy(), v.numpy(), rtol=1e-12,
                                   err_msg=k)
    ours.eval()
    theirs.eval()
    compare(ours, theirs, g.standard_normal(shape), grad=False)
    assert repr(ours) == repr(theirs)


def test_batchnorm_names_the_expected_shape():
    with pytest.raises(tg.ShapeError, match=r"BatchNorm2d\(3\): expects input \(N, 3, H, W\), "
                                            r"got \(2, 3\)"):
        nn.BatchNorm2d(3)(tg.ones(2, 3))
    with pytest.raises(RuntimeError, match=r"BatchNorm1d\(4\)"):  # also a RuntimeError
        nn.BatchNorm1d(4)(tg.ones(2, 3))


@pytest.mark.parametrize("groups, affine", [(1, True), (3, True), (6, False)])
def test_group_norm(groups, affine):
    ours, theirs = twin(lambda m: m.GroupNorm(groups, 6, affine=affine))
    if affine:
        with torch.no_grad():
            theirs.weight.normal_()
            theirs.bias.normal_()
        ours.load_state_dict({k: v.numpy().copy() for k, v in theirs.state_dict().items()})
    compare(ours, theirs, np.random.default_rng(3).standard_normal((2, 6, 4, 3)))
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("make, shape", [
    (lambda m: m.AdaptiveAvgPool2d(1), (2, 3, 6, 8)),
    (lambda m: m.AdaptiveAvgPool2d((2, 4)), (2, 3, 6, 8)),
    (lambda m: m.AdaptiveAvgPool2d((3, None)), (2, 3, 7, 5)),
    (lambda m: m.AdaptiveAvgPool2d(4), (3, 7, 9)),
    (lambda m: m.AvgPool2d(2), (2, 3, 6, 8)),
    (lambda m: m.AvgPool2d(3, stride=2, padding=1), (2, 3, 7, 8)),
], ids=["global", "divides", "keep-width", "uneven-unbatched", "avg2", "avg-pad"])
def test_pooling(make, shape):
    ours, theirs = twin(make)
    compare(ours, theirs, np.random.default_rng(4).standard_normal(shape))
    assert repr(ours) == repr(theirs)


def test_cosine_similarity_module():
    ours, theirs = twin(lambda m: m.CosineSimilarity(dim=-1))
    g = np.random.default_rng(5)
    compare(ours, theirs, g.standard_normal((3, 4)), g.standard_normal((3, 4)))


# ---------------------------------------------------------------- containers


def make_net(m):
    class Net(m.Module):
        def __init__(self):
            super().__init__()
            self.heads = m.ModuleDict({"cls": m.Linear(4, 3), "box": m.Linear(4, 2)})
            self.scales = m.ParameterList([m.Parameter(torch.ones(3) if m is tnn else
                                                       tg.ones(3)) for _ in range(2)])
            self.extra = m.ParameterDict({"shift": m.Parameter(torch.zeros(2) if m is tnn
                                                               else tg.zeros(2))})
            self.register_buffer("scratch", torch.zeros(1) if m is tnn else tg.zeros(1),
                                 persistent=False)

        def forward(self, x):
            a = self.heads["cls"](x) * self.scales[0] * self.scales[1]
            b = self.heads["box"](x) + self.extra["shift"]
            return (a.sum(1) + b.sum(1)).sum()

    return Net()


def test_containers_register_like_torch():
    ours, theirs = twin(make_net)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert "scratch" not in ours.state_dict() and [n for n, _ in ours.named_buffers()] == \
        ["scratch"]
    with torch.no_grad():
        for p in theirs.parameters():
            p.normal_()
    ours.load_state_dict({k: v.numpy().copy() for k, v in theirs.state_dict().items()})
    compare(ours, theirs, np.random.default_rng(6).standard_normal((5, 4)))
    d = ours.heads
    assert list(d) == ["cls", "box"] and "cls" in d and len(d) == 2
    assert [k for k, _ in d.items()] == list(d.keys())
    d["new"] = nn.Identity()
    assert "heads.new" not in ours.state_dict() and len(d) == 3
    del d["new"]
    pl = ours.scales
    pl.append(tg.ones(3))  # a plain tensor becomes a Parameter, as in torch
    assert isinstance(pl[2], nn.Parameter) and pl[2].requires_grad and len(pl) == 3
    assert "scales.2" in ours.state_dict()
    assert isinstance(pl[0:2], nn.ParameterList) and len(pl[0:2]) == 2
    with pytest.raises(TypeError, match="ModuleDict: 'bad' must be a Module"):
        d["bad"] = 3
    assert "ParameterList(" in repr(ours) and "(0): Parameter containing: [tg.float64 of " \
        "size 3]" in repr(ours)


def test_register_buffer_checks_like_torch():
    m, tm = nn.Linear(2, 2), tnn.Linear(2, 2)
    for bad in ("a.b", ""):
        with pytest.raises(KeyError):
            m.register_buffer(bad, tg.zeros(1))
        with pytest.raises(KeyError):
            tm.register_buffer(bad, torch.zeros(1))
    with pytest.raises(KeyError, match="already has an attribute 'weight'"):
        m.register_buffer("weight", tg.zeros(1))
    with pytest.raises(KeyError):
        tm.register_buffer("weight", torch.zeros(1))
    m.register_buffer("b", tg.zeros(1), persistent=False)
    m.register_buffer("b", tg.ones(1))  # registering again, persistent: now saved
    tm.register_buffer("b", torch.zeros(1), persistent=False)
    tm.register_buffer("b", torch.ones(1))
    assert list(m.state_dict()) == list(tm.state_dict())


# ---------------------------------------------------------------- Module methods


def test_module_methods_match_torch():
    ours, theirs = twin(lambda m: m.Sequential(m.Linear(3, 4), m.ReLU(),
                                               m.Sequential(m.Linear(4, 2), m.Tanh())))
    assert [type(c).__name__ for c in ours.children()] == \
        [type(c).__name__ for c in theirs.children()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    seen, tseen = [], []
    ours.apply(lambda m: seen.append(type(m).__name__))
    theirs.apply(lambda m: tseen.append(type(m).__name__))
    assert seen == tseen  # children first, then the module itself

    def init(m):
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.weight, 0.5)

    assert ours.apply(init) is ours
    assert all((m.weight.numpy() == 0.5).all() for m in ours.modules()
               if isinstance(m, nn.Linear))

    assert ours.requires_grad_(False) is ours
    assert not any(p.requires_grad for p in ours.parameters())
    ours.requires_grad_()
    x = tg.tensor(np.ones((2, 3)))
    ours(x).sum().backward()
    ours.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in ours.parameters())
    ours.zero_grad()
    assert all(p.grad is None for p in ours.parameters())

    assert ours.half() is ours and all(p.dtype == tg.float16 for p in ours.parameters())
    assert ours(tg.ones(2, 3, dtype=tg.float16)).dtype == tg.float16
    ours.double()
    assert all(p.dtype == tg.float64 for p in ours.parameters())
    ours.float()
    assert all(p.dtype == tg.float32 for p in ours.parameters())


@pytest.mark.parametrize("name", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4), (2, 3, 4, 5)])
def test_softmax_without_dim_picks_torchs_dimension(name, shape):
    ours, theirs = getattr(nn, name)(), getattr(tnn, name)()
    assert repr(ours) == repr(theirs) == f"{name}(dim=None)"
    x = np.random.default_rng(7).standard_normal(shape)
    with pytest.warns(UserWarning, match="without dim picks dim="):
        out = ours(tg.tensor(x))
    with pytest.warns(UserWarning):
        tout = theirs(torch.tensor(x))
    np.testing.assert_allclose(out.numpy(), tout.numpy(), rtol=1e-12, atol=1e-14)
