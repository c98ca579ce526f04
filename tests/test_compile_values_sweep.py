"""The C backend runs backward() as a reverse sweep over the tape (values._record_sweep):
every op's rule, accumulation into shared children, two backward passes in one call and a
node made before the call give eager's numbers exactly, as the nodes of the NumPy backend do."""

import copy
import math

import pytest

import tracegrad as tg
from tracegrad import Value
from tracegrad.compiler import values_api
from tracegrad.compiler.backends.toolchain import compiler_problem

pytestmark = pytest.mark.skipif(compiler_problem() is not None, reason="no working C compiler")


def make_step():
    a, b = Value(0.7, label="a"), Value(-1.3, label="b")
    made_before = a * b + 0.25  # an interior node that existed before the call

    def step(x):
        h = (a * x + b).tanh() * a.sigmoid() + (b * b).exp() * 0.1 + (a * a + 1.0).log()
        y = (h ** 3 + h ** 0 + (h - x).relu() * made_before) / (x * x + 2.0)
        z = y * y + a  # fan-out: y, a read twice
        a.grad = b.grad = 0
        z.backward()
        first = (a.grad, b.grad)
        w = (a * b * x).tanh()
        w.backward()  # a second backward: adds to a.grad and b.grad
        for p in (a, b):
            p.data -= 0.1 * p.grad
        return z.data, first, w.data, made_before.grad

    return step, (a, b)


@pytest.mark.parametrize("sweep", [True, False])
def test_reverse_sweep_gives_eager_numbers_exactly(sweep, monkeypatch):
    monkeypatch.setattr(values_api, "REVERSE_SWEEP", sweep)
    eager, eager_params = make_step()
    step, params = make_step()
    compiled = tg.compile(step, backend="c")
    for k in range(6):
        x = 0.3 + 0.2 * k
        assert compiled(x) == eager(x)
        assert [p.data for p in params] == [p.data for p in eager_params]
        assert [p.grad for p in params] == [p.grad for p in eager_params]
    assert compiled.cache_info().variants == 1
    assert ("reverse sweep" in compiled.cache_info().backend) == sweep


def _flat(x):
    return [z for y in x for z in _flat(y)] if isinstance(x, (tuple, list)) else [x]


def test_the_numpy_program_runs_the_sweep_as_nodes_with_eager_numbers():
    # (traced as a sweep for both backends; values_tape.expand_sweeps makes the NumPy
    # program's nodes. NumPy's tanh, exp and log may differ from math's in the last bit.)
    eager, eager_params = make_step()
    step, params = make_step()
    compiled = tg.compile(step, backend="numpy")
    for k in range(6):
        x = 0.3 + 0.2 * k
        got, want = _flat(compiled(x)), _flat(eager(x))
        got += [p.data for p in params] + [p.grad for p in params]
        want += [p.data for p in eager_params] + [p.grad for p in eager_params]
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12)
    assert compiled.cache_info().variants == 1
    assert not {"sweep", "adj"} & {node.op for node in compiled.graph.nodes}


def test_a_custom_backward_falls_back_to_nodes():
    a = Value(0.5)

    def step(x):
        out = a * x
        out._backward = lambda: None  # a micrograd-style custom rule: nothing flows back
        a.grad = 0
        (out * 2.0).backward()
        return a.grad, out.grad

    compiled = tg.compile(step, backend="c")
    for x in (1.0, 2.0, 3.0):
        assert compiled(x) == step(x)
    assert "reverse sweep" not in compiled.cache_info().backend


def make_reads_step():
    a, b = Value(0.7, label="a"), Value(-1.3, label="b")

    def step(x):
        h = (a * x + b).tanh()
        y = h * h * a + b
        z = y * x
        a.grad = b.grad = 0
        z.backward()
        first = (h.grad, y.grad)  # grads of Values made in the call, read after the sweep
        u = y * h + a  # a second backward through nodes the first one set (y, h)
        u.backward()
        h.grad = 0.5  # set, then read: the sweep's value is gone
        v = (h * 3.0).exp()
        v.backward()
        return z.data, first, y.grad, h.grad, a.grad, b.grad

    return step


@pytest.mark.parametrize("backend", ["c", "numpy"])
def test_grads_of_values_made_in_the_call_read_after_a_sweep(backend):
    # (a Value made during the call gets its grad's node only when that grad is read)
    eager, step = make_reads_step(), make_reads_step()
    compiled = tg.compile(step, backend=backend)
    for k in range(4):
        x = 0.3 + 0.2 * k
        want, got = _flat(eager(x)), _flat(compiled(x))
        if backend == "c":
            assert got == want
        else:  # (NumPy's tanh and exp may differ from math's in the last bit)
            assert got == pytest.approx(want, rel=1e-12, abs=1e-12)
    assert compiled.cache_info().variants == 1


def make_peel_step():
    a, b = Value(0.7, label="a"), Value(-1.3, label="b")

    def step(x, big):
        dead = a * big  # made, never under the root: inf * 0 would be nan if swept
        stray = (dead + b) * a  # and what uses it, also not under the root
        neg = b * -0.0  # -0.0: an adjoint of -0.0 stays -0.0 in eager (no + 0.0 added)
        y = (a * x + b).relu() * a + neg
        a.grad = b.grad = 0
        y.backward()
        after = (y * a) * b  # made after the root: not under it either
        return y.data, a.grad, b.grad, neg.grad, dead.grad, stray.grad, after.data

    return step, (a, b)


@pytest.mark.parametrize("backend", ["c", "numpy"])
def test_the_sweep_covers_only_what_the_root_reaches(backend):
    # (the nodes a call made are swept only if the root reaches them: `dead` holds inf,
    # and a sweep over it would put nan into a.grad)
    eager, eager_params = make_peel_step()
    step, params = make_peel_step()
    compiled = tg.compile(step, backend=backend)
    for k in range(4):
        x, big = 0.3 + 0.4 * k - 0.5, float("inf")
        want, got = eager(x, big), compiled(x, big)
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12)
        assert [math.copysign(1.0, v) for v in got[1:4]] == \
            [math.copysign(1.0, v) for v in want[1:4]]
        assert [p.grad for p in params] == [p.grad for p in eager_params]
    assert compiled.cache_info().variants == 1
    if backend == "c":
        assert "reverse sweep" in compiled.cache_info().backend


def test_a_copy_of_a_node_is_not_the_node():
    # (a copy has the node's fields, its children and _seq among them, but is another
    # Value with its own grad: the sweep tells them apart by identity)
    a = Value(0.5)

    def step(x):
        h = a * x
        twin = copy.copy(h)
        y = h * 3.0 + twin * 5.0
        a.grad = 0
        y.backward()
        return a.grad, h.grad, twin.grad

    compiled = tg.compile(step, backend="c")
    for x in (1.0, 2.0, -3.0):
        assert compiled(x) == step(x)


def _read_from_disk(compiled):
    return "read from the disk cache" in compiled.cache_info().backend


@pytest.mark.parametrize("backend", ["c", "numpy"])
def test_the_disk_cache_gives_the_same_program(backend, tmp_path, monkeypatch):
    # (a second compile of the same program, as in a new process, reads the passes' result
    # and the layout back; a damaged file is compiled and written again)
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path))
    eager, _ = make_step()
    xs = [0.3 + 0.2 * k for k in range(4)]
    want = [_flat(eager(x)) for x in xs]

    def damage(how):
        for path in (tmp_path / "values").glob("*.pickle"):
            data = path.read_bytes()
            path.write_bytes(data[:len(data) // 2] if how == "truncate" else b"junk" + data)

    for how, from_disk in ((None, False), (None, True), ("truncate", False), (None, True),
                           ("garbage", False), (None, True)):
        if how:
            damage(how)
        step, _ = make_step()
        compiled = tg.compile(step, backend=backend)
        for x, w in zip(xs, want):  # (NumPy's tanh, exp, log: the last bit may differ)
            assert _flat(compiled(x)) == (w if backend == "c" else
                                          pytest.approx(w, rel=1e-12, abs=1e-12))
        assert _read_from_disk(compiled) == from_disk


def test_another_thread_computing_eagerly_while_steps_are_traced():
    # (its Values are made while the trace's node builder stands in: they are noted among
    # the trace's nodes, and the sweep leaves them out, as no root of the trace reaches them)
    import sys
    import threading

    def eager_work():
        a, b = Value(0.3), Value(-0.2)
        y = ((a * b + a) * (b + 1.0)).tanh() * 2.0
        y.backward()
        return y.data, a.grad, b.grad

    expected = eager_work()
    stop, seen = threading.Event(), []

    def worker():
        while not stop.is_set():
            seen.append(eager_work())

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # (switch threads often: inside the traces)
    thread = threading.Thread(target=worker)
    thread.start()
    try:
        for k in range(8):
            eager, eager_params = make_step()
            step, params = make_step()
            compiled = tg.compile(step, backend="c")
            for x in (0.3 + 0.1 * k, 0.5):
                assert compiled(x) == eager(x)
                assert [p.grad for p in params] == [p.grad for p in eager_params]
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(interval)
    assert seen and all(r == expected for r in seen)
