"""Run every C unit test of the build (the TESTS of Makefile.am) and require exit 0.

The list comes from the build's own Makefile, so a unit test added to any
tests/local.mk fragment is picked up here without editing this file. The programs
are built first with `make check TESTS=` (builds check_PROGRAMS, runs nothing).
"""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")


def _build_dir():
    return Path(os.environ.get("LEXFS_BUILD", str(ROOT))).resolve()


def _unit_tests():
    rule = "lexfs-print-tests:\n\t@echo $(TESTS)\n"
    try:
        r = subprocess.run(["make", "-s", "--no-print-directory", "-C", str(_build_dir()),
                            "-f", "Makefile", "-f", "-", "lexfs-print-tests"],
                           input=rule, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return ["<cannot list unit tests: %s>" % e]
    if r.returncode != 0:
        return ["<cannot list unit tests: %s>" % r.stderr.strip()]
    return r.stdout.split() or ["<no unit tests in the Makefile>"]


@pytest.fixture(scope="session")
def built_unit_tests():
    r = subprocess.run(["make", "-C", str(_build_dir()), "-j2", "check", "TESTS="],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, "building the unit tests failed:\n" + r.stdout[-3000:] + \
        r.stderr[-3000:]
    return _build_dir()


@pytest.mark.parametrize("name", _unit_tests())
def test_unit_program(name, built_unit_tests):
    assert not name.startswith("<"), name
    prog = built_unit_tests / name
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    r = subprocess.run([str(prog)], capture_output=True, text=True, timeout=300, env=env,
                       cwd=str(built_unit_tests))
    out = r.stdout + r.stderr
    assert r.returncode == 0, "%s exited %d:\n%s" % (name, r.returncode, out[-5000:])
    assert not any(m in out for m in SANITIZER_MARKS), out[-5000:]
