"""Mount options of ownership, access and the kernel's caches, on real mounts:
uid=, gid=, umask=, allow_other, default_permissions, entry_timeout=,
attr_timeout= and -d.

Another user is uid/gid 65534 (nobody), run with setpriv(1) from util-linux. The
mount points live in a directory every user may enter (pytest's own tmp_path is
private to root), so a refusal is the mount's and not its parent's: each access
test first checks that nobody can stat the mount point's parent.
"""
import os
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import Mount, storetool_bin

NOBODY = 65534
AS_NOBODY = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups", "--"]
PY = "/usr/bin/python3"

# Prints the errno of reading argv[1] (0 and the bytes on success).
READ = ("import sys\n"
        "try:\n"
        "    data = open(sys.argv[1], 'rb').read()\n"
        "except OSError as e:\n"
        "    print(e.errno)\n"
        "else:\n"
        "    print(0)\n"
        "    sys.stdout.write(data.decode())\n")


def as_nobody(*cmd):
    return subprocess.run(AS_NOBODY + [str(c) for c in cmd], capture_output=True, text=True,
                          timeout=60)


def nobody_reads(path):
    """(errno, text) of uid 65534 reading path: errno 0 when it could."""
    r = as_nobody(PY, "-c", READ, path)
    assert r.returncode == 0, r.stderr
    first, _, rest = r.stdout.partition("\n")
    return int(first), rest


class DebugMount(Mount):
    """A mount started with -d as well."""

    def command(self):
        return super().command() + ["-d"]


@pytest.fixture
def mount(tmp_path):
    """mount(source, opts, debug=False) -> Mount, at a mount point in a directory
    every user may enter; teardown as conftest's mounter (unmount, then fail on a
    non-zero exit or an error in the log)."""
    base = Path(tempfile.mkdtemp(prefix="lexfs-options-"))
    os.chmod(base, 0o755)
    mounts = []

    def start(source, opts=(), debug=False):
        n = len(mounts) + 1
        mnt = base / ("mnt%d" % n)
        mnt.mkdir()
        cache = tmp_path / ("cache%d" % n)
        cache.mkdir()
        cls = DebugMount if debug else Mount
        m = cls(source, mnt, opts, None, None, cache, tmp_path / ("lexfs%d.log" % n))
        mounts.append(m)
        return m.start()

    start.base = base
    yield start

    problems = []
    for m in mounts:
        m.unmount()
        problems += ["%s: %s" % (m.path, p) for p in m.problems()]
    if not any(os.path.ismount(m.path) for m in mounts):
        shutil.rmtree(base, ignore_errors=True)
    if problems:
        logs = "\n".join(m.log for m in mounts)
        pytest.fail("daemon problems:\n  %s\n--- logs ---\n%s" % ("\n  ".join(problems), logs))


@pytest.fixture
def root(tmp_path):
    """A local-driver root holding files written behind lexfs's back: a plain file,
    a directory with a file (no marker, no sidecar), and an object stored with
    lexfs-storetool without any metadata."""
    r = tmp_path / "root"
    (r / "sub").mkdir(parents=True)
    (r / "plain.txt").write_bytes(b"plain\n")
    (r / "sub" / "inner.txt").write_bytes(b"inner\n")
    src = tmp_path / "put.src"
    src.write_bytes(b"stored by storetool\n")
    subprocess.run([storetool_bin(), "--driver", "local", "--set", "root_dir=%s" % r,
                    "put", "put.bin", str(src)], check=True, timeout=60)
    return r


def nobody_enters(base):
    r = as_nobody("stat", base)
    assert r.returncode == 0, "the test's own directory is closed to uid %d: %s" % (
        NOBODY, r.stderr)


# ---- owner and mode of objects without metadata --------------------------------------

def test_uid_gid_of_objects_without_metadata(mount, root):
    m = mount(str(root), ["uid=4242", "gid=4343"])
    for rel in ("", "plain.txt", "put.bin", "sub", "sub/inner.txt"):
        st = os.stat(os.path.join(m.path, rel))
        assert (st.st_uid, st.st_gid) == (4242, 4343), rel or "mount root"


def test_umask_of_objects_without_metadata(mount, root):
    m = mount(str(root), ["umask=027"])
    modes = {rel: stat.S_IMODE(os.stat(os.path.join(m.path, rel)).st_mode)
             for rel in ("", "plain.txt", "put.bin", "sub", "sub/inner.txt")}
    assert modes == {"": 0o750, "plain.txt": 0o640, "put.bin": 0o640, "sub": 0o750,
                     "sub/inner.txt": 0o640}


def test_umask_leaves_recorded_modes_alone(mount, tmp_path):
    """An object whose metadata holds a mode shows that mode, whatever the umask."""
    r = tmp_path / "root"
    r.mkdir()
    src = tmp_path / "src"
    src.write_bytes(b"#!/bin/sh\n")
    subprocess.run([storetool_bin(), "--driver", "local", "--set", "root_dir=%s" % r, "put",
                    "run.sh", str(src), "--meta", "mode=%d" % (stat.S_IFREG | 0o755),
                    "--meta", "uid=7", "--meta", "gid=8"], check=True, timeout=60)
    m = mount(str(r), ["umask=077", "uid=4242", "gid=4343"])
    st = os.stat(os.path.join(m.path, "run.sh"))
    assert stat.S_IMODE(st.st_mode) == 0o755
    assert (st.st_uid, st.st_gid) == (7, 8)


def test_files_created_record_creating_user(mount, tmp_path):
    """A file made through the mount belongs to whoever made it (not to uid=/gid=),
    and keeps that owner across a remount: it is stored, not computed."""
    r = tmp_path / "root"
    r.mkdir()
    m = mount(str(r), ["allow_other", "uid=4242", "gid=4343"])
    nobody_enters(mount.base)
    mnt = Path(m.path)
    (mnt / "by-root").write_bytes(b"root\n")
    res = as_nobody("sh", "-c", 'echo nobody > "$1" && mkdir "$2"', "sh",
                    mnt / "by-nobody", mnt / "dir-nobody")
    assert res.returncode == 0, res.stderr
    m.settle()
    m.remount()
    owners = {n: (os.stat(mnt / n).st_uid, os.stat(mnt / n).st_gid)
              for n in ("by-root", "by-nobody", "dir-nobody")}
    assert owners == {"by-root": (0, 0), "by-nobody": (NOBODY, NOBODY),
                      "dir-nobody": (NOBODY, NOBODY)}
    assert (mnt / "by-nobody").read_bytes() == b"nobody\n"


# ---- who may use the mount ------------------------------------------------------------

def test_without_allow_other_others_cannot_stat(mount, root):
    m = mount(str(root))
    nobody_enters(mount.base)
    os.stat(m.path)  # the mounting user can
    r = as_nobody("stat", m.path)
    assert r.returncode != 0, r.stdout
    assert "Permission denied" in r.stderr, r.stderr
    assert nobody_reads(os.path.join(m.path, "plain.txt"))[0] == 13  # EACCES


def test_allow_other_lets_others_in(mount, root):
    m = mount(str(root), ["allow_other"])
    nobody_enters(mount.base)
    r = as_nobody("stat", m.path)
    assert r.returncode == 0, r.stderr
    r = as_nobody("ls", m.path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["plain.txt", "put.bin", "sub"]
    assert nobody_reads(os.path.join(m.path, "sub", "inner.txt")) == (0, "inner\n")


def test_default_permissions_checks_modes(mount, tmp_path):
    """With default_permissions the kernel checks mode and owner: another user
    gets EACCES on a 0600 file of root's and reads a 0644 one."""
    r = tmp_path / "root"
    r.mkdir()
    m = mount(str(r), ["allow_other", "default_permissions"])
    nobody_enters(mount.base)
    mnt = Path(m.path)
    for name, mode in (("private", 0o600), ("public", 0o644)):
        (mnt / name).write_text(name + "\n")
        os.chmod(mnt / name, mode)
    m.settle()
    assert nobody_reads(mnt / "private") == (13, "")  # EACCES
    assert nobody_reads(mnt / "public") == (0, "public\n")
    # the root directory is root's 0755: no new names for others either
    res = as_nobody("touch", mnt / "new")
    assert res.returncode != 0 and "Permission denied" in res.stderr, res.stderr
    assert not (mnt / "new").exists()


# ---- the kernel's caches --------------------------------------------------------------

def size_after_change(m, root, name):
    """The size the mount shows for `name` right after the file grew behind its back
    (10 -> 20 bytes) once it had been looked at."""
    (root / name).write_bytes(b"x" * 10)
    assert os.stat(os.path.join(m.path, name)).st_size == 10
    (root / name).write_bytes(b"x" * 20)
    return os.stat(os.path.join(m.path, name)).st_size


# lexfs's own stat and listing caches off: only the kernel can hold an old answer.
NO_DAEMON_CACHE = ["stat_ttl=0", "list_ttl=0"]


def test_attr_timeout_keeps_attributes_in_kernel(mount, tmp_path):
    r = tmp_path / "root"
    r.mkdir()
    cached = mount(str(r), NO_DAEMON_CACHE + ["entry_timeout=30", "attr_timeout=30"])
    assert size_after_change(cached, r, "a") == 10
    fresh = mount(str(r), NO_DAEMON_CACHE + ["entry_timeout=30", "attr_timeout=0"])
    assert size_after_change(fresh, r, "b") == 20


def test_entry_timeout_keeps_names_in_kernel(mount, tmp_path):
    """With the name expired (entry_timeout=0) the kernel looks it up again, and the
    lookup brings new attributes even though attr_timeout has not run out."""
    r = tmp_path / "root"
    r.mkdir()
    cached = mount(str(r), NO_DAEMON_CACHE + ["entry_timeout=30", "attr_timeout=30"])
    assert size_after_change(cached, r, "a") == 10
    fresh = mount(str(r), NO_DAEMON_CACHE + ["entry_timeout=0", "attr_timeout=30"])
    assert size_after_change(fresh, r, "b") == 20


# ---- -d -------------------------------------------------------------------------------

def test_debug_logs_fuse_requests_and_still_works(mount, tmp_path):
    r = tmp_path / "root"
    r.mkdir()
    m = mount(str(r), debug=True)
    # FUSE's trace prints each reply's status ("error: -2 (No such file...)" for a
    # lookup of a new name): those are requests, not daemon errors.
    m.expect_errors(r"^\s*unique: \d+, error: ")
    mnt = Path(m.path)
    (mnt / "d").mkdir()
    (mnt / "d" / "f.txt").write_bytes(b"debug\n")
    assert (mnt / "d" / "f.txt").read_bytes() == b"debug\n"
    assert os.listdir(mnt / "d") == ["f.txt"]
    m.settle()
    log = m.log
    for opcode in ("INIT", "LOOKUP", "MKDIR", "CREATE", "WRITE", "READ", "RELEASE"):
        assert "opcode: %s " % opcode in log, "no FUSE %s request in the -d log" % opcode
    # lexfs's own log is at debug level too: it says what FUSE was told
    assert re.search(r" debug: fuse: -o fsname=lexfs#\S+,subtype=lexfs -d; entry_timeout 1s, "
                     r"attr_timeout 1s", log), "lexfs's own debug lines are not on under -d"
    assert (r / "d" / "f.txt").read_bytes() == b"debug\n"
