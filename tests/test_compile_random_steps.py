"""Random programs compiled against eager mode, the way the bugs of 2026-12 were found:

- training steps of random models, optimizers and losses, called at changing batch sizes
  (so dynamic variants and the C backend's row programs run), optionally clipping the
  gradients: the loss and every parameter agree with eager after each step;
- training steps while the loop changes what they read between calls (freezing, the
  optimizer's state and parameter lists, train/eval, .grad, int arguments, batch sizes, a
  call that raises);
- random graphs of elementwise ops, row and column reductions, layer norms and casts over
  one matrix, with a backward pass: values and gradients agree.

(``python -m fuzz`` runs thousands of programs from the same generators, `fuzz.programs`;
these keep a few dozen in the suite.)
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracegrad as tg
from fuzz import campaigns
from fuzz import programs as P


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kinds=st.lists(st.sampled_from(P.LAYERS), min_size=1, max_size=4),
       optimizer=st.sampled_from(sorted(P.OPTIMIZERS)),
       loss=st.sampled_from(sorted(P.LOSSES)), clip=st.booleans(),
       batches=st.lists(st.sampled_from(P.BATCHES), min_size=4, max_size=6),
       seed=st.integers(0, 2**16))
def test_random_training_steps_agree_with_eager(kinds, optimizer, loss, clip, batches, seed):
    models, eager, compiled = P.training_pair(kinds, optimizer, loss, clip, seed)
    rng = np.random.default_rng(seed)
    for batch in batches:
        x, y = P.training_batch(rng, batch, loss)
        want = eager(x, y).item()
        assert compiled(x, y).item() == pytest.approx(want, rel=1e-4, abs=1e-6)
        for (name, p), q in zip(models[0].named_parameters(), models[1].parameters()):
            np.testing.assert_allclose(q.numpy(), p.numpy(), rtol=1e-4, atol=1e-5,
                                       err_msg=name)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(st.tuples(st.sampled_from(P.ROW_OPS), st.integers(0, 99),
                              st.integers(0, 99)), min_size=2, max_size=10),
       shape=st.sampled_from(P.ROW_SHAPES),
       dtype=st.sampled_from([np.float32, np.float64]), transposed=st.booleans(),
       seed=st.integers(0, 2**16))
def test_random_row_programs_agree_with_eager(ops, shape, dtype, transposed, seed):
    rng = np.random.default_rng(seed)
    x0, w0 = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape[1]).astype(dtype)

    def f(xt, w):
        values = P.row_program(ops, xt.T if transposed else xt, w)
        (values[-1] * 1.5).sum().backward()
        return values[-1].detach(), xt.grad, w.grad

    def call(fn):
        xt = tg.tensor(np.ascontiguousarray(x0.T) if transposed else x0, requires_grad=True)
        return [None if t is None else t.numpy()
                for t in fn(xt, tg.tensor(w0, requires_grad=True))]

    want = call(f)
    compiled = tg.compile(f, backend="c")
    tol = 1e-9 if dtype == np.float64 and not any(op == "to32" for op, *_ in ops) else 3e-4
    for _ in range(2):
        for got, expected in zip(call(compiled), want):
            assert (got is None) == (expected is None)
            if got is None:
                continue
            scale = max(1.0, float(np.abs(expected).max()))
            np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("seed", [0, 4, 9, 18])
def test_training_steps_follow_what_the_loop_changes_between_calls(seed):
    """`fuzz.campaigns.state` programs (seeds that failed before the optimizer's containers
    were watched, a parameter's first step ran eagerly and a call that raises kept eager's
    state)."""
    assert campaigns.state(seed) is None
