"""Events on a mount: a scripted workload gives exactly the expected event lines, hooks
receive them (JSON on stdin, LEXFS_* environment), and a hook that hangs or fails
neither slows nor fails cp."""
import json
import os
import re
import shutil
import time

import pytest

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
FIELDS = ["event", "key", "bucket", "backend", "size_bytes", "etag", "occurred_at"]


def read_events(path, want, timeout=10):
    """The event log's lines once it holds `want` of them."""
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                lines = [json.loads(l) for l in f.read().splitlines() if l]
            if len(lines) >= want:
                break
        time.sleep(0.05)
    return lines


def write_hook(tmp_path, name, body):
    p = tmp_path / name
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(0o755)
    return p


def test_event_log_workload(backend, mounter, tmp_path):
    be = backend.fresh()
    log = tmp_path / "events.log"
    m = mounter(be.source, opts=be.mount_opts() + ["events_log=%s" % log], env=be.env)
    data = b"hello events\n"
    (open(os.path.join(m.path, "a.txt"), "wb")).write(data)
    with open(os.path.join(m.path, "a.txt"), "rb") as f:
        assert f.read() == data
    os.rename(os.path.join(m.path, "a.txt"), os.path.join(m.path, "b.txt"))
    os.unlink(os.path.join(m.path, "b.txt"))
    ev = read_events(log, 5)
    assert [(e["event"], e["key"]) for e in ev] == [
        ("FileUploaded", "a.txt"),
        ("FileDownloaded", "a.txt"),
        ("FileDeleted", "a.txt"),
        ("FileUploaded", "b.txt"),
        ("FileDeleted", "b.txt"),
    ]
    for e in ev:
        assert list(e) == FIELDS
        assert RFC3339.match(e["occurred_at"]), e
        assert e["backend"] == "default"
    up = ev[0]
    assert up["size_bytes"] == len(data)
    assert isinstance(up["etag"], str) and up["etag"]
    assert ev[3]["size_bytes"] == len(data)
    assert ev[4]["size_bytes"] is None and ev[4]["etag"] is None
    if be.driver == "local":
        assert ev[0]["bucket"] == be.settings["root_dir"]
    # Nothing more after a moment (e.g. no second upload of the renamed file).
    time.sleep(0.3)
    assert len(read_events(log, 5, timeout=0.1)) == 5


def test_hooks_receive_events(backend, mounter, tmp_path):
    be = backend.fresh()
    out = tmp_path / "hook.out"
    hook = write_hook(tmp_path, "hook.sh",
                      'printf "%s|%s|%s|%s|%s|%s\\n" "$1" "$LEXFS_EVENT" "$LEXFS_KEY" '
                      '"$LEXFS_SIZE" "$LEXFS_BACKEND" "$(cat)" >> "$2"\n')
    opts = be.mount_opts() + ["events_on_stored=%s stored %s" % (hook, out),
                              "events_on_deleted=%s deleted %s" % (hook, out)]
    m = mounter(be.source, opts=opts, env=be.env)
    name = "we ird $(touch PWNED) ;name.txt"
    with open(os.path.join(m.path, name), "wb") as f:
        f.write(b"12345")
    os.unlink(os.path.join(m.path, name))
    deadline = time.monotonic() + 10
    lines = []
    while time.monotonic() < deadline:
        if out.exists():
            lines = out.read_text().splitlines()
            if len(lines) >= 2:
                break
        time.sleep(0.05)
    assert len(lines) == 2, lines
    tag, ev, key, size, backend_name, stdin = lines[0].split("|", 5)
    assert (tag, ev, key, size, backend_name) == ("stored", "FileUploaded", name, "5", "default")
    j = json.loads(stdin)
    assert j["event"] == "FileUploaded" and j["key"] == name and j["size_bytes"] == 5
    tag, ev, key, size, _, stdin = lines[1].split("|", 5)
    assert (tag, ev, key, size) == ("deleted", "FileDeleted", name, "")
    assert json.loads(stdin)["key"] == name
    assert not (tmp_path / "PWNED").exists()
    assert not os.path.exists("/PWNED")


@pytest.mark.parametrize("hook_body", ["sleep 30\n", "echo broken >&2; exit 7\n"],
                         ids=["hanging", "failing"])
def test_bad_hook_does_not_slow_cp(backend, mounter, tmp_path, hook_body):
    be = backend.fresh()
    hook = write_hook(tmp_path, "bad.sh", hook_body)
    log = tmp_path / "events.log"
    opts = be.mount_opts() + ["events_on_stored=%s" % hook, "events_hook_timeout=2",
                              "events_log=%s" % log]
    m = mounter(be.source, opts=opts, env=be.env)
    src = tmp_path / "src"
    src.mkdir()
    blobs = {}
    for i in range(8):
        blobs["f%d" % i] = os.urandom(1000 + i * 3000)
        (src / ("f%d" % i)).write_bytes(blobs["f%d" % i])
    t0 = time.monotonic()
    for name in blobs:
        shutil.copyfile(src / name, os.path.join(m.path, name))
    elapsed = time.monotonic() - t0
    assert elapsed < 5, "cp took %.1fs with a bad hook" % elapsed
    for name, data in blobs.items():
        with open(os.path.join(m.path, name), "rb") as f:
            assert f.read() == data
    # The event log is complete even though hooks are slow or failing.
    ev = read_events(log, 16)
    assert sorted(e["key"] for e in ev if e["event"] == "FileUploaded") == sorted(blobs)
    # Data is in the store, not just in the cache.
    m.unmount()
    if be.persistent:
        for name, data in blobs.items():
            assert be.storetool("get", name).stdout == data


def test_event_config_file_group(backend, mounter, tmp_path):
    """storage.events = { log = ...; } in the config file is the same as events_log."""
    be = backend.fresh()
    log = tmp_path / "ev.log"
    conf = tmp_path / "lexfs.conf"
    conf.write_text('storage = { events = { log = "%s"; hook_timeout = 3.0; }; };\n' % log)
    conf.chmod(0o600)
    m = mounter(be.source, opts=be.mount_opts(), env=be.env, config=conf)
    with open(os.path.join(m.path, "x"), "wb") as f:
        f.write(b"x")
    ev = read_events(log, 1)
    assert [(e["event"], e["key"]) for e in ev] == [("FileUploaded", "x")]
