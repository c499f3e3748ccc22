"""Adversarial tests: hostile or unusual clients against the real `candado serve` binary.

Two kinds of test live here:

* Tests whose docstring starts with "BUG-n" pin a bug found by trying to break the
  server. They fail until that bug is fixed; the docstring gives the reproduction, what
  the contract (shared API.md, RFC 9112) expects and what the server did.
* Every other test is an attack the server already survives correctly; those must pass.

Everything runs on 127.0.0.1 with bounded loops. Run with
    CANDADO_BIN=build-asan/candado CANDADO_SANITIZE=1 python3 tests/e2e/test_adversarial.py
"""
import json
import os
import random
import resource
import signal
import socket
import struct
import sys
import threading
import time
import unittest
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, Server, ServerTestCase, connect, main,  # noqa: E402
                     parse_responses, recv_until_closed, server_ok, uniq, wait_until)


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def raise_fd_limit(need):
    """Raises this process's soft descriptor limit; False when `need` cannot be had."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))
        except (ValueError, OSError):
            pass
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft >= need


def post_bytes(path, obj, extra=b""):
    body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def acquire_bytes(resource_, client, wait=0, ttl=None):
    d = {"resource": resource_, "clientId": client, "wait": wait}
    if ttl is not None:
        d["ttl"] = ttl
    return post_bytes(b"/api/locks/acquire", d)


def read_responses(sock, n, timeout):
    """Reads until n whole responses arrived (or timeout, unscaled); returns them."""
    sock.settimeout(0.2)
    data = b""
    deadline = time.time() + timeout
    while len(parse_responses(data)) < n and time.time() < deadline:
        try:
            chunk = sock.recv(1 << 20)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            break
        if not chunk:
            break
        data += chunk
    return parse_responses(data)


def exchange(server, data, n=1, timeout=None):
    """Sends raw bytes on a new connection and returns the first n answers (fewer if
    the server closes or the time, default 3 s scaled, runs out)."""
    sk = connect(server)
    try:
        sk.sendall(data)
        return read_responses(sk, n, timeout or 3 * SLOW)
    finally:
        sk.close()


def bulk_acquire(server, names, client="bulk", ttl=300000, batch=500):
    """Acquires many locks fast over one pipelined connection."""
    sk = connect(server, timeout=30)
    try:
        for start in range(0, len(names), batch):
            part = names[start:start + batch]
            sk.sendall(b"".join(acquire_bytes(n, client, 0, ttl) for n in part))
            got = read_responses(sk, len(part), 30 * SLOW)
            assert len(got) == len(part), "bulk acquire got %d of %d" % (len(got), len(part))
            for status, _, body in got:
                assert status == 200 and json.loads(body)["acquired"], body
    finally:
        sk.close()


def server_fds(server):
    return len(os.listdir("/proc/%d/fd" % server.proc.pid))


def check_error_shape(tc, status, body, want_status=None):
    j = json.loads(body.decode("utf-8"))
    if want_status is not None:
        tc.assertEqual(status, want_status, body)
    tc.assertEqual(j.get("statusCode"), status, body)
    tc.assertIsInstance(j.get("message"), (str, list), body)
    tc.assertIsInstance(j.get("error"), str, body)
    return j


# ---------------------------------------------------------------------------
# Bugs (these fail until fixed)
# ---------------------------------------------------------------------------

class HandOffRecursionCrash(unittest.TestCase):
    def test_chained_handoffs_do_not_overflow_the_stack(self):
        """BUG-1 (high, remote crash): a lock hand-off answers the waiter, which parses that
        waiter's pipelined next request inside the same call stack
        (cd_http_respond_with -> drain -> process -> handler -> store -> on_freed ->
        grant_next -> handoff_cb -> cd_http_respond_with ...). When each of N waiters on
        one resource pipelines `DELETE /api/locks/client/<its own id>` behind its
        `acquire wait>0`, one release recurses N levels deep. Repro: holder holds R; N
        connections each send
          POST /api/locks/acquire {"resource":"R","clientId":"w<i>","wait":60000}
          DELETE /api/locks/client/w<i>
        then the holder releases R. Expected: every waiter is granted in turn and freed,
        server keeps running. Got: SIGSEGV (RelWithDebInfo, N=4000) /
        "AddressSanitizer: stack-overflow" (ASan, N=3000)."""
        n = 6000
        if not raise_fd_limit(n + 200):
            self.skipTest("needs %d descriptors" % (n + 200))
        with Server() as s:
            tok = s.acquire("R", "holder", ttl=60000).json()["token"]
            socks = []
            try:
                for i in range(n):
                    sk = connect(s, timeout=30)
                    sk.sendall(acquire_bytes("R", "w%d" % i, 60000)
                               + b"DELETE /api/locks/client/w%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
                    socks.append(sk)
                self.assertTrue(wait_until(
                    lambda: s.get("/api/locks/stats").json()["waiting"] == n, 30))
                try:
                    r = s.release("R", tok, timeout=60)
                    self.assertEqual(r.json(), {"released": True})
                except OSError as e:
                    self.fail("server died during the hand-off chain: %r" % e)
                server_ok(s)
                self.assertTrue(wait_until(
                    lambda: s.get("/api/locks/stats").json()["waiting"] == 0, 30))
                info = s.get("/api/locks/info/R").json()
                self.assertFalse(info["exists"], info)
                # the last waiter got its grant and its DELETE answer
                last = read_responses(socks[-1], 2, 10 * SLOW)
                self.assertEqual(len(last), 2, last)
                self.assertTrue(json.loads(last[0][2])["acquired"], last)
                self.assertEqual(json.loads(last[1][2])["releasedCount"], 1, last)
            finally:
                for sk in socks:
                    sk.close()


class PipelinedWaiterHangUp(unittest.TestCase):
    def test_waiter_with_64k_pipelined_behind_it_leaves_queue_on_hang_up(self):
        """BUG-2 (medium, lock granted to a dead client): while an `acquire wait>0` is
        pending, more than MAX_PIPELINED (64 KiB) of pipelined input makes server.c stop
        reading (uv_read_stop in keep()), so the EOF of a client that then hangs up is
        never seen. Repro: holder holds R; client sends
          POST /api/locks/acquire {"resource":"R","clientId":"ghost","wait":60000}
        then ~85 KB of `GET /healthz` requests, then close(). Expected (API.md: "A
        waiter that hangs up is out of the queue before the next grant and within one
        second"): waiting drops to 0; after the holder releases, R is free. Got:
        waiting stays 1, and the release hands R to "ghost", which nobody will release
        (held for its whole TTL)."""
        with Server() as s:
            tok = s.acquire("R", "holder", ttl=60000).json()["token"]
            sk = connect(s)
            sk.sendall(acquire_bytes("R", "ghost", 60000))
            self.assertTrue(wait_until(lambda: s.get("/api/locks/info/R").json()["waiting"] == 1))
            sk.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 2500)
            time.sleep(0.3 * SLOW)
            sk.close()
            left = wait_until(lambda: s.get("/api/locks/info/R").json()["waiting"] == 0,
                              timeout=1.5)
            released = s.release("R", tok).json()
            self.assertEqual(released, {"released": True})
            info = s.get("/api/locks/info/R").json()
            self.assertTrue(left, "the hung-up waiter is still queued")
            self.assertFalse(info["exists"], "R was handed to a client that hung up: %r" % info)


class StalledCloseAfterAnswer(unittest.TestCase):
    def test_unread_connection_close_answer_is_dropped_after_timeout(self):
        """BUG-3 (medium, memory/descriptor exhaustion): an answer sent with
        `Connection: close` (also HTTP/1.0 answers and every 4xx from fail()) puts the
        connection in C_CLOSING, where on_timer() does nothing and fail() even stops the
        timer; if the client never reads, the write never completes and the connection
        and its unsent answer stay forever. Repro: make GET /api/locks ~9 MB (20000
        locks), then with a small receive buffer send
          GET /api/locks HTTP/1.1 / Connection: close
        and never read. With --idle-timeout 1000 --request-timeout 1000, expected: the
        stalled connection is closed within a few seconds like an idle keep-alive one.
        Got: it stays open indefinitely holding ~9 MB each (50 such clients pinned
        ~450 MB for as long as they liked)."""
        with Server("--idle-timeout", "1000", "--request-timeout", "1000") as s:
            bulk_acquire(s, ["big-%05d-%s" % (i, "p" * 300) for i in range(20000)])
            base = server_fds(s)
            sk = socket.socket()
            sk.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sk.connect(("127.0.0.1", s.port))
            try:
                sk.sendall(b"GET /api/locks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                time.sleep(0.5)
                self.assertEqual(server_fds(s), base + 1)
                closed = wait_until(lambda: server_fds(s) == base, timeout=6)
                self.assertTrue(closed, "a connection whose close-after answer is never read "
                                        "stays open past every timeout")
            finally:
                sk.close()


class HalfCloseTruncation(unittest.TestCase):
    def test_half_closed_client_gets_the_whole_answer(self):
        """BUG-4 (low/medium, silent truncation): on_read treats EOF as a hang-up and
        uv_close()s the connection, cancelling a queued answer. A client that sends its
        request and then shutdown(SHUT_WR) (nc -N, some proxies and scripts) gets a large
        answer cut off mid-body while Content-Length promises all of it. Repro: 20000
        locks (GET /api/locks ~9 MB); send `GET /api/locks` then SHUT_WR, read after 1 s.
        Expected: the whole body. Got: ~3.9 MB of 9.4 MB, then EOF."""
        with Server() as s:
            bulk_acquire(s, ["hc-%05d-%s" % (i, "p" * 300) for i in range(20000)])
            full = len(s.get("/api/locks", timeout=60).body)
            sk = connect(s)
            try:
                sk.sendall(b"GET /api/locks HTTP/1.1\r\nHost: x\r\n\r\n")
                sk.shutdown(socket.SHUT_WR)
                time.sleep(1)
                out, _ = recv_until_closed(sk, 20 * SLOW)
            finally:
                sk.close()
            head, _, body = out.partition(b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), out[:200])
            self.assertGreater(full, 5000000)
            self.assertEqual(len(body), full, "answer truncated after the client half-closed")


class AbsoluteFormTarget(ServerTestCase):
    def test_absolute_form_request_target_is_routed(self):
        """BUG-5 (low, protocol conformance): RFC 9112 3.2.2 / RFC 7230 5.3.2 say a server
        MUST accept the absolute-form request-target; Express (the original service)
        routes it by its path. Repro:
          GET http://127.0.0.1/api/locks/stats HTTP/1.1
        Expected: 200 with the stats body. Got: 404 "Cannot GET
        http://127.0.0.1/api/locks/stats"."""
        out = self.server.raw(b"GET http://127.0.0.1/api/locks/stats HTTP/1.1\r\n"
                              b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n")
        rs = parse_responses(out)
        self.assertEqual(len(rs), 1, out)
        self.assertEqual(rs[0][0], 200, rs[0])
        self.assertIn("counters", json.loads(rs[0][2]))


# ---------------------------------------------------------------------------
# Attacks the server survives (must pass)
# ---------------------------------------------------------------------------

class HostileHttp(ServerTestCase):
    """Malformed or unusual HTTP: always a JSON answer in the documented shape, the
    server keeps running, and nothing changes in the lock table or the counters."""

    def setUp(self):
        self.held = uniq("held")
        self.acquire_ok(self.held, "owner", ttl=300000)
        self.before = self.snapshot()

    def tearDown(self):
        self.assertEqual(self.snapshot(), self.before)
        super().tearDown()

    def one(self, data, want_status, n=1):
        rs = exchange(self.server, data, n)
        self.assertGreaterEqual(len(rs), 1, data[:80])
        status, headers, body = rs[0]
        self.assertTrue(headers.get("content-type", "").startswith("application/json"), rs[0])
        if want_status >= 400:
            check_error_shape(self, status, body, want_status)
        else:
            self.assertEqual(status, want_status, rs[0])
            json.loads(body.decode("utf-8"))
        return rs

    def test_protocol_errors_get_json_errors(self):
        cases = [
            (b"POST /api/locks/acquire HTTP/1.1\r\nContent-Length: 5\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),            # CL + TE
            (b"POST /api/locks/acquire HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"FFFFFFFFFFFFFFFFFF\r\n", 400),                                 # chunk size overflow
            (b"POST /api/locks/acquire HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
             + (b"1000\r\n" + b" " * 4096 + b"\r\n") * 5 + b"0\r\n\r\n", 413),  # chunked > 16 KiB
            (b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(65))
             + b"\r\n", 431),                                                 # 65 headers
            (b"GET /api/locks/info/" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 431),  # long URL
            (b"GET /healthz HTTP/1.1\r\nX\x01Y: \xff\r\n\r\n", 400),         # odd header bytes
            (b"GET /api/locks/info/a\x00b HTTP/1.1\r\n\r\n", 400),           # NUL in URL
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),                      # HTTP/2 preface
            (b"FOO /api/locks HTTP/1.1\r\n\r\n", 400),                       # unknown method
            (b"POST /api/locks/acquire HTTP/1.1\r\nContent-Length: 2\r\n"
             b"Content-Length: 3\r\n\r\n{}", 400),                           # two lengths
            (b"POST /api/locks/acquire HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
            (b"POST /api/locks/acquire HTTP/1.1\r\nContent-Length: 99999999999999999999999"
             b"\r\n\r\n", 400),
            (b"POST /api/locks/acquire HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n{}", 400),
            (b"POST /api/locks/acquire HTTP/1.1\r\nExpect: 100-continue\r\n"
             b"Content-Length: 100000\r\n\r\n", 413),                        # no 100 for a too-big body
            (b"CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: x\r\n\r\n", 404),
            (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 404),
            (b"OPTIONS /api/locks HTTP/1.1\r\nHost: x\r\n\r\n", 405),
            (b"PROPFIND /api/locks HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        ]
        for data, status in cases:
            with self.subTest(data=data[:60]):
                self.one(data, status)

    def test_tolerated_oddities(self):
        self.one(b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(64))
                 + b"\r\n", 200)                                               # exactly 64
        self.one(b"GET /healthz HTTP/1.1\r\n" + b"A:\r\n" * 60 + b"\r\n", 200)  # tiny headers
        self.one(b"GET /api/locks/stats HTTP/1.1\r\nX-A: a\r\n  b\r\n\r\n", 200)  # obs-fold
        self.one(b"GET /healthz HTTP/1.1\nHost: x\n\n", 200)                  # bare LF
        self.one(b"GET /healthz HTTP/1.0\r\n\r\n", 200)
        self.one(b"GET /api/locks/stats HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 200)
        # chunk extensions and trailers are fine; the body is still validated
        rs = self.one(b"POST /api/locks/acquire HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"2;foo=bar\r\n{}\r\n0\r\nX-T: y\r\n\r\n", 400)
        self.assertIn("resource", json.loads(rs[0][2])["message"])

    def test_upgrade_and_expect_are_plain_requests(self):
        rs = self.one(b"GET /healthz HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
                      b"GET /api/locks/stats HTTP/1.1\r\n\r\n", 200, n=2)
        self.assertEqual(len(rs), 2, rs)
        self.assertEqual(rs[1][0], 200)
        rs = exchange(self.server, post_bytes(b"/api/locks/acquire",
                                              {"resource": self.held, "clientId": "x"},
                                              b"Expect: 100-continue\r\n"), n=2)
        self.assertEqual([r[0] for r in rs], [100, 200], rs)
        self.assertEqual(json.loads(rs[1][2])["code"], "LOCKED")
        # contended counter moved: refresh the baseline for tearDown
        self.before = self.snapshot()

    def test_path_names(self):
        ok = {b"a%2Fb": "a/b", b"%25": "%", b"\xc3\xa9": "\u00e9", b"%C3%A9": "\u00e9"}
        for raw, name in ok.items():
            with self.subTest(raw=raw):
                rs = self.one(b"GET /api/locks/info/" + raw + b" HTTP/1.1\r\n\r\n", 200)
                self.assertEqual(json.loads(rs[0][2]), {"exists": False, "resource": name})
        bad = [b"a%00b", b"ab%2", b"ab%", b"%zz", b"%C0%AF", b"%ED%A0%80", b"%FF", b"a%7Fb",
               b"a" * 513]
        for raw in bad:
            for route in (b"GET /api/locks/info/", b"DELETE /api/locks/client/"):
                with self.subTest(raw=raw[:20], route=route):
                    self.one(route + raw + b" HTTP/1.1\r\n\r\n", 400)
        rs = self.one(b"GET /api/locks/info/" + quote(self.held).encode() + b"?x=1 HTTP/1.1\r\n\r\n",
                      200)
        self.assertTrue(json.loads(rs[0][2])["exists"])

    def test_query_strings(self):
        bad = [b"limit", b"limit=", b"limit=+1", b"limit=-1", b"limit=0", b"limit=1e2",
               b"limit=100001", b"limit=99999999999999999999999", b"limit=%00",
               b"cursor=1.zz", b"cursor=.", b"cursor=1.0", b"cursor=1.%00",
               b"cursor=99999999999999999999999.00", b"prefix=%00", b"prefix=%zz",
               b"clientId=%ED%A0%80", b"prefix=" + b"a" * 513]
        for q in bad:
            with self.subTest(q=q[:30]):
                self.one(b"GET /api/locks?" + q + b" HTTP/1.1\r\n\r\n", 400)
        for q in (b"limit=1&limit=2", b"&&=&x", b"prefix=&clientId=", b"prefix=held+x",
                  b"cursor=", b"unknown=%zz"):
            with self.subTest(q=q):
                rs = self.one(b"GET /api/locks?" + q + b" HTTP/1.1\r\n\r\n", 200)
                j = json.loads(rs[0][2])
                self.assertEqual(j["count"], len(j["locks"]))


class HostileJson(ServerTestCase):
    def setUp(self):
        self.held = uniq("jheld")
        self.token = self.acquire_ok(self.held, "owner", ttl=300000)["token"]
        self.before = self.snapshot()

    def tearDown(self):
        self.assertEqual(self.snapshot(), self.before)
        super().tearDown()

    def send(self, path, body):
        rs = exchange(self.server, post_bytes(path, body))
        self.assertEqual(len(rs), 1, body[:100])
        return rs[0][0], rs[0][2]

    def test_bad_bodies_are_400_and_change_nothing(self):
        h = self.held.encode()
        bodies = [
            b"{" * 5000 + b"}" * 5000, b"[" * 8000 + b"]" * 8000,
            b'{"resource":"' + h + b'","clientId":"x","ttl":1e400}',
            b'{"resource":"' + h + b'","clientId":"x","ttl":-0}',
            b'{"resource":"' + h + b'","clientId":"x","ttl":1e-400}',
            b'{"resource":"' + h + b'","clientId":"x","ttl":1e300}',
            b'{"resource":"' + h + b'","clientId":"x","ttl":-1e300}',
            b'{"resource":"' + h + b'","clientId":"x","ttl":9223372036854775808}',
            b'{"resource":"' + h + b'","clientId":"x","ttl":1.0000000000000002}',
            b'{"resource":"' + h + b'","clientId":"x","ttl":NaN}',
            b'{"resource":"' + h + b'","clientId":"x","ttl":Infinity}',
            b'{"resource":"' + h + b'","clientId":"x","ttl":true}',
            b'{"resource":"' + h + b'","clientId":"x","ttl":"5"}',
            b'{"resource":"' + h + b'","clientId":"x","wait":4294967296}',
            b'{"resource":"' + h + b'","clientId":"x","wait":1e15}',
            b'\xef\xbb\xbf{"resource":"' + h + b'","clientId":"x"}',
            b'{"resource":"' + h + b'","clientId":"x"} garbage',
            b'{"resource":"' + h + b'","clientId":"x"}{}',
            b'{"resource":"a\\u0000b","clientId":"x"}',
            b'{"resource":"\\ud83d","clientId":"x"}', b'{"resource":"\\ude00x","clientId":"x"}',
            b'{"resource":"\xff","clientId":"x"}', b'{"resource":"\xc0\xaf","clientId":"x"}',
            b'{"resource":"a\x7f","clientId":"x"}', b'{"resource":"' + b"a" * 513 + b'","clientId":"x"}',
            b"null", b"[]", b'"x"', b" ", b'{"resource":1,"clientId":"x"}',
            b'{"resource":"' + h + b'","clientId":"' + b"c" * 129 + b'"}',
        ]
        for b in bodies:
            with self.subTest(body=b[:60]):
                st, body = self.send(b"/api/locks/acquire", b)
                check_error_shape(self, st, body, 400)
        st, body = self.send(b"/api/locks/acquire", b"{" * 20000)
        check_error_shape(self, st, body, 413)

    def test_forged_tokens_are_not_held(self):
        h = self.held.encode()
        for tok in (b"lock-99999999999999999999999-000000000000000000000000",
                    b"lock--1-000000000000000000000000", b"lock-1-00000000000000000000000G",
                    b"lock-1-000000000000000000000000x", b"", b"lock-",
                    self.token.upper().encode(), self.token.encode()[:-1],
                    self.token.encode() + b"0"):
            for path, flag in ((b"/api/locks/release", "released"),
                               (b"/api/locks/extend", "extended")):
                with self.subTest(tok=tok, path=path):
                    st, body = self.send(path, b'{"resource":"' + h + b'","token":"' + tok + b'"}')
                    self.assertEqual(st, 200)
                    self.assertEqual(json.loads(body),
                                     {flag: False, "code": "NOT_HELD",
                                      "error": "El lock no existe o el token no corresponde"})

    def test_escaped_keys_and_duplicates_are_json_semantics(self):
        name = uniq("esc")
        st, body = self.send(b"/api/locks/acquire",
                             b'{"\\u0072esource":"' + name.encode() + b'","clientId":"a",'
                             b'"clientId":"b","ttl":300000.0}')
        j = json.loads(body)
        self.assertTrue(j["acquired"], j)
        self.assertEqual(self.info(name)["clientId"], "b")
        self.assertEqual(self.server.release(name, j["token"]).json(), {"released": True})
        pair = "\U0001F600" + uniq("")
        st, body = self.send(b"/api/locks/acquire",
                             b'{"resource":"\\ud83d\\ude00' + pair[1:].encode() + b'","clientId":"x"}')
        j = json.loads(body)
        self.assertTrue(j["acquired"], j)
        self.assertTrue(self.info(pair)["exists"])
        self.server.release(pair, j["token"])
        self.before = self.snapshot()


class LockSemantics(ServerTestCase):
    def test_tokens_of_other_resources_and_earlier_grants(self):
        a, b = uniq("t"), uniq("t")
        ta = self.acquire_ok(a, "x", ttl=60000)["token"]
        tb = self.acquire_ok(b, "x", ttl=60000)["token"]
        self.assertFalse(self.server.release(a, tb).json()["released"])
        self.assertFalse(self.server.post("/api/locks/extend",
                                          {"resource": a, "token": tb}).json()["extended"])
        c = uniq("t")
        old = self.acquire_ok(c, "x", ttl=50)["token"]
        time.sleep(0.15)
        self.acquire_ok(c, "y", ttl=60000)
        self.assertFalse(self.server.release(c, old).json()["released"])
        self.assertFalse(self.server.post("/api/locks/extend",
                                          {"resource": c, "token": old, "ttl": 1}).json()["extended"])
        self.assertEqual(self.info(c)["clientId"], "y")
        self.server.release(a, ta)
        self.server.release(b, tb)

    def test_extend_racing_expiry_agrees_with_info(self):
        for i in range(60):
            r = uniq("race")
            tok = self.acquire_ok(r, "x", ttl=random.choice([5, 10, 20]))["token"]
            time.sleep(0.01)
            x = self.server.post("/api/locks/extend", {"resource": r, "token": tok,
                                                       "ttl": 60000}).json()
            info = self.info(r)
            self.assertEqual(x["extended"], info["exists"], (x, info))
            if info["exists"]:
                self.server.release(r, tok)

    def test_waiter_with_the_holders_own_client_id(self):
        r = uniq("self")
        self.acquire_ok(r, "me", ttl=int(300 * SLOW))
        t = time.time()
        j = self.json_of(self.server.acquire(r, "me", ttl=1000, wait=int(3000 * SLOW)))
        self.assertTrue(j["acquired"], j)
        self.assertLess(time.time() - t, 2.5 * SLOW)

    def test_delete_client_while_its_waiter_is_queued(self):
        r = uniq("del")
        self.acquire_ok(r, "holder", ttl=60000)
        sk = connect(self.server)
        try:
            sk.sendall(acquire_bytes(r, "holder", 5000))
            self.assertTrue(wait_until(lambda: self.info(r)["waiting"] == 1))
            d = self.json_of(self.server.delete("/api/locks/client/holder"))
            self.assertEqual(d["releasedCount"], 1)
            got = read_responses(sk, 1, 5 * SLOW)
            self.assertTrue(json.loads(got[0][2])["acquired"], got)
            self.assertEqual(self.info(r)["clientId"], "holder")
        finally:
            sk.close()
        self.server.delete("/api/locks/client/holder")

    def test_waiter_reset_with_linger_zero_leaves_queue(self):
        r = uniq("rst")
        tok = self.acquire_ok(r, "holder", ttl=60000)["token"]
        sk = socket.socket()
        sk.connect(("127.0.0.1", self.server.port))
        sk.sendall(acquire_bytes(r, "gone", 60000))
        self.assertTrue(wait_until(lambda: self.info(r)["waiting"] == 1))
        sk.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sk.close()
        self.assertTrue(wait_until(lambda: self.info(r)["waiting"] == 0, timeout=1))
        self.assertTrue(self.server.release(r, tok).json()["released"])
        self.assertFalse(self.info(r)["exists"])

    def test_waiter_outlives_nothing_when_holder_keeps_extending(self):
        r = uniq("ext")
        tok = self.acquire_ok(r, "holder", ttl=500)["token"]
        sk = connect(self.server)
        try:
            sk.sendall(acquire_bytes(r, "w", int(1000 * SLOW)))
            t = time.time()
            while time.time() - t < 1.5 * SLOW:
                self.server.post("/api/locks/extend", {"resource": r, "token": tok, "ttl": 500})
                time.sleep(0.1)
            got = read_responses(sk, 1, 3 * SLOW)
            j = json.loads(got[0][2])
            self.assertEqual(j["code"], "LOCKED", j)
            self.assertEqual(self.info(r)["clientId"], "holder")
        finally:
            sk.close()
        self.server.release(r, tok)

    def test_small_pipeline_behind_waiter_then_hang_up(self):
        r = uniq("pipe")
        tok = self.acquire_ok(r, "holder", ttl=60000)["token"]
        sk = connect(self.server)
        sk.sendall(acquire_bytes(r, "p", 60000) + b"GET /healthz HTTP/1.1\r\n\r\n" * 20)
        self.assertTrue(wait_until(lambda: self.info(r)["waiting"] == 1))
        sk.close()
        self.assertTrue(wait_until(lambda: self.info(r)["waiting"] == 0, timeout=1))
        self.server.release(r, tok)
        self.assertFalse(self.info(r)["exists"])

    def test_pipelined_answers_keep_order_around_a_wait(self):
        r = uniq("order")
        tok = self.acquire_ok(r, "holder", ttl=60000)["token"]
        sk = connect(self.server)
        try:
            sk.sendall(b"GET /healthz HTTP/1.1\r\n\r\n" + acquire_bytes(r, "p", 10000)
                       + b"GET /api/locks/info/" + quote(r, safe="").encode() + b" HTTP/1.1\r\n\r\n")
            self.assertTrue(wait_until(lambda: self.info(r)["waiting"] == 1))
            self.server.release(r, tok)
            got = read_responses(sk, 3, 5 * SLOW)
            self.assertEqual(len(got), 3, got)
            self.assertEqual(json.loads(got[0][2]), {"status": "ok"})
            self.assertTrue(json.loads(got[1][2])["acquired"])
            self.assertEqual(json.loads(got[2][2])["clientId"], "p")
        finally:
            sk.close()


class ManyWaiters(unittest.TestCase):
    def test_sigterm_with_1500_waiters_exits_clean(self):
        if not raise_fd_limit(1700):
            self.skipTest("needs descriptors")
        with Server() as s:
            s.acquire("R", "h", ttl=60000)
            socks = [connect(s) for _ in range(1500)]
            try:
                for i, sk in enumerate(socks):
                    sk.sendall(acquire_bytes("R", "w%d" % i, 60000))
                self.assertTrue(wait_until(
                    lambda: s.get("/api/locks/stats").json()["waiting"] == 1500, 20))
                self.assertEqual(s.stop(), 0)
                self.assertNotIn(b"ERROR", s.log)
            finally:
                for sk in socks:
                    sk.close()

    def test_sigterm_mid_flight_and_sigint_twice(self):
        with Server() as s:
            sk = connect(s)
            sk.sendall(b"POST /api/locks/acquire HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"res")
            sk2 = connect(s)
            sk2.sendall(acquire_bytes("Q", "a") + acquire_bytes("Q", "b", 60000))
            time.sleep(0.2)
            s.proc.send_signal(signal.SIGINT)
            s.proc.send_signal(signal.SIGINT)
            self.assertEqual(s.stop(), 0)
            sk.close()
            sk2.close()

    def test_5000_waiters_on_distinct_resources_time_out_together(self):
        n = 5000
        if not raise_fd_limit(n + 200):
            self.skipTest("needs descriptors")
        with Server() as s:
            names = ["D%d" % i for i in range(n)]
            bulk_acquire(s, names, "h", 60000)
            socks = []
            try:
                for name in names:
                    sk = connect(s)
                    sk.sendall(acquire_bytes(name, "w", int(1500 * SLOW)))
                    socks.append(sk)
                for sk in socks:
                    got = read_responses(sk, 1, 20 * SLOW)
                    self.assertEqual(len(got), 1)
                    j = json.loads(got[0][2])
                    self.assertEqual(j["code"], "LOCKED", j)
                st = s.get("/api/locks/stats").json()
                self.assertEqual(st["waiting"], 0)
                self.assertEqual(st["counters"]["waitTimeouts"], n)
                self.assertEqual(st["activeLocks"], n)
            finally:
                for sk in socks:
                    sk.close()


class ResourceLimits(unittest.TestCase):
    def test_max_connections_slowloris_and_idle(self):
        with Server("--max-connections", "50", "--request-timeout", "1500",
                    "--idle-timeout", "3000") as s:
            socks = [connect(s) for _ in range(60)]
            time.sleep(0.3)
            served = 0
            for sk in socks:
                try:
                    sk.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
                    sk.settimeout(2 * SLOW)
                    served += bool(sk.recv(1000))
                except OSError:
                    pass
            for sk in socks:
                sk.close()
            self.assertEqual(served, 50)

            def healthy():
                try:
                    return s.get("/healthz").status == 200
                except OSError:  # closed on accept while the 60 closes are still in flight
                    return False
            self.assertTrue(wait_until(healthy))
            # 1 byte every 0.3 s: cut off by the request timeout with a 408
            sk = connect(s)
            try:
                for ch in b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n":
                    sk.sendall(bytes([ch]))
                    time.sleep(0.3)
            except OSError:
                pass
            out, closed = recv_until_closed(sk, 3 * SLOW)
            sk.close()
            self.assertTrue(closed)
            self.assertTrue(out.startswith(b"HTTP/1.1 408"), out[:80])
            # CRLFs between requests do not keep a connection alive past the idle timeout
            sk = connect(s)
            t = time.time()
            closed = False
            while time.time() - t < 8 * SLOW:
                try:
                    sk.sendall(b"\r\n")
                    sk.settimeout(0.01)
                    if sk.recv(10) == b"":
                        closed = True
                        break
                except socket.timeout:
                    pass
                except OSError:
                    closed = True
                    break
                time.sleep(0.5)
            sk.close()
            self.assertTrue(closed)

    def test_non_reading_pipeliner_is_cut_off(self):
        with Server("--idle-timeout", "1000") as s:
            bulk_acquire(s, ["nr-%d-%s" % (i, "y" * 300) for i in range(300)])
            base = server_fds(s)
            sk = socket.socket()
            sk.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sk.connect(("127.0.0.1", s.port))
            sk.settimeout(0.5)
            try:
                for _ in range(400):
                    sk.sendall(b"GET /api/locks HTTP/1.1\r\nHost: x\r\n\r\n" * 50)
            except OSError:
                pass
            self.assertTrue(wait_until(lambda: server_fds(s) == base, timeout=5))
            sk.close()
            self.assertEqual(s.get("/healthz").status, 200)

    def test_many_idle_connections(self):
        n = 9000
        if not raise_fd_limit(n + 200):
            self.skipTest("needs descriptors")
        with Server() as s:
            socks = []
            try:
                for _ in range(n):
                    socks.append(connect(s))
                self.assertEqual(s.get("/healthz").status, 200)
                self.assertEqual(s.get("/api/locks/stats").status, 200)
            finally:
                for sk in socks:
                    sk.close()

    def test_paging_under_churn_has_no_duplicates_or_gaps(self):
        with Server() as s:
            stable = ["S%05d" % i for i in range(3000)]
            bulk_acquire(s, stable, "stable")
            stop = threading.Event()

            def churn():
                c = s.conn()
                toks = {}
                while not stop.is_set():
                    r = "C%d" % random.randint(0, 500)
                    if r in toks:
                        s.release(r, toks.pop(r), conn=c)
                    else:
                        j = s.acquire(r, "churn", ttl=random.choice([5, 50, 100000]), conn=c).json()
                        if j["acquired"]:
                            toks[r] = j["token"]
                c.close()

            th = threading.Thread(target=churn)
            th.start()
            try:
                for _ in range(6):
                    seen, cursor = [], None
                    c = s.conn()
                    while True:
                        q = "/api/locks?limit=%d" % random.choice([1, 7, 100, 999])
                        if cursor:
                            q += "&cursor=" + quote(cursor)
                        j = s.get(q, conn=c).json()
                        self.assertEqual(j["count"], len(j["locks"]))
                        seen += [l["resource"] for l in j["locks"]]
                        cursor = j.get("nextCursor")
                        if not cursor:
                            break
                    c.close()
                    self.assertEqual(len(seen), len(set(seen)), "duplicates across pages")
                    self.assertEqual(set(stable) - set(seen), set(), "stable locks skipped")
            finally:
                stop.set()
                th.join()


if __name__ == "__main__":
    main()
