"""Waiting for a lock (`wait` > 0: long-poll, FIFO per resource) and extending a held lock.

Waiters are real HTTP clients on their own connections in threads; the tests order them
by watching `waiting` in info/stats before starting the next one."""
import concurrent.futures
import json
import os
import socket
import sys
import threading
import time
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (LOCKED_RE, NOT_HELD_MSG, SLOW, ServerTestCase, now_ms,  # noqa: E402
                     parse_iso, uniq, wait_until)

LONG = int(60000 * SLOW)  # a wait that never runs out during a test


class Waiter(threading.Thread):
    """An acquire with `wait` on its own connection; .result/.done_at when answered."""

    def __init__(self, server, resource, client_id, wait=LONG, ttl=30000, release=False):
        super().__init__(daemon=True)
        self.server, self.resource, self.client_id = server, resource, client_id
        self.wait, self.ttl, self.release_after = wait, ttl, release
        self.result = self.error = self.done_at = None
        self.started_at = time.time()

    def run(self):
        try:
            r = self.server.acquire(self.resource, self.client_id, ttl=self.ttl,
                                    wait=self.wait, timeout=self.wait / 1000.0 + 30)
            self.done_at = time.time()
            self.result = r.json() if r.status == 200 else r
            if self.release_after and isinstance(self.result, dict) \
                    and self.result.get("acquired"):
                self.server.release(self.resource, self.result["token"])
        except Exception as e:  # reported by the test
            self.error = e
            self.done_at = time.time()


class WaitTestCase(ServerTestCase):

    def waiting(self, res):
        return self.info(res).get("waiting", 0)

    def wait_waiting(self, res, n, timeout=5):
        ok = wait_until(lambda: self.waiting(res) == n, timeout=timeout)
        self.assertTrue(ok, "expected %d waiters on %s, info says %r" % (n, res, self.info(res)))

    def start_waiter(self, res, cid, **kw):
        before = self.waiting(res)
        w = Waiter(self.server, res, cid, **kw)
        w.start()
        self.wait_waiting(res, before + 1)
        return w

    def join(self, w, timeout=15):
        w.join(timeout * SLOW)
        self.assertFalse(w.is_alive(), "waiter %s never answered" % w.client_id)
        self.assertIsNone(w.error, w.error)
        self.assertIsInstance(w.result, dict, w.result)
        return w.result


class Wait(WaitTestCase):

    def test_fifo_order_of_ten_waiters(self):
        res = uniq("fifo")
        h = self.acquire_ok(res, "holder", ttl=30000)
        waiters = [self.start_waiter(res, "w%d" % i, release=True) for i in range(10)]
        self.assertEqual(self.info(res)["waiting"], 10)
        self.assertEqual(self.json_of(self.server.release(res, h["token"])), {"released": True})
        results = [self.join(w) for w in waiters]
        for i, b in enumerate(results):
            self.assertIs(b["acquired"], True, (i, b))
        fences = [b["fencingToken"] for b in results]
        self.assertEqual(fences, sorted(fences), "grants out of FIFO order")
        self.assertGreater(fences[0], h["fencingToken"])
        done = [w.done_at for w in waiters]
        self.assertEqual(done, sorted(done))
        wait_until(lambda: not self.info(res)["exists"], timeout=5)
        self.assertEqual(self.info(res), {"exists": False, "resource": res})

    def test_waiter_granted_on_release(self):
        res = uniq()
        h = self.acquire_ok(res, "holder")
        w = self.start_waiter(res, "w")
        time.sleep(0.2)
        self.assertIsNone(w.result)  # still held back
        time.sleep(0.5)
        t0 = time.time()
        released_ms = now_ms()
        self.json_of(self.server.release(res, h["token"]))
        b = self.join(w)
        self.assertIs(b["acquired"], True)
        self.assertLess(w.done_at - t0, 2 * SLOW)
        self.assertEqual(b["expiresIn"], 30000)
        i = self.info(res)
        # The grant happens at the release, not when the waiter asked (0.7 s earlier):
        # the token's time, acquiredAt and expiresAt all count from the grant.
        tok_ms = int(harness.TOKEN_RE.match(b["token"]).group(1))
        self.assertGreaterEqual(tok_ms, released_ms - 300)
        self.assertGreaterEqual(parse_iso(i["acquiredAt"]), released_ms - 300)
        self.assertEqual(parse_iso(i["expiresAt"]) - parse_iso(i["acquiredAt"]), 30000)
        self.assertEqual(i["expiresAt"], b["expiresAt"])
        self.assertEqual(i["clientId"], "w")
        self.assertEqual(i["fencingToken"], b["fencingToken"])
        self.assertEqual(i["waiting"], 0)

    def test_waiter_granted_on_expiry(self):
        res = uniq()
        h = self.acquire_ok(res, "holder", ttl=500)
        w = Waiter(self.server, res, "w", wait=10000)
        w.start()
        b = self.join(w)
        self.assertIs(b["acquired"], True, b)
        self.assertGreaterEqual(w.done_at * 1000, parse_iso(h["expiresAt"]) - 50)
        self.assertEqual(self.info(res)["clientId"], "w")

    def test_wait_on_free_resource_is_immediate(self):
        t0 = time.time()
        b = self.acquire_ok(uniq(), "c", wait=LONG)
        self.assertLess(time.time() - t0, 2 * SLOW)
        self.assertIn("token", b)

    def test_wait_timeout(self):
        res = uniq()
        self.acquire_ok(res, "holder", ttl=30000)
        s0 = self.stats()["counters"]["waitTimeouts"]
        t0 = time.time()
        r = self.server.acquire(res, "w", wait=600)
        elapsed = time.time() - t0
        b = self.json_of(r)
        self.assertIs(b["acquired"], False)
        self.assertEqual(b["code"], "LOCKED")
        self.assertRegex(b["error"], LOCKED_RE)
        self.assertIs(type(b["expiresIn"]), int)
        self.assertGreaterEqual(elapsed, 0.55)
        self.assertLess(elapsed, 5 * SLOW)
        self.assertEqual(self.stats()["counters"]["waitTimeouts"] - s0, 1)
        self.assertEqual(self.info(res)["waiting"], 0)
        self.assertEqual(self.info(res)["clientId"], "holder")

    def test_wait_zero_and_null_behave_like_original(self):
        res = uniq()
        self.acquire_ok(res, "holder", ttl=30000)
        for body in ({"wait": 0}, {"wait": None}, {}):
            b0 = {"resource": res, "clientId": "x"}
            b0.update(body)
            t0 = time.time()
            b = self.json_of(self.server.post("/api/locks/acquire", b0))
            self.assertLess(time.time() - t0, 1 * SLOW)
            self.assertIs(b["acquired"], False)
            self.assertEqual(b["code"], "LOCKED")
            self.assertRegex(b["error"], LOCKED_RE)
        self.assertEqual(self.info(res)["waiting"], 0)

    def test_wait_above_max_is_400(self):
        res = uniq()
        for wait in (300001, 10 ** 9, -1):
            r = self.server.acquire(res, "x", wait=wait)
            self.assertError(r, 400, "Bad Request", msg_contains="wait")
        # 300000 itself is allowed (answered at once here: the resource is free).
        self.acquire_ok(res, "x", wait=300000)

    def test_disconnected_waiter_never_granted_and_does_not_delay(self):
        res = uniq()
        h = self.acquire_ok(res, "holder", ttl=30000)
        body = json.dumps({"resource": res, "clientId": "gone", "wait": LONG}).encode()
        s = harness.connect(self.server)
        s.sendall(b"POST /api/locks/acquire HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  b"application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        self.wait_waiting(res, 1)
        w2 = self.start_waiter(res, "next")
        self.assertEqual(self.waiting(res), 2)
        s.close()
        # Out of the queue within a second (generously scaled).
        self.wait_waiting(res, 1, timeout=2)
        t0 = time.time()
        self.json_of(self.server.release(res, h["token"]))
        b = self.join(w2)
        self.assertIs(b["acquired"], True)
        self.assertLess(w2.done_at - t0, 2 * SLOW)
        self.assertEqual(self.info(res)["clientId"], "next")
        st = self.stats()
        self.assertEqual(st["locksByClient"].get("gone", 0), 0)
        self.json_of(self.server.release(res, b["token"]))
        self.assertEqual(self.info(res), {"exists": False, "resource": res})

    def test_disconnect_right_before_release(self):
        # Hang up and release at (almost) the same moment: the lock must not go to the
        # departed client (it would sit there until its TTL).
        for _ in range(5):
            res = uniq()
            h = self.acquire_ok(res, "holder", ttl=30000)
            body = json.dumps({"resource": res, "clientId": "ghost", "wait": LONG,
                               "ttl": 60000}).encode()
            s = harness.connect(self.server)
            s.sendall(b"POST /api/locks/acquire HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      b"application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            self.wait_waiting(res, 1)
            s.close()
            self.wait_waiting(res, 0, timeout=2)
            self.json_of(self.server.release(res, h["token"]))
            self.assertIs(self.info(res)["exists"], False)

    def test_try_never_jumps_queue_on_release(self):
        res = uniq()
        h = self.acquire_ok(res, "holder", ttl=30000)
        w = self.start_waiter(res, "waiter")
        self.json_of(self.server.release(res, h["token"]))
        # Right after the release answered, the lock is already the waiter's.
        b = self.acquire_locked(res, "jumper")
        self.assertEqual(b["code"], "LOCKED")
        self.assertEqual(self.info(res)["clientId"], "waiter")
        self.assertIs(self.join(w)["acquired"], True)

    def test_try_never_jumps_queue_on_expiry(self):
        res = uniq()
        h = self.acquire_ok(res, "holder", ttl=400)
        w = self.start_waiter(res, "waiter")
        grabbed = []
        deadline = parse_iso(h["expiresAt"]) / 1000.0 + 0.6 * SLOW
        tries = 0
        conn = self.server.conn()
        try:
            while time.time() < deadline:
                b = self.server.acquire(res, "jumper", ttl=30000, conn=conn).json()
                tries += 1
                if b["acquired"]:
                    grabbed.append(b)
                    break
        finally:
            conn.close()
        self.assertEqual(grabbed, [])
        self.assertGreater(tries, 5)
        b = self.join(w)
        self.assertIs(b["acquired"], True)
        self.assertEqual(self.info(res)["clientId"], "waiter")

    def test_delete_client_does_not_cancel_its_waiters(self):
        res = uniq()
        h = self.acquire_ok(res, "holder", ttl=30000)
        w = self.start_waiter(res, "patient")
        d = self.json_of(self.server.delete("/api/locks/client/patient"))
        self.assertEqual(d["releasedCount"], 0)
        time.sleep(0.2)
        self.assertTrue(w.is_alive())
        self.assertEqual(self.waiting(res), 1)
        self.json_of(self.server.release(res, h["token"]))
        b = self.join(w)
        self.assertIs(b["acquired"], True)
        self.assertEqual(self.info(res)["clientId"], "patient")

    def test_delete_holder_hands_lock_to_waiter(self):
        res = uniq()
        hid = uniq("holder")
        self.acquire_ok(res, hid, ttl=30000)
        w = self.start_waiter(res, "next")
        d = self.json_of(self.server.delete("/api/locks/client/" + hid))
        self.assertEqual(d["releasedCount"], 1)
        b = self.join(w)
        self.assertIs(b["acquired"], True)
        self.assertEqual(self.info(res)["clientId"], "next")

    def test_waiting_counts_in_info_and_stats(self):
        res1, res2 = uniq(), uniq()
        h1 = self.acquire_ok(res1, "h", ttl=30000)
        h2 = self.acquire_ok(res2, "h", ttl=30000)
        base = self.stats()["waiting"]
        ws = [self.start_waiter(res1, "a%d" % i) for i in range(3)]
        ws += [self.start_waiter(res2, "b%d" % i) for i in range(2)]
        self.assertEqual(self.info(res1)["waiting"], 3)
        self.assertEqual(self.info(res2)["waiting"], 2)
        self.assertEqual(self.stats()["waiting"] - base, 5)
        # A waiter does not show as a lock.
        self.assertEqual(len([l for l in self.json_of(self.server.get("/api/locks"))["locks"]
                              if l["resource"] in (res1, res2)]), 2)
        self.json_of(self.server.release(res1, h1["token"]))
        first = self.join(ws[0])
        self.assertIs(first["acquired"], True)
        self.assertEqual(self.info(res1)["waiting"], 2)
        self.assertEqual(self.stats()["waiting"] - base, 4)
        # Let everyone through.
        for w in ws[:3]:
            b = self.join(w)
            self.json_of(self.server.release(res1, b["token"]))
        self.json_of(self.server.release(res2, h2["token"]))
        for w in ws[3:]:
            b = self.join(w)
            self.json_of(self.server.release(res2, b["token"]))
        self.assertEqual(self.stats()["waiting"], base)

    def test_waiters_on_different_resources_independent(self):
        a, b = uniq(), uniq()
        ha = self.acquire_ok(a, "h", ttl=30000)
        self.acquire_ok(b, "h", ttl=30000)
        wa = self.start_waiter(a, "wa")
        wb = self.start_waiter(b, "wb")
        self.json_of(self.server.release(a, ha["token"]))
        self.assertIs(self.join(wa)["acquired"], True)
        time.sleep(0.2)
        self.assertTrue(wb.is_alive())
        self.assertEqual(self.waiting(b), 1)

    def test_waiter_with_own_ttl(self):
        res = uniq()
        h = self.acquire_ok(res, "h", ttl=30000)
        w = self.start_waiter(res, "w", ttl=7777)
        self.json_of(self.server.release(res, h["token"]))
        b = self.join(w)
        self.assertEqual(b["expiresIn"], 7777)
        i = self.info(res)
        self.assertEqual(parse_iso(i["expiresAt"]) - parse_iso(i["acquiredAt"]), 7777)


    def test_pipelined_request_waits_behind_long_poll(self):
        # Answers on one connection come in request order: a request pipelined behind a
        # waiter is answered after the waiter's grant, and the connection stays usable.
        res = uniq()
        h = self.acquire_ok(res, "holder", ttl=30000)
        body = json.dumps({"resource": res, "clientId": "piped", "wait": LONG}).encode()
        s = harness.connect(self.server)
        try:
            s.sendall(b"POST /api/locks/acquire HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      b"application/json\r\nContent-Length: %d\r\n\r\n%s"
                      b"GET /api/locks/info/%s HTTP/1.1\r\nHost: x\r\n\r\n"
                      % (len(body), body, quote(res, safe="").encode()))
            self.wait_waiting(res, 1)
            data, closed = harness.recv_until_closed(s, 0.5)
            self.assertEqual(data, b"")  # nothing may overtake the held-back answer
            self.assertFalse(closed)
            self.json_of(self.server.release(res, h["token"]))
            s.settimeout(10 * SLOW)
            while len(harness.parse_responses(data)) < 2:
                chunk = s.recv(65536)
                self.assertTrue(chunk, data)
                data += chunk
            (st1, _, b1), (st2, _, b2) = harness.parse_responses(data)[:2]
            self.assertEqual((st1, st2), (200, 200))
            self.assertIs(json.loads(b1)["acquired"], True)
            self.assertEqual(json.loads(b2)["clientId"], "piped")
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            while len(harness.parse_responses(data)) < 3:
                chunk = s.recv(65536)
                self.assertTrue(chunk, data)
                data += chunk
            self.assertEqual(harness.parse_responses(data)[2][0], 200)
        finally:
            s.close()

    def test_many_waiters_time_out(self):
        res = uniq()
        self.acquire_ok(res, "holder", ttl=30000)
        s0 = self.stats()
        n = 60
        ws = [Waiter(self.server, res, "t%d" % i, wait=800) for i in range(n)]
        for w in ws:
            w.start()
        for w in ws:
            b = self.join(w)
            self.assertIs(b["acquired"], False)
            self.assertEqual(b["code"], "LOCKED")
        s1 = self.stats()
        self.assertEqual(s1["counters"]["waitTimeouts"] - s0["counters"]["waitTimeouts"], n)
        self.assertEqual(s1["waiting"], s0["waiting"])
        self.assertEqual(self.info(res)["waiting"], 0)
        self.assertEqual(self.info(res)["clientId"], "holder")

    def test_keep_alive_reused_after_wait(self):
        res = uniq()
        h = self.acquire_ok(res, "holder", ttl=30000)
        conn = self.server.conn()
        try:
            t = threading.Timer(0.3, lambda: self.server.release(res, h["token"]))
            t.start()
            b = self.server.acquire(res, "w", wait=LONG, conn=conn).json()
            t.join()
            self.assertIs(b["acquired"], True)
            r = self.server.release(res, b["token"], conn=conn).json()
            self.assertEqual(r, {"released": True})
        finally:
            conn.close()


    def test_reset_waiter_leaves_queue(self):
        # A waiter that vanishes with a TCP reset (SO_LINGER 0) instead of a FIN.
        import struct
        res = uniq()
        h = self.acquire_ok(res, "holder", ttl=30000)
        body = json.dumps({"resource": res, "clientId": "rst", "wait": LONG}).encode()
        s = harness.connect(self.server)
        s.sendall(b"POST /api/locks/acquire HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  b"application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        self.wait_waiting(res, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        self.wait_waiting(res, 0, timeout=2)
        self.json_of(self.server.release(res, h["token"]))
        self.assertEqual(self.info(res), {"exists": False, "resource": res})

    def test_stress_waiters_tries_and_hangups(self):
        # Waiters, tries and waiters that hang up, all on two resources: never two
        # holders at once, every grant answered, nothing left behind.
        import random
        resources = [uniq("stress"), uniq("stress")]
        guard = threading.Lock()
        occupied = dict((r, None) for r in resources)
        violations, grants = [], []
        deadline = time.time() + 3 * SLOW

        def hangup(res):
            # If the ghost is granted before it hangs up (the resource was free, or the
            # grant raced the close), that grant is legitimate: a short TTL ends it.
            body = json.dumps({"resource": res, "clientId": "ghost", "wait": LONG,
                               "ttl": 300}).encode()
            s = harness.connect(self.server)
            s.sendall(b"POST /api/locks/acquire HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      b"application/json\r\nContent-Length: %d\r\n\r\n%s"
                      % (len(body), body))
            time.sleep(random.random() * 0.05)
            s.close()

        def worker(i):
            rnd = random.Random(i)
            me = "s%d" % i
            conn = self.server.conn(timeout=60)
            try:
                while time.time() < deadline:
                    res = rnd.choice(resources)
                    if rnd.random() < 0.2:
                        hangup(res)
                        continue
                    wait = 0 if rnd.random() < 0.3 else int(5000 * SLOW)
                    b = self.server.acquire(res, me, ttl=int(20000 * SLOW), wait=wait,
                                            conn=conn).json()
                    if not b["acquired"]:
                        continue
                    with guard:
                        if occupied[res] is not None:
                            violations.append((res, occupied[res], me))
                        occupied[res] = me
                        grants.append((res, b["fencingToken"]))
                    time.sleep(rnd.random() * 0.005)
                    with guard:
                        occupied[res] = None
                    r = self.server.release(res, b["token"], conn=conn).json()
                    if r != {"released": True}:
                        violations.append(("release", res, me, r))
            finally:
                conn.close()

        with concurrent.futures.ThreadPoolExecutor(12) as ex:
            for f in [ex.submit(worker, i) for i in range(12)]:
                f.result()
        self.assertEqual(violations, [])
        self.assertGreater(len(grants), 20)
        for r in resources:
            fences = [f for (x, f) in grants if x == r]
            self.assertEqual(len(fences), len(set(fences)))
            # Hung-up waiters never end up holding the lock.
            ok = wait_until(lambda: not self.info(r)["exists"] and self.info(r)
                            .get("waiting", 0) == 0, timeout=3)
            self.assertTrue(ok, self.info(r))
        self.assertEqual(self.stats()["locksByClient"].get("ghost", 0), 0)


class ShortTimeouts(WaitTestCase):
    """A long-poll outlives --request-timeout and --idle-timeout: the request is complete
    and the connection is not idle while its answer is held back."""
    server_args = ("--request-timeout", "1000", "--idle-timeout", "1000")

    def test_waiter_outlives_timeouts(self):
        res = uniq()
        h = self.acquire_ok(res, "holder", ttl=30000)
        w = self.start_waiter(res, "w", wait=int(20000 * SLOW))
        time.sleep(2.5)
        self.assertTrue(w.is_alive(), w.result)
        self.assertEqual(self.waiting(res), 1)
        self.json_of(self.server.release(res, h["token"]))
        b = self.join(w)
        self.assertIs(b["acquired"], True)

    def test_wait_timeout_longer_than_request_timeout(self):
        res = uniq()
        self.acquire_ok(res, "holder", ttl=30000)
        t0 = time.time()
        b = self.json_of(self.server.acquire(res, "w", wait=2500))
        self.assertIs(b["acquired"], False)
        self.assertEqual(b["code"], "LOCKED")
        self.assertGreaterEqual(time.time() - t0, 2.4)


class MaxWait(WaitTestCase):
    server_args = ("--max-wait", "2000")

    def test_configured_max_wait(self):
        res = uniq()
        self.assertError(self.server.acquire(res, "c", wait=2001), 400, msg_contains="wait")
        self.acquire_ok(res, "h")
        t0 = time.time()
        b = self.json_of(self.server.acquire(res, "c", wait=2000))
        self.assertIs(b["acquired"], False)
        self.assertGreaterEqual(time.time() - t0, 1.9)


class Extend(ServerTestCase):

    def test_extend_holder(self):
        res = uniq()
        a = self.acquire_ok(res, "c", ttl=5000)
        s0 = self.stats()["counters"]["extended"]
        before = now_ms()
        e = self.json_of(self.server.post("/api/locks/extend", {"resource": res,
                                                                "token": a["token"],
                                                                "ttl": 60000}))
        self.assertIs(e["extended"], True, e)
        self.assertEqual(e["expiresIn"], 60000)
        exp = parse_iso(e["expiresAt"])
        self.assertLessEqual(before + 60000 - 1500, exp)
        self.assertLessEqual(exp, now_ms() + 60000 + 1500)
        i = self.info(res)
        self.assertEqual(i["expiresAt"], e["expiresAt"])
        self.assertGreater(i["timeRemaining"], 50000)
        self.assertEqual(i["fencingToken"], a["fencingToken"])  # same grant
        self.assertEqual(i["clientId"], "c")
        self.assertEqual(self.stats()["counters"]["extended"] - s0, 1)
        c = self.acquire_locked(res, "other")
        self.assertGreater(c["expiresIn"], 50000)
        # Same token still releases.
        self.assertEqual(self.json_of(self.server.release(res, a["token"])), {"released": True})

    def test_extend_keeps_lock_past_original_ttl(self):
        res = uniq()
        a = self.acquire_ok(res, "c", ttl=400)
        e = self.json_of(self.server.post("/api/locks/extend", {"resource": res,
                                                                "token": a["token"],
                                                                "ttl": int(5000 * SLOW)}))
        self.assertIs(e["extended"], True)
        time.sleep(0.4 + 0.5 * SLOW)
        self.assertIs(self.info(res)["exists"], True)
        self.acquire_locked(res, "other")

    def test_extend_can_shorten(self):
        res = uniq()
        a = self.acquire_ok(res, "c", ttl=60000)
        e = self.json_of(self.server.post("/api/locks/extend", {"resource": res,
                                                                "token": a["token"],
                                                                "ttl": 300}))
        self.assertEqual(e["expiresIn"], 300)
        time.sleep(0.3 + 0.5 * SLOW)
        self.assertIs(self.info(res)["exists"], False)

    def test_extend_not_holder(self):
        res = uniq()
        a = self.acquire_ok(res, "c", ttl=30000)
        other = self.acquire_ok(uniq(), "c")
        s0 = self.stats()["counters"]["extended"]
        for tok in (other["token"], "lock-%d-%s" % (now_ms(), "a" * 24), "nonsense",
                    a["token"][:-1] + ("0" if a["token"][-1] != "0" else "1")):
            e = self.json_of(self.server.post("/api/locks/extend", {"resource": res,
                                                                    "token": tok,
                                                                    "ttl": 60000}))
            self.assertEqual(e, {"extended": False, "error": NOT_HELD_MSG, "code": "NOT_HELD"})
        # The right token on another resource.
        e = self.json_of(self.server.post("/api/locks/extend", {"resource": uniq(),
                                                                "token": a["token"]}))
        self.assertIs(e["extended"], False)
        self.assertEqual(e["code"], "NOT_HELD")
        i = self.info(res)
        self.assertEqual(i["expiresAt"], a["expiresAt"])
        self.assertEqual(self.stats()["counters"]["extended"], s0)

    def test_extend_expired_refused(self):
        res = uniq()
        a = self.acquire_ok(res, "c", ttl=200)
        time.sleep(0.2 + 0.5 * SLOW)
        e = self.json_of(self.server.post("/api/locks/extend", {"resource": res,
                                                                "token": a["token"],
                                                                "ttl": 60000}))
        self.assertEqual(e, {"extended": False, "error": NOT_HELD_MSG, "code": "NOT_HELD"})
        self.assertEqual(self.info(res), {"exists": False, "resource": res})
        # And after someone else took it, the old token extends nothing.
        b = self.acquire_ok(res, "d", ttl=30000)
        e = self.json_of(self.server.post("/api/locks/extend", {"resource": res,
                                                                "token": a["token"]}))
        self.assertIs(e["extended"], False)
        self.assertEqual(self.info(res)["expiresAt"], b["expiresAt"])

    def test_extend_without_ttl_uses_grant_ttl(self):
        for extra in ({}, {"ttl": None}):
            res = uniq()
            a = self.acquire_ok(res, "c", ttl=4000)
            time.sleep(0.8)
            body = {"resource": res, "token": a["token"]}
            body.update(extra)
            before = now_ms()
            e = self.json_of(self.server.post("/api/locks/extend", body))
            self.assertIs(e["extended"], True, (extra, e))
            self.assertEqual(e["expiresIn"], 4000, extra)
            exp = parse_iso(e["expiresAt"])
            self.assertGreater(exp, parse_iso(a["expiresAt"]) + 300)
            self.assertLessEqual(before + 4000 - 1500, exp)
            i = self.info(res)
            self.assertEqual(i["expiresAt"], e["expiresAt"])
            self.assertGreater(i["timeRemaining"], 3200 - 1000 * (harness.SLOW - 1))

    def test_extend_without_ttl_after_default_grant(self):
        res = uniq()
        a = self.acquire_ok(res, "c")  # default TTL 30000
        e = self.json_of(self.server.post("/api/locks/extend", {"resource": res,
                                                                "token": a["token"]}))
        self.assertEqual(e["expiresIn"], 30000)

    def test_extend_twice_uses_grant_ttl_not_last_extension(self):
        res = uniq()
        a = self.acquire_ok(res, "c", ttl=4000)
        self.json_of(self.server.post("/api/locks/extend", {"resource": res,
                                                            "token": a["token"],
                                                            "ttl": 90000}))
        e = self.json_of(self.server.post("/api/locks/extend", {"resource": res,
                                                                "token": a["token"]}))
        self.assertEqual(e["expiresIn"], 4000)

    def test_extend_bad_input(self):
        res = uniq()
        a = self.acquire_ok(res, "c", ttl=30000)
        for body in ({"resource": res}, {"token": a["token"]}, {},
                     {"resource": res, "token": a["token"], "ttl": 0},
                     {"resource": res, "token": a["token"], "ttl": 300001},
                     {"resource": res, "token": a["token"], "ttl": "1000"},
                     {"resource": res, "token": a["token"], "ttl": 1.5},
                     {"resource": res, "token": a["token"], "ttl": True},
                     {"resource": res, "token": 5},
                     {"resource": "", "token": a["token"]},
                     {"resource": "x\u0001", "token": a["token"]},
                     {"resource": "r" * 513, "token": a["token"]}):
            with self.subTest(body=body):
                self.assertError(self.server.post("/api/locks/extend", body), 400,
                                 "Bad Request")
        self.assertError(self.server.post("/api/locks/extend", "[1]",
                                          headers={"Content-Type": "application/json"}), 400)
        self.assertError(self.server.get("/api/locks/extend"), 405)
        self.assertEqual(self.info(res)["expiresAt"], a["expiresAt"])

    def test_extend_does_not_disturb_waiters(self):
        res = uniq()
        a = self.acquire_ok(res, "c", ttl=30000)
        w = Waiter(self.server, res, "w")
        w.start()
        self.assertTrue(wait_until(lambda: self.info(res)["waiting"] == 1))
        e = self.json_of(self.server.post("/api/locks/extend", {"resource": res,
                                                                "token": a["token"],
                                                                "ttl": 60000}))
        self.assertIs(e["extended"], True)
        self.assertEqual(self.info(res)["waiting"], 1)
        self.json_of(self.server.release(res, a["token"]))
        w.join(15 * SLOW)
        self.assertIs(w.result["acquired"], True)


if __name__ == "__main__":
    harness.main()
