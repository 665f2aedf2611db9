"""The lexfs command line on real mounts: configuration sources, the mount.lexfs
helper, daemon mode, signals, status, presign."""
import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT, lexfs_bin, _is_mounted

HELPER = ROOT / "contrib" / "mount.lexfs"
EXAMPLE = ROOT / "contrib" / "lexfs.conf.example"
MIB_ = 1024 * 1024


def clean_env(**extra):
    env = dict(os.environ)
    env["HOME"] = "/nonexistent-home"
    for k in list(env):
        if k.startswith("LEX_STORAGE__"):
            del env[k]
    env.update(extra)
    return env


def wait_mounted(path, proc=None, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _is_mounted(path):
            return
        if proc is not None and proc.poll() is not None:
            pytest.fail("lexfs exited with %s: %s" % (proc.returncode, proc.stderr.read()))
        time.sleep(0.05)
    pytest.fail("not mounted within %ss" % timeout)


def wait_unmounted(path, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_mounted(path):
            return
        time.sleep(0.05)
    subprocess.run(["fusermount3", "-uz", path])
    pytest.fail("still mounted after %ss" % timeout)


@pytest.fixture
def dirs(tmp_path):
    d = {n: tmp_path / n for n in ("mnt", "root", "cache")}
    d["mnt"].mkdir()
    d["root"].mkdir()
    yield d
    if _is_mounted(str(d["mnt"])):
        subprocess.run(["fusermount3", "-uz", str(d["mnt"])])


def test_example_config_mounts(mounter, tmp_path):
    """Every key of the annotated example is a key lexfs and the local driver accept."""
    conf = tmp_path / "lexfs.conf"
    conf.write_text(EXAMPLE.read_text())
    os.chmod(conf, 0o600)
    root = tmp_path / "root"
    root.mkdir()
    m = mounter(str(root), config=conf)
    (Path(m.path) / "x.txt").write_bytes(b"example")
    assert (root / "x.txt").read_bytes() == b"example"


def test_env_selects_driver_and_root(mounter, tmp_path):
    """LEX_STORAGE__DRIVER and LEX_STORAGE__LOCAL__ROOT_DIR alone name the backend."""
    root = tmp_path / "envroot"
    root.mkdir()
    (root / "from-env.txt").write_bytes(b"env")
    conf = tmp_path / "empty.conf"
    conf.write_text("storage = { };\n")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = clean_env(LEX_STORAGE__DRIVER="local", LEX_STORAGE__LOCAL__ROOT_DIR=str(root))
    p = subprocess.Popen([lexfs_bin(), str(mnt), "-f", "-o",
                          "config=%s,cache_dir=%s" % (conf, tmp_path / "cache")],
                         env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_mounted(str(mnt), p)
        assert (mnt / "from-env.txt").read_bytes() == b"env"
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)])
        assert p.wait(30) == 0, p.stderr.read()


def test_option_beats_env_beats_file(mounter, tmp_path):
    """root_dir from -o wins over the environment, which wins over the file."""
    roots = {n: tmp_path / n for n in ("file", "env", "opt")}
    for n, r in roots.items():
        r.mkdir()
        (r / "which").write_text(n)
    conf = tmp_path / "c.conf"
    conf.write_text('storage = { driver = "local"; local = { root_dir = "%s"; }; };\n'
                    % roots["file"])
    mnt = tmp_path / "mnt"
    mnt.mkdir()

    def which(opts, env):
        p = subprocess.Popen([lexfs_bin(), str(mnt), "-f", "-o",
                              ",".join(["config=%s" % conf, "cache_dir=%s" % (tmp_path / "c")]
                                       + opts)],
                             env=clean_env(**env), stderr=subprocess.PIPE, text=True)
        try:
            wait_mounted(str(mnt), p)
            return (mnt / "which").read_text()
        finally:
            subprocess.run(["fusermount3", "-u", str(mnt)])
            assert p.wait(30) == 0, p.stderr.read()

    env = {"LEX_STORAGE__LOCAL__ROOT_DIR": str(roots["env"])}
    assert which([], {}) == "file"
    assert which([], env) == "env"
    assert which(["root_dir=%s" % roots["opt"]], env) == "opt"


def test_prefix_source_limits_view(mounter, tmp_path):
    """A mount of a prefix sees only the keys under it, and writes land under it."""
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "in.txt").write_text("in")
    (root / "out.txt").write_text("out")
    m = mounter(str(root), opts=["config=none", "prefix=a/b"])
    assert sorted(os.listdir(m.path)) == ["in.txt"]
    (Path(m.path) / "new.txt").write_text("new")
    assert (root / "a" / "b" / "new.txt").read_text() == "new"


def test_daemon_mode_returns_after_mount_and_sigterm_unmounts(dirs):
    """Without -f: lexfs returns 0 once mounted; SIGTERM to the daemon unmounts."""
    r = subprocess.run([lexfs_bin(), str(dirs["root"]), str(dirs["mnt"]), "-o",
                        "config=none,cache_dir=%s" % dirs["cache"]],
                       env=clean_env(), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert _is_mounted(str(dirs["mnt"]))
    (dirs["mnt"] / "f").write_text("daemon")
    assert (dirs["root"] / "f").read_text() == "daemon"
    pid = int(subprocess.run(["pgrep", "-f", "^%s %s %s" % (lexfs_bin(), dirs["root"],
                                                            dirs["mnt"])],
                             capture_output=True, text=True).stdout.split()[0])
    os.kill(pid, signal.SIGTERM)
    wait_unmounted(str(dirs["mnt"]))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_in_foreground_unmounts_cleanly(dirs, sig):
    # As a shell starts a foreground job: a test run started in the background
    # has SIGINT ignored, and an ignored signal stays ignored across exec.
    p = subprocess.Popen([lexfs_bin(), "mem://", str(dirs["mnt"]), "-f", "-o",
                          "config=none,cache_dir=%s" % dirs["cache"]],
                         env=clean_env(), stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(sig, signal.SIG_DFL))
    wait_mounted(str(dirs["mnt"]), p)
    (dirs["mnt"] / "f").write_text("x")
    p.send_signal(sig)
    assert p.wait(30) == 0, p.stderr.read()
    assert not _is_mounted(str(dirs["mnt"]))


def test_mount_helper_drops_fstab_options(dirs):
    """mount.lexfs SOURCE DIR -o rw,_netdev,noauto,... as mount(8) calls it."""
    env = clean_env(LEXFS=lexfs_bin())
    r = subprocess.run(["sh", str(HELPER), str(dirs["root"]), str(dirs["mnt"]), "-n", "-o",
                        "rw,_netdev,noauto,nofail,user,defaults,x-systemd.automount,"
                        "config=none,cache_dir=%s,umask=077" % dirs["cache"]],
                       env=env, capture_output=True, text=True, timeout=30)
    try:
        assert r.returncode == 0, r.stderr
        assert _is_mounted(str(dirs["mnt"]))
        (dirs["root"] / "seen.txt").write_text("helper")
        assert (dirs["mnt"] / "seen.txt").read_text() == "helper"
        # umask=077 reached lexfs: objects without a mode are private
        assert oct(os.stat(dirs["mnt"] / "seen.txt").st_mode & 0o777) == oct(0o600)
    finally:
        subprocess.run(["fusermount3", "-u", str(dirs["mnt"])])
        wait_unmounted(str(dirs["mnt"]))


def test_mount_helper_fake_mounts_nothing(dirs):
    r = subprocess.run(["sh", str(HELPER), "mem://", str(dirs["mnt"]), "-f", "-v", "-o",
                        "_netdev"], env=clean_env(LEXFS=lexfs_bin()), capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "mount.lexfs: " in r.stderr and "_netdev" not in r.stderr
    assert not _is_mounted(str(dirs["mnt"]))


def test_status_reads_stats(mounter, tmp_path):
    m = mounter("mem://", opts=["config=none"])
    (Path(m.path) / "f").write_bytes(b"12345")
    raw = subprocess.run([lexfs_bin(), "status", m.path, "--json"], capture_output=True,
                         text=True, timeout=30)
    assert raw.returncode == 0, raw.stderr
    stats = json.loads(raw.stdout)
    assert isinstance(stats, dict) and stats
    pretty = subprocess.run([lexfs_bin(), "status", m.path], capture_output=True, text=True,
                            timeout=30)
    assert pretty.returncode == 0, pretty.stderr
    assert pretty.stdout.startswith("lexfs mount %s\n" % m.path)
    assert len(pretty.stdout.splitlines()) > 3


def test_status_of_a_plain_directory_fails(tmp_path):
    r = subprocess.run([lexfs_bin(), "status", str(tmp_path)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1
    assert "is not a lexfs mount" in r.stderr


def test_presign_matches_mount_and_verifies(mounter, tmp_path):
    """lexfs presign signs with the same key the mount uses (the local driver's key file),
    and verify-url accepts both."""
    root = tmp_path / "root"
    root.mkdir()
    m = mounter(str(root), opts=["config=none"])
    (Path(m.path) / "doc.txt").write_text("doc")
    xattr = subprocess.run(["getfattr", "--only-values", "-n", "user.lexfs.presigned_url",
                            str(Path(m.path) / "doc.txt")], capture_output=True, text=True)
    assert xattr.returncode == 0, xattr.stderr
    cli = subprocess.run([lexfs_bin(), "presign", "doc.txt", "--expires", "60", "--source",
                          str(root), "-o", "config=none"], capture_output=True, text=True,
                         env=clean_env())
    assert cli.returncode == 0, cli.stderr
    for url in (xattr.stdout.strip(), cli.stdout.strip()):
        v = subprocess.run([lexfs_bin(), "verify-url", url, "--source", str(root), "-o",
                            "config=none"], capture_output=True, text=True, env=clean_env())
        assert v.returncode == 0, v.stderr
        assert v.stdout.strip() == "valid GET doc.txt"


def test_version_and_help():
    v = subprocess.run([lexfs_bin(), "version"], capture_output=True, text=True)
    assert v.returncode == 0
    assert v.stdout.startswith("lexfs ")
    assert "local" in v.stdout and "memory" in v.stdout
    h = subprocess.run([lexfs_bin(), "--help"], capture_output=True, text=True)
    assert h.returncode == 0
    for word in ("presign", "verify-url", "status", "SOURCE", "config=FILE", "s3://"):
        assert word in h.stdout


def test_secret_never_logged(mounter, tmp_path):
    """With every trace switched on, the signing key appears in no log line."""
    secret = "Qv7-this-is-the-real-signing-key-93x"
    root = tmp_path / "root"
    root.mkdir()
    m = mounter(str(root), opts=["config=none", "signing_key=" + secret, "trace=all",
                                 "log_level=debug"])
    f = Path(m.path) / "s.txt"
    f.write_text("s")
    url = subprocess.run(["getfattr", "--only-values", "-n", "user.lexfs.presigned_url",
                          str(f)], capture_output=True, text=True)
    assert url.returncode == 0 and "X-Lexfs-Signature=" in url.stdout
    m.unmount()
    # The harness writes the command line it ran; the daemon's own lines follow.
    log = "\n".join(l for l in m.log.splitlines() if not l.startswith("=== start"))
    assert " debug: store " in log, log  # the log really was verbose
    assert secret not in log


def test_secret_option_hidden_from_ps(dirs):
    """A secret given with -o does not stay readable in /proc/PID/cmdline."""
    secret = "Hx5-real-secret-on-the-command-line-2v"
    p = subprocess.Popen([lexfs_bin(), "mem://", str(dirs["mnt"]), "-f", "-o",
                          "config=none,cache_dir=%s,signing_key=%s,umask=022"
                          % (dirs["cache"], secret)],
                         env=clean_env(), stderr=subprocess.PIPE, text=True)
    try:
        wait_mounted(str(dirs["mnt"]), p)
        with open("/proc/%d/cmdline" % p.pid, "rb") as f:
            cmdline = f.read().decode()
        assert secret not in cmdline
        assert "signing_key=" + "*" * len(secret) + ",umask=022" in cmdline
    finally:
        subprocess.run(["fusermount3", "-u", str(dirs["mnt"])])
        assert p.wait(30) == 0, p.stderr.read()


BAR_LINE = re.compile(r"^  \[(#*)(\.*)\] +(\d+)%  ([\d.]+ (?:B|KiB|MiB)) / ([\d.]+ MiB)  "
                      r"(\S+) \((uploading|waiting)\)$")


def status_text(m):
    r = subprocess.run([lexfs_bin(), "status", m.path], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_status_shows_a_progress_bar_per_upload(mounter):
    """A write-back mount with a large upload made slow (the memory driver waits 250 ms
    per call): while its parts go up, lexfs status shows a bar line for the file, with
    its bytes done and its size; once it is stored, no bar is left. --json is the
    attribute as it is (files array included)."""
    m = mounter("mem://", opts=["config=none", "writeback=1", "part_size=5m",
                                "upload_concurrency=1"])
    os.setxattr(m.path, "user.lexfs.control.fault", b"latency_ms=250")
    fd = os.open(os.path.join(m.path, "big.bin"), os.O_WRONLY | os.O_CREAT, 0o644)
    seen = []
    try:
        block = os.urandom(MIB_)
        for _ in range(40):
            os.write(fd, block)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            bars = [BAR_LINE.match(l) for l in status_text(m).splitlines()]
            bars = [b for b in bars if b]
            seen += [b.groups() for b in bars]
            if any(0 < int(b.group(3)) < 100 for b in bars):
                break
            time.sleep(0.1)
        raw = json.loads(subprocess.run([lexfs_bin(), "status", m.path, "--json"],
                                        capture_output=True, text=True, timeout=30).stdout)
        assert [f["key"] for f in raw["files"]] == ["big.bin"]
    finally:
        os.close(fd)
    part = [g for g in seen if 0 < int(g[2]) < 100]
    assert part, "no bar with partial progress among %r" % seen[-5:]
    hashes, dots, pct, done, total, key, state = part[-1]
    assert key == "big.bin" and total == "40.0 MiB"
    assert len(hashes) + len(dots) == 30 and 0 < len(hashes) < 30
    assert abs(len(hashes) - int(pct) * 30 // 100) <= 1
    os.setxattr(m.path, "user.lexfs.control.fault", b"off")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = status_text(m)
        if not any(BAR_LINE.match(l) for l in text.splitlines()):
            break
        time.sleep(0.1)
    assert "pending uploads" not in text and not re.search(r"^files ", text, re.M), text
    assert re.search(r"^pending_uploads +0$", text, re.M), text


def test_status_survives_stats_that_grow_between_reads(tmp_path):
    """lexfs status asks the attribute's size, then reads it: a value that grew in
    between (ERANGE) is read again, not an error. Here a plain file's attribute flips
    between a short and a long JSON document as fast as it can."""
    target = tmp_path / "fake-mount"
    target.mkdir()
    short = json.dumps({"pending_uploads": 0}).encode()
    long = json.dumps({"pending_uploads": 0, "pad": "x" * 3000}).encode()
    os.setxattr(target, "user.lexfs.stats", short)
    stop = threading.Event()

    def flip():
        while not stop.is_set():
            os.setxattr(target, "user.lexfs.stats", long)
            os.setxattr(target, "user.lexfs.stats", short)

    t = threading.Thread(target=flip)
    t.start()
    try:
        for _ in range(60):
            r = subprocess.run([lexfs_bin(), "status", str(target), "--json"],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stderr
            assert json.loads(r.stdout)["pending_uploads"] == 0
    finally:
        stop.set()
        t.join()
