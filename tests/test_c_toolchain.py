"""The C toolchain (compiler/backends/toolchain.py): the disk cache, concurrent writers,
corrupt entries, a missing compiler and a source the compiler rejects."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tracegrad.compiler.backends import toolchain

ROOT = Path(__file__).resolve().parent.parent

needs_cc = pytest.mark.skipif(toolchain.compiler_problem() is not None,
                              reason="no working C compiler")

SOURCE = "double tg_test_twice(double x) { return 2 * x + %d; }\n"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache directory, and no memory of loaded libraries."""
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path))
    toolchain.clear_memory()
    yield tmp_path / "c"
    toolchain.clear_memory()


def _call(lib, x: float) -> float:
    f = lib.cdll.tg_test_twice
    f.restype, f.argtypes = ctypes.c_double, [ctypes.c_double]
    return f(x)


# Run in a new process: builds SOURCE % n and prints the result and whether it was cached.
CHILD = """
import ctypes, sys
from tracegrad.compiler.backends import toolchain
lib = toolchain.build({source!r})
f = lib.cdll.tg_test_twice
f.restype, f.argtypes = ctypes.c_double, [ctypes.c_double]
print(f(20.0), lib.cached)
"""


def _child(cache_root: Path, source: str) -> subprocess.Popen:
    env = dict(os.environ, TRACEGRAD_CACHE_DIR=str(cache_root), PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", CHILD.format(source=source)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@needs_cc
def test_build_compiles_loads_and_caches_on_disk(cache):
    lib = toolchain.build(SOURCE % 1)
    assert _call(lib, 20.0) == 41.0
    assert not lib.cached and lib.path.parent == cache and lib.path.suffix == ".so"
    assert lib.source_path.read_text().startswith(SOURCE % 1)
    assert toolchain.build(SOURCE % 1) is lib  # the same process: the loaded library
    assert [p.name for p in cache.iterdir() if p.name.endswith(".tmp")] == []


@needs_cc
def test_a_new_process_loads_from_the_disk_cache(cache):
    toolchain.build(SOURCE % 2)
    done = _child(cache.parent, SOURCE % 2)
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    assert out.split() == ["42.0", "True"]


@needs_cc
def test_the_key_depends_on_source_and_flags(cache, monkeypatch):
    a = toolchain.build(SOURCE % 3)
    b = toolchain.build(SOURCE % 4)
    assert a.key != b.key and _call(b, 20.0) == 44.0
    monkeypatch.setenv("TRACEGRAD_CFLAGS", "-O1")
    c = toolchain.build(SOURCE % 3)
    assert c.key != a.key and not c.cached and _call(c, 20.0) == 43.0


@needs_cc
@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped", "foreign", "empty"])
def test_a_corrupt_or_foreign_entry_is_rebuilt_not_loaded(cache, damage):
    # (damaged between processes: a process that has an object loaded keeps it mapped)
    lib = toolchain.build(SOURCE % 5)
    other = toolchain.build(SOURCE % 6)
    data = lib.path.read_bytes()
    bad = {
        "garbage": b"\x7fELF not really an object" * 10,
        "truncated": data[: len(data) // 2],
        "flipped": data[:100] + bytes([data[100] ^ 0xFF]) + data[101:],
        "foreign": other.path.read_bytes(),  # a whole, valid object of another key
        "empty": b"",
    }[damage]
    assert not toolchain._valid(bad, lib.key)
    toolchain._write_atomic(lib.path, bad)
    done = _child(cache.parent, SOURCE % 5)
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    assert out.split() == ["45.0", "False"]  # compiled again, not loaded
    assert toolchain._valid(lib.path.read_bytes(), lib.key)


@needs_cc
def test_two_processes_compiling_the_same_source_at_once(cache):
    source = SOURCE % 7 + "/* two writers */\n"
    children = [_child(cache.parent, source) for _ in range(2)]
    outs = [c.communicate(timeout=120) for c in children]
    for child, (out, err) in zip(children, outs):
        assert child.returncode == 0, err
        assert out.split()[0] == "47.0"
    objects = [p for p in cache.iterdir() if p.suffix == ".so"]
    assert len(objects) == 1
    assert [p.name for p in cache.iterdir() if p.name.endswith(".tmp")] == []
    assert toolchain._valid(objects[0].read_bytes(), objects[0].stem)


def test_a_missing_compiler_names_what_was_tried_and_how_to_install(cache, monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent")
    toolchain.clear_memory()
    with pytest.raises(toolchain.CompilerNotFound) as e:
        toolchain.build(SOURCE % 8)
    message = str(e.value)
    assert "$CC=/nonexistent" in message and "apt-get install gcc" in message
    assert "backend='numpy'" in message
    problem = toolchain.compiler_problem()
    assert problem is not None and "/nonexistent" in problem


def test_no_compiler_on_path(cache, monkeypatch, tmp_path):
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing there
    toolchain.clear_memory()
    with pytest.raises(toolchain.CompilerNotFound) as e:
        toolchain.find_compiler()
    for name in toolchain.CANDIDATES:
        assert f"{name} (not on PATH)" in str(e.value)


@needs_cc
def test_a_source_the_compiler_rejects(cache):
    with pytest.raises(toolchain.CompileError) as e:
        toolchain.build("double broken(double x) { return x +* ; }\n")
    message = str(e.value)
    assert "rejected" in message and "error" in message  # the compiler's own words
    kept = Path(message.split("source kept at: ")[1].splitlines()[0])
    assert kept.exists() and "broken" in kept.read_text()
    assert [p for p in cache.iterdir() if p.suffix == ".so"] == []


@needs_cc
def test_the_compiler_is_probed_once_per_process(cache, monkeypatch):
    assert toolchain.compiler_problem() is None
    calls = []
    monkeypatch.setattr(toolchain, "build", lambda *a, **k: calls.append(a))
    assert toolchain.compiler_problem() is None and calls == []


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path / "x"))
    assert toolchain.cache_dir() == tmp_path / "x" / "c"
    monkeypatch.delenv("TRACEGRAD_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert toolchain.cache_dir() == tmp_path / "xdg" / "tracegrad" / "c"


@needs_cc
def test_vector_math_is_probed_and_can_be_turned_off(cache, monkeypatch):
    """glibc's vector math library: off with TRACEGRAD_VECTOR_MATH=0 (nothing compiled);
    else the probe's answer, whose object (when it works) calls a vector tanhf."""
    monkeypatch.setenv("TRACEGRAD_VECTOR_MATH", "0")
    assert toolchain.vector_math() is False
    assert not cache.exists() or list(cache.glob("*.so")) == []
    monkeypatch.delenv("TRACEGRAD_VECTOR_MATH")
    works = toolchain.vector_math()
    if sys.platform == "linux" and os.uname().machine == "x86_64" and works:
        (probe,) = cache.glob("*.so")
        assert b"_ZGV" in probe.read_bytes() and b"tanhf" in probe.read_bytes()
    # the flags key the cache: the same source with them is another object
    source = SOURCE % 7
    plain = toolchain.build(source)
    if works:
        vector = toolchain.build(source, vector_math=True)
        assert vector.key != plain.key and _call(vector, 1.0) == _call(plain, 1.0) == 9.0


@needs_cc
def test_vector_math_falls_back_when_the_library_does_not_link(cache, monkeypatch):
    """A toolchain without libmvec (here: the library name made wrong) answers False, and
    kernels use the C backend's own tanh."""
    monkeypatch.setattr(toolchain, "VECTOR_LIBS", ("-ltracegrad_no_such_library",))
    assert toolchain.vector_math() is False
