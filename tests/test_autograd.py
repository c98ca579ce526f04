"""Tests of tracegrad's autograd on tensors, as PyTorch users rely on it: backward and its
arguments, gradient accumulation, grad modes (thread-local), detach, in-place rules,
higher-order and functional gradients, anomaly detection, and memory over long runs.
"""

from __future__ import annotations

import gc
import importlib
import inspect
import threading
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracegrad as tg


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


# --------------------------------------------------------------------------------------
# backward()


def test_backward_of_scalar_matches_torch(torch):
    a = np.array([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7]])
    x = tg.tensor(a, requires_grad=True)
    ((x.tanh() * x.exp()).sum(dim=1) ** 2).mean().backward()
    t = torch.tensor(a, requires_grad=True)
    ((t.tanh() * t.exp()).sum(dim=1) ** 2).mean().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12)
    assert x.grad.dtype == tg.float64 and x.grad.shape == (2, 3)


def test_backward_with_gradient_for_non_scalars(torch):
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    (x * x).backward(gradient=tg.tensor([1.0, 10.0]))
    assert x.grad.tolist() == [2.0, 40.0]
    x = tg.tensor([[1.0, 2.0]], requires_grad=True)
    (x * 3).backward(gradient=[[1.0, -1.0]])  # lists are accepted too
    assert x.grad.tolist() == [[3.0, -3.0]]
    x = tg.tensor(3.0, requires_grad=True)
    (x * x).backward(gradient=2.0)
    assert x.grad.item() == 12.0
    tx = torch.tensor(3.0, requires_grad=True)
    (tx * tx).backward(gradient=torch.tensor(2.0))
    assert tx.grad.item() == 12.0


def test_backward_of_non_scalar_without_gradient_raises():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"one-element.*\(2,\).*gradient="):
        (x * x).backward()
    assert x.grad is None
    (x * x)[0:1].backward()  # one element, any shape, is fine
    assert x.grad.tolist() == [2.0, 0.0]


def test_backward_gradient_shape_mismatch_raises():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(tg.ShapeError, match=r"gradient has shape \(3,\).*\(2,\)"):
        (x * x).backward(gradient=tg.tensor([1.0, 1.0, 1.0]))


def test_backward_without_graph_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.tensor([1.0]).sum().backward()
    x = tg.tensor([1.0], requires_grad=True)
    with tg.no_grad():
        y = (x * 2).sum()
    with pytest.raises(RuntimeError, match="no_grad"):
        y.backward()


def test_second_backward_raises_and_retain_graph_allows_it():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()
    assert x.grad.tolist() == [2.0, 4.0]  # the failed call added nothing
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [6.0, 12.0]
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_second_backward_through_a_shared_subgraph_raises():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    h = x.exp()
    h.sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        (h * 2).sum().backward()


def test_gradients_accumulate_across_backward_calls(torch):
    x = tg.tensor([1.0, -2.0], requires_grad=True)
    tx = torch.tensor([1.0, -2.0], requires_grad=True)
    for k in range(1, 4):
        (x * x * k).sum().backward()
        (tx * tx * k).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())
    assert x.grad.tolist() == [12.0, -24.0]
    x.grad = None
    (x * 1).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


def test_fan_out_and_reused_leaves(torch):
    x = tg.tensor(2.0, requires_grad=True)
    a = x * 3
    b = a * a + a + x  # 9x^2 + 4x
    b.backward()
    assert x.grad.item() == 40.0
    x = tg.tensor([0.3, -0.4], requires_grad=True)
    h = x.tanh()
    out = (h * h + h.exp() * h + h.sigmoid()).sum()
    out.backward()
    tx = torch.tensor([0.3, -0.4], requires_grad=True)
    th = tx.tanh()
    (th * th + th.exp() * th + th.sigmoid()).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6)


def test_grad_of_leaf_used_with_broadcasting_keeps_leaf_shape():
    b = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x = tg.ones(4, 3)
    (x + b).sum().backward()
    assert b.grad.shape == (3,) and b.grad.tolist() == [4.0, 4.0, 4.0]


def test_only_leaves_requiring_grad_get_grad():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    c = tg.tensor([3.0, 4.0])
    y = x * c
    z = y.sum()
    z.backward()
    assert c.grad is None and y.grad is None and z.grad is None
    assert x.grad.tolist() == [3.0, 4.0]


def test_leaves_never_share_gradient_memory():
    # add hands the same gradient to both operands; a backward pass adopts freshly computed
    # arrays as .grad instead of copying them, but never one array for two leaves.
    a = tg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    b = tg.tensor([[5.0, 6.0], [7.0, 8.0]], requires_grad=True)
    c = tg.tensor([1.0, -1.0], requires_grad=True)
    ((a + b) * 2 + c).sum().backward()
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    a.grad.mul_(10.0)  # what clip_grad_norm_ does
    assert b.grad.tolist() == [[2.0, 2.0], [2.0, 2.0]] and c.grad.tolist() == [2.0, 2.0]
    assert a.grad.tolist() == [[20.0, 20.0], [20.0, 20.0]]
    # The seed of a non-scalar backward is the user's array: never adopted.
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    seed = tg.tensor([3.0, 4.0])
    (x + 0.0).backward(seed)
    x.grad.zero_()
    assert seed.tolist() == [3.0, 4.0]


@pytest.fixture
def in_place_always(monkeypatch):
    """Unary rules write into owned gradients of any size (by default only large ones)."""
    monkeypatch.setattr(importlib.import_module("tracegrad.node"), "_IN_PLACE_MIN_SIZE", 0)


@pytest.mark.usefixtures("in_place_always")
def test_gradients_multiplied_in_place_never_reach_a_sibling(torch):
    # A unary rule multiplies its incoming gradient in place when no one else holds it. add
    # hands one array to both operands: after a relu on one side, the other side must still
    # see the unmasked gradient; and a chain of unary ops reuses one array all the way.
    rng = np.random.default_rng(0)
    a_np, b_np, w_np = (rng.normal(size=(3, 4)) for _ in range(3))
    a, b = tg.tensor(a_np, requires_grad=True), tg.tensor(b_np, requires_grad=True)
    w = tg.tensor(w_np)
    ((a.relu() + b.tanh()) * w).sum().backward()  # (g * w is new memory: owned)
    ((a.exp().sigmoid().relu() + (-a).relu()) * w).sum().backward()
    ta, tb = (torch.tensor(v, requires_grad=True) for v in (a_np, b_np))
    tw = torch.tensor(w_np)
    ((ta.relu() + tb.tanh()) * tw).sum().backward()
    ((ta.exp().sigmoid().relu() + (-ta).relu()) * tw).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), rtol=1e-12)


def test_which_unary_rules_write_into_their_gradient():
    from tracegrad.ops import PRIMITIVES

    # declared ("into_g"); tests/test_op_facts.py checks each declaration against its rule
    assert {n for n, p in PRIMITIVES.items() if p.in_place} == \
        {"neg", "exp", "log", "sqrt", "tanh", "relu", "normal_cdf_tanh", "tan", "asin", "acos",
         "atan", "asinh", "acosh", "atanh"}


# Random programs: the first-order backward (bare arrays, gradients multiplied in place where
# no one else holds them, leaves adopting fresh arrays) against the recorded backward
# (create_graph=True: tensors, nothing in place) and PyTorch. Operands are drawn from a pool
# of earlier results, so values fan out to several consumers, as residual connections do.

# name -> op(lib, a, b) on (3, 4) operands, giving a (3, 4) result
_PROGRAM_OPS = {
    "relu": lambda lib, a, b: a.relu(),
    "tanh": lambda lib, a, b: a.tanh(),
    "sigmoid": lambda lib, a, b: a.sigmoid(),
    "neg": lambda lib, a, b: -a,
    "exp_tanh": lambda lib, a, b: a.tanh().exp(),
    "gelu_tanh": lambda lib, a, b: lib.nn.functional.gelu(a, approximate="tanh"),
    "square": lambda lib, a, b: a * a,
    "add": lambda lib, a, b: a + b,
    "sub": lambda lib, a, b: a - b,
    "mul": lambda lib, a, b: a * b,
    "transpose": lambda lib, a, b: a.transpose(0, 1).transpose(0, 1) * 1.5,
    "reshape": lambda lib, a, b: a.reshape(12).reshape(3, 4).relu(),
    "cat_halves": lambda lib, a, b: lib.cat([a[:, :2].tanh(), a[:, 2:]], 1),
    "sum_expand": lambda lib, a, b: a.sum(1, keepdim=True).expand(3, 4) + a,
    "branches": lambda lib, a, b: a.relu() + b.sigmoid(),  # one gradient, two unary rules
}


def _run_program(lib, leaves, program, weights):
    pool = list(leaves)
    for op, i, j in program:
        pool.append(_PROGRAM_OPS[op](lib, pool[i % len(pool)], pool[j % len(pool)]))
    return sum((t * w).sum() for t, w in zip(pool[-3:], weights))


def _grad_or_zero(x):
    return x.grad.numpy() if x.grad is not None else np.zeros(tuple(x.shape))


@st.composite
def _programs(draw):
    return [(draw(st.sampled_from(sorted(_PROGRAM_OPS))), draw(st.integers(0, 20)),
             draw(st.integers(0, 20))) for _ in range(draw(st.integers(1, 10)))]


@pytest.mark.usefixtures("in_place_always")
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(program=_programs(), seed=st.integers(0, 2**16))
def test_random_programs_first_order_gradients(torch, program, seed):
    rng = np.random.default_rng(seed)
    values = [rng.normal(size=(3, 4)) for _ in range(2)]
    weights = [rng.normal(size=(3, 4)) for _ in range(3)]
    grads = []
    for create_graph in (False, True):
        leaves = [tg.tensor(v, requires_grad=True) for v in values]
        _run_program(tg, leaves, program, [tg.tensor(w) for w in weights]).backward(
            create_graph=create_graph)
        grads.append([_grad_or_zero(x) for x in leaves])
    leaves = [torch.tensor(v, requires_grad=True) for v in values]
    _run_program(torch, leaves, program, [torch.tensor(w) for w in weights]).backward()
    for first, recorded, want in zip(*grads, [_grad_or_zero(x) for x in leaves]):
        np.testing.assert_allclose(first, recorded, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(first, want, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------------------
# The engine's walk down chains (Tensor._chain, see autograd._propagate)

_LINKS = {  # name -> one link y -> f(y) of a chain; k is a constant of y's shape, w a leaf
    "mul": lambda lib, y, k, w: y * k,
    "add": lambda lib, y, k, w: y + k,
    "sub": lambda lib, y, k, w: y - k,
    "div": lambda lib, y, k, w: y / (k.abs() + 1),
    "rsub": lambda lib, y, k, w: k - y,  # the chain's value second
    "tanh": lambda lib, y, k, w: y.tanh(),
    "exp": lambda lib, y, k, w: (y * 0.1).exp(),
    "relu": lambda lib, y, k, w: y.relu() + 0.5,
    "neg": lambda lib, y, k, w: -y,
    "sigmoid": lambda lib, y, k, w: y.sigmoid(),
    "broadcast": lambda lib, y, k, w: y * k[:1],  # a (1,) constant
    "scalar": lambda lib, y, k, w: y * 0.9 + 0.1,  # 0-d constants
    "fan_out": lambda lib, y, k, w: y * k + y.sum() * 0.01,  # y read twice
    "square": lambda lib, y, k, w: y * y,
    "leaf": lambda lib, y, k, w: y * w,  # a second input that requires grad
}


def _run_chain(lib, x, k, w, links):
    y = x
    for name in links:
        y = _LINKS[name](lib, y, k, w)
    return (y * k).sum()


def _no_walk(monkeypatch):
    monkeypatch.setattr(tg.Tensor, "_chain", lambda self, g, free, hooks=None: (self, g))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(links=st.lists(st.sampled_from(sorted(_LINKS)), min_size=1, max_size=25),
       dtype=st.sampled_from(["float32", "float64"]), seed=st.integers(0, 2**16))
def test_chain_walk_gives_the_general_steps_gradients(torch, monkeypatch, links, dtype, seed):
    # The walk runs each node's rule as the general step does: the same numbers, bit for
    # bit, as with the walk turned off, and PyTorch's.
    rng = np.random.default_rng(seed)
    x_np, k_np, w_np = (rng.uniform(-1, 1, size=(5,)).astype(dtype) for _ in range(3))
    grads = []
    for walk in (True, False):
        with monkeypatch.context() as m:
            if not walk:
                _no_walk(m)
            x, w = tg.tensor(x_np, requires_grad=True), tg.tensor(w_np, requires_grad=True)
            _run_chain(tg, x, tg.tensor(k_np), w, links).backward()
            grads.append([_grad_or_zero(x), _grad_or_zero(w)])
    x, w = torch.tensor(x_np, requires_grad=True), torch.tensor(w_np, requires_grad=True)
    _run_chain(torch, x, torch.tensor(k_np), w, links).backward()
    want = [_grad_or_zero(x), _grad_or_zero(w)]
    for walked, stepped, theirs in zip(*grads, want):
        np.testing.assert_array_equal(walked, stepped)
        np.testing.assert_allclose(walked, theirs, rtol=1e-4 if dtype == "float32" else 1e-10,
                                   atol=1e-5 if dtype == "float32" else 1e-12)


def test_chain_walk_spares_the_engine_a_step_per_node(monkeypatch):
    # What the walk is for: a 600-node chain takes the engine's general step (and `_vjp`)
    # at its ends only, not per node.
    calls = []
    vjp = tg.Tensor._vjp
    monkeypatch.setattr(tg.Tensor, "_vjp", lambda self, *a: calls.append(1) or vjp(self, *a))
    x = tg.tensor([0.5, -0.3, 0.8], requires_grad=True)
    c, d = tg.tensor([0.99, 1.01, 1.0]), tg.tensor([0.01, -0.02, 0.0])
    y = x
    for _ in range(200):
        y = (y * c + d).tanh()
    y.sum().backward()
    assert len(calls) <= 3
    # the gradient, by hand: d tanh(u) = 1 - tanh(u)^2, times c, link by link
    g, t = np.ones(3), np.array([0.5, -0.3, 0.8])
    ts = []
    for _ in range(200):
        t = np.tanh(t * c.numpy() + d.numpy())
        ts.append(t)
    for t in reversed(ts):
        g = g * (1 - t * t) * c.numpy()
    np.testing.assert_allclose(x.grad.numpy(), g, rtol=1e-4)


@pytest.mark.parametrize("changed", ["intermediate", "constant", "leaf", "sum input"])
def test_chain_walk_refuses_a_value_changed_in_place_as_the_general_step(monkeypatch, changed):
    messages = []
    for walk in (True, False):
        with monkeypatch.context() as m:
            if not walk:
                _no_walk(m)
            x = tg.tensor([0.5, -0.3, 0.8], requires_grad=True)
            c = tg.tensor([2.0, 3.0, 4.0])
            y1 = x * c
            y2 = y1.tanh()
            y3 = y2 + c
            y4 = y3 * 1.5
            with tg.no_grad():
                {"intermediate": y2, "constant": c, "leaf": x, "sum input": y3}[changed].add_(1)
            with pytest.raises(RuntimeError) as info:
                (y4 * 1.0).sum().backward()
            messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert "changed in place" in messages[0]


def test_chain_walk_with_retain_graph_hooks_and_a_second_backward():
    x = tg.tensor([0.5, -0.3], requires_grad=True)
    c = tg.tensor([2.0, 3.0])
    mid = (x * c).tanh()
    y = (mid * c + 1).tanh() * c
    seen = []
    y.sum().backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.sum().backward(retain_graph=True)
    np.testing.assert_allclose(x.grad.numpy(), 2 * first, rtol=1e-6)
    mid.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 0)  # a hook mid-chain
    x.grad = None
    y.sum().backward()
    assert len(seen) == 1 and np.abs(seen[0]).sum() > 0
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])  # the hook's zeros went on
    with pytest.raises(RuntimeError, match="second time"):
        y.sum().backward()


_COMPOSITES = {  # name -> f(lib, x, w) on x (2, 3, 6, 6), w (4, 3, 3, 3), a scalar out
    "gelu+layer_norm": lambda lib, x, w: lib.nn.functional.layer_norm(
        lib.nn.functional.gelu(x), (6,)).sum() * 0.5,
    "conv2d+relu+pool": lambda lib, x, w: lib.nn.functional.max_pool2d(
        lib.nn.functional.conv2d(x, w, padding=1).relu(), 2).sum(),
    "softmax*log": lambda lib, x, w: (lib.softmax(x, 1) * x.exp().sqrt().log()).sum(),
    "silu+softplus": lambda lib, x, w: (lib.nn.functional.silu(x) * lib.nn.functional.softplus(
        -x)).sum(),
    "cross_entropy": lambda lib, x, w: lib.nn.functional.cross_entropy(
        x.reshape(12, 18).tanh() * 3, lib.tensor([i % 18 for i in range(12)])),
    "mse+neg": lambda lib, x, w: lib.nn.functional.mse_loss(-x.tanh(), x * 0.5),
}


@pytest.mark.usefixtures("in_place_always")
@pytest.mark.parametrize("name", sorted(_COMPOSITES))
def test_composites_first_order_gradients_with_in_place_rules(torch, name):
    # Every unary rule that can writes into its gradient here, whatever the size.
    rng = np.random.default_rng(1)
    x_np, w_np = rng.normal(size=(2, 3, 6, 6)), rng.normal(size=(4, 3, 3, 3)) * 0.3
    grads = []
    for create_graph in (False, True):
        x, w = tg.tensor(x_np, requires_grad=True), tg.tensor(w_np, requires_grad=True)
        _COMPOSITES[name](tg, x, w).backward(create_graph=create_graph)
        grads.append([_grad_or_zero(x), _grad_or_zero(w)])
    x, w = torch.tensor(x_np, requires_grad=True), torch.tensor(w_np, requires_grad=True)
    _COMPOSITES[name](torch, x, w).backward()
    for first, recorded, want in zip(*grads, [_grad_or_zero(x), _grad_or_zero(w)]):
        np.testing.assert_allclose(first, recorded, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(first, want, rtol=1e-9, atol=1e-11)


def test_linear_weight_gradient_is_c_ordered_and_right(torch):
    rng = np.random.default_rng(0)
    xs, ws = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    x, w = tg.tensor(xs), tg.tensor(ws, requires_grad=True)
    (x @ w.T).tanh().sum().backward()
    assert w.grad.numpy().flags.c_contiguous
    tw = torch.tensor(ws, requires_grad=True)
    (torch.tensor(xs) @ tw.T).tanh().sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-12)


def test_grad_dtype_follows_the_leaf():
    x = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
    (x.to(tg.float32) * 2).sum().backward()
    assert x.grad.dtype == tg.float64 and x.grad.tolist() == [2.0, 2.0]


# --------------------------------------------------------------------------------------
# Grad mode


def test_no_grad_and_enable_grad_context_managers():
    x = tg.tensor([1.0], requires_grad=True)
    assert tg.is_grad_enabled()
    with tg.no_grad():
        assert not tg.is_grad_enabled()
        y = x * 2
        assert not y.requires_grad and y.grad_fn is None
        with tg.enable_grad():
            assert tg.is_grad_enabled()
            assert (x * 2).requires_grad
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()
    with pytest.raises(ValueError):
        with tg.no_grad():
            raise ValueError("boom")
    assert tg.is_grad_enabled()  # restored after an exception


def test_no_grad_and_enable_grad_as_decorators():
    x = tg.tensor([1.0], requires_grad=True)

    @tg.no_grad()
    def f(t):
        return t * 2

    @tg.enable_grad()
    def g(t):
        return t * 2

    assert not f(x).requires_grad
    with tg.no_grad():
        assert g(x).requires_grad
    assert f.__name__ == "f"
    assert tg.is_grad_enabled()


def test_no_grad_as_bare_decorator():
    @tg.no_grad
    def f(t):
        return t * 2

    assert not f(tg.tensor([1.0], requires_grad=True)).requires_grad


def test_set_grad_enabled():
    try:
        tg.set_grad_enabled(False)
        assert not (tg.tensor([1.0], requires_grad=True) * 2).requires_grad
    finally:
        tg.set_grad_enabled(True)
    assert tg.is_grad_enabled()


def test_set_grad_enabled_as_a_statement_sets_the_mode_at_once():
    x = tg.tensor([1.0], requires_grad=True)
    try:
        tg.set_grad_enabled(False)  # no `with`: the mode is set and stays set
        assert tg.is_grad_enabled() is False
        y = x * 2
        assert not y.requires_grad and y.grad_fn is None
        tg.set_grad_enabled(True)
        assert tg.is_grad_enabled() is True
        assert (x * 2).requires_grad
    finally:
        tg.set_grad_enabled(True)
    assert tg.is_grad_enabled() is True


def test_set_grad_enabled_as_a_context_manager():
    x = tg.tensor([1.0], requires_grad=True)
    with tg.set_grad_enabled(False):
        assert tg.is_grad_enabled() is False
        assert not (x * 2).requires_grad
    assert tg.is_grad_enabled() is True
    with tg.set_grad_enabled(True):
        assert tg.is_grad_enabled() is True
    assert tg.is_grad_enabled() is True
    with tg.no_grad():
        with tg.set_grad_enabled(True):
            assert tg.is_grad_enabled() is True
            y = x * 3
            assert y.requires_grad
        assert tg.is_grad_enabled() is False  # back to the mode it was made under
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0])
    with pytest.raises(ValueError, match="boom"):
        with tg.set_grad_enabled(False):
            assert tg.is_grad_enabled() is False
            raise ValueError("boom")
    assert tg.is_grad_enabled() is True  # restored after an exception


def test_set_grad_enabled_as_a_decorator():
    x = tg.tensor([2.0], requires_grad=True)

    @tg.set_grad_enabled(False)
    def frozen(t):
        return t * 2, tg.is_grad_enabled()

    assert tg.is_grad_enabled() is True  # defining it does not change the mode
    y, mode = frozen(x)
    assert mode is False and not y.requires_grad
    np.testing.assert_array_equal(y.numpy(), [4.0])
    assert tg.is_grad_enabled() is True
    assert frozen.__name__ == "frozen"

    @tg.set_grad_enabled(True)
    def recording(t):
        return t * 5

    with tg.no_grad():
        z = recording(x)
        assert tg.is_grad_enabled() is False
    assert z.requires_grad
    z.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [5.0])


def test_no_grad_decorated_generator_body_has_no_graph_but_the_caller_does():
    x = tg.tensor([1.0, 2.0], requires_grad=True)

    @tg.no_grad()
    def doubles(n):
        total = 0.0
        for _ in range(n):
            y = x * 2
            sent = yield y, tg.is_grad_enabled()
            total += sent or 0.0
        return total

    assert inspect.isgeneratorfunction(doubles)
    gen = doubles(3)
    y, mode = next(gen)
    assert mode is False and not y.requires_grad and y.grad_fn is None
    np.testing.assert_array_equal(y.numpy(), [2.0, 4.0])
    # between resumptions the caller is back in grad mode and records a graph
    assert tg.is_grad_enabled() is True
    w = x * 3
    assert w.requires_grad
    y, mode = gen.send(10.0)
    assert mode is False and not y.requires_grad
    assert tg.is_grad_enabled() is True
    y, mode = gen.send(5.0)
    assert mode is False
    with pytest.raises(StopIteration) as stop:
        gen.send(1.0)
    assert stop.value.value == 16.0
    assert tg.is_grad_enabled() is True
    w.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])

    @tg.no_grad
    def bare():
        yield tg.is_grad_enabled()

    assert list(bare()) == [False] and tg.is_grad_enabled() is True


def test_enable_grad_decorated_generator_under_outer_no_grad():
    x = tg.tensor([3.0], requires_grad=True)

    @tg.enable_grad()
    def squares():
        yield x * x, tg.is_grad_enabled()
        yield x * x * x, tg.is_grad_enabled()

    with tg.no_grad():
        gen = squares()
        sq, mode = next(gen)
        assert mode is True and sq.requires_grad
        assert tg.is_grad_enabled() is False  # the caller keeps its no_grad
        assert not (x * 2).requires_grad
        cube, mode = next(gen)
        assert mode is True and cube.requires_grad
        assert tg.is_grad_enabled() is False
        assert next(gen, None) is None
    assert tg.is_grad_enabled() is True
    sq.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [6.0])  # d(x^2)/dx at 3


def test_decorated_generator_throw_and_close_run_in_the_mode():
    seen = []

    @tg.set_grad_enabled(False)
    def body():
        try:
            yield 1
        except KeyError:
            seen.append(("caught", tg.is_grad_enabled()))
            yield 2
        finally:
            seen.append(("finally", tg.is_grad_enabled()))

    assert tg.is_grad_enabled() is True
    gen = body()
    assert next(gen) == 1
    assert gen.throw(KeyError("k")) == 2
    assert tg.is_grad_enabled() is True
    gen.close()
    assert tg.is_grad_enabled() is True
    assert seen == [("caught", False), ("finally", False)]

    gen = body()
    next(gen)
    with pytest.raises(ValueError, match="out"):
        gen.throw(ValueError("out"))  # not caught by the body: reaches the caller
    assert tg.is_grad_enabled() is True
    assert seen[-1] == ("finally", False)


def test_grad_mode_is_thread_local():
    off = tg.autograd.off_threads[0]
    inside = threading.Event()
    checked = threading.Event()
    seen = {}

    def in_no_grad():
        with tg.no_grad():
            inside.set()
            checked.wait(5)
            seen["worker"] = tg.is_grad_enabled()
            seen["worker records"] = (tg.tensor([1.0], requires_grad=True) * 2).requires_grad

    def other():
        inside.wait(5)
        seen["other"] = tg.is_grad_enabled()
        seen["records"] = (tg.tensor([1.0], requires_grad=True) * 2).requires_grad
        checked.set()

    threads = [threading.Thread(target=in_no_grad), threading.Thread(target=other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == {"worker": False, "worker records": False, "other": True, "records": True}
    assert tg.is_grad_enabled()
    # (ops read a count of the threads with grad mode off before the thread-local)
    assert tg.autograd.off_threads[0] == off
    # and a no_grad block in this thread does not reach a new thread
    with tg.no_grad():
        t = threading.Thread(target=lambda: seen.__setitem__("new", tg.is_grad_enabled()))
        t.start()
        t.join(10)
    assert seen["new"] is True


def test_comparisons_have_no_gradient():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    m = x > 1.5
    assert m.dtype == tg.bool and not m.requires_grad
    assert x.argmax().requires_grad is False


# --------------------------------------------------------------------------------------
# detach, requires_grad_


def test_detach_shares_data_and_has_no_graph():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    d = y.detach()
    assert not d.requires_grad and d.is_leaf and d.grad_fn is None
    assert np.shares_memory(d.numpy(), y.numpy())
    z = (d * x).sum()
    z.backward()
    assert x.grad.tolist() == [3.0, 6.0]  # d is a constant


def test_inplace_on_detached_alias_is_detected():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (w * w).sum()
    d = w.detach()
    d += 1
    with pytest.raises(RuntimeError, match="in place"):
        y.backward()


def test_requires_grad_():
    w = tg.tensor([1.0, 2.0])
    assert w.requires_grad_() is w and w.requires_grad
    (w * w).sum().backward()
    assert w.grad.tolist() == [2.0, 4.0]
    w.requires_grad_(False)
    assert not (w * 2).requires_grad
    with pytest.raises(RuntimeError, match="leaf"):
        (tg.tensor([1.0], requires_grad=True) * 2).requires_grad_(False)
    with pytest.raises(TypeError, match="float"):
        tg.tensor([1, 2]).requires_grad_()


# --------------------------------------------------------------------------------------
# In-place operations


def test_inplace_on_leaf_requiring_grad_raises_under_grad_mode():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    for op in [lambda: w.add_(1), lambda: w.mul_(2), lambda: w.zero_(),
               lambda: w.fill_(0.5), lambda: w.copy_(tg.tensor([0.0, 0.0]))]:
        with pytest.raises(RuntimeError, match=r"leaf.*no_grad"):
            op()
    with pytest.raises(RuntimeError, match="leaf"):
        w -= 1
    assert w.tolist() == [1.0, 2.0] and w._version == 0


def test_sgd_update_under_no_grad():
    w = tg.tensor([1.0, -2.0], requires_grad=True)
    (w * w).sum().backward()
    ident = id(w)
    with tg.no_grad():
        w -= 0.1 * w.grad
    assert id(w) == ident and w.is_leaf and w.requires_grad
    np.testing.assert_allclose(w.numpy(), [0.8, -1.6])
    w.grad.zero_()
    (w * w).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [1.6, -3.2], rtol=1e-6)


def test_inplace_ops_values(torch):
    z = tg.tensor([1.0, 2.0])
    t = torch.tensor([1.0, 2.0])
    steps = [
        ("add_", (1,), {}), ("mul_", (3,), {}), ("sub_", (1,), {"alpha": 2}),
        ("div_", (2,), {}), ("add_", ([1.0, 1.0],), {"alpha": 3}), ("zero_", (), {}),
        ("fill_", (4.0,), {}), ("copy_", ([5.0, 6.0],), {}),
    ]
    for name, args, kwargs in steps:
        targs = [torch.tensor(a) if isinstance(a, list) else a for a in args]
        gargs = [tg.tensor(a) if isinstance(a, list) else a for a in args]
        assert getattr(z, name)(*gargs, **kwargs) is z
        getattr(t, name)(*targs, **kwargs)
        np.testing.assert_allclose(z.numpy(), t.numpy(), err_msg=name)
    z = tg.zeros(2, 2)
    z.copy_(tg.tensor([1.0, 2.0]))  # broadcasts, as in PyTorch
    assert z.tolist() == [[1.0, 2.0], [1.0, 2.0]]
    v = z._version
    z.add_(1)
    z *= 2
    assert z._version == v + 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["C", "F", "strided", "0-d", "empty"])
def test_add_and_sub_with_alpha_under_no_grad(dtype, layout):
    # What optimizers run: p.sub_(grad, alpha=lr) outside grad mode, in place (by BLAS's
    # axpy for C-ordered float arrays, else by NumPy); every layout gives the same numbers.
    rng = np.random.default_rng(0)
    p_np, g_np = (rng.normal(size=(6, 5)).astype(dtype) for _ in range(2))
    if layout == "F":
        p_np, g_np = np.asfortranarray(p_np), np.asfortranarray(g_np)
    elif layout == "strided":
        p_np, g_np = p_np[:, ::2], g_np[:, ::2]
    elif layout == "0-d":
        p_np, g_np = np.array(p_np[0, 0]), np.array(g_np[0, 0])
    elif layout == "empty":
        p_np, g_np = p_np[:0], g_np[:0]
    want = p_np - g_np * dtype(0.1) + g_np * dtype(0.25)
    p_mem = np.empty((p_np.shape[0], 2 * p_np.shape[1]), dtype)[:, ::2] \
        if layout == "strided" else np.empty_like(p_np)  # (empty_like keeps the layout)
    p_mem[...] = p_np
    p, g = tg.from_numpy(p_mem).requires_grad_(), tg.from_numpy(g_np)
    if layout in ("F", "strided"):  # (from_numpy keeps the layout)
        assert not p.numpy().flags.c_contiguous and not g.numpy().flags.c_contiguous
    memory, version = p.numpy(), p._version
    with tg.no_grad():
        assert p.sub_(g, alpha=0.1) is p
        p.add_(g, alpha=0.25)
    np.testing.assert_allclose(p.numpy(), want, rtol=1e-6 if dtype == np.float32 else 1e-14)
    assert p.numpy() is memory and p._version == version + 2 and p.dtype == dtype


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_fill_zero_copy_overwrite_non_finite_values():
    z = tg.tensor([float("inf"), 1.0])
    z.fill_(2.0)
    assert z.tolist() == [2.0, 2.0]
    z = tg.tensor([float("nan"), 1.0])
    z.zero_()
    assert z.tolist() == [0.0, 0.0]
    z = tg.full((2,), float("-inf"))
    z.copy_(tg.tensor([3.0, 4.0]))
    assert z.tolist() == [3.0, 4.0]


def test_inplace_on_non_leaf_with_grad_matches_torch(torch):
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.add_(x * x)
    y.mul_(2)
    y.sum().backward()
    tx = torch.tensor([1.0, 2.0], requires_grad=True)
    ty = tx * 3
    ty.add_(tx * tx)
    ty.mul_(2)
    ty.sum().backward()
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy())
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.copy_(x * x)
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]


@pytest.mark.parametrize("overwrite", [lambda y: y.zero_(), lambda y: y.fill_(5.0),
                                       lambda y: y.copy_(tg.tensor([7.0, 8.0]))],
                         ids=["zero_", "fill_", "copy_"])
def test_overwriting_a_non_leaf_with_a_constant_cuts_the_gradient(overwrite):
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    overwrite(y)
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 0.0]


def test_modified_after_use_raises_at_backward_naming_the_op():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    z = y * y
    y.add_(1)
    with pytest.raises(RuntimeError, match=r"input of mul.*changed in place"):
        z.sum().backward()
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    h = x.tanh()
    e = h.exp()
    h.mul_(2)
    with pytest.raises(RuntimeError, match="input of exp"):
        e.sum().backward()


def test_leaf_changed_under_no_grad_after_use_raises():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (w * w).sum()
    with tg.no_grad():
        w.mul_(3)
    with pytest.raises(RuntimeError, match="input of mul"):
        y.backward()
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    v = w[0]
    y = v * v
    with tg.no_grad():
        w += 1
    # v is a view of w (one version counter, as in PyTorch): the mul that read v refuses
    with pytest.raises(RuntimeError, match="input of mul"):
        y.backward()


def test_inplace_writing_grad_into_plain_tensor_joins_the_graph_like_torch():
    z = tg.zeros(2)
    b = tg.tensor(3.0, requires_grad=True)
    z[0] = b  # as in PyTorch: z now depends on b
    assert z.tolist() == [3.0, 0.0] and z.requires_grad and not z.is_leaf
    (z * tg.tensor([2.0, 5.0])).sum().backward()
    assert b.grad.item() == 2.0
    x = tg.zeros(2)
    x += b
    assert x.requires_grad and x.tolist() == [3.0, 3.0]
    with tg.no_grad():
        y = tg.zeros(2)
        y[0] = b
    assert y.tolist() == [3.0, 0.0] and not y.requires_grad


# --------------------------------------------------------------------------------------
# Higher order and functional gradients


def test_nested_grad_third_derivative_of_x4():
    def f(x):
        return (x ** 4).sum()

    d1 = tg.grad(f)
    d2 = tg.grad(lambda x: d1(x).sum())
    d3 = tg.grad(lambda x: d2(x).sum())
    x = tg.tensor([2.0, -1.0, 0.5])
    assert d1(x).tolist() == [32.0, -4.0, 0.5]
    assert d2(x).tolist() == [48.0, 12.0, 3.0]
    assert d3(x).tolist() == [48.0, -24.0, 12.0]
    assert x.grad is None


def test_hessian_vector_product_matches_torch(torch):
    a = np.array([[1.0, 2.0], [3.0, -1.0]])
    v = np.array([0.5, -2.0])
    x0 = np.array([0.3, -0.7])

    def f(lib, x, A):
        return ((A @ x).tanh() ** 2).sum() * x.exp().sum() + (x ** 3).sum()

    x = tg.tensor(x0, requires_grad=True)
    y = f(tg, x, tg.tensor(a))
    y.backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    x.grad = None
    (g * tg.tensor(v)).sum().backward()

    tx = torch.tensor(x0, requires_grad=True)
    ty = f(torch, tx, torch.tensor(a))
    (tg_,) = torch.autograd.grad(ty, tx, create_graph=True)
    (hv,) = torch.autograd.grad((tg_ * torch.tensor(v)).sum(), tx)
    np.testing.assert_allclose(g.detach().numpy(), tg_.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), hv.numpy(), rtol=1e-10)


def test_grad_with_argnums_tuple():
    def h(a, b, c):
        return (a * b * c).sum()

    args = tg.tensor([1.0, 2.0]), tg.tensor([3.0, 4.0]), tg.tensor([5.0, 6.0])
    ga, gc = tg.grad(h, argnums=(0, 2))(*args)
    assert ga.tolist() == [15.0, 24.0] and gc.tolist() == [3.0, 8.0]
    (gb,) = tg.grad(h, argnums=(1,))(*args)
    assert gb.tolist() == [5.0, 12.0]
    assert tg.grad(h, argnums=1)(*args).tolist() == [5.0, 12.0]
    assert all(a.grad is None and not a.requires_grad for a in args)


def test_grad_has_aux_and_value_and_grad():
    g, aux = tg.grad(lambda x: ((x * x).sum(), x * 3), has_aux=True)(tg.tensor([1.0, 2.0]))
    assert g.tolist() == [2.0, 4.0] and aux.tolist() == [3.0, 6.0]
    value, g = tg.value_and_grad(lambda x: (x * x).sum())(tg.tensor([1.0, 2.0]))
    assert value.item() == 5.0 and g.tolist() == [2.0, 4.0] and not value.requires_grad
    value, (gx, gy) = tg.value_and_grad(lambda x, y: (x * y).sum(), argnums=(0, 1))(
        tg.tensor([1.0, 2.0]), tg.tensor([3.0, 4.0])
    )
    assert value.item() == 11.0 and gx.tolist() == [3.0, 4.0] and gy.tolist() == [1.0, 2.0]
    (value, aux), g = tg.value_and_grad(lambda x: ((x ** 3).sum(), "hi"), has_aux=True)(
        tg.tensor([2.0])
    )
    assert value.item() == 8.0 and aux == "hi" and g.tolist() == [12.0]


def test_grad_of_constant_function_is_zero():
    g = tg.grad(lambda x: tg.tensor(1.0))(tg.tensor([3.0, 4.0]))
    assert g.tolist() == [0.0, 0.0]


def test_grad_never_writes_dot_grad():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    x = tg.tensor([3.0, 4.0], requires_grad=True)
    g = tg.grad(lambda x: (x * w).sum())(x)
    assert g.tolist() == [1.0, 2.0]
    assert w.grad is None and x.grad is None
    gw = tg.grad(lambda w: (w * w).sum())(w)
    assert gw.tolist() == [2.0, 4.0] and w.grad is None
    _, gw = tg.value_and_grad(lambda w: (w * x).sum())(w)
    assert gw.tolist() == [3.0, 4.0] and w.grad is None and x.grad is None


def test_grad_does_not_free_outer_graph():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    h = w * 2
    tg.grad(lambda x: (x * h).sum())(tg.tensor([3.0, 4.0]))
    h.sum().backward()
    assert w.grad.tolist() == [2.0, 2.0]


def test_grad_errors():
    with pytest.raises(TypeError, match="scalar"):
        tg.grad(lambda x: x * 2)(tg.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="tg.Tensor"):
        tg.grad(lambda x: x.sum())(3.0)
    with pytest.raises(TypeError, match="argnums"):
        tg.grad(lambda x, y: x.sum(), argnums=1)(tg.tensor([1.0]))
    with pytest.raises(TypeError, match="aux"):
        tg.grad(lambda x: x.sum(), has_aux=True)(tg.tensor([1.0]))


def test_grad_matches_torch_func_grad(torch):
    a = np.array([0.2, -0.5, 1.5])

    def f(lib, x):
        return (x.sin() * x.exp() + x.sigmoid() ** 2).sum()

    got = tg.grad(lambda x: f(tg, x))(tg.tensor(a))
    want = torch.func.grad(lambda x: f(torch, x))(torch.tensor(a))
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    got2 = tg.grad(lambda x: tg.grad(lambda y: f(tg, y))(x).sum())(tg.tensor(a))
    want2 = torch.func.grad(lambda x: torch.func.grad(lambda y: f(torch, y))(x).sum())(
        torch.tensor(a)
    )
    np.testing.assert_allclose(got2.numpy(), want2.numpy(), rtol=1e-10)


def test_second_order_through_where_of_neg_matches_torch(torch):
    a = tg.tensor(0.6, dtype=tg.float64, requires_grad=True)
    y = tg.where(a > 5, 1.0, -a) ** 2
    y.backward(create_graph=True)
    g, a.grad = a.grad, None
    (g * 0.5).backward()
    ta = torch.tensor(0.6, dtype=torch.float64, requires_grad=True)
    ty = torch.where(ta > 5, torch.tensor(1.0, dtype=torch.float64), -ta) ** 2
    (tgrad,) = torch.autograd.grad(ty, ta, create_graph=True)
    (thess,) = torch.autograd.grad(tgrad * 0.5, ta)
    assert g.item() == pytest.approx(tgrad.item(), rel=1e-12)  # 1.2
    assert a.grad.item() == pytest.approx(thess.item(), rel=1e-12)  # 1.0


# --------------------------------------------------------------------------------------
# detect_anomaly


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_anomaly_nan_in_forward_names_op_and_user_line():
    x = tg.tensor([-1.0, 1.0], requires_grad=True)
    with tg.detect_anomaly():
        with pytest.raises(FloatingPointError, match=r"log produced nan") as info:
            x.log()
    message = str(info.value)
    assert "test_autograd.py" in message and "x.log()" in message
    with np.errstate(all="ignore"):
        assert np.isnan(x.log().numpy()[0])  # off again outside the block


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_anomaly_inf_in_forward():
    with tg.detect_anomaly():
        with pytest.raises(FloatingPointError, match="mul produced inf"):
            tg.tensor([1e30]) * tg.tensor([1e30])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_anomaly_in_backward_raises():
    x = tg.tensor([0.0, 1.0], requires_grad=True)
    with tg.detect_anomaly():
        y = x.sqrt()  # fine forward: sqrt(0) = 0
        with pytest.raises(FloatingPointError, match="produced (inf|nan)"):
            y.sum().backward()  # d sqrt / dx at 0 is inf
    x = tg.tensor([0.0, 1.0], requires_grad=True)
    with tg.detect_anomaly():
        y = x.sqrt() * 0  # the gradient is 0 * inf = nan
        with pytest.raises(FloatingPointError, match="nan"):
            y.sum().backward()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_anomaly_in_backward_names_the_differentiated_op():
    x = tg.tensor([0.0, 1.0], requires_grad=True)
    with tg.detect_anomaly():
        y = x.sqrt()
        with pytest.raises(FloatingPointError, match=r"sqrt.*backward"):
            y.sum().backward()


def test_anomaly_no_false_alarms_on_normal_code(torch):
    tg.manual_seed(0)
    w = tg.randn(3, 4, requires_grad=True)
    x = tg.randn(5, 3)
    with tg.detect_anomaly():
        h = (x @ w).tanh()
        loss = (h.softmax(-1).log() * h).mean() + (w.abs() + 1).log().sum() + h.relu().sum()
        loss.backward()
    assert np.all(np.isfinite(w.grad.numpy()))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_anomaly_as_decorator_and_restored():
    @tg.detect_anomaly()
    def f():
        return tg.tensor([-1.0]).sqrt()

    with pytest.raises(FloatingPointError, match="sqrt produced nan"):
        f()
    with np.errstate(all="ignore"):
        assert np.isnan(tg.tensor([-1.0]).sqrt().item())


# --------------------------------------------------------------------------------------
# Memory and depth


def test_training_loop_memory_is_flat():
    tg.manual_seed(0)
    w1 = tg.randn(4, 16, requires_grad=True)
    b1 = tg.zeros(16, requires_grad=True)
    w2 = tg.randn(16, 1, requires_grad=True)
    x = tg.randn(32, 4)
    y = tg.randn(32, 1)
    params = (w1, b1, w2)
    losses = []
    tracemalloc.start()
    try:
        for step in range(1000):
            loss = (((x @ w1 + b1).relu() @ w2 - y) ** 2).mean()
            for p in params:
                p.grad = None
            loss.backward()
            with tg.no_grad():
                for p in params:
                    p -= 0.01 * p.grad
            losses.append(loss.item())
            if step == 100:
                gc.collect()
                at_100 = tracemalloc.get_traced_memory()[0]
        del loss
        gc.collect()
        at_1000 = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert at_1000 - at_100 < 100_000, (at_100, at_1000)
    assert losses[-1] < losses[0]


def test_freed_graph_releases_saved_arrays():
    import weakref

    x = tg.tensor(np.ones(1000), requires_grad=True)
    h = x.exp()
    ref = weakref.ref(h)
    y = (h * 2).sum()
    del h
    assert ref() is not None  # y's graph holds it
    y.backward()
    gc.collect()
    assert ref() is None  # freed by backward()


def test_long_chain_backpropagates_without_recursion():
    x = tg.tensor(1.0, dtype=tg.float64, requires_grad=True)
    y = x
    for i in range(100_000):
        y = y * 1.0001 if i % 2 else y + 0.5
    y.backward()
    np.testing.assert_allclose(x.grad.item(), 1.0001 ** 50_000, rtol=1e-9)


# What the first-order backward reads from a rule's declared facts (tracegrad.ops.base)


def test_the_values_a_rule_reads_and_whether_it_is_plain_arithmetic():
    from tracegrad.ops import PRIMITIVES as P

    # (out, x) read by the one-input rules; (out, a, b) per mask of inputs needing grad
    assert P["exp"].reads[0][1] == (True, False) and P["log"].reads[0][1] == (False, True)
    assert P["mul"].reads[1][0b01] == (False, False, True)  # d/da = g * b
    assert P["mul"].reads[1][0b10] == (False, True, False)  # d/db = g * a
    assert P["tanh"].arithmetic[0][1] and not P["sin"].arithmetic[0][1]
    assert all(P["mul"].arithmetic[1]) and not P["maximum"].arithmetic[1][0b01]
    assert P["sub"].arithmetic[1][0b10] and not P["sub"].arithmetic[1][0b01]  # -g / g


def test_a_gradient_from_a_plain_arithmetic_rule_is_new_memory():
    x = tg.tensor([0.5, -1.0, 2.0], requires_grad=True)
    y = x.tanh()
    (y * tg.tensor([1.0, 2.0, 3.0])).sum().backward()
    expected = (1 - np.tanh(x.numpy()) ** 2) * np.array([1, 2, 3], dtype=np.float32)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)
    assert not np.shares_memory(x.grad.numpy(), y.numpy())
    x.grad.numpy()[:] = 0  # the leaf's own memory: the forward values stay as they were
    np.testing.assert_allclose(y.numpy(), np.tanh(x.numpy()), rtol=1e-6)


def test_a_hook_elsewhere_leaves_the_chain_walk_on_and_one_inside_runs(monkeypatch):
    # A hook on a tensor outside the graph (a model kept alive elsewhere) used to turn the
    # walk off for every backward pass; a hook on a node inside the chain still runs, on
    # that node's whole gradient.
    elsewhere = tg.ones(2, requires_grad=True)
    elsewhere.register_hook(lambda g: g)
    calls = []
    vjp = tg.Tensor._vjp
    monkeypatch.setattr(tg.Tensor, "_vjp", lambda self, *a: calls.append(1) or vjp(self, *a))
    x = tg.tensor([0.5, -0.3, 0.8], requires_grad=True)
    c = tg.tensor([0.99, 1.01, 1.0])
    y, seen = x, []
    for k in range(200):
        y = (y * c).tanh()
        if k == 100:
            y.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 2)
            middle = y
    y.sum().backward()
    assert len(calls) <= 6 and len(seen) == 1
    # the same by the general step everywhere
    with monkeypatch.context() as m:
        _no_walk(m)
        x2 = tg.tensor([0.5, -0.3, 0.8], requires_grad=True)
        y2 = x2
        for k in range(200):
            y2 = (y2 * c).tanh()
            if k == 100:
                y2.register_hook(lambda g: g * 2)
        y2.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), x2.grad.numpy())
    assert middle is not None and elsewhere.grad is None
