"""contrib/ for operators: the systemd unit (verified by systemd-analyze, and READY=1
really sent by a mount), the fstab examples through mount.lexfs, the logrotate
snippet, and bash completion of subcommands and -o options."""
import os
import re
import socket
import subprocess

from conftest import ROOT, build_dir, lexfs_bin

CONTRIB = ROOT / "contrib"


def test_systemd_unit_verifies(tmp_path):
    unit = (CONTRIB / "lexfs@.service.in").read_text().replace("@bindir@", str(build_dir()))
    (tmp_path / "lexfs@.service").write_text(unit)
    os.symlink("lexfs@.service", tmp_path / "lexfs@photos.service")
    r = subprocess.run(["systemd-analyze", "verify", "--man=no",
                        str(tmp_path / "lexfs@photos.service")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == "", r.stderr
    assert "Type=notify" in unit
    assert "-f -o config=/etc/lexfs/%i.conf" in unit
    # Nothing that would put the mount in a private mount namespace.
    for bad in ("PrivateTmp=", "ProtectSystem=", "ProtectHome=", "PrivateMounts="):
        assert "\n" + bad not in unit


def test_mount_sends_ready_to_systemd(mounter, tmp_path):
    sock_path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(sock_path)
    s.settimeout(10)
    try:
        m = mounter("mem://", env={"NOTIFY_SOCKET": sock_path})
        msg = s.recv(4096).decode()
        assert msg.startswith("READY=1\n")
        assert "STATUS=mounted on %s" % os.path.realpath(m.path) in msg
        m.unmount()
        assert s.recv(4096).decode() == "STOPPING=1"
    finally:
        s.close()


def fstab_lines():
    out = []
    for line in (CONTRIB / "fstab.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            out.append(line.split())
    return out


def test_fstab_examples_through_mount_helper(tmp_path):
    lines = fstab_lines()
    assert len(lines) >= 4
    helper = CONTRIB / "mount.lexfs"
    for fields in lines:
        assert len(fields) == 6, fields
        source, mnt, fstype, opts, dump, passno = fields
        assert fstype == "lexfs"
        r = subprocess.run(["sh", str(helper), source, mnt, "-f", "-v", "-o", opts],
                           capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, LEXFS=lexfs_bin()))
        assert r.returncode == 0, r.stderr
        cmd = r.stderr.strip()
        args = (mnt,) if source == "lexfs" else (source, mnt)
        assert cmd.startswith("mount.lexfs: %s %s" % (lexfs_bin(), " ".join(args))), cmd
        passed = cmd.split(" -o ", 1)[1].split(",") if " -o " in cmd else []
        for o in opts.split(","):
            dropped = o in ("_netdev", "nofail", "noauto", "defaults", "rw") or \
                o.startswith("x-")
            assert (o not in passed) == dropped, (o, cmd)
    assert any("_netdev" in f[3] for f in lines)
    assert any(f[0] == "lexfs" for f in lines)


def test_fstab_options_are_valid_lexfs_options(tmp_path):
    """Every lexfs option the examples use is accepted by lexfs's own parser."""
    for fields in fstab_lines():
        opts = [o for o in fields[3].split(",")
                if o not in ("_netdev", "nofail", "noauto", "ro", "allow_other")
                and not o.startswith("x-") and not o.startswith("config=")
                and not o.startswith("logfile=") and not o.startswith("cache_dir=")]
        cmd = [lexfs_bin(), "doctor", "mem://", "-o", "config=none",
               "-o", "cache_dir=%s" % tmp_path]
        for o in opts:
            cmd += ["-o", o]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert "fail config" not in r.stdout, (opts, r.stdout)
        assert r.returncode == 0, r.stdout + r.stderr


def test_logrotate_snippet(tmp_path):
    logdir = tmp_path / "log"
    logdir.mkdir()
    (logdir / "a.log").write_text("line\n")
    conf = (CONTRIB / "lexfs.logrotate").read_text().replace("/var/log/lexfs", str(logdir))
    (tmp_path / "lexfs").write_text(conf)
    r = subprocess.run(["logrotate", "-d", "-s", str(tmp_path / "state"),
                        str(tmp_path / "lexfs")], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "error" not in r.stderr.lower(), r.stderr
    assert "pkill -USR1 -x lexfs" in conf


def complete(words, cword=None):
    script = (
        "source %s\n"
        "COMP_WORDS=(%s)\n"
        "COMP_CWORD=%d\n"
        "COMP_LINE=\"${COMP_WORDS[*]}\"\n"
        "_lexfs\n"
        "printf '%%s\\n' \"${COMPREPLY[@]}\"\n"
    ) % (CONTRIB / "lexfs.bash-completion",
         " ".join("'%s'" % w for w in words),
         len(words) - 1 if cword is None else cword)
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return [l for l in r.stdout.splitlines() if l]


def test_completion_subcommands():
    assert "doctor" in complete(["lexfs", "do"])
    assert set(complete(["lexfs", ""])) >= {"doctor", "presign", "verify-url", "status",
                                            "version", "s3://"}
    assert complete(["lexfs", "doctor", "--j"]) == ["--json"]
    assert set(complete(["lexfs", "presign", "k", "--method", ""])) == {"GET", "PUT"}


def test_completion_o_options():
    got = complete(["lexfs", "s3://b", "/mnt", "-o", "health_"])
    assert set(got) == {"health_timeout=", "health_interval="}
    got = complete(["lexfs", "s3://b", "/mnt", "-o", "ro,metrics_"])
    assert got == ["ro,metrics_addr="]
    got = complete(["lexfs", "s3://b", "/mnt", "-o", "trace=ht"])
    assert got == ["trace=http"]
    got = complete(["lexfs", "s3://b", "/mnt", "-o", "events_on"])
    assert set(got) == {"events_on_stored=", "events_on_deleted="}


# ---- the example configuration covers every key the code reads ----------------------

SRC = ROOT / "src"
DRIVERS = ROOT / "drivers"
# Which files read which group's settings (r2 is the s3 driver: the s3 group documents
# the shared keys, the r2 group what only R2 uses). Globs, so a driver's new file is
# scanned without editing this.
DRIVER_GLOBS = {
    "s3": ["drivers/s3*.c"],
    "azure": ["drivers/azure*.c", "src/azure_auth.c"],
    "gcs": ["drivers/gcs*.c", "src/gcs_auth.c"],
    "local": ["drivers/local*.c"],
    "memory": ["drivers/memory.c"],
}
DRIVER_FILES = {d: sorted(str(p.relative_to(ROOT)) for g in globs for p in ROOT.glob(g))
                for d, globs in DRIVER_GLOBS.items()}
GETTER = re.compile(r'\bsettings_(?:get|get_bool|get_size|get_u64|get_double|get_int|has|origin)'
                    r'\(\s*[^,()]+,\s*"([a-z0-9_]+)"')
PAIR = re.compile(r'\bsetting\(\s*[^,()]+,\s*"([a-z0-9_]+)",\s*"([a-z0-9_]+)"\)')
# memory.c reads its fault keys from a table: { "fault_error_rate", "error_rate" }.
FAULT_TABLE = re.compile(r'\{\s*"(fault_[a-z_]+)",\s*"[a-z_]+"\s*\}')


def keys_read_by(files):
    keys = set()
    for f in files:
        text = (ROOT / f).read_text() if (ROOT / f).exists() else ""
        keys |= set(GETTER.findall(text))
        for a, b in PAIR.findall(text):
            keys |= {a, b}
        keys |= set(FAULT_TABLE.findall(text))
    return keys


def mount_keys():
    """lexfs's own keys: the mount_keys[] table of src/conf.c."""
    text = (SRC / "conf.c").read_text()
    table = re.search(r"mount_keys\[\]\s*=\s*\{(.*?)NULL", text, re.S).group(1)
    return set(re.findall(r'"([a-z0-9_]+)"', table))


ASSIGN = re.compile(r"^([a-z0-9_]+)\s*=")


def example_groups():
    """{group path: keys} of the example, commented-out keys included ("# key = ...");
    groups open with an uncommented "name = {" and close with "};"."""
    groups, stack = {}, []
    for raw in (CONTRIB / "lexfs.conf.example").read_text().splitlines():
        line = raw.strip()
        commented = line.startswith("#")
        text = line.lstrip("#").strip() if commented else line
        m = ASSIGN.match(text)
        if not commented and text.endswith("{") and m:
            stack.append(m.group(1))
            groups.setdefault(".".join(stack), set())
            continue
        if not commented and text.startswith("}"):
            stack.pop()
            continue
        if m and stack:
            groups[".".join(stack)].add(m.group(1))
    assert not stack, "unbalanced groups in the example"
    return groups


def test_the_key_scan_sees_the_code():
    """The scan is not vacuous: it finds keys known to be read."""
    assert {"bucket", "imds", "sts_endpoint", "s3_path_style",
            "meta_underscore_as_dot"} <= keys_read_by(DRIVER_FILES["s3"])
    assert {"fault_latency_ms", "base_url"} <= keys_read_by(DRIVER_FILES["memory"])
    assert {"account_key", "sas_token"} <= keys_read_by(DRIVER_FILES["azure"])
    assert {"health_interval", "metrics_addr", "events_log", "rw"} <= mount_keys()


def test_example_config_has_every_key():
    """Every key lexfs (src/conf.c) and each driver reads appears in
    contrib/lexfs.conf.example, in its group. config itself is the exception: it says
    which file to read."""
    groups = example_groups()
    top = groups["storage"]
    events = groups.get("storage.events", set())
    missing = []
    for k in sorted(mount_keys() - {"config"}):
        if k.startswith("events_") and k[len("events_"):] in events:
            continue
        if k not in top:
            missing.append("storage." + k)
    for drv, files in DRIVER_FILES.items():
        have = groups.get("storage." + drv, set())
        if drv == "s3":
            have = have | groups.get("storage.r2", set())
        for k in sorted(keys_read_by(files) - have):
            missing.append("storage.%s.%s" % (drv, k))
    assert missing == [], "keys the code reads but the example lacks: %s" % missing


def test_completion_knows_every_key():
    """Bash completion offers every key lexfs and the drivers read as an -o option."""
    comp = (CONTRIB / "lexfs.bash-completion").read_text()
    words = re.search(r'_lexfs_o_options="(.*?)"', comp, re.S).group(1).split()
    have = {w.rstrip("=") for w in words}
    keys = mount_keys()
    for files in DRIVER_FILES.values():
        keys |= keys_read_by(files)
    assert sorted(keys - have) == []
    assert complete(["lexfs", "s3://b", "/mnt", "-o", "fore"]) == ["foreground"]
    assert set(complete(["lexfs", "s3://b", "/mnt", "-o", "single_"])) == {
        "single_thread", "single_put_max="}
    assert complete(["lexfs", "s3://b", "/mnt", "-o", "ro,sts_"]) == ["ro,sts_endpoint="]
    assert complete(["lexfs", "doctor", "--ab"]) == ["--abort-stale"]
    assert complete(["lexfs", "doctor", "--stale"]) == ["--stale-age"]
    assert "help" in complete(["lexfs", "he"])
