"""tg.compile's dynamic dimensions (compiler/dynamic.py): one variant serves every size of a
dimension that changed between calls, and never gives a number eager mode would not."""

import contextlib
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracegrad as tg
import tracegrad.nn as nn
import tracegrad.nn.functional as F
from tracegrad.compiler import dynamic, dynamic_program
from tracegrad.compiler.backends import c as c_backend

RNG = np.random.default_rng(0)
# the backend of a dynamic variant's program under backend="auto"
AUTO = "C" if c_backend.available() is None else "NumPy"


@pytest.fixture(autouse=True)
def _generate_at_once(monkeypatch):
    """Every size's program at its first call (not the second: see dynamic_program.BUILD_AFTER),
    so that the compiled results below are the generated programs'."""
    monkeypatch.setattr(dynamic_program, "BUILD_AFTER", 1)


def _t(*shape, dtype=np.float32):
    return tg.tensor(RNG.standard_normal(shape).astype(dtype))


def _same(compiled, eager, *args, atol=1e-5):
    got, want = compiled(*args), eager(*args)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=atol)
    assert got.shape == want.shape


def test_growing_sequence_length_one_variant_after_the_first_change():
    w = _t(8, 8)
    mask = tg.tensor(np.triu(np.full((32, 32), -np.inf, np.float32), 1))

    def attend(x):  # (1, T, 8): causal self-attention of a growing context
        T = x.shape[1]
        scores = (x @ w) @ x.transpose(1, 2) / 8 ** 0.5 + mask[:T, :T]
        return scores.softmax(-1) @ x

    f = tg.compile(attend)
    for T in range(1, 20):
        _same(f, attend, _t(1, T, 8))
    info = f.cache_info()
    # T=1 ran eagerly, T=2 compiled statically, T=3 compiled the dynamic variant
    assert info.variants == 2 and info.misses == 2, str(info)
    assert len(info.dynamic) == 1 and "argument 0 axis 1" in info.dynamic[0]


def test_a_slice_numpy_would_clamp_is_not_served_by_the_template():
    mask = tg.tensor(np.triu(np.full((6, 6), -1.0, np.float32), 1))

    def f(x):
        T = x.shape[0]
        return x + mask[:T, :T].sum(1)  # beyond T=6 the slice stays 6 long: eager raises

    c = tg.compile(f)
    for T in (2, 3, 4, 5, 6):
        _same(c, f, _t(T))
    with pytest.raises(ValueError):
        f(_t(8))
    with pytest.raises(ValueError):
        c(_t(8))


def check_last_smaller_batch(make, backend: str = "auto"):
    """Three epochs of batches of 8, 8, 8 and a last one of 5 through a training step made
    by ``make()`` (a model and its optimizer), eagerly and compiled: the same losses and
    parameters; then sizes no batch had. Returns the compiled step."""
    def stepper(model, opt):
        def step(x, y):
            opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            return loss
        return step

    (m1, o1), (m2, o2) = make(), make()
    eager, compiled = stepper(m1, o1), tg.compile(stepper(m2, o2), backend=backend)
    data = RNG.standard_normal((29, 5)).astype(np.float32)
    target = RNG.standard_normal((29, 3)).astype(np.float32)
    for _epoch in range(3):
        for start in range(0, 29, 8):  # batches of 8, 8, 8 and a last one of 5
            x, y = tg.tensor(data[start:start + 8]), tg.tensor(target[start:start + 8])
            np.testing.assert_allclose(compiled(x, y).item(), eager(x, y).item(), rtol=1e-5)
    for p, q in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(q.numpy(), p.numpy(), rtol=1e-4, atol=1e-6)
    for size in (3, 6, 2):  # sizes no batch had: one program serves them too
        x, y = tg.tensor(data[:size]), tg.tensor(target[:size])
        np.testing.assert_allclose(compiled(x, y).item(), eager(x, y).item(), rtol=1e-5)
    info = compiled.cache_info()
    assert info.variants == 2 and len(info.dynamic) == 1, str(info)
    return compiled


def test_last_smaller_batch_training_step_matches_eager():
    def make():
        tg.manual_seed(3)
        model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))
        return model, tg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    check_last_smaller_batch(make)


def test_relation_guard_recompiles_when_equal_dims_stop_being_equal():
    def f(x, y):
        return x.sum(0) * 2 + y.sum(0)

    c = tg.compile(f)
    for n in (3, 4, 5, 6):  # x and y always equal: one symbol for both
        _same(c, f, _t(n, 3), _t(n, 3))
    assert c.cache_info().variants == 2
    _same(c, f, _t(6, 3), _t(9, 3))  # no longer equal: the dynamic variant must not run
    info = c.cache_info()
    assert info.variants == 3 and "shapes" in info.reasons[-1], str(info)
    _same(c, f, _t(7, 3), _t(7, 3))  # the dynamic variant again
    assert c.cache_info().variants == 3


def test_python_branch_on_a_size_is_a_guard():
    def f(x):
        if x.shape[0] > 4:
            return x * 2
        return x * 3

    c = tg.compile(f)
    for n in (2, 3, 4, 5, 6, 7, 3, 9, 2):  # crosses the threshold both ways
        _same(c, f, _t(n, 2))
    info = c.cache_info()
    assert any("<= 4" in d for d in info.dynamic) or any("5 <= n" in d for d in info.dynamic)


def test_len_and_size_arithmetic_and_comparisons():
    def f(x):
        n = len(x)
        y = x.reshape(n * 2, -1)[: n - 1]  # size arithmetic in attributes
        if n % 2:  # a size used where it cannot be followed: compiled statically
            y = y * -1
        return y.mean(0) + x.size(0)

    c = tg.compile(f)
    for n in range(2, 10):
        _same(c, f, _t(n, 4))


def test_reshape_view_slicing_and_mean_over_the_dynamic_dim():
    def f(x):
        B, T = x.shape
        h = x.view(B, T, 1).expand(B, T, 3).reshape(B, 3 * T)
        return h[:, 1:T + 1].mean(1) + x[:, -2:].sum(1) + x.mean()

    c = tg.compile(f)
    for T in (3, 5, 7, 11, 4, 2):
        _same(c, f, _t(2, T))
    info = c.cache_info()
    assert info.variants == 2 and len(info.dynamic) == 1, str(info)


def test_floor_division_of_a_size_compiles_statically_and_stays_right():
    def f(x):
        return x[: x.shape[0] // 2].sum(0)

    c = tg.compile(f)
    for n in (4, 5, 6, 7, 8, 9):
        _same(c, f, _t(n, 3))
    assert not c.cache_info().dynamic


def test_dynamic_false_keeps_one_variant_per_shape():
    f = tg.compile(lambda x: x.exp().sum(0), dynamic=False)
    for n in (2, 3, 4, 5):
        _same(f, lambda x: x.exp().sum(0), _t(n, 3))
    info = f.cache_info()
    assert info.variants == 3 and not info.dynamic


def test_dynamic_dict_is_dynamic_from_the_first_trace():
    g = (lambda x: (x * x).sum(1))
    f = tg.compile(g, dynamic={0: 0})
    for n in (2, 3, 4, 5, 6):
        _same(f, g, _t(n, 3))
    info = f.cache_info()
    assert info.variants == 1 and len(info.dynamic) == 1, str(info)


def test_dynamic_true_counts_the_eager_first_call():
    g = (lambda x: (x * x).sum(1))
    f = tg.compile(g, dynamic=True)
    for n in (2, 3, 4, 5, 6):
        _same(f, g, _t(n, 3))
    assert f.cache_info().variants == 1


def test_sizes_zero_and_one_are_specialized():
    g = (lambda x: x.squeeze() * 2)  # squeeze drops a dimension of size 1
    f = tg.compile(g)
    for n in (3, 4, 5, 1, 2, 1):
        _same(f, g, _t(n, 1))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 24), min_size=3, max_size=8))
def test_compiled_equals_eager_at_every_size(sizes):
    w = tg.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3))

    def f(x):
        h = (x @ w).relu()
        return h.softmax(0).sum(1) + h.mean(0).sum()

    c = tg.compile(f)
    for n in sizes:
        _same(c, f, _t(n, 4))


def test_a_dimension_that_follows_n_is_never_1():
    def f(x):  # x[2:] has n - 2 rows: at n = 3 squeeze() would drop that dimension
        return x[2:].squeeze() * 2

    c = tg.compile(f)
    for n in (5, 6, 7, 3, 4, 3, 8):
        _same(c, f, _t(n, 1))
    assert any("4 <= n" in d for d in c.cache_info().dynamic), str(c.cache_info())


def test_gradients_returned_from_a_dynamic_step():
    w = tg.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2), requires_grad=True)

    def step(x):
        w.grad = None
        x.requires_grad_()
        loss = ((x @ w).tanh() ** 2).mean()
        loss.backward()
        return loss, x.grad, w.grad

    c = tg.compile(step)
    for n in (2, 3, 4, 7, 5):
        x = _t(n, 3)
        got = c(tg.tensor(x.numpy().copy()))
        want = step(tg.tensor(x.numpy().copy()))
        for a, b in zip(got, want):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    assert len(c.cache_info().dynamic) == 1, str(c.cache_info())


def test_floor_division_constant_at_the_traced_sizes_is_not_taken_for_a_constant():
    def f(x):  # T // 8 is 1 at T = 9, 10, 11: only the expression tells it is not fixed
        return x[: x.shape[0] // 8].sum(0)

    c = tg.compile(f)
    for n in (10, 9, 11, 16, 17, 24, 9):
        _same(c, f, _t(n, 2))
    assert not c.cache_info().dynamic


def test_comparison_with_a_float_is_a_guard():
    def f(x):
        return x * 2 if x.shape[0] > 4.5 else x * 3

    c = tg.compile(f)
    for n in (2, 3, 4, 5, 6, 2):
        _same(c, f, _t(n))


def test_explain_and_cache_info_name_the_dynamic_axes():
    g = (lambda x, y: x.sum(1) + y)
    f = tg.compile(g)
    for n in (2, 3, 4):
        _same(f, g, _t(n, 5), _t(n))
    info = f.cache_info()
    assert info.dynamic == ["n = argument 0 axis 0, argument 1 axis 0; 2 <= n; "
                            f"one {AUTO} program for every n; 3 size(s) served, none traced"
                            ], info.dynamic
    assert "dynamic: n = argument 0 axis 0" in str(info)
    text = str(tg.explain(f, _t(4, 5), _t(4)))
    assert "dynamic variant: n = argument 0 axis 0, argument 1 axis 0" in text


def test_an_argument_the_function_ignores_can_change_size():
    def f(x, unused):
        return x * 2

    c = tg.compile(f)
    x = _t(3)
    for n in (2, 3, 4, 5):
        _same(c, f, x, _t(n))


def _scaled(x, k, mode):
    return (x * k).sum() + (1.0 if mode == "sum" else 100.0)


def _applied(model, x):
    return model(x).sum()


def _two_linears():
    a, b = nn.Linear(4, 1), nn.Linear(4, 1)
    with tg.no_grad():
        for m, w in ((a, 1.0), (b, -1.0)):
            m.weight.fill_(w)
            m.bias.zero_()
    return a, b


@pytest.mark.parametrize("backend", ["numpy", "auto"])
def test_a_new_size_with_other_python_arguments_is_not_served_by_the_dynamic_variant(backend):
    """The dynamic variant's entry checks the tensors' shapes only: a call at a new size with
    another int, string or module argument (``f(x, k=7)``, ``step(other_model, x)``, two
    threads each training its own model through one compiled step) ran the program traced
    with the old ones, and gave their numbers."""
    c = tg.compile(_scaled, backend=backend)
    for n, k, mode in [(3, 2, "sum"), (3, 2, "sum"), (4, 2, "sum"), (5, 2, "sum"),
                       (6, 7, "sum"), (7, 2, "other"), (8, True, "sum"), (9, 2, "sum")]:
        _same(c, _scaled, _t(n), k, mode)
    a, b = _two_linears()
    c = tg.compile(_applied, backend=backend)
    with tg.no_grad():
        for model, n in [(a, 3), (a, 3), (a, 4), (a, 5), (b, 6), (b, 7), (a, 8)]:
            _same(c, _applied, model, _t(n, 4))


_ONES = [1.0] * 32  # (read by size: the first call at each new size is traced)


@pytest.mark.parametrize("backend", ["numpy", "auto"])
def test_a_new_size_in_the_call_that_follows_a_reassigned_parameter(backend):
    """A new size was admitted (run eagerly, or traced to verify it) before the variant's
    other guards were checked: after ``model.weight = Parameter(...)`` (or any change of a
    module's or optimizer's structure) a call at a new size verified it, then failed the
    variant's own guard: "AssertionError: a verified dynamic size fails its own guard"."""
    model = nn.Linear(3, 1)

    def f(x):
        return model(x).sum(0) * _ONES[x.shape[0]]

    c = tg.compile(f, backend=backend)
    with tg.no_grad():
        for n in (2, 2, 3, 4, 5, 6):
            _same(c, f, _t(n, 3))
        model.weight = nn.Parameter(tg.full((1, 3), 2.0))
        for n in (7, 8, 7, 9):
            _same(c, f, _t(n, 3))


def test_a_returned_size_is_not_frozen():
    def f(x):
        return x * 2, x.shape[0], len(x) - 1

    c = tg.compile(f)
    for n in (2, 3, 4, 5, 6):
        got, want = c(_t(n)), f(_t(n))
        assert got[1:] == want[1:] == (n, n - 1) and type(got[1]) is int


def test_cross_entropy_training_with_a_last_smaller_batch_is_one_dynamic_variant():
    def make():
        tg.manual_seed(1)
        model = nn.Sequential(nn.Embedding(11, 8), nn.Linear(8, 11))
        opt = tg.optim.AdamW(model.parameters(), lr=1e-2)

        def step(x, y):
            opt.zero_grad()
            logits = model(x)
            loss = F.cross_entropy(logits.reshape(-1, 11), y.reshape(-1))
            loss.backward()
            tg.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            return loss
        return model, step

    (m1, eager), (m2, step) = make(), make()
    compiled = tg.compile(step)
    rng = np.random.default_rng(2)
    for B in (8, 8, 8, 5, 8, 5, 3, 8):  # epochs whose last batch is smaller
        x, y = rng.integers(0, 11, (B, 6)), rng.integers(0, 11, (B, 6))
        a = eager(tg.tensor(x), tg.tensor(y)).item()
        b = compiled(tg.tensor(x), tg.tensor(y)).item()
        np.testing.assert_allclose(b, a, rtol=1e-5)
    for p, q in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(q.numpy(), p.numpy(), rtol=1e-4, atol=1e-6)
    info = compiled.cache_info()
    assert info.variants == 2 and len(info.dynamic) == 1, str(info)


def _count_programs(monkeypatch) -> list:
    """The programs (NumPy or C) generated from here on (one entry each)."""
    from tracegrad.compiler.backends import numpy as numpy_backend

    made: list = []
    generate = numpy_backend.Program.__init__

    def counted(self, *a, **k):
        made.append(1)
        return generate(self, *a, **k)

    monkeypatch.setattr(numpy_backend.Program, "__init__", counted)
    return made


@contextlib.contextmanager
def _runs_of(fn):
    """A list whose one number counts the frames of ``fn`` begun while this is active: how
    often its Python ran, eagerly or traced (a count the function itself does not read, so
    no guard sees it change; a counter it advanced would make it trace every call)."""
    runs = [0]
    code, previous = fn.__code__, sys.gettrace()

    def count(frame, event, arg):
        if event == "call" and frame.f_code is code:
            runs[0] += 1

    sys.settrace(count)
    try:
        yield runs
    finally:
        sys.settrace(previous)


def test_a_new_size_runs_compiled_at_its_first_call_with_no_trace_or_code(monkeypatch):
    def g(x, w):
        return (x @ w).relu().softmax(-1).sum(0) + x.mean(0).sum()

    w = _t(3, 4)
    f = tg.compile(g)
    for n in (2, 3, 4):  # eager, static, then (a size changed) the dynamic variant
        _same(f, g, _t(n, 3), w)
    made = _count_programs(monkeypatch)
    for n in (6, 9, 5, 40, 7, 9, 2, 100):  # new sizes run compiled at their first call
        x = _t(n, 3)
        want = g(x, w)
        with _runs_of(g) as runs:
            got = f(x, w)
        assert runs == [0], f"the function ran (eagerly or traced) at n = {n}"
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    assert made == [], "no program generated for a new size"
    info = f.cache_info()
    assert info.variants == 2, str(info)
    assert f"one {AUTO} program for every n" in info.dynamic[0] and "none traced" in \
        info.dynamic[0], info.dynamic
    assert "(n" in f.source() and "one program for every n" in f.source()


def test_a_size_read_by_the_function_is_traced_once_at_each_new_size(monkeypatch):
    def g(x):
        n, d = x.shape  # the function's own code holds the size: checked by a trace
        return x[: n - 1].sum(0) * d

    f = tg.compile(g)
    for n in (2, 3, 4):
        _same(f, g, _t(n, 3))
    made = _count_programs(monkeypatch)
    for n, traced in ((6, 1), (6, 0), (8, 1), (6, 0), (8, 0), (3, 0), (4, 0)):
        x = _t(n, 3)
        want = g(x)
        with _runs_of(g) as runs:
            np.testing.assert_allclose(f(x).numpy(), want.numpy(), rtol=1e-5)
        assert runs == [traced], n
    info = f.cache_info()
    assert made == [] and info.variants == 2, str(info)
    assert "2 checked by a trace" in info.dynamic[0], info.dynamic


def test_a_size_through_range_is_caught_at_a_size_the_traces_did_not_meet():
    # range(T) reads T's value without asking it: the three traces (at 2, 3, 4) all take
    # the first branch; the trace of each new size sees the other
    def f(x):
        k = len(list(range(x.shape[0])))
        return x * 2.0 if k < 6 else x * 3.0

    c = tg.compile(f)
    for n in (2, 3, 4, 5, 6, 7, 8, 3, 7):
        _same(c, f, _t(n, 2))


def test_programs_that_do_not_fit_one_fall_back_to_one_per_size(monkeypatch):
    def refuse(*a, **k):
        raise dynamic.NotDynamic("refused on purpose")

    monkeypatch.setattr(dynamic_program, "SymbolicProgram", refuse)
    monkeypatch.setattr(dynamic_program, "BUILD_AFTER", 2)
    from tracegrad.compiler import dynamic_variant

    monkeypatch.setattr(dynamic_variant, "SymbolicProgram", refuse)
    g = (lambda x: (x * 3).sum(0))
    f = tg.compile(g)
    for n in (2, 3, 4, 5, 6, 5, 6, 6):
        _same(f, g, _t(n, 2))
    info = f.cache_info()
    assert info.variants == 2 and info.hits == 3, str(info)  # the second 5, 6 and 6
    assert "one NumPy program per size (refused on purpose); 3 size(s) generated; 2 " \
        "call(s) ran eagerly" in info.dynamic[0], info.dynamic


def test_a_size_used_as_a_python_index_is_caught_by_the_trace_at_that_size():
    # CPython reads an int subclass's value without asking it (a list index, range()):
    # the three traces (at 3, 2, 4) see equal scales; the trace of each new size does not
    scales = [1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 3.0]

    def f(x):
        return x * scales[x.shape[0]]

    c = tg.compile(f)
    for n in (2, 3, 4, 2, 5, 6, 7, 7, 4):
        _same(c, f, _t(n))
    info = c.cache_info()
    assert any("does not serve n = 5" in r for r in info.reasons), str(info)


def test_arange_of_a_size_is_dynamic():
    def f(x):
        return x + tg.arange(x.shape[0]).float() * x.mean()

    c = tg.compile(f)
    for n in (2, 3, 4, 5, 9, 4):
        _same(c, f, _t(n))
    assert len(c.cache_info().dynamic) == 1


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_an_in_place_op_on_a_view_of_a_tensor_made_inside_serves_every_size(backend):
    # The trace wrote its own tensor's final value back into that (trace-time) tensor after
    # every call, as if it were a parameter; at a new size the write-back did not fit
    # (ValueError: could not broadcast (7, 4) into (2, 4)). Found by a random-program fuzzer.
    def f(x):
        v = x * 1.0
        v[:, 1:3] += x[:, :2]
        (v * v).sum().backward()
        return v.detach(), x.grad

    compiled = tg.compile(f, backend=backend)
    for batch in [3, 3, 2, 7, 8, 2]:
        x0 = np.random.default_rng(batch).standard_normal((batch, 4)).astype(np.float32)
        want = f(tg.tensor(x0, requires_grad=True))
        got = compiled(tg.tensor(x0, requires_grad=True))
        for g, w in zip(got, want):
            np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-6, atol=1e-6)
    assert "dynamic" in str(compiled.cache_info())
