"""The names PyTorch training scripts use around the model, after the import swap: seeding
boilerplate (tg.cuda.manual_seed_all, tg.backends.cudnn flags, use_deterministic_algorithms),
threads, tg.Size, set_printoptions, tg.testing.assert_close, tg.utils.checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn as nn

torch = pytest.importorskip("torch")


def test_seeding_boilerplate_runs():
    tg.cuda.manual_seed(0)
    tg.cuda.manual_seed_all(0)
    tg.cuda.empty_cache()
    import tracegrad.backends.cudnn as cudnn

    cudnn.deterministic, cudnn.benchmark = True, False
    assert tg.backends.cudnn.deterministic and not tg.backends.cudnn.is_available()
    assert not tg.backends.mps.is_available() and not tg.backends.mps.is_built()
    tg.use_deterministic_algorithms(True)
    assert tg.are_deterministic_algorithms_enabled()
    tg.use_deterministic_algorithms(False)
    assert not tg.are_deterministic_algorithms_enabled()
    with pytest.raises(TypeError):
        tg.use_deterministic_algorithms("yes")


def test_threads():
    before = tg.get_num_threads()
    assert before >= 1
    tg.set_num_threads(1)
    assert tg.get_num_threads() == 1
    tg.set_num_threads(before)
    assert tg.get_num_threads() == before
    with pytest.raises(ValueError):
        tg.set_num_threads(0)
    tg.set_num_interop_threads(2)
    assert tg.get_num_interop_threads() == 2


def test_size_is_a_tuple_with_numel():
    s = tg.Size([2, 3, 4])
    assert s == (2, 3, 4) and tg.zeros(2, 3, 4).shape == s and s.numel() == 24
    assert isinstance(s[1:], tg.Size) and s[1:] == (3, 4) and s[0] == 2
    assert tg.Size() == () and tg.Size().numel() == 1
    assert repr(s) == "tracegrad.Size([2, 3, 4])"
    with pytest.raises(TypeError):
        tg.Size([2.5])


@pytest.fixture
def default_printing():
    yield
    tg.set_printoptions(profile="default")
    torch.set_printoptions(profile="default")


@pytest.mark.parametrize("opts", [dict(precision=2), dict(profile="short"),
                                  dict(sci_mode=True), dict(sci_mode=False),
                                  dict(profile="full")])
def test_set_printoptions_as_torch(opts, default_printing):
    values = [np.array([[1.23456, 2.0], [3.14159, -0.5]], np.float32),
              np.array([1e-5, 1e5], np.float32), np.array([1.5, 200.0], np.float32)]
    tg.set_printoptions(**opts)
    torch.set_printoptions(**opts)
    for v in values:
        assert repr(tg.tensor(v)) == repr(torch.tensor(v))


def test_a_tensor_of_up_to_1000_elements_prints_whole_as_torch(default_printing):
    assert "..." not in repr(tg.arange(300.0))
    assert "..." in repr(tg.arange(1001.0))


def test_assert_close():
    tg.testing.assert_close(tg.tensor([1.0]), tg.tensor([1.0 + 1e-7]))
    tg.testing.assert_close({"a": [tg.tensor(1), 2.0]}, {"a": [tg.tensor(1), 2.0]})
    for actual, expected in [(tg.tensor([1.0]), tg.tensor([1.1])),
                             (tg.tensor([1, 2]), tg.tensor([1, 3])),
                             (tg.tensor([1.0]), tg.tensor([1.0], dtype=tg.float64)),
                             (tg.zeros(2), tg.zeros(3)),
                             (tg.tensor([float("nan")]), tg.tensor([float("nan")]))]:
        with pytest.raises(AssertionError):
            tg.testing.assert_close(actual, expected)
        with pytest.raises(AssertionError):
            torch.testing.assert_close(torch.tensor(actual.numpy()),
                                       torch.tensor(expected.numpy()))
    tg.testing.assert_close(tg.tensor([float("nan")]), tg.tensor([float("nan")]),
                            equal_nan=True)
    tg.testing.assert_close(tg.tensor([1.0]), tg.tensor([1.1]), rtol=0.2, atol=0.0)


def test_checkpoint_gives_the_values_and_gradients_of_the_plain_call():
    from tracegrad.utils.checkpoint import checkpoint, checkpoint_sequential

    tg.manual_seed(0)
    seq = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))
    x = tg.randn(3, 4, requires_grad=True)
    y = checkpoint(seq, x, use_reentrant=False)
    y.sum().backward()
    g = x.grad.clone()
    x.grad = None
    y2 = checkpoint_sequential(seq, 2, x, use_reentrant=False)
    y2.sum().backward()
    np.testing.assert_array_equal(y.detach().numpy(), seq(x).detach().numpy())
    np.testing.assert_array_equal(x.grad.numpy(), g.numpy())
    assert checkpoint(lambda a, b=1: a * b, tg.ones(1), b=3).item() == 3


def _printing_cases():
    r = np.random.default_rng(0)
    return [r.standard_normal((3, 20)).astype(np.float32), r.standard_normal(2000).astype(
        np.float32), np.arange(300.0, dtype=np.float32), r.integers(0, 1000, (4, 30)),
        r.standard_normal((2, 3, 4)).astype(np.float32), np.arange(1200).reshape(30, 40),
        (r.standard_normal(12) * 1e4).astype(np.float32), np.array([True, False]),
        np.zeros((0, 3), np.float32), np.array([-5, 3]),
        np.zeros(0, np.int64), np.array([np.nan, np.inf, 1.0], np.float32),
        np.array([0.0, 0.0], np.float32), np.array(3.5, np.float32), np.array(7),
        np.array([1e-5, 1.0], np.float32), r.standard_normal((3, 4, 5, 6)).astype(np.float32),
        np.array([1e10, 1.0], np.float32), r.integers(0, 2, 3000).astype(bool),
        r.standard_normal((2, 1000)).astype(np.float32)]


@pytest.mark.parametrize("opts", [dict(), dict(precision=2), dict(profile="short"),
                                  dict(linewidth=120), dict(edgeitems=2, threshold=50),
                                  dict(sci_mode=True), dict(profile="full"),
                                  dict(sci_mode=False), dict(edgeitems=0, threshold=5),
                                  dict(linewidth=30)])
def test_tensors_print_as_torch_prints_them(opts, default_printing):
    """Line wrapping, summarizing (``...``), widths, modes and suffixes, as PyTorch's
    _tensor_str. (Only a dtype's name differs, float64 for torch.float64, so a dtype suffix
    can wrap elsewhere: these cases have the default dtypes.)"""
    for lib in (tg, torch):
        lib.set_printoptions(profile="default")
        lib.set_printoptions(**opts)
    for v in _printing_cases():
        for requires_grad in ((False, True) if v.dtype.kind == "f" else (False,)):
            ours = repr(tg.tensor(v, requires_grad=requires_grad))
            theirs = repr(torch.tensor(v, requires_grad=requires_grad)).replace("torch.", "")
            assert ours == theirs, f"{v.shape} {v.dtype} {opts}:\n{ours}\n{theirs}"
