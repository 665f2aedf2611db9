"""What a listing costs: `ls -l` of N files uses the listing's attributes."""
import json
import os
import stat
from pathlib import Path

from conftest import run


def store_ops(m):
    return json.loads(os.getxattr(m.path, "user.lexfs.stats"))["store"]["ops"]


def test_ls_l_costs_no_head_per_file(pmnt):
    n = 60
    for i in range(n):
        Path(pmnt.path, "f%03d" % i).write_bytes(b"x" * i)
    os.chmod(pmnt.path + "/f007", 0o600)
    pmnt.remount()  # nothing cached by the kernel or the daemon
    before = store_ops(pmnt)
    out = run(["ls", "-l", pmnt.path]).stdout.splitlines()
    after = store_ops(pmnt)
    assert len(out) == n + 1
    line7 = [l for l in out if l.endswith(" f007")][0]
    assert line7.startswith("-rw------- ") and " 7 " in line7
    heads = after["info"]["calls"] - before["info"]["calls"]
    lists = after["list"]["calls"] - before["list"]["calls"]
    # The driver's listing carries metadata: no HEAD per file.
    assert heads < 5, "ls -l of %d files cost %d HEADs" % (n, heads)
    assert lists <= 3


def test_root_is_a_directory_with_mount_defaults(mnt):
    st = os.stat(mnt.path)
    assert stat.S_ISDIR(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o755
    assert st.st_uid == os.getuid()
