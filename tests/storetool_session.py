"""Drive lexfs-storetool from tests: one `batch` process per session.

The memory driver keeps nothing between processes, so every conformance case runs
its commands through one long-lived `lexfs-storetool ... batch` (see tests/storetool.c
for the framing). Session.run() returns a Result with the exit status the command
would have had (rc), its stdout bytes (out) and its stderr text (err).
"""
import json
import os
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                   "UndefinedBehaviorSanitizer")


def storetool_bin():
    return str(Path(os.environ.get("LEXFS_BUILD", str(ROOT))).resolve() / "lexfs-storetool")


class Result:
    def __init__(self, rc, out, err):
        self.rc = rc
        self.out = out
        self.err = err

    def json(self):
        return json.loads(self.out)

    def json_lines(self):
        return [json.loads(line) for line in self.out.decode().splitlines() if line]

    def __repr__(self):
        return "Result(rc=%d, out=%r, err=%r)" % (self.rc, self.out[:200], self.err)


def base_command(backend, extra=None):
    cmd = [storetool_bin(), "--driver", backend.driver]
    settings = dict(backend.settings)
    settings.update(extra or {})
    for k, v in settings.items():
        cmd += ["--set", "%s=%s" % (k, v)]
    return cmd


def env_for(backend):
    env = dict(os.environ)
    env.update(backend.env)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


def run_once(backend, *args, extra=None, input=None):
    """One storetool process: CompletedProcess with bytes output."""
    cmd = base_command(backend, extra) + [str(a) for a in args]
    r = subprocess.run(cmd, capture_output=True, input=input, env=env_for(backend),
                       timeout=300)
    err = r.stderr.decode(errors="replace")
    assert not any(m in err for m in SANITIZER_MARKS), err
    return r


class Session:
    def __init__(self, backend, extra=None):
        self.backend = backend
        self._errfile = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(base_command(backend, extra) + ["batch"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._errfile, env=env_for(backend))

    def run(self, *args):
        line = json.dumps([str(a) for a in args]) + "\n"
        try:
            self.proc.stdin.write(line.encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise AssertionError("storetool batch died: %s" % self.stderr())
        head = self.proc.stdout.readline().decode()
        if not head.startswith("@@ "):
            raise AssertionError("storetool batch: bad frame %r; stderr: %s"
                                 % (head, self.stderr()))
        fields = dict(kv.split("=", 1) for kv in head[3:].split())
        out = self._read(int(fields["out"]))
        err = self._read(int(fields["err"])).decode(errors="replace")
        return Result(int(fields["rc"]), out, err)

    def ok(self, *args):
        r = self.run(*args)
        assert r.rc == 0, "storetool %s failed: %r" % (" ".join(map(str, args)), r)
        return r

    def _read(self, n):
        data = b""
        while len(data) < n:
            chunk = self.proc.stdout.read(n - len(data))
            if not chunk:
                raise AssertionError("storetool batch: short frame")
            data += chunk
        return data

    def stderr(self):
        self._errfile.seek(0)
        return self._errfile.read().decode(errors="replace")

    def close(self):
        """End the batch; fail on a non-zero exit or a sanitizer report."""
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(120)
        self.proc.stdout.close()
        err = self.stderr()
        self._errfile.close()
        assert self.proc.returncode == 0, "storetool batch exited %d: %s" % (
            self.proc.returncode, err)
        assert not any(m in err for m in SANITIZER_MARKS), err
