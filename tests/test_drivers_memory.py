"""Memory driver: run-time fault injection drives the store's retry and no-data-loss
paths (control "fault", and the fault_* settings at open)."""
import json
import os
import time

import pytest

from storetool_session import Session

EIO, ENOSPC, EINVAL, ETIMEDOUT = 5, 28, 22, 110


class Mem:
    name = driver = "memory"
    source = "mem://"
    env = {}

    def __init__(self, **settings):
        self.settings = settings


@pytest.fixture
def mem(tmp_path):
    s = Session(Mem())
    s.tmp = tmp_path
    yield s
    s.close()


def src(s, data=b"payload"):
    p = s.tmp / ("src%d" % len(data))
    p.write_bytes(data)
    return p


def upload_stats(s):
    return json.loads(s.ok("stats").out)["ops"]["upload"]


def test_fail_after_fails_nth_call_and_later(mem):
    p = src(mem)
    mem.ok("control", "fault", "fail_after=3,errno=ENOSPC")
    assert mem.run("put", "a", p).rc == 0
    assert mem.run("put", "b", p).rc == 0
    r = mem.run("put", "c", p)
    assert r.rc == ENOSPC
    assert "injected fault" in r.err
    assert mem.run("get", "a").rc == ENOSPC  # every later call fails too
    mem.ok("control", "fault", "off")
    assert mem.run("get", "c").rc == 2  # the failed upload stored nothing
    assert mem.ok("get", "a").out == b"payload"


def test_retryable_fault_is_retried_then_reported(mem):
    p = src(mem)
    mem.ok("control", "fault", "error_rate=1,errno=EIO")
    r = mem.run("put", "k", p)
    assert r.rc == EIO
    assert "LEXFS-007" in r.err
    st = upload_stats(mem)
    assert st["retries"] >= 1  # EIO is retryable: the store tried again
    mem.ok("control", "fault", "off")
    assert mem.run("info", "k").rc == 2


def test_timeout_fault_is_retryable(mem):
    mem.ok("control", "fault", "error_rate=1,errno=ETIMEDOUT")
    assert mem.run("put", "k", src(mem)).rc == ETIMEDOUT
    assert upload_stats(mem)["retries"] >= 1


def test_non_retryable_fault_is_not_retried(mem):
    mem.ok("control", "fault", "error_rate=1,errno=ENOSPC")
    assert mem.run("put", "k", src(mem)).rc == ENOSPC
    assert upload_stats(mem)["retries"] == 0


def test_random_faults_lose_no_data(mem):
    """30% of calls fail with EIO; the store's retries hide every one of them."""
    blobs = {"f/%02d" % i: os.urandom(1000 + i) for i in range(40)}
    paths = {}
    for k, data in blobs.items():
        paths[k] = mem.tmp / k.replace("/", "_")
        paths[k].write_bytes(data)
    mem.ok("control", "fault", "error_rate=0.3,errno=EIO")
    for k in blobs:
        mem.ok("put", k, paths[k])
    for k, data in blobs.items():
        assert mem.ok("get", k).out == data
    mem.ok("control", "fault", "off")
    assert upload_stats(mem)["retries"] > 0


def test_latency_is_applied(mem):
    mem.ok("control", "fault", "latency_ms=200")
    t0 = time.monotonic()
    mem.ok("health")
    assert time.monotonic() - t0 >= 0.2
    mem.ok("control", "fault", "off")
    t0 = time.monotonic()
    mem.ok("health")
    assert time.monotonic() - t0 < 0.2


def test_bad_fault_spec_is_refused(mem):
    r = mem.run("control", "fault", "error_rate=2")
    assert r.rc == EINVAL
    r = mem.run("control", "fault", "explode=1")
    assert r.rc == EINVAL
    assert "expected" in r.err


def test_unknown_control_is_enotsup(mem):
    assert mem.run("control", "no-such-control", "1").rc == 95


def test_fault_settings_at_open(tmp_path):
    s = Session(Mem(fault_fail_after="1", fault_errno="EIO"))
    try:
        r = s.run("health")
        assert r.rc == EIO
    finally:
        s.close()


def test_bad_fault_setting_at_open_names_key(tmp_path):
    from storetool_session import run_once
    r = run_once(Mem(fault_error_rate="lots"), "health")
    assert r.returncode == EINVAL
    assert b"fault_error_rate" in r.stderr


def test_multipart_fault_on_part_is_retried(mem):
    data = os.urandom(30000)
    p = mem.tmp / "mp"
    p.write_bytes(data)
    mem.ok("control", "fault", "error_rate=0.3,errno=EIO")
    r = mem.run("mpu", "obj", 10000, p, "--order", "reverse")
    mem.ok("control", "fault", "off")
    if r.rc == 0:  # complete's fault is not retryable (it frees the upload), so may fail
        assert mem.ok("get", "obj").out == data
    else:
        assert r.rc == EIO
        assert mem.run("get", "obj").rc == 2  # nothing half-written
