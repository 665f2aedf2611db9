"""Driver conformance: the same cases on every backend, through lexfs-storetool.

Each case opens a fresh backend (`backend.fresh()`) and one storetool batch process
(the memory driver keeps nothing between processes), runs the commands and checks
what a user of the store would check. A new driver only adds its backend fixture
to BACKEND_NAMES in conftest.py.
"""
import hashlib
import hmac
import json
import os
import urllib.parse
import urllib.request

import pytest

from storetool_session import Session, run_once

try:
    import conftest as _conftest
except ImportError:  # no conftest yet on this branch
    _conftest = None
if _conftest is None or not hasattr(_conftest, "backend_local"):
    from conformance_fixtures import backend, backend_local, backend_memory  # noqa: F401

ENOENT, EACCES, EINVAL = 2, 13, 22
SIGNING_KEY = "conformance-signing-key"
MIB = 1024 * 1024


def own_signer(b):
    """Drivers whose presigned URLs lexfs signs itself (HMAC, urlsign.h)."""
    return b.driver in ("local", "memory")


@pytest.fixture
def st(backend, tmp_path):
    b = backend.fresh()
    s = Session(b)
    s.b = b
    s.tmp = tmp_path
    yield s
    s.close()


def put_bytes(s, key, data, *opts):
    path = s.tmp / ("src-%d" % abs(hash(key)))
    path.write_bytes(data)
    return s.ok("put", key, path, *opts)


def get_bytes(s, key, *rng):
    return s.ok("get", key, *rng).out


def info(s, key):
    return s.ok("info", key).json()


def listing(s, prefix, *opts):
    return s.ok("list", prefix, *opts).json_lines()


# ---- bytes ----------------------------------------------------------------------

def test_put_get_empty(st):
    put_bytes(st, "empty", b"")
    assert get_bytes(st, "empty") == b""
    assert info(st, "empty")["size"] == 0


def test_put_get_one_byte(st):
    put_bytes(st, "one", b"\x00")
    assert get_bytes(st, "one") == b"\x00"


def test_put_get_5mib_random(st):
    data = os.urandom(5 * MIB)
    put_bytes(st, "big/random.bin", data)
    assert get_bytes(st, "big/random.bin") == data


def test_put_replaces_previous(st):
    put_bytes(st, "k", b"first version, longer")
    put_bytes(st, "k", b"second")
    assert get_bytes(st, "k") == b"second"


def test_get_range_middle(st):
    data = os.urandom(100000)
    put_bytes(st, "r", data)
    assert get_bytes(st, "r", 1000, 5000) == data[1000:6000]


def test_get_range_past_end(st):
    data = os.urandom(1000)
    put_bytes(st, "r", data)
    assert get_bytes(st, "r", 900, 500) == data[900:]
    assert get_bytes(st, "r", 5000, 10) == b""


def test_get_range_exact_end(st):
    data = os.urandom(1000)
    put_bytes(st, "r", data)
    assert get_bytes(st, "r", 0, 1000) == data
    assert get_bytes(st, "r", 999, 1) == data[999:]


def test_get_absent_is_enoent(st):
    r = st.run("get", "no/such/key")
    assert r.rc == ENOENT
    assert "LEXFS-002" in r.err


def test_get_absent_exit_status(backend):
    """As a process: exit status is the errno, message names the code."""
    r = run_once(backend.fresh(), "get", "absent-key")
    assert r.returncode == ENOENT
    assert b"lexfs: LEXFS-002" in r.stderr
    assert r.stdout == b""


# ---- info -----------------------------------------------------------------------

def test_info_size_and_etag(st):
    data = b"hello etag\n"
    put_bytes(st, "e", data)
    i = info(st, "e")
    assert i["size"] == len(data)
    assert i["etag"]
    if own_signer(st.b):
        assert i["etag"] == hashlib.md5(data).hexdigest()
    put_bytes(st, "e", b"other bytes")
    assert info(st, "e")["etag"] != i["etag"]


def test_info_content_type(st):
    put_bytes(st, "page.html", b"<p>hi</p>", "--type", "text/html; charset=utf-8")
    assert info(st, "page.html")["content_type"] == "text/html; charset=utf-8"


def test_info_metadata(st):
    put_bytes(st, "m", b"x", "--meta", "mode=33188", "--meta", "uid=1000",
              "--meta", "color=blue")
    meta = info(st, "m")["meta"]
    assert meta.get("mode") == "33188"
    assert meta.get("uid") == "1000"
    assert meta.get("color") == "blue"


def test_info_absent_is_enoent(st):
    assert st.run("info", "absent").rc == ENOENT


def test_exists(st):
    put_bytes(st, "here", b"1")
    assert st.ok("exists", "here").out.strip() == b"1"
    assert st.ok("exists", "not-here").out.strip() == b"0"


def test_set_meta_keeps_bytes(st):
    data = os.urandom(4096)
    put_bytes(st, "sm", data, "--meta", "mode=33188")
    st.ok("set-meta", "sm", "--type", "text/plain", "--meta", "mode=33261")
    i = info(st, "sm")
    assert i["meta"].get("mode") == "33261"
    assert i["content_type"] == "text/plain"
    assert get_bytes(st, "sm") == data


# ---- listing --------------------------------------------------------------------

def test_list_delimiter_prefixes_and_objects(st):
    for k in ("top.txt", "a/1", "a/2", "a/sub/3", "b/4", "c.txt"):
        put_bytes(st, k, k.encode())
    items = listing(st, "")
    assert [(i["key"], bool(i.get("prefix"))) for i in items] == [
        ("a/", True), ("b/", True), ("c.txt", False), ("top.txt", False)]
    items = listing(st, "a/")
    assert [(i["key"], bool(i.get("prefix"))) for i in items] == [
        ("a/1", False), ("a/2", False), ("a/sub/", True)]
    assert [i["size"] for i in items if not i.get("prefix")] == [3, 3]


def test_list_name_prefix(st):
    for k in ("log-1", "log-2", "logs/x", "other"):
        put_bytes(st, k, b"x")
    keys = [i["key"] for i in listing(st, "log")]
    assert keys == ["log-1", "log-2", "logs/"]


def test_list_recursive(st):
    keys = ["a/1", "a/b/2", "a/b/c/3", "a.txt", "z"]
    for k in keys:
        put_bytes(st, k, b"x")
    got = [i["key"] for i in listing(st, "", "--recursive")]
    assert got == sorted(keys)
    got = [i["key"] for i in listing(st, "a/", "--recursive")]
    assert got == ["a/1", "a/b/2", "a/b/c/3"]


def test_list_pagination_2500_keys(backend, tmp_path):
    b = backend.fresh()
    # fsync per object is the local driver's durability, not what this case checks
    s = Session(b, extra={"fsync": "false"} if b.driver == "local" else None)
    try:
        src = tmp_path / "one"
        src.write_bytes(b"p")
        keys = ["page/k%05d" % i for i in range(2500)]
        for k in keys:
            s.ok("put", k, src)
        lines = s.ok("list", "page/", "--max-keys", "1000", "--pages").json_lines()
        pages = [line for line in lines if "page" in line]
        got = [line["key"] for line in lines if "key" in line]
        assert len(pages) >= 3
        assert all(p["count"] <= 1000 for p in pages)
        assert got == keys  # every key once, in order
        got = [line["key"] for line in s.ok("list", "page/", "--recursive", "--max-keys",
                                            "700").json_lines()]
        assert got == keys
    finally:
        s.close()


def test_list_empty_prefix_is_empty(st):
    assert listing(st, "nothing/here/") == []


def test_directory_marker(st):
    put_bytes(st, "dir/", b"")
    assert info(st, "dir/")["size"] == 0
    assert [i["key"] for i in listing(st, "")] == ["dir/"]
    st.ok("rm", "dir/")
    assert st.run("info", "dir/").rc == ENOENT
    assert listing(st, "") == []


# ---- remove / copy / move -------------------------------------------------------

def test_rm_absent_ok(st):
    assert st.run("rm", "never-existed").rc == 0


def test_rm_then_get_enoent(st):
    put_bytes(st, "gone", b"bytes")
    st.ok("rm", "gone")
    assert st.run("get", "gone").rc == ENOENT
    assert listing(st, "") == []


def test_rm_many(st):
    for k in ("m/1", "m/2", "m/3"):
        put_bytes(st, k, b"x")
    st.ok("rm", "m/1", "m/3", "m/absent")
    assert [i["key"] for i in listing(st, "m/")] == ["m/2"]


def test_cp_keeps_bytes_and_meta(st):
    data = os.urandom(70000)
    put_bytes(st, "src", data, "--type", "image/png", "--meta", "mode=33188")
    st.ok("cp", "src", "dir/dst")
    assert get_bytes(st, "dir/dst") == data
    i = info(st, "dir/dst")
    assert i["content_type"] == "image/png"
    assert i["meta"].get("mode") == "33188"
    assert get_bytes(st, "src") == data


def test_cp_absent_is_enoent(st):
    assert st.run("cp", "absent", "dst").rc == ENOENT


def test_mv_removes_source(st):
    data = os.urandom(1000)
    put_bytes(st, "from/x", data, "--meta", "uid=7")
    st.ok("mv", "from/x", "to/y")
    assert get_bytes(st, "to/y") == data
    assert info(st, "to/y")["meta"].get("uid") == "7"
    assert st.run("get", "from/x").rc == ENOENT
    assert [i["key"] for i in listing(st, "")] == ["to/"]


# ---- multipart ------------------------------------------------------------------

def test_multipart_three_parts_out_of_order(st):
    part = 5 * MIB  # the smallest part every backend accepts
    data = os.urandom(2 * part + 12345)
    path = st.tmp / "mpu"
    path.write_bytes(data)
    r = st.ok("mpu", "multi/obj", part, path, "--order", "reverse", "--type",
              "application/x-test", "--meta", "mode=33188").json()
    assert r["parts"] == 3
    assert get_bytes(st, "multi/obj") == data
    i = info(st, "multi/obj")
    assert i["size"] == len(data)
    assert i["content_type"] == "application/x-test"
    assert i["meta"].get("mode") == "33188"


def test_multipart_ranges_across_part_boundaries(st):
    part = 5 * MIB
    data = os.urandom(3 * part + 777)
    path = st.tmp / "mpu3"
    path.write_bytes(data)
    st.ok("mpu", "multi/ranges", part, path)
    for off, n in [(part - 10, 20), (part - 1, part + 2), (0, 3 * part + 777),
                   (2 * part, part), (3 * part + 700, 500), (3 * part + 777, 10)]:
        assert get_bytes(st, "multi/ranges", off, n) == data[off:off + n], (off, n)


# ---- odd keys -------------------------------------------------------------------

ODD_KEYS = ["with space.txt", "plus+sign", "per%cent", "unicod\u00e9/\u65e5\u672c",
            "tilde~x", "eq=ual", "amp&ersand", "q?mark", "hash#tag", "semi;colon"]


def test_odd_keys_roundtrip(st):
    for k in ODD_KEYS:
        put_bytes(st, k, k.encode())
    for k in ODD_KEYS:
        assert get_bytes(st, k) == k.encode(), k
    assert sorted(i["key"] for i in listing(st, "", "--recursive")) == sorted(ODD_KEYS)


def test_odd_keys_info_and_rm(st):
    for k in ODD_KEYS:
        put_bytes(st, k, b"12")
        assert info(st, k)["size"] == 2
        st.ok("rm", k)
        assert st.run("info", k).rc == ENOENT


# ---- URLs -----------------------------------------------------------------------

def test_url(st):
    key = "dir/file name.txt"
    url = st.ok("url", key).out.decode().strip()
    assert url.endswith("dir/file%20name.txt")
    if st.b.driver == "local":
        base = st.b.settings.get("base_url", "http://localhost:8000/storage")
        assert url == base.rstrip("/") + "/dir/file%20name.txt"
    if st.b.driver == "memory":
        assert url == "mem://dir/file%20name.txt"


def _signed_session(backend):
    b = backend.fresh()
    extra = {"signing_key": SIGNING_KEY} if own_signer(b) else None
    return b, Session(b, extra=extra)


def _check_hmac(url, key):
    """Recompute the documented signature: HMAC-SHA256(key, METHOD\\nKEY\\nEXPIRES)."""
    path, _, query = url.partition("?")
    q = urllib.parse.parse_qs(query)
    msg = "%s\n%s\n%s" % (q["X-Lexfs-Method"][0], key, q["X-Lexfs-Expires"][0])
    want = hmac.new(SIGNING_KEY.encode(), msg.encode(), hashlib.sha256).hexdigest()
    assert q["X-Lexfs-Signature"][0] == want
    assert path.endswith(urllib.parse.quote(key, safe="/~"))


def test_presign_get_then_verify(backend, tmp_path):
    b, s = _signed_session(backend)
    try:
        key = "shared/photo 1.jpg"
        data = os.urandom(2048)
        src = tmp_path / "p"
        src.write_bytes(data)
        s.ok("put", key, src)
        url = s.ok("presign", key, "GET", 300).out.decode().strip()
        if own_signer(b):
            assert "X-Lexfs-Method=GET" in url
            _check_hmac(url, key)
            assert s.run("verify-url", url).rc == 0
        else:
            with urllib.request.urlopen(url, timeout=30) as resp:
                assert resp.read() == data
    finally:
        s.close()


def test_presign_tampered_is_refused(backend, tmp_path):
    b, s = _signed_session(backend)
    try:
        src = tmp_path / "p"
        src.write_bytes(b"secret")
        s.ok("put", "t/a", src)
        url = s.ok("presign", "t/a", "GET", 300).out.decode().strip()
        tampered = url.replace("t/a?", "t/b?")
        if own_signer(b):
            r = s.run("verify-url", tampered)
            assert r.rc == EACCES
            assert "LEXFS-009" in r.err
        else:
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(tampered, timeout=30)
            assert e.value.code in (401, 403)
    finally:
        s.close()


def test_presign_expiry_limit(st):
    put_bytes(st, "x", b"1")
    if own_signer(st.b):
        assert st.run("presign", "x", "GET", 10 ** 9).rc == EINVAL
    assert st.ok("presign", "x", "PUT", 60).out.strip()


# ---- health and stats -----------------------------------------------------------

def test_health(st):
    assert st.ok("health").out.strip() == b"ok"


def test_stats_count_calls(st):
    put_bytes(st, "s", b"1")
    get_bytes(st, "s")
    stats = json.loads(st.ok("stats").out)
    text = json.dumps(stats)
    assert "upload" in text and "download" in text
