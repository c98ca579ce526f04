"""Views share memory and a version counter with their base, as in PyTorch (issue 12, item 7).

An in-place op through a view (slicing, reshape, permute/transpose/.T, squeeze/unsqueeze,
expand, detach) writes the base, under grad mode and no_grad alike; it bumps the counter that
the base and all its views share, so a backward that needs a changed value raises; and the
gradients through it (the base becomes "the old base with the view's part replaced", PyTorch's
CopySlices) are PyTorch's, to second order. Advanced indexing returns a copy. Every case is
replayed in PyTorch (float64) and compared.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracegrad as tg

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph")

CHANGED = "changed in place"


def both(fn):
    """``fn(lib)`` run with tracegrad and with torch: (result or the exception) for each."""
    out = []
    for lib in (tg, torch):
        try:
            out.append(fn(lib))
        except RuntimeError as e:
            out.append(e)
    return out


def arr(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else t.numpy()


def test_in_place_on_a_view_under_no_grad_bumps_the_base_version():
    # the example of issue 12: the backward needs w's old value, so it must raise
    w = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    loss = (w * w).sum()
    with tg.no_grad():
        w[:2].mul_(0.0)
    np.testing.assert_array_equal(w.numpy(), [0.0, 0.0, 3.0])
    with pytest.raises(RuntimeError, match=CHANGED):
        loss.backward()


def test_in_place_on_a_view_under_grad_mode_writes_the_base_and_rebases_it():
    def run(lib):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * 1
        y[:2].mul_(10)
        y.sum().backward()
        return arr(y), arr(x.grad)

    (ty, tgx), (py, pgx) = both(run)
    np.testing.assert_array_equal(ty, [10.0, 20.0, 3.0])
    np.testing.assert_array_equal(ty, py)
    np.testing.assert_array_equal(tgx, [10.0, 10.0, 1.0])
    np.testing.assert_array_equal(tgx, pgx)


def test_views_share_one_version_counter():
    y = tg.tensor([[1.0, 2.0], [3.0, 4.0]])
    views = [y[0], y.T, y.reshape(4), y.unsqueeze(0), y[:, 1:], y.detach(), y.expand(3, 2, 2)]
    y[0, 0] = 5.0
    assert [v._version for v in views] == [1] * len(views)
    views[1].add_(1.0)  # through the transpose
    assert y._version == 2 and all(v._version == 2 for v in views)
    np.testing.assert_array_equal(y.numpy(), [[6.0, 3.0], [4.0, 5.0]])
    np.testing.assert_array_equal(views[4].numpy(), [[3.0], [5.0]])


def test_a_view_of_a_leaf_that_requires_grad_refuses_in_place_ops_under_grad_mode():
    w = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"view of a leaf tensor that requires grad.*"
                                           r"shape \(2,\).*no_grad"):
        w[:2].mul_(2)
    with pytest.raises(RuntimeError):
        torch.tensor([1.0, 2.0, 3.0], requires_grad=True)[:2].mul_(2)
    np.testing.assert_array_equal(w.numpy(), [1.0, 2.0, 3.0])
    with tg.no_grad():  # what optimizers do: allowed
        w[:2].mul_(2)
    np.testing.assert_array_equal(w.numpy(), [2.0, 4.0, 3.0])


def test_a_view_made_under_no_grad_refuses_in_place_ops_under_grad_mode():
    for lib in (tg, torch):
        y = lib.tensor([1.0, 2.0, 3.0], requires_grad=True) * 1
        with lib.no_grad():
            v = y[:2]
        with pytest.raises(RuntimeError, match="no_grad"):
            v.mul_(2)


@pytest.mark.parametrize("case", ["sibling", "base", "nograd_base", "second_view_of_view"])
def test_other_views_follow_the_rebased_base(case):
    def run(lib):
        x = lib.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
        y = x * 2
        a, b = y[:2], y[1:]
        if case == "sibling":
            a.mul_(10)
            out = b
        elif case == "base":
            y.mul_(10)
            out = a
        elif case == "nograd_base":
            with lib.no_grad():
                y[3:] = 0.0
            out = b
        else:
            c = b[1:].unsqueeze(0)
            a[1:].add_(x[:1] * 3)
            out = c
        (out * lib.tensor(np.arange(1.0, out.numel() + 1).reshape(out.shape))).sum().backward()
        return arr(out), arr(x.grad), arr(y)

    t, p = both(run)
    for got, want in zip(t, p):
        np.testing.assert_allclose(got, want)


def test_gradient_reaches_the_value_written_into_a_view():
    def run(lib):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        w = lib.tensor([2.0, 3.0], requires_grad=True)
        z = lib.zeros(3)
        z[1:].copy_(w)  # z does not require grad: it does now, through the view
        y = x * 1
        y[:2].mul_(w)
        ((y * y).sum() + (z * z).sum()).backward()
        return arr(x.grad), arr(w.grad), z.requires_grad

    t, p = both(run)
    np.testing.assert_allclose(t[0], p[0])
    np.testing.assert_allclose(t[1], p[1])
    assert t[2] is p[2] is True


def test_second_order_gradients_through_an_in_place_op_on_a_view():
    def run(lib):
        x = lib.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=lib.float64, requires_grad=True)
        y = x * x
        y.T[1].mul_(x[0] + 1)  # column 1 of y, through a transpose
        loss = (y * y * y).sum()
        loss.backward(create_graph=True)
        g, x.grad = x.grad, None
        (g * g).sum().backward()
        return arr(g), arr(x.grad)

    t, p = both(run)
    np.testing.assert_allclose(t[0], p[0], rtol=1e-12)
    np.testing.assert_allclose(t[1], p[1], rtol=1e-12)


def test_in_place_on_the_base_is_seen_by_views_and_detach_aliases():
    def run(lib):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * 1
        v, d = y[1:], y.detach()
        y.mul_(10)
        v.sum().backward()
        return arr(v), arr(d), arr(x.grad)

    t, p = both(run)
    for got, want in zip(t, p):
        np.testing.assert_array_equal(got, want)


def test_a_zero_dim_view_writes_its_element():
    def run(lib):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * 1
        y[1].mul_(5)
        y.sum().backward()
        return arr(y), arr(x.grad)

    t, p = both(run)
    np.testing.assert_array_equal(t[0], p[0])
    np.testing.assert_array_equal(t[1], p[1])


def test_expanded_views():
    x = tg.tensor([1.0, 2.0, 3.0])
    x.expand(1, 3).mul_(2)  # one element per memory location: writes the base
    np.testing.assert_array_equal(x.numpy(), [2.0, 4.0, 6.0])
    with pytest.raises(RuntimeError, match=r"\(2, 3\) expanded.*same memory location.*clone"):
        x.expand(2, 3).mul_(2)
    with pytest.raises(RuntimeError, match="single memory location"):
        torch.tensor([1.0, 2.0, 3.0]).expand(2, 3).mul_(2)
    e = x.expand(2, 3)
    x.add_(1.0)  # the base changes under the expanded view
    np.testing.assert_array_equal(e.numpy(), [[3.0, 5.0, 7.0]] * 2)


@pytest.mark.parametrize("grad", [False, True])
def test_advanced_indexing_returns_a_copy(grad):
    def run(lib):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * 1
        ctx = lib.enable_grad() if grad else lib.no_grad()
        with ctx:
            y[[0, 2]].mul_(10)
            y[lib.tensor([True, False, True])].add_(1.0)
        y.sum().backward()
        return arr(y), arr(x.grad)

    t, p = both(run)
    np.testing.assert_array_equal(t[0], [1.0, 2.0, 3.0])
    for got, want in zip(t, p):
        np.testing.assert_array_equal(got, want)


def test_view_needs_a_layout_that_needs_no_copy():
    x = tg.tensor([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(RuntimeError, match=r"view: .*\(2, 2\).*reshape"):
        x.T.view(-1)
    r = x.T.reshape(-1)  # a copy, as in PyTorch: writing it leaves x alone
    r.mul_(0.0)
    np.testing.assert_array_equal(x.numpy(), [[1.0, 2.0], [3.0, 4.0]])
    v = x.view(4)
    v[0] = 9.0
    assert x.numpy()[0, 0] == 9.0


# ------------------------------------------------------------------------------------------
# Random chains of views, then an in-place op, under no_grad and grad mode, against PyTorch.

@st.composite
def view_chain(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    steps, cur = [], list(shape)
    for _ in range(draw(st.integers(1, 4))):
        kinds = ["unsqueeze", "reshape"] + (["slice", "transpose", "select"] if cur else [])
        kind = draw(st.sampled_from(kinds))
        if kind == "slice":
            d = draw(st.integers(0, len(cur) - 1))
            start = draw(st.integers(0, cur[d]))
            step = draw(st.integers(1, 3))
            steps.append(("slice", d, start, step))
            cur[d] = len(range(start, cur[d], step))
        elif kind == "select":
            d = draw(st.integers(0, len(cur) - 1))
            if cur[d] == 0:
                continue
            steps.append(("select", d, draw(st.integers(0, cur[d] - 1))))
            del cur[d]
        elif kind == "transpose":
            d0, d1 = draw(st.integers(0, len(cur) - 1)), draw(st.integers(0, len(cur) - 1))
            steps.append(("transpose", d0, d1))
            cur[d0], cur[d1] = cur[d1], cur[d0]
        elif kind == "unsqueeze":
            d = draw(st.integers(0, len(cur)))
            steps.append(("unsqueeze", d))
            cur.insert(d, 1)
        else:  # flatten, or back to the first dims' split
            steps.append(("reshape", -1))
            cur = [int(np.prod(cur))]
    return shape, steps


def apply_steps(t, steps):
    for s in steps:
        if s[0] == "slice":
            t = t[(slice(None),) * s[1] + (slice(s[2], None, s[3]),)]
        elif s[0] == "select":
            t = t[(slice(None),) * s[1] + (s[2],)]
        elif s[0] == "transpose":
            t = t.transpose(s[1], s[2])
        elif s[0] == "unsqueeze":
            t = t.unsqueeze(s[1])
        else:
            t = t.reshape(s[1])
    return t


def scenario(lib, shape, steps, op, grad, base_kind, used_before):
    x = lib.tensor(np.arange(1.0, np.prod(shape) + 1).reshape(shape) / 3,
                   dtype=lib.float64, requires_grad=True)
    src = lib.tensor(0.5, dtype=lib.float64, requires_grad=True)
    y = x if base_kind == "leaf" else x * 2
    before = (y * y).sum() if used_before else None
    v = apply_steps(y, steps)
    result = {}
    try:
        with (lib.enable_grad() if grad else lib.no_grad()):
            if op == "mul_":
                v.mul_(3.0)
            elif op == "add_":
                v.add_(src if grad else 1.5)
            elif op == "setitem":
                v[...] = 7.0
            else:
                v.copy_(src * 4 if grad else 2.0)
        result["op"] = "ok"
    except RuntimeError:
        result["op"] = "raised"
    result["y"], result["v"] = arr(y).copy(), arr(v).copy()
    weights = lib.tensor(np.arange(1.0, v.numel() + 1).reshape(tuple(v.shape)), dtype=lib.float64)
    loss = (y * y).sum() + (v * weights).sum() if y.requires_grad else None
    if before is not None:
        loss = before if loss is None else loss + before
    try:
        if loss is not None and loss.requires_grad:
            loss.backward()
        result["backward"] = "ok"
    except RuntimeError:
        result["backward"] = "raised"
        return result  # (the gradients a failed backward leaves behind are not compared)
    for name, t in (("x.grad", x), ("src.grad", src)):
        result[name] = None if t.grad is None else arr(t.grad).copy()
    return result


@settings(max_examples=150, deadline=None)
@given(chain=view_chain(), op=st.sampled_from(["mul_", "add_", "setitem", "copy_"]),
       grad=st.booleans(), base_kind=st.sampled_from(["leaf", "result"]),
       used_before=st.booleans())
def test_random_view_chains_then_in_place_match_pytorch(chain, op, grad, base_kind,
                                                        used_before):
    shape, steps = chain
    got = scenario(tg, shape, steps, op, grad, base_kind, used_before)
    want = scenario(torch, shape, steps, op, grad, base_kind, used_before)
    assert got.keys() == want.keys()
    for k in got:
        if isinstance(want[k], np.ndarray):
            np.testing.assert_allclose(got[k], want[k], rtol=1e-12, err_msg=k)
        else:
            assert got[k] == want[k], (k, got, want)


# ------------------------------------------------------------------------------------------
# The compiler's tracer sees an in-place op through a view as a change of the base.


def test_compiled_in_place_on_a_view_of_a_captured_tensor_matches_eager():
    def make(y):
        def step(x):
            v = y[:2]
            v.mul_(10)
            return (y * x).sum(), v * 1, y.T * 1

        return step

    y_eager = tg.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    y_comp = tg.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    eager, comp = make(y_eager), tg.compile(make(y_comp), backend="numpy")
    for k in range(3):
        x = tg.tensor([[1.0, k], [2.0, 1.0], [0.5, 3.0]])
        want, got = eager(x), comp(x)
        for a, b in zip(want, got):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
        np.testing.assert_array_equal(y_eager.numpy(), y_comp.numpy())


def test_compiled_backward_through_an_in_place_op_on_a_view_matches_eager():
    def loss_grad(x):
        y = x * x
        y[1:].mul_(3)
        y.T[0].add_(1.0)
        y.sum().backward()
        return x.grad * 1

    x_e = tg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    x_c = tg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    comp = tg.compile(loss_grad, backend="numpy")
    for _ in range(2):
        x_e.grad = x_c.grad = None
        np.testing.assert_array_equal(loss_grad(x_e).numpy(), comp(x_c).numpy())
    np.testing.assert_array_equal(x_e.grad.numpy(), [[2.0, 4.0], [18.0, 24.0]])


@pytest.mark.parametrize("case", ["alias", "alias of a view", "view of an alias made outside"])
def test_compiled_in_place_through_a_detach_alias_matches_eager(case):
    def make(y):
        d = y.detach()
        v = d[2:]

        def step(x):
            if case == "alias":
                y.detach().mul_(x[0] + 2)
            elif case == "alias of a view":
                y[1:].detach().mul_(x[0] + 2)
            else:
                y[1:].add_(x[1:])
            return y * x, v * 1, d.T * 1

        return step

    y_eager, y_comp = tg.tensor([1.0, 2.0, 3.0, 4.0]), tg.tensor([1.0, 2.0, 3.0, 4.0])
    eager, comp = make(y_eager), tg.compile(make(y_comp), backend="numpy")
    for k in range(3):
        x = tg.tensor([1.0, float(k), 2.0, 0.5])
        for a, b in zip(eager(x), comp(x)):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
        np.testing.assert_array_equal(y_eager.numpy(), y_comp.numpy())


def test_compiled_recorded_in_place_on_a_view_of_an_alias_matches_eager():
    def make(w):
        def step(x):
            y = x * 1
            d = y.detach()
            d[:2].mul_(w)  # recorded: w requires grad, so d now does too (as in PyTorch)
            (d * d).sum().backward()
            return y * 1, d * 1, w.grad * 1

        return step

    w_eager = tg.tensor([2.0, 3.0], requires_grad=True)
    w_comp = tg.tensor([2.0, 3.0], requires_grad=True)
    eager, comp = make(w_eager), tg.compile(make(w_comp), backend="numpy")
    for k in range(3):
        w_eager.grad = w_comp.grad = None
        x = tg.tensor([1.0, 2.0 + k, 3.0])
        for a, b in zip(eager(x), comp(x)):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(w_eager.grad.numpy(), [2 * 2 * 1.0, 2 * 3 * 4.0**2])


@pytest.mark.parametrize("case", ["matmul", "add", "copy", "copy through a view"])
def test_a_buffer_filled_from_its_own_views_refuses_backward(case):
    # out[t] = f(out[t - 1]): the view out[t - 1] was read before out changed. PyTorch refuses
    # "matmul" (it saved the view) and goes on for the others, whose gradients read no
    # values; tracegrad refuses every changed input (docs/tensors.md, section 13), with its
    # message: never a graph that loops back through the rebased buffer.
    def fill(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        w = lib.tensor([[0.5, -0.2], [0.1, 0.3]], requires_grad=True)
        out = lib.zeros(3, 2)
        out[0] = x * 1
        for t in range(1, 3):
            h = out[t - 1]
            if case == "matmul":
                out[t] = (h.unsqueeze(0) @ w).squeeze(0)
            elif case == "add":
                out[t] = h + x
            elif case == "copy":
                out[t] = h
            else:
                out[t].copy_(h)
        return out

    out = fill(tg)
    np.testing.assert_allclose(out.numpy(), arr(fill(torch)), rtol=1e-6)
    with pytest.raises(RuntimeError, match=CHANGED):
        out.sum().backward()


def test_a_base_forgets_its_dead_views():
    # the family's list of views (weak references) is pruned, in amortized O(1) per view
    x = tg.zeros(1000, 2)
    rows = list(x)  # 1,000 live views
    for _ in range(20_000):
        x.T  # noqa: B018 - a view that dies at once
    assert len(x._vc.views) <= 2 * len(rows) + 64
    del rows
    for _ in range(5_000):
        x[0]  # noqa: B018
    assert len(x._vc.views) <= 2 * 1000 + 64


@pytest.mark.parametrize("how", ["no_grad", "detach", "view_no_grad", "after_inplace_op"])
def test_a_result_its_gradient_reads_changed_in_place_raises(how):
    """tanh's gradient reads its result: changed in place without recording (under no_grad,
    through detach() or a view), backward used the changed values and gave 0.9466 for
    tanh'(0.5) = 0.7864. PyTorch raises; so does tracegrad now, naming the op."""
    x = tg.tensor([0.5, 1.0], requires_grad=True)
    b = x * 1.0
    y = b.exp() if how == "after_inplace_op" else b.tanh()
    if how == "after_inplace_op":
        y.tanh_() if hasattr(y, "tanh_") else y.copy_(y.tanh())
    if how == "no_grad":
        with tg.no_grad():
            y.mul_(0.5)
    elif how == "detach":
        y.detach().mul_(0.5)
    elif how == "view_no_grad":
        with tg.no_grad():
            y[0:1].mul_(0.5)
    else:
        with tg.no_grad():
            y.mul_(0.5)
    with pytest.raises(RuntimeError, match="result of .* was changed in place"):
        (y * 1.0).sum().backward()


def test_results_changed_by_recorded_ops_or_unread_still_differentiate():
    """What must keep working: a result changed by a recorded in-place op (its old node
    keeps the old values), one whose gradient does not read it (add), and one with a view
    but no change."""
    x = tg.tensor([0.5, 1.0], requires_grad=True)
    y = (x * 1.0).tanh()
    y.mul_(2.0)  # recorded: the tanh node keeps its result
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (1 - np.tanh([0.5, 1.0]) ** 2), rtol=1e-6)
    x.grad = None
    z = x + 1.0
    with tg.no_grad():
        z.mul_(3.0)  # add's gradient reads no values
    (z * 1.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0])
    x.grad = None
    t = (x * 1.0).exp()
    v = t[0:1]
    (t.sum() + v.sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp([0.5, 1.0]) * [2, 1], rtol=1e-6)


_DIAGONALS = [((3, 3), 0, 0, 1), ((3, 4), 1, 0, 1), ((4, 3), -2, 0, 1), ((2, 3, 3), 0, 1, 2),
              ((3, 3), 0, 1, 0), ((2, 3, 4), -1, -1, -2), ((3, 5), 7, 0, 1)]


@pytest.mark.parametrize("shape, offset, dim1, dim2", _DIAGONALS)
def test_diagonal_is_a_view_as_in_pytorch(shape, offset, dim1, dim2):
    """``cov.diagonal().add_(eps)`` changed nothing: tracegrad's diagonal was a gather (a
    copy), PyTorch's is a view. Now it is a view of the flattened matrix; the values, the
    base after an in-place change through it, and the gradient through that change are
    PyTorch's (float64)."""
    def run(lib):
        x = lib.arange(float(np.prod(shape)), dtype=lib.float64).reshape(shape)
        x.requires_grad_()
        y = x * 2
        d = y.diagonal(offset, dim1, dim2)
        before = arr(d).copy()
        d.mul_(lib.arange(1.0, d.shape[-1] + 1.0, dtype=lib.float64))
        (y * y).sum().backward()
        with lib.no_grad():
            x.diagonal(offset, dim1, dim2).fill_(-1.0)
        return before, arr(y), arr(x.grad), arr(x)

    mine, theirs = both(run)
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(a, b)


_SLICED = {  # a view of a (4, 5) matrix whose rows do not flatten without a copy
    "columns": lambda t: t[:, 1:], "every other row": lambda t: t[::2],
    "block": lambda t: t[1:, :3],
    "transposed, sliced": lambda t: t.T[1:], "strided both ways": lambda t: t[::2, ::2],
    "one row": lambda t: t[2:3, 1:]}


@pytest.mark.parametrize("offset", [0, 1, -1, 3, -5])
@pytest.mark.parametrize("view", sorted(_SLICED))
def test_diagonal_of_a_sliced_matrix_is_a_view_as_in_pytorch(view, offset):
    """``x[:, 1:].diagonal().fill_(0)`` changed nothing: the diagonal of a matrix whose
    rows are strided was a copy, so writes through it were lost, and a later write to the
    matrix was not seen in it. It is the progression in memory now; values, the base after
    writes either way, and gradients through them are PyTorch's (float64)."""
    def run(lib):
        x = lib.arange(20.0, dtype=lib.float64).reshape(4, 5)
        x.requires_grad_()
        y = x * 2
        d = _SLICED[view](y).diagonal(offset)
        before = arr(d).copy()
        d.mul_(lib.arange(1.0, d.shape[-1] + 1.0, dtype=lib.float64))
        (y * y).sum().backward()
        with lib.no_grad():
            dx = _SLICED[view](x).diagonal(offset)
            dx.fill_(-1.0)
            x.add_(0.5)  # seen through the diagonal
        return before, arr(y), arr(x.grad), arr(x), arr(dx)

    mine, theirs = both(run)
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(a, b)


def test_compiled_in_place_on_a_diagonal_of_a_sliced_matrix_matches_eager():
    def f(a, w, z):
        c = a * w
        c[:, 1:].diagonal().add_(10.0)
        return (c * c).sum(), z[::2].diagonal(1).mul_(3)

    got = []
    for compiled in (False, True):
        g = tg.compile(f) if compiled else f
        for _ in range(2):
            a, w = tg.arange(12.0).reshape(3, 4), tg.ones(3, 4, requires_grad=True)
            z = tg.arange(12.0).reshape(3, 4)
            total, d = g(a, w, z)
            total.backward()
        d.add_(100)  # a view of z, as eager's
        got.append((total.item(), w.grad.tolist(), a.tolist(), z.tolist(), d.tolist()))
    assert got[1] == got[0]


def test_diagonal_of_a_tensor_that_cannot_be_flattened_is_a_view_as_in_pytorch():
    """A diagonal of a permuted 3-d tensor whose planes do not flatten without a copy reads
    PyTorch's values and, as there, is a view: a write through it reaches the tensor."""
    x = np.arange(24.0).reshape(2, 3, 4)
    mine, theirs = tg.tensor(x), torch.tensor(x)
    got = mine.permute(2, 0, 1).diagonal(0, 0, 2)
    want = theirs.permute(2, 0, 1).diagonal(0, 0, 2)
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    got.mul_(-1)
    want.mul_(-1)
    np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


@pytest.mark.parametrize("shape, wrap", [((3, 3), False), ((3, 5), False), ((7, 3), False),
                                         ((7, 3), True), ((3, 3, 3), False)])
def test_fill_diagonal_matches_pytorch(shape, wrap):
    got = tg.zeros(*shape).fill_diagonal_(2.5, wrap=wrap)
    want = torch.zeros(*shape).fill_diagonal_(2.5, wrap=wrap)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_compiled_in_place_on_a_diagonal_matches_eager():
    def jitter(cov, w, z):
        c = cov + w * w
        c.diagonal().add_(0.5)
        return (c * c).sum(), z.diagonal().mul_(2)

    got = []
    for compiled in (False, True):
        f = tg.compile(jitter) if compiled else jitter
        for _ in range(3):
            cov, z = tg.arange(9.0).reshape(3, 3), tg.arange(9.0).reshape(3, 3)
            w = tg.ones(3, 3, requires_grad=True)
            total, d = f(cov, w, z)
            total.backward()
        d.add_(100)
        got.append((total.item(), w.grad.tolist(), cov.tolist(), z.tolist(), d.tolist()))
    assert got[1] == got[0]
