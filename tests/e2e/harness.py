"""Black-box test harness: starts the real `candado serve` binary on a free port and
speaks HTTP to it with the standard library's http.client (a real HTTP client).

Every e2e test file does `from harness import Server, ...`. The binary comes from
$CANDADO_BIN (set by CTest), else build/candado.
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("CANDADO_BIN") or os.path.join(ROOT, "build", "candado")
# Under ASan/UBSan everything is slower: tests scale their waits by this.
SLOW = 3.0 if os.environ.get("CANDADO_SANITIZE", "").lower() in ("1", "on", "true") else 1.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "Response(%d, %r)" % (self.status, self.body[:300])


class Server:
    """A running `candado serve`. Use as a context manager or call start()/stop()."""

    def __init__(self, *args, env=None):
        self.args = list(args)
        self.env = dict(os.environ)
        self.env.pop("CANDADO_ADMIN_TOKEN", None)
        if env:
            self.env.update(env)
        self.port = None
        self.proc = None
        self.log = b""

    def start(self):
        self.port = free_port()
        cmd = [BIN, "serve", "--port", str(self.port)] + self.args
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 10 * SLOW
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("candado exited early: %r" % self.proc.stdout.read())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("candado did not start listening on %d" % self.port)

    def stop(self, sig=signal.SIGTERM):
        """Stops the server and returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=10 * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log = self.proc.stdout.read()
        self.proc.stdout.close()
        code = self.proc.returncode
        self.proc = None
        return code

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        code = self.stop()
        # A sanitizer report or a crash fails the test that caused it.
        if code not in (0, None) or b"ERROR: AddressSanitizer" in self.log \
                or b"runtime error:" in self.log:
            raise AssertionError("candado exited with %r; log:\n%s"
                                 % (code, self.log.decode("utf-8", "replace")[-4000:]))

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout * SLOW)

    def request(self, method, path, body=None, headers=None, conn=None, timeout=10):
        """One request. `body` may be bytes, str or a JSON-able object."""
        hdrs = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode("utf-8")
        own = conn is None
        c = conn or self.conn(timeout)
        try:
            c.request(method, path, body=body, headers=hdrs)
            r = c.getresponse()
            return Response(r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read())
        finally:
            if own:
                c.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # Shorthands for the lock API.
    def acquire(self, resource, client_id="test-client", ttl=None, wait=None, **kw):
        body = {"resource": resource, "clientId": client_id}
        if ttl is not None:
            body["ttl"] = ttl
        if wait is not None:
            body["wait"] = wait
        return self.post("/api/locks/acquire", body, **kw)

    def release(self, resource, token, **kw):
        return self.post("/api/locks/release", {"resource": resource, "token": token}, **kw)

    def raw(self, data, read_timeout=5, shutdown=False):
        """Sends raw bytes on a new socket and returns all bytes until the server closes
        or read_timeout passes."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=read_timeout * SLOW)
        try:
            s.sendall(data)
            if shutdown:
                s.shutdown(socket.SHUT_WR)
            out = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                out += chunk
            return out
        finally:
            s.close()


def main():
    unittest.main(verbosity=2)


# ---------------------------------------------------------------------------
# Helpers shared by the e2e suites (added after the original harness; the names
# above keep their signatures because other suites import them).
# ---------------------------------------------------------------------------
import calendar  # noqa: E402
import itertools  # noqa: E402
import re  # noqa: E402
import threading  # noqa: E402

TOKEN_RE = re.compile(r"^lock-(\d+)-[0-9a-f]{24}$")
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
LOCKED_RE = re.compile(r"^Recurso bloqueado por otro proceso\. Expira en (\d+)ms$")
NOT_HELD_MSG = "El lock no existe o el token no corresponde"

_uniq_counter = itertools.count(1)
_uniq_lock = threading.Lock()


def uniq(prefix="res"):
    """A name no other test in this process uses."""
    with _uniq_lock:
        n = next(_uniq_counter)
    return "%s-%d-%d" % (prefix, os.getpid(), n)


def parse_iso(s):
    """'2024-01-06T12:34:56.789Z' -> epoch milliseconds (int)."""
    if not isinstance(s, str) or not ISO_RE.match(s):
        raise ValueError("not an ISO-8601 UTC millisecond timestamp: %r" % (s,))
    secs = calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S"))
    return secs * 1000 + int(s[20:23])


def now_ms():
    return int(time.time() * 1000)


def wait_until(pred, timeout=5.0, interval=0.02):
    """Polls pred() until it returns something truthy (returned) or timeout*SLOW passes
    (then returns the last falsy value)."""
    deadline = time.time() + timeout * SLOW
    while True:
        v = pred()
        if v or time.time() >= deadline:
            return v
        time.sleep(interval)


def parse_responses(data):
    """Splits raw bytes from the server into [(status, {header: value}, body)], using
    Content-Length (the server always sends one). Stops at an incomplete response."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            break
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
        n = int(headers.get("content-length", "0"))
        out.append((status, headers, rest[:n]))
        data = rest[n:]
    return out


def connect(server, timeout=10):
    """A raw socket to the server (caller closes)."""
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout * SLOW)


def recv_until_closed(sock, timeout):
    """Reads until EOF/reset or timeout seconds (not scaled). Returns (bytes, closed)."""
    sock.settimeout(0.1)
    deadline = time.time() + timeout
    out = b""
    while time.time() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return out, True
        if not chunk:
            return out, True
        out += chunk
    return out, False


def server_ok(server):
    """Raises AssertionError with the log tail if the server process has died."""
    if server.proc is None or server.proc.poll() is not None:
        code = None if server.proc is None else server.proc.returncode
        log = b""
        if server.proc is not None:
            try:
                log = server.proc.stdout.read()
            except Exception:
                pass
        raise AssertionError("candado is not running (exit %r); log:\n%s"
                             % (code, log.decode("utf-8", "replace")[-4000:]))


class ServerTestCase(unittest.TestCase):
    """One server per test class (class attribute `server`), started with
    `server_args` / `server_env`. Every test checks afterwards that it still runs, so a
    crash is blamed on the test that caused it; the class checks the exit code and the
    sanitizer output when it stops the server."""

    server_args = ()
    server_env = None
    server = None

    @classmethod
    def setUpClass(cls):
        cls.server = Server(*cls.server_args, env=cls.server_env).start()

    @classmethod
    def tearDownClass(cls):
        if cls.server is not None:
            srv, cls.server = cls.server, None
            srv.__exit__(None, None, None)

    def tearDown(self):
        server_ok(self.server)

    # -- assertions --------------------------------------------------------

    def json_of(self, resp, status=200):
        self.assertEqual(resp.status, status, resp)
        ctype = resp.headers.get("content-type", "")
        self.assertTrue(ctype.startswith("application/json"), (ctype, resp))
        try:
            return resp.json()
        except ValueError as e:
            self.fail("body is not valid UTF-8 JSON (%s): %r" % (e, resp.body[:300]))

    def assertError(self, resp, status, error=None, msg_contains=None):
        """A NestJS-shaped error body with this status."""
        body = self.json_of(resp, status)
        self.assertIsInstance(body, dict, resp)
        self.assertEqual(body.get("statusCode"), status, body)
        self.assertIsInstance(body.get("message"), (str, list), body)
        self.assertIsInstance(body.get("error"), str, body)
        if error is not None:
            self.assertEqual(body["error"], error, body)
        if msg_contains is not None:
            self.assertIn(msg_contains, str(body["message"]), body)
        return body

    def acquire_ok(self, resource, client_id="test-client", ttl=None, **kw):
        body = self.json_of(self.server.acquire(resource, client_id, ttl=ttl, **kw))
        self.assertIs(body.get("acquired"), True, body)
        return body

    def acquire_locked(self, resource, client_id="other-client", ttl=None, **kw):
        body = self.json_of(self.server.acquire(resource, client_id, ttl=ttl, **kw))
        self.assertIs(body.get("acquired"), False, body)
        self.assertEqual(body.get("code"), "LOCKED", body)
        self.assertRegex(body.get("error", ""), LOCKED_RE)
        return body

    def info(self, resource):
        from urllib.parse import quote
        return self.json_of(self.server.get("/api/locks/info/" + quote(resource, safe="")))

    def stats(self):
        return self.json_of(self.server.get("/api/locks/stats"))

    def snapshot(self):
        """What a bad request must not change: the locks held and the counters."""
        locks = self.json_of(self.server.get("/api/locks"))["locks"]
        st = self.stats()
        held = sorted((l["resource"], l["clientId"], l["expiresAt"], l.get("fencingToken"))
                      for l in locks)
        return {"held": held, "counters": st.get("counters"),
                "activeLocks": st.get("activeLocks"), "waiting": st.get("waiting")}
