"""tg.compile on Value programs: code reached only at run time is guarded too.

The rule: a compiled function returns eager's result or raises tg.TraceError, never a
different number. Reading the function's code finds the globals it names and the methods of
the classes it names, but not code reached through ``getattr``, or the methods of an object
built during the call by a factory it does not name. These tests change a global that only
such code reads, and check the compiled call recompiles and gives eager's number."""

import sys
import types

import pytest

import tracegrad as tg
from tracegrad import Value
from tracegrad.compiler import values_hook
from tracegrad.compiler.backends.toolchain import compiler_problem


@pytest.fixture(params=["eval", "profile", "python"])
def hook(request, monkeypatch):
    """Before Python 3.12 the frames are seen by values_hook's frame evaluation function
    (3.11) or its C profile function, or without a compiler by ``sys.setprofile``: all
    must give the same guards."""
    if request.param != "python":
        if sys.version_info < (3, 12) and compiler_problem():
            pytest.skip("no C compiler")
        if request.param == "profile":
            monkeypatch.setattr(values_hook, "eval_start", lambda callback: False)
    else:
        monkeypatch.setattr(values_hook, "_lib", [None])
    return request.param

SCALE = 2.0
OFFSET = 0.25


def _scale() -> float:
    return SCALE


# reached by name at run time: the function's code names `_HELPERS`, not `_scale`
_HELPERS = types.SimpleNamespace(ops=types.SimpleNamespace(scale=_scale))


class _Shifter:
    def shift(self, v):
        return v + OFFSET


# a factory the function finds in a list: it never names the class
_FACTORIES = [lambda: _Shifter()]


def through_getattr(x):
    f = getattr(_HELPERS.ops, "sc" + "ale")
    return (x * f()).tanh().data


def through_object_made_in_the_call(x):
    shifter = _FACTORIES[0]()
    return shifter.shift(x * x).data


def test_a_global_read_by_a_function_reached_through_getattr_is_guarded(hook):
    global SCALE
    compiled = tg.compile(through_getattr)
    x = Value(0.3)
    try:
        for scale in (2.0, 2.0, 5.0, -1.0, -1.0):
            SCALE = scale
            assert compiled(x) == through_getattr(x)
        info = compiled.cache_info()
        assert info.variants == 3 and any("SCALE" in r for r in info.reasons)
    finally:
        SCALE = 2.0


def test_a_global_read_by_a_method_of_an_object_made_during_the_call_is_guarded(hook):
    global OFFSET
    compiled = tg.compile(through_object_made_in_the_call)
    x = Value(0.7)
    try:
        for offset in (0.25, 0.25, 1.5, 1.5):
            OFFSET = offset
            assert compiled(x) == through_object_made_in_the_call(x)
        assert compiled.cache_info().variants == 2
    finally:
        OFFSET = 0.25


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="sys.monitoring is used from 3.12")
def test_the_c_hook_calls_back_once_per_code_object_and_passes_errors_on():
    if compiler_problem():
        pytest.skip("no C compiler")
    seen = []

    def twice():
        return _scale() + _scale()

    assert values_hook.start(lambda frame: seen.append(frame.f_code))
    try:
        twice()
        twice()
    finally:
        values_hook.stop()
    assert seen.count(twice.__code__) == 1 and seen.count(_scale.__code__) == 1
    assert sys.getprofile() is None

    def fail(frame):
        raise KeyError("from the callback")

    caught = None
    assert values_hook.start(fail)
    try:
        twice()
    except KeyError as e:  # (the callback's error, in the frame that started)
        caught = e
    finally:
        values_hook.stop()
    assert caught is not None and "from the callback" in str(caught)
    assert sys.getprofile() is None


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the PEP 523 hook is for 3.11")
def test_the_evaluation_hook_calls_back_once_per_code_object_and_raises_its_error():
    if compiler_problem():
        pytest.skip("no C compiler")
    seen = []

    def twice():
        return _scale() + _scale()

    assert values_hook.eval_start(lambda code, globals: seen.append((code, globals)))
    try:
        twice()
        twice()
        values_hook.eval_pause()
        _shifted = _Shifter().shift  # (not seen while paused)
        values_hook.eval_resume()
    finally:
        values_hook.eval_stop()
    codes = [code for code, _ in seen]
    assert codes.count(twice.__code__) == 1 and codes.count(_scale.__code__) == 1
    assert all(g is globals() for code, g in seen if code is _scale.__code__)
    assert _Shifter.shift.__code__ not in codes and _shifted

    def fail(code, globals):  # (the probe's code passes: the next one fails)
        if code is not values_hook._probe.__code__:
            raise KeyError("from the callback")

    assert values_hook.eval_start(fail)
    try:
        twice()  # (runs: the error waits for eval_stop)
    finally:
        with pytest.raises(KeyError, match="from the callback"):
            values_hook.eval_stop()

class _Box:
    def __getitem__(self, i):
        return i * SCALE

    def method(self, i):
        return i + SCALE


def _numbers(n):
    for i in range(n):
        yield i * SCALE


def _calls_in_a_loop(n):
    total, box = 0.0, _Box()
    for i in range(n):
        total += _scale() + box[i] + box.method(i)
    for x in _numbers(n):
        total += x
    return total


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the PEP 523 hook is for 3.11")
def test_the_evaluation_hook_sees_calls_the_interpreter_has_specialized():
    # (3.11 runs a Python call from a specialized call site, or a __getitem__, without a
    # new C-level frame evaluation unless a frame evaluation function is set: it must see
    # them all the same)
    if compiler_problem():
        pytest.skip("no C compiler")
    for _ in range(100):
        _calls_in_a_loop(30)
    seen = []
    assert values_hook.eval_start(lambda code, globals: seen.append(code))
    try:
        _calls_in_a_loop(3)
    finally:
        values_hook.eval_stop()
    for fn in (_scale, _Box.__getitem__, _Box.method, _numbers):
        assert fn.__code__ in seen


GATE_OPEN = True


class _Gated(Value):
    """A Value subclass whose children depend on a global, read only by backward()'s walk
    of the graph (which runs with the hook resting when every Value is tracegrad's own)."""

    @property
    def _a(self):  # (its first child, as the engine's walk reads it)
        return self.source if GATE_OPEN else None

    @_a.setter
    def _a(self, value):
        pass


_GATED = [lambda x: _Gated(x)]  # (reached at run time: the step never names the class)


def gated_step(w):
    g = _GATED[0](w.data * 3.0)
    g.source = w

    def back():
        w.grad += 3.0 * g.grad

    g._backward = back
    out = g * 2.0
    w.grad = 0
    out.backward()
    return w.grad


def test_a_global_read_by_a_value_subclass_during_backward_is_guarded(hook):
    global GATE_OPEN
    compiled = tg.compile(gated_step, backend="c" if not compiler_problem() else "numpy")
    w, w_eager = Value(0.5), Value(0.5)
    try:
        for gate in (True, True, False, False, True):
            GATE_OPEN = gate
            assert compiled(w) == gated_step(w_eager) == (6.0 if gate else 0)
        assert compiled.cache_info().variants == 2
    finally:
        GATE_OPEN = True


# ---------------------------------------------------------------- side effects while tracing
# (as for tensors: a compiled call runs the program, not the Python that made it)

import random  # noqa: E402

import numpy as np  # noqa: E402

HISTORY = []


def step_that_prints(x):
    y = (x * x).tanh()
    print("a step")  # runs once, while tracing
    return y.data


def step_that_appends(x):
    y = x * 2.0
    HISTORY.append(1)  # changes a global it reads
    return y.data


def step_that_draws(x):
    return (x * random.random()).data  # one draw, baked in: refused


def step_that_draws_numpy(x):
    return (x * np.random.rand()).data


def test_print_while_tracing_warns(hook, capsys):
    compiled = tg.compile(step_that_prints)
    x = Value(0.4)
    compiled(x)  # (eager, the first call)
    with pytest.warns(UserWarning, match=r"calls print\(\) at .*test_compile_values_guards"):
        assert compiled(x) == step_that_prints(x)


def test_overlapping_traces_in_two_threads_leave_print_as_it_was():
    """Two threads' traces overlap (A starts, B starts, A ends, B ends): print() is back to
    the builtin afterwards, and each trace noted only its own thread's print. (A stand-in
    per trace, each restoring the one it replaced, left A's stand-in installed.)"""
    import builtins
    import threading

    from tracegrad.compiler.values_api import CodeReads

    original = builtins.print
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def thread_a():
        with CodeReads() as reads:
            a_in.set()
            b_in.wait(10)
            print("from a", end="")
        seen["a"] = list(reads.recorder.printed)
        a_out.set()

    def thread_b():
        a_in.wait(10)
        with CodeReads() as reads:
            b_in.set()
            a_out.wait(10)
        seen["b"] = list(reads.recorder.printed)

    threads = [threading.Thread(target=thread_a), threading.Thread(target=thread_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert builtins.print is original
    assert len(seen["a"]) == 1 and seen["b"] == []


def test_changing_a_global_while_tracing_warns(hook):
    compiled = tg.compile(step_that_appends)
    x = Value(0.4)
    compiled(x)
    with pytest.warns(UserWarning, match="changes global 'HISTORY'"):
        assert compiled(x) == step_that_appends(x)


@pytest.mark.parametrize("step", [step_that_draws, step_that_draws_numpy])
def test_drawing_random_numbers_while_tracing_raises(hook, step):
    compiled = tg.compile(step)
    x = Value(0.4)
    compiled(x)
    with pytest.raises(tg.TraceError, match="draws random numbers"):
        compiled(x)


def test_a_value_argument_passed_twice_or_also_global_is_its_own_input():
    """A Value passed twice (f(x, x)), or passed and also read as a global, was one input of
    the trace, and the variant then served f(x, y) with y - y, and F(q) with q * q instead of
    q * p. Each argument is its own input now; with writes (backward) the trace is refused."""
    f = tg.compile(lambda a, b: (a - b).data)
    x, y = Value(1.0), Value(5.0)
    for _ in range(3):
        assert f(x, x) == 0.0
    assert f(x, y) == -4.0

    F = tg.compile(lambda a: (a * P).data)
    for _ in range(3):
        assert F(P) == 4.0
    assert F(Value(3.0)) == 6.0

    def step(a):
        loss = a * P
        loss.backward()
        return loss.data

    S = tg.compile(step)
    S(P)  # (eager, the first call)
    with pytest.raises(tg.TraceError, match="also passed or reached another way"):
        S(P)


P = Value(2.0)


def test_a_global_value_passed_as_the_argument_of_a_step_traced_without_it_raises():
    """Traced with a distinct Value, then called with the global Value itself: eager adds
    both roles' gradients into P.grad (4); the program wrote 2. Now it raises TraceError."""
    def step(a):
        loss = a * P
        loss.backward()
        return loss.data

    S = tg.compile(step)
    for _ in range(3):
        P.grad = 0
        q = Value(3.0)
        assert S(q) == 6.0 and q.grad == 2.0 and P.grad == 3.0
    P.grad = 0
    with pytest.raises(tg.TraceError, match="also passed or reached another way"):
        S(P)
    P.grad = 0
    assert S(Value(3.0)) == 6.0 and P.grad == 3.0


@pytest.mark.parametrize("change", ["append", "counter"])
def test_a_value_program_that_changes_a_container_argument_raises(change):
    """As for tensors: a program does not replay a change to a list or dict argument. The
    counter step, compiled, returned 2, 4, 4 (from n = 0) where eager returns 2, 4, 6."""

    def step(st):
        if change == "append":
            st["hist"].append(st["a"] * 2)
        else:
            st["n"] += 1
        return st["a"] * st["n"]

    def fresh():
        return {"a": Value(2.0), "n": 1, "hist": []}

    eager = fresh()
    assert [step(eager).data for _ in range(3)] == \
        ([2.0, 2.0, 2.0] if change == "append" else [4.0, 6.0, 8.0])
    f = tg.compile(step)
    st = fresh()
    f(st)  # eager
    with pytest.raises(tg.TraceError, match="changes a list or dict it was given"):
        f(st)


class _Parameter(Value):
    """A user's Value subclass with a flag of its own."""


def _parameters():
    ps = [_Parameter(1.0), _Parameter(2.0)]
    for p in ps:
        p.frozen = False
    return ps


_PARAMS = _parameters()
_EAGER_PARAMS = _parameters()


def _sgd_step(params, lr):
    loss = params[0] * params[1] * params[1]
    for p in params:
        p.grad = 0
    loss.backward()
    for p in params:
        if not p.frozen:
            p.data -= lr * p.grad
    return loss.data


def test_value_subclasses_are_inputs_and_their_own_attributes_are_guarded():
    """A Value subclass in a global list: its data and grad are the program's inputs (the
    step compiles once, where it recompiled on every call), the attributes it adds are
    guarded (freezing one recompiles)."""
    step = tg.compile(lambda lr: _sgd_step(_PARAMS, lr), backend="numpy")
    for _ in range(5):
        assert step(0.1) == _sgd_step(_EAGER_PARAMS, 0.1)
    assert step.cache_info().misses == 1
    _PARAMS[0].frozen = _EAGER_PARAMS[0].frozen = True
    for _ in range(3):
        assert step(0.1) == _sgd_step(_EAGER_PARAMS, 0.1)
        assert [p.data for p in _PARAMS] == [p.data for p in _EAGER_PARAMS]
    assert _PARAMS[0].data == _EAGER_PARAMS[0].data != 1.0
    assert step.cache_info().misses == 2


_RUNNING = [0.0]
_W = Value(0.5)


def _loss_with_running_average(x):
    loss = (_W * x) ** 2
    _RUNNING[0] = _RUNNING[0] * 0.9 + loss.data * 0.1
    return loss.data + _RUNNING[0]


def test_a_traced_number_stored_into_python_state_raises():
    """A running average kept in a global list: the trace stored a placeholder there, which
    the next trace read as one of its own nodes (2.475 where eager gives 2.58525)."""
    step = tg.compile(_loss_with_running_average, backend="numpy")
    assert step(1.0) == 0.275  # (the first call runs eagerly)
    for x in (2.0, 3.0):
        with pytest.raises(tg.TraceError, match=r"stores a traced number .* into global "
                                                r"'_RUNNING'"):
            step(x)
