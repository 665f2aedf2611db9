"""Metrics of a mount: user.lexfs.metrics on the root and the loopback server both
parse as Prometheus text and count what the workload did; non-loopback addresses
are refused."""
import os
import re
import subprocess
import urllib.request

import pytest

from conftest import invalidate, lexfs_bin

# Prometheus text format 0.0.4: comments and samples.
HELP = re.compile(r"^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$")
TYPE = re.compile(r"^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|summary|histogram|untyped)$")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)'
                    r'(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"'
                    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*)?\})?'
                    r' (-?[0-9.]+(?:e[-+]?[0-9]+)?|NaN|[-+]Inf)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text):
    """{(name, frozenset(labels)): value}; asserts every line is valid and every
    sample's family was declared with # TYPE before it."""
    assert text.endswith("\n")
    samples = {}
    typed = set()
    for line in text.splitlines():
        if line.startswith("# HELP"):
            assert HELP.match(line), line
            continue
        m = TYPE.match(line)
        if m:
            assert m.group(1) not in typed, "family declared twice: " + line
            typed.add(m.group(1))
            continue
        m = SAMPLE.match(line)
        assert m, "bad sample line: %r" % line
        name = m.group(1)
        fam = re.sub(r"_(sum|count|bucket)$", "", name)
        assert name in typed or fam in typed, "sample before its TYPE: " + line
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        assert (name, labels) not in samples, "duplicate sample: " + line
        samples[(name, labels)] = float(m.group(4))
    return samples


def value(samples, name, **labels):
    for (n, ls), v in samples.items():
        if n == name and set(labels.items()) <= set(ls):
            return v
    raise KeyError("%s%s not in metrics" % (name, labels))


def getxattr(path, name):
    return os.getxattr(path, name).decode()


def workload(m):
    sizes = [100, 2000, 30000]
    for i, n in enumerate(sizes):
        with open(os.path.join(m.path, "m%d" % i), "wb") as f:
            f.write(os.urandom(n))
    invalidate(m)
    with open(os.path.join(m.path, "m2"), "rb") as f:
        assert len(f.read()) == 30000
    return sizes


def test_metrics_xattr_counts(backend, mounter):
    be = backend.fresh()
    m = mounter(be.source, opts=be.mount_opts(), env=be.env)
    before = parse_prometheus(getxattr(m.path, "user.lexfs.metrics"))
    assert value(before, "lexfs_store_requests_total", op="upload") == 0
    sizes = workload(m)
    s = parse_prometheus(getxattr(m.path, "user.lexfs.metrics"))
    assert value(s, "lexfs_store_requests_total", op="upload", driver=be.driver) == 3
    assert value(s, "lexfs_store_bytes_up_total") == sum(sizes)
    assert value(s, "lexfs_store_bytes_down_total") >= 30000
    assert value(s, "lexfs_store_requests_total", op="download") >= 1
    assert value(s, "lexfs_store_request_duration_seconds_count", op="upload") == 3
    assert value(s, "lexfs_store_request_duration_seconds_sum", op="upload") > 0
    assert value(s, "lexfs_store_errors_total", op="upload") == 0
    assert value(s, "lexfs_backend_up") == 1
    # Cache members appear too (their names come from cache_stats_json).
    assert any(n.startswith("lexfs_cache_") for n, _ in s)
    assert "user.lexfs.metrics" in os.listxattr(m.path)


def test_metrics_server(backend, mounter):
    be = backend.fresh()
    m = mounter(be.source, opts=be.mount_opts() + ["metrics_addr=127.0.0.1:0"], env=be.env)
    port = int(re.search(r"metrics served on .* \(port (\d+)\)", m.log).group(1))
    workload(m)
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        s = parse_prometheus(r.read().decode())
    assert value(s, "lexfs_store_requests_total", op="upload") == 3
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen("http://127.0.0.1:%d/other" % port, timeout=10)
    assert e.value.code == 404


@pytest.mark.parametrize("addr", ["0.0.0.0:9100", "192.0.2.1:9100", "[::]:9100"])
def test_metrics_refuses_non_loopback(tmp_path, addr):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run([lexfs_bin(), "mem://", str(mnt), "-f", "-o",
                        "metrics_addr=%s,cache_dir=%s" % (addr, tmp_path / "c")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "only loopback addresses" in r.stderr
    assert "metrics_addr" in r.stderr


def test_traced_workload_logs_no_secret(backend, mounter):
    """Every trace switched on (-o trace=all: http, store, the drivers' own) and debug
    logging, over a workload that signs requests and presigns URLs: the trace lines
    are there, and the mounter's scan (conftest Mount.problems) finds none of the
    registered test credentials in them."""
    from conftest import TEST_SECRETS

    be = backend.fresh()
    m = mounter(be.source, opts=be.mount_opts() + ["trace=all", "log_level=debug"], env=be.env)
    p = os.path.join(m.path, "traced.bin")
    with open(p, "wb") as f:
        f.write(os.urandom(300000))
    with open(p, "rb") as f:
        assert len(f.read()) == 300000
    os.rename(p, p + ".moved")
    assert "traced.bin.moved" in os.listdir(m.path)
    url = os.getxattr(p + ".moved", "user.lexfs.presigned_url").decode()
    assert url
    os.unlink(p + ".moved")
    m.unmount()
    log = m.log
    if be.driver in ("s3", "r2", "azure", "gcs"):
        assert re.search(r"http (PUT|POST) http://127\.0\.0\.1:\d+/", log), log[-3000:]
    assert " debug: store " in log
    assert TEST_SECRETS  # the servers registered theirs
    assert [p for p in m.problems() if "secret" in p] == []


def test_secret_scan_catches_a_leak(tmp_path):
    """The scan itself: a daemon log line holding a registered secret is a problem,
    reported without the secret; the harness's own start line is masked."""
    from conftest import TEST_SECRETS, Mount, mask_secrets

    secret = TEST_SECRETS[0]
    log = tmp_path / "lexfs.log"
    log.write_text("=== start 1: %s\n2026-01-01 lexfs[1] debug: http GET x sig=%s\n"
                   % (mask_secrets("lexfs -o secret_access_key=" + secret), secret))
    m = Mount("mem://", tmp_path, [], {}, None, tmp_path, log)
    problems = m.problems()
    assert len(problems) == 1 and "log holds a test secret" in problems[0], problems
    assert secret not in problems[0]
