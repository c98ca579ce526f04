"""Random numbers as torch.random: tg.Generator, generator= everywhere torch takes one, the
global generator's state, distributions' moments, and compiled functions drawing exactly
what eager code draws."""

import copy
import threading

import numpy as np
import pytest

import tracegrad as tg
from tracegrad.utils.data import RandomSampler

# Every function and in-place method with generator=, each a draw of a few hundred numbers.
DRAWS = {
    "rand": lambda g: tg.rand(4, 50, generator=g),
    "randn": lambda g: tg.randn(200, generator=g, dtype=tg.float64),
    "randint": lambda g: tg.randint(3, 90, (200,), generator=g),
    "randperm": lambda g: tg.randperm(200, generator=g),
    "rand_like": lambda g: tg.rand_like(tg.zeros(200), generator=g),
    "randn_like": lambda g: tg.randn_like(tg.zeros(200), generator=g),
    "randint_like": lambda g: tg.randint_like(tg.zeros(200), 0, 7, generator=g),
    "normal": lambda g: tg.normal(tg.zeros(200), tg.ones(200) * 2, generator=g),
    "normal(float, float, size)": lambda g: tg.normal(1.0, 3.0, (200,), generator=g),
    "bernoulli": lambda g: tg.bernoulli(tg.full((200,), 0.3), generator=g),
    "poisson": lambda g: tg.poisson(tg.full((200,), 5.0), generator=g),
    "multinomial": lambda g: tg.multinomial(tg.ones(50), 20, generator=g),
    "multinomial(replacement)": lambda g: tg.multinomial(tg.ones(5), 200, True, generator=g),
    "normal_": lambda g: tg.empty(200).normal_(1.0, 2.0, generator=g),
    "uniform_": lambda g: tg.empty(200).uniform_(-1.0, 3.0, generator=g),
    "random_": lambda g: tg.empty(200).random_(0, 100, generator=g),
    "bernoulli_": lambda g: tg.empty(200).bernoulli_(0.4, generator=g),
    "exponential_": lambda g: tg.empty(200).exponential_(2.0, generator=g),
    "cauchy_": lambda g: tg.empty(200).cauchy_(generator=g),
    "log_normal_": lambda g: tg.empty(200).log_normal_(generator=g),
    "geometric_": lambda g: tg.empty(200).geometric_(0.3, generator=g),
}


@pytest.mark.parametrize("name", sorted(DRAWS))
def test_a_seeded_generator_reproduces_every_random_function(name):
    draw = DRAWS[name]
    tg.manual_seed(0)
    global_state = tg.get_rng_state()
    a = draw(tg.Generator().manual_seed(7)).numpy()
    np.testing.assert_array_equal(tg.get_rng_state().numpy(), global_state.numpy())  # unused
    b = draw(tg.Generator().manual_seed(7)).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(draw(tg.Generator().manual_seed(8)).numpy(), a)
    g = tg.Generator().manual_seed(7)
    draw(g)
    assert not np.array_equal(draw(g).numpy(), a)  # the generator moved on


def test_a_generator_is_independent_of_the_global_generator():
    g = tg.Generator().manual_seed(3)
    tg.manual_seed(0)
    state = tg.get_rng_state()
    first = tg.randn(100, generator=g).numpy()
    np.testing.assert_array_equal(tg.get_rng_state().numpy(), state.numpy())  # untouched
    tg.manual_seed(0)
    tg.randn(100)  # the global generator's draws do not move g
    again = tg.Generator().manual_seed(3)
    again.set_state(g.get_state())
    np.testing.assert_array_equal(tg.randn(100, generator=g).numpy(),
                                  tg.randn(100, generator=again).numpy())
    assert not np.array_equal(first, tg.randn(100, generator=tg.Generator().manual_seed(4)))


def test_get_state_and_set_state_round_trip(tmp_path):
    g = tg.Generator().manual_seed(11)
    tg.randn(5, generator=g)
    state = g.get_state()
    assert isinstance(state, tg.Tensor) and state.dtype == tg.uint8 and state.ndim == 1
    after = tg.rand(50, generator=g).numpy()
    g.manual_seed(99)
    assert g.set_state(state) is g and g.initial_seed() == 11  # the seed comes back too
    np.testing.assert_array_equal(tg.rand(50, generator=g).numpy(), after)
    # through a file, into another generator; and a deep copy draws the same stream
    tg.save({"rng": state}, tmp_path / "state.safetensors")
    other = tg.Generator().set_state(tg.load(tmp_path / "state.safetensors")["rng"])
    np.testing.assert_array_equal(tg.rand(50, generator=other).numpy(), after)
    twin = copy.deepcopy(other)
    np.testing.assert_array_equal(tg.randn(20, generator=twin).numpy(),
                                  tg.randn(20, generator=other).numpy())
    # a state with half of a 64-bit word kept for the next 32-bit draw (PCG64's has_uint32)
    g._numpy().integers(0, 10, 3, dtype=np.int32)
    mid = g.get_state()
    x = g._numpy().integers(0, 2**31, 5, dtype=np.int32)
    np.testing.assert_array_equal(g.set_state(mid)._numpy().integers(0, 2**31, 5,
                                                                     dtype=np.int32), x)


def test_the_global_generator_state_functions():
    assert tg.manual_seed(5) is tg.default_generator
    assert tg.initial_seed() == 5 and tg.default_generator.initial_seed() == 5
    state = tg.get_rng_state()
    a = tg.randn(30).numpy()
    mask = tg.nn.functional.dropout(tg.ones(30), 0.5).numpy()
    tg.set_rng_state(state)
    np.testing.assert_array_equal(tg.randn(30).numpy(), a)
    np.testing.assert_array_equal(tg.nn.functional.dropout(tg.ones(30), 0.5).numpy(), mask)
    s = tg.seed()
    assert s == tg.initial_seed() and s != 5 and 0 <= s < 2**64
    tg.manual_seed(1)
    with tg.random.fork_rng():
        tg.randn(10)
    b = tg.randn(10).numpy()
    tg.manual_seed(1)
    np.testing.assert_array_equal(tg.randn(10).numpy(), b)
    assert tg.random.get_rng_state is tg.get_rng_state
    assert tg.Generator().device == tg.device("cpu")


def test_seeds_as_torch_and_bad_seeds_and_generators_raise():
    torch = pytest.importorskip("torch")  # (CI has no torch wheel for 3.10 and 3.13)

    assert tg.Generator().manual_seed(-1).initial_seed() == \
        torch.Generator().manual_seed(-1).initial_seed() == 2**64 - 1
    np.testing.assert_array_equal(tg.rand(5, generator=tg.Generator().manual_seed(-1)).numpy(),
                                  tg.rand(5, generator=tg.Generator().manual_seed(2**64 - 1)))
    for bad in (-2**63 - 1, 2**64):
        with pytest.raises(ValueError, match=r"seed must be in \[-2\*\*63, 2\*\*64\)"):
            tg.Generator().manual_seed(bad)
    for bad in (1.5, "0", True):
        with pytest.raises(TypeError, match="seed must be an int"):
            tg.manual_seed(bad)
    for bad in (3, np.random.default_rng(0), torch.Generator()):
        with pytest.raises(TypeError, match="randn: generator must be a tg.Generator"):
            tg.randn(3, generator=bad)
    with pytest.raises(TypeError, match="normal_: generator must be a tg.Generator"):
        tg.empty(3).normal_(generator=torch.Generator())
    with pytest.raises(TypeError, match="get_state returns"):
        tg.Generator().set_state(tg.zeros(45))
    with pytest.raises(TypeError, match="get_state returns"):
        tg.set_rng_state(torch.get_rng_state().numpy())
    with pytest.raises(RuntimeError, match="only"):
        tg.Generator(device="cuda")


def _moments(x):
    x = np.asarray(x, np.float64)
    return x.mean(), x.var()


N = 200_000  # fixed seeds: the tolerances below are about 6 standard errors


def test_distributions_have_their_moments():
    g = tg.Generator().manual_seed(2024)
    for name, draw, mean, var in [
        ("normal_", lambda: tg.empty(N, dtype=tg.float64).normal_(1.5, 2.0, generator=g),
         1.5, 4.0),
        ("uniform_", lambda: tg.empty(N).uniform_(-1.0, 3.0, generator=g), 1.0, 16 / 12),
        ("exponential_", lambda: tg.empty(N).exponential_(4.0, generator=g), 0.25, 1 / 16),
        ("geometric_", lambda: tg.empty(N).geometric_(0.25, generator=g), 4.0, 0.75 / 0.0625),
        ("bernoulli", lambda: tg.bernoulli(tg.full((N,), 0.3), generator=g), 0.3, 0.21),
        ("bernoulli_", lambda: tg.empty(N).bernoulli_(0.7, generator=g), 0.7, 0.21),
        ("poisson", lambda: tg.poisson(tg.full((N,), 6.0), generator=g), 6.0, 6.0),
        ("normal(tensors)", lambda: tg.normal(tg.full((N,), -2.0), tg.full((N,), 0.5),
                                              generator=g), -2.0, 0.25),
        ("normal(floats)", lambda: tg.normal(3.0, 1.0, (N,), generator=g), 3.0, 1.0),
        ("randn", lambda: tg.randn(N, generator=g), 0.0, 1.0),
        ("rand", lambda: tg.rand(N, generator=g), 0.5, 1 / 12),
        ("randint", lambda: tg.randint(-3, 7, (N,), generator=g), 1.5, (10**2 - 1) / 12),
        ("random_", lambda: tg.empty(N).random_(5, generator=g), 2.0, 2.0),
    ]:
        m, v = _moments(draw().numpy())
        assert abs(m - mean) < 6 * np.sqrt(var / N), (name, m, mean)
        assert abs(v - var) < 0.03 * var, (name, v, var)
    c = np.sort(tg.empty(N).cauchy_(1.0, 2.0, generator=g).numpy())
    quartiles = c[[N // 4, N // 2, 3 * N // 4]]  # median +- sigma
    np.testing.assert_allclose(quartiles, [-1.0, 1.0, 3.0], atol=0.05)
    logs = np.log(tg.empty(N, dtype=tg.float64).log_normal_(generator=g).numpy())
    np.testing.assert_allclose(_moments(logs), [1.0, 4.0], rtol=0.02)  # torch's defaults
    geo = tg.empty(N).geometric_(0.5, generator=g).numpy()
    assert geo.min() == 1 and (geo == np.round(geo)).all()  # trials, from 1 as torch's
    freq = np.bincount(tg.randperm(5, generator=g).numpy(), minlength=5)
    assert (freq == 1).all()


def test_uniform_float32_draws_stay_below_one():
    # seed 24's 424357th float64 draw is below 1 but rounds to a float32 1.0
    u = tg.rand(10**6, generator=tg.Generator().manual_seed(24))
    assert u.dtype == tg.float32 and u.numpy().max() < 1.0
    assert u.numpy()[424357] == np.nextafter(np.float32(1), np.float32(0))
    x = tg.empty(10**6).exponential_(generator=tg.Generator().manual_seed(24))
    assert np.isfinite(x.numpy()).all()


def test_bad_distribution_parameters_raise_as_torch():
    x = tg.empty(3)
    for call, message in [
        (lambda: x.normal_(0.0, -1.0), "normal expects std >= 0.0"),
        (lambda: x.uniform_(1.0, 0.0), r"uniform_ expects to return a \[from, to\) range"),
        (lambda: x.exponential_(0.0), "exponential_ expects lambda > 0.0"),
        (lambda: x.cauchy_(0.0, -1.0), "cauchy_ expects sigma > 0.0"),
        (lambda: x.log_normal_(1.0, 0.0), "log_normal_ expects std > 0.0"),
        (lambda: x.geometric_(1.0), r"geometric_ expects p to be in \(0, 1\)"),
        (lambda: tg.normal(tg.zeros(3), -1.0), "normal expects std >= 0.0"),
        (lambda: tg.bernoulli(tg.tensor([0.5, 1.5])), r"probabilities in \[0, 1\]"),
        (lambda: tg.poisson(tg.tensor([1.0, -1.0])), "non-negative"),
    ]:
        with pytest.raises(ValueError, match=message):
            call()
    with pytest.raises(TypeError, match="geometric_"):
        x.geometric_()  # p has no default
    with pytest.raises(TypeError, match="give size"):
        tg.normal(0.0, 1.0)
    with pytest.raises(TypeError, match="float tensor"):
        tg.empty(3, dtype=tg.int64).exponential_()


# ---------------------------------------------------------------- compiled functions


def _every_draw(x, g):
    unused = tg.rand(7, generator=g)  # eager draws it: the compiled program too
    del unused
    w = tg.empty(3).normal_(0.0, 2.0, generator=g)
    return (x * tg.randn(3, generator=g) + w + tg.randperm(3, generator=g)
            + tg.poisson(x.abs() + 1, generator=g) + tg.bernoulli(tg.full((3,), 0.5), generator=g)
            + tg.multinomial(tg.ones(3), 3, generator=g) + tg.randint(0, 5, (3,), generator=g)
            + tg.empty(3).exponential_(generator=g))


@pytest.mark.parametrize("backend", ["numpy", "auto"])
def test_compiled_draws_from_a_generator_argument_exactly_as_eager(backend):
    compiled = tg.compile(_every_draw, backend=backend)
    x = tg.tensor([0.5, -1.0, 2.0])
    eager_g, compiled_g = tg.Generator().manual_seed(5), tg.Generator().manual_seed(5)
    for _ in range(4):
        np.testing.assert_allclose(compiled(x, compiled_g).numpy(),
                                   _every_draw(x, eager_g).numpy(), rtol=1e-6)
        np.testing.assert_array_equal(compiled_g.get_state().numpy(),
                                      eager_g.get_state().numpy())
    # another generator object, then the first again
    other_e, other_c = tg.Generator().manual_seed(9), tg.Generator().manual_seed(9)
    for eager_gen, compiled_gen in [(other_e, other_c), (eager_g, compiled_g)]:
        np.testing.assert_allclose(compiled(x, compiled_gen).numpy(),
                                   _every_draw(x, eager_gen).numpy(), rtol=1e-6)


def test_compiled_draws_from_a_closure_generator_exactly_as_eager():
    g = tg.Generator()

    def f(x):
        return x + tg.randn(3, generator=g) * tg.rand(3, generator=g)

    compiled = tg.compile(f)
    for seed in (1, 1, 2):  # reseeded outside, between calls
        g.manual_seed(seed)
        eager = [f(tg.ones(3)).numpy() for _ in range(3)]
        g.manual_seed(seed)
        ours = [compiled(tg.ones(3)).numpy() for _ in range(3)]
        for a, b in zip(eager, ours):
            np.testing.assert_array_equal(a, b)


def test_compiled_draws_from_the_global_generator_exactly_as_eager():
    def f(x):
        tg.randn(4)  # unused: it still moves the generator on
        return x + tg.rand(3)

    compiled = tg.compile(f)
    tg.manual_seed(0)
    eager = [f(tg.zeros(3)).numpy() for _ in range(3)]
    tg.manual_seed(0)
    for a in eager:
        np.testing.assert_array_equal(compiled(tg.zeros(3)).numpy(), a)


def test_generator_state_and_python_side_draws_refuse_to_compile():
    g = tg.Generator().manual_seed(0)
    for fn, what in [
        (lambda x: x + tg.rand(3, generator=tg.Generator().manual_seed(0)),
         "Generator.manual_seed"),
        (lambda x: x + g.get_state()[:3], "Generator.get_state"),
        (lambda x: (tg.manual_seed(0), x + 1)[1], "tg.manual_seed"),
        (lambda x: (tg.set_rng_state(tg.get_rng_state()), x + 1)[1], "Generator.get_state"),
        (lambda x: x + tg.tensor(list(RandomSampler(range(3), generator=g))),
         "RandomSampler drawing random numbers in Python"),
        (lambda x: x + tg.nn.init.normal_(tg.zeros(3)), "nn.init.normal_ drawing"),
    ]:
        compiled = tg.compile(fn)
        with pytest.raises(tg.TraceError, match=f"{what}.*pass one in as generator="):
            for _ in range(2):  # (the first call runs eagerly, the second traces)
                compiled(tg.zeros(3))


@pytest.mark.filterwarnings("ignore:tg.compile")  # (runs changes: every call traces again)
def test_tracing_in_one_thread_does_not_rewind_another_threads_draws():
    seen, runs = [], []

    def other_thread():
        seen.append(tg.rand(3).numpy())

    def f(x):
        y = x + tg.rand(3)
        runs.append(1)
        if len(runs) == 2:  # the second call traces: another thread draws meanwhile
            t = threading.Thread(target=other_thread)
            t.start()
            t.join()
        return y

    tg.manual_seed(0)
    compiled = tg.compile(f)
    outs = [compiled(tg.zeros(3)).numpy() for _ in range(3)]  # (the first runs eagerly)
    assert len(runs) == 3 and len(seen) == 1
    tg.manual_seed(0)
    stream = [tg.rand(3).numpy() for _ in range(4)]
    np.testing.assert_array_equal(seen[0], stream[1])
    for out, expected in zip(outs, [stream[0], stream[2], stream[3]]):
        np.testing.assert_array_equal(out, expected)  # not the other thread's numbers again
    # several threads at once: every draw its own numbers, all of one seeded stream
    tg.manual_seed(1)
    chunks: list = []

    def work():
        for _ in range(50):
            chunks.append(tg.rand(64, dtype=tg.float64).numpy())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tg.manual_seed(1)
    expected = {tg.rand(64, dtype=tg.float64).numpy().tobytes() for _ in range(200)}
    assert {c.tobytes() for c in chunks} == expected
