"""The `candado serve` command line: help, port from the environment, flag validation,
the start log line, configured limits, and a clean exit on SIGINT/SIGTERM."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import BIN, SLOW, Server, free_port, uniq  # noqa: E402


def run(args, env=None, timeout=10):
    e = dict(os.environ)
    e.pop("CANDADO_ADMIN_TOKEN", None)
    e.pop("PORT", None)
    e.pop("CANDADO_PORT", None)
    if env:
        e.update(env)
    return subprocess.run([BIN] + list(args), env=e, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout * SLOW)


def healthz(port, timeout=2):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout * SLOW)
    try:
        c.request("GET", "/healthz")
        r = c.getresponse()
        return r.status, json.loads(r.read())
    finally:
        c.close()


def wait_listening(port, proc, timeout=10):
    deadline = time.time() + timeout * SLOW
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def stop(proc, sig=signal.SIGTERM):
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=10 * SLOW)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return proc.returncode, out


class Help(unittest.TestCase):

    def test_top_level_help(self):
        p = run(["--help"])
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode()
        self.assertIn("serve", out)
        self.assertIn("Usage", out)

    def test_serve_help_lists_flags(self):
        p = run(["serve", "--help"])
        self.assertEqual(p.returncode, 0, p.stderr)
        out = (p.stdout + p.stderr).decode()
        for flag in ("--host", "--port", "--default-ttl", "--max-ttl", "--max-wait",
                     "--admin-token", "--max-connections", "--log-level"):
            self.assertIn(flag, out)
        self.assertIn("CANDADO_ADMIN_TOKEN", out)

    def test_serve_help_does_not_start_a_server(self):
        p = run(["serve", "--help"], timeout=5)
        self.assertEqual(p.returncode, 0)


class PortFromEnvironment(unittest.TestCase):

    def start_env(self, env, args=()):
        e = dict(os.environ)
        for k in ("CANDADO_ADMIN_TOKEN", "PORT", "CANDADO_PORT"):
            e.pop(k, None)
        e.update(env)
        return subprocess.Popen([BIN, "serve"] + list(args), env=e, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)

    def check_serves_on(self, env, port, args=()):
        proc = self.start_env(env, args)
        try:
            self.assertTrue(wait_listening(port, proc), "not listening on %d" % port)
            self.assertEqual(healthz(port), (200, {"status": "ok"}))
        finally:
            code, out = stop(proc)
        self.assertEqual(code, 0, out)

    def test_port_env(self):
        port = free_port()
        self.check_serves_on({"PORT": str(port)}, port)

    def test_candado_port_env(self):
        port = free_port()
        self.check_serves_on({"CANDADO_PORT": str(port)}, port)

    def test_flag_beats_env(self):
        port, other = free_port(), free_port()
        self.check_serves_on({"PORT": str(other), "CANDADO_PORT": str(other)}, port,
                             ["--port", str(port)])

    def test_bad_port_env_is_refused(self):
        p = self.start_env({"PORT": "notaport"})
        try:
            code = p.wait(timeout=5 * SLOW)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            self.fail("candado serve kept running with PORT=notaport")
        out = p.stdout.read()
        p.stdout.close()
        self.assertNotEqual(code, 0)
        self.assertTrue(out.strip(), "no message")


class BadFlags(unittest.TestCase):

    def check_refused(self, args):
        port = free_port()
        p = subprocess.Popen([BIN, "serve", "--port", str(port)] + list(args)
                             if "--port" not in args else [BIN, "serve"] + list(args),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = p.communicate(timeout=5 * SLOW)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            self.fail("candado serve %s kept running" % " ".join(args))
        self.assertNotEqual(p.returncode, 0, args)
        self.assertGreater(len((out + err).strip()), 0, "no message for %r" % (args,))
        return (out + err).decode("utf-8", "replace")

    def test_bad_values(self):
        cases = [
            ["--port", "abc"], ["--port", "70000"], ["--port", "-1"], ["--port", ""],
            ["--port", "80x"],
            ["--default-ttl", "0"], ["--default-ttl", "-5"], ["--default-ttl", "abc"],
            ["--default-ttl", "1.5"],
            ["--max-ttl", "0"], ["--max-ttl", "xyz"], ["--max-ttl", "-1"],
            ["--max-wait", "-1"], ["--max-wait", "soon"],
            ["--max-connections", "abc"], ["--max-connections", "-3"],
            ["--log-level", "loud"],
            ["--no-such-flag"], ["--port"], ["--default-ttl"], ["unexpected-arg"],
        ]
        for args in cases:
            with self.subTest(args=args):
                out = self.check_refused(args)
                if args[0].startswith("--") and args[0] != "--no-such-flag":
                    # The message names the flag (or its value) that is wrong.
                    self.assertTrue(args[0].lstrip("-") in out or
                                    (len(args) > 1 and args[1] and args[1] in out), out)

    def test_port_in_use(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            p = subprocess.Popen([BIN, "serve", "--host", "127.0.0.1", "--port", str(port)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                out, err = p.communicate(timeout=5 * SLOW)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
                self.fail("kept running on a port in use")
            self.assertNotEqual(p.returncode, 0)
            self.assertTrue((out + err).strip())

    def test_good_log_levels_start(self):
        for level in ("debug", "info", "warn", "error"):
            with self.subTest(level=level):
                with Server("--log-level", level) as srv:
                    self.assertEqual(srv.get("/healthz").status, 200)


class StartAndStop(unittest.TestCase):

    def test_start_log_line(self):
        srv = Server("--host", "127.0.0.1")
        srv.start()
        try:
            self.assertEqual(srv.get("/healthz").status, 200)
        finally:
            code = srv.stop()
        self.assertEqual(code, 0)
        log = srv.log.decode("utf-8", "replace")
        lines = [l for l in log.splitlines() if str(srv.port) in l]
        self.assertTrue(lines, log)
        self.assertTrue(any("127.0.0.1:%d" % srv.port in l or "127.0.0.1" in l
                            for l in lines), log)
        self.assertTrue(any("memory" in l for l in lines), log)

    def test_sigterm_exit_0(self):
        srv = Server().start()
        self.assertEqual(srv.get("/healthz").status, 200)
        self.assertEqual(srv.stop(signal.SIGTERM), 0, srv.log)

    def test_sigint_exit_0(self):
        srv = Server().start()
        self.assertEqual(srv.get("/healthz").status, 200)
        self.assertEqual(srv.stop(signal.SIGINT), 0, srv.log)

    def test_signal_exit_0_with_locks_and_open_connections(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            srv = Server().start()
            socks = []
            try:
                res = uniq()
                self.assertIs(srv.acquire(res, "a", ttl=60000).json()["acquired"], True)
                # An idle keep-alive connection, a half-sent request and a waiter.
                socks.append(harness.connect(srv))
                s = harness.connect(srv)
                s.sendall(b"POST /api/locks/acquire HTTP/1.1\r\nHost: x\r\n")
                socks.append(s)
                s = harness.connect(srv)
                body = json.dumps({"resource": res, "clientId": "w", "wait": 60000}).encode()
                s.sendall(b"POST /api/locks/acquire HTTP/1.1\r\nHost: x\r\nContent-Length: %d"
                          b"\r\nContent-Type: application/json\r\n\r\n%s" % (len(body), body))
                socks.append(s)
                time.sleep(0.3)
                t0 = time.time()
                code = srv.stop(sig)
                self.assertEqual(code, 0, srv.log)
                self.assertLess(time.time() - t0, 8 * SLOW)
            finally:
                for s in socks:
                    s.close()
                if srv.proc is not None:
                    srv.stop()


class ConfiguredLimits(unittest.TestCase):

    def test_default_ttl_flag(self):
        with Server("--default-ttl", "12345") as srv:
            b = srv.acquire(uniq(), "c").json()
            self.assertIs(b["acquired"], True)
            self.assertEqual(b["expiresIn"], 12345)
            b = srv.post("/api/locks/acquire", {"resource": uniq(), "clientId": "c",
                                                "ttl": None}).json()
            self.assertEqual(b["expiresIn"], 12345)

    def test_max_ttl_flag(self):
        with Server("--max-ttl", "1000", "--default-ttl", "500") as srv:
            b = srv.acquire(uniq(), "c", ttl=1000).json()
            self.assertIs(b["acquired"], True)
            r = srv.acquire(uniq(), "c", ttl=1001)
            self.assertEqual(r.status, 400, r)
            body = r.json()
            self.assertEqual(body["statusCode"], 400)
            self.assertIn("ttl", str(body["message"]))
            self.assertIn("1000", str(body["message"]))
            # A larger max than the default works too.
        with Server("--max-ttl", "600000") as srv:
            self.assertEqual(srv.acquire(uniq(), "c", ttl=600000).json()["expiresIn"], 600000)
            self.assertEqual(srv.acquire(uniq(), "c", ttl=600001).status, 400)

    def test_max_wait_flag(self):
        with Server("--max-wait", "1000") as srv:
            r = srv.acquire(uniq(), "c", wait=1001)
            self.assertEqual(r.status, 400, r)
            self.assertIn("wait", str(r.json()["message"]))
            self.assertIs(srv.acquire(uniq(), "c", wait=1000).json()["acquired"], True)

    def test_host_flag(self):
        with Server("--host", "127.0.0.1") as srv:
            self.assertEqual(srv.get("/healthz").json(), {"status": "ok"})


if __name__ == "__main__":
    harness.main()
