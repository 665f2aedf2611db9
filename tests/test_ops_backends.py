"""Named backends (storage.backends): one mount shows each backend as a top-level
directory, files land in their own store (a local directory, memory, and S3 on the
RADOS Gateway), a rename between backends is EXDEV so mv copies and deletes, each
backend has its own journal (kill -9 replays per backend), status, metrics, doctor
and events name the backend, and bad configurations are refused with FILE:LINE."""
import errno
import json
import os
import re
import signal
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import (ROOT, _is_mounted, invalidate, lexfs_bin, make_tree, run, stats,
                      tree_state, wait_for)
from servers.s3 import ACCESS_KEY, SECRET_KEY
from test_ops_metrics import parse_prometheus, value

NAMES = ["docs", "photos", "scratch"]


def write_config(path, text, mode=0o600):
    path.write_text(text)
    os.chmod(path, mode)
    return path


class Multi:
    """A config of three backends: docs (local), photos (S3, prefix 2024/, its own
    credentials in the file) and scratch (memory)."""

    def __init__(self, tmp_path, s3):
        self.root = tmp_path / "docs-root"
        self.root.mkdir()
        self.s3 = s3
        self.client = s3.gateway.client()
        self.config = write_config(tmp_path / "lexfs.conf", """\
# two stores and a scratch area in one mount
storage = {
  backends = (
    { name = "docs"; driver = "local"; local = { root_dir = "%s"; }; },
    { name = "photos"; driver = "s3"; prefix = "2024";
      s3 = { bucket = "%s"; endpoint = "%s";
             access_key_id = "%s"; secret_access_key = "%s"; }; },
    { name = "scratch"; driver = "memory"; }
  );
};
""" % (self.root, s3.bucket, s3.gateway.endpoint, ACCESS_KEY, SECRET_KEY))
        # The S3 credentials come from the file: none in the environment.
        self.env = dict(s3.env, AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="")

    def mount(self, mounter, opts=()):
        m = mounter(None, opts=list(opts), env=self.env, config=self.config)
        m.multi = self
        return m

    def s3_get(self, key):
        return self.client.get_object(Bucket=self.s3.bucket, Key=key)["Body"].read()

    def s3_keys(self):
        r = self.client.list_objects_v2(Bucket=self.s3.bucket)
        return sorted(o["Key"] for o in r.get("Contents", []))


@pytest.fixture
def multi(tmp_path, backend_s3):
    return Multi(tmp_path, backend_s3.fresh())


@pytest.fixture
def mm(multi, mounter):
    return multi.mount(mounter)


# ---- the tree ----------------------------------------------------------------


def test_root_lists_exactly_the_backends(mm):
    assert sorted(os.listdir(mm.path)) == NAMES


def test_root_and_backend_directories_modes_and_owner(mm):
    root = os.stat(mm.path)
    assert stat.S_ISDIR(root.st_mode) and stat.S_IMODE(root.st_mode) == 0o555
    for name in NAMES:
        st = os.stat(os.path.join(mm.path, name))
        assert stat.S_ISDIR(st.st_mode), name
        assert stat.S_IMODE(st.st_mode) == 0o755, name
        assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid()), name


def test_files_land_in_their_own_store(mm):
    Path(mm.path, "docs", "a").mkdir()
    Path(mm.path, "docs", "a", "f.txt").write_bytes(b"local bytes\n")
    Path(mm.path, "photos", "cat.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    Path(mm.path, "scratch", "tmp.bin").write_bytes(b"memory only")
    mm.settle()
    assert (mm.multi.root / "a" / "f.txt").read_bytes() == b"local bytes\n"
    assert mm.multi.s3_get("2024/cat.jpg") == b"\xff\xd8 not really a jpeg"
    assert mm.multi.s3_keys() == ["2024/cat.jpg"]
    assert not (mm.multi.root / "cat.jpg").exists()
    assert not (mm.multi.root / "tmp.bin").exists()
    assert Path(mm.path, "scratch", "tmp.bin").read_bytes() == b"memory only"
    assert sorted(os.listdir(os.path.join(mm.path, "scratch"))) == ["tmp.bin"]
    assert sorted(os.listdir(os.path.join(mm.path, "photos"))) == ["cat.jpg"]


def test_listing_of_a_backend_shows_only_its_own_keys(mm):
    (mm.multi.root / "behind-the-back.txt").write_bytes(b"x")
    mm.multi.client.put_object(Bucket=mm.multi.s3.bucket, Key="2024/remote.txt", Body=b"r")
    mm.multi.client.put_object(Bucket=mm.multi.s3.bucket, Key="other/outside.txt", Body=b"o")
    assert os.listdir(os.path.join(mm.path, "docs")) == ["behind-the-back.txt"]
    assert os.listdir(os.path.join(mm.path, "photos")) == ["remote.txt"]
    assert os.listdir(os.path.join(mm.path, "scratch")) == []


def test_rename_between_backends_is_exdev(mm):
    src = os.path.join(mm.path, "docs", "f")
    Path(src).write_bytes(b"x")
    with pytest.raises(OSError) as e:
        os.rename(src, os.path.join(mm.path, "photos", "f"))
    assert e.value.errno == errno.EXDEV
    with pytest.raises(OSError) as e:
        os.link(src, os.path.join(mm.path, "scratch", "f"))
    assert e.value.errno == errno.EXDEV
    assert Path(src).read_bytes() == b"x"


def test_rename_within_a_backend(mm):
    Path(mm.path, "photos", "old").write_bytes(b"bytes")
    os.rename(os.path.join(mm.path, "photos", "old"), os.path.join(mm.path, "photos", "new"))
    mm.settle()
    assert mm.multi.s3_keys() == ["2024/new"]


def test_mv_file_between_backends_copies_and_deletes(mm):
    data = os.urandom(300000)
    src = Path(mm.path, "docs", "big.bin")
    src.write_bytes(data)
    r = run(["mv", str(src), os.path.join(mm.path, "photos", "big.bin")])
    assert r.returncode == 0
    assert Path(mm.path, "photos", "big.bin").read_bytes() == data
    assert not src.exists()
    mm.settle()
    assert not (mm.multi.root / "big.bin").exists()
    assert mm.multi.s3_get("2024/big.bin") == data


def test_mv_tree_between_backends(mm, tmp_path):
    make_tree(tmp_path / "tree")
    run(["cp", "-a", str(tmp_path / "tree"), os.path.join(mm.path, "scratch", "tree")])
    want = tree_state(tmp_path / "tree")
    run(["mv", os.path.join(mm.path, "scratch", "tree"), os.path.join(mm.path, "docs")])
    assert tree_state(Path(mm.path, "docs", "tree")) == want
    assert os.listdir(os.path.join(mm.path, "scratch")) == []
    mm.settle()
    assert (mm.multi.root / "tree" / "big.dat").read_bytes() == \
        (tmp_path / "tree" / "big.dat").read_bytes()


def test_open_file_unlinked_keeps_its_backend(mm):
    """A file unlinked while open has no path: its handle still finds the backend."""
    p = os.path.join(mm.path, "scratch", "gone")
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"first ")
        os.unlink(p)
        os.write(fd, b"second")  # libfuse passes no path now, only the handle
        assert os.pread(fd, 12, 0) == b"first second"
    finally:
        os.close(fd)
    assert os.listdir(os.path.join(mm.path, "scratch")) == []


@pytest.mark.parametrize("op", ["mkdir", "create", "symlink", "rmdir", "rename", "chmod"])
def test_root_entries_are_fixed(mm, op):
    """Nothing adds, removes or renames an entry of the root: EPERM."""
    root = mm.path
    with pytest.raises(OSError) as e:
        if op == "mkdir":
            os.mkdir(os.path.join(root, "new"))
        elif op == "create":
            open(os.path.join(root, "new.txt"), "w").close()
        elif op == "symlink":
            os.symlink("docs", os.path.join(root, "link"))
        elif op == "rmdir":
            os.rmdir(os.path.join(root, "scratch"))
        elif op == "rename":
            os.rename(os.path.join(root, "docs"), os.path.join(root, "documents"))
        else:
            os.chmod(root, 0o777)
    assert e.value.errno == errno.EPERM
    assert sorted(os.listdir(root)) == NAMES


def test_backend_xattr_names_the_backend(mm):
    for name in NAMES:
        p = os.path.join(mm.path, name, "f")
        Path(p).write_bytes(b"x")
        r = run(["getfattr", "--only-values", "-n", "user.lexfs.backend", p])
        assert r.stdout == name
        assert os.getxattr(os.path.join(mm.path, name), "user.lexfs.backend") == name.encode()
    with pytest.raises(OSError) as e:
        os.getxattr(mm.path, "user.lexfs.backend")  # the root is no backend's
    assert e.value.errno == errno.ENODATA


# ---- operations ----------------------------------------------------------------


def test_status_shows_every_backend(mm):
    Path(mm.path, "docs", "f").write_bytes(b"12345")
    mm.settle()
    raw = subprocess.run([lexfs_bin(), "status", mm.path, "--json"], capture_output=True,
                         text=True, timeout=30)
    assert raw.returncode == 0, raw.stderr
    s = json.loads(raw.stdout)
    assert sorted(s["backends"]) == NAMES
    assert s["backends"]["docs"]["uploads"] == 1
    assert s["backends"]["photos"]["uploads"] == 0
    assert s["backends"]["photos"]["health"]["state"] in ("ok", "unknown")
    assert s["pending_uploads"] == 0 and s["fs"]["open_handles"] == 0
    pretty = subprocess.run([lexfs_bin(), "status", mm.path], capture_output=True, text=True,
                            timeout=30)
    assert pretty.returncode == 0, pretty.stderr
    assert re.search(r"^backends\.photos\.pending_uploads +0$", pretty.stdout, re.M)
    assert sorted(os.listxattr(mm.path)) == ["user.lexfs.metrics", "user.lexfs.stats"]


def test_metrics_of_every_backend_in_one_exposition(mm):
    Path(mm.path, "photos", "m").write_bytes(b"abc")
    Path(mm.path, "docs", "m").write_bytes(b"abcdef")
    mm.settle()
    s = parse_prometheus(os.getxattr(mm.path, "user.lexfs.metrics").decode())
    for name, driver in (("docs", "local"), ("photos", "s3"), ("scratch", "memory")):
        assert value(s, "lexfs_backend_up", backend=name) == 1
        assert value(s, "lexfs_store_requests_total", backend=name, driver=driver,
                     op="upload") == (0 if name == "scratch" else 1)
    assert value(s, "lexfs_store_bytes_up_total", backend="photos") == 3
    assert value(s, "lexfs_store_bytes_up_total", backend="docs") == 6
    # A backend's own directory answers for that backend alone.
    one = parse_prometheus(os.getxattr(os.path.join(mm.path, "photos"),
                                       "user.lexfs.metrics").decode())
    assert {dict(ls).get("backend") for _, ls in one} == {"photos"}


def test_metrics_server_serves_every_backend(multi, mounter):
    import urllib.request
    m = multi.mount(mounter, opts=["metrics_addr=127.0.0.1:0"])
    port = int(re.search(r"metrics served on .* \(port (\d+)\)", m.log).group(1))
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        s = parse_prometheus(r.read().decode())
    assert {dict(ls).get("backend") for n, ls in s if n == "lexfs_backend_up"} == set(NAMES)


def test_periodic_health_per_backend(multi, mounter):
    m = multi.mount(mounter, opts=["health_interval=1"])
    wait_for(lambda: all(b["health"]["checks"] >= 2 for b in stats(m)["backends"].values()),
             30, "two health checks of every backend")
    s = stats(m)
    assert s["health"]["state"] == "ok"
    assert {n: b["health"]["state"] for n, b in s["backends"].items()} == \
        {n: "ok" for n in NAMES}


def test_events_name_their_backend(multi, mounter, tmp_path):
    log = tmp_path / "events.log"
    m = multi.mount(mounter, opts=["events_log=%s" % log])
    Path(m.path, "docs", "e1").write_bytes(b"1")
    Path(m.path, "scratch", "e2").write_bytes(b"22")
    os.unlink(os.path.join(m.path, "docs", "e1"))
    m.unmount()
    events = [json.loads(line) for line in log.read_text().splitlines()]
    got = [(e["event"], e["backend"], e["key"]) for e in events
           if e["event"] != "FileDownloaded"]
    assert ("FileUploaded", "docs", "e1") in got
    assert ("FileUploaded", "scratch", "e2") in got
    assert ("FileDeleted", "docs", "e1") in got
    assert all(e["bucket"] == str(multi.root) for e in events if e["backend"] == "docs")


def test_sigusr1_reopens_every_backends_event_log(multi, mounter, tmp_path):
    log = tmp_path / "events.log"
    m = multi.mount(mounter, opts=["events_log=%s" % log])
    Path(m.path, "docs", "one").write_bytes(b"1")
    wait_for(lambda: log.exists() and '"key":"one"' in log.read_text(), 15, "first event")
    os.rename(log, tmp_path / "events.log.1")
    m.proc.send_signal(signal.SIGUSR1)
    wait_for(lambda: "log files reopened" in m.log, 15, "the reopen")
    Path(m.path, "docs", "two").write_bytes(b"2")
    Path(m.path, "scratch", "three").write_bytes(b"3")
    wait_for(lambda: log.exists() and '"key":"two"' in log.read_text() and
             '"key":"three"' in log.read_text(), 15, "both backends in the new log")
    assert '"key":"one"' not in log.read_text()


def test_root_controls(mm):
    """invalidate at the root goes to every backend; a control belongs on a backend's
    directory, not on the root."""
    invalidate(mm)
    with pytest.raises(OSError) as e:
        os.setxattr(mm.path, "user.lexfs.control.fault", b"off")
    assert e.value.errno == errno.EPERM


def test_control_on_a_backend_directory(mm):
    """Run-time controls go to the backend whose directory they are set on."""
    os.setxattr(os.path.join(mm.path, "scratch"), "user.lexfs.control.fault",
                b"error_rate=1,errno=EACCES")
    with pytest.raises(OSError):
        Path(mm.path, "scratch", "f").write_bytes(b"x")
    Path(mm.path, "docs", "f").write_bytes(b"fine")  # another backend is unaffected
    mm.settle()
    assert (mm.multi.root / "f").read_bytes() == b"fine"
    os.setxattr(os.path.join(mm.path, "scratch"), "user.lexfs.control.fault", b"off")
    mm.expect_errors(r"injected fault|LEXFS|Permission denied")


def test_kill9_in_writeback_replays_every_backend(multi, mounter):
    m = multi.mount(mounter, opts=["writeback=3600"])
    Path(m.path, "docs", "d1").write_bytes(b"docs one")
    Path(m.path, "photos", "p1").write_bytes(b"photos one")
    Path(m.path, "photos", "sub").mkdir()
    Path(m.path, "photos", "sub", "p2").write_bytes(b"photos two")
    assert stats(m)["pending_uploads"] == 3
    os.kill(m.proc.pid, signal.SIGKILL)
    m.proc.wait(10)
    subprocess.run(["fusermount3", "-uz", m.path], stderr=subprocess.DEVNULL)
    m.proc = None
    assert not (multi.root / "d1").exists()
    assert "2024/p1" not in multi.s3_keys()
    for name in ("docs", "photos"):  # each backend journals in its own directory
        assert (Path(m.cache_dir) / name / "journal").exists(), name

    m.start()  # same cache directory: each backend replays its own journal
    wait_for(lambda: stats(m)["pending_uploads"] == 0, 120, "journal replay")
    m.unmount()
    assert (multi.root / "d1").read_bytes() == b"docs one"
    assert multi.s3_get("2024/p1") == b"photos one"
    assert multi.s3_get("2024/sub/p2") == b"photos two"
    assert not (multi.root / "p1").exists()


def test_doctor_checks_every_backend(multi, tmp_path):
    env = dict(os.environ)
    env.update(multi.env)
    r = subprocess.run([lexfs_bin(), "doctor", "-o", "config=%s" % multi.config, "-o",
                        "cache_dir=%s" % (tmp_path / "dcache")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.strip().splitlines()
    assert re.match(r"^pass config: .* \(backends docs \(local\), photos \(s3\), "
                    r"scratch \(memory\)\)$", lines[0]), lines[0]
    for name in NAMES:
        for check in ("driver", "endpoint", "probe-put", "probe-remove", "cache-dir"):
            assert any(re.match(r"^pass %s/%s: " % (name, check), ln) for ln in lines), \
                (name, check, r.stdout)
    assert "%s/docs" % (tmp_path / "dcache") in r.stdout
    assert lines[-2].startswith("pass fuse: ")
    # Skipped only where the driver has nothing to check: no server clock (local,
    # memory) and no listable multipart uploads (memory).
    skipped = sorted(ln.split(":")[0] for ln in lines if ln.startswith("skip "))
    assert skipped == ["skip docs/clock", "skip scratch/clock",
                       "skip scratch/stale-uploads"], r.stdout
    assert re.match(r"\d+ passed, \d+ warnings, 0 failed, 3 skipped$", lines[-1])
    assert SECRET_KEY not in r.stdout + r.stderr
    doc = json.loads(subprocess.run(
        [lexfs_bin(), "doctor", "--json", "-o", "config=%s" % multi.config, "-o",
         "cache_dir=%s" % (tmp_path / "dcache")],
        capture_output=True, text=True, env=env, timeout=120).stdout)
    assert doc["ok"] is True
    assert {c.get("backend") for c in doc["checks"]} == set(NAMES) | {None}


def test_presign_names_the_backend_in_the_key(multi):
    env = dict(os.environ)
    env.update(multi.env)
    r = subprocess.run([lexfs_bin(), "presign", "photos/a b.jpg", "-o",
                        "config=%s" % multi.config], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "/2024/a%20b.jpg?" in r.stdout and multi.s3.bucket in r.stdout
    r = subprocess.run([lexfs_bin(), "presign", "nosuch/x", "-o", "config=%s" % multi.config],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1 and "NAME/KEY" in r.stderr


def test_source_wins_over_backends(multi, mounter):
    m = mounter("mem://", env=multi.env, config=multi.config)
    assert os.listdir(m.path) == []
    assert re.search(r"storage\.backends \(.*lexfs\.conf:3\) not mounted: the source "
                     r"mem:// names", m.log)


def test_failed_health_check_names_the_backend(tmp_path, backend_s3):
    s3 = backend_s3.fresh()
    cfg = write_config(tmp_path / "lexfs.conf", """\
storage = {
  backends = (
    { name = "scratch"; driver = "memory"; },
    { name = "photos"; driver = "s3"; s3 = { bucket = "no-such-bucket-%d"; endpoint = "%s"; }; }
  );
};
""" % (os.getpid(), s3.gateway.endpoint))
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = dict(os.environ)
    env.update(s3.env)
    r = subprocess.run([lexfs_bin(), str(mnt), "-f", "-o",
                        "config=%s,cache_dir=%s" % (cfg, tmp_path / "cache")],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "backend photos: the s3 backend failed its health check" in r.stderr
    assert not os.path.ismount(mnt)


def test_fstab_line_mounts_the_named_backends(multi, tmp_path):
    """An /etc/fstab line needs a SOURCE: `lexfs` there means "what the config
    names", and mount.lexfs runs lexfs with the mountpoint only."""
    mnt = tmp_path / "fstab-mnt"
    mnt.mkdir()
    env = dict(os.environ, LEXFS=str(lexfs_bin()))
    env.update(multi.env)
    r = subprocess.run(["sh", str(ROOT / "contrib" / "mount.lexfs"), "lexfs", str(mnt), "-o",
                        "rw,_netdev,nofail,config=%s,cache_dir=%s" % (
                            multi.config, tmp_path / "cache")],
                       env=env, capture_output=True, text=True, timeout=60)
    try:
        assert r.returncode == 0, r.stderr
        assert _is_mounted(str(mnt))
        assert sorted(os.listdir(mnt)) == NAMES
        (mnt / "docs" / "via-fstab.txt").write_bytes(b"fstab\n")
        assert (multi.root / "via-fstab.txt").read_bytes() == b"fstab\n"
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)])
        wait_for(lambda: not _is_mounted(str(mnt)), 30, "unmount")


# ---- bad configurations ---------------------------------------------------------

BAD = {
    "duplicate name": ('{ name = "a"; driver = "memory"; },\n'
                       '    { name = "a"; driver = "memory"; }',
                       4, "backend name 'a' is used twice"),
    "bad name": ('{ name = "My Photos"; driver = "memory"; }', 3, "is not a valid name"),
    "unknown driver": ('{ name = "a"; driver = "floppy"; }', 3, "backend a: unknown driver"),
    "missing driver": ('{ name = "a"; }', 3, "backend a has no driver"),
    "mount-wide key in a backend": ('{ name = "a"; driver = "memory";\n'
                                    '      writeback = 5; }',
                                    4, "unknown key 'writeback' in storage.backends entry 1"),
    "driver group of another driver": ('{ name = "a"; driver = "memory";\n'
                                       '      s3 = { bucket = "x"; }; }',
                                       4, "group 's3' of backend a does not belong"),
    "unknown driver key": ('{ name = "a"; driver = "memory";\n'
                           '      memory = { bukket = "x"; }; }',
                           4, "unknown option bukket"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_backends_config_is_refused(tmp_path, case):
    body, line, text = BAD[case]
    cfg = write_config(tmp_path / "lexfs.conf",
                       "storage = {\n  backends = (\n    %s\n  );\n};\n" % body)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run([lexfs_bin(), str(mnt), "-f", "-o",
                        "config=%s,cache_dir=%s" % (cfg, tmp_path / "cache")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r.stderr
    assert "%s:%d" % (cfg, line) in r.stderr, r.stderr
    assert text in r.stderr, r.stderr
    assert not os.path.ismount(mnt)


def test_single_backend_keys_beside_backends_are_refused(tmp_path):
    cfg = write_config(tmp_path / "lexfs.conf", """\
storage = {
  driver = "s3";
  backends = ( { name = "a"; driver = "memory"; } );
};
""")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run([lexfs_bin(), str(mnt), "-f", "-o", "config=%s" % cfg],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "storage.driver (from %s:2) and storage.backends (%s:3) exclude each other" % (
        cfg, cfg) in r.stderr


def test_backend_secret_in_a_readable_file_is_refused(tmp_path, backend_s3):
    s3 = backend_s3.fresh()
    cfg = write_config(tmp_path / "lexfs.conf", """\
storage = {
  backends = (
    { name = "photos"; driver = "s3";
      s3 = { bucket = "%s"; endpoint = "%s";
             access_key_id = "%s"; secret_access_key = "%s"; }; }
  );
};
""" % (s3.bucket, s3.gateway.endpoint, ACCESS_KEY, SECRET_KEY), mode=0o644)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run([lexfs_bin(), str(mnt), "-f", "-o", "config=%s" % cfg],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "storage.backends entry 1: s3.secret_access_key, line 5" in r.stderr
    assert "chmod 600" in r.stderr
    assert SECRET_KEY not in r.stderr
