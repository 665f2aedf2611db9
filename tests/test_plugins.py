"""Third-party drivers from shared objects: the example plugin driver
(tests/plugin/lexfs-example.c) through lexfs-storetool and through a real mount, and
every way a plugin is refused - each with a message that says what to fix, a
non-zero exit and nothing mounted."""
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import build_dir, lexfs_bin, _is_mounted
from storetool_session import SANITIZER_MARKS, Session, run_once

ENOENT, EINVAL = 2, 22


def built_plugin(name):
    """A shared object the build made under tests/plugin/ (missing: a failure)."""
    path = build_dir() / "tests" / "plugin" / name
    assert path.is_file(), "%s was not built (make builds tests/plugin/*.so)" % path
    return path


def plugin_dir(tmp_path, built="lexfs-example.so", driver="example"):
    """A plugin directory holding `built` as lexfs-DRIVER.so."""
    d = tmp_path / "plugins"
    d.mkdir(exist_ok=True)
    shutil.copy(built_plugin(built), d / ("lexfs-%s.so" % driver))
    return d


class PluginBackend:
    """What storetool_session needs of a backend: the driver and its --set keys."""

    def __init__(self, driver, pdir, **settings):
        self.driver = driver
        self.settings = {"plugin_dir": str(pdir)} if pdir is not None else {}
        self.settings.update(settings)
        self.env = {}


@pytest.fixture
def st(tmp_path):
    s = Session(PluginBackend("example", plugin_dir(tmp_path)))
    s.tmp = tmp_path
    yield s
    s.close()


def put(s, key, data, *opts):
    src = s.tmp / "src.bin"
    src.write_bytes(data)
    return s.ok("put", key, src, *opts)


def keys(s, prefix, *opts):
    return [(e["key"], e.get("prefix", False)) for e in s.ok("list", prefix, *opts).json_lines()]


# ---- through lexfs-storetool ------------------------------------------------------

def test_storetool_loads_the_plugin(tmp_path):
    """The driver is the shared object: the registry logs where it loaded it from,
    and get_url answers with the plugin's own scheme."""
    pdir = plugin_dir(tmp_path)
    cmd = [str(build_dir() / "lexfs-storetool"), "-v", "--driver", "example", "--set",
           "plugin_dir=%s" % pdir, "url", "a/b"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "example://a/b"
    assert "loaded driver plugin %s/lexfs-example.so" % pdir in r.stderr
    assert not any(mark in r.stderr for mark in SANITIZER_MARKS), r.stderr


def test_storetool_put_get(st):
    data = os.urandom(300000)
    put(st, "dir/blob.bin", data)
    assert st.ok("get", "dir/blob.bin").out == data
    assert st.ok("get", "dir/blob.bin", 1000, 10).out == data[1000:1010]
    assert st.ok("get", "dir/blob.bin", len(data) - 3, 100).out == data[-3:]
    put(st, "dir/blob.bin", b"replaced")
    assert st.ok("get", "dir/blob.bin").out == b"replaced"
    assert st.run("get", "dir/nope").rc == ENOENT


def test_storetool_info_keeps_type_and_metadata(st):
    put(st, "m.txt", b"hello", "--type", "text/plain", "--meta", "mode=33188",
        "--meta", "color=blue")
    i = st.ok("info", "m.txt").json()
    assert i["size"] == 5
    assert i["content_type"] == "text/plain"
    assert i["meta"] == {"mode": "33188", "color": "blue"}
    assert i["etag"]


def test_storetool_list_delimited_and_recursive(st):
    for k in ("a/1", "a/b/2", "a/b/3", "c", "d/"):
        put(st, k, b"x")
    assert keys(st, "") == [("a/", True), ("c", False), ("d/", True)]
    assert keys(st, "a/") == [("a/1", False), ("a/b/", True)]
    assert keys(st, "", "--recursive") == [(k, False) for k in
                                           ("a/1", "a/b/2", "a/b/3", "c", "d/")]


def test_storetool_list_pages(st):
    for k in ("a/1", "a/2", "b", "c/x", "c/y", "d"):
        put(st, k, b"x")
    lines = st.ok("list", "", "--max-keys", "1", "--pages").json_lines()
    assert [e["count"] for e in lines if "page" in e] == [1, 1, 1, 1]
    assert [e["key"] for e in lines if "key" in e] == ["a/", "b", "c/", "d"]
    lines = st.ok("list", "", "--recursive", "--max-keys", "4", "--pages").json_lines()
    assert [e["count"] for e in lines if "page" in e] == [4, 2]


def test_storetool_remove(st):
    put(st, "gone", b"x")
    put(st, "kept", b"y")
    st.ok("rm", "gone")
    st.ok("rm", "never-was")
    assert st.run("get", "gone").rc == ENOENT
    assert keys(st, "") == [("kept", False)]


def test_storetool_plugin_setting_and_unknown_setting(tmp_path):
    """The plugin reads its own settings; one it does not read is reported."""
    pdir = plugin_dir(tmp_path)
    r = run_once(PluginBackend("example", pdir, base_url="https://cdn.test/"), "url", "k")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().strip() == "https://cdn.test/k"
    r = run_once(PluginBackend("example", pdir, bukket="x"), "health")
    assert r.returncode != 0
    assert "unknown option bukket" in r.stderr.decode()


# ---- refusals -----------------------------------------------------------------------
#
# name: (shared object to install or None, as driver, driver to ask for,
#        what the message must say). "nodir": plugin_dir does not exist; "none":
# no plugin_dir at all; "junk": a file that is no shared object.

REFUSALS = {
    "wrong_abi": ("example-abi1.so", "example", "example",
                  r"lexfs-example\.so is built for driver ABI 1; this lexfs loads ABI 2 "
                  r"only \(rebuild it against this lexfs's drivers/driver\.h\)"),
    "no_symbol": ("example-noentry.so", "example", "example",
                  r"lexfs-example\.so does not export lexfs_driver_plugin\(\) \(a plugin "
                  r"defines const struct lexfs_driver \*lexfs_driver_plugin\(void\)"),
    "missing_operation": ("example-nogeturl.so", "example", "example",
                          r"lexfs-example\.so lacks the required operation get_url"),
    "name_mismatch": ("lexfs-example.so", "other", "other",
                      r'lexfs-other\.so holds the driver "example", not "other" '
                      r"\(driver NAME is loaded from lexfs-NAME\.so\)"),
    "no_file": (None, None, "example",
                r'unknown driver "example": not built in \(local, memory, s3, r2, gcs, '
                r'azure\), and plugin_dir \S+ has no lexfs-example\.so'),
    "no_plugin_dir": ("none", None, "example",
                      r'unknown driver "example" \(built in: .*; a plugin driver needs '
                      r"plugin_dir, the directory that holds lexfs-example\.so\)"),
    "plugin_dir_missing": ("nodir", None, "example",
                           r"plugin_dir \S+/absent: No such file or directory \(set it to "
                           r"the directory that holds lexfs-example\.so\)"),
    "not_a_shared_object": ("junk", "example", "example",
                            r"lexfs-example\.so cannot be loaded: .*lexfs-example\.so"),
}


def refusal_setup(tmp_path, case):
    """(plugin_dir or None, driver name, pattern) for a REFUSALS case."""
    built, as_driver, driver, pattern = REFUSALS[case]
    d = tmp_path / "plugins"
    d.mkdir()
    if built == "none":
        return None, driver, pattern
    if built == "nodir":
        return tmp_path / "absent", driver, pattern
    if built == "junk":
        (d / ("lexfs-%s.so" % as_driver)).write_text("not an ELF file\n")
    elif built is not None:
        shutil.copy(built_plugin(built), d / ("lexfs-%s.so" % as_driver))
    return d, driver, pattern


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_storetool_refuses_plugin(tmp_path, case):
    pdir, driver, pattern = refusal_setup(tmp_path, case)
    r = run_once(PluginBackend(driver, pdir), "health")
    err = r.stderr.decode()
    assert r.returncode == EINVAL, err
    assert re.search(pattern, err), "%r not in: %s" % (pattern, err)
    assert err.startswith("lexfs: LEXFS-003 open: "), err


def test_storetool_refuses_bad_driver_name(tmp_path):
    """A name the configuration cannot spell is refused as such, not looked for."""
    pdir = plugin_dir(tmp_path)
    shutil.copy(pdir / "lexfs-example.so", pdir / "lexfs-Ex.ample.so")
    r = run_once(PluginBackend("Ex.ample", pdir), "health")
    err = r.stderr.decode()
    assert r.returncode == EINVAL, err
    assert ('driver name "Ex.ample" is refused: a driver is named with lower-case letters, '
            "digits and '_'") in err, err


# ---- through a real mount -------------------------------------------------------------

def write_conf(tmp_path, body):
    conf = tmp_path / "lexfs.conf"
    conf.write_text("storage = {\n%s\n};\n" % body)
    os.chmod(conf, 0o600)
    return conf


def test_mount_plugin_from_config_file(mounter, tmp_path):
    """storage.driver and storage.plugin_dir in the file: cp, ls, cat, mkdir, rm."""
    pdir = plugin_dir(tmp_path)
    conf = write_conf(tmp_path, '  driver = "example";\n  plugin_dir = "%s";\n'
                      '  log_level = "info";' % pdir)
    m = mounter(None, config=conf)
    mnt = Path(m.path)
    src = tmp_path / "hello.txt"
    src.write_bytes(b"hello from a plugin\n" * 1000)
    subprocess.run(["cp", str(src), str(mnt / "hello.txt")], check=True)
    subprocess.run(["mkdir", "-p", str(mnt / "d/e")], check=True)
    (mnt / "d" / "e" / "f").write_bytes(b"f")
    ls = subprocess.run(["ls", str(mnt)], capture_output=True, text=True, check=True)
    assert ls.stdout.split() == ["d", "hello.txt"]
    cat = subprocess.run(["cat", str(mnt / "hello.txt")], capture_output=True, check=True)
    assert cat.stdout == src.read_bytes()
    assert os.listdir(mnt / "d" / "e") == ["f"]
    assert os.getxattr(mnt / "hello.txt", "user.lexfs.url") == b"example://hello.txt"
    assert "loaded driver plugin %s/lexfs-example.so" % pdir in m.log
    os.unlink(mnt / "hello.txt")
    assert sorted(os.listdir(mnt)) == ["d"]


def test_mount_plugin_from_options(mounter, tmp_path):
    """-o driver=,plugin_dir= and a setting of the plugin's own, no file."""
    pdir = plugin_dir(tmp_path)
    m = mounter(None, opts=["driver=example", "plugin_dir=%s" % pdir,
                            "base_url=https://cdn.test/"])
    mnt = Path(m.path)
    (mnt / "x.bin").write_bytes(b"\x00\x01" * 5000)
    assert (mnt / "x.bin").read_bytes() == b"\x00\x01" * 5000
    assert os.stat(mnt / "x.bin").st_size == 10000
    assert os.getxattr(mnt / "x.bin", "user.lexfs.url") == b"https://cdn.test/x.bin"


def refused_mount(tmp_path, *opts, conf=None):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = dict(os.environ, HOME="/nonexistent-home")
    for k in list(env):
        if k.startswith("LEX_STORAGE__"):
            del env[k]
    o = ["config=%s" % (conf or "none"), "cache_dir=%s" % (tmp_path / "cache")] + list(opts)
    p = subprocess.Popen([lexfs_bin(), str(mnt), "-f", "-o", ",".join(o)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    # A refusal comes before the mount; a mount in the foreground would never exit.
    deadline = time.monotonic() + 60
    while p.poll() is None and time.monotonic() < deadline:
        if _is_mounted(str(mnt)):
            break
        time.sleep(0.05)
    if p.poll() is None:
        p.kill()
        p.communicate()
        subprocess.run(["fusermount3", "-uz", str(mnt)], stderr=subprocess.DEVNULL)
        pytest.fail("a refused plugin was mounted (or lexfs hung)")
    r = subprocess.CompletedProcess(p.args, p.returncode, *p.communicate())
    assert r.returncode == 1, "exit %d: %s" % (r.returncode, r.stderr)
    assert r.stderr.startswith("lexfs: "), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, "not one clear message: " + r.stderr
    assert not any(mark in r.stderr for mark in SANITIZER_MARKS), r.stderr
    assert os.listdir(mnt) == []
    return r.stderr


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_mount_refuses_plugin(tmp_path, case):
    pdir, driver, pattern = refusal_setup(tmp_path, case)
    opts = ["driver=%s" % driver] + (["plugin_dir=%s" % pdir] if pdir else [])
    err = refused_mount(tmp_path, *opts)
    assert re.search(pattern, err), "%r not in: %s" % (pattern, err)
    assert "(storage.driver from -o driver)" in err, err


def test_mount_refuses_plugin_named_in_config_file(tmp_path):
    """From a file, the refusal names the file and line of storage.driver."""
    pdir, driver, pattern = refusal_setup(tmp_path, "wrong_abi")
    conf = write_conf(tmp_path, '  plugin_dir = "%s";\n  driver = "%s";' % (pdir, driver))
    err = refused_mount(tmp_path, conf=conf)
    assert re.search(pattern, err), err
    assert "(storage.driver from %s:3)" % conf in err, err


def test_mount_refuses_bad_driver_name(tmp_path):
    pdir = plugin_dir(tmp_path)
    err = refused_mount(tmp_path, "driver=Ex.ample", "plugin_dir=%s" % pdir)
    assert ("storage.driver (from -o driver): 'Ex.ample' is not a driver name (lower-case "
            "letters, digits and '_')") in err, err
