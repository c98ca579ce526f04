"""tg.onnx.export: models and every lowered primitive, run in ONNX Runtime against eager."""

from __future__ import annotations

import io
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tracegrad as tg
import tracegrad.nn.functional as F
from tracegrad.compiler.backends.onnx import LOWERINGS, REFUSED
from tracegrad.ops import PRIMITIVES
from tracegrad.ops.movement import SLOT
from tracegrad.tensor import apply

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))


def run(model, feed: dict) -> list[np.ndarray]:
    data = model if isinstance(model, (str, bytes, Path)) else model.SerializeToString()
    session = ort.InferenceSession(str(data) if isinstance(data, Path) else data,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feed)


def close(got: np.ndarray, expected: np.ndarray) -> None:
    """Equal up to float32 rounding (exactly for ints and bools)."""
    assert got.shape == expected.shape and got.dtype == expected.dtype, \
        (got.shape, got.dtype, expected.shape, expected.dtype)
    if expected.dtype.kind == "f":
        scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * scale)
    else:
        np.testing.assert_array_equal(got, expected)


def export_and_compare(model, args: tuple, dynamic: dict | None = None,
                       more: list[tuple] = ()) -> object:
    """Export (with the exporter's own check), then run the file in ONNX Runtime on
    ``args`` and on each argument tuple of ``more``, comparing with eager."""
    buf = io.BytesIO()
    names = [f"in{k}" for k in range(len(args))]
    proto = tg.onnx.export(model, args, buf, input_names=names, dynamic_axes=dynamic)
    with tg.no_grad():
        for a in [args, *more]:
            expected = model(*a)
            expected = expected if isinstance(expected, tuple) else (expected,)
            got = run(buf.getvalue(), {n: t.numpy() for n, t in zip(names, a)})
            for g, e in zip(got, expected):
                close(g, e.numpy())
    return proto


# ---------------------------------------------------------------- the models


class Block(tg.nn.Module):
    """A GPT block: token and position embeddings, layer norm, causal self-attention,
    a GELU MLP, and the head's softmax."""

    def __init__(self, vocab: int = 23, d: int = 16, heads: int = 2, context: int = 8):
        super().__init__()
        self.tok = tg.nn.Embedding(vocab, d)
        self.pos = tg.nn.Embedding(context, d)
        self.ln1, self.ln2 = tg.nn.LayerNorm(d), tg.nn.LayerNorm(d)
        self.qkv, self.proj = tg.nn.Linear(d, 3 * d), tg.nn.Linear(d, d)
        self.fc1, self.fc2 = tg.nn.Linear(d, 4 * d), tg.nn.Linear(4 * d, d)
        self.head = tg.nn.Linear(d, vocab)
        self.heads = heads
        self.register_buffer("mask", tg.tensor(np.tril(np.ones((context, context), bool))))

    def forward(self, idx):
        b, t = idx.shape
        x = self.tok(idx) + self.pos(tg.arange(t))
        q, k, v = self.qkv(self.ln1(x)).reshape(b, t, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)
        att = tg.where(self.mask[:t, :t], att, float("-inf")).softmax(-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, t, -1))
        x = x + self.fc2(F.gelu(self.fc1(self.ln2(x))))
        return self.head(x).softmax(-1)


class BatchNormCNN(tg.nn.Module):
    """The digits CNN's layers with batch norm (eval: running statistics) and avg pooling."""

    def __init__(self):
        super().__init__()
        self.conv = tg.nn.Conv2d(1, 4, 3, padding=1)
        self.bn = tg.nn.BatchNorm2d(4)
        self.pool = tg.nn.MaxPool2d(2)
        self.avg = tg.nn.AvgPool2d(2)
        self.head = tg.nn.Linear(4 * 2 * 2, 10)

    def forward(self, x):
        x = self.avg(self.pool(self.bn(self.conv(x)).relu()))
        return self.head(x.flatten(1))


def mixed(x, y, idx):
    """Broadcasting, reductions, indexing and where."""
    z = x[:, None, :] * y[None] + y.mean(0)             # (B, 3, 4)
    z = tg.where(z > 0, z, 0.1 * z)
    s = z.sum(dim=(1, 2)) - z.amax(dim=-1).min(dim=-1).values + x.var(-1)
    picked = x[:, idx] + x[..., ::-1][:, 1:3].exp().sum(-1, keepdim=True)
    return s, picked, z.argmax(-1), (x.abs().sqrt() - x.std(-1, keepdim=True)).clamp(-0.5, 0.5)


def _trained_stats(model):
    """Nontrivial running statistics for batch norm, as after training."""
    rng = np.random.default_rng(3)
    for m in model.modules():
        if isinstance(m, tg.nn.BatchNorm2d):
            m.running_mean = tg.tensor(rng.normal(size=m.num_features).astype(np.float32))
            m.running_var = tg.tensor(rng.uniform(0.5, 2, m.num_features).astype(np.float32))
    return model


def _models():
    from digits_cnn import DigitsCNN

    from tracegrad.demo import digits_mlp

    rng = np.random.default_rng(0)
    tg.manual_seed(0)
    images = lambda n: tg.tensor(rng.uniform(0, 1, (n, 1, 8, 8)).astype(np.float32))  # noqa
    tokens = lambda n: tg.tensor(rng.integers(0, 23, (n, 8)))  # noqa
    pixels = lambda n: tg.tensor(rng.uniform(0, 1, (n, 64)).astype(np.float32))  # noqa
    mixed_args = lambda n: (tg.randn(n, 4), tg.randn(3, 4), tg.tensor([3, 0, -1]))  # noqa
    return {
        "digits_mlp": (digits_mlp().eval(), lambda n: (pixels(n),)),
        "digits_cnn": (DigitsCNN().eval(), lambda n: (images(n),)),
        "batchnorm_cnn": (_trained_stats(BatchNormCNN()).eval(), lambda n: (images(n),)),
        "transformer_block": (Block().eval(), lambda n: (tokens(n),)),
        "mixed": (mixed, mixed_args),
    }


MODELS = _models()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_matches_eager(name):
    model, make = MODELS[name]
    export_and_compare(model, make(5))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_with_dynamic_batch_runs_at_two_sizes(name):
    model, make = MODELS[name]
    proto = export_and_compare(model, make(4), dynamic={"in0": {0: "batch"}},
                               more=[make(1), make(9)])
    x = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert x.dim_param == "batch"
    assert proto.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_initializers_are_the_parameters_under_their_names():
    model, make = MODELS["digits_mlp"]
    proto = tg.onnx.export(model, make(2), io.BytesIO())
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(inits[name], p.numpy())
    assert [i.name for i in proto.graph.input] == ["input0"]
    assert [o.name for o in proto.graph.output] == ["output0"]
    assert proto.opset_import[0].version == tg.onnx.DEFAULT_OPSET == 21


def test_path_and_file_object_write_the_same_bytes(tmp_path):
    model, make = MODELS["digits_cnn"]
    (x,) = make(2)
    tg.onnx.export(model, x, tmp_path / "m.onnx")
    buf = io.BytesIO()
    tg.onnx.export(model, x, buf)
    assert (tmp_path / "m.onnx").read_bytes() == buf.getvalue()
    close(run(str(tmp_path / "m.onnx"), {"input0": x.numpy()})[0], model(x).numpy())


def test_training_mode_is_switched_to_eval_and_back():
    tg.manual_seed(0)
    model = tg.nn.Sequential(tg.nn.Linear(6, 6), tg.nn.Dropout(0.5), tg.nn.BatchNorm1d(6))
    x = tg.randn(4, 6)
    with pytest.warns(UserWarning, match="training mode; exporting it in eval mode"):
        proto = tg.onnx.export(model, x, io.BytesIO())
    assert model.training and all(m.training for m in model.modules())
    model.eval()
    close(run(proto, {"input0": x.numpy()})[0], model(x).numpy())


def test_readme_round_trip(tmp_path, monkeypatch):
    """README's "Ship it: ONNX": the fitted line exported, loaded with
    onnxruntime.InferenceSession, and its predictions equal to tracegrad's."""
    monkeypatch.chdir(tmp_path)
    tg.manual_seed(0)
    X = tg.randn(100, 3)
    y = X @ tg.tensor([2.0, -1.0, 0.5]) + 0.3
    model = tg.nn.Linear(3, 1)
    opt = tg.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(100):
        opt.zero_grad()
        ((model(X).squeeze(1) - y) ** 2).mean().backward()
        opt.step()
    tg.onnx.export(model.eval(), X[:2], "line.onnx", input_names=["X"], output_names=["y"],
                   dynamic_axes={"X": {0: "batch"}})
    (y_onnx,) = ort.InferenceSession("line.onnx").run(None, {"X": X.numpy()})
    close(y_onnx, model(X).numpy())
    np.testing.assert_allclose(y_onnx[:, 0], y.numpy(), atol=1e-3)  # the fitted line


def test_function_with_several_outputs_and_names():
    x = tg.randn(3, 4)
    buf = io.BytesIO()
    tg.onnx.export(lambda x: (x.exp(), x.sum(0)), (x,), buf, input_names=["x"],
                   output_names=["e", "s"])
    e, s = run(buf.getvalue(), {"x": x.numpy()})
    close(e, x.exp().numpy())
    close(s, x.sum(0).numpy())


def test_output_that_is_an_input_or_repeated():
    x = tg.randn(3)
    buf = io.BytesIO()
    tg.onnx.export(lambda x: (x, x * 2, x * 2), (x,), buf)
    a, b, c = run(buf.getvalue(), {"input0": x.numpy()})
    close(a, x.numpy())
    close(b, (x * 2).numpy())
    close(c, (x * 2).numpy())


# ---------------------------------------------------------------- every lowered primitive

R = np.random.default_rng(1)


def f32(*shape, low=-2.0, high=2.0):
    return R.uniform(low, high, shape).astype(np.float32)


def i64(*shape, high=5):
    return R.integers(-high, high, shape).astype(np.int64)


def boolean(*shape):
    return R.random(shape) > 0.5


# (primitive, operands, attributes): at least one call per lowered primitive
CALLS = [
    *[(op, [f32(3, 4)], {}) for op in ("neg", "exp", "tanh", "sin", "cos", "sigmoid",
                                       "erf", "relu", "sign", "abs", "floor", "ceil")],
    ("round", [np.array([0.5, 1.5, 2.5, -0.5, -1.7, 3.2], np.float32)], {}),
    *[(op, [f32(3, 4)], {}) for op in ("atan", "asinh", "erfc")],
    ("tan", [f32(3, 4, low=-1.2, high=1.2)], {}),
    *[(op, [f32(3, 4, low=-0.99, high=0.99)], {}) for op in ("asin", "acos", "atanh")],
    ("acosh", [f32(3, 4, low=1.0, high=3.0)], {}),
    # every quadrant, signed zeros, infinities and nan (ONNX has no Atan2: see _atan2)
    ("atan2", [np.array([1, -1, 1, -1, 0, -0.0, 0, -0.0, 2, -2, 0, 0, np.inf, np.inf,
                         -np.inf, -np.inf, np.inf, 3, np.nan, 1], np.float32),
               np.array([2, 2, -2, -2, 0, 0, -0.0, -0.0, 0, -0.0, 5, -5, np.inf, -np.inf,
                         np.inf, -np.inf, 1, -np.inf, 1, np.nan], np.float32)], {}),
    ("atan2", [f32(3, 4), f32(4)], {}),
    ("xlogy", [np.array([0, -0.0, 0, 0, 1, 2, 0, 1.5], np.float32),
               np.array([0, 2, np.nan, np.inf, 0, 3, -1, 0.5], np.float32)], {}),
    ("signbit", [np.array([-2.0, -0.0, 0.0, 3.0, -np.inf, np.inf, np.nan], np.float32)], {}),
    ("signbit", [i64(6)], {}),
    ("bitwise_and", [i64(2, 3, high=9), i64(3, high=9)], {}),
    ("bitwise_or", [i64(2, 3, high=9), i64(3, high=9)], {}),
    ("bitwise_xor", [i64(2, 3, high=9), i64(3, high=9)], {}),
    ("bitwise_not", [i64(2, 3, high=9)], {}),
    ("bitwise_and", [np.array([True, False, True]), np.array([True, True, False])], {}),
    ("bitwise_xor", [np.array([True, False, True]), np.array([True, True, False])], {}),
    ("bitwise_not", [np.array([True, False])], {}),
    ("log", [f32(3, 4, low=0.1)], {}),
    ("sqrt", [f32(3, 4, low=0.0)], {}),
    ("softplus", [np.array([-100.0, -3.0, 0.0, 2.0, 50.0, 100.0], np.float32)], {}),
    *[(op, [np.array([-100.0, -5.0, -1.0, 0.0, 0.5, 3.0, 100.0], dt)], {})
      for op, dt in (("normal_cdf", np.float32), ("normal_cdf_tanh", np.float32),
                     ("normal_cdf_tanh", np.float64))],  # (ONNX Runtime has no double Erf)
    ("neg", [i64(5)], {}),
    ("relu", [i64(5)], {}),
    ("exp", [f32(2, 3).astype(np.float64)], {}),
    *[(op, [f32(3, 4), f32(4)], {}) for op in ("add", "sub", "mul", "maximum")],
    ("div", [f32(3, 4), f32(3, 1, low=0.5)], {}),
    ("pow", [f32(3, 4, low=0.1), f32(3, 4)], {}),
    ("add", [i64(2, 3), i64(3)], {}),
    ("add", [boolean(2, 3), boolean(2, 3)], {}),
    ("mul", [boolean(2, 3), boolean(3)], {}),
    ("mul", [f32(2, 3), boolean(2, 3)], {}),
    ("maximum", [boolean(4), boolean(4)], {}),
    *[(op, [f32(3, 4).round(), f32(4).round()], {}) for op in ("lt", "le", "gt", "ge", "eq",
                                                             "ne")],
    *[(op, [boolean(6), boolean(6)], {}) for op in ("lt", "gt", "eq", "ne")],
    ("where", [boolean(3, 4), f32(3, 4), f32(4)], {}),
    ("cast", [f32(3, 4) * 3], {"dtype": np.dtype(np.int64)}),
    ("cast", [f32(3, 4)], {"dtype": np.dtype(np.bool_)}),
    ("cast", [boolean(3)], {"dtype": np.dtype(np.float32)}),
    ("sum", [f32(2, 3, 4)], {"axes": (0, 2), "keepdim": False}),
    ("sum", [f32(2, 3, 4)], {"axes": (1,), "keepdim": True}),
    ("sum", [boolean(2, 3)], {"axes": (0, 1), "keepdim": False}),
    ("sum", [f32(2, 3)], {"axes": (), "keepdim": False}),
    ("max", [f32(2, 3, 4)], {"axes": (1, 2), "keepdim": True}),
    ("min", [f32(2, 3, 4)], {"axes": (0,), "keepdim": False}),
    ("argmax", [f32(3, 4)], {"axis": 1, "keepdim": False}),
    ("argmax", [f32(3, 4)], {"axis": None, "keepdim": True}),
    ("argmin", [np.array([[1, 0, 0], [2, 2, 1]], np.float32)], {"axis": -1, "keepdim": True}),
    ("argmin", [f32(3, 4)], {"axis": None, "keepdim": False}),
    ("argsort", [np.array([[3, 1, 2, 1], [0, 0, 5, -1]], np.float32)],
     {"axis": 1, "descending": False}),
    ("argsort", [np.array([[3, 1, 2, 1], [0, 0, 5, -1]], np.float32)],
     {"axis": 0, "descending": True}),
    ("reshape", [f32(2, 3, 4)], {"shape": (4, 6)}),
    ("reshape", [f32(2, 3, 4)], {"shape": (-1,)}),
    ("permute", [f32(2, 3, 4)], {"dims": (2, 0, 1)}),
    ("expand", [f32(3, 1)], {"shape": (2, 3, 4)}),
    ("pad", [f32(2, 3)], {"pads": ((1, 0), (2, 3)), "value": 0.5}),
    ("pad", [f32(2, 3)], {"pads": ((0, 0), (0, 0)), "value": 0.0}),
    ("cat", [f32(2, 3), f32(2, 1), f32(2, 2)], {"dim": 1}),
    ("im2col", [f32(2, 6, 5, 3)], {"kernel": (2, 3), "stride": (2, 1), "dilation": (1, 2)}),
    ("col2im", [f32(6, 2, 3, 1, 3)], {"kernel": (2, 3), "stride": (2, 1), "dilation": (1, 2),
                                      "shape": (2, 6, 5, 3)}),
    ("matmul", [f32(2, 3, 4), f32(4, 5)], {}),
    ("matmul", [f32(4), f32(4, 2)], {}),
    ("matmul", [f32(4), f32(4)], {}),
    ("getitem", [f32(4, 5, 6)], {"index": (slice(1, 3), slice(None, None, 2))}),
    ("getitem", [f32(4, 5, 6)], {"index": (Ellipsis, slice(None, None, -1))}),
    ("getitem", [f32(4, 5, 6)], {"index": (slice(-1, 0, -2), 2, None, slice(-3, None))}),
    ("getitem", [f32(4, 5, 6)], {"index": (-1, Ellipsis, 0)}),
    ("getitem", [f32(4, 5)], {"index": (None, slice(None), None)}),
    ("getitem", [f32(4, 5, 6), i64(2, 3, high=4)], {"index": (slice(None), SLOT)}),
    # x[i, j]: adjacent arrays at the front
    ("getitem", [f32(4, 5, 6), i64(3, high=4), i64(3, high=5)], {"index": (SLOT, SLOT)}),
    # after a slice, with an int (an int counts as an array here, as in NumPy)
    ("getitem", [f32(4, 5, 6), i64(2, 1, high=4)],
     {"index": (slice(1, None), SLOT, 1)}),
    # not adjacent: the indexed dimensions go to the front
    ("getitem", [f32(4, 5, 6), i64(2, high=4), i64(2, high=6)],
     {"index": (SLOT, slice(None), SLOT)}),
    ("setitem", [f32(4, 5), f32(5)], {"index": (slice(1, 3),)}),
    ("setitem", [f32(4, 5), f32(1, 2, 1)], {"index": (slice(None, None, 2), slice(1, 3))}),
    ("setitem", [f32(4, 5), f32(3), np.array([0, 2, -1])], {"index": (SLOT, 1)}),
    ("setitem", [i64(3, 4), i64(1)], {"index": (np.array([[True, False, True, True]] * 3),)}),
    ("scatter_add", [f32(2, 5)], {"index": (slice(1, 3),), "shape": (4, 5)}),
    ("scatter_add", [f32(4, 2), np.array([1, 3, 1, 1])],  # repeated rows add up
     {"index": (SLOT,), "shape": (5, 2)}),
    ("scatter_add", [f32(3), np.array([0, 2, 0]), np.array([1, 1, 1])],
     {"index": (SLOT, SLOT), "shape": (3, 2)}),
    ("getitem", [f32(3, 4)], {"index": (np.array([True, False, True]),)}),
    ("getitem", [f32(3, 4)], {"index": (np.array([[True, False, True, True]] * 3),)}),
    ("as_strided", [f32(3, 4)], {"shape": (4, 3), "strides": (2, 1), "offset": 1}),
    ("as_strided", [f32(10)], {"shape": (2, 3, 2), "strides": (0, 3, 1), "offset": 0}),
    # exported as Identity: ONNX has no op that raises
    ("check", [f32(3, 4)], {"test": "finite", "args": (), "error": "ValueError",
                            "message": "not finite"}),
]


def _call_id(call) -> str:
    op, operands, attrs = call
    types = ",".join(f"{a.dtype.name}{list(a.shape)}" for a in operands)
    return f"{op}({types}){attrs}"[:120]


@pytest.mark.parametrize("call", CALLS, ids=[_call_id(c) for c in CALLS])
def test_primitive_exports(call):
    op, operands, attrs = call
    prim = PRIMITIVES[op]
    args = tuple(tg.tensor(a) for a in operands)
    buf = io.BytesIO()
    proto = tg.onnx.export(lambda *xs: apply(prim, *xs, **attrs), args, buf)
    got = run(buf.getvalue(), {f"input{k}": a for k, a in enumerate(operands)})[0]
    close(got, np.asarray(prim.forward(*operands, **attrs)))
    assert {n.op_type for n in proto.graph.node} - {"Identity"} or op in ("pad", "sum", "check")


def test_every_lowering_is_tested():
    covered = {op for op, _, _ in CALLS}
    assert set(LOWERINGS) <= covered, sorted(set(LOWERINGS) - covered)


# Calls with a dynamic first axis, exported at size 3 and run at sizes 1, 3 and 7.
DYNAMIC = [
    ("reshape", lambda x: x.reshape(-1, 2, 3).sum(1)),
    ("reshape2", lambda x: x.reshape(x.shape[0] * 2, 3)),
    ("flatten_all", lambda x: x.reshape(-1)),
    ("expand", lambda x: x[:, :1].expand(x.shape[0], 6) + tg.ones(x.shape[0], 1)),
    ("slices", lambda x: x[1:, ::2] - x[:-1, 1::2]),
    ("last", lambda x: x[-1] * x[:, -1:]),
    ("transpose", lambda x: x.T @ x),
    ("argsort", lambda x: apply(PRIMITIVES["argsort"], x.T, axis=-1, descending=True)),
    ("gather", lambda x: x[tg.tensor([0, 2, 1])][:, tg.tensor([1, 1])]),
]


@pytest.mark.parametrize("name,fn", DYNAMIC, ids=[n for n, _ in DYNAMIC])
def test_dynamic_axis(name, fn):
    x = tg.tensor(f32(3, 6))
    more = [(tg.tensor(f32(n, 6)),) for n in (1, 7)] if name != "gather" else \
        [(tg.tensor(f32(n, 6)),) for n in (4, 7)]
    export_and_compare(fn, (x,), dynamic={"in0": [0]}, more=more)


def test_dynamic_axis_that_changes_the_graph_is_refused():
    with pytest.raises(tg.onnx.ExportError, match="changes with the size of the dynamic axis"):
        tg.onnx.export(lambda x: x.sum() if x.shape[0] > 3 else x.mean(), tg.randn(3),
                       io.BytesIO(), dynamic_axes={"input0": [0]})


def test_constant_from_a_dynamic_size_is_refused():
    with pytest.raises(tg.onnx.ExportError, match="computed from the size of a dynamic axis"):
        tg.onnx.export(lambda x: x.sum(0) / x.shape[0] ** 0.5, tg.randn(3, 2), io.BytesIO(),
                       dynamic_axes={"input0": [0]})


def test_mean_and_variance_over_dynamic_axes():
    """The count a mean (or a variance) divides by is computed from the sizes at run time;
    the two 8s averaging an 8 x 8 image stay two numbers (one constant in the trace)."""
    x = tg.tensor(f32(3, 6, 4))
    more = [(tg.tensor(f32(5, 9, 4)),), (tg.tensor(f32(1, 2, 4)),)]
    dyn = {"in0": {0: "b", 1: "t"}}
    export_and_compare(lambda x: (x.mean(0), x.mean((0, 1), keepdim=True), x.var((0, 1)),
                                  x.std(1, correction=0), x.sum(0) / x.shape[0]),
                       (x,), dynamic=dyn, more=more)
    export_and_compare(lambda x: F.mse_loss(x, x.tanh()), (x,), dynamic=dyn, more=more)
    image = tg.tensor(f32(2, 3, 8, 8))
    export_and_compare(lambda x: F.adaptive_avg_pool2d(x, 1).flatten(1), (image,),
                       dynamic={"in0": {0: "b", 2: "h", 3: "w"}},
                       more=[(tg.tensor(f32(1, 3, 16, 12)),)])


@pytest.mark.parametrize("fn", [lambda x: x[: x.shape[0] // 2],
                                lambda x: x[: min(x.shape[0], 5)] * 2],
                         ids=["half", "min"])
def test_a_size_taken_for_a_constant_is_caught_at_an_unseen_size(fn):
    """Sizes 4 and 5 trace the same slice; verify runs the model at a third size too."""
    with pytest.raises(tg.onnx.ExportError, match="seen by no trace"):
        tg.onnx.export(fn, tg.randn(4, 3), io.BytesIO(), dynamic_axes={"input0": [0]})


def test_a_model_that_fails_at_the_second_size_is_explained():
    with pytest.raises(tg.onnx.ExportError, match="fails at size 5 of the dynamic axis"):
        tg.onnx.export(lambda x: x.reshape(x.shape[0] // 2, -1), tg.randn(4, 3),
                       io.BytesIO(), dynamic_axes={"input0": [0]})


def test_convolutions_over_a_dynamic_length_and_image_size():
    """im2col's slices end relative to the input's end; a strided convolution's window
    count, no multiple of the size, is read off the windows tensor."""
    tg.manual_seed(0)
    tcn = tg.nn.Sequential(tg.nn.Conv1d(3, 8, 3, padding=1), tg.nn.ReLU(),
                           tg.nn.Conv1d(8, 8, 3, padding=2, dilation=2), tg.nn.ReLU(),
                           tg.nn.Conv1d(8, 2, 3, stride=2))
    export_and_compare(tcn, (tg.tensor(f32(2, 3, 10)),), dynamic={"in0": {0: "b", 2: "n"}},
                       more=[(tg.tensor(f32(1, 3, 17)),), (tg.tensor(f32(4, 3, 6)),)])
    conv = tg.nn.Conv2d(3, 4, 3, padding=1, stride=2)
    export_and_compare(conv, (tg.tensor(f32(2, 3, 8, 8)),),
                       dynamic={"in0": {0: "b", 2: "h", 3: "w"}},
                       more=[(tg.tensor(f32(1, 3, 16, 11)),)])


def test_a_cnn_over_a_dynamic_image_size():
    """Pools and strided convolutions: their output sizes and the count the global average
    divides by are read off the tensors that have them; an even example size, where a
    pool's output is the same at n and n + 1, is caught at the unseen size."""
    tg.manual_seed(0)
    cnn = tg.nn.Sequential(tg.nn.Conv2d(3, 8, 3, padding=1), tg.nn.ReLU(),
                           tg.nn.MaxPool2d(2), tg.nn.Conv2d(8, 8, 3, padding=1, stride=2),
                           tg.nn.AdaptiveAvgPool2d(1), tg.nn.Flatten(), tg.nn.Linear(8, 2))
    dyn = {"in0": {0: "b", 2: "h", 3: "w"}}
    export_and_compare(cnn, (tg.tensor(f32(2, 3, 9, 9)),), dynamic=dyn,
                       more=[(tg.tensor(f32(1, 3, 16, 13)),), (tg.tensor(f32(3, 3, 31, 20)),)])
    with pytest.raises(tg.onnx.ExportError, match="give an odd example size"):
        tg.onnx.export(cnn, tg.randn(2, 3, 8, 8), io.BytesIO(),
                       dynamic_axes={"input0": dyn["in0"]})


def test_causal_masks_over_a_dynamic_sequence():
    """A triangular constant (generate_square_subsequent_mask, is_causal, a bool triu) is
    rebuilt at run time with Trilu."""
    tg.manual_seed(0)
    dyn = {"in0": {0: "b", 1: "t"}}
    x = tg.tensor(f32(2, 6, 8))
    more = [(tg.tensor(f32(3, 9, 8)),), (tg.tensor(f32(1, 2, 8)),)]
    export_and_compare(lambda q: F.scaled_dot_product_attention(q, q, q, is_causal=True),
                       (x,), dynamic=dyn, more=more)
    layer = tg.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True).eval()
    export_and_compare(lambda q: layer(q, src_mask=tg.nn.Transformer.
                                       generate_square_subsequent_mask(q.shape[1])),
                       (x,), dynamic=dyn, more=more)
    export_and_compare(lambda q: (q @ q.transpose(1, 2)).masked_fill(
        tg.ones(q.shape[1], q.shape[1], dtype=tg.bool).triu(1), -1e9).softmax(-1),
        (x,), dynamic=dyn, more=more)


def test_a_value_program_is_refused_saying_so():
    with pytest.raises(TypeError, match="scalar Value"):
        tg.onnx.export(lambda v: v * 2, (tg.Value(1.0),), io.BytesIO())


def test_axes_sharing_a_size_under_two_names_are_explained():
    with pytest.raises(tg.onnx.ExportError, match="need one name"):
        tg.onnx.export(lambda x, t: F.cross_entropy(x, t),
                       (tg.randn(4, 3), tg.tensor([0, 1, 2, 0])), io.BytesIO(),
                       dynamic_axes={"input0": [0], "input1": [0]})


def test_transposed_convolution_and_fold_with_dynamic_batch():
    tg.manual_seed(0)
    up = tg.nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1, groups=1)
    up1 = tg.nn.ConvTranspose1d(4, 2, 4, stride=2, groups=2, dilation=2)
    more = [(tg.tensor(f32(n, 3, 5, 5)),) for n in (1, 6)]
    export_and_compare(up, (tg.tensor(f32(2, 3, 5, 5)),), dynamic={"in0": [0]}, more=more)
    export_and_compare(up1, (tg.tensor(f32(2, 4, 7)),), dynamic={"in0": [0]},
                       more=[(tg.tensor(f32(5, 4, 7)),)])
    export_and_compare(lambda x: F.fold(x, (4, 5), 2), (tg.tensor(f32(2, 12, 12)),),
                       dynamic={"in0": [0]}, more=[(tg.tensor(f32(7, 12, 12)),)])


# ---------------------------------------------------------------- refusals


def _refused_examples():
    return {
        "rand": lambda x: x + tg.rand(5),
        "poisson": lambda x: tg.poisson(x.abs()),
        "lgamma": lambda x: tg.lgamma(x),
        "inv": lambda x: tg.linalg.inv(x.reshape(1, 5) * x.reshape(5, 1) + tg.eye(5)),
        "gcd": lambda x: tg.gcd(x.long(), x.long() + 2),
    }


def _documented_refusals() -> list[str]:
    text = (ROOT / "docs" / "onnx.md").read_text()
    section = text.split("## What cannot be exported", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^- `(\w+)`", section, flags=re.M)


def test_docs_list_exactly_the_ops_that_cannot_be_exported():
    decomposed = {n for n, p in PRIMITIVES.items() if p.decomposition is not None}
    cannot = set(PRIMITIVES) - set(LOWERINGS) - decomposed
    assert set(_documented_refusals()) == cannot, (
        "docs/onnx.md, 'What cannot be exported', must list exactly the primitives with no "
        "ONNX lowering (and no decomposition); add a lowering or document the new op")
    assert set(REFUSED) <= cannot


@pytest.mark.parametrize("op", sorted(_refused_examples()))
def test_refused_op_names_the_op_the_line_and_the_alternatives(op):
    assert op in _documented_refusals()
    fn = _refused_examples()[op]
    with pytest.raises(tg.onnx.ExportError) as info:
        tg.onnx.export(fn, tg.randn(5), io.BytesIO())
    message = str(info.value)
    assert f"the op {op!r} cannot be exported" in message
    assert "test_onnx.py" in message and "_refused_examples" not in message.split("made at")[0]
    assert "The ops that can be exported: abs, acos, acosh, add," in message
    assert "no ONNX lowering yet" not in message  # the reason docs/onnx.md gives
    assert REFUSED[op].split(";")[0] in message


def test_every_documented_refusal_says_why():
    assert set(_documented_refusals()) == set(REFUSED)


def test_a_primitive_with_no_lowering_is_refused_with_the_generic_reason():
    from tracegrad.ops.base import register, unregister

    prim = register("cube_for_onnx_test", "elementwise", lambda x: x ** 3,
                    lambda x: (x.shape, x.dtype), None)
    try:
        with pytest.raises(tg.onnx.ExportError, match="'cube_for_onnx_test' cannot be "
                           "exported to ONNX: it has no ONNX lowering yet"):
            tg.onnx.export(lambda x: apply(prim, x), tg.randn(3), io.BytesIO())
    finally:
        unregister("cube_for_onnx_test")


def test_in_place_writes_inside_the_model_export():
    def fn(x):
        y = x * 2
        y[:, 0] = 0.0
        y[1] += x[0]
        return y

    export_and_compare(fn, (tg.randn(3, 4),))


def test_gradient_graphs_export():
    """A function that computes a gradient (scatter_add in the backward of indexing)."""
    w = tg.randn(5, 3)

    def grad_of_rows(idx):
        return tg.grad(lambda w: (w[idx] ** 2).sum())(w)

    export_and_compare(grad_of_rows, (tg.tensor([0, 3, 3, 1]),))


def test_decomposed_primitives_export_through_their_parts():
    logits, labels = tg.randn(4, 5), tg.tensor([0, 3, 4, 1])
    w, b = tg.randn(3, 5), tg.randn(3)
    export_and_compare(lambda x, t: (F.cross_entropy(x, t), F.linear(x, w, b),
                                     x.log_softmax(-1)), (logits, labels))


def test_missing_onnx_says_how_to_install(monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError("no onnx")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    monkeypatch.delitem(sys.modules, "onnx")
    with pytest.raises(ImportError, match=re.escape('pip install "tracegrad[onnx]"')):
        tg.onnx.export(lambda x: x, tg.randn(2), io.BytesIO())


def test_bad_arguments_are_explained():
    x = tg.randn(2, 3)
    with pytest.raises(ValueError, match="neither an input"):
        tg.onnx.export(lambda x: x, x, io.BytesIO(), dynamic_axes={"y": [0]})
    with pytest.raises(ValueError, match="opset_version=9"):
        tg.onnx.export(lambda x: x, x, io.BytesIO(), opset_version=9)
    with pytest.raises(TypeError, match="holds no tensor"):
        tg.onnx.export(lambda: tg.ones(2), (), io.BytesIO())


def test_verify_reports_the_largest_difference():
    from tracegrad.onnx import check_close

    a = np.array([1.0, 2.0, 3.0], np.float32)
    with pytest.raises(tg.onnx.ExportError, match=r"largest difference is 0.5 at \(1,\)"):
        check_close("y", a + np.array([0, 0.5, 0.01], np.float32), a, {"x": a})
    check_close("y", a + 1e-7, a, {"x": a})


def test_import_tracegrad_does_not_import_onnx():
    import subprocess

    code = ("import sys, tracegrad; assert 'onnx' not in sys.modules; "
            "assert 'tracegrad.onnx' not in sys.modules; tracegrad.onnx; "
            "assert 'onnx' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_warning_free_for_eval_models():
    model, make = MODELS["digits_mlp"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tg.onnx.export(model, make(2), io.BytesIO())


def test_transformer_with_dynamic_batch_and_sequence():
    """Two symbols: the reshape to heads has two symbolic entries, the causal mask is sliced
    to the sequence length, the positions count up to it."""
    model, make = MODELS["transformer_block"]
    tokens = make(3)[0]
    more = [(tokens[:, :5],), (make(6)[0][:, :2],), (make(1)[0],)]
    proto = export_and_compare(model, (tokens[:, :6],), dynamic={"in0": {0: "b", 1: "t"}},
                               more=more)
    dims = proto.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["b", "t", 23]


def test_viz_draws_the_onnx_model_next_to_its_ir():
    model, make = MODELS["digits_mlp"]
    proto = tg.onnx.export(model, make(2), io.BytesIO())
    dot = tg.viz.to_dot(proto)
    assert "ONNX opset 21" in dot and '"{ input0 | input }"' in dot
    assert "{ 0.weight | 256x64 }" in dot  # the initializers, under their names
    ir = tg.viz.to_dot(tg.onnx.graph(model, make(2)))
    for node in proto.graph.node:  # each ONNX node is named after its IR node
        assert node.name.split(".")[0] in ir


def test_updates_of_captured_tensors_are_not_exported():
    state = tg.zeros(3)

    def fn(x):
        state.add_(tg.rand(3))  # a write-back (with an op that cannot be exported)
        return x * 2

    x = tg.randn(3)
    proto = tg.onnx.export(fn, x, io.BytesIO())
    assert [n.op_type for n in proto.graph.node] == ["Mul"]
    assert np.all(state.numpy() == 0)  # tracing left it alone


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3,
                                                max_side=4),
       op=st.sampled_from(["add", "sub", "mul", "maximum", "lt", "eq"]),
       data=st.data())
def test_broadcasting_and_reductions_on_random_shapes(shapes, op, data):
    a_shape, b_shape = shapes.input_shapes
    a, b = tg.tensor(f32(*a_shape)), tg.tensor(f32(*b_shape))
    out_ndim = len(shapes.result_shape)
    axes = tuple(sorted(data.draw(st.sets(st.integers(0, max(out_ndim - 1, 0)),
                                          max_size=out_ndim))))
    keepdim = data.draw(st.booleans())

    def fn(a, b):
        c = apply(PRIMITIVES[op], a, b)
        c = c if c.dtype == tg.float32 else c.float()
        return c.sum(dim=axes, keepdim=keepdim) if axes else c

    export_and_compare(fn, (a, b))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_oldest_opset_accepted(name):
    model, make = MODELS[name]
    args = make(3)
    buf = io.BytesIO()
    proto = tg.onnx.export(model, args, buf, opset_version=18)
    assert proto.opset_import[0].version == 18


def test_a_compiled_model_exports_as_the_model():
    model, make = MODELS["digits_mlp"]
    x = make(3)
    proto = tg.onnx.export(tg.compile(model), x, io.BytesIO())
    close(run(proto, {"input0": x[0].numpy()})[0], model(*x).numpy())


def test_keyword_arguments_as_a_last_dict_and_fixed_python_values():
    def fn(x, scale, *, bias, clip=True):
        y = x * scale + bias
        return y.clamp(-1, 1) if clip else y

    x, bias = tg.randn(4, 3), tg.randn(3)
    buf = io.BytesIO()
    tg.onnx.export(fn, (x, 2.0, {"bias": bias, "clip": False}), buf, input_names=["x", "b"],
                   dynamic_axes={"x": [0]})
    x2 = tg.randn(6, 3)
    (got,) = run(buf.getvalue(), {"x": x2.numpy(), "b": bias.numpy()})
    close(got, fn(x2, 2.0, bias=bias, clip=False).numpy())


def test_onnxruntime_missing_a_kernel_is_explained_and_verify_false_writes_anyway():
    x = tg.randn(3, dtype=tg.float64)
    with pytest.raises(tg.onnx.ExportError, match="(?s)cannot run the exported model.*float64"):
        tg.onnx.export(lambda x: x.erf(), x, io.BytesIO())
    buf = io.BytesIO()
    proto = tg.onnx.export(lambda x: x.erf(), x, buf, verify=False)
    assert buf.getvalue() == proto.SerializeToString()
    assert [n.op_type for n in proto.graph.node] == ["Erf"]
