"""Black-box tests of the client verbs of `candado` (acquire, release, extend, info, ls, stats,
release-client): each runs the real binary against a real `candado serve` and checks exit codes
(0 ok, 2 bad input, 3 held / not held, 4 unreachable) and that --json prints parseable JSON.

The tests that use `wait` or `extend` need those server features."""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, SLOW, Server, ServerTestCase, free_port, main  # noqa: E402


def cli(url, *args, env=None, timeout=30):
    """Runs `candado ARGS...` against url (through CANDADO_URL); returns CompletedProcess."""
    e = dict(os.environ)
    e.pop("CANDADO_ADMIN_TOKEN", None)
    e["CANDADO_URL"] = url
    if env:
        e.update(env)
    return subprocess.run([BIN] + [str(a) for a in args], env=e, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout * SLOW)


def dead_url():
    return "http://127.0.0.1:%d" % free_port()


class CliTest(ServerTestCase):

    def run_cli(self, *args, **kw):
        return cli(self.server.url, *args, **kw)

    def assertExit(self, r, code):
        self.assertEqual(r.returncode, code, "stdout=%r stderr=%r" % (r.stdout, r.stderr))

    def json_of(self, r):
        return json.loads(r.stdout.decode("utf-8"))

    def acquire(self, resource, *extra):
        r = self.run_cli("acquire", "-r", resource, "--json", *extra)
        self.assertExit(r, 0)
        body = self.json_of(r)
        self.assertTrue(body["acquired"])
        return body["token"]

    # ---- usage -----------------------------------------------------------------------------

    def test_every_verb_has_help(self):
        for verb in ("acquire", "release", "extend", "info", "ls", "stats", "release-client",
                     "run"):
            r = self.run_cli(verb, "--help")
            self.assertExit(r, 0)
            self.assertIn(b"Usage: candado " + verb.encode(), r.stdout)

    def test_bad_usage_is_exit_2(self):
        cases = [
            ("acquire",),                              # no --resource
            ("acquire", "-r", "x", "--bogus"),
            ("acquire", "-r", "x", "--ttl"),           # no value
            ("acquire", "-r", "x", "--ttl", "abc"),
            ("acquire", "-r", "x", "--ttl", "0"),
            ("acquire", "-r", "x", "--wait", "-5"),
            ("release", "-r", "x"),                    # no --token
            ("extend", "--token", "t"),                # no --resource
            ("info",),
            ("info", "a", "b"),
            ("ls", "--limit", "0"),
            ("release-client",),
            ("stats", "extra"),
        ]
        for args in cases:
            with self.subTest(args=args):
                r = self.run_cli(*args)
                self.assertExit(r, 2)
                self.assertIn(b"candado", r.stderr)

    # ---- acquire ---------------------------------------------------------------------------

    def test_acquire_prints_token_off_a_terminal(self):
        r = self.run_cli("acquire", "-r", "cli:acq:plain", "--client-id", "me")
        self.assertExit(r, 0)
        token = r.stdout.decode().strip()
        self.assertRegex(token, r"^lock-\d+-[0-9a-f]{24}$")
        info = self.server.get("/api/locks/info/cli:acq:plain").json()
        self.assertTrue(info["exists"])
        self.assertEqual(info["clientId"], "me")

    def test_acquire_json_and_held(self):
        r = self.run_cli("acquire", "-r", "cli:acq:json", "--ttl", "5000", "--json")
        self.assertExit(r, 0)
        body = self.json_of(r)
        self.assertTrue(body["acquired"])
        self.assertEqual(body["expiresIn"], 5000)
        self.assertIn("fencingToken", body)

        r = self.run_cli("acquire", "-r", "cli:acq:json", "--json")
        self.assertExit(r, 3)
        body = self.json_of(r)
        self.assertFalse(body["acquired"])
        self.assertIn("error", body)
        self.assertIn(b"held", r.stderr)

        r = self.run_cli("acquire", "-r", "cli:acq:json")
        self.assertExit(r, 3)
        self.assertEqual(r.stdout, b"")

    def test_acquire_default_client_id_is_host_and_pid(self):
        self.acquire("cli:acq:default-id")
        info = self.server.get("/api/locks/info/cli:acq:default-id").json()
        self.assertRegex(info["clientId"], r"^.+-\d+$")

    def test_acquire_server_400_is_exit_2(self):
        r = self.run_cli("acquire", "-r", "cli:acq:bad", "--ttl", "999999999", "--json")
        self.assertExit(r, 2)
        self.assertEqual(self.json_of(r)["statusCode"], 400)
        r = self.run_cli("acquire", "-r", "bad\x01name")
        self.assertExit(r, 2)

    def test_acquire_waits_for_release(self):
        # Needs server-side `wait`.
        self.server.acquire("cli:acq:wait", client_id="other", ttl=int(500 * SLOW))
        t0 = time.monotonic()
        r = self.run_cli("acquire", "-r", "cli:acq:wait", "--wait", str(int(10000 * SLOW)),
                         "--json")
        self.assertExit(r, 0)
        self.assertTrue(self.json_of(r)["acquired"])
        self.assertLess(time.monotonic() - t0, 10 * SLOW)

    def test_acquire_wait_times_out_with_3(self):
        self.server.acquire("cli:acq:wait-out", client_id="other", ttl=30000)
        r = self.run_cli("acquire", "-r", "cli:acq:wait-out", "--wait", "300")
        self.assertExit(r, 3)

    # ---- release / extend -------------------------------------------------------------------

    def test_release(self):
        token = self.acquire("cli:rel")
        r = self.run_cli("release", "-r", "cli:rel", "--token", "lock-0-000000000000000000000000")
        self.assertExit(r, 3)
        r = self.run_cli("release", "-r", "cli:rel", "--token", token, "--json")
        self.assertExit(r, 0)
        self.assertEqual(self.json_of(r), {"released": True})
        self.assertFalse(self.server.get("/api/locks/info/cli:rel").json()["exists"])
        r = self.run_cli("release", "-r", "cli:rel", "--token", token, "--json")
        self.assertExit(r, 3)
        self.assertFalse(self.json_of(r)["released"])
        r = self.run_cli("release", "-r", "cli:rel", "-t", token)
        self.assertExit(r, 3)

    def test_extend(self):
        # Needs server-side `extend`.
        token = self.acquire("cli:ext", "--ttl", "2000")
        r = self.run_cli("extend", "-r", "cli:ext", "--token", token, "--ttl", "60000", "--json")
        self.assertExit(r, 0)
        body = self.json_of(r)
        self.assertTrue(body["extended"])
        self.assertEqual(body["expiresIn"], 60000)
        info = self.server.get("/api/locks/info/cli:ext").json()
        self.assertGreater(info["timeRemaining"], 30000)
        r = self.run_cli("extend", "-r", "cli:ext", "--token", token)
        self.assertExit(r, 0)
        self.assertIn(b"extended", r.stdout)
        r = self.run_cli("extend", "-r", "cli:ext", "--token", "nope", "--json")
        self.assertExit(r, 3)
        self.assertFalse(self.json_of(r)["extended"])

    # ---- info / ls / stats ----------------------------------------------------------------

    def test_info(self):
        self.server.acquire("cli:info:a b/c", client_id="infoer", ttl=30000)
        r = self.run_cli("info", "cli:info:a b/c", "--json")
        self.assertExit(r, 0)
        body = self.json_of(r)
        self.assertTrue(body["exists"])
        self.assertEqual(body["resource"], "cli:info:a b/c")
        self.assertEqual(body["clientId"], "infoer")
        self.assertNotIn("token", body)
        r = self.run_cli("info", "cli:info:a b/c")
        self.assertExit(r, 0)
        self.assertIn(b"infoer", r.stdout)

        r = self.run_cli("info", "cli:info:free", "--json")
        self.assertExit(r, 0)
        self.assertEqual(self.json_of(r)["exists"], False)
        r = self.run_cli("info", "cli:info:free")
        self.assertExit(r, 0)
        self.assertIn(b"free", r.stdout)

        r = self.run_cli("info", "bad\x01name")
        self.assertExit(r, 2)

    def test_ls(self):
        for i in range(3):
            self.server.acquire("cli:ls:%d" % i, client_id="lister-%d" % (i % 2), ttl=30000)
        r = self.run_cli("ls", "--prefix", "cli:ls:", "--json")
        self.assertExit(r, 0)
        body = self.json_of(r)
        self.assertEqual(body["count"], 3)
        self.assertEqual(sorted(l["resource"] for l in body["locks"]),
                         ["cli:ls:0", "cli:ls:1", "cli:ls:2"])

        r = self.run_cli("ls", "--prefix", "cli:ls:", "--client-id", "lister-1", "--json")
        self.assertExit(r, 0)
        self.assertEqual([l["resource"] for l in self.json_of(r)["locks"]], ["cli:ls:1"])

        r = self.run_cli("ls", "--prefix", "cli:ls:")
        self.assertExit(r, 0)
        rows = [line.split("\t") for line in r.stdout.decode().splitlines()]
        self.assertEqual(sorted(row[0] for row in rows), ["cli:ls:0", "cli:ls:1", "cli:ls:2"])

    def test_ls_pages_with_limit(self):
        for i in range(3):
            self.server.acquire("cli:page:%d" % i, ttl=30000)
        r = self.run_cli("ls", "--prefix", "cli:page:", "--limit", "2", "--json")
        self.assertExit(r, 0)
        body = self.json_of(r)
        self.assertEqual(body["count"], 2)
        self.assertIn("nextCursor", body)
        r = self.run_cli("ls", "--prefix", "cli:page:", "--limit", "2", "--cursor",
                         body["nextCursor"], "--json")
        self.assertExit(r, 0)
        rest = self.json_of(r)
        self.assertEqual(rest["count"], 1)
        self.assertNotIn("nextCursor", rest)

    def test_stats(self):
        self.server.acquire("cli:stats", client_id="statser", ttl=30000)
        r = self.run_cli("stats", "--json")
        self.assertExit(r, 0)
        body = self.json_of(r)
        self.assertGreaterEqual(body["activeLocks"], 1)
        self.assertEqual(body["totalLocks"], body["activeLocks"] + body["expiredLocks"])
        self.assertIn("statser", body["locksByClient"])
        r = self.run_cli("stats")
        self.assertExit(r, 0)
        self.assertIn(b"active locks", r.stdout)
        self.assertIn(b"statser", r.stdout)

    # ---- release-client -------------------------------------------------------------------

    def test_release_client(self):
        self.server.acquire("cli:rc:1", client_id="crashed", ttl=30000)
        self.server.acquire("cli:rc:2", client_id="crashed", ttl=30000)
        r = self.run_cli("release-client", "crashed", "--json")
        self.assertExit(r, 0)
        body = self.json_of(r)
        self.assertEqual(body["releasedCount"], 2)
        self.assertTrue(body["success"])
        self.assertFalse(self.server.get("/api/locks/info/cli:rc:1").json()["exists"])
        r = self.run_cli("release-client", "crashed")
        self.assertExit(r, 0)
        self.assertIn(b"released 0 locks", r.stdout)

    # ---- server choice and unreachable ----------------------------------------------------

    def test_server_flag_beats_env(self):
        r = cli(dead_url(), "stats", "--server", self.server.url, "--json")
        self.assertExit(r, 0)
        r = cli(self.server.url, "stats", "--server", dead_url())
        self.assertExit(r, 4)

    def test_unreachable_is_exit_4(self):
        url = dead_url()
        cases = [
            ("acquire", "-r", "x"),
            ("acquire", "-r", "x", "--json"),
            ("release", "-r", "x", "--token", "t"),
            ("extend", "-r", "x", "--token", "t"),
            ("info", "x"),
            ("ls",),
            ("stats",),
            ("release-client", "c"),
        ]
        for args in cases:
            with self.subTest(args=args):
                r = cli(url, *args)
                self.assertExit(r, 4)
                self.assertIn(b"unreachable", r.stderr)
                self.assertEqual(r.stdout, b"")


class AdminTokenTest(unittest.TestCase):
    def test_release_client_needs_the_admin_token(self):
        with Server("--admin-token", "s3cret") as s:
            s.acquire("cli:adm", client_id="crashed", ttl=30000)
            r = cli(s.url, "release-client", "crashed")
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn(b"not authorized", r.stderr)
            r = cli(s.url, "release-client", "crashed", "--admin-token", "wrong")
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertTrue(s.get("/api/locks/info/cli:adm").json()["exists"])
            r = cli(s.url, "release-client", "crashed", "--admin-token", "s3cret", "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(json.loads(r.stdout)["releasedCount"], 1)
            s.acquire("cli:adm", client_id="crashed", ttl=30000)
            r = cli(s.url, "release-client", "crashed", env={"CANDADO_ADMIN_TOKEN": "s3cret"})
            self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    main()
