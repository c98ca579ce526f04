"""Save and load tensors and nested state as safetensors files. Never pickle.

``tg.save(obj, path)`` writes one ordinary safetensors file: every tensor (or NumPy array) in
``obj`` is a safetensors tensor named by its path in the structure (``"0.weight"``,
``"state.0.exp_avg"``), so other tools read the file as usual. Everything else — dicts (str or
int keys), lists, tuples, numbers, bools, strings, None — is written as JSON under the
``"tracegrad.structure"`` key of the file's ``__metadata__``, and each tensor appears there
as ``{"tensor": name}``. ``tg.load(path)`` rebuilds the structure; a safetensors file written
by another tool (no tracegrad metadata) loads as a flat dict ``name -> Tensor``. Both also
take a binary file object (``io.BytesIO``) instead of a path, as ``torch.save`` does.

The structure JSON, version 1: a node is a JSON null / bool / int / float / string (that
Python value), or one object:

    {"tensor": name}       a tg.Tensor          {"list": [node, ...]}
      (with "requires_grad": true and/or "parameter": true when it was saved so)
    {"ndarray": name}      a NumPy array        {"tuple": [node, ...]}
    {"npscalar": name}     a NumPy scalar       {"dict": [[key, node], ...]}   (key: str or int)
    {"float": "nan" | "inf" | "-inf"}           {"dict": [...], "ordered": true}  an OrderedDict

Loading reads only JSON and raw tensor bytes, so a hostile file can at worst be refused: a
file that is not a valid safetensors file, or whose tracegrad metadata is malformed, raises
`FormatError` (a ``ValueError``) and nothing in it runs.
"""

from __future__ import annotations

# (json and hashlib are imported where they are used, to keep `import tracegrad` light)
import errno
import io
import math
import os
import stat
from collections import OrderedDict
from typing import Any

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

import numpy as np

from . import dtypes
from .tensor import Tensor, _leaf

__all__ = ["save", "load", "FormatError"]

FORMAT_VERSION = 1
_VERSION_KEY = "tracegrad.format"
_STRUCTURE_KEY = "tracegrad.structure"

# safetensors dtype names <-> the dtypes tracegrad supports.
_FILE_DTYPES = {
    "F16": dtypes.float16, "F32": dtypes.float32, "F64": dtypes.float64,
    "I8": dtypes.int8, "I16": dtypes.int16, "I32": dtypes.int32, "I64": dtypes.int64,
    "U8": dtypes.uint8, "BOOL": dtypes.bool_,
}

# safetensors keeps its JSON header below 100 MB; a header that claims more (or more than the
# file holds) is refused before anything is parsed.
_MAX_HEADER = 100 * 1024 * 1024
_RESERVED_NAMES = {"__metadata__"}


class FormatError(ValueError):
    """A file that is not a valid safetensors / tracegrad file (truncated, garbage, pickle...)."""


def _safetensors():
    try:
        import safetensors.numpy  # noqa: F401
        from safetensors import safe_open
    except ImportError:
        raise ImportError(
            'tg.save and tg.load need the safetensors package: pip install "tracegrad[io]"'
        ) from None
    import safetensors.numpy as st_numpy

    return st_numpy, safe_open


# --------------------------------------------------------------------------- save


def save(obj: Any, path: str | os.PathLike, pickle_module: Any = None,
         pickle_protocol: Any = None, _use_new_zipfile_serialization: bool = True) -> None:
    """Write tensors and nested state (dicts, lists, tuples, numbers) to one safetensors file.

    >>> tg.save({"0.weight": tg.ones(2, 3), "step": 3}, "model.safetensors")
    >>> tg.load("model.safetensors")["step"]
    3

    The file is replaced atomically: the data goes to a temporary file beside it
    (``.<name>.tracegrad-tmp``), is flushed to disk, and is renamed over ``path``. A save that
    fails or is killed (even by SIGKILL) leaves the old file as it was and at most that one
    temporary file, which the next save to ``path`` removes. Two processes saving to the same
    path take turns (a lock on the temporary file), so the file is always one whole save.
    The new file gets the permissions of the file it replaces, or those of any new file
    (the umask applies); a symlink stays a link and the file it points to is replaced.

    ``path`` may also be a binary file object (``io.BytesIO``, a file opened ``'wb'``), as
    with ``torch.save``: the same bytes are written to it where it stands, with no atomic
    replacement (that is the caller's file).

    ``pickle_module``, ``pickle_protocol`` and ``_use_new_zipfile_serialization`` are
    accepted as ``torch.save`` takes them, so that ported code runs unchanged; nothing is
    pickled, so they change nothing.
    """
    import json
    _safetensors()  # tg.load needs it; refuse to write what could not be read back
    stream = _is_stream(path, "write")
    if not stream and not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(
            f"save: path must be a file name (str or os.PathLike) or a binary file object "
            f"(io.BytesIO, open(..., 'wb')), got {type(path).__name__}"
        )
    if isinstance(path, io.TextIOBase):
        raise TypeError("save: the file object is open in text mode; open it in binary "
                        "mode ('wb'), or use io.BytesIO")
    arrays: dict[str, np.ndarray] = {}
    root = _Encoder(arrays).encode(obj, ())
    metadata = {
        _VERSION_KEY: str(FORMAT_VERSION),
        _STRUCTURE_KEY: json.dumps(root, allow_nan=False, separators=(",", ":")),
    }
    if stream:  # written where the stream stands, as torch.save does (not atomically)
        for chunk in _file_chunks(arrays, metadata):
            path.write(chunk)
        return
    target = os.fsdecode(os.fspath(path))
    if not target:  # (abspath would make it the current folder)
        raise FileNotFoundError(errno.ENOENT, "save: the path is empty; give a file name", "")
    if os.path.islink(target):
        target = os.path.realpath(target)  # write the file the link points to; keep the link
    target = os.path.abspath(target)
    # (said here with the path the caller gave: the OS would name our temporary file)
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, "save: the path is a folder; give a file name "
                                "(inside it, for instance)", target)
    if not os.path.isdir(os.path.dirname(target)):
        raise FileNotFoundError(errno.ENOENT, "save: the folder to save into does not exist; "
                                "create it first (os.makedirs)", os.path.dirname(target))
    _replace_atomically(target, lambda fd: _write_file(fd, arrays, metadata))


_TMP_SUFFIX = ".tracegrad-tmp"


def _temp_name(target: str) -> str:
    """The one temporary file a save to ``target`` uses: hidden, beside it, named after it
    (a name too long for the file system keeps its start and gets a hash of the rest)."""
    import hashlib
    folder, name = os.path.split(target)
    if len(os.fsencode(f".{name}{_TMP_SUFFIX}")) > 255:
        digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:16]
        name = f"{name[:100]}~{digest}"
    return os.path.join(folder, f".{name}{_TMP_SUFFIX}")


_NAME_OF_DTYPE = {dt: name for name, dt in _FILE_DTYPES.items()}
_CHUNK = 1 << 24  # write big tensors 16 MB at a time
# The safetensors library's dtype order (its Dtype enum), which its writer sorts by.
_LAYOUT_RANK = {name: i for i, name in enumerate(
    ["BOOL", "U8", "I8", "I16", "F16", "I32", "F32", "F64", "I64"])}


def _dtype_name(arr: np.ndarray) -> str:
    return _NAME_OF_DTYPE[arr.dtype.newbyteorder("=")]


def _write_file(fd: int, arrays: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """Write the safetensors file to the open descriptor ``fd``."""
    for chunk in _file_chunks(arrays, metadata):
        while chunk:
            chunk = chunk[os.write(fd, chunk):]


def _file_chunks(arrays: dict[str, np.ndarray], metadata: dict[str, str]):
    """The bytes of a safetensors file, as memoryviews (tensor data is not copied).

    The format: 8 bytes of little-endian header length, the JSON header (padded with spaces
    to a multiple of 8), then the tensors' bytes back to back at the header's
    ``data_offsets``. Tensors are laid out as the safetensors library lays them out (by
    its dtype order, widest first, then by name), so each one starts aligned to its item
    size and the bytes are the library's own for the same tensors. Written here
    rather than by ``safetensors.numpy.save_file`` so that the data streams into our own
    temporary file without a copy of every tensor (the library copies each into a bytes
    object, and recent versions write and rename a temporary file of their own).
    """
    import json
    entries = sorted(arrays.items(), key=lambda kv: (-_LAYOUT_RANK[_dtype_name(kv[1])], kv[0]))
    header: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    for name, arr in entries:
        header[name] = {"dtype": _dtype_name(arr),
                        "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    head = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    head += b" " * (-len(head) % 8)
    yield memoryview(len(head).to_bytes(8, "little") + head)
    for _, arr in entries:
        if arr.nbytes:
            data = memoryview(arr.reshape(-1).view(np.uint8))
            for start in range(0, len(data), _CHUNK):
                yield data[start:start + _CHUNK]


def _replace_atomically(target: str, write: Any) -> None:
    tmp = _temp_name(target)
    fd = _claim(tmp)
    try:
        try:
            st = os.stat(target)
        except OSError:
            st = None
        if st is not None and stat.S_ISREG(st.st_mode):
            os.chmod(tmp, stat.S_IMODE(st.st_mode))  # keep the replaced file's permissions
        write(fd)
        os.fsync(fd)  # the data is on disk before the name points at it
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)  # ours: we hold its lock
        except OSError:
            pass
        raise
    finally:
        os.close(fd)  # releases the lock
    _fsync_dir(os.path.dirname(target))


# flock errors that mean "this file system has no locks" (some network and FUSE mounts)
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


def _claim(tmp: str) -> int:
    """Create ``tmp`` empty and hold an exclusive lock on it; return its descriptor.

    Every save to the same target uses the same ``tmp``, and writes and renames it only
    while holding the lock on the file that has that name, so concurrent saves take turns
    and never write into each other's file. A ``tmp`` left by a save that was killed (the
    kernel dropped its lock) is removed. Without locks (no ``fcntl`` on Windows, or a file
    system that refuses ``flock``) an existing ``tmp`` is taken to be stale and removed,
    and a new one created exclusively: killed saves still leave no litter, but concurrent
    saves to one path are not kept apart.
    """
    locking = fcntl is not None
    while True:
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
            fresh = True
        except FileExistsError:
            if not locking:
                _remove(tmp)
                continue
            fd = _open_existing(tmp)
            if fd is None:  # gone meanwhile (renamed by its save), or a symlink we removed:
                continue  # try again (never remove by name what we did not open: another
            fresh = False  # save may have just made a new one there)
        if not locking:
            return fd
        keep = False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # waits while another save writes this file
            except OSError as e:
                if e.errno not in _NO_LOCKS:
                    raise
                locking = False
                keep = fresh
                if fresh:
                    return fd
                _remove(tmp)
                continue
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(tmp, follow_symlinks=False))
            except FileNotFoundError:
                same = False  # renamed by the save that held it: start again
            keep = same and fresh
            if same and not fresh:
                _remove(tmp)  # stale: left by a save that died (it holds no lock any more)
        finally:
            if not keep:
                os.close(fd)
        if keep:
            return fd


def _open_existing(tmp: str) -> int | None:
    """Open an existing ``tmp`` (not through a symlink); None if it is gone already, or was
    a symlink where our temporary file belongs (removed here)."""
    try:
        return os.open(tmp, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno != errno.ELOOP:  # a directory, no permission...: say so
            raise
        _remove(tmp)
        return None


def _remove(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


def _fsync_dir(folder: str) -> None:
    """Make the rename itself durable (POSIX); skipped where directories cannot be opened."""
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _where(path: tuple) -> str:
    return "obj" + "".join(f"[{p!r}]" for p in path)


class _Encoder:
    """Turns a Python structure into structure JSON, collecting its arrays under unique names."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays
        self.names: dict[int, str] = {}  # id(array-like) -> name: a shared tensor is stored once
        self.active: set[int] = set()  # containers on the current path, to refuse cycles

    def encode(self, obj: Any, path: tuple) -> Any:
        if obj is None or isinstance(obj, (bool, int, str)):
            return obj
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else {"float": repr(obj)}
        if isinstance(obj, Tensor):
            node: dict[str, Any] = {"tensor": self._array(obj, obj._data, path)}
            if obj.requires_grad:  # as torch.save keeps it (a raw weight resumes training)
                node["requires_grad"] = True
            if type(obj).__name__ == "Parameter":
                node["parameter"] = True
            return node
        if isinstance(obj, np.ndarray):
            return {"ndarray": self._array(obj, obj, path)}
        if isinstance(obj, (np.bool_, np.number)):
            return {"npscalar": self._array(obj, np.asarray(obj), path)}
        if isinstance(obj, (dict, list, tuple)):
            if id(obj) in self.active:
                raise ValueError(f"save: {_where(path)} contains itself; cannot save a cycle")
            self.active.add(id(obj))
            try:
                return self._container(obj, path)
            finally:
                self.active.discard(id(obj))
        hint = ""
        if callable(getattr(obj, "state_dict", None)):  # torch.save(model, path), ported
            hint = (f" (a whole {type(obj).__name__} is pickled by torch.save; save its "
                    f"state_dict() instead, and load_state_dict() it into a new one)")
        raise TypeError(
            f"save: {_where(path)} is a {type(obj).__name__}, which tg.save cannot store; "
            f"use tensors, NumPy arrays, numbers, bools, strings, None, and dicts, lists or "
            f"tuples of them{hint}"
        )

    def _container(self, obj: Any, path: tuple) -> dict:
        if isinstance(obj, dict):
            items = []
            for key, value in obj.items():
                if isinstance(key, bool) or not isinstance(key, (str, int)):
                    raise TypeError(
                        f"save: {_where(path)} has the key {key!r} of type "
                        f"{type(key).__name__}; dict keys must be str or int"
                    )
                items.append([key, self.encode(value, path + (key,))])
            if isinstance(obj, OrderedDict):
                return {"dict": items, "ordered": True}
            return {"dict": items}
        kind = "tuple" if isinstance(obj, tuple) else "list"
        return {kind: [self.encode(v, path + (i,)) for i, v in enumerate(obj)]}

    def _array(self, owner: Any, arr: np.ndarray, path: tuple) -> str:
        if id(owner) in self.names:
            return self.names[id(owner)]
        if arr.dtype.newbyteorder("=") not in dtypes.SUPPORTED:
            raise TypeError(
                f"save: {_where(path)} has dtype {arr.dtype}, which tg.save cannot store; "
                f"convert it to one of " + ", ".join(str(d) for d in dtypes.SUPPORTED)
            )
        # The plain dotted path keeps ordinary state dicts ordinary ("0.weight"); when two paths
        # spell the same name ({"a.b": x, "a": {"b": y}}) the later one gets a "#n" suffix. The
        # structure JSON records the exact name, so load never has to parse it back.
        base = ".".join(str(p) for p in path) or "_"
        base = base.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates
        name, n = base, 1
        while name in self.arrays or name in _RESERVED_NAMES:
            name, n = f"{base}#{n}", n + 1
        # (not np.ascontiguousarray: it turns 0-d arrays into 1-d ones)
        self.arrays[name] = arr.astype(arr.dtype.newbyteorder("<"), order="C", copy=False)
        self.names[id(owner)] = name
        return name


# --------------------------------------------------------------------------- load


def load(path: str | os.PathLike, map_location: Any = None, pickle_module: Any = None, *,
         weights_only: bool = True, mmap: bool | None = None) -> Any:
    """Read a file written by `save` (or any safetensors file) back into tensors.

    >>> state = tg.load("model.safetensors")   # {"0.weight": tensor(...), "step": 3}

    Tensors come back as `tg.Tensor` leaves (NumPy arrays as arrays), tuples as tuples, int
    keys as ints; as with ``torch.load``, a tensor saved requiring grad requires grad, and an
    ``nn.Parameter`` comes back as one. A safetensors file without tracegrad metadata
    loads as a flat dict ``name -> Tensor``. A file that is not valid raises `FormatError`.

    ``map_location``, ``pickle_module``, ``weights_only`` and ``mmap`` are accepted as
    ``torch.load`` takes them, so that ported code runs unchanged: every tensor loads to the
    CPU (a device other than the CPU is refused; a dict or function remapping storages is
    accepted and has nothing to do), loading never runs code from the file (safetensors and
    JSON: no pickle), whichever ``weights_only`` says, and the file is always read through
    a memory map, its tensors copied out into memory of their own.
    """
    if isinstance(map_location, str) or type(map_location).__name__ == "device":
        from .device import device

        try:
            device(str(map_location))  # "cpu" or "cpu:0"
        except RuntimeError:
            raise RuntimeError(
                f"load: map_location={str(map_location)!r}, but tracegrad runs on the CPU "
                f"only; leave map_location out (or give 'cpu'): every tensor loads to the "
                f"CPU") from None
    if _is_stream(path, "read"):
        return _load_stream(path)
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(
            f"load: path must be a file name (str or os.PathLike) or a binary file object "
            f"(io.BytesIO, open(..., 'rb')), got {type(path).__name__}")
    path = os.fspath(path)
    return _load_file(path, path)


def _is_stream(obj: Any, method: str) -> bool:
    """Whether ``obj`` is a file object to ``method`` (read or write), not a file name."""
    return not isinstance(obj, (str, bytes, os.PathLike)) and callable(getattr(obj, method, None))


def _load_stream(f: Any) -> Any:
    """`load` from a binary file object: its bytes from where it stands to the end, read
    through a temporary file so that the checks are those of a file."""
    import tempfile

    data = f.read()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"load: the file object gave {type(data).__name__}, not bytes; open "
                        f"it in binary mode ('rb'), or use io.BytesIO")
    name = getattr(f, "name", None)
    shown = name if isinstance(name, str) else f"<{type(f).__name__}>"
    with tempfile.TemporaryDirectory(prefix="tracegrad-load-") as folder:
        tmp = os.path.join(folder, "stream.safetensors")
        with open(tmp, "wb") as out:
            out.write(data)
        return _load_file(tmp, shown)


def _load_file(path: Any, shown: Any) -> Any:
    """`load` of the file at ``path``; errors name it ``shown``."""
    _, safe_open = _safetensors()
    _check_header(path, shown)
    try:
        with safe_open(path, framework="numpy") as f:
            metadata = f.metadata() or {}
            names = list(f.keys())
            file_dtypes = {name: f.get_slice(name).get_dtype() for name in names}
            for name, dt in file_dtypes.items():
                if dt not in _FILE_DTYPES:
                    raise TypeError(
                        f"load: tensor {name!r} in {shown!r} has dtype {dt}, which tracegrad "
                        f"does not support; supported: " + ", ".join(_FILE_DTYPES)
                    )
            arrays = {name: f.get_tensor(name) for name in names}
    except (TypeError, OSError):
        raise
    except Exception as e:  # safetensors' own SafetensorError and friends
        raise _bad(shown, str(e).replace(str(path), str(shown))) from None

    if _STRUCTURE_KEY not in metadata and _VERSION_KEY not in metadata:
        return {name: _leaf(_owned(arr, file_dtypes[name])) for name, arr in arrays.items()}
    return _decode_file(shown, metadata, arrays, file_dtypes)


def _bad(path: str, why: str) -> FormatError:
    return FormatError(
        f"load: {path!r} is not a valid tracegrad/safetensors file ({why}); "
        f"tg.load reads only files written by tg.save or other safetensors writers"
    )


def _check_header(path: str, shown: Any) -> None:
    """Refuse a truncated, garbage or pickle file with our own message before safetensors
    parses it: 8 bytes of little-endian header length, then that many bytes of JSON."""
    with open(path, "rb") as f:  # FileNotFoundError / IsADirectoryError propagate as they are
        size = os.fstat(f.fileno()).st_size
        head = f.read(9)
    if len(head) < 8:
        raise _bad(shown, f"the file is only {size} bytes long")
    n = int.from_bytes(head[:8], "little")
    fits = 2 <= n <= min(_MAX_HEADER, size - 8) and head[8:9] == b"{"
    kind = None if fits else _foreign_kind(head)  # (a header length can start b"\x80\x02")
    if kind:
        raise _bad(shown, f"it is {kind}, which tg.load never unpickles, since unpickling runs "
                          f"code from the file; in PyTorch, save the state with "
                          f"safetensors.torch.save_file(model.state_dict(), path) instead")
    if n > _MAX_HEADER or n > size - 8:
        raise _bad(shown, f"its header claims {n} bytes but the file holds {size - 8}")
    if n < 2 or head[8:9] != b"{":
        raise _bad(shown, "its header is not a JSON object")


def _foreign_kind(head: bytes) -> str | None:
    """What a file that starts with ``head`` is, if it is a kind tg.load refuses on sight."""
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive (what torch.save writes: a pickle inside)"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a Python pickle (as torch.save's legacy format and pickle.dump write)"
    return None


def _owned(arr: np.ndarray, file_dtype: str) -> np.ndarray:
    return np.array(arr, dtype=_FILE_DTYPES[file_dtype], copy=True)  # writable, our own memory


def _decode_file(path: str, metadata: dict, arrays: dict, file_dtypes: dict) -> Any:
    import json

    version = metadata.get(_VERSION_KEY)
    if version != str(FORMAT_VERSION):
        if isinstance(version, str) and version.isdigit() and int(version) > FORMAT_VERSION:
            raise _bad(path, f"it uses tracegrad format {version}; upgrade tracegrad to read it")
        raise _bad(path, f"unknown {_VERSION_KEY} {version!r}")
    if _STRUCTURE_KEY not in metadata:
        raise _bad(path, f"the metadata has no {_STRUCTURE_KEY!r}")
    try:
        root = json.loads(metadata[_STRUCTURE_KEY])
    except ValueError as e:  # (JSONDecodeError, and an int of more digits than Python reads)
        raise _bad(path, f"its {_STRUCTURE_KEY!r} metadata is not valid JSON: {e}") from None
    except RecursionError:
        raise _bad(path, f"its {_STRUCTURE_KEY!r} metadata is nested too deeply") from None
    try:
        return _Decoder(path, arrays, file_dtypes).decode(root)
    except RecursionError:
        raise _bad(path, f"its {_STRUCTURE_KEY!r} metadata is nested too deeply") from None


class _Decoder:
    def __init__(self, path: str, arrays: dict, file_dtypes: dict):
        self.path = path
        self.arrays = arrays
        self.file_dtypes = file_dtypes
        self.made: dict[tuple, Any] = {}  # (kind, name) -> object, so shared tensors stay shared

    def fail(self, why: str) -> FormatError:
        return _bad(self.path, f"malformed {_STRUCTURE_KEY!r} metadata: {why}")

    def decode(self, node: Any) -> Any:
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if not isinstance(node, dict) or not 1 <= len(node) <= 3:
            raise self.fail(f"unexpected node {_short(node)}")
        kind = next(iter(node))
        flags = set(node) - {kind}
        if flags and not (kind == "dict" and flags == {"ordered"} or kind == "tensor"
                          and flags <= {"requires_grad", "parameter"}
                          and all(node[f] is True for f in flags)):
            raise self.fail(f"unexpected node {_short(node)}")
        value = node[kind]
        if kind == "tensor" and flags:
            return self._tensor(value, node.get("requires_grad", False),
                                node.get("parameter", False))
        if kind in ("tensor", "ndarray", "npscalar"):
            return self._array(kind, value)
        if kind in ("list", "tuple"):
            if not isinstance(value, list):
                raise self.fail(f"{kind} node holds {_short(value)}, not a list")
            items = [self.decode(v) for v in value]
            return tuple(items) if kind == "tuple" else items
        if kind == "dict":
            return self._dict(value, node.get("ordered", False))
        if kind == "float":
            if value not in ("nan", "inf", "-inf"):
                raise self.fail(f"float node holds {_short(value)}")
            return float(value)
        raise self.fail(f"unknown node kind {kind!r}")

    def _dict(self, items: Any, ordered: Any) -> dict:
        if not isinstance(items, list) or not isinstance(ordered, bool):
            raise self.fail(f"dict node holds {_short(items)}")
        out = OrderedDict() if ordered else {}
        for item in items:
            if not (isinstance(item, list) and len(item) == 2):
                raise self.fail(f"dict item {_short(item)} is not a [key, value] pair")
            key, value = item
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise self.fail(f"dict key {_short(key)} is not a string or an int")
            out[key] = self.decode(value)
        return out

    def _array(self, kind: str, name: Any) -> Any:
        if not isinstance(name, str):
            raise self.fail(f"{kind} node names {_short(name)}, not a tensor name")
        if name not in self.arrays:
            raise self.fail(f"it refers to the tensor {name!r}, which is not in the file")
        if (kind, name) not in self.made:
            arr = _owned(self.arrays[name], self.file_dtypes[name])
            if kind == "tensor":
                obj = _leaf(arr)
            elif kind == "ndarray":
                obj = arr
            else:
                if arr.ndim != 0:
                    raise self.fail(f"npscalar {name!r} has shape {arr.shape}, not ()")
                obj = arr[()]
            self.made[(kind, name)] = obj
        return self.made[(kind, name)]


    def _tensor(self, name: Any, requires_grad: bool, parameter: bool) -> Tensor:
        """A tensor saved as requiring grad (or as an ``nn.Parameter``): a new leaf that
        does, over the same memory as any plain reference to it in the file."""
        key = ("parameter" if parameter else "requires_grad", name)
        if key not in self.made:
            t = self._array("tensor", name)
            if t.dtype.kind != "f":
                raise self.fail(f"tensor {name!r} of {t.dtype} is marked as requiring grad")
            if parameter:
                from .nn.module import Parameter

                self.made[key] = Parameter(t, requires_grad=requires_grad)
            else:
                self.made[key] = _leaf(t._data, requires_grad=True)
        return self.made[key]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
