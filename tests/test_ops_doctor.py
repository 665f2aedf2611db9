"""lexfs doctor: a passing run on every backend, and failing checks with their exit
status and what-to-do messages (unreachable local root, unwritable cache directory,
bad configuration, wrong credentials where the backend has any)."""
import json
import os
import re
import subprocess

import pytest

from conftest import lexfs_bin

LINE = re.compile(r"^(pass|warn|fail|skip) ([a-z-]+): (.+)$")
ORDER = ["config", "credentials", "driver", "endpoint", "clock", "probe-put", "probe-info",
         "probe-get", "probe-list", "probe-copy", "probe-presign", "probe-remove",
         "multipart", "cache-dir", "fuse"]


def doctor(backend, cache_dir, *extra, source=None, env=None, settings=None):
    cmd = [lexfs_bin(), "doctor", source or backend.source]
    sets = dict(backend.settings)
    sets.update(settings or {})
    for k, v in sets.items():
        cmd += ["-o", "%s=%s" % (k, v)]
    cmd += ["-o", "cache_dir=%s" % cache_dir, "-o", "config=none"]
    cmd += list(extra)
    e = dict(os.environ)
    e.update(backend.env)
    e.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=120)


def parse(stdout):
    """{check: (status, message)} in order, and the summary line."""
    checks = {}
    lines = stdout.strip().splitlines()
    for line in lines[:-1]:
        m = LINE.match(line)
        assert m, "not a doctor line: %r" % line
        checks[m.group(2)] = (m.group(1), m.group(3))
    return checks, lines[-1]


def test_doctor_passes(backend, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    r = doctor(backend.fresh(), cache)
    assert r.returncode == 0, r.stdout + r.stderr
    checks, summary = parse(r.stdout)
    assert list(checks) == ORDER
    assert all(st in ("pass", "warn") for st, _ in checks.values()), r.stdout
    for name in ("config", "driver", "endpoint", "probe-put", "probe-info", "probe-get",
                 "probe-list", "probe-copy", "probe-remove", "multipart", "cache-dir",
                 "fuse"):
        assert checks[name][0] == "pass", r.stdout
    assert checks["probe-get"][1] == "bytes match"
    assert str(cache) in checks["cache-dir"][1]
    assert re.match(r"\d+ passed, \d+ warnings, 0 failed, 0 skipped$", summary)


def test_doctor_leaves_no_probe(persistent_backend, tmp_path):
    be = persistent_backend.fresh()
    r = doctor(be, tmp_path)
    assert r.returncode == 0, r.stdout
    listing = be.storetool("list", "", "--recursive").stdout.decode()
    assert ".lexfs-doctor/probe-" not in listing


def test_doctor_json(backend, tmp_path):
    r = doctor(backend.fresh(), tmp_path, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["ok"] is True
    assert [c["check"] for c in doc["checks"]] == ORDER
    assert doc["summary"]["fail"] == 0
    assert doc["summary"]["pass"] + doc["summary"]["warn"] == len(ORDER)
    for c in doc["checks"]:
        assert c["status"] in ("pass", "warn")
        assert isinstance(c["message"], str) and c["message"]


def test_doctor_unreachable_local_root(backend_local, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    root = blocker / "root"
    r = doctor(backend_local, tmp_path, source=str(root), settings={"root_dir": str(root)})
    assert r.returncode == 1, r.stdout
    checks, summary = parse(r.stdout)
    assert checks["driver"][0] == "fail"
    assert str(root) in checks["driver"][1]
    assert "-- fix: " in checks["driver"][1]
    for name in ("endpoint", "clock", "probe-put", "multipart"):
        assert checks[name][0] == "skip", r.stdout
    # The local checks still ran.
    assert checks["cache-dir"][0] == "pass"
    assert checks["fuse"][0] == "pass"
    assert re.search(r" 1 failed, 10 skipped$", summary), summary


@pytest.fixture
def unwritable_dir(tmp_path):
    """A directory nobody can write: a read-only tmpfs as root, mode 0555 otherwise."""
    d = tmp_path / "ro-cache"
    d.mkdir()
    if os.geteuid() == 0:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(d)],
                       check=True)
        yield d
        subprocess.run(["umount", str(d)], check=True)
    else:
        d.chmod(0o555)
        yield d
        d.chmod(0o755)


def test_doctor_unwritable_cache_dir(backend, tmp_path, unwritable_dir):
    r = doctor(backend.fresh(), unwritable_dir)
    assert r.returncode == 1, r.stdout
    checks, summary = parse(r.stdout)
    st, msg = checks["cache-dir"]
    assert st == "fail"
    assert "%s is not writable" % unwritable_dir in msg
    assert "-- fix: make it writable" in msg
    # Only that check failed; the backend checks passed.
    assert [n for n, (s, _) in checks.items() if s == "fail"] == ["cache-dir"]
    assert checks["probe-put"][0] == "pass"
    assert re.search(r" 1 failed, 0 skipped$", summary)


def test_doctor_cache_dir_not_a_directory(backend, tmp_path):
    f = tmp_path / "plain"
    f.write_text("x")
    r = doctor(backend.fresh(), f, "--json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["ok"] is False
    cache = [c for c in doc["checks"] if c["check"] == "cache-dir"][0]
    assert cache["status"] == "fail"
    assert cache["message"] == "%s is not a directory" % f
    assert cache["fix"] == "point cache_dir at a directory"


def test_doctor_bad_config(backend, tmp_path):
    r = doctor(backend.fresh(), tmp_path, settings={"no_such_setting_xyz": "1"})
    assert r.returncode == 1, r.stdout
    checks, _ = parse(r.stdout)
    st, msg = checks["driver"]
    assert st == "fail"
    assert "unknown option no_such_setting_xyz (from -o no_such_setting_xyz)" in msg


def test_doctor_config_file_error(backend, tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("storage = { driver = ; };\n")
    conf.chmod(0o600)
    cmd = [lexfs_bin(), "doctor", backend.source, "-o", "config=%s" % conf,
           "-o", "cache_dir=%s" % tmp_path]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stdout
    checks, summary = parse(r.stdout)
    assert checks["config"][0] == "fail"
    assert str(conf) in checks["config"][1]
    assert checks["driver"] == ("skip", "configuration did not load")
    assert checks["fuse"][0] == "pass"


def test_doctor_wrong_credentials(backend, tmp_path):
    """Backends with credentials: a wrong secret of the right shape fails the endpoint
    check (access denied), the credentials line names where they came from, and no
    secret appears in the output. Backends without any report that none are needed."""
    be = backend.fresh()
    wrong = be.wrong_credentials(tmp_path)
    if wrong is None:
        r = doctor(be, tmp_path)
        assert r.returncode == 0
        checks, _ = parse(r.stdout)
        assert checks["credentials"] == ("pass", "driver %s needs none" % be.driver)
        return
    r = doctor(be, tmp_path, settings=wrong["settings"], env=wrong["env"])
    assert r.returncode == 1, r.stdout
    checks, _ = parse(r.stdout)
    assert checks["endpoint"][0] == "fail", r.stdout
    assert "access denied" in checks["endpoint"][1]
    for v in wrong["secrets"]:
        assert v not in r.stdout and v not in r.stderr
    for name in wrong["names"]:
        assert name in checks["credentials"][1]


def test_doctor_usage_error():
    r = subprocess.run([lexfs_bin(), "doctor", "--bogus"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1
    assert "unknown option --bogus" in r.stderr
