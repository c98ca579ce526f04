"""Tests of `tracegrad.io`: save/load of nested state as safetensors files, never pickle.

Round trips (state dicts, optimizer-like state, every dtype, odd shapes, random structures by
hypothesis), files exchanged with `safetensors.numpy` and `safetensors.torch`, and every kind
of bad file, each of which must be refused with a `ValueError` before anything in it runs.
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import struct
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tracegrad as tg
from tracegrad.io import FormatError, load, save

safetensors_numpy = pytest.importorskip("safetensors.numpy")

DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8, np.bool_]


def assert_same(a, b, where="obj"):
    """``b`` is ``a`` rebuilt: same types (tuple stays tuple, int key stays int), same values."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, tg.Tensor):
        assert not b.requires_grad and b.grad is None
        a, b = a.numpy(), b.numpy()
    if isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype}{a.shape}"
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), where
    elif isinstance(a, dict):
        assert [(type(k), k) for k in a] == [(type(k), k) for k in b], where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    else:
        assert a == b, where


def roundtrip(obj, tmp_path, name="x.safetensors"):
    path = tmp_path / name
    save(obj, path)
    out = load(path)
    assert_same(obj, out)
    return out


# ------------------------------------------------------------------------------ round trips


def model_state():
    return OrderedDict([
        ("0.weight", tg.randn(4, 3)),
        ("0.bias", tg.zeros(4)),
        ("2.weight", tg.randn(2, 4, dtype=tg.float64)),
        ("2.bias", tg.zeros(2, dtype=tg.float64)),
    ])


def test_model_state_dict_round_trip(tmp_path):
    out = roundtrip(model_state(), tmp_path)
    assert isinstance(out, OrderedDict)


def test_optimizer_state_round_trip(tmp_path):
    state = {
        "state": {
            0: {"step": 3, "exp_avg": tg.randn(4, 3), "exp_avg_sq": tg.rand(4, 3)},
            1: {"step": 3, "exp_avg": tg.randn(4), "exp_avg_sq": tg.rand(4)},
        },
        "param_groups": [
            {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0,
             "amsgrad": False, "maximize": False, "foreach": None, "params": [0, 1]},
        ],
    }
    out = roundtrip(state, tmp_path)
    assert list(out["state"]) == [0, 1]
    assert isinstance(out["param_groups"][0]["betas"], tuple)


def test_scalars_and_leaves_round_trip(tmp_path):
    roundtrip({}, tmp_path, "empty.safetensors")
    roundtrip([], tmp_path, "empty_list.safetensors")
    roundtrip(tg.tensor(3.5), tmp_path, "root.safetensors")  # a bare tensor, 0-d
    roundtrip({"a": None, "b": True, "c": -(2**70), "d": 1.5, "e": "text ☃", "f": (),
               "g": float("inf"), "h": float("-inf"), "i": float("nan"), "j": -0.0},
              tmp_path, "scalars.safetensors")
    roundtrip({"arr": np.arange(6).reshape(2, 3), "np_scalar": np.float32(2.5),
               "np_int": np.int64(7), "np_bool": np.bool_(True)}, tmp_path, "numpy.safetensors")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2), (5,), (2, 3, 4)])
def test_every_dtype_and_shape_round_trips(tmp_path, dtype, shape):
    data = (np.arange(int(np.prod(shape))) % 7).reshape(shape).astype(dtype)
    out = roundtrip({"t": tg.from_numpy(data)}, tmp_path)
    assert out["t"].dtype == np.dtype(dtype) and out["t"].shape == shape


def test_loaded_tensors_are_fresh_leaves(tmp_path):
    """As with torch.load: a tensor saved requiring grad comes back requiring grad (a raw
    weight saved this way resumes training; it came back without, so nothing updated it),
    an nn.Parameter as an nn.Parameter, a detached one without; all fresh leaves with no
    .grad, in memory of their own."""
    w = tg.randn(3, requires_grad=True)
    (w * w).sum().backward()
    p = tg.nn.Parameter(tg.ones(2))
    save({"w": w, "p": p, "d": w.detach() * 2}, tmp_path / "w.safetensors")
    out = load(tmp_path / "w.safetensors")
    assert out["w"].requires_grad is True and out["w"].grad is None and out["w"].is_leaf
    assert type(out["p"]) is tg.nn.Parameter and out["p"].requires_grad
    assert type(out["d"]) is tg.Tensor and not out["d"].requires_grad
    np.testing.assert_array_equal(out["w"].detach().numpy(), w.detach().numpy())
    out["w"].detach().numpy()[0] = 100.0  # writable, and not the saved tensor's memory
    assert w.detach().numpy()[0] != 100.0
    (out["w"] * 3).sum().backward()
    np.testing.assert_array_equal(out["w"].grad.numpy(), [3.0, 3.0, 3.0])


def test_views_and_big_endian_arrays_are_saved_by_value(tmp_path):
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    obj = {"t": tg.from_numpy(base.T), "be": np.arange(3, dtype=">i4")}
    save(obj, tmp_path / "v.safetensors")
    out = load(tmp_path / "v.safetensors")
    np.testing.assert_array_equal(out["t"].numpy(), base.T)
    np.testing.assert_array_equal(out["be"], [0, 1, 2])


def test_shared_tensor_is_stored_once_and_stays_shared(tmp_path):
    w = tg.randn(2, 2)
    save({"encoder": w, "decoder": w}, tmp_path / "tied.safetensors")
    assert list(safetensors_numpy.load_file(tmp_path / "tied.safetensors")) == ["encoder"]
    out = load(tmp_path / "tied.safetensors")
    assert out["encoder"] is out["decoder"]


def test_names_with_dots_cannot_collide(tmp_path):
    a, b, c, d = (tg.full((2,), float(i)) for i in range(4))
    obj = {"a.b": a, "a": {"b": b}, "a.b#1": c, "__metadata__": d, "": tg.ones(1)}
    out = roundtrip(obj, tmp_path)
    assert out["a.b"].tolist() == [0.0, 0.0] and out["a"]["b"].tolist() == [1.0, 1.0]
    names = safetensors_numpy.load_file(tmp_path / "x.safetensors")
    assert len(names) == 5 and "a.b" in names and "__metadata__" not in names


def test_int_and_str_keys_stay_distinct(tmp_path):
    roundtrip({1: tg.ones(1), "1": tg.zeros(1), 0: [1, 2], "0": (1, 2)}, tmp_path)


# ------------------------------------------------------------------------------ other tools


def test_file_is_an_ordinary_safetensors_file(tmp_path):
    state = model_state()
    save(state, tmp_path / "m.safetensors")
    arrays = safetensors_numpy.load_file(tmp_path / "m.safetensors")
    assert sorted(arrays) == sorted(state)
    for name, t in state.items():
        np.testing.assert_array_equal(arrays[name], t.numpy())
        assert arrays[name].dtype == t.dtype

    nested = {"state": {0: {"exp_avg": tg.ones(2)}}, "param_groups": [{"params": [0]}]}
    save(nested, tmp_path / "o.safetensors")
    assert list(safetensors_numpy.load_file(tmp_path / "o.safetensors")) == ["state.0.exp_avg"]


def test_loads_a_file_written_by_safetensors_numpy(tmp_path):
    arrays = {"layer.weight": np.random.default_rng(0).standard_normal((3, 2)),
              "mask": np.array([True, False]), "count": np.array(4, dtype=np.int32)}
    safetensors_numpy.save_file(arrays, tmp_path / "f.safetensors", metadata={"format": "np"})
    out = load(tmp_path / "f.safetensors")
    assert type(out) is dict and sorted(out) == sorted(arrays)  # flat: no invented nesting
    for name, arr in arrays.items():
        assert isinstance(out[name], tg.Tensor) and not out[name].requires_grad
        assert out[name].dtype == arr.dtype and out[name].shape == arr.shape
        np.testing.assert_array_equal(out[name].numpy(), arr)


def test_loads_a_file_written_by_safetensors_torch(tmp_path):
    torch = pytest.importorskip("torch")
    storch = pytest.importorskip("safetensors.torch")
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    storch.save_file(model.state_dict(), str(tmp_path / "t.safetensors"))
    out = load(tmp_path / "t.safetensors")
    assert sorted(out) == sorted(model.state_dict())
    for name, t in model.state_dict().items():
        np.testing.assert_array_equal(out[name].numpy(), t.numpy())

    storch.save_file({"w": torch.ones(2, dtype=torch.bfloat16)}, str(tmp_path / "bf.safetensors"))
    with pytest.raises(TypeError, match="BF16"):
        load(tmp_path / "bf.safetensors")


# ------------------------------------------------------------------------------ bad input


def assert_refused(path):
    with pytest.raises(ValueError, match="not a valid tracegrad/safetensors file") as info:
        load(path)
    assert isinstance(info.value, FormatError)
    assert str(path) in str(info.value)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.safetensors")


def test_truncated_files_are_refused(tmp_path):
    save(model_state(), tmp_path / "good.safetensors")
    blob = (tmp_path / "good.safetensors").read_bytes()
    for n in [0, 4, 8, 20, len(blob) // 2, len(blob) - 1]:
        path = tmp_path / f"cut{n}.safetensors"
        path.write_bytes(blob[:n])
        assert_refused(path)


def test_garbage_files_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    for i, blob in enumerate([b"hello world, not a tensor file", rng.bytes(4096),
                              struct.pack("<Q", 2) + b"[]", struct.pack("<Q", 5) + b"{oops",
                              struct.pack("<Q", 2) + b"{}" + b"trailing junk"]):
        path = tmp_path / f"garbage{i}.bin"
        path.write_bytes(blob)
        assert_refused(path)


def test_absurd_sizes_are_refused(tmp_path):
    huge_header = tmp_path / "huge_header.safetensors"
    huge_header.write_bytes(struct.pack("<Q", 2**63) + b"{}")
    assert_refused(huge_header)

    header = json.dumps({"x": {"dtype": "F32", "shape": [10**9, 10**9],
                               "data_offsets": [0, 4 * 10**18]}}).encode()
    huge_tensor = tmp_path / "huge_tensor.safetensors"
    huge_tensor.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    assert_refused(huge_tensor)


class _Marker:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):  # unpickling this opens (creates) the marker file
        return (open, (self.path, "w"))


def test_pickle_files_are_refused_without_running_them(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    with open(evil, "wb") as f:
        pickle.dump({"weight": [1.0, 2.0], "payload": _Marker(str(marker))}, f)
    with open(evil, "rb") as f:  # the payload is live: unpickling it does create the marker
        pickle.load(f).get("payload").close()
    assert marker.exists()
    marker.unlink()

    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        evil.write_bytes(pickle.dumps(_Marker(str(marker)), protocol=protocol))
        assert_refused(evil)
    assert not marker.exists()


def test_torch_save_files_are_refused(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save({"weight": torch.ones(2, 3)}, path)
    assert_refused(path)
    with pytest.raises(FormatError, match="zip archive .*torch.save.*safetensors.torch.save_file"):
        load(path)
    torch.save({"weight": torch.ones(2, 3)}, path, _use_new_zipfile_serialization=False)
    assert_refused(path)
    with pytest.raises(FormatError, match="pickle.*safetensors.torch.save_file"):
        load(path)


def test_a_header_length_that_starts_like_a_pickle_or_a_zip_still_loads():
    """The first 8 bytes are the header's length: 640 is b"\\x80\\x02..." as a pickle
    starts, and that file was refused as one."""
    for start in (b"\x80\x02", b"\x80\x05"):
        for n in range(2000):
            f = io.BytesIO()
            save({"w": tg.ones(2), "s": "x" * n}, f)
            if f.getvalue().startswith(start):
                break
        else:
            raise AssertionError(f"no header length starts {start!r}")
        f.seek(0)
        assert load(f)["s"] == "x" * n


@pytest.mark.parametrize("structure", [
    "{not json",
    '{"tensor": "missing"}',
    '{"dict": [["w", {"tensor": "missing"}]]}',
    '{"dict": [["w", {"tensor": 3}]]}',
    '{"dict": [[1.5, 1]]}',
    '{"dict": [["w"]]}',
    '{"dict": {"w": 1}}',
    '{"list": 3}',
    '{"set": [1, 2]}',
    '{"float": "1e999e"}',
    '{"npscalar": "w"}',
    '{"tensor": "w", "requires_grad": 1}',
    '{"tensor": "w", "requires_grad": false}',
    '{"tensor": "w", "parameter": true, "grad": true}',
    '{"list": [1], "requires_grad": true}',
    '{"tensor": "n", "requires_grad": true}',
    "[" * 100_000 + "]" * 100_000,
    "9" * 5000,  # (more digits than Python's int() reads: was a bare ValueError)
])
def test_malformed_tracegrad_metadata_is_refused(tmp_path, structure):
    path = tmp_path / "bad.safetensors"
    metadata = {"tracegrad.format": "1", "tracegrad.structure": structure}
    safetensors_numpy.save_file({"w": np.ones(2, np.float32), "n": np.ones(2, np.int64)},
                                path, metadata=metadata)
    assert_refused(path)


@pytest.mark.parametrize("metadata", [
    {"tracegrad.format": "1"},
    {"tracegrad.format": "99", "tracegrad.structure": "null"},
    {"tracegrad.format": "one", "tracegrad.structure": "null"},
    {"tracegrad.structure": "null"},
])
def test_bad_format_version_is_refused(tmp_path, metadata):
    path = tmp_path / "bad.safetensors"
    safetensors_numpy.save_file({"w": np.ones(2, np.float32)}, path, metadata=metadata)
    assert_refused(path)


def test_unsupported_leaves_name_their_place(tmp_path):
    path = tmp_path / "x.safetensors"
    cases = [
        ({"a": [1, object()]}, r"obj\['a'\]\[1\]"),
        ({"s": {1, 2}}, r"obj\['s'\].*set"),
        ({"state": {0: {"z": 1j}}}, r"obj\['state'\]\[0\]\['z'\].*complex"),
        ({"c": np.ones(2, np.complex64)}, r"obj\['c'\].*complex64"),
        ({"u": np.ones(2, np.uint16)}, r"obj\['u'\].*uint16"),
        ({(1, 2): tg.ones(1)}, r"key \(1, 2\)"),
        ({True: 1}, "key True"),
        ({"model": tg.nn.Linear(2, 2)}, r"obj\['model'\] is a Linear.*save its state_dict\(\)"),
        (tg.optim.SGD([tg.ones(1, requires_grad=True)], lr=0.1), "SGD.*state_dict"),
    ]
    for obj, pattern in cases:
        with pytest.raises(TypeError, match=pattern):
            save(obj, path)
    assert not path.exists()


def test_a_cycle_is_refused():
    loop = []
    loop.append(loop)
    with pytest.raises(ValueError, match="cycle"):
        save({"x": loop}, "never-written.safetensors")
    assert not os.path.exists("never-written.safetensors")


def test_a_failed_save_keeps_the_old_file(tmp_path):
    path = tmp_path / "m.safetensors"
    save({"w": tg.ones(2)}, path)
    with pytest.raises(TypeError):
        save({"w": tg.zeros(2), "bad": object()}, path)
    assert load(path)["w"].tolist() == [1.0, 1.0]
    assert os.listdir(tmp_path) == ["m.safetensors"]  # no temporary file left behind


def test_missing_safetensors_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match=r'pip install "tracegrad\[io\]"'):
        save({"w": tg.ones(2)}, tmp_path / "m.safetensors")
    with pytest.raises(ImportError, match=r'pip install "tracegrad\[io\]"'):
        load(tmp_path / "m.safetensors")


# ------------------------------------------------------------------------------ hypothesis

_arrays = st.sampled_from(DTYPES).flatmap(
    lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
)
_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
    _arrays, _arrays.map(tg.from_numpy),
)
_keys = st.one_of(st.text(max_size=6), st.integers(-3, 3))
_structures = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(_keys, inner, max_size=4),
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(obj=_structures)
def test_random_structures_round_trip(tmp_path, obj):
    roundtrip(obj, tmp_path)


def test_path_like_and_str_paths(tmp_path):
    save({"w": tg.ones(1)}, str(tmp_path / "a.safetensors"))
    assert load(Path(tmp_path / "a.safetensors"))["w"].tolist() == [1.0]


def test_load_takes_torch_loads_keywords(tmp_path):
    """Ported code calls torch.load(path, map_location="cpu", weights_only=True): the same
    call loads here (every tensor is on the CPU; no code ever runs from a file), a map to
    another device is refused with a message naming map_location, and an open file loads
    (see test_file_objects_round_trip); anything else gets a message instead of a bare
    TypeError from os.fspath."""
    path = tmp_path / "m.safetensors"
    tg.save({"w": tg.tensor([1.0, 2.0])}, path)
    for kwargs in ({"map_location": "cpu"}, {"map_location": tg.device("cpu")},
                   {"map_location": lambda storage, loc: storage}, {"weights_only": True},
                   {"weights_only": False, "map_location": {"cuda:0": "cpu"}},
                   {"mmap": True, "weights_only": True}, {"pickle_module": None}):
        np.testing.assert_array_equal(tg.load(path, **kwargs)["w"].numpy(), [1.0, 2.0])
    for kwargs in ({"pickle_protocol": 4}, {"_use_new_zipfile_serialization": False}):
        tg.save({"w": tg.tensor([1.0, 2.0])}, path, **kwargs)  # torch.save's keywords
        np.testing.assert_array_equal(tg.load(path)["w"].numpy(), [1.0, 2.0])
    with pytest.raises(RuntimeError, match="map_location='cuda:0'.*CPU only"):
        tg.load(path, map_location="cuda:0")
    with open(path, "rb") as f:
        np.testing.assert_array_equal(tg.load(f)["w"].numpy(), [1.0, 2.0])
    with pytest.raises(TypeError, match="load: path must be a file name"):
        tg.load(3)


def test_file_objects_round_trip(tmp_path):
    """torch.save(obj, buffer) and torch.load(buffer) work with io.BytesIO and open binary
    files; tg.save refused them ("path must be a file name"). The bytes are the file's."""
    import io

    model = tg.nn.Linear(3, 2)
    opt = tg.optim.Adam(model.parameters())
    model(tg.ones(1, 3)).sum().backward()
    opt.step()
    state = {"model": model.state_dict(), "opt": opt.state_dict(), "epoch": 3}
    buffer = io.BytesIO()
    buffer.write(b"prefix")  # written where the stream stands, and read from there
    tg.save(state, buffer)
    tg.save(state, tmp_path / "s.safetensors")
    assert buffer.getvalue() == b"prefix" + (tmp_path / "s.safetensors").read_bytes()
    buffer.seek(len(b"prefix"))
    loaded = tg.load(buffer)
    assert loaded["epoch"] == 3
    np.testing.assert_array_equal(loaded["model"]["weight"].numpy(), model.weight.numpy())
    np.testing.assert_array_equal(loaded["opt"]["state"][0]["exp_avg"].numpy(),
                                  opt.state_dict()["state"][0]["exp_avg"].numpy())
    with open(tmp_path / "t.safetensors", "wb") as f:
        tg.save([tg.arange(4.0)], f)
    with open(tmp_path / "t.safetensors", "rb") as f:
        assert tg.load(f)[0].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_bad_file_objects_are_refused_with_the_fix(tmp_path):
    import io

    with pytest.raises(FormatError, match="'<BytesIO>' is not a valid .* only 7 bytes"):
        tg.load(io.BytesIO(b"garbage"))
    with pytest.raises(TypeError, match="binary mode"):
        tg.load(io.StringIO("text"))
    with open(tmp_path / "x.txt", "w") as f, pytest.raises(TypeError, match="binary mode"):
        tg.save({"a": tg.ones(2)}, f)
    with open(tmp_path / "x.st", "wb") as f:
        f.write(b"\x80\x04pickle")
    with open(tmp_path / "x.st", "rb") as f, pytest.raises(FormatError, match="x.st"):
        tg.load(f)
