"""Every primitive's declared facts are honest: each VJP rule is traced with tracegrad's own
tracer, for every mask of the inputs that require grad, and what the traced rule does is
checked against what the primitive declares (ops.base: `register`, `FACTS`).

- ``reads``: the values (out and inputs) the traced rule's outputs depend on are exactly the
  declared ones (a declaration may be conservative only if listed in CONSERVATIVE);
- "arithmetic": a rule (or per-input gradient) declared arithmetic traces to elementwise
  arithmetic and comparisons only, computes something, and gives the same numbers on bare
  ndarrays as on tensors; one that is not declared arithmetic does not;
- "into_g": the rule's last operation is a mul/div whose first operand is g (or neg g), or
  the neg of g, with g used nowhere else; exactly the rules declaring it look like that;
- "passes_gradient": for same-shape operands, the rule hands back g itself.

Then the compiler's name sets, derived from the declarations, are the sets they were when
they were written out by hand; and a primitive registered at runtime runs eagerly, with a
gradient, and compiles (fused) with no other change.
"""

from __future__ import annotations

import importlib
import itertools

import numpy as np
import pytest

import tracegrad as tg
from tracegrad.compiler.ir import walk_topological
from tracegrad.compiler.trace import TensorSpec, run_traced
from tracegrad.ops import PRIMITIVES as P
from tracegrad.ops.base import positions, register, unregister
from tracegrad.ops.movement import SLOT

tensor_mod = importlib.import_module("tracegrad.tensor")
F32, I64, BOOL = np.dtype(np.float32), np.dtype(np.int64), np.dtype(bool)

# Example calls of every primitive with a VJP: ([(shape, dtype) per operand], attrs).
# Several per op where a rule takes different paths (broadcasting, 1-d matmul operands).
UNARY_MATH = ["neg", "exp", "log", "sqrt", "tanh", "sin", "cos", "sigmoid", "softplus", "erf",
              "normal_cdf", "normal_cdf_tanh", "relu", "tan", "asin", "acos", "atan", "asinh",
              "acosh", "atanh", "erfc", "abs"]
# the special functions (SciPy's): float methods with gradients, neither fused nor ufuncs
SPECIAL = {"lgamma", "digamma", "erfinv", "i0", "i1"}
BINARY_MATH = ["add", "sub", "mul", "div", "pow", "maximum", "atan2", "xlogy"]
# the integer bit operations (no gradient; NumPy ufuncs): primitive -> ufunc name
BITWISE = {"bitwise_and": "bitwise_and", "bitwise_or": "bitwise_or",
           "bitwise_xor": "bitwise_xor", "bitwise_not": "invert",
           "bitwise_left_shift": "left_shift", "bitwise_right_shift": "right_shift",
           "gcd": "gcd", "lcm": "lcm"}
INVERSE_TRIG = {"tan", "asin", "acos", "atan", "asinh", "acosh", "atanh", "atan2"}
EXAMPLES: dict[str, list] = {
    **{op: [([((3, 4), F32)], {})] for op in UNARY_MATH},
    **{op: [([((3, 4), F32)], {})] for op in sorted(SPECIAL)},
    "polygamma": [([((3, 4), F32)], {"n": 0}), ([((3, 4), F32)], {"n": 2})],
    **{op: [([((3, 4), F32), ((3, 4), F32)], {}), ([((3, 4), F32), ((4,), F32)], {}),
            ([((1, 4), F32), ((3, 1), F32)], {})] for op in BINARY_MATH},
    "where": [([((3, 4), BOOL), ((3, 4), F32), ((4,), F32)], {})],
    "cast": [([((3,), F32)], {"dtype": np.dtype(np.float64)})],
    "matmul": [([((3, 4), F32), ((4, 5), F32)], {}), ([((4,), F32), ((4, 5), F32)], {}),
               ([((2, 3, 4), F32), ((4,), F32)], {}), ([((4,), F32), ((4,), F32)], {}),
               ([((2, 3, 4), F32), ((4, 5), F32)], {})],
    "linear": [([((2, 4), F32), ((3, 4), F32), ((3,), F32)], {}),
               ([((2, 5, 4), F32), ((3, 4), F32), ((1,), F32)], {})],
    "reshape": [([((3, 4), F32)], {"shape": (4, 3)})],
    "permute": [([((2, 3, 4), F32)], {"dims": (2, 0, 1)})],
    "expand": [([((3, 1), F32)], {"shape": (2, 3, 4)})],
    "pad": [([((3, 4), F32)], {"pads": ((1, 0), (0, 2)), "value": 0.0})],
    "getitem": [([((5, 4), F32)], {"index": (slice(1, 3),)}),
                ([((5, 4), F32), ((2,), I64)], {"index": (SLOT,)})],
    "scatter_add": [([((2, 4), F32), ((2,), I64)], {"index": (SLOT,), "shape": (5, 4)})],
    "as_strided": [([((12,), F32)], {"shape": (4, 3), "strides": (2, 1), "offset": 1})],
    "setitem": [([((5, 4), F32), ((2, 4), F32), ((2,), I64)], {"index": (SLOT,)})],
    "cat": [([((2, 3), F32), ((4, 3), F32)], {"dim": 0})],
    "sum": [([((3, 4), F32)], {"axes": (1,), "keepdim": False})],
    "max": [([((3, 4), F32)], {"axes": (1,), "keepdim": False})],
    "min": [([((3, 4), F32)], {"axes": (0, 1), "keepdim": True})],
    "log_softmax": [([((3, 4), F32)], {"axis": 1})],
    "softmax": [([((3, 4), F32)], {"axis": 1})],
    "im2col": [([((2, 5, 3), F32)], {"kernel": (2,), "stride": (1,), "dilation": (1,)})],
    "col2im": [([((2, 2, 4, 3), F32)], {"kernel": (2,), "stride": (1,), "dilation": (1,),
                                        "shape": (2, 5, 3)})],
    # tg.linalg (test_jvp_rules makes the operands of eigh, eigvalsh and cholesky
    # symmetric positive-definite, and their tangents symmetric)
    "inv": [([((3, 3), F32)], {})],
    "solve": [([((3, 3), F32), ((3, 2), F32)], {}), ([((2, 3, 3), F32), ((3, 2), F32)], {})],
    "det": [([((3, 3), F32)], {}), ([((2, 3, 3), F32)], {})],
    "cofactor": [([((3, 3), F32)], {}), ([((2, 3, 3), F32)], {})],
    "slogdet": [([((3, 3), F32)], {})],
    "cholesky": [([((3, 3), F32)], {})],
    "eigh": [([((3, 3), F32)], {"UPLO": "L"})],
    "eigvalsh": [([((3, 3), F32)], {"UPLO": "L"})],
    "svd": [([((4, 3), F32)], {"full_matrices": False}), ([((3, 4), F32)],
                                                          {"full_matrices": False}),
            ([((3, 3), F32)], {"full_matrices": True})],
    "svdvals": [([((4, 3), F32)], {})],
    "qr": [([((4, 3), F32)], {"mode": "reduced"}), ([((3, 4), F32)], {"mode": "reduced"})],
    "pinv": [([((4, 3), F32)], {"atol": 0.0, "rtol": 1e-7, "hermitian": False})],
    "matrix_exp": [([((3, 3), F32)], {}), ([((2, 3, 3), F32)], {})],
    "nll": [([((3, 4), F32), ((3,), I64)], {"ignore_index": -100, "reduction": "mean"}),
            ([((3, 4), F32), ((3,), I64)], {"ignore_index": -100, "reduction": "sum"})],
    "check": [([((3, 4), F32)], {"test": "finite", "args": (), "error": "ValueError",
                                 "message": "not finite: {value}"})],
}
# Declarations that say a rule reads more than its trace shows, and why. (None today.)
CONSERVATIVE: dict[str, str] = {}

ARITHMETIC_OPS = {"add", "sub", "mul", "div", "pow", "neg", "lt", "le", "gt", "ge", "eq", "ne",
                  "cast"}  # (cast: the tensor layer's promotion of a bool mask)


class Avals:
    def __init__(self, shape, dtype):
        self.shape, self.dtype = shape, dtype


def _cases():
    for name, examples in EXAMPLES.items():
        for k, (operands, attrs) in enumerate(examples):
            differentiable = [i for i, (_, dt) in enumerate(operands) if dt.kind == "f"]
            for r in range(1, len(differentiable) + 1):
                for chosen in itertools.combinations(differentiable, r):
                    mask = sum(1 << i for i in chosen)
                    yield pytest.param(name, operands, attrs, mask, id=f"{name}-{k}-{mask:b}")


# Rules that solve with a factor packed in ``out`` (qr's R): traced with out's real value
# for example operands, since a placeholder's (all ones) is singular.
REAL_OUT = {"qr"}


def _trace(fn, operands, attrs, mask, out_aval, out_value=None):
    """Trace ``fn(g, out, *operands, **attrs)``; the graph, and the input node of each of
    (g, out, *operands)."""
    specs = [TensorSpec(out_aval[0], out_aval[1]),
             TensorSpec(out_aval[0], out_aval[1]) if out_value is None else out_value]
    specs += [TensorSpec(shape, dt, requires_grad=bool(mask >> i & 1))
              for i, (shape, dt) in enumerate(operands)]
    graph, capture = run_traced(lambda *args: fn(*args, **attrs), tuple(specs), {})
    nodes = dict(capture.arg_paths)
    return graph, [nodes[f"arg{k}"] for k in range(len(specs))]


def _used(graph, inputs):
    """Which of ``inputs`` the outputs of ``graph`` depend on."""
    reached = {id(n) for n in walk_topological(graph.outputs)}
    return [id(n) in reached for n in inputs]


def _declared_reads(prim, n, mask):
    return set(itertools.compress(("out",) + positions(prim.inputs, n),
                                  prim.reads[n - 1][mask] if n <= 2 else
                                  _reads_any_n(prim, n, mask)))


def _reads_any_n(prim, n, mask):
    from tracegrad.ops.base import reads_for

    return reads_for(prim, n, mask)


@pytest.mark.parametrize("name, operands, attrs, mask", list(_cases()))
def test_a_rule_reads_what_it_declares(name, operands, attrs, mask):
    prim = P[name]
    n = len(operands)
    out_aval = prim.infer(*[Avals(s, d) for s, d in operands], **attrs)
    out_value = None
    if name in REAL_OUT:
        arrays = _example_arrays(operands, np.random.default_rng(0))
        out_value = tg.tensor(prim.forward(*arrays, **attrs))
    graph, nodes = _trace(prim.vjp, operands, attrs, mask, out_aval, out_value)
    names = ("g", "out") + positions(prim.inputs, n)
    used = {nm for nm, u in zip(names, _used(graph, nodes)) if u} - {"g"}
    declared = _declared_reads(prim, n, mask)
    if name in CONSERVATIVE:
        assert used <= declared, f"{name} (mask {mask:b}) reads {used}, declares {declared}"
    else:
        assert used == declared, f"{name} (mask {mask:b}) reads {used}, declares {declared}"


def _is_arithmetic(graph, nodes) -> bool:
    """Only elementwise arithmetic, computing something (not returning an input itself)."""
    inputs = {id(n) for n in nodes}
    body = [n for n in walk_topological(graph.outputs) if id(n) not in inputs]
    return all(n.op in ARITHMETIC_OPS or n.op == "const" for n in body) and all(
        id(o) not in inputs for o in graph.outputs)


def _writes_into_g(graph, nodes) -> bool:
    """(g * e,), (g / e,), ((-g) * e,), (-g,): g's one use is where the last op writes."""
    g = nodes[0]
    if len(graph.outputs) != 1:
        return False
    (last,) = graph.outputs
    body = walk_topological(graph.outputs)
    uses = [n for n in body for i in n.inputs if i is g]
    if last.op == "neg":
        return last.inputs[0] is g and len(uses) == 1
    if last.op not in ("mul", "div"):
        return False
    first = last.inputs[0]
    if first is not g and not (first.op == "neg" and first.inputs[0] is g):
        return False
    return len(uses) == 1 and sum(1 for n in body for i in n.inputs if i is first) == 1


def _arithmetic_functions(prim, n):
    """(input index, function of (g, out, *inputs)) whose arithmetic fact is declared."""
    if prim.per_input is not None:
        return [(i, lambda *a, _f=f, **k: (_f(*a, **k),)) for i, f in enumerate(prim.per_input)]
    return [(0, prim.vjp)] if n == 1 else []


@pytest.mark.parametrize("name", UNARY_MATH + BINARY_MATH)
def test_arithmetic_and_into_g_are_what_the_rules_do(name):
    prim = P[name]
    operands, attrs = EXAMPLES[name][0]
    n = len(operands)
    out_aval = prim.infer(*[Avals(s, d) for s, d in operands], **attrs)
    rng = np.random.default_rng(0)
    arrays = [rng.uniform(0.5, 2.0, size=out_aval[0]).astype(F32) for _ in range(2)]
    arrays += [rng.uniform(0.5, 2.0, size=s).astype(d) for s, d in operands]
    for i, fn in _arithmetic_functions(prim, n):
        graph, nodes = _trace(fn, operands, attrs, 1 << i, out_aval)
        declared = prim.arithmetic[n - 1][1 << i]
        assert _is_arithmetic(graph, nodes) == declared, f"{name}: input {i} arithmetic"
        if n == 1:
            # (only an arithmetic rule runs on arrays, where into_g is used)
            assert (declared and _writes_into_g(graph, nodes)) == prim.in_place, \
                f"{name}: into_g"
        if declared:  # the reason it matters: bare ndarrays give the same numbers
            on_arrays = fn(*arrays)[0]
            tensors = [tg.tensor(a, requires_grad=k >= 2 and (k - 2) == i)
                       for k, a in enumerate(arrays)]
            with tg.no_grad():
                on_tensors = fn(*tensors)[0]
            assert isinstance(on_arrays, np.ndarray) and on_arrays.dtype == on_tensors.dtype
            np.testing.assert_allclose(on_arrays, on_tensors.numpy(), rtol=1e-6)
    if prim.per_input is not None:  # same shapes: add hands g itself to both inputs
        graph, nodes = _trace(prim.vjp, operands, attrs, 0b11, out_aval)
        passes = all(o is nodes[0] for o in graph.outputs)
        assert passes == prim.passes_gradient, f"{name}: passes_gradient"


def test_facts_hang_together():
    for name, p in P.items():
        assert not p.fusible or p.elementwise, name
        assert not p.overwrites or p.elementwise, name
        assert not p.in_place or p.arithmetic[0][1], name
        if p.vjp is not None and name not in ("rand",):
            assert name in EXAMPLES, f"{name} has a VJP but no example in EXAMPLES"


def test_derived_compiler_sets_are_the_ones_written_out_before():
    from tracegrad.compiler.backends import get_backend
    from tracegrad.compiler.backends import numpy as backend
    from tracegrad.ops import methods

    cse, fold_constants, simplify, plan_memory = (
        importlib.import_module(f"tracegrad.compiler.passes.{name}")
        for name in ("cse", "fold_constants", "simplify", "plan_memory"))
    numpy_backend = get_backend("numpy")
    ops = [*P, "kernel"]

    def fuses(b):
        return {op for op in P if b.fuses(op)}

    def writes_into(b):
        return {op for op in ops if b.writes_into(op)}

    def overwrites(b):
        return {op for op in ops if b.overwrites(op)}

    assert fuses(numpy_backend) == {
        "neg", "exp", "log", "sqrt", "tanh", "sin", "cos", "sigmoid", "erf", "relu", "sign",
        "abs", "softplus", "add", "sub", "mul", "div", "pow", "maximum", "normal_cdf",
        "normal_cdf_tanh", "erfc", "xlogy"} | INVERSE_TRIG
    # (neg too, whose own rules in simplify.RULES come first, as before)
    assert {op for op in P if simplify.is_unary(op)} == {
        "exp", "log", "sqrt", "tanh", "sin", "cos", "sign", "abs", "relu", "sigmoid",
        "softplus", "erf", "neg", "normal_cdf", "normal_cdf_tanh", "erfc"} | \
        INVERSE_TRIG - {"atan2"}
    assert writes_into(numpy_backend) == {
        "neg", "exp", "log", "sqrt", "tanh", "sin", "cos", "sign", "abs", "relu", "sigmoid",
        "softplus", "erf", "add", "sub", "mul", "div", "pow", "maximum", "lt", "le", "gt",
        "ge", "eq", "ne", "cast", "sum", "max", "min", "argmax", "argmin", "matmul", "kernel",
        "scatter_add", "cat", "setitem", "normal_cdf", "normal_cdf_tanh", "erfc",
        "signbit", "xlogy"} | INVERSE_TRIG | set(BITWISE)
    assert overwrites(numpy_backend) == {
        "neg", "exp", "log", "sqrt", "tanh", "sin", "cos", "sign", "abs", "relu", "softplus",
        "erf", "add", "sub", "mul", "div", "pow", "maximum", "cast", "kernel", "normal_cdf",
        "normal_cdf_tanh", "erfc", "xlogy"} | INVERSE_TRIG
    before = {
        "neg": "negative", "exp": "exp", "log": "log", "sqrt": "sqrt", "tanh": "tanh",
        "sin": "sin", "cos": "cos", "sign": "sign", "add": "add", "sub": "subtract",
        "mul": "multiply", "div": "true_divide", "pow": "power", "maximum": "maximum",
        "lt": "less", "le": "less_equal", "gt": "greater", "ge": "greater_equal",
        "eq": "equal", "ne": "not_equal", "tan": "tan", "asin": "arcsin", "acos": "arccos",
        "atan": "arctan", "asinh": "arcsinh", "acosh": "arccosh", "atanh": "arctanh",
        "atan2": "arctan2", "signbit": "signbit", "abs": "absolute", **BITWISE}
    # the same ufuncs (np.true_divide is np.divide; its name is "divide")
    assert {op: P[op].ufunc for op in backend.UFUNC_OPS} == \
        {op: getattr(np, u) for op, u in before.items()}
    assert methods.FLOAT_ONLY == {"exp", "log", "sqrt", "tanh", "sin", "cos", "sigmoid", "erf",
                                  "softplus", "div", "normal_cdf", "normal_cdf_tanh",
                                  "erfc", "xlogy"} | INVERSE_TRIG | SPECIAL
    assert set(methods.UNARY_METHODS) == {"exp", "log", "sqrt", "tanh", "sin", "cos", "sign",
                                          "sigmoid", "relu", "erf", "softplus", "floor",
                                          "ceil", "round", "erfc"} | INVERSE_TRIG - {"atan2"} \
        | SPECIAL
    assert cse.RANDOM == fold_constants.RANDOM == {"rand", "poisson"}
    assert plan_memory.VIEWS == {"reshape", "permute", "expand", "getitem", "as_strided",
                                  "check"}
    assert {n for n, p in P.items() if p.in_place} == {"neg", "exp", "log", "sqrt", "tanh",
                                                       "relu", "normal_cdf_tanh"} | \
        INVERSE_TRIG - {"atan2"}


def _example_arrays(operands, rng):
    arrays = [rng.integers(0, 3, shape).astype(dt) if dt.kind != "f" else
              rng.standard_normal(shape).astype(dt) for shape, dt in operands]
    # square float matrices symmetric positive-definite (for cholesky, eigh)
    return [a @ np.swapaxes(a, -1, -2) + np.eye(a.shape[-1], dtype=a.dtype)
            if a.dtype.kind == "f" and a.ndim >= 2 and a.shape[-1] == a.shape[-2] else a
            for a in arrays]


def test_the_view_fact_is_what_the_forwards_do():
    """A primitive whose forward can return memory of its first operand declares "view" (the
    memory plan and the engine rely on it), and one that declares it does so on an example."""
    rng = np.random.default_rng(0)
    for name, examples in EXAMPLES.items():
        prim = P[name]
        shares = []
        for operands, attrs in examples:
            arrays = _example_arrays(operands, rng)
            with np.errstate(all="ignore"):
                out = np.asarray(prim.forward(*arrays, **attrs))
            shares.append(bool(out.size) and np.shares_memory(out, arrays[0]))
        if prim.view:
            assert any(shares), f"{name} declares 'view' but never returns a view"
        else:
            assert not any(shares), f"{name} returns a view of its operand but does not " \
                                    f"declare 'view'"


# ---------------------------------------------------------------- a primitive added at runtime


@pytest.fixture
def cube():
    """``cube``, a new elementwise unary primitive, registered as docs/ops.md shows."""
    prim = register(
        "cube", "elementwise", lambda x: x ** 3, lambda x: (tuple(x.shape), x.dtype),
        lambda g, out, x: (g * 3 * x * x,), reads="x",
        facts="fusible overwrites arithmetic")
    try:
        yield prim
    finally:
        unregister("cube")


def test_a_primitive_registered_at_runtime_runs_differentiates_and_compiles(cube):
    from tracegrad.compiler.api import optimize
    from tracegrad.compiler.backends import get_backend

    apply = tensor_mod.apply
    numpy_backend = get_backend("numpy")
    assert numpy_backend.fuses("cube") and numpy_backend.writes_into("cube")
    assert numpy_backend.overwrites("cube")

    def f(x):
        return (apply(cube, x * 2) + 1).sum()

    xs = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype=np.float32)
    x = tg.tensor(xs, requires_grad=True)
    y = f(x)
    y.backward()
    np.testing.assert_allclose(y.item(), ((2 * xs) ** 3 + 1).sum(), rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), 24 * xs ** 2, rtol=1e-6)
    # and the same with create_graph (the rule on tensors, not bare arrays)
    x2 = tg.tensor(xs, requires_grad=True)
    f(x2).backward(create_graph=True)
    assert x2.grad.requires_grad
    np.testing.assert_allclose(x2.grad.numpy(), 24 * xs ** 2, rtol=1e-6)

    graph, _, _ = optimize(tg.trace(f, TensorSpec(xs.shape)))
    kernels = [n for n in graph.nodes if n.op == "kernel"]
    assert [[s.op for s in k.value] for k in kernels] == [["mul", "cube", "add", "sum"]]

    compiled = tg.compile(f)
    xc = tg.tensor(xs, requires_grad=True)
    for _ in range(3):
        xc.grad = None
        yc = compiled(xc)
        yc.backward()
    np.testing.assert_allclose(yc.item(), y.item(), rtol=1e-6)
    np.testing.assert_allclose(xc.grad.numpy(), x.grad.numpy(), rtol=1e-6)
    assert "cube_forward(" in compiled.source()


def test_a_wrong_declaration_fails_loudly():
    with pytest.raises(ValueError, match="unknown fact"):
        register("oops", "elementwise", np.exp, None, None, facts="fusable")
    with pytest.raises(ValueError, match="neither 'out' nor an input"):
        register("oops", "elementwise", np.exp, None, lambda g, out, x: (g,), reads="y")
    with pytest.raises(ValueError, match="not a NumPy ufunc"):
        register("oops", "elementwise", lambda x: x, None, None, facts="ufunc")
    assert "oops" not in P
