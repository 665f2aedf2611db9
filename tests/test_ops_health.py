"""Periodic health check (-o health_interval=) with its state in user.lexfs.stats, a
backend outage that fails operations with EIO and recovers without a remount (the
memory driver's fault injection, and a real Azurite stopped and restarted under a
mount), and the SIGUSR1 / SIGUSR2 log controls."""
import errno
import os
import re
import signal
import time

import pytest

from conftest import control, invalidate, stats, wait_for


def outage_ops(m):
    """Two operations that need the store: reading a file written before the outage
    (the caches were dropped) and writing a new one."""
    def read_before():
        with open(os.path.join(m.path, "before"), "rb") as f:
            f.read()

    def write_during():
        with open(os.path.join(m.path, "during"), "wb") as f:
            f.write(b"x")
    return read_before, write_during


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
    invalidate(m)
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


def fails_within(seconds, fn, err=errno.EIO):
    """fn() fails with err, and does so within `seconds` (it must not hang)."""
    t0 = time.monotonic()
    with pytest.raises(OSError) as e:
        fn()
    took = time.monotonic() - t0
    assert e.value.errno == err, e.value
    assert took < seconds, "took %.1f s" % took


def test_outage_of_a_real_server(mounter, tmp_path):
    """A dedicated Azurite goes away under a mount: reads, writes and listings fail
    with EIO in bounded time, health says failing; Azurite comes back on the same
    port with the same data directory: the same mount (no remount) reads what was
    there, writes again, and health is ok."""
    from servers.azurite import AzureBackend, start_azurite, stop_azurite

    srv = start_azurite(str(tmp_path / "azurite"))
    try:
        srv.create_container("outage")
        be = AzureBackend(srv, "outage")
        m = mounter(be.source, env=be.env,
                    opts=be.mount_opts() + ["health_interval=1", "timeout=3", "max_retries=1"])
        m.expect_errors(r"LEXFS-00|failed|cannot|upload")
        with open(os.path.join(m.path, "before"), "wb") as f:
            f.write(b"safe")
        assert wait_for(lambda: stats(m)["health"]["checks"] >= 1)

        stop_azurite(srv)
        h = wait_for(lambda: stats(m)["health"]["state"] == "failing" and stats(m)["health"])
        assert h and h["state"] == "failing", stats(m)["health"]
        assert "LEXFS-007" in h["last_error"], h
        invalidate(m)
        read_before, write_during = outage_ops(m)
        fails_within(30, read_before)
        fails_within(30, write_during)
        fails_within(30, lambda: os.listdir(m.path))

        srv = start_azurite(str(tmp_path / "azurite"), port=srv.port)
        h = wait_for(lambda: stats(m)["health"]["state"] == "ok" and stats(m)["health"], 30)
        assert h and h["consecutive_failures"] == 0, stats(m)["health"]
        with open(os.path.join(m.path, "before"), "rb") as f:
            assert f.read() == b"safe"
        with open(os.path.join(m.path, "after"), "wb") as f:
            f.write(b"back")
        assert be.client().download_blob("after").readall() == b"back"
        assert "during" not in os.listdir(m.path)
        assert "is failing" in m.log and "answers again" in m.log
    finally:
        stop_azurite(srv)


def test_hung_server_times_out(mounter, tmp_path):
    """A server that accepts connections and never answers (Azurite stopped with
    SIGSTOP): operations fail with ETIMEDOUT after timeout= and max_retries=, never
    hang; once it runs again the same mount works."""
    from servers.azurite import AzureBackend, start_azurite, stop_azurite

    srv = start_azurite(str(tmp_path / "azurite"))
    try:
        srv.create_container("hung")
        be = AzureBackend(srv, "hung")
        m = mounter(be.source, env=be.env, opts=be.mount_opts() + ["timeout=2", "max_retries=1"])
        m.expect_errors(r"LEXFS-00|failed|cannot|upload|timed out")
        with open(os.path.join(m.path, "before"), "wb") as f:
            f.write(b"safe")
        os.kill(srv.proc.pid, signal.SIGSTOP)
        try:
            invalidate(m)
            read_before, write_during = outage_ops(m)

            # Two attempts of about 2 s each, and the back-off between them.
            fails_within(20, read_before, errno.ETIMEDOUT)
            fails_within(20, write_during, errno.ETIMEDOUT)
        finally:
            os.kill(srv.proc.pid, signal.SIGCONT)
        with open(os.path.join(m.path, "before"), "rb") as f:
            assert f.read() == b"safe"
        with open(os.path.join(m.path, "after"), "wb") as f:
            f.write(b"back")
        assert be.client().download_blob("after").readall() == b"back"
    finally:
        stop_azurite(srv)


def test_unmount_with_the_server_hung_keeps_the_files(mounter, tmp_path):
    """Write-back files pending when Azurite stops answering (SIGSTOP): the unmount
    tries the uploads it can run at once (upload_concurrency=4), sees the store is
    down and leaves every file in the journal, so it takes about one upload's
    retries, not one per file (16 files would be 4 rounds of them). Azurite runs
    again: the next mount uploads every file with its bytes."""
    from servers.azurite import AzureBackend, start_azurite, stop_azurite
    from test_cache_writeback import journal_records, live_keys

    srv = start_azurite(str(tmp_path / "azurite"))
    try:
        srv.create_container("drain")
        be = AzureBackend(srv, "drain")
        m = mounter(be.source, env=be.env,
                    opts=be.mount_opts() + ["writeback=3600", "timeout=2", "max_retries=1",
                                            "upload_concurrency=4"])
        m.expect_errors(r"LEXFS-00|failed|cannot|upload|timed out|looks down|not uploaded")
        files = {"w%02d" % i: b"pending %d\n" % i for i in range(16)}
        for name, data in files.items():
            with open(os.path.join(m.path, name), "wb") as f:
                f.write(data)
        assert stats(m)["pending_uploads"] == len(files)
        os.kill(srv.proc.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            m.unmount()
            elapsed = time.monotonic() - t0
        finally:
            os.kill(srv.proc.pid, signal.SIGCONT)
        print("unmount of %d pending files, server hung: %.1f s" % (len(files), elapsed))
        # the uploads running when the store was seen down, not one per file
        tried = re.findall(r"upload of (w\d\d) failed", m.log)
        assert 1 <= len(tried) <= 4, tried
        # one round: two tries of 2 s and a back-off (4 rounds: over 16 s)
        assert elapsed < 12, m.log
        assert m.exit_codes[-1] == 0
        assert "the store looks down" in m.log
        assert "16 of 16 file(s) could not be uploaded" in m.log
        assert live_keys(journal_records(os.path.join(m.cache_dir, "journal"))) == \
            sorted(files)

        m.start()
        assert wait_for(lambda: stats(m)["pending_uploads"] == 0, 60), stats(m)
        for name, data in files.items():
            assert be.client().download_blob(name).readall() == data, name
    finally:
        stop_azurite(srv)


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
