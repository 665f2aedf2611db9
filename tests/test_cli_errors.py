"""Error paths of the lexfs command line: each is refused with a clear message that
names what is wrong, a non-zero exit, no mount, and nothing written."""
import os
import re
import subprocess

import pytest

from conftest import lexfs_bin, _is_mounted

SECRET = "Zq81-not-a-placeholder-but-real-7Tx"


def run(args, env_extra=None, timeout=30, home=None):
    env = dict(os.environ)
    # Never pick up the machine's or the user's configuration.
    env["HOME"] = str(home) if home else "/nonexistent-home"
    env.pop("XDG_CACHE_HOME", None)
    for k in list(env):
        if k.startswith("LEX_STORAGE__"):
            del env[k]
    env.update(env_extra or {})
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    return subprocess.run([lexfs_bin()] + args, capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture
def place(tmp_path):
    """A mount point, a local root and a cache dir, all empty."""
    mnt = tmp_path / "mnt"
    root = tmp_path / "root"
    cache = tmp_path / "cache"
    mnt.mkdir()
    root.mkdir()

    class P:
        pass

    p = P()
    p.tmp, p.mnt, p.root, p.cache = tmp_path, mnt, root, cache
    yield p
    if _is_mounted(str(mnt)):
        subprocess.run(["fusermount3", "-uz", str(mnt)])
        pytest.fail("a refused mount was mounted anyway")


def assert_refused(r, place, *patterns, code=None):
    """Non-zero exit, every pattern in stderr, no mount, nothing written."""
    out = r.stderr
    assert r.returncode != 0, "accepted: %s" % out
    if code is not None:
        assert r.returncode == code, out
    for p in patterns:
        assert re.search(p, out), "%r not in: %s" % (p, out)
    assert out.startswith("lexfs: "), out
    assert len(out.strip().splitlines()) <= 3, "not one clear message: " + out
    assert "Sanitizer" not in out and "runtime error" not in out, out
    assert not _is_mounted(str(place.mnt))
    assert os.listdir(place.mnt) == []
    assert os.listdir(place.root) == []
    assert not place.cache.exists()


def mount_args(place, source, *opts):
    o = ["cache_dir=" + str(place.cache)] + list(opts)
    return [source, str(place.mnt), "-f", "-o", ",".join(o)]


def write_conf(place, text, mode=0o600):
    path = place.tmp / "lexfs.conf"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_bad_config_key_names_key_and_line(place):
    conf = write_conf(place, 'storage = {\n  driver = "local";\n  cache_sise = "1g";\n};\n')
    r = run(mount_args(place, str(place.root), "config=%s" % conf))
    assert_refused(r, place, r"unknown key storage\.cache_sise",
                   re.escape("%s:3" % conf), code=1)


def test_bad_config_value_names_key_and_line(place):
    conf = write_conf(place, 'storage = {\n  cache_size = "lots";\n};\n')
    r = run(mount_args(place, str(place.root), "config=%s" % conf))
    assert_refused(r, place, r"cache_size", re.escape("%s:2" % conf), code=1)


def test_config_syntax_error_names_line(place):
    conf = write_conf(place, 'storage = {\n  driver = ;\n};\n')
    r = run(mount_args(place, str(place.root), "config=%s" % conf))
    assert_refused(r, place, re.escape("%s:2" % conf), code=1)


def test_missing_config_file(place):
    r = run(mount_args(place, str(place.root), "config=%s" % (place.tmp / "nope.conf")))
    assert_refused(r, place, r"cannot read config file .*nope\.conf", code=1)


def test_unknown_driver_option(place):
    r = run(mount_args(place, str(place.root), "config=none", "driver=nosuch"))
    assert_refused(r, place, r'unknown driver "nosuch"', r"-o driver", code=1)


def test_unknown_driver_in_config_file(place):
    conf = write_conf(place, 'storage = {\n  driver = "nosuch";\n};\n')
    r = run([str(place.mnt), "-f", "-o", "config=%s,cache_dir=%s" % (conf, place.cache)])
    assert_refused(r, place, r'unknown driver "nosuch"', re.escape("%s:2" % conf), code=1)


def test_unknown_driver_env(place):
    r = run([str(place.mnt), "-f", "-o", "config=none,cache_dir=%s" % place.cache],
            env_extra={"LEX_STORAGE__DRIVER": "nosuch"})
    assert_refused(r, place, r'unknown driver "nosuch"', r"env LEX_STORAGE__DRIVER", code=1)


@pytest.mark.parametrize("source,pattern", [
    ("ftp://host/dir", r"unknown scheme 'ftp'"),
    ("s3://", r"names no bucket"),
    ("s3://Bad_Bucket", r"bucket name 'Bad_Bucket'"),
    ("az://x", r"container name 'x' must be 3 to 63"),
    ("file://relative/dir", r"absolute path"),
    ("mem://junk", r"takes no bucket"),
])
def test_bad_source(place, source, pattern):
    r = run(mount_args(place, source, "config=none"))
    assert_refused(r, place, pattern, code=1)


@pytest.mark.parametrize("source", [
    "s3://bucket/../etc",
    "gs://bucket/a/../../b",
    "az://container/./x",
    "r2://bucket/a//b",
])
def test_path_traversal_in_source(place, source):
    r = run(mount_args(place, source, "config=none"))
    assert_refused(r, place, re.escape(source), r"traversal|empty path component", code=1)


@pytest.mark.parametrize("key", ["../etc/passwd", "a/../../b", "/etc/passwd", "a//b", ".."])
def test_path_traversal_in_presign_key(place, key):
    r = run(["presign", key, "--source", str(place.root), "-o", "config=none"])
    assert_refused(r, place, r"presign: key", code=1)
    assert r.stdout == ""


def test_every_cloud_driver_is_built():
    v = run(["version"])
    assert v.returncode == 0, v.stderr
    drivers = v.stdout.split("drivers:")[1].splitlines()[0].split()
    assert drivers == ["local", "memory", "s3", "r2", "gcs", "azure"], v.stdout


def min_build():
    """The build configured with --disable-s3 --disable-azure --disable-gcs, made by
    tests/run.sh (LEXFS_MIN_BUILD)."""
    d = os.environ.get("LEXFS_MIN_BUILD")
    if not d or not os.access(os.path.join(d, "lexfs"), os.X_OK):
        pytest.fail("LEXFS_MIN_BUILD must name a build configured with --disable-s3 "
                    "--disable-azure --disable-gcs (tests/run.sh makes one)")
    return os.path.join(d, "lexfs")


@pytest.mark.parametrize("scheme,driver,option", [
    ("s3", "s3", "--disable-s3"), ("r2", "r2", "--disable-s3"),
    ("gs", "gcs", "--disable-gcs"), ("az", "azure", "--disable-azure")])
def test_cloud_driver_left_out_says_how_it_was_configured(place, scheme, driver, option):
    exe = min_build()
    v = subprocess.run([exe, "version"], capture_output=True, text=True, timeout=30)
    assert "%s (not built)" % driver in v.stdout, v.stdout
    env = dict(os.environ, HOME="/nonexistent-home")
    r = subprocess.run([exe] + mount_args(place, "%s://bucket1" % scheme, "config=none"),
                       capture_output=True, text=True, timeout=30, env=env)
    assert_refused(r, place, r"the %s driver is not built into this lexfs: it was "
                   r"configured with %s" % (driver, option), code=1)


def test_unreachable_root_missing_parent(place):
    root = place.tmp / "no" / "such" / "dir"
    r = run(mount_args(place, str(root), "config=none"))
    assert_refused(r, place, re.escape(str(root)), r"No such file or directory",
                   r"to fix: check that .* directory exists", code=2)
    assert not root.exists()


def test_unreachable_root_not_a_directory(place):
    f = place.tmp / "plainfile"
    f.write_text("x")
    r = run(mount_args(place, str(f), "config=none"))
    assert_refused(r, place, re.escape(str(f)), r"Not a directory", code=2)
    assert f.read_text() == "x"


def test_unreachable_root_daemon_mode_reports_to_terminal(place):
    """Without -f the failure still reaches stderr and the exit status."""
    f = place.tmp / "plainfile"
    f.write_text("x")
    r = run([str(f), str(place.mnt), "-o", "config=none,cache_dir=%s" % place.cache])
    assert_refused(r, place, r"Not a directory", code=2)


def test_secret_file_readable_by_others_refused(place):
    conf = write_conf(place, 'storage = {\n  local = {\n    signing_key = "%s";\n  };\n};\n'
                      % SECRET, mode=0o644)
    r = run(mount_args(place, str(place.root), "config=%s" % conf))
    assert_refused(r, place, r"holds a secret", r"storage\.local\.signing_key, line 3",
                   r"chmod 600", code=1)
    assert SECRET not in r.stderr + r.stdout


def test_secret_file_readable_by_group_refused(place):
    conf = write_conf(place, 'storage = { s3 = { secret_access_key = "%s"; }; };\n' % SECRET,
                      mode=0o640)
    r = run(mount_args(place, str(place.root), "config=%s" % conf))
    assert_refused(r, place, r"holds a secret", r"mode 0640", code=1)
    assert SECRET not in r.stderr + r.stdout


@pytest.mark.parametrize("placeholder", ["changeme", "minioadmin", "password", "secret", "test"])
def test_placeholder_secret_refused_off_loopback(place, placeholder):
    r = run(mount_args(place, str(place.root), "config=none", "signing_key=" + placeholder,
                       "base_url=https://files.example.com/s"))
    assert_refused(r, place, r"signing_key \(from -o signing_key\)", r"placeholder", code=1)
    assert placeholder not in r.stderr.lower(), r.stderr


def test_placeholder_secret_in_config_file_refused(place):
    conf = write_conf(place, 'storage = {\n  local = {\n    base_url = "https://cdn.example.com";'
                      '\n    signing_key = "changeme";\n  };\n};\n')
    r = run(mount_args(place, str(place.root), "config=%s" % conf))
    assert_refused(r, place, re.escape("signing_key (from %s:4)" % conf), code=1)


def test_unknown_driver_setting_names_origin(place):
    r = run(mount_args(place, "mem://", "config=none", "bukket=photos"))
    assert_refused(r, place, r"unknown option bukket \(from -o bukket\)", code=1)


def test_unknown_driver_setting_from_env_names_origin(place):
    r = run(mount_args(place, "mem://", "config=none"),
            env_extra={"LEX_STORAGE__MEMORY__COLOUR": "blue"})
    assert_refused(r, place, r"unknown option colour \(from env LEX_STORAGE__MEMORY__COLOUR\)",
                   code=1)


def test_bad_mount_option_value(place):
    r = run(mount_args(place, "mem://", "config=none", "umask=999"))
    assert_refused(r, place, r"umask \(from -o umask\)", code=1)


def test_missing_mount_point(place):
    r = run(["mem://", str(place.tmp / "nomnt"), "-f", "-o", "config=none"])
    assert_refused(r, place, r"mount point .*nomnt: No such file", code=1)


def test_unknown_command_line_flag(place):
    r = run(["mem://", str(place.mnt), "--frobnicate"])
    assert_refused(r, place, r"unknown option --frobnicate", code=1)


def test_verify_url_rejects_tampered_url(place):
    """presign then verify-url: the signed URL verifies; an altered one does not."""
    conf = write_conf(place, 'storage = { local = { signing_key = "%s"; }; };\n' % SECRET)
    src = str(place.tmp / "signroot")
    r = run(["presign", "dir/a.txt", "--expires", "120", "--source", src, "-o",
             "config=%s" % conf])
    assert r.returncode == 0, r.stderr
    url = r.stdout.strip()
    assert "dir/a.txt?" in url and SECRET not in url
    ok = run(["verify-url", url, "--source", src, "-o", "config=%s" % conf])
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "valid GET dir/a.txt"
    bad = run(["verify-url", url.replace("a.txt", "b.txt"), "--source", src, "-o",
               "config=%s" % conf])
    assert bad.returncode == 1
    assert "signature does not match" in bad.stderr


@pytest.mark.parametrize("errno_name,code,hint", [
    ("EACCES", "LEXFS-009", r"to fix: check the credentials"),
    ("ETIMEDOUT", "LEXFS-007", r"to fix: check the endpoint, the network"),
    ("ENOENT", "LEXFS-002", r"to fix: check that the bucket, container or directory exists"),
])
def test_failed_health_check_says_what_to_fix(place, errno_name, code, hint):
    """The memory driver's fault injection makes every call fail, the health check
    first: lexfs exits 2 before mounting and the message says what to fix."""
    r = run(mount_args(place, "mem://", "config=none", "fault_error_rate=1",
                       "fault_errno=" + errno_name, "max_retries=1", "health_timeout=5"))
    out = r.stderr
    assert r.returncode == 2, out
    assert "failed its health check" in out and code in out, out
    assert re.search(hint, out), out
    assert not _is_mounted(str(place.mnt))
    assert os.listdir(place.mnt) == []
