"""A failed load changes nothing (issue 12, item 8).

``Module.load_state_dict`` and ``Optimizer.load_state_dict`` check every entry before they
write any: a state dict that does not fit raises an error naming every bad key, and the model
or optimizer stays bit-identical. What PyTorch accepts (float64 into float32, ints into
floats) loads the same way here; what PyTorch would silently wrap (nan or 1e30 into an int
buffer) is refused. Optimizer constructors reject the hyper-parameters PyTorch rejects, and
loading checks them by the same rules.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import tracegrad as tg
from tracegrad import nn
from tracegrad.errors import ShapeError

torch = pytest.importorskip("torch")
tnn = torch.nn


# ---------------------------------------------------------------- helpers


class WithBuffers(nn.Module):
    """A Linear plus an int64, a uint8 and a bool buffer."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.register_buffer("count", tg.tensor(np.array(7, dtype=np.int64)))
        self.register_buffer("small", tg.tensor(np.array([1, 2], dtype=np.uint8)))
        self.register_buffer("mask", tg.tensor(np.array([True, False])))


def make_model():
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


def snapshot(model) -> dict:
    """Copies of every parameter and buffer, and the tensors' identities."""
    return {k: (v.numpy().copy(), v.dtype) for k, v in model.state_dict().items()}


def assert_unchanged(model, before: dict) -> None:
    after = snapshot(model)
    assert list(after) == list(before)
    for k, (arr, dtype) in before.items():
        assert after[k][1] == dtype, k
        assert after[k][0].tobytes() == arr.tobytes(), k  # bit-identical, nan included


def np_state(model) -> dict:
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------- Module.load_state_dict


BAD_VALUES = [
    ("string", "3.bias", np.array(["a", "b"])),
    ("object", "3.bias", np.array([object(), object()])),
    ("ragged", "3.bias", [[1.0], [2.0, 3.0]]),
    ("nan_into_int64", "1.num_batches_tracked", np.array(np.nan)),
    ("inf_into_int64", "1.num_batches_tracked", np.array(np.inf)),
    ("1e30_into_int64", "1.num_batches_tracked", np.array(1e30)),
    ("2**63_into_int64", "1.num_batches_tracked", np.array(2.0**63)),
    ("fraction_into_int64", "1.num_batches_tracked", np.array(2.5)),
    ("float64_overflows_float32", "3.bias", np.array([1e300, 0.0])),
]


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("case,key,value", BAD_VALUES, ids=[c[0] for c in BAD_VALUES])
def test_a_bad_value_after_good_ones_changes_nothing(case, key, value, strict):
    model = make_model()
    model[1].num_batches_tracked.data[...] = 5
    before = snapshot(model)
    sd = np_state(make_model())  # different values for every key
    sd[key] = value
    with pytest.raises((TypeError, ValueError)) as info:
        model.load_state_dict(sd, strict=strict)
    msg = str(info.value)
    assert "load_state_dict for Sequential" in msg and repr(key) in msg
    assert "nothing was loaded" in msg and "to fix" in msg
    assert_unchanged(model, before)


@pytest.mark.parametrize("case,key,value", BAD_VALUES[:3] + [
    ("shape", "0.weight", np.zeros((3, 4), np.float32)),
    ("int_parameter", "0.weight", np.zeros((4, 3), np.int64))], ids=lambda c: str(c)[:20])
def test_a_bad_value_changes_nothing_with_assign_too(case, key, value):
    model = make_model()
    before = snapshot(model)
    ids = [id(p) for p in model.parameters()]
    sd = {k: tg.tensor(v) for k, v in np_state(make_model()).items()}
    sd[key] = value
    with pytest.raises((TypeError, ValueError), match=f"nothing was loaded(.|\n)*{key!r}"):
        model.load_state_dict(sd, assign=True)
    assert_unchanged(model, before)
    assert [id(p) for p in model.parameters()] == ids


@pytest.mark.parametrize("key,value,expected", [
    ("count", np.array(2**63, dtype=np.uint64), str(2**63)),
    ("count", np.array(1e30), "1e+30"),
    ("count", np.array(float("nan")), "nan"),
    ("count", np.array(3.5, dtype=np.float32), "3.5"),
    ("small", np.array([1, -1]), "-1"),
    ("small", np.array([1, 256]), "256"),
    ("small", np.array([1.0, 300.0]), "300.0"),
    ("mask", np.array([0, 2]), "2"),
    ("mask", np.array([0.5, 1.0]), "0.5"),
])
def test_values_an_int_or_bool_buffer_cannot_hold_are_refused(key, value, expected):
    model = WithBuffers()
    before = snapshot(model)
    sd = np_state(WithBuffers())
    sd["fc.weight"] = sd["fc.weight"] + 1.0  # a good entry before the bad one
    sd[key] = value
    with pytest.raises(ValueError) as info:
        model.load_state_dict(sd)
    msg = str(info.value)
    assert repr(key) in msg and expected in msg and str(model.state_dict()[key].dtype) in msg
    assert_unchanged(model, before)


def test_values_that_fit_are_cast_like_pytorch():
    """float64 -> float32, ints and bools -> float, whole floats -> int: PyTorch casts them,
    and so do we (to the same numbers)."""
    tmodel = tnn.Sequential(tnn.Linear(3, 4), tnn.BatchNorm1d(4), tnn.ReLU(), tnn.Linear(4, 2))
    model = make_model()
    rng = np.random.default_rng(0)
    sd = {
        "0.weight": rng.standard_normal((4, 3)),                      # float64
        "0.bias": np.array([1, -2, 3, 4], dtype=np.int64),             # int
        "1.weight": np.array([True, False, True, True]),               # bool
        "1.bias": rng.standard_normal(4).astype(np.float16),           # float16
        "1.running_mean": rng.standard_normal(4),
        "1.running_var": rng.random(4) + 0.5,
        "1.num_batches_tracked": np.array(12.0),                       # whole float -> int
        "3.weight": rng.standard_normal((2, 4)).astype(np.float32),
        "3.bias": np.array([1e38, -3.0]),                              # fits float32
    }
    tmodel.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in sd.items()})
    result = model.load_state_dict(sd)
    assert result == ([], [])
    for k, v in tmodel.state_dict().items():
        ours = model.state_dict()[k]
        assert ours.dtype == np.dtype(str(v.dtype).replace("torch.", "")), k
        np.testing.assert_array_equal(ours.numpy(), v.numpy(), err_msg=k)


def test_every_bad_key_is_named_with_shapes_and_dtypes():
    model = make_model()
    before = snapshot(model)
    sd = np_state(make_model())
    sd["0.weight"] = np.zeros((3, 4), np.float32)
    sd["0.bias"] = np.zeros(5)
    sd["1.num_batches_tracked"] = np.array(np.nan)
    del sd["3.bias"]
    sd["9.weight"] = np.zeros(2)
    with pytest.raises(KeyError) as info:
        model.load_state_dict(sd)
    msg = str(info.value)
    assert not msg.startswith(("'", '"'))  # printed as written, not quoted like a KeyError
    for part in ["missing keys", "'3.bias'", "unexpected keys", "'9.weight'",
                 "'0.weight': shape (3, 4) (float32) in the state dict, (4, 3) (float32)",
                 "'0.bias': shape (5,) (float64) in the state dict, (4,) (float32)",
                 "'1.num_batches_tracked'", "nan", "int64",
                 "5 problems", "strict=False", "sizes it was saved with"]:
        assert part in msg, part
    assert_unchanged(model, before)
    # strict=False: the key problems go, the shape and value problems stay (as in PyTorch)
    with pytest.raises(ShapeError) as info:
        model.load_state_dict(sd, strict=False)
    msg = str(info.value)
    assert "3 problems" in msg and "'0.weight'" in msg and "'0.bias'" in msg
    assert "missing" not in msg
    assert_unchanged(model, before)


def test_strict_false_returns_pytorchs_named_tuple():
    tmodel = tnn.Sequential(tnn.Linear(3, 4), tnn.BatchNorm1d(4), tnn.ReLU(), tnn.Linear(4, 2))
    model = make_model()
    sd = np_state(make_model())
    for k in ["0.bias", "1.running_var"]:
        del sd[k]
    sd["extra"] = np.zeros(1, np.float32)
    sd["0.extra"] = np.zeros(1, np.float32)
    expected = tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()},
                                      strict=False)
    result = model.load_state_dict(sd, strict=False)
    assert result._fields == ("missing_keys", "unexpected_keys")
    assert result.missing_keys == expected.missing_keys == ["0.bias", "1.running_var"]
    assert sorted(result.unexpected_keys) == sorted(expected.unexpected_keys)
    missing, unexpected = result
    assert missing == ["0.bias", "1.running_var"]
    assert repr(result).startswith("IncompatibleKeys(missing_keys=['0.bias', '1.running_var']")
    np.testing.assert_array_equal(model[0].weight.numpy(), sd["0.weight"])
    everything = model.load_state_dict(np_state(make_model()))
    assert repr(everything) == repr(tmodel.load_state_dict(tmodel.state_dict()))
    assert repr(everything) == "<All keys matched successfully>"


def test_a_state_dict_that_is_not_a_dict_is_refused():
    model = make_model()
    before = snapshot(model)
    with pytest.raises(TypeError, match="load_state_dict for Sequential: expected a dict"):
        model.load_state_dict([("0.weight", np.zeros((4, 3)))])
    assert_unchanged(model, before)


def test_a_loaded_tensor_keeps_its_identity_and_dtype():
    model = WithBuffers()
    w, count = model.fc.weight, model.count
    sd = np_state(WithBuffers())
    sd["count"] = np.array(3.0)
    sd["fc.weight"] = sd["fc.weight"].astype(np.float64)
    model.load_state_dict(sd)
    assert model.fc.weight is w and model.count is count
    assert w.dtype == np.float32 and count.dtype == np.int64 and count.item() == 3


def test_load_writes_in_place_so_views_and_earlier_state_dicts_see_it():
    """torch's load_state_dict copies into each tensor: a state_dict() taken before, the
    .data of a weight and a view of it all show the loaded values."""
    for lib in (torch, tg):
        model = lib.nn.Linear(2, 2)
        before, data, row = model.state_dict(), model.weight.data, model.weight.detach()[0]
        model.load_state_dict({"weight": lib.ones(2, 2) * 7, "bias": lib.zeros(2)})
        for t in (before["weight"], data, row):
            assert float(t.reshape(-1)[0]) == 7.0, lib.__name__


def test_assign_true_takes_the_tensors_like_torch():
    def run(lib):
        model = lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.BatchNorm1d(3))
        model[0].bias.requires_grad_(False)
        sd = {k: (v.double() if v.dtype == lib.float32 else v).clone()
              for k, v in model.state_dict().items()}
        assert str(model.load_state_dict(sd, assign=True)) == "<All keys matched successfully>"
        out = [(n, str(p.dtype).replace("torch.", ""), p.requires_grad, type(p).__name__)
               for n, p in model.named_parameters()]
        assert model[1].running_mean is sd["1.running_mean"]  # buffers: the tensor itself
        model(lib.ones(4, 2, dtype=lib.float64)).sum().backward()
        return out, model[0].weight.grad is not None, model[0].bias.grad is None

    assert run(tg) == run(torch)
    assert run(tg)[0][0] == ("0.weight", "float64", True, "Parameter")
    model = nn.Linear(2, 3)
    src = nn.Parameter(tg.ones(3, 2))
    model.load_state_dict({"weight": src, "bias": tg.zeros(3)}, assign=True)
    assert model.weight is src
    before = snapshot(model)
    with pytest.raises(ShapeError, match="'weight': shape \\(3, 3\\)"):
        model.load_state_dict({"weight": tg.ones(3, 3), "bias": tg.zeros(3)}, assign=True)
    with pytest.raises(TypeError, match="'weight'.*int64"):  # torch refuses too
        model.load_state_dict({"weight": tg.ones(3, 2, dtype=tg.int64), "bias": tg.zeros(3)},
                              assign=True)
    assert_unchanged(model, before)


def test_state_dict_and_named_members_take_torchs_arguments():
    emb, out = nn.Embedding(5, 3), nn.Linear(3, 5, bias=False)
    temb, tout = torch.nn.Embedding(5, 3), torch.nn.Linear(3, 5, bias=False)
    out.weight, tout.weight = emb.weight, temb.weight  # tied
    model, tmodel = nn.Sequential(emb, out, emb), torch.nn.Sequential(temb, tout, temb)
    for kw in ({}, {"remove_duplicate": False}, {"prefix": "m", "remove_duplicate": False}):
        assert [n for n, _ in model.named_parameters(**kw)] == \
            [n for n, _ in tmodel.named_parameters(**kw)], kw
        assert [n for n, _ in model.named_modules(**kw)] == \
            [n for n, _ in tmodel.named_modules(**kw)], kw
    dest = {}
    assert model.state_dict(destination=dest, prefix="enc.") is dest
    assert list(dest) == list(tmodel.state_dict(prefix="enc."))
    kept = model.state_dict(keep_vars=True)
    assert kept["0.weight"] is emb.weight and kept["1.weight"] is emb.weight
    assert not model.state_dict()["0.weight"].requires_grad


def test_a_batchnorm_state_without_num_batches_tracked_loads_like_torch():
    """PyTorch's BatchNorm fills in num_batches_tracked for a state dict without version
    metadata (a plain dict: from safetensors, a dict comprehension; older checkpoints have
    no such key); it was a missing key here."""
    for lib in (torch, tg):
        model = lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.BatchNorm1d(3))
        with lib.no_grad():
            model[1].num_batches_tracked.fill_(4)
        sd = {k: v.clone() + 1 for k, v in model.state_dict().items()
              if "num_batches" not in k}
        result = model.load_state_dict(sd)
        assert result.missing_keys == [] and result.unexpected_keys == [], lib.__name__
        assert int(model[1].num_batches_tracked) == 4
        assert float(model[1].running_var[0]) == 2.0
    sd = nn.BatchNorm1d(3).state_dict()
    del sd["num_batches_tracked"]
    sd._metadata = {"": {"version": 2}}  # torch's, of a module that had the key: missing
    with pytest.raises(KeyError, match="missing keys.*num_batches_tracked"):
        nn.BatchNorm1d(3).load_state_dict(sd)
    assert nn.BatchNorm1d(3).load_state_dict(sd, strict=False).missing_keys == [
        "num_batches_tracked"]


def test_extra_state_is_saved_and_loaded_like_torch(tmp_path):
    def build(lib):
        class Counter(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc, self.calls = lib.nn.Linear(1, 1), 0

            def get_extra_state(self):
                return {"calls": self.calls}

            def set_extra_state(self, state):
                self.calls = state["calls"]

        class GetOnly(lib.nn.Module):
            def get_extra_state(self):
                return 5

        return lib.nn.Sequential(Counter(), lib.nn.Linear(1, 1)), GetOnly()

    for lib in (torch, tg):
        model, get_only = build(lib)
        model[0].calls = 7
        sd = model.state_dict()
        assert list(sd) == ["0._extra_state", "0.fc.weight", "0.fc.bias", "1.weight", "1.bias"]
        if lib is tg:
            tg.save(sd, tmp_path / "x.safetensors")
            sd = tg.load(tmp_path / "x.safetensors")
        fresh, _ = build(lib)
        fresh.load_state_dict(sd)
        assert fresh[0].calls == 7
        del sd["0._extra_state"]
        with pytest.raises((KeyError, RuntimeError), match="0._extra_state"):
            fresh.load_state_dict(sd)
        assert fresh.load_state_dict(sd, strict=False).missing_keys == ["0._extra_state"]
        with pytest.raises((KeyError, RuntimeError), match="nexpected.*_extra_state"):
            get_only.load_state_dict(get_only.state_dict())  # no set_extra_state


def test_module_to_refuses_a_non_float_dtype_like_torch():
    model = nn.Linear(2, 2)
    w = model.weight.numpy().copy()
    for dt in (tg.int32, tg.int64, tg.bool):
        with pytest.raises(TypeError, match="floating-point"):
            model.to(dt)
        with pytest.raises(TypeError):
            torch.nn.Linear(2, 2).to(getattr(torch, str(np.dtype(dt))))
    assert model.weight.dtype == np.float32
    np.testing.assert_array_equal(model.weight.numpy(), w)


# ---------------------------------------------------------------- optimizer constructors


BAD_HYPER = [
    ("Adam", dict(betas=(1.5, 0.9))),
    ("Adam", dict(betas=(0.9, 1.0))),
    ("Adam", dict(betas=(-0.1, 0.9))),
    ("Adam", dict(betas=5)),
    ("Adam", dict(lr="fast")),
    ("Adam", dict(lr=-1e-3)),
    ("Adam", dict(lr=float("nan"))),
    ("Adam", dict(eps=-1e-8)),
    ("Adam", dict(weight_decay=-0.1)),
    ("AdamW", dict(betas=(0.9, 1.5))),
    ("AdamW", dict(lr=-1.0)),
    ("AdamW", dict(eps=float("nan"))),
    ("SGD", dict(lr=-0.1)),
    ("SGD", dict(lr="fast")),
    ("SGD", dict(momentum=-0.5)),
    ("SGD", dict(weight_decay=-1.0)),
    ("SGD", dict(nesterov=True)),
    ("SGD", dict(nesterov=True, momentum=0.9, dampening=0.1)),
]


@pytest.mark.parametrize("name,kw", BAD_HYPER, ids=[f"{n}-{kw}" for n, kw in BAD_HYPER])
def test_constructors_reject_what_pytorch_rejects(name, kw):
    with pytest.raises((TypeError, ValueError)) as expected:
        getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], **kw)
    with pytest.raises((TypeError, ValueError)) as info:
        getattr(tg.optim, name)([tg.zeros(2, requires_grad=True)], **kw)
    assert type(info.value) is type(expected.value)
    assert name in str(info.value) and next(iter(kw)) in str(info.value)


GOOD_HYPER = [
    ("SGD", dict(momentum=1.0)), ("SGD", dict(momentum=1.5)), ("SGD", dict(dampening=-1.0)),
    ("SGD", dict(lr=float("inf"))), ("Adam", dict(betas=[0.5, 0.0])),
    ("Adam", dict(lr=0, eps=0, weight_decay=0)), ("SGD", dict(lr=tg.tensor(0.1))),
]


@pytest.mark.parametrize("name,kw", GOOD_HYPER, ids=[f"{n}-{kw}" for n, kw in GOOD_HYPER])
def test_constructors_accept_what_pytorch_accepts(name, kw):
    tkw = {k: (torch.tensor(v.item()) if isinstance(v, tg.Tensor) else v) for k, v in kw.items()}
    getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], **tkw)
    opt = getattr(tg.optim, name)([tg.zeros(2, requires_grad=True)], **kw)
    if "betas" in kw:
        assert opt.param_groups[0]["betas"] == tuple(kw["betas"])


def test_param_group_options_are_checked_too():
    a, b = tg.zeros(2, requires_grad=True), tg.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="param group 1: lr must be a number >= 0"):
        tg.optim.SGD([{"params": [a]}, {"params": [b], "lr": -1.0}], lr=0.1)
    opt = tg.optim.Adam([a], lr=0.1)
    with pytest.raises(ValueError, match="betas"):
        opt.add_param_group({"params": [b], "betas": (0.9, 2.0)})
    assert len(opt.param_groups) == 1


# ---------------------------------------------------------------- Optimizer.load_state_dict


def trained(name="Adam", **kw):
    """A model and an optimizer that has taken two steps (so it has state)."""
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    opt = getattr(tg.optim, name)(model.parameters(), **kw)
    for i in range(2):
        x = tg.tensor(np.random.default_rng(i).standard_normal((5, 3)).astype(np.float32))
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
    return model, opt


def opt_snapshot(opt) -> tuple:
    """Everything an optimizer holds, by value: its groups (params by identity) and state."""
    groups = [{k: ([id(p) for p in v] if k == "params" else copy.deepcopy(v))
               for k, v in g.items()} for g in opt.param_groups]
    state = {pid: {k: (v.numpy().copy(), v.dtype) if isinstance(v, tg.Tensor) else v
                   for k, v in st.items()} for pid, st in opt.state.items()}
    return groups, state


def assert_opt_unchanged(opt, before) -> None:
    groups, state = opt_snapshot(opt)
    assert groups == before[0]
    assert state.keys() == before[1].keys()
    for pid, st in before[1].items():
        assert state[pid].keys() == st.keys()
        for k, v in st.items():
            if isinstance(v, tuple):
                assert state[pid][k][1] == v[1]
                assert state[pid][k][0].tobytes() == v[0].tobytes()
            else:
                assert state[pid][k] == v


def _group(**changes):
    def mutate(sd):
        sd["param_groups"][-1].update(changes)
    return mutate


def _state(index, key, value):
    def mutate(sd):
        if value is KeyError:
            del sd["state"][index][key]
        else:
            sd["state"].setdefault(index, {})[key] = value
    return mutate


LOAD_CASES = [
    ("Adam", "betas=5", _group(betas=5), TypeError, "betas"),
    ("Adam", "betas>1", _group(betas=(1.5, 0.9)), ValueError, "betas"),
    ("Adam", "lr=fast", _group(lr="fast"), TypeError, "lr"),
    ("Adam", "lr<0", _group(lr=-0.1), ValueError, "lr"),
    ("Adam", "eps<0", _group(eps=-1e-8), ValueError, "eps"),
    ("Adam", "weight_decay<0", _group(weight_decay=-1.0), ValueError, "weight_decay"),
    ("Adam", "amsgrad=yes", _group(amsgrad="yes"), TypeError, "amsgrad"),
    ("Adam", "amsgrad without its state", _group(amsgrad=True), ValueError, "max_exp_avg_sq"),
    ("Adam", "exp_avg shape", _state(3, "exp_avg", tg.zeros(3)), ShapeError, "exp_avg"),
    ("Adam", "exp_avg missing", _state(3, "exp_avg_sq", KeyError), ValueError, "exp_avg_sq"),
    ("Adam", "exp_avg a number", _state(3, "exp_avg", 0.0), TypeError, "exp_avg"),
    ("Adam", "step negative", _state(3, "step", -2), ValueError, "step"),
    ("Adam", "step nan", _state(3, "step", tg.tensor(float("nan"))), ValueError, "step"),
    ("Adam", "state of no parameter", _state(9, "step", 1), ValueError, "state[9]"),
    ("SGD", "momentum<0", _group(momentum=-0.9), ValueError, "momentum"),
    ("SGD", "nesterov, dampening", _group(nesterov=True, dampening=0.5), ValueError,
     "nesterov"),
    ("SGD", "momentum_buffer shape", _state(0, "momentum_buffer", tg.zeros(4, 4)), ShapeError,
     "momentum_buffer"),
]


@pytest.mark.parametrize("name,case,mutate,exc,word", LOAD_CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in LOAD_CASES])
def test_a_bad_optimizer_state_raises_at_load_and_changes_nothing(name, case, mutate, exc,
                                                                  word):
    kw = dict(lr=0.01, momentum=0.9) if name == "SGD" else dict(lr=0.01)
    model, opt = trained(name, **kw)
    sd = copy.deepcopy(opt.state_dict())
    mutate(sd)
    fresh_model, target = trained(name, **{**kw, "lr": 0.05})
    before = opt_snapshot(target)
    with pytest.raises(exc) as info:
        target.load_state_dict(sd)
    msg = str(info.value)
    assert f"{name}.load_state_dict" in msg and word in msg and "unchanged" in msg
    assert_opt_unchanged(target, before)
    # ... and it still steps as it did
    target.zero_grad()
    fresh_model(tg.ones(1, 3)).sum().backward()
    target.step()


def test_every_problem_is_named_in_one_error():
    _, opt = trained("Adam", lr=0.01)
    sd = copy.deepcopy(opt.state_dict())
    sd["param_groups"][0]["lr"] = "fast"
    sd["state"][0]["exp_avg"] = tg.zeros(7)
    sd["state"][2]["step"] = -1
    _, target = trained("Adam", lr=0.05)
    before = opt_snapshot(target)
    with pytest.raises(TypeError) as info:
        target.load_state_dict(sd)
    msg = str(info.value)
    assert "3 problems" in msg
    assert "lr must be a number >= 0, got 'fast'" in msg
    assert "state[0]['exp_avg'] has shape (7,), its parameter (4, 3)" in msg
    assert "state[2]['step']" in msg
    assert_opt_unchanged(target, before)


@pytest.mark.parametrize("sizes", [[[0, 1], [2, 3]], [[0, 1, 2]], [[0, 1, 2, 3, 4]]])
def test_wrong_groups_raise_and_change_nothing(sizes):
    _, opt = trained("SGD", lr=0.01, momentum=0.9)
    sd = copy.deepcopy(opt.state_dict())
    group = sd["param_groups"][0]
    sd["param_groups"] = [{**group, "params": ids} for ids in sizes]
    _, target = trained("SGD", lr=0.05, momentum=0.5)
    before = opt_snapshot(target)
    with pytest.raises(ValueError, match=r"groups of sizes .* this optimizer 1 groups of "
                                         r"sizes \[4\]"):
        target.load_state_dict(sd)
    assert_opt_unchanged(target, before)


@pytest.mark.parametrize("bad", [[], {"state": {}}, {"state": [], "param_groups": []},
                                 {"state": {}, "param_groups": [{"lr": 0.1}]}])
def test_a_malformed_optimizer_state_dict_is_refused(bad):
    _, target = trained("Adam", lr=0.05)
    before = opt_snapshot(target)
    with pytest.raises((TypeError, ValueError), match="Adam.load_state_dict"):
        target.load_state_dict(bad)
    assert_opt_unchanged(target, before)


def test_state_is_cast_to_the_parameter_dtype_like_pytorch():
    """PyTorch casts floating-point state (not 'step') to its parameter's dtype; an int
    'step' becomes the float64 counter our update reads."""
    p = torch.zeros(3, requires_grad=True)
    topt = torch.optim.Adam([p], lr=0.1)
    tsd = {"state": {0: {"step": torch.tensor(4.0), "exp_avg": torch.ones(3, dtype=torch.float64),
                         "exp_avg_sq": torch.ones(3, dtype=torch.float64)}},
           "param_groups": [{**topt.state_dict()["param_groups"][0]}]}
    topt.load_state_dict(tsd)
    assert topt.state[p]["exp_avg"].dtype == torch.float32

    q = tg.zeros(3, requires_grad=True)
    opt = tg.optim.Adam([q], lr=0.1)
    sd = {"state": {0: {"step": 4, "exp_avg": np.ones(3), "exp_avg_sq": tg.ones(3).double()}},
          "param_groups": [{"lr": 0.1, "betas": [0.9, 0.999], "params": [0]}]}
    opt.load_state_dict(sd)
    st = opt.state[q]
    assert st["exp_avg"].dtype == st["exp_avg_sq"].dtype == np.float32
    assert st["step"].dtype == np.float64 and st["step"].item() == 4.0
    assert opt.param_groups[0]["betas"] == (0.9, 0.999) and opt.param_groups[0]["eps"] == 1e-8
    # the loaded state steps exactly like PyTorch's
    p.grad, q.grad = torch.full((3,), 0.5), tg.full((3,), 0.5)
    topt.step()
    opt.step()
    np.testing.assert_allclose(q.numpy(), p.detach().numpy(), rtol=1e-6)
    assert opt.state[q]["step"].item() == 5.0


def test_saved_indices_map_to_parameters_in_order():
    """As in PyTorch, the i-th saved index belongs to the i-th parameter, whatever its value."""
    a, b = tg.zeros(2, requires_grad=True), tg.zeros(3, requires_grad=True)
    opt = tg.optim.SGD([a, b], lr=0.1, momentum=0.9)
    sd = {"state": {7: {"momentum_buffer": tg.ones(3)}, 4: {"momentum_buffer": tg.ones(2)}},
          "param_groups": [{"lr": 0.2, "momentum": 0.9, "params": [4, 7]}]}
    opt.load_state_dict(sd)
    assert opt.state[a]["momentum_buffer"].shape == (2,)
    assert opt.state[b]["momentum_buffer"].shape == (3,)
    assert opt.param_groups[0]["lr"] == 0.2
