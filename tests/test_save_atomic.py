"""Saving leaves no litter (issue 12, item 10).

``tg.save`` writes ``.<name>.tracegrad-tmp`` beside the target, fsyncs it and renames it over
the target. These tests kill real processes in the middle of a save (SIGKILL), run saves to
the same path from two processes at once, and check permissions, symlinks and errors.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.io as tio
from tracegrad.io import load, save

pytest.importorskip("safetensors")
posix = pytest.mark.skipif(os.name != "posix", reason="POSIX signals, umask and symlinks")

ROOT = Path(__file__).resolve().parents[1]
TMP = ".m.safetensors.tracegrad-tmp"


def big(value: float) -> dict:
    """A state of a few MB, so a save takes a while to write."""
    return {"w": tg.full((512, 1024), value), "b": tg.full((1024,), value), "step": int(value)}


def assert_is(path, value: float) -> None:
    state = load(path)
    assert state["step"] == int(value)
    np.testing.assert_array_equal(state["w"].numpy(), np.full((512, 1024), value, np.float32))
    np.testing.assert_array_equal(state["b"].numpy(), np.full((1024,), value, np.float32))


# A child process that saves `big(value)` to `path` with a writer that writes half of the
# file, says so on stdout, and then sleeps (`pause` seconds) before it writes the rest.
CHILD = textwrap.dedent("""
    import os, sys, time
    import tracegrad as tg
    import tracegrad.io as tio

    path, value, pause = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    real_writer = tio._write_file

    def slow_writer(fd, arrays, metadata):
        # the real writer, stopped half-way for `pause` seconds
        real_writer(fd, arrays, metadata)
        size = os.lseek(fd, 0, os.SEEK_CUR)
        os.ftruncate(fd, size // 2)
        print("half", flush=True)
        time.sleep(pause)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        real_writer(fd, arrays, metadata)

    tio._write_file = slow_writer
    tg.save({"w": tg.full((512, 1024), value), "b": tg.full((1024,), value),
             "step": int(value)}, path)
    print("done", flush=True)
""")


def start_child(path, value: float, pause: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(value), str(pause)],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert proc.stdout.readline().strip() == "half", "the child did not start writing"
    return proc


def kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@posix
def test_a_save_killed_mid_write_keeps_the_old_file_and_the_next_save_cleans_up(tmp_path):
    path = tmp_path / "m.safetensors"
    save(big(1.0), path)
    old_bytes = path.read_bytes()

    proc = start_child(path, 2.0, pause=60)
    assert sorted(os.listdir(tmp_path)) == sorted(["m.safetensors", TMP])
    assert 0 < (tmp_path / TMP).stat().st_size < len(old_bytes)  # really mid-write
    kill(proc)

    assert path.read_bytes() == old_bytes
    assert_is(path, 1.0)
    assert sorted(os.listdir(tmp_path)) == sorted(["m.safetensors", TMP])  # at most one

    # a second killed save still leaves one temporary file, not two
    kill(start_child(path, 3.0, pause=60))
    assert sorted(os.listdir(tmp_path)) == sorted(["m.safetensors", TMP])
    assert_is(path, 1.0)

    save(big(4.0), path)  # the next save removes the stale file
    assert os.listdir(tmp_path) == ["m.safetensors"]
    assert_is(path, 4.0)


@posix
def test_a_killed_first_save_leaves_no_file_at_the_target(tmp_path):
    path = tmp_path / "m.safetensors"
    kill(start_child(path, 2.0, pause=60))
    assert os.listdir(tmp_path) == [TMP]
    with pytest.raises(FileNotFoundError):
        load(path)
    save(big(5.0), path)
    assert os.listdir(tmp_path) == ["m.safetensors"]
    assert_is(path, 5.0)


@posix
def test_concurrent_saves_take_turns(tmp_path):
    """A second process saving while the first is mid-write waits for it: neither writes
    into the other's temporary file, and the target ends as one whole save."""
    path = tmp_path / "m.safetensors"
    save(big(1.0), path)
    slow = start_child(path, 2.0, pause=1.5)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    fast = subprocess.run(
        [sys.executable, "-c", "import sys, tracegrad as tg; tg.save({'w': tg.full((512, 1024),"
         " 3.0), 'b': tg.full((1024,), 3.0), 'step': 3}, sys.argv[1])", str(path)],
        env=env, cwd=ROOT, timeout=60)
    assert fast.returncode == 0
    assert slow.stdout.readline().strip() == "done"
    assert slow.wait(timeout=30) == 0
    assert os.listdir(tmp_path) == ["m.safetensors"]
    # the fast save had to wait for the slow one, so it renamed last
    assert_is(path, 3.0)


@posix
def test_many_concurrent_saves_leave_one_whole_file(tmp_path):
    path = tmp_path / "m.safetensors"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = ("import sys, tracegrad as tg\n"
            "v = float(sys.argv[2])\n"
            "for _ in range(5):\n"
            "    tg.save({'w': tg.full((512, 1024), v), 'b': tg.full((1024,), v),"
            " 'step': int(v)}, sys.argv[1])\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), str(v)], env=env, cwd=ROOT)
             for v in (1.0, 2.0, 3.0, 4.0)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    assert os.listdir(tmp_path) == ["m.safetensors"]
    value = float(load(path)["step"])
    assert_is(path, value)


@posix
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_new_file_gets_the_umask_permissions(tmp_path, umask):
    old = os.umask(umask)
    try:
        save({"w": tg.ones(2)}, tmp_path / "m.safetensors")
        with open(tmp_path / "plain", "w"):
            pass
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "m.safetensors").stat().st_mode)
    assert mode == 0o666 & ~umask == stat.S_IMODE((tmp_path / "plain").stat().st_mode)


@posix
def test_a_replaced_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "m.safetensors"
    save({"w": tg.ones(2)}, path)
    os.chmod(path, 0o640)
    save({"w": tg.zeros(2)}, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert load(path)["w"].tolist() == [0.0, 0.0]


@posix
def test_saving_to_a_symlink_writes_its_target(tmp_path):
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    real = real_dir / "m.safetensors"
    save({"w": tg.ones(2)}, real)
    link = tmp_path / "link.safetensors"
    link.symlink_to(real)
    save({"w": tg.full((2,), 7.0)}, link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert load(real)["w"].tolist() == [7.0, 7.0]
    assert os.listdir(real_dir) == ["m.safetensors"] and sorted(os.listdir(tmp_path)) == [
        "link.safetensors", "real"]
    # a relative link, and a link to a file that does not exist yet
    rel = tmp_path / "rel.safetensors"
    rel.symlink_to(Path("real") / "new.safetensors")
    save({"w": tg.zeros(1)}, rel)
    assert rel.is_symlink() and load(real_dir / "new.safetensors")["w"].tolist() == [0.0]


def test_the_file_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        st = os.fstat(fd)
        events.append(("fsync", st.st_ino, st.st_size))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.stat(src).st_ino, os.fspath(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    path = tmp_path / "m.safetensors"
    save({"w": tg.ones(1000)}, path)
    renames = [i for i, e in enumerate(events) if e[0] == "replace"]
    assert len(renames) == 1
    inode = events[renames[0]][1]
    assert events[renames[0]][2] == str(path)
    synced = [e for e in events[:renames[0]] if e[0] == "fsync" and e[1] == inode]
    assert synced and synced[-1][2] == path.stat().st_size  # the whole file was synced
    assert path.stat().st_ino == inode


def test_a_failed_write_removes_its_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    save({"w": tg.ones(2)}, path)

    def broken(fd, arrays, metadata):
        os.write(fd, b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tio, "_write_file", broken)
    with pytest.raises(OSError, match="No space"):
        save({"w": tg.zeros(2)}, path)
    assert os.listdir(tmp_path) == ["m.safetensors"]
    assert load(path)["w"].tolist() == [1.0, 1.0]


def test_a_stale_temporary_file_is_replaced_not_reused(tmp_path):
    path = tmp_path / "m.safetensors"
    stale = tmp_path / TMP
    stale.write_bytes(b"garbage from a save that died" * 1000)
    os.chmod(stale, 0o600)
    save({"w": tg.ones(2)}, path)
    assert os.listdir(tmp_path) == ["m.safetensors"]
    assert load(path)["w"].tolist() == [1.0, 1.0]


def test_saving_over_a_directory_fails_cleanly(tmp_path):
    (tmp_path / "m.safetensors").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder.*m.safetensors'$"):
        save({"w": tg.ones(2)}, tmp_path / "m.safetensors")
    assert os.listdir(tmp_path) == ["m.safetensors"]
    assert (tmp_path / "m.safetensors").is_dir()


def test_saving_into_a_missing_directory_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder .* does not exist.*nope'$"):
        save({"w": tg.ones(2)}, tmp_path / "nope" / "m.safetensors")
    assert os.listdir(tmp_path) == []


def test_saving_to_an_empty_path_is_refused(tmp_path, monkeypatch):
    # '' became the current folder: a temporary file beside it, then a failed rename
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="path is empty"):
        save({"w": tg.ones(2)}, "")
    assert os.listdir(tmp_path) == []
    assert not [n for n in os.listdir(tmp_path.parent) if n.endswith(".tracegrad-tmp")]


def test_a_file_object_is_written_and_anything_else_refused_with_a_clear_message(tmp_path):
    """An open binary file is written as torch.save writes one (not atomically: the caller
    owns it); what is neither a name nor a file object gets a message."""
    with open(tmp_path / "m.safetensors", "wb") as f:
        save({"w": tg.ones(2)}, f)
    assert tg.load(tmp_path / "m.safetensors")["w"].tolist() == [1.0, 1.0]
    with pytest.raises(TypeError, match="save: path must be a file name .* or a binary file"):
        save({"w": tg.ones(2)}, 42)


def _save_from_threads(path, threads: int) -> list:
    """Each of ``threads`` threads saves to ``path`` five times; the exceptions they raised."""
    import threading

    errors = []

    def work(v):
        try:
            for _ in range(5):
                save(big(v), path)
        except BaseException as e:  # pragma: no cover - reported by the caller
            errors.append(e)

    running = [threading.Thread(target=work, args=(float(v),)) for v in range(1, threads + 1)]
    for t in running:
        t.start()
    for t in running:
        t.join(timeout=120)
    return errors


def test_many_rounds_of_threads_saving_to_one_path_never_lose_the_temporary_file(tmp_path):
    """A save that found the temporary file gone between trying to create it and opening it
    removed the name, which by then could be another save's new temporary file: that save's
    rename failed (FileNotFoundError; about one round in eight of these)."""
    for trial in range(15):
        folder = tmp_path / str(trial)
        folder.mkdir()
        errors = _save_from_threads(folder / "m.safetensors", 6)
        assert not errors, f"round {trial}: {errors}"
        assert os.listdir(folder) == ["m.safetensors"]


def test_threads_saving_to_one_path_take_turns(tmp_path):
    """flock locks belong to open files, so threads of one process exclude each other too."""
    path = tmp_path / "m.safetensors"
    assert not _save_from_threads(path, 4)
    assert os.listdir(tmp_path) == ["m.safetensors"]
    assert_is(path, float(load(path)["step"]))


def test_bytes_and_path_like_targets(tmp_path):
    save({"w": tg.ones(1)}, os.fsencode(tmp_path / "a.safetensors"))
    save({"w": tg.ones(1)}, tmp_path / "b.safetensors")
    assert sorted(os.listdir(tmp_path)) == ["a.safetensors", "b.safetensors"]


def test_the_file_is_byte_for_byte_what_the_safetensors_library_writes(tmp_path):
    """tg.save streams the file itself; the bytes are the library's own layout."""
    st_numpy = pytest.importorskip("safetensors.numpy")
    rng = np.random.default_rng(0)
    arrays = {}
    for i, dt in enumerate([np.float16, np.float32, np.float64, np.int8, np.uint8, np.int16,
                            np.int32, np.int64, np.bool_] * 2):
        shape = tuple(int(n) for n in rng.integers(0, 4, size=i % 3))
        arrays[f"{'ba'[i % 2]}{i}.é"] = np.asarray((rng.standard_normal(shape) * 9).astype(dt))
    ours = b"".join(bytes(c) for c in tio._file_chunks(arrays, {"k": "v"}))
    assert ours == st_numpy.save(arrays, metadata={"k": "v"})
    # and through tg.save: every dtype (int16 too) comes back as it went in
    save(arrays, tmp_path / "m.safetensors")
    back = load(tmp_path / "m.safetensors")
    assert back.keys() == arrays.keys()
    for k, v in arrays.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
        np.testing.assert_array_equal(back[k], v)
    assert st_numpy.load_file(tmp_path / "m.safetensors").keys() == arrays.keys()


@posix
def test_a_symlink_at_the_temporary_name_is_removed_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    (tmp_path / TMP).symlink_to(victim)
    save({"w": tg.ones(2)}, tmp_path / "m.safetensors")
    assert victim.read_bytes() == b"keep me"
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors", "victim"]
    assert not (tmp_path / "m.safetensors").is_symlink()


@posix
def test_a_file_system_without_locks_still_saves_and_cleans_up(tmp_path, monkeypatch):
    import errno
    import fcntl

    calls = []

    def no_locks(fd, op):
        calls.append(op)
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    path = tmp_path / "m.safetensors"
    (tmp_path / TMP).write_bytes(b"stale")
    fds = _open_fds()
    save({"w": tg.ones(2)}, path)
    save({"w": tg.zeros(2)}, path)
    assert _open_fds() == fds  # no descriptor leaked
    assert calls  # the lock was tried
    assert os.listdir(tmp_path) == ["m.safetensors"]
    assert load(path)["w"].tolist() == [0.0, 0.0]


def _open_fds() -> int | None:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None


def test_saves_leak_no_descriptors(tmp_path):
    path = tmp_path / "m.safetensors"
    save({"w": tg.ones(2)}, path)
    fds = _open_fds()
    for i in range(10):
        (tmp_path / TMP).write_bytes(b"stale")  # every other kind of start, too
        save({"w": tg.full((2,), float(i))}, path)
        save({"w": tg.full((2,), float(i))}, path)
    with pytest.raises(TypeError):
        save({"w": object()}, path)
    assert _open_fds() == fds
    assert os.listdir(tmp_path) == ["m.safetensors"]


def test_a_name_near_the_length_limit_still_saves(tmp_path):
    path = tmp_path / ("m" * 240 + ".safetensors")  # 252 bytes: the temp name would be 267
    save({"w": tg.ones(2)}, path)
    save({"w": tg.zeros(2)}, path)
    assert os.listdir(tmp_path) == [path.name]
    assert load(path)["w"].tolist() == [0.0, 0.0]
    assert len(tio._temp_name(str(path)).rsplit(os.sep, 1)[1]) <= 255
