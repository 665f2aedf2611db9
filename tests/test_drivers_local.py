"""Local driver: on-disk layout, persistence across processes, path safety, signing key."""
import json
import os
import stat

import pytest

from storetool_session import run_once

EINVAL = 22


class Local:
    name = driver = "local"
    env = {}

    def __init__(self, root, **settings):
        self.source = str(root)
        self.settings = {"root_dir": str(root)}
        self.settings.update(settings)


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    r.mkdir()
    return r


def tool(root, *args, **settings):
    return run_once(Local(root, **settings), *args)


def ok(root, *args, **settings):
    r = tool(root, *args, **settings)
    assert r.returncode == 0, r.stderr.decode()
    return r


def test_objects_are_plain_files(root, tmp_path):
    src = tmp_path / "f"
    src.write_bytes(b"plain bytes")
    ok(root, "put", "dir/sub/file.txt", src)
    assert (root / "dir" / "sub" / "file.txt").read_bytes() == b"plain bytes"


def test_data_persists_across_processes(root, tmp_path):
    src = tmp_path / "f"
    src.write_bytes(os.urandom(10000))
    ok(root, "put", "k", src, "--type", "text/csv", "--meta", "mode=33188")
    info = json.loads(ok(root, "info", "k").stdout)
    assert info["content_type"] == "text/csv"
    assert info["meta"] == {"mode": "33188"}
    assert ok(root, "get", "k").stdout == src.read_bytes()


def test_file_written_behind_lexfs_is_an_object(root):
    (root / "external.bin").write_bytes(b"made by someone else")
    info = json.loads(ok(root, "info", "external.bin").stdout)
    assert info["size"] == 20
    assert info["content_type"] == "application/octet-stream"
    assert info["meta"] == {}


def test_stale_sidecar_is_ignored(root, tmp_path):
    src = tmp_path / "f"
    src.write_bytes(b"v1")
    ok(root, "put", "k", src, "--meta", "color=red")
    os.unlink(root / "k")  # replaced behind lexfs's back: a new inode
    (root / "k").write_bytes(b"v2 from outside")
    info = json.loads(ok(root, "info", "k").stdout)
    assert info["meta"] == {}
    assert info["size"] == 15


def test_reserved_dir_never_listed(root, tmp_path):
    src = tmp_path / "f"
    src.write_bytes(b"x")
    ok(root, "put", "a", src)
    assert (root / ".lexfs").is_dir()
    keys = [json.loads(l)["key"] for l in ok(root, "list", "", "--recursive").stdout.split()]
    assert keys == ["a"]
    r = tool(root, "get", ".lexfs/signing.key")
    assert r.returncode == EINVAL
    assert b"LEXFS-006" in r.stderr


@pytest.mark.parametrize("key", ["../escape", "a/../../escape", "/etc/passwd", "a//b",
                                 "./a", "x/./y"])
def test_escaping_key_refused(root, tmp_path, key):
    src = tmp_path / "f"
    src.write_bytes(b"x")
    r = tool(root, "put", key, src)
    assert r.returncode == EINVAL
    assert b"LEXFS-006" in r.stderr
    assert not (tmp_path / "escape").exists()


def test_symlink_out_of_root_refused(root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    os.symlink(str(outside), str(root / "link"))
    r = tool(root, "get", "link/secret")
    assert r.returncode == EINVAL
    assert r.stdout == b""
    src = tmp_path / "f"
    src.write_bytes(b"x")
    assert tool(root, "put", "link/new", src).returncode == EINVAL
    assert not (outside / "new").exists()


def test_generated_signing_key_is_private_and_stable(root, tmp_path):
    src = tmp_path / "f"
    src.write_bytes(b"x")
    ok(root, "put", "k", src)
    url = ok(root, "presign", "k", "GET", 60).stdout.decode().strip()
    keyfile = root / ".lexfs" / "signing.key"
    assert stat.S_IMODE(os.stat(keyfile).st_mode) == 0o600
    # another process (another mount) verifies it with the same stored key
    assert tool(root, "verify-url", url).returncode == 0
    assert tool(root, "verify-url", url.replace("k?", "j?")).returncode == 13


def test_configured_signing_key_wins(root, tmp_path):
    src = tmp_path / "f"
    src.write_bytes(b"x")
    ok(root, "put", "k", src)
    url = ok(root, "presign", "k", "GET", 60, signing_key="one").stdout.decode().strip()
    assert tool(root, "verify-url", url, signing_key="one").returncode == 0
    assert tool(root, "verify-url", url, signing_key="two").returncode == 13


def test_base_url_setting(root):
    url = ok(root, "url", "a b", base_url="https://files.example.test/x").stdout
    assert url.decode().strip() == "https://files.example.test/x/a%20b"


def test_empty_dirs_pruned_after_last_object(root, tmp_path):
    src = tmp_path / "f"
    src.write_bytes(b"x")
    ok(root, "put", "p/q/r", src)
    ok(root, "rm", "p/q/r")
    assert not (root / "p").exists()


def test_explicit_marker_survives_removal_of_children(root, tmp_path):
    src = tmp_path / "f"
    src.write_bytes(b"x")
    empty = tmp_path / "e"
    empty.write_bytes(b"")
    ok(root, "put", "d/", empty)
    ok(root, "put", "d/child", src)
    ok(root, "rm", "d/child")
    assert (root / "d").is_dir()
    assert json.loads(ok(root, "info", "d/").stdout)["size"] == 0


def test_no_temp_files_left(root, tmp_path):
    src = tmp_path / "f"
    src.write_bytes(os.urandom(3 * 1024 * 1024))
    ok(root, "put", "a", src)
    ok(root, "mpu", "b", 1024 * 1024, src, "--order", "reverse")
    ok(root, "cp", "a", "c")
    assert os.listdir(root / ".lexfs" / "tmp") == []
    assert os.listdir(root / ".lexfs" / "mpu") == []


def test_missing_parent_of_root_is_clear_error(tmp_path):
    r = run_once(Local(tmp_path / "no" / "such" / "root"), "health")
    assert r.returncode == 2
    assert b"root_dir" in r.stderr
