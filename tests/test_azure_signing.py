"""Azure Shared Key and service SAS: lexfs's C code against the Azure SDK for Python.

tests/unit/azure_dump prints what src/azure_auth.c computes for a fixed request at a
fixed time; the same input goes through Debian's python3-azure (azure.storage.blob's
SharedKeyCredentialPolicy and generate_blob_sas), and the two must agree byte for byte.
No server is involved.
"""
import calendar
import datetime
import json
import os
import subprocess

import pytest

from conftest import build_dir

from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.pipeline.transport import HttpRequest
from azure.storage.blob import BlobSasPermissions, generate_blob_sas
from azure.storage.blob._shared.authentication import SharedKeyCredentialPolicy

ACCOUNT = "devstoreaccount1"
KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
       "KBHBeksoGMGw==")
# A different, made-up account and key, so nothing depends on the emulator's values.
OTHER_ACCOUNT = "lexfsacct"
OTHER_KEY = "bGV4ZnMgdGVzdCBrZXksIG5vdCBhIHJlYWwgc2VjcmV0IGF0IGFsbCEhIQ=="
DATE = "Tue, 02 Jan 2024 03:04:05 GMT"


def dump(*args, env=None):
    exe = str(build_dir() / "tests" / "unit" / "azure_dump")
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("AZURE_STORAGE_"):
            del e[k]
    e.update(env or {})
    r = subprocess.run([exe] + [str(a) for a in args], capture_output=True, text=True,
                       env=e, timeout=30)
    assert r.stdout, r.stderr
    return json.loads(r.stdout), r.returncode


def sdk_sign(account, key, method, url, headers):
    """(string to sign, Authorization) as the SDK computes them."""
    captured = {}

    class Capture(SharedKeyCredentialPolicy):
        def _add_authorization_header(self, request, string_to_sign):
            captured["sts"] = string_to_sign
            super()._add_authorization_header(request, string_to_sign)

    req = HttpRequest(method, url, headers=dict(headers))
    Capture(account, key).on_request(PipelineRequest(req, PipelineContext(None)))
    return captured["sts"], req.headers["Authorization"]


def c_sign(account, key, method, url, headers, content_length):
    out, rc = dump("sharedkey", account, key, method, url, content_length,
                   *["%s: %s" % kv for kv in headers.items()])
    assert rc == 0
    return out["string_to_sign"], out["authorization"]


CASES = [
    # Put Blob with a content type, metadata and an encoded name (emulator path style)
    ("PUT", "http://127.0.0.1:10000/devstoreaccount1/cont/dir/a%20b%2Bc.txt",
     {"x-ms-version": "2021-12-02", "x-ms-date": DATE, "x-ms-blob-type": "BlockBlob",
      "x-ms-blob-content-type": "text/plain", "x-ms-meta-mode": "33188",
      "x-ms-meta-lexfs_h_757365722d746167": "v", "Content-Length": "11"}, 11),
    # Put Block: query parameters are part of the canonicalized resource
    ("PUT", "https://lexfsacct.blob.core.windows.net/cont/big.bin?comp=block&"
            "blockid=MDEyMzQ1Njc4OWFiY2RlZi0wMDAwMDAx",
     {"x-ms-version": "2021-12-02", "x-ms-date": DATE, "Content-Length": "4194304"},
     4194304),
    # List Blobs: several query parameters, one percent-encoded, sorted by name
    ("GET", "https://lexfsacct.blob.core.windows.net/cont?restype=container&comp=list&"
            "prefix=a%2Fb%20c%2F&delimiter=%2F&maxresults=1000&include=metadata",
     {"x-ms-version": "2021-12-02", "x-ms-date": DATE}, 0),
    # Ranged Get Blob with a precondition
    ("GET", "https://lexfsacct.blob.core.windows.net/cont/x",
     {"x-ms-version": "2021-12-02", "x-ms-date": DATE, "x-ms-range": "bytes=5-1048580",
      "If-Match": '"0x8DC0000000000"'}, 0),
    # Copy Blob: a header whose value is a URL
    ("PUT", "https://lexfsacct.blob.core.windows.net/cont/dst",
     {"x-ms-version": "2021-12-02", "x-ms-date": DATE,
      "x-ms-copy-source": "https://lexfsacct.blob.core.windows.net/cont/src%20file"}, 0),
    # Delete with an empty body
    ("DELETE", "https://lexfsacct.blob.core.windows.net/cont/gone",
     {"x-ms-version": "2021-12-02", "x-ms-date": DATE}, 0),
]


@pytest.mark.parametrize("method,url,headers,length", CASES,
                         ids=["put-blob", "put-block", "list", "range-get", "copy", "delete"])
def test_sharedkey_matches_sdk(method, url, headers, length):
    account, key = (ACCOUNT, KEY) if "127.0.0.1" in url else (OTHER_ACCOUNT, OTHER_KEY)
    sdk_sts, sdk_auth = sdk_sign(account, key, method, url, headers)
    sts, auth = c_sign(account, key, method, url, headers, length)
    assert sts == sdk_sts
    assert auth == sdk_auth
    assert auth.startswith("SharedKey %s:" % account)


def test_sharedkey_changes_with_key():
    method, url, headers, length = CASES[0]
    _, a1 = c_sign(ACCOUNT, KEY, method, url, headers, length)
    _, a2 = c_sign(ACCOUNT, OTHER_KEY, method, url, headers, length)
    assert a1 != a2


def epoch(dt):
    return calendar.timegm(dt.timetuple())


@pytest.mark.parametrize("perm,sdk_perm", [
    ("r", BlobSasPermissions(read=True)),
    ("cw", BlobSasPermissions(create=True, write=True)),
])
@pytest.mark.parametrize("blob", ["file.txt", "dir/sub/a b+c&d=e.bin", "unicode-\u00e9t\u00e9"])
def test_blob_sas_matches_generate_blob_sas(perm, sdk_perm, blob):
    start = datetime.datetime(2024, 1, 2, 3, 4, 5)
    expiry = datetime.datetime(2024, 1, 3, 4, 5, 6)
    want = generate_blob_sas(OTHER_ACCOUNT, "cont", blob, account_key=OTHER_KEY,
                             permission=sdk_perm, start=start, expiry=expiry)
    out, rc = dump("sas", OTHER_ACCOUNT, OTHER_KEY, "cont", blob, perm, epoch(start),
                   epoch(expiry))
    assert rc == 0
    assert out["query"] == want


def test_blob_sas_with_encryption_scope_matches():
    start = datetime.datetime(2024, 5, 6, 7, 8, 9)
    expiry = datetime.datetime(2024, 5, 6, 8, 8, 9)
    want = generate_blob_sas(OTHER_ACCOUNT, "cont", "k", account_key=OTHER_KEY,
                             permission=BlobSasPermissions(read=True), start=start,
                             expiry=expiry, encryption_scope="scope1")
    out, rc = dump("sas", OTHER_ACCOUNT, OTHER_KEY, "cont", "k", "r", epoch(start),
                   epoch(expiry), "scope1")
    assert rc == 0
    assert out["query"] == want


# ---- credentials and endpoints ----

def test_connection_string_emulator_style():
    cs = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=%s;"
          "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;" % KEY)
    out, rc = dump("creds", "connection_string=" + cs, "container=c1")
    assert rc == 0
    assert out["mode"] == "sharedkey"
    assert out["account"] == ACCOUNT
    assert out["key"] == KEY
    assert out["endpoint"] == "http://127.0.0.1:10000/devstoreaccount1"
    assert out["container"] == "c1"
    assert KEY not in out["origin"]


def test_connection_string_default_endpoint_from_suffix():
    cs = ("DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey=%s;"
          "EndpointSuffix=core.usgovcloudapi.net" % OTHER_KEY)
    out, rc = dump("creds", "connection_string=" + cs)
    assert rc == 0
    assert out["endpoint"] == "https://acct1.blob.core.usgovcloudapi.net"


def test_connection_string_from_environment():
    cs = "AccountName=envacct;AccountKey=%s" % OTHER_KEY
    out, rc = dump("creds", env={"AZURE_STORAGE_CONNECTION_STRING": cs})
    assert rc == 0
    assert out["account"] == "envacct"
    assert out["endpoint"] == "https://envacct.blob.core.windows.net"
    assert out["origin"] == "env AZURE_STORAGE_CONNECTION_STRING"


def test_account_and_key_from_environment():
    out, rc = dump("creds", env={"AZURE_STORAGE_ACCOUNT": "a2", "AZURE_STORAGE_KEY": OTHER_KEY})
    assert rc == 0
    assert (out["mode"], out["account"], out["key"]) == ("sharedkey", "a2", OTHER_KEY)


def test_sas_token_from_environment_strips_question_mark():
    out, rc = dump("creds", env={"AZURE_STORAGE_ACCOUNT": "a3",
                                 "AZURE_STORAGE_SAS_TOKEN": "?sv=2021-12-02&sig=abc"})
    assert rc == 0
    assert out["mode"] == "sas"
    assert out["sas_token"] == "sv=2021-12-02&sig=abc"


def test_settings_win_over_environment():
    out, rc = dump("creds", "account=fromsettings", "account_key=" + KEY,
                   env={"AZURE_STORAGE_ACCOUNT": "fromenv", "AZURE_STORAGE_KEY": OTHER_KEY})
    assert rc == 0
    assert (out["account"], out["key"]) == ("fromsettings", KEY)


def test_endpoint_override_keeps_path_style():
    out, rc = dump("creds", "account=devstoreaccount1", "account_key=" + KEY,
                   "endpoint=http://127.0.0.1:10000/devstoreaccount1/")
    assert rc == 0
    assert out["endpoint"] == "http://127.0.0.1:10000/devstoreaccount1"


def test_bad_key_is_refused_without_echoing_it():
    out, rc = dump("creds", "account=a", "account_key=not*base64!")
    assert rc != 0
    assert "account_key" in out["error"] or "account key" in out["error"]
    assert "not*base64!" not in out["error"]


def test_no_account_is_refused_with_advice():
    out, rc = dump("creds")
    assert rc != 0
    assert "AZURE_STORAGE_CONNECTION_STRING" in out["error"]


def test_anonymous_needs_no_secret():
    out, rc = dump("creds", "account=pub", "anonymous=true")
    assert rc == 0
    assert out["mode"] == "anonymous"
    assert out["endpoint"] == "https://pub.blob.core.windows.net"


# ---- metadata names ----

@pytest.mark.parametrize("name", ["mode", "uid", "mtime", "user_x", "user-tag", "9lives",
                                  "lexfs_h_41", "a-b-c", "_ok"])
def test_metadata_names_round_trip(name):
    out, rc = dump("metaname", name)
    assert rc == 0
    assert out["decoded"] == name
    enc = out["encoded"]
    assert enc[0].isalpha() or enc[0] == "_"
    assert all(c.isalnum() or c == "_" for c in enc)


def test_identifier_names_are_stored_unchanged():
    for name in ("mode", "uid", "gid", "mtime"):
        out, _ = dump("metaname", name)
        assert out["encoded"] == name


# ---- listing and error XML ----

LIST_XML = """<?xml version="1.0" encoding="utf-8"?>
<EnumerationResults ServiceEndpoint="http://127.0.0.1/devstoreaccount1" ContainerName="c">
<Prefix>p/</Prefix><Delimiter>/</Delimiter><Blobs>
<BlobPrefix><Name>p/sub/</Name></BlobPrefix>
<Blob><Name>p/a.txt</Name><Properties><Last-Modified>Tue, 02 Jan 2024 03:04:05 GMT</Last-Modified>
<Etag>0x8DC1234</Etag><Content-Length>11</Content-Length><Content-Type>text/plain</Content-Type>
</Properties><Metadata><mode>33188</mode><lexfs_h_757365722d746167>v</lexfs_h_757365722d746167>
</Metadata></Blob>
<Blob><Name Encoded="true">p/odd%EF%BF%BE</Name><Properties><Content-Length>x</Content-Length></Properties></Blob>
<Blob><Name>other/skip</Name><Properties/></Blob>
</Blobs><NextMarker>2!72!token</NextMarker></EnumerationResults>"""


def test_list_xml_parse(tmp_path):
    f = tmp_path / "list.xml"
    f.write_text(LIST_XML)
    out, rc = dump("list", f, "p/")
    assert rc == 0
    items = {i["key"]: i for i in out["items"]}
    assert [i["key"] for i in out["items"]] == sorted(items)
    assert set(items) == {"sub/", "a.txt", "odd\ufffe"}
    assert items["sub/"]["is_prefix"]
    a = items["a.txt"]
    assert (a["size"], a["etag"], a["content_type"]) == (11, "0x8DC1234", "text/plain")
    assert a["mtime"] == epoch(datetime.datetime(2024, 1, 2, 3, 4, 5))
    assert a["meta"] == {"mode": "33188", "user-tag": "v"}
    assert items["odd\ufffe"]["size"] == 0  # unparsable number -> 0, no crash
    assert out["next"] == "2!72!token"


@pytest.mark.parametrize("junk", ["", "not xml", "<Error/>", "<a><b></a>",
                                  "<EnumerationResults><Blobs><Blob/></Blobs>"])
def test_list_xml_garbage_is_an_error_not_a_crash(tmp_path, junk):
    f = tmp_path / "junk.xml"
    f.write_text(junk)
    out, rc = dump("list", f, "")
    if rc == 0:
        assert out["items"] == []
    else:
        assert out["error"] == -5  # -EIO


def test_error_xml_parse(tmp_path):
    f = tmp_path / "err.xml"
    f.write_text('<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthorizationFailure'
                 '</Code><Message>Server failed to authenticate the request.\n'
                 'RequestId:abc\nTime:2024</Message></Error>')
    out, rc = dump("error", f)
    assert rc == 0
    assert out == {"code": "AuthorizationFailure",
                   "message": "Server failed to authenticate the request."}
