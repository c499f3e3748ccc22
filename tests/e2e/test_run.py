"""Black-box tests of `candado run --resource R -- CMD`: the lock is held exactly while CMD runs,
extended past its TTL for a long CMD, released when CMD exits (also after SIGINT), and lost
locks stop CMD with exit 5. CMD never starts when the lock cannot be had.

Timing: only generous upper bounds; under ASan everything is scaled by harness.SLOW.
Tests with a CMD longer than the TTL need server-side `extend`; those with --wait need `wait`."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, SLOW, Server, ServerTestCase, free_port, main  # noqa: E402


def env_for(url):
    e = dict(os.environ)
    e.pop("CANDADO_ADMIN_TOKEN", None)
    e["CANDADO_URL"] = url
    return e


def until(pred, timeout, step=0.02):
    """Polls pred() until it is true or timeout (scaled) passes; returns its last value."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


class RunTest(ServerTestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def run_args(self, resource, *extra, cmd):
        return [BIN, "run", "--resource", resource] + [str(a) for a in extra] + ["--"] + cmd

    def run_sync(self, resource, *extra, cmd, timeout=60):
        return subprocess.run(self.run_args(resource, *extra, cmd=cmd),
                              env=env_for(self.server.url), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout * SLOW)

    def start(self, resource, *extra, cmd):
        p = subprocess.Popen(self.run_args(resource, *extra, cmd=cmd),
                             env=env_for(self.server.url), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        self.addCleanup(self.reap, p)
        return p

    @staticmethod
    def reap(p):
        if p.poll() is None:
            p.kill()
        p.communicate()

    def info(self, resource):
        return self.server.get("/api/locks/info/" + resource).json()

    def wait_for_file(self, name, timeout=10):
        return until(lambda: os.path.exists(self.path(name)), timeout)

    # ---- exit status ----------------------------------------------------------------------

    def test_exit_status_is_passed_through(self):
        for code in (0, 1, 7, 42):
            with self.subTest(code=code):
                r = self.run_sync("run:exit", cmd=["sh", "-c", "exit %d" % code])
                self.assertEqual(r.returncode, code, r.stderr)
        self.assertFalse(self.info("run:exit")["exists"])

    def test_death_by_signal_is_128_plus_signal(self):
        r = self.run_sync("run:sig", cmd=["sh", "-c", "kill -KILL $$"])
        self.assertEqual(r.returncode, 128 + signal.SIGKILL, r.stderr)
        self.assertFalse(self.info("run:sig")["exists"])

    def test_command_not_found_is_127_and_releases(self):
        r = self.run_sync("run:nocmd", cmd=["/nonexistent/command"])
        self.assertEqual(r.returncode, 127, r.stderr)
        self.assertFalse(self.info("run:nocmd")["exists"])

    def test_path_lookup_and_environment(self):
        out = self.path("env.json")
        script = ("import json, os; json.dump({k: os.environ.get(k) for k in "
                  "['CANDADO_RESOURCE', 'CANDADO_TOKEN', 'CANDADO_FENCING_TOKEN']}, "
                  "open(%r, 'w'))" % out)
        r = self.run_sync("run:env", "--client-id", "env-tester",
                          cmd=[os.path.basename(sys.executable), "-c", script])
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out) as f:
            env = json.load(f)
        self.assertEqual(env["CANDADO_RESOURCE"], "run:env")
        self.assertRegex(env["CANDADO_TOKEN"], r"^lock-\d+-[0-9a-f]{24}$")
        self.assertRegex(env["CANDADO_FENCING_TOKEN"], r"^\d+$")

    # ---- the lock while CMD runs ------------------------------------------------------------

    def test_lock_is_held_during_the_run_and_released_after(self):
        started, stop = self.path("started"), self.path("stop")
        p = self.start("run:held", "--client-id", "runner",
                       cmd=["sh", "-c", "touch %s; while [ ! -e %s ]; do sleep 0.05; done"
                            % (started, stop)])
        self.assertTrue(self.wait_for_file("started"))
        info = self.info("run:held")
        self.assertTrue(info["exists"])
        self.assertEqual(info["clientId"], "runner")
        # Someone else cannot have it meanwhile.
        self.assertFalse(self.server.acquire("run:held", client_id="other").json()["acquired"])
        open(stop, "w").close()
        self.assertEqual(p.wait(timeout=10 * SLOW), 0)
        self.assertFalse(self.info("run:held")["exists"])

    def test_long_run_survives_several_ttls(self):
        # Needs server-side `extend`: ttl 600 ms, the command runs for about 2 s.
        ttl = int(600 * SLOW)
        p = self.start("run:long", "--ttl", ttl, "--client-id", "long",
                       cmd=["sleep", "%.1f" % (2 * SLOW)])
        deadline = time.monotonic() + 1.8 * SLOW
        seen = 0
        while time.monotonic() < deadline and p.poll() is None:
            info = self.info("run:long")
            if info["exists"]:
                seen += 1
            elif seen:  # it was ours and then went away while the command still ran
                self.fail("the lock lapsed while the command ran")
            time.sleep(0.1)
        self.assertGreater(seen, 0)
        out, err = p.communicate(timeout=20 * SLOW)
        self.assertEqual(p.returncode, 0, err)
        self.assertFalse(self.info("run:long")["exists"])

    def test_lost_lock_stops_the_command_with_exit_5(self):
        ttl = int(600 * SLOW)
        started, after = self.path("started"), self.path("after")
        # One process (no orphaned grandchild keeps our pipes open after it is stopped).
        script = ("import time; open(%r, 'w').close(); time.sleep(30); open(%r, 'w').close()"
                  % (started, after))
        p = self.start("run:lost", "--ttl", ttl, "--client-id", "doomed",
                       cmd=[sys.executable, "-c", script])
        self.assertTrue(self.wait_for_file("started"))
        t0 = time.monotonic()
        r = self.server.delete("/api/locks/client/doomed")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["releasedCount"], 1)
        out, err = p.communicate(timeout=20 * SLOW)
        self.assertEqual(p.returncode, 5, err)
        self.assertIn(b"lost", err)
        self.assertLess(time.monotonic() - t0, 15 * SLOW)
        self.assertFalse(os.path.exists(after))

    def test_lost_lock_kills_a_command_that_ignores_sigterm(self):
        ttl = int(600 * SLOW)
        started = self.path("started")
        p = self.start("run:stubborn", "--ttl", ttl, "--grace", "300", "--client-id", "stubborn",
                       cmd=[sys.executable, "-c", "import signal, time; "
                            "signal.signal(signal.SIGTERM, signal.SIG_IGN); open(%r, 'w').close(); "
                            "time.sleep(30)" % started])
        self.assertTrue(self.wait_for_file("started"))
        self.server.delete("/api/locks/client/stubborn")
        out, err = p.communicate(timeout=20 * SLOW)
        self.assertEqual(p.returncode, 5, err)
        self.assertIn(b"SIGKILL", err)

    def test_sigint_is_passed_on_and_the_lock_released(self):
        started = self.path("started")
        p = self.start("run:int", "--ttl", "30000",
                       cmd=["sh", "-c", "touch %s; exec sleep 30" % started])
        self.assertTrue(self.wait_for_file("started"))
        self.assertTrue(self.info("run:int")["exists"])
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10 * SLOW)
        self.assertEqual(p.returncode, 128 + signal.SIGINT, err)
        self.assertFalse(self.info("run:int")["exists"])

    def test_sigterm_is_passed_on_and_the_command_may_clean_up(self):
        started, cleaned = self.path("started"), self.path("cleaned")
        p = self.start("run:term", "--ttl", "30000",
                       cmd=[sys.executable, "-c", "import signal, sys, time; "
                            "signal.signal(signal.SIGTERM, lambda *a: (open(%r, 'w').close(), "
                            "sys.exit(9))); open(%r, 'w').close(); time.sleep(30)"
                            % (cleaned, started)])
        self.assertTrue(self.wait_for_file("started"))
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=10 * SLOW)
        self.assertEqual(p.returncode, 9, err)
        self.assertTrue(os.path.exists(cleaned))
        self.assertFalse(self.info("run:term")["exists"])

    def test_command_is_stopped_when_candado_dies(self):
        # Nobody would extend the lock any more: CMD must not outlive candado run.
        pidfile = self.path("pid")
        p = self.start("run:orphan", "--ttl", "30000",
                       cmd=[sys.executable, "-c", "import os, time; open(%r, 'w').write("
                            "str(os.getpid())); time.sleep(30)" % pidfile])
        self.assertTrue(until(lambda: os.path.exists(pidfile) and open(pidfile).read(), 10))
        pid = int(open(pidfile).read())
        p.kill()
        p.wait()

        def gone():
            try:
                with open("/proc/%d/stat" % pid) as f:
                    return f.read().split(")")[-1].split()[0] in ("Z", "X")
            except OSError:
                return True
        self.assertTrue(until(gone, 10))

    # ---- when the lock cannot be had ---------------------------------------------------------

    def test_held_lock_means_the_command_never_starts(self):
        self.server.acquire("run:busy", client_id="holder", ttl=30000)
        marker = self.path("marker")
        r = self.run_sync("run:busy", "--wait", "300", cmd=["touch", marker])
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertFalse(os.path.exists(marker))
        r = self.run_sync("run:busy", cmd=["touch", marker])
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertFalse(os.path.exists(marker))
        self.assertEqual(self.info("run:busy")["clientId"], "holder")

    def test_waits_for_the_lock_then_runs(self):
        # Needs server-side `wait`.
        self.server.acquire("run:later", client_id="holder", ttl=int(500 * SLOW))
        marker = self.path("marker")
        r = self.run_sync("run:later", "--wait", int(10000 * SLOW), cmd=["touch", marker])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.exists(marker))

    def test_unreachable_server_is_exit_4_and_no_command(self):
        marker = self.path("marker")
        env = env_for("http://127.0.0.1:%d" % free_port())
        r = subprocess.run([BIN, "run", "-r", "x", "--", "touch", marker], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30 * SLOW)
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertFalse(os.path.exists(marker))

    def test_usage_errors(self):
        for args in (["run", "--", "true"], ["run", "-r", "x"], ["run", "-r", "x", "--ttl", "0",
                                                                 "--", "true"]):
            with self.subTest(args=args):
                r = subprocess.run([BIN] + args, env=env_for(self.server.url),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
                self.assertEqual(r.returncode, 2, r.stderr)


class RunServerGoneTest(unittest.TestCase):
    def test_server_gone_until_the_lock_expires_is_a_lost_lock(self):
        s = Server().start()
        try:
            tmp = tempfile.TemporaryDirectory()
            self.addCleanup(tmp.cleanup)
            started = os.path.join(tmp.name, "started")
            p = subprocess.Popen([BIN, "run", "-r", "run:gone", "--ttl", str(int(900 * SLOW)),
                                  "--", "sh", "-c", "touch %s; exec sleep 30" % started],
                                 env=env_for(s.url), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            self.assertTrue(until(lambda: os.path.exists(started), 10))
        finally:
            s.stop()
        out, err = p.communicate(timeout=30 * SLOW)
        self.assertEqual(p.returncode, 5, err)
        self.assertIn(b"could not be reached", err)


if __name__ == "__main__":
    main()
