"""The C toolchain: find a compiler, compile C source to a shared object, cache it on disk,
load it with ctypes.

- **Compiler.** ``$CC`` when set (only it: a user who names a compiler means that one), else
  the first of ``cc``, ``gcc``, ``clang`` on ``PATH``. `find_compiler` raises
  `CompilerNotFound` naming what it tried and how to install one.
- **Flags** are `FLAGS` (``-O3``, position-independent, shared; never ``-ffast-math``, so NaN
  and inf behave as in NumPy), ``-march=native`` when the compiler takes it (vector
  instructions of this CPU: NumPy's own loops use them; ``TRACEGRAD_NATIVE=0`` turns it off)
  and ``$TRACEGRAD_CFLAGS``; all of them are part of the cache key, and ``-march=native``
  also keys on the machine's CPU (its model and feature flags).
- **Disk cache.** ``$TRACEGRAD_CACHE_DIR`` or the platform's user cache directory
  (``~/.cache/tracegrad`` on Linux), subdirectory ``c``. An entry is ``<key>.so``, where the
  key hashes the source, the compiler (path and version) and the flags. Every file is
  written to a temporary name and renamed into place, so a reader sees a whole file or none,
  and two processes compiling the same source at once both succeed (the second rename
  replaces an identical file). Each entry carries a trailer (magic, key, SHA-256 of the
  object) checked *before* the object is loaded: a truncated, corrupt or foreign file is
  rebuilt, never handed to the dynamic loader; after loading, the object's own
  ``tracegrad_key`` symbol must match too.
- **Vector math.** `vector_math` says whether glibc's vector math library (libmvec: 4, 8
  or 16 lanes of ``tanhf`` for SSE, AVX2, AVX-512) works here: probed once by compiling,
  loading and running a small loop on ordinary and special values (NaN, +-inf, -0) with
  ``-fopenmp-simd -lmvec``; ``TRACEGRAD_VECTOR_MATH=0`` turns
  it off. A source built with ``vector_math=True`` gets those flags (and they key the cache).
- **Errors.** A source the compiler rejects raises `CompileError` with the compiler's own
  message, the command and the path of the kept source.

>>> lib = build("double twice(double x) { return 2 * x; }")
>>> f = lib.cdll.twice; f.restype = ctypes.c_double; f.argtypes = [ctypes.c_double]
>>> f(21.0)
42.0
"""

from __future__ import annotations

# (hashlib, subprocess, tempfile, shutil and shlex are imported where they are used, to keep
# `import tracegrad` light: bench/imports.py)
import ctypes
import os
import platform
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

CANDIDATES = ("cc", "gcc", "clang")
# -O3: GCC vectorizes at -O2 only loops that need no run-time check that the output does not
# overlap an input, and a kernel's output may be any array. -fno-math-errno only stops libm
# calls from setting errno (nothing reads it), which lets sqrt be one vector instruction;
# values are unchanged; -fno-trapping-math lets it compute both sides of a `?:` (relu,
# maximum, clamping) as vector selects, which only changes the floating-point exception
# flags nobody reads, not a value. -ffp-contract=off: GCC would otherwise fuse `a * b + c`
# into one fused multiply-add with -march=native (one rounding instead of NumPy's two, so a
# long chain drifts from eager). Never -ffast-math: NaN, inf and the order of additions stay
# as written.
FLAGS = ("-O3", "-fPIC", "-shared", "-fno-math-errno", "-fno-trapping-math",
         "-ffp-contract=off")
LIBS = ("-lm",)
# glibc's vector math library: `#pragma omp declare simd` on a libm function lets GCC call
# its vector variant (_ZGVeN16v_tanhf...) from a vectorized loop, without -ffast-math
VECTOR_FLAGS, VECTOR_LIBS = ("-fopenmp-simd",), ("-lmvec",)
MAGIC = b"\0TRACEGRAD-C-CACHE-1\0"
_TRAILER = len(MAGIC) + 64 + 32  # magic, key (hex), sha256 of the object (raw)

INSTALL_HINT = (
    "Install one (Debian/Ubuntu: `apt-get install gcc`; Fedora: `dnf install gcc`; "
    "Alpine: `apk add build-base`; macOS: `xcode-select --install`), or set $CC to a C "
    "compiler, or use backend='numpy'")


class CompilerNotFound(RuntimeError):
    """No working C compiler: the message names those tried and how to install one."""


class CompileError(RuntimeError):
    """The C compiler rejected a source: the message holds its output, the command and the
    path of the kept source."""


@dataclass(frozen=True)
class Compiler:
    command: tuple  # the argv prefix: ("/usr/bin/gcc",) or $CC split like a shell would
    asked: str  # what was looked for: "$CC=..." or "cc"
    version: str  # the first line of `--version`
    native: bool = False  # it accepts -march=native (code for this CPU: AVX2, AVX-512...)

    @property
    def flags(self) -> tuple:
        import shlex
        native = ("-march=native",) if self.native and \
            os.environ.get("TRACEGRAD_NATIVE", "1") != "0" else ()
        return FLAGS + native + tuple(shlex.split(os.environ.get("TRACEGRAD_CFLAGS", "")))

    def identity(self) -> str:
        """What the cache key knows of the compiler and its flags."""
        parts = [" ".join(self.command), self.version, " ".join(self.flags), " ".join(LIBS),
                 sys.platform, platform.machine()]
        if any("native" in f for f in self.flags):  # code for this very CPU
            parts.append(_cpu_model())
        return "\n".join(parts)

    def __str__(self) -> str:
        return f"{' '.join(self.command)} ({self.version}) {' '.join(self.flags)}"


def _cpu_model() -> str:
    """The CPU's model and feature flags (Linux), else what `platform` knows."""
    found: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key = line.split(":")[0].strip()
            if key in ("model name", "flags", "Features", "CPU part") and key not in found:
                found[key] = line
    except OSError:
        pass
    return "\n".join(found.values()) or f"{platform.processor()} {platform.machine()}"


def _version(command: tuple) -> str | None:
    import subprocess
    try:
        done = subprocess.run([*command, "--version"], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else "unknown version"


_found: dict[str, Compiler | str] = {}  # $CC's value -> the compiler, or why there is none
_lock = threading.Lock()


def find_compiler() -> Compiler:
    """The C compiler to use (see the module's docstring), found once per process (per
    value of ``$CC``); raises `CompilerNotFound`."""
    cc = os.environ.get("CC", "")
    with _lock:
        found = _found.get(cc)
        if found is None:
            found = _found[cc] = _search(cc)
    if isinstance(found, str):
        raise CompilerNotFound(found)
    return found


def _accepts_native(command: tuple) -> bool:
    """Whether the compiler takes -march=native (the object then keys on this CPU)."""
    import subprocess
    try:
        done = subprocess.run([*command, "-march=native", "-E", "-x", "c", os.devnull, "-o",
                               os.devnull], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _search(cc: str) -> Compiler | str:
    import shlex
    import shutil
    tried = []
    if cc.strip():
        command = tuple(shlex.split(cc))
        path = shutil.which(command[0])
        version = _version((path,) + command[1:]) if path else None
        if version:
            command = (path,) + command[1:]
            return Compiler(command, f"$CC={cc}", version, _accepts_native(command))
        tried.append(f"$CC={cc} ({'not found' if not path else 'does not run'})")
    else:
        for name in CANDIDATES:
            path = shutil.which(name)
            version = _version((path,)) if path else None
            if version:
                return Compiler((path,), name, version, _accepts_native((path,)))
            tried.append(f"{name} ({'not on PATH' if not path else 'does not run'})")
    return (f"no C compiler found: tried {', '.join(tried)}. The C backend compiles each "
            f"fused kernel with the system C compiler. {INSTALL_HINT}.")


_works: dict[str, str | None] = {}  # $CC's value -> None if a tiny file compiles, else why
_PROBE = "int tracegrad_probe(int x) { return x + 1; }\n"


def compiler_problem() -> str | None:
    """None if a C compiler works (it compiled and loaded a tiny file, once per process),
    else what is wrong, for a message."""
    cc = os.environ.get("CC", "")
    if cc not in _works:
        try:
            lib = build(_PROBE, use_cache=False)
            lib.cdll.tracegrad_probe.restype = ctypes.c_int
            ok = lib.cdll.tracegrad_probe(41) == 42
            _works[cc] = None if ok else "the probe compiled by the C compiler gave a wrong result"
        except (CompilerNotFound, CompileError, OSError) as e:
            _works[cc] = str(e)
    return _works[cc]


# The functions a kernel may take from libmvec, declared so that GCC calls their vector
# variants (glibc has tanhf's since 2.35: an older one fails the probe). Not expf: glibc
# 2.36's vector expf is 2.6 ulp from the exact value, the C backend's own 1 (c_codegen).
VECTOR_DECLARATIONS = """\
#pragma omp declare simd notinbranch
extern float tanhf(float);
"""
_VECTOR_PROBE = VECTOR_DECLARATIONS + """\
void tracegrad_vector_probe(const float *x, float *t, int n) {
    for (int i = 0; i < n; i++)
        t[i] = tanhf(x[i]);
}
"""
_vector: dict[tuple, bool] = {}  # ($CC, $TRACEGRAD_NATIVE, $TRACEGRAD_CFLAGS) -> it works


def vector_math() -> bool:
    """Whether float32 tanh may call glibc's vector math library (see the module's
    docstring): it compiles, links, loads and gives NumPy's results on the probe's values
    (NaN, +-inf, -0, +-1 far out) and within 2 ulp of float64 elsewhere. False with
    ``TRACEGRAD_VECTOR_MATH=0``."""
    if os.environ.get("TRACEGRAD_VECTOR_MATH", "1") == "0":
        return False
    setting = tuple(os.environ.get(k, "") for k in ("CC", "TRACEGRAD_NATIVE",
                                                    "TRACEGRAD_CFLAGS"))
    if setting not in _vector:
        _vector[setting] = _probe_vector_math()
    return _vector[setting]


def _probe_vector_math() -> bool:
    import numpy as np
    try:
        lib = build(_VECTOR_PROBE, vector_math=True)
    except (CompilerNotFound, CompileError, OSError):
        return False
    special = [np.nan, np.inf, -np.inf, 0.0, -0.0, 20.0, -20.0, 1e30, -1e30, 1e-30, -1e-30,
               1e-45, -1e-45]
    x = np.concatenate([special, np.linspace(-12, 12, 4099)]).astype(np.float32)
    got = np.empty_like(x)
    pointer = ctypes.POINTER(ctypes.c_float)
    fn = lib.cdll.tracegrad_vector_probe
    fn.argtypes = [pointer, pointer, ctypes.c_int]
    fn.restype = None
    fn(x.ctypes.data_as(pointer), got.ctypes.data_as(pointer), len(x))
    want = np.tanh(x.astype(np.float64))
    want32 = want.astype(np.float32)
    with np.errstate(all="ignore"):
        ulps = np.abs(got - want) / np.spacing(np.abs(want32)).astype(np.float64)
    n = len(special)
    return bool(np.array_equal(got[:n], np.tanh(x[:n]), equal_nan=True)
                and np.array_equal(np.signbit(got[x == x]), np.signbit(want32[x == x]))
                and np.all(ulps[n:] <= 2))


# ---------------------------------------------------------------- the disk cache


def cache_dir() -> Path:
    """Where compiled objects live: ``$TRACEGRAD_CACHE_DIR``, else the user cache directory
    (``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux, ``~/Library/Caches`` on macOS,
    ``%LOCALAPPDATA%`` on Windows), then ``tracegrad/c``."""
    env = os.environ.get("TRACEGRAD_CACHE_DIR")
    if env:
        return Path(env).expanduser() / "c"
    if sys.platform == "darwin":
        root = Path.home() / "Library" / "Caches"
    elif os.name == "nt":
        root = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "tracegrad" / "c"


def cache_key(source: str, compiler: Compiler, vector_math: bool = False) -> str:
    import hashlib
    h = hashlib.sha256()
    h.update(compiler.identity().encode())
    if vector_math:
        h.update(" ".join(VECTOR_FLAGS + VECTOR_LIBS).encode())
    h.update(b"\0")
    h.update(source.encode())
    return h.hexdigest()


@dataclass
class Library:
    """A loaded shared object: ``cdll`` (a `ctypes.CDLL`), its cache ``path`` and ``key``,
    and whether it came from the disk cache (``cached``) or was compiled now."""

    cdll: ctypes.CDLL
    path: Path
    key: str
    cached: bool
    source_path: Path


_loaded: dict[str, Library] = {}  # key -> library, in this process


def _key_line(key: str) -> str:
    return f'\nconst char tracegrad_key[] = "{key}";\n'


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a
    rename: a reader never sees half a file."""
    import tempfile
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _valid(data: bytes, key: str) -> bool:
    """Whether a cache file is a whole object built for ``key`` (checked before loading)."""
    import hashlib
    if len(data) <= _TRAILER:
        return False
    body, trailer = data[:-_TRAILER], data[-_TRAILER:]
    if trailer[:len(MAGIC)] != MAGIC or trailer[len(MAGIC):len(MAGIC) + 64] != key.encode():
        return False
    return hashlib.sha256(body).digest() == trailer[len(MAGIC) + 64:]


def build(source: str, use_cache: bool = True, vector_math: bool = False) -> Library:
    """Compile C ``source`` into a shared object and load it, through the disk cache (see
    the module's docstring); ``vector_math``: with the flags of glibc's vector math library
    (`vector_math`). Raises `CompilerNotFound` or `CompileError`."""
    import tempfile
    compiler = find_compiler()
    key = cache_key(source, compiler, vector_math)
    lib = _loaded.get(key)
    if lib is not None:
        return lib
    directory = cache_dir() if use_cache else Path(tempfile.mkdtemp(prefix="tracegrad-c-"))
    directory.mkdir(parents=True, exist_ok=True)
    so_path, c_path = directory / f"{key}.so", directory / f"{key}.c"
    cached = False
    try:
        data = so_path.read_bytes()
    except OSError:
        data = b""
    if data and _valid(data, key):
        cached = True
    else:
        full = source + _key_line(key)
        _write_atomic(c_path, full.encode())
        data = _compile(compiler, c_path, so_path, vector_math)
    try:
        cdll = ctypes.CDLL(str(so_path))
        found = (ctypes.c_char * 65).in_dll(cdll, "tracegrad_key").value
    except (OSError, ValueError) as e:
        if not cached:
            raise CompileError(f"the C backend could not load {so_path}, which "
                               f"{' '.join(compiler.command)} just built: {e}") from e
        found = None
    if found != key.encode():  # an object that passed the trailer check yet is not ours
        so_path.unlink(missing_ok=True)
        return build(source, use_cache, vector_math)
    lib = Library(cdll, so_path, key, cached, c_path)
    _loaded[key] = lib
    return lib


def _compile(compiler: Compiler, c_path: Path, so_path: Path,
             vector_math: bool = False) -> bytes:
    """Run the compiler on ``c_path``; put the object, with its trailer, at ``so_path``
    (atomically); return the bytes written."""
    import hashlib
    import subprocess
    import tempfile
    fd, tmp = tempfile.mkstemp(dir=so_path.parent, prefix=so_path.name + ".", suffix=".tmp")
    os.close(fd)
    flags, libs = compiler.flags, LIBS
    if vector_math:
        flags, libs = flags + VECTOR_FLAGS, VECTOR_LIBS + libs
    command = [*compiler.command, *flags, str(c_path), "-o", tmp, *libs]
    try:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.SubprocessError) as e:
            raise CompileError(f"the C compiler could not run: {' '.join(command)}: {e}. "
                               f"The source is kept at {c_path}") from e
        if done.returncode != 0:
            message = (done.stderr or done.stdout).strip()
            raise CompileError(
                f"the C compiler rejected the generated source (exit code "
                f"{done.returncode}).\ncommand: {' '.join(command)}\nsource kept at: "
                f"{c_path}\ncompiler's message:\n{message}\nThis is a bug in tracegrad's C "
                f"backend unless $CC or $TRACEGRAD_CFLAGS changed the compiler; "
                f"backend='numpy' avoids it meanwhile.")
        body = Path(tmp).read_bytes()
        key = so_path.stem
        data = body + MAGIC + key.encode() + hashlib.sha256(body).digest()
        Path(tmp).write_bytes(data)
        os.replace(tmp, so_path)
        return data
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def clear_memory() -> None:
    """Forget the compilers found and the libraries loaded in this process (for tests that
    change $CC or the cache directory)."""
    with _lock:
        _found.clear()
    _works.clear()
    _vector.clear()
    _loaded.clear()
