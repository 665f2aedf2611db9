"""Shared pytest set-up: the built binaries, mounts of the real daemon, backends.

Contract (every test file relies on it):
  * lexfs_bin(), storetool_bin(): binaries under $LEXFS_BUILD (default: the repo root).
  * fixture `mounter`: mounter(source, opts=[...], env={...}, config=None) -> Mount
    (source None: the config file names what to mount),
    with .path, .log, .unmount(), .remount(). The daemon runs in the foreground (-f)
    with its log captured; at teardown every mount is unmounted (fusermount3 -u, then
    -uz, then kill) and the test fails if the daemon exited non-zero or logged an
    error it was not told to expect (Mount.expect_errors(regex)), or if its log holds
    any test credential (register_secret: every server module registers the secrets
    it hands out, so every mount of the run is scanned for all of them).
  * fixture `backend`, parametrized over BACKEND_NAMES: resolves to the fixture
    "backend_" + name. A backend has .name, .driver, .source, .settings, .env,
    .persistent (data survives the daemon) and .fresh() (a new, empty one).
    Cloud backends live in tests/servers/<name>.py, add their module to
    pytest_plugins and their name to BACKEND_NAMES.
  * fixture `persistent_backend`: the same over the backends whose data outlives a
    daemon (memory's does not), for remount and storetool tests.
"""
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

PY = "/usr/bin/python3"
ROOT = Path(__file__).resolve().parent.parent

BACKEND_NAMES = ["memory", "local", "s3", "r2", "azure", "gcs"]
pytest_plugins = ["servers.s3", "servers.azurite", "servers.gcs"]

TEST_TIMEOUT_S = int(os.environ.get("LEXFS_TEST_TIMEOUT", "300"))
MOUNT_TIMEOUT_S = 20
UNMOUNT_TIMEOUT_S = 60

# Log lines that fail a test unless expected: the logger's error levels and any
# sanitizer report.
_BAD_LOG = re.compile(r" (emerg|alert|crit|error): |AddressSanitizer|LeakSanitizer|"
                      r"runtime error:|UndefinedBehaviorSanitizer")


# Every credential the test servers accept or the tests hand out as wrong ones. No
# daemon log line may contain one (Mount.problems); the harness's own "=== start"
# line masks them. Server modules call register_secret() when they are imported.
TEST_SECRETS = []


def register_secret(value):
    """Add a secret (a str; a PEM key: each line of its body) to the scan."""
    if "-----BEGIN" in value:
        for line in value.splitlines():
            line = line.strip()
            if line and not line.startswith("-----"):
                register_secret(line)
        return
    if len(value) >= 8 and value not in TEST_SECRETS:
        TEST_SECRETS.append(value)


def mask_secrets(text):
    for s in TEST_SECRETS:
        text = text.replace(s, "*" * 8)
    return text


def build_dir():
    return Path(os.environ.get("LEXFS_BUILD", str(ROOT))).resolve()


def lexfs_bin():
    return str(build_dir() / "lexfs")


def storetool_bin():
    return str(build_dir() / "lexfs-storetool")


def _is_mounted(path):
    path = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 4 and fields[4].encode().decode("unicode_escape") == path:
                    return True
    except OSError:
        pass
    return False


class Mount:
    """One daemon mounting `source` at `path`."""

    def __init__(self, source, path, opts, env, config, cache_dir, log_path):
        self.source = source
        self.path = str(path)
        self.opts = list(opts)
        self.env = dict(env or {})
        self.config = config
        self.cache_dir = str(cache_dir)
        self.log_path = str(log_path)
        self.proc = None
        self.exit_codes = []
        self.allowed = []
        self.runs = 0

    def command(self):
        opts = ["cache_dir=" + self.cache_dir]
        # Never read the user's own config file: config=none unless one is given.
        opts.append("config=" + (str(self.config) if self.config else "none"))
        opts += self.opts
        # No source: the config file names what to mount (storage.backends).
        source = [self.source] if self.source is not None else []
        return [lexfs_bin()] + source + [self.path, "-f", "-o", ",".join(opts)]

    def start(self):
        env = dict(os.environ)
        env.update(self.env)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        self.runs += 1
        log = open(self.log_path, "a")
        log.write("=== start %d: %s\n" % (self.runs, mask_secrets(" ".join(self.command()))))
        log.flush()
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, env=env)
        log.close()
        deadline = time.monotonic() + MOUNT_TIMEOUT_S
        while time.monotonic() < deadline:
            if _is_mounted(self.path):
                return self
            if self.proc.poll() is not None:
                self.exit_codes.append(self.proc.returncode)
                self.proc = None
                pytest.fail("lexfs exited with %s before mounting:\n%s"
                            % (self.exit_codes[-1], self.log))
            time.sleep(0.05)
        self._kill()
        pytest.fail("lexfs did not mount within %ss:\n%s" % (MOUNT_TIMEOUT_S, self.log))

    @property
    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def expect_errors(self, regex):
        """Error log lines matching regex do not fail the test."""
        self.allowed.append(re.compile(regex))

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        subprocess.run(["fusermount3", "-uz", self.path], stderr=subprocess.DEVNULL)

    def settle(self, timeout=3.0):
        """Wait until the daemon holds no open handles. The kernel sends RELEASE
        asynchronously after close() and drops what is still queued at unmount,
        so a test that just closed a file would otherwise race its own teardown."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                stats = json.loads(os.getxattr(self.path, "user.lexfs.stats"))
            except (OSError, ValueError):
                return
            fs = stats.get("fs", {})
            if not fs.get("open_handles") and not fs.get("open_dirs"):
                return
            time.sleep(0.02)

    def unmount(self):
        if self.proc is None:
            return
        if self.proc.poll() is None and _is_mounted(self.path):
            self.settle()
        r = subprocess.run(["fusermount3", "-u", self.path], capture_output=True)
        if r.returncode != 0 and _is_mounted(self.path):
            time.sleep(0.5)
            r = subprocess.run(["fusermount3", "-u", self.path], capture_output=True)
            if r.returncode != 0:
                subprocess.run(["fusermount3", "-uz", self.path], stderr=subprocess.DEVNULL)
        try:
            self.proc.wait(UNMOUNT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            self.exit_codes.append("killed after unmount timeout")
            self.proc = None
            return
        self.exit_codes.append(self.proc.returncode)
        self.proc = None

    def remount(self):
        self.unmount()
        return self.start()

    def problems(self):
        out = []
        for code in self.exit_codes:
            if code != 0:
                out.append("daemon exit status %s" % code)
        for line in self.log.splitlines():
            if _BAD_LOG.search(line) and not any(a.search(line) for a in self.allowed):
                out.append("log: " + line)
            leaked = [s for s in TEST_SECRETS if s in line]
            if leaked:
                out.append("log holds a test secret (%d chars from %r): %s"
                           % (len(leaked[0]), leaked[0][:4], mask_secrets(line)))
        return out


@pytest.fixture
def mounter(tmp_path):
    mounts = []
    counter = [0]

    def mount(source, opts=(), env=None, config=None):
        counter[0] += 1
        n = counter[0]
        mnt = tmp_path / ("mnt%d" % n)
        mnt.mkdir()
        cache_dir = tmp_path / ("cache%d" % n)
        cache_dir.mkdir()
        m = Mount(source, mnt, opts, env, config, cache_dir, tmp_path / ("lexfs%d.log" % n))
        mounts.append(m)
        return m.start()

    yield mount

    problems = []
    for m in mounts:
        m.unmount()
        problems += ["%s: %s" % (m.path, p) for p in m.problems()]
    if problems:
        logs = "\n".join(m.log for m in mounts)
        pytest.fail("daemon problems:\n  %s\n--- logs ---\n%s" % ("\n  ".join(problems), logs))


class Backend:
    def __init__(self, name, driver, source, settings=None, env=None, persistent=True,
                 fresh=None, wrong_credentials=None):
        self.name = name
        self.driver = driver
        self.source = source
        self.settings = dict(settings or {})
        self.env = dict(env or {})
        self.persistent = persistent
        self._fresh = fresh
        self._wrong = wrong_credentials

    def fresh(self):
        return self._fresh()

    def wrong_credentials(self, tmp_path):
        """None for a backend without credentials; else a dict of what makes this
        backend's credentials wrong but well-formed: "settings" and "env" to
        override, "secrets" (values that must never be printed) and "names" (where
        the credentials came from, as lexfs doctor names them)."""
        return self._wrong(self, tmp_path) if self._wrong else None

    def mount_opts(self):
        return ["%s=%s" % (k, v) for k, v in self.settings.items()]

    def storetool(self, *args, check=True, input=None):
        """Run lexfs-storetool on this backend; CompletedProcess (bytes)."""
        cmd = [storetool_bin(), "--driver", self.driver]
        for k, v in self.settings.items():
            cmd += ["--set", "%s=%s" % (k, v)]
        cmd += [str(a) for a in args]
        env = dict(os.environ)
        env.update(self.env)
        r = subprocess.run(cmd, capture_output=True, env=env, input=input, timeout=120)
        if check and r.returncode != 0:
            pytest.fail("%s failed (%d): %s" % (" ".join(cmd), r.returncode,
                                                 r.stderr.decode(errors="replace")))
        return r

    def __repr__(self):
        return "Backend(%s)" % self.name


@pytest.fixture(scope="session")
def backend_memory():
    def fresh():
        # Every daemon has its own memory store: each mount is already fresh.
        return Backend("memory", "memory", "mem://", persistent=False, fresh=fresh)
    return fresh()


@pytest.fixture(scope="session")
def backend_local(tmp_path_factory):
    def fresh():
        root = tmp_path_factory.mktemp("localroot")
        return Backend("local", "local", str(root), settings={"root_dir": str(root)},
                       persistent=True, fresh=fresh)
    return fresh()


@pytest.fixture(params=BACKEND_NAMES)
def backend(request):
    return request.getfixturevalue("backend_" + request.param)


@pytest.fixture(params=[n for n in BACKEND_NAMES if n != "memory"])
def persistent_backend(request):
    return request.getfixturevalue("backend_" + request.param)


@pytest.fixture
def mnt(mounter, backend):
    """A mount of a fresh, empty store of the current backend."""
    b = backend.fresh()
    m = mounter(b.source, opts=b.mount_opts(), env=b.env)
    m.backend = b
    return m


@pytest.fixture
def pmnt(mounter, persistent_backend):
    """A mount of a fresh store whose data survives remounts."""
    b = persistent_backend.fresh()
    m = mounter(b.source, opts=b.mount_opts(), env=b.env)
    m.backend = b
    return m


@pytest.fixture(autouse=True)
def _test_timeout():
    def expired(signum, frame):
        raise TimeoutError("test exceeded %ss" % TEST_TIMEOUT_S)
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_TIMEOUT_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def wait_for(cond, timeout=60, what="condition"):
    """Poll cond() until it is true (no sleeping out a cache: a condition to see);
    returns that true value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    pytest.fail("timed out waiting for " + what)


def stats(m):
    """The mount's user.lexfs.stats document."""
    return json.loads(os.getxattr(m.path, "user.lexfs.stats"))


def control(m, name, value):
    """Set user.lexfs.control.NAME on the mount root (the memory driver's faults)."""
    os.setxattr(m.path, "user.lexfs.control." + name, value.encode())


def invalidate(m):
    """Drop the mount's metadata caches (user.lexfs.invalidate on the root)."""
    os.setxattr(m.path, "user.lexfs.invalidate", b"1")


def run(cmd, check=True, **kw):
    """Run a command (list), return CompletedProcess with text output."""
    kw.setdefault("timeout", 120)
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        pytest.fail("%s failed (%d):\n%s%s" % (" ".join(map(str, cmd)), r.returncode,
                                               r.stdout, r.stderr))
    return r


def make_tree(root, files=None):
    """A small tree with varied sizes and modes; returns {relpath: bytes}."""
    root = Path(root)
    files = files or {
        "a.txt": b"hello\n",
        "empty": b"",
        "bin/data.bin": os.urandom(300000),
        "bin/exec.sh": b"#!/bin/sh\necho hi\n",
        "deep/er/still/file.json": b'{"k": 1}\n',
        "big.dat": os.urandom(3 * 1024 * 1024 + 17),
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    for rel, mode in (("bin/exec.sh", 0o755), ("a.txt", 0o640)):
        if (root / rel).exists():
            os.chmod(root / rel, mode)
    return files


def tree_state(root):
    """{relpath: (type, mode bits, bytes or link target)} of every entry under root."""
    root = Path(root)
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            st = os.lstat(p)
            if os.path.islink(p):
                out[rel] = ("link", None, os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir", st.st_mode & 0o7777, None)
            else:
                out[rel] = ("file", st.st_mode & 0o7777, p.read_bytes())
    return out
