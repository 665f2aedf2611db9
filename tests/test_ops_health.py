"""Periodic health check (-o health_interval=) with its state in user.lexfs.stats, a
backend outage that fails operations with EIO and recovers without a remount, and
the SIGUSR1 / SIGUSR2 log controls."""
import errno
import json
import os
import signal
import subprocess
import time

import pytest


def stats(m):
    return json.loads(os.getxattr(m.path, "user.lexfs.stats"))


def wait_for(pred, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    return pred()


def control(m, name, value):
    subprocess.run(["setfattr", "-n", "user.lexfs.control." + name, "-v", value, m.path],
                   check=True)


def test_health_state_in_stats(backend, mounter):
    be = backend.fresh()
    m = mounter(be.source, opts=be.mount_opts() + ["health_interval=1"], env=be.env)
    h = stats(m)["health"]
    assert h["interval_s"] == 1
    h = wait_for(lambda: stats(m)["health"]["checks"] >= 2 and stats(m)["health"])
    assert h["state"] == "ok"
    assert h["failures"] == 0
    assert h["last_error"] is None
    assert h["last_check"].endswith("Z") and h["last_ok"] == h["last_check"]
    assert "events" in stats(m)


def test_health_off_by_default(backend, mounter):
    be = backend.fresh()
    m = mounter(be.source, opts=be.mount_opts(), env=be.env)
    time.sleep(1.2)
    h = stats(m)["health"]
    assert h == {"state": "unknown", "interval_s": 0, "checks": 0, "failures": 0,
                 "consecutive_failures": 0, "last_check": None, "last_ok": None,
                 "last_error": None}


def test_outage_and_recovery(backend_memory, mounter):
    """The memory backend goes away (every call fails): reads and writes fail with EIO
    after retries, health says failing; it comes back: the same mount works."""
    m = mounter("mem://", opts=["health_interval=1", "max_retries=1"])
    m.expect_errors(r"LEXFS-00|failed|cannot|upload")
    with open(os.path.join(m.path, "before"), "wb") as f:
        f.write(b"safe")
    control(m, "fault", "error_rate=1,errno=EIO")
    h = wait_for(lambda: stats(m)["health"]["state"] == "failing" and stats(m)["health"])
    assert h["state"] == "failing"
    assert h["consecutive_failures"] >= 1
    assert "LEXFS-" in h["last_error"]
    subprocess.run(["setfattr", "-n", "user.lexfs.invalidate", "-v", "1", m.path], check=True)
    with pytest.raises(OSError) as e:
        with open(os.path.join(m.path, "during"), "wb") as f:
            f.write(b"x")
    assert e.value.errno == errno.EIO
    with pytest.raises(OSError) as e:
        with open(os.path.join(m.path, "before"), "rb") as f:
            f.read()
    assert e.value.errno == errno.EIO
    control(m, "fault", "off")
    h = wait_for(lambda: stats(m)["health"]["state"] == "ok" and stats(m)["health"])
    assert h["state"] == "ok" and h["consecutive_failures"] == 0
    with open(os.path.join(m.path, "before"), "rb") as f:
        assert f.read() == b"safe"
    with open(os.path.join(m.path, "after"), "wb") as f:
        f.write(b"back")
    with open(os.path.join(m.path, "after"), "rb") as f:
        assert f.read() == b"back"
    assert "is failing" in m.log and "answers again" in m.log


def test_sigusr1_reopens_logs(backend, mounter, tmp_path):
    be = backend.fresh()
    logfile = tmp_path / "lexfs.log"
    evlog = tmp_path / "events.log"
    m = mounter(be.source, env=be.env,
                opts=be.mount_opts() + ["logfile=%s" % logfile, "events_log=%s" % evlog])
    with open(os.path.join(m.path, "one"), "wb") as f:
        f.write(b"1")
    assert wait_for(lambda: evlog.exists() and evlog.read_text().count("\n") == 1)
    os.rename(logfile, tmp_path / "lexfs.log.1")
    os.rename(evlog, tmp_path / "events.log.1")
    m.proc.send_signal(signal.SIGUSR1)
    assert wait_for(lambda: logfile.exists() and "log files reopened" in logfile.read_text())
    with open(os.path.join(m.path, "two"), "wb") as f:
        f.write(b"2")
    assert wait_for(lambda: evlog.exists() and '"key":"two"' in evlog.read_text())
    assert '"key":"one"' not in evlog.read_text()
    assert '"key":"one"' in (tmp_path / "events.log.1").read_text()
    assert "mounted" in (tmp_path / "lexfs.log.1").read_text()


def test_sigusr2_toggles_debug(backend, mounter, tmp_path):
    be = backend.fresh()
    logfile = tmp_path / "lexfs.log"
    m = mounter(be.source, env=be.env, opts=be.mount_opts() + ["logfile=%s" % logfile])
    m.proc.send_signal(signal.SIGUSR2)
    assert wait_for(lambda: "debug logging on" in logfile.read_text())
    m.proc.send_signal(signal.SIGUSR2)
    assert wait_for(lambda: "debug logging off" in logfile.read_text())
    # The daemon is alive and the mount works after both signals.
    with open(os.path.join(m.path, "f"), "wb") as f:
        f.write(b"ok")
    assert m.proc.poll() is None
