"""Dynamic variants on the C backend (compiler/dynamic_variant.py, dynamic_program.py): one C
program, compiled once, serves every size of n; its results are eager's at every size."""

import numpy as np
import pytest
from test_dynamic import check_last_smaller_batch

import tracegrad as tg
import tracegrad.nn as nn
from tracegrad.compiler import dynamic_program
from tracegrad.compiler.backends import c as c_backend
from tracegrad.compiler.dynamic import NotDynamic

pytestmark = pytest.mark.skipif(c_backend.available() is not None,
                                reason="no working C compiler")

RNG = np.random.default_rng(5)


@pytest.fixture(autouse=True)
def _generate_at_once(monkeypatch):
    monkeypatch.setattr(dynamic_program, "BUILD_AFTER", 1)


def _t(*shape, dtype=np.float32):
    return tg.tensor(RNG.standard_normal(shape).astype(dtype))


def _same(compiled, eager, *args):
    got, want = compiled(*args), eager(*args)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=2e-5, atol=1e-6)
    assert got.shape == want.shape and got.dtype == want.dtype


def _on_c(compiled) -> None:
    info = compiled.cache_info()
    assert info.backend.startswith("C (one program for every size of n"), info.backend
    assert len(info.dynamic) == 1 and "one C program for every n" in info.dynamic[0], \
        info.dynamic
    assert "tg_n" in compiled.source()


def test_a_growing_context_is_one_c_program_for_every_length():
    tg.manual_seed(0)
    C, block = 12, 40
    ln1, ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
    qkv, mlp = nn.Linear(C, 3 * C), nn.Sequential(nn.Linear(C, 4 * C), nn.GELU(),
                                                  nn.Linear(4 * C, C))
    mask = tg.tensor(np.triu(np.full((block, block), -np.inf, np.float32), 1))

    def block_fn(x):  # (1, T, C): a pre-norm transformer block on a growing context
        with tg.no_grad():
            T = x.shape[1]
            q, k, v = qkv(ln1(x)).split(C, dim=2)
            att = (q @ k.transpose(1, 2) / C ** 0.5 + mask[:T, :T]).softmax(-1)
            x = x + att @ v
            return x + mlp(ln2(x))

    f = tg.compile(block_fn, backend="c")
    for T in list(range(2, block + 1)) + [3, 17, block, 2]:
        _same(f, block_fn, _t(1, T, C))
    assert f.cache_info().variants == 2, str(f.cache_info())
    _on_c(f)


def test_sums_longer_than_the_stack_buffer_and_a_mean_of_n():
    def f(x):  # a pairwise sum over the dynamic axis, and 1/n in the C
        return (x * 2).sum(-1) + x.mean(-1) + (x.exp() / x.shape[-1]).sum(-1)

    c = tg.compile(f, backend="c")
    for n in (2, 3, 4, 5, 9000, 20000, 7):
        _same(c, f, _t(3, n))
    _on_c(c)


def test_float64_and_the_size_in_both_dims_of_a_square():
    def f(x):  # (n, n): loops of n*n iterations
        return (x @ x.T).tanh().sum(0) * 0.5

    c = tg.compile(f, backend="c")
    for n in (2, 3, 4, 6, 11, 30):
        _same(c, f, _t(n, 3, dtype=np.float64))
    _on_c(c)


def test_relation_guard_of_a_c_program():
    def f(x, y):
        return (x * 2 + y).sum(1)

    c = tg.compile(f, backend="c")
    for n in (3, 4, 5, 6):
        _same(c, f, _t(n, 3), _t(n, 3))
    _on_c(c)
    _same(c, f, _t(6, 3), _t(1, 3))  # no longer equal (y broadcasts): not the C program's
    info = c.cache_info()
    assert info.variants == 3 and "shapes" in info.reasons[-1], str(info)
    _same(c, f, _t(7, 3), _t(7, 3))
    assert c.cache_info().variants == 3


def test_last_smaller_batch_training_step_on_c_matches_eager():
    def make():
        tg.manual_seed(3)
        model = nn.Sequential(nn.Linear(5, 16), nn.GELU(), nn.LayerNorm(16), nn.Linear(16, 3))
        return model, tg.optim.AdamW(model.parameters(), lr=1e-2)

    _on_c(check_last_smaller_batch(make, "c"))


def test_c_that_does_not_fit_leaves_the_variant_on_numpy(monkeypatch):
    def refuse(sources, sizes):
        raise NotDynamic("refused on purpose")

    monkeypatch.setattr(dynamic_program, "_fit_c", refuse)
    g = (lambda x: (x * 3).sum(0))
    f = tg.compile(g, backend="c")
    for n in (2, 3, 4, 5, 9):
        _same(f, g, _t(n, 2))
    info = f.cache_info()
    assert "one NumPy program for every n" in info.dynamic[0], info.dynamic
    assert "refused on purpose" in info.backend, info.backend


def test_polynomial_literals():
    sizes = [3, 2, 4, 5, 19]
    for poly in (lambda n: 7, lambda n: 4 * n + 1, lambda n: 4 * n * n, lambda n: n * n - 3 * n):
        values = [poly(s) for s in sizes]
        expr = dynamic_program._polynomial(values, sizes)
        assert all(eval(expr, {"tg_n": s}) == poly(s) for s in (2, 8, 100, 12345)), expr
    with pytest.raises(NotDynamic):  # n // 2 fits the first three sizes only
        dynamic_program._polynomial([s // 2 * 2 for s in sizes], sizes)
    with pytest.raises(NotDynamic):  # half-integer coefficients: n (n + 1) / 2
        dynamic_program._polynomial([s * (s + 1) // 2 for s in sizes], sizes)


def test_fit_c_writes_sizes_and_constants_of_n_and_refuses_other_changes():
    sizes = [3, 2, 4, 9]

    def source(n):
        return (f"/* %1:f32[{n},{n}] */ for (intptr_t i0 = 0; i0 < {n * n * 8}; i0++) "
                f"x = ((T){float(np.float32(1.0 / (2 * n)))!r}f) + ((T)1e-05f) + q[i0*{n}];")

    text = dynamic_program._fit_c([source(s) for s in sizes], sizes)
    assert "i0 < (8*tg_n*tg_n)" in text and "q[i0*(1*tg_n)]" in text, text
    assert "((T)(1.0 / (double)(2*tg_n + 0)))" in text and "1e-05f" in text, text
    assert "/* %1:f32[3,3] */" in text  # the first's comments
    with pytest.raises(NotDynamic):
        dynamic_program._fit_c([source(s).replace("i0", "i1" if s == 4 else "i0")
                                for s in sizes], sizes)
    with pytest.raises(NotDynamic):  # a constant that is not a count nor its reciprocal
        dynamic_program._fit_c([f"x = ((T){s * 0.3!r}f);" for s in sizes], sizes)
    with pytest.raises(NotDynamic):  # three sizes do not check a polynomial
        dynamic_program._fit_c([source(s) for s in sizes[:3]], sizes[:3])


def test_a_step_that_clips_gradients_returns_eagers_loss_at_every_batch_size():
    # The row program over the predictions stored the loss's sum and the bias gradient's
    # sum into one buffer (the plan saw the loss's division, which the run defers, come
    # before the sum was made): the compiled step returned 0.0167 where eager gives 2.065,
    # with the right weights. Found by a random training-step fuzzer.
    import copy

    tg.manual_seed(0)
    models = [nn.Linear(4, 2)]
    models.append(copy.deepcopy(models[0]))

    def make(model):
        opt = tg.optim.SGD(model.parameters(), lr=0.05)

        def step(x, y):
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
            return loss
        return step

    eager, compiled = make(models[0]), tg.compile(make(models[1]), backend="c")
    rng = np.random.default_rng(0)
    for batch in [5, 8, 5, 4, 8, 33]:
        x = tg.tensor(rng.standard_normal((batch, 4)).astype(np.float32))
        y = tg.tensor(rng.standard_normal((batch, 2)).astype(np.float32))
        assert compiled(x, y).item() == pytest.approx(eager(x, y).item(), rel=1e-6)
        np.testing.assert_allclose(models[1].weight.numpy(), models[0].weight.numpy(),
                                   rtol=1e-6, atol=1e-7)
    assert "one C program for every n" in str(compiled.cache_info())
