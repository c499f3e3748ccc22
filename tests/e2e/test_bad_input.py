"""Every kind of bad input gets the status the contract names, in the NestJS error shape,
and changes nothing; broken, stalled or idle clients never slow down the others."""
import concurrent.futures
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SLOW, ServerTestCase, parse_responses, uniq  # noqa: E402

ACQ = "/api/locks/acquire"
REL = "/api/locks/release"


def raw_request(method, path, body=b"", headers=(), close=True):
    lines = [b"%s %s HTTP/1.1" % (method.encode(), path), b"Host: 127.0.0.1"]
    lines += list(headers)
    if body or method == "POST":
        lines.append(b"Content-Length: %d" % len(body))
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def setup_changes(test):
    test.held_res = uniq("held")
    test.held = test.acquire_ok(test.held_res, "holder", ttl=60000)
    test.unchanged = True
    test.before = test.snapshot()


def check_unchanged(test):
    """Bad requests change nothing: the lock taken in setUp is still held as it was and,
    unless the test also made legitimate changes, no lock or counter moved."""
    info = test.info(test.held_res)
    test.assertIs(info["exists"], True, info)
    test.assertEqual(info["clientId"], "holder")
    test.assertEqual(info["fencingToken"], test.held["fencingToken"])
    test.assertEqual(info["expiresAt"], test.held["expiresAt"])
    if test.unchanged:
        test.assertEqual(test.snapshot(), test.before)


class BadJson(ServerTestCase):
    """Bodies that are not a valid acquire/release request: 400, nothing changes."""

    unchanged = True  # set False by tests that also make legitimate changes

    def setUp(self):
        setup_changes(self)

    def tearDown(self):
        super().tearDown()
        check_unchanged(self)

    def post_raw_json(self, path, text, status=400):
        if isinstance(text, str):
            text = text.encode("utf-8")
        r = self.server.post(path, text, headers={"Content-Type": "application/json"})
        return self.assertError(r, status, "Bad Request" if status == 400 else None)

    def test_malformed_json(self):
        for text in ('{', '{"resource": "a", "clientId": "b",}', 'not json', '',
                     '{"resource": "a" "clientId": "b"}', "{'resource': 'a'}",
                     '{"resource": "a", "clientId": "b"} trailing',
                     '{"resource": "a", "clientId": "b"}{}',
                     '{"resource": "a\\x", "clientId": "b"}',
                     '{"resource": "' + "\\u12" + '", "clientId": "b"}', 'NaN',
                     '{"resource": "a", "clientId": "b", "ttl": NaN}',
                     '{"resource": "a", "clientId": "b", "ttl": Infinity}',
                     '{"resource": "a", "clientId": "b", "ttl": 0x10}',
                     '{"resource": "a", "clientId": "b", "ttl": 01000}'):
            with self.subTest(text=text):
                self.post_raw_json(ACQ, text)
                self.post_raw_json(REL, text)

    def test_not_an_object(self):
        for text in ('[]', '[{"resource": "a", "clientId": "b"}]', '"str"', '123', 'null',
                     'true', 'false'):
            with self.subTest(text=text):
                self.post_raw_json(ACQ, text)
                self.post_raw_json(REL, text)

    def test_deeply_nested(self):
        self.post_raw_json(ACQ, "[" * 8000 + "]" * 8000)
        self.post_raw_json(ACQ, "[" * 8000)
        self.post_raw_json(ACQ, '{"a":' * 2500 + "1" + "}" * 2499)

    def test_missing_fields(self):
        for body in ({}, {"resource": "r"}, {"clientId": "c"}, {"ttl": 1000},
                     {"resource": "r", "ttl": 1000}):
            with self.subTest(body=body):
                self.assertError(self.server.post(ACQ, body), 400, "Bad Request")
        for body in ({}, {"resource": self.held_res}, {"token": self.held["token"]}):
            with self.subTest(body=body):
                self.assertError(self.server.post(REL, body), 400, "Bad Request")

    def test_wrong_types_names(self):
        bad = [None, 123, 1.5, True, [], ["a"], {}, {"a": 1}, ""]
        for v in bad:
            with self.subTest(resource=v):
                self.assertError(self.server.post(ACQ, {"resource": v, "clientId": "c"}), 400)
            with self.subTest(clientId=v):
                self.assertError(self.server.post(ACQ, {"resource": uniq(), "clientId": v}),
                                 400)
            with self.subTest(release_resource=v):
                self.assertError(self.server.post(REL, {"resource": v,
                                                        "token": self.held["token"]}), 400)
        for v in (None, 123, True, [], {}):
            with self.subTest(token=v):
                self.assertError(self.server.post(REL, {"resource": self.held_res,
                                                        "token": v}), 400)

    def test_ttl_out_of_range_or_wrong_type(self):
        for ttl in (0, -1, -30000, 300001, 10 ** 12, 10 ** 30, 1.5, 29999.9, -0.5, "30000",
                    "abc", "", True, False, [], [30000], {}, {"ttl": 1}):
            with self.subTest(ttl=ttl):
                body = self.assertError(
                    self.server.post(ACQ, {"resource": uniq(), "clientId": "c", "ttl": ttl}),
                    400, "Bad Request")
                if ttl != 10 ** 30:  # (a parser may call that one invalid JSON instead)
                    self.assertIn("ttl", str(body["message"]))

    def test_ttl_extreme_numbers(self):
        # Numbers beyond what C integer types hold must be refused, not converted.
        for raw in ("1e30", "-1e30", "1e400", "1e19", "1.8446744073709552e19", "4294967296",
                    "4294997296", "9223372036854775807", "9223372036854775808",
                    "-9223372036854775808", "-4294967296", "-0.0000001", "300000.5",
                    "0.0", "-0"):
            for field in ("ttl", "wait") if raw not in ("0.0", "-0") else ("ttl",):
                with self.subTest(field=field, raw=raw):
                    self.post_raw_json(ACQ, '{"resource": "%s", "clientId": "c", "%s": %s}'
                                       % (uniq(), field, raw))

    def test_ttl_bad_on_held_resource_is_still_400(self):
        # Validation comes before the lock table: a contended resource also gets 400.
        self.assertError(self.server.post(ACQ, {"resource": self.held_res, "clientId": "c",
                                                "ttl": 0}), 400)

    def test_wait_out_of_range_or_wrong_type(self):
        for wait in (-1, 300001, 1.5, "0", "100", True, [], {}):
            with self.subTest(wait=wait):
                body = self.assertError(
                    self.server.post(ACQ, {"resource": uniq(), "clientId": "c", "wait": wait}),
                    400, "Bad Request")
                self.assertIn("wait", str(body["message"]))

    def test_names_too_long(self):
        cases = [
            {"resource": "r" * 513, "clientId": "c"},
            {"resource": "\u20ac" * 171, "clientId": "c"},  # 513 bytes, 171 characters
            {"resource": "r" * 5000, "clientId": "c"},
            {"resource": uniq(), "clientId": "c" * 129},
            {"resource": uniq(), "clientId": "\u00e9" * 65},  # 130 bytes
        ]
        for body in cases:
            with self.subTest(lens=(len(body["resource"]), len(body["clientId"]))):
                self.assertError(self.server.post(ACQ, body), 400, "Bad Request")
        self.assertError(self.server.post(REL, {"resource": "r" * 513,
                                                "token": self.held["token"]}), 400)

    def test_control_characters(self):
        for ch in ("\u0000", "\u0001", "\t", "\n", "\r", "\u001b", "\u001f", "\u007f"):
            for field in ("resource", "clientId"):
                body = {"resource": uniq(), "clientId": "c"}
                body[field] = "a" + ch + "b"
                with self.subTest(field=field, ch=ch):
                    self.assertError(self.server.post(ACQ, body), 400, "Bad Request")
            with self.subTest(release=ch):
                self.assertError(self.server.post(REL, {"resource": "a" + ch,
                                                        "token": self.held["token"]}), 400)

    def test_invalid_utf8_in_body(self):
        for raw in (b"\xff\xfe", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xc3",
                    b"a\x80b", b"\xf8\x88\x80\x80\x80", b"\xf4\x90\x80\x80"):
            for field in ("resource", "clientId"):
                vals = {"resource": b"ok-" + uniq().encode(), "clientId": b"c"}
                vals[field] = b"x" + raw + b"y"
                text = b'{"resource": "%s", "clientId": "%s"}' % (vals["resource"],
                                                                  vals["clientId"])
                with self.subTest(field=field, raw=raw):
                    self.post_raw_json(ACQ, text)

    def test_escaped_surrogates_and_nul(self):
        self.unchanged = False
        for esc in ("\\ud800", "\\udc00", "\\ud800x", "\\u0000", "\\u001f", "\\u007f"):
            with self.subTest(esc=esc):
                self.post_raw_json(ACQ, '{"resource": "a%sb", "clientId": "c"}' % esc)
        # A well-formed surrogate pair is a normal character.
        res = uniq()
        text = '{"resource": "%s\\ud83d\\udd12", "clientId": "c"}' % res
        b = self.json_of(self.server.post(ACQ, text,
                                          headers={"Content-Type": "application/json"}))
        self.assertIs(b["acquired"], True)
        self.assertEqual(self.info(res + "\U0001F512")["exists"], True)
        self.json_of(self.server.release(res + "\U0001F512", b["token"]))

    def test_message_echoes_at_most_64_bytes(self):
        body = self.assertError(self.server.post(ACQ, {"resource": "Z" * 600,
                                                       "clientId": "c"}), 400)
        self.assertNotIn("Z" * 65, json.dumps(body))
        body = self.assertError(self.server.post(ACQ, {"resource": uniq(),
                                                       "clientId": "Q" * 300}), 400)
        self.assertNotIn("Q" * 65, json.dumps(body))
        body = self.assertError(self.server.post(ACQ, {"resource": uniq(), "clientId": "c",
                                                       "ttl": "W" * 300}), 400)
        self.assertNotIn("W" * 65, json.dumps(body))
        body = self.post_raw_json(ACQ, '{"resource": ' + "K" * 500)
        self.assertNotIn("K" * 65, json.dumps(body))


class BadHttp(ServerTestCase):

    unchanged = True  # set False by tests that also make legitimate changes

    def setUp(self):
        setup_changes(self)

    def tearDown(self):
        super().tearDown()
        check_unchanged(self)

    def test_404_exact(self):
        r = self.server.get("/api/nope")
        self.assertEqual(self.json_of(r, 404), {"statusCode": 404,
                                                "message": "Cannot GET /api/nope",
                                                "error": "Not Found"})
        b = self.assertError(self.server.post("/api/nope", {"a": 1}), 404, "Not Found")
        self.assertEqual(b["message"], "Cannot POST /api/nope")
        b = self.assertError(self.server.delete("/nope/deeper?x=1"), 404, "Not Found")
        self.assertTrue(b["message"].startswith("Cannot DELETE /nope/deeper"), b)
        self.assertError(self.server.get("/api/locksx"), 404, "Not Found")
        self.assertError(self.server.get("/api/locks/stats/more"), 404, "Not Found")

    def test_404_echoes_at_most_64_bytes_of_path(self):
        path = "/api/" + "x" * 3000
        b = self.assertError(self.server.get(path), 404, "Not Found")
        self.assertTrue(b["message"].startswith("Cannot GET /api/xxx"), b)
        self.assertNotIn("x" * 65, b["message"])
        self.assertLessEqual(len(b["message"].encode()), len("Cannot GET ") + 64 + 8)
        # Weird bytes in an unknown path still give valid JSON.
        r = self.server.raw(b"GET /\xff\xfe\"\\%00%22\x01 HTTP/1.1\r\nHost: x\r\n"
                            b"Connection: close\r\n\r\n")
        resp = parse_responses(r)
        self.assertTrue(resp, r)
        self.assertIn(resp[0][0], (400, 404), r)
        json.loads(resp[0][2].decode("utf-8"))

    def test_405_known_path_wrong_method(self):
        for method, path in (("GET", ACQ), ("PUT", ACQ), ("GET", REL), ("DELETE", REL),
                             ("POST", "/api/locks/stats"), ("DELETE", "/api/locks"),
                             ("PUT", "/api/locks"), ("POST", "/api/locks"),
                             ("POST", "/api/locks/info/x"), ("DELETE", "/api/locks/info/x"),
                             ("GET", "/api/locks/client/x"), ("POST", "/api/locks/client/x"),
                             ("PATCH", "/api/locks/stats"), ("POST", "/healthz")):
            with self.subTest(method=method, path=path):
                r = self.server.request(method, path)
                b = self.assertError(r, 405, "Method Not Allowed")
                self.assertEqual(b["message"], "Cannot %s %s" % (method, path))
                # RFC 9110: a 405 names the allowed methods.
                allowed = [m.strip() for m in r.headers.get("allow", "").split(",")]
                self.assertNotIn(method, allowed, r.headers)
                self.assertTrue(set(allowed) & {"GET", "POST", "DELETE"}, r.headers)

    def test_413_body_too_large(self):
        self.unchanged = False
        pad = " " * (16 * 1024)
        body = ('{"resource": "%s", "clientId": "c"}' % uniq()) + pad
        self.assertGreater(len(body), 16384)
        r = self.server.post(ACQ, body, headers={"Content-Type": "application/json"})
        self.assertError(r, 413)
        # Exactly 16 KiB is fine.
        res = uniq()
        head = '{"resource": "%s", "clientId": "c"}' % res
        body = head + " " * (16384 - len(head))
        self.assertEqual(len(body), 16384)
        r = self.server.post(ACQ, body, headers={"Content-Type": "application/json"})
        b = self.json_of(r)
        self.assertIs(b["acquired"], True)
        self.json_of(self.server.release(res, b["token"]))

    def test_413_chunked_body(self):
        chunk = b" " * 4096
        data = (b"POST /api/locks/acquire HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        data += b"%x\r\n%s\r\n" % (len(b'{"resource": "a", "clientId": "c"}'),
                                   b'{"resource": "a", "clientId": "c"}')
        for _ in range(5):
            data += b"%x\r\n%s\r\n" % (len(chunk), chunk)
        data += b"0\r\n\r\n"
        resp = parse_responses(self.server.raw(data))
        self.assertEqual(resp[0][0], 413, resp)

    def test_413_announced_length_without_sending_it(self):
        # A Content-Length far above the limit is refused without reading the body.
        t0 = time.time()
        s = harness.connect(self.server)
        try:
            s.sendall(b"POST /api/locks/acquire HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{")
            data, _ = harness.recv_until_closed(s, 8 * SLOW)
        finally:
            s.close()
        resp = parse_responses(data)
        self.assertTrue(resp, data)
        self.assertEqual(resp[0][0], 413, data)
        self.assertLess(time.time() - t0, 8 * SLOW)

    def test_chunked_small_body_works(self):
        self.unchanged = False
        res = uniq()
        payload = json.dumps({"resource": res, "clientId": "chunky"}).encode()
        data = (b"POST /api/locks/acquire HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        data += b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (5, payload[:5], len(payload) - 5,
                                                       payload[5:])
        resp = parse_responses(self.server.raw(data))
        self.assertEqual(resp[0][0], 200, resp)
        b = json.loads(resp[0][2])
        self.assertIs(b["acquired"], True)
        self.json_of(self.server.release(res, b["token"]))

    def test_415_other_content_type(self):
        body = json.dumps({"resource": uniq(), "clientId": "c"})
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                      "application/xml", "text/json", "application/jsonp"):
            with self.subTest(ctype=ctype):
                r = self.server.post(ACQ, body, headers={"Content-Type": ctype})
                self.assertError(r, 415, "Unsupported Media Type")
                r = self.server.post(REL, json.dumps({"resource": self.held_res,
                                                      "token": self.held["token"]}),
                                     headers={"Content-Type": ctype})
                self.assertError(r, 415, "Unsupported Media Type")

    def test_431_headers_too_large(self):
        r = self.server.get("/api/locks/stats", headers={"X-Big": "a" * 9000})
        self.assertError(r, 431)
        hdrs = dict(("X-H%03d" % i, "v" * 90) for i in range(100))
        r = self.server.get("/api/locks/stats", headers=hdrs)
        self.assertError(r, 431)
        r = self.server.post(REL, {"resource": self.held_res, "token": self.held["token"]},
                             headers={"X-Big": "a" * 9000})
        self.assertError(r, 431)
        # Under the limit is fine.
        r = self.server.get("/api/locks/stats", headers={"X-Big": "a" * 6000})
        self.assertEqual(r.status, 200)

    def test_long_request_line(self):
        data = self.server.raw(b"GET /api/locks/info/" + b"a" * 10000 +
                               b" HTTP/1.1\r\nHost: x\r\n\r\n")
        resp = parse_responses(data)
        self.assertTrue(resp, data)
        self.assertIn(resp[0][0], (414, 431), data)

    def test_garbage_bytes_400_and_close(self):
        for junk in (b"\x00\x01\x02\x03garbage\r\n\r\n", b"HELLO\r\n\r\n",
                     b"GET / HTTP/1.1\r\nNo colon header\r\n\r\n",
                     b"GET /api/locks HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
                     b"GET /api/locks HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                     b"Content-Length: 2\r\n\r\nab",
                     b"POST /api/locks/acquire HTTP/1.1\r\nHost: x\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
                     b"GET /api/locks HTTP/1.1\r\nHost: x\r\n\r\n\x16\x03\x01\x02\x00\x01\x00",
                     b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64)):
            with self.subTest(junk=junk[:40]):
                t0 = time.time()
                data = self.server.raw(junk, read_timeout=8)
                # The server closed the connection (raw() returned well before its timeout).
                self.assertLess(time.time() - t0, 7 * SLOW, junk)
                resp = parse_responses(data)
                self.assertTrue(resp, data)
                self.assertEqual(resp[-1][0], 400, data)
                json.loads(resp[-1][2])

    def test_bad_names_in_path(self):
        for path in ("/api/locks/info/a%00b", "/api/locks/info/a%0Ab", "/api/locks/info/%7F",
                     "/api/locks/info/%FF%FE", "/api/locks/info/%C0%AF",
                     "/api/locks/info/" + "r" * 513, "/api/locks/info/" + "%E2%82%AC" * 171,
                     "/api/locks/info/%zz", "/api/locks/info/a%2"):
            with self.subTest(path=path[:60]):
                self.assertError(self.server.get(path), 400, "Bad Request")
        for path in ("/api/locks/client/a%00b", "/api/locks/client/%1F",
                     "/api/locks/client/" + "c" * 129, "/api/locks/client/%FF",
                     "/api/locks/client/%zz"):
            with self.subTest(path=path[:60]):
                self.assertError(self.server.delete(path), 400, "Bad Request")
        # 512 bytes is still a name.
        self.assertEqual(self.json_of(self.server.get("/api/locks/info/" + "r" * 512))
                         ["exists"], False)
        self.assertEqual(self.json_of(self.server.delete("/api/locks/client/" + "c" * 128))
                         ["releasedCount"], 0)

    def test_half_request_does_not_delay_others(self):
        self.unchanged = False
        stalled = []
        try:
            for part in (b"POST /api/locks/acquire HTTP/1.1\r\nHost: x\r\nContent-Length: 100"
                         b"\r\nContent-Type: application/json\r\n\r\n{\"resource\": \"x",
                         b"GET /api/locks/sta", b"GET /api/locks HTTP/1.1\r\nHost: x\r\nX-A: ",
                         b"P"):
                for _ in range(5):
                    s = harness.connect(self.server)
                    s.sendall(part)
                    stalled.append(s)
            for i in range(20):
                t0 = time.time()
                r = self.server.get("/api/locks/stats", timeout=5)
                self.assertEqual(r.status, 200)
                self.assertLess(time.time() - t0, 1.0 * SLOW)
                res = uniq()
                t0 = time.time()
                b = self.acquire_ok(res, "c")
                self.json_of(self.server.release(res, b["token"]))
                self.assertLess(time.time() - t0, 1.0 * SLOW)
        finally:
            for s in stalled:
                s.close()

    def test_slow_but_complete_request_is_served(self):
        self.unchanged = False
        res = uniq()
        body = json.dumps({"resource": res, "clientId": "slow"}).encode()
        req = (b"POST /api/locks/acquire HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
               b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        s = harness.connect(self.server)
        try:
            for i in range(0, len(req), 40):
                s.sendall(req[i:i + 40])
                time.sleep(0.05)
            data, _ = harness.recv_until_closed(s, 10 * SLOW)
        finally:
            s.close()
        resp = parse_responses(data)
        self.assertEqual(resp[0][0], 200, data)
        b = json.loads(resp[0][2])
        self.assertIs(b["acquired"], True)
        self.json_of(self.server.release(res, b["token"]))

    def test_stalled_request_times_out(self):
        # The default request timeout is 10 s: the stalled request gets 408 or is closed,
        # not before ~2 s (a slow client gets a fair chance) and not after ~20 s.
        s = harness.connect(self.server)
        try:
            s.sendall(b"POST /api/locks/acquire HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n"
                      b"Content-Type: application/json\r\n\r\n{\"resou")
            t0 = time.time()
            data, closed = harness.recv_until_closed(s, 2)
            self.assertFalse(closed, "closed after %.1fs: %r" % (time.time() - t0, data))
            self.assertEqual(data, b"")
            # Meanwhile the others are served.
            self.assertEqual(self.server.get("/healthz", timeout=2).status, 200)
            more, closed = harness.recv_until_closed(s, 25 * SLOW)
            data += more
            self.assertTrue(closed or data, "still open after %.1fs" % (time.time() - t0))
            resp = parse_responses(data)
            if resp:
                self.assertEqual(resp[0][0], 408, data)
        finally:
            s.close()

    def test_many_idle_connections(self):
        self.unchanged = False
        socks = []
        try:
            for i in range(2000):
                socks.append(socket.create_connection(("127.0.0.1", self.server.port),
                                                      timeout=10 * SLOW))
            # Some of them also sent half a request.
            for s in socks[:200]:
                s.sendall(b"GET /api/locks HTTP/1.1\r\n")
            time.sleep(0.2)
            for i in range(10):
                t0 = time.time()
                res = uniq()
                b = self.acquire_ok(res, "busy")
                self.assertEqual(self.json_of(self.server.release(res, b["token"])),
                                 {"released": True})
                self.assertLess(time.time() - t0, 2.0 * SLOW)
            # Idle ones are still usable.
            for s in socks[1000:1010]:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            for s in socks[1000:1010]:
                data = b""
                while b"\r\n\r\n" not in data or not parse_responses(data):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.assertEqual(parse_responses(data)[0][0], 200, data)
        finally:
            for s in socks:
                s.close()
        # The server is still fine afterwards.
        self.assertEqual(self.server.get("/healthz").status, 200)

    def test_concurrent_garbage_and_good_clients(self):
        self.unchanged = False
        stop = threading.Event()

        def junk():
            n = 0
            while not stop.is_set():
                try:
                    self.server.raw(os.urandom(200) + b"\r\n\r\n", read_timeout=3)
                except OSError:
                    pass
                n += 1
            return n

        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            futs = [ex.submit(junk) for _ in range(3)]
            try:
                for i in range(30):
                    res = uniq()
                    b = self.acquire_ok(res, "good")
                    self.json_of(self.server.release(res, b["token"]))
            finally:
                stop.set()
            self.assertGreater(sum(f.result() for f in futs), 0)


class BadQuery(ServerTestCase):

    def test_bad_list_parameters(self):
        for q in ("limit=abc", "limit=-1", "limit=0", "limit=1.5", "limit=", "cursor=%zz",
                  "cursor=not-a-cursor", "prefix=%zz", "clientId=%zz",
                  # filters follow the name rules, like names in bodies and paths
                  "clientId=%FF", "clientId=%00", "clientId=a%0Ab", "prefix=%FF",
                  "prefix=%7F", "clientId=" + "c" * 129):
            with self.subTest(q=q):
                self.assertError(self.server.get("/api/locks?" + q), 400, "Bad Request")

    def test_empty_filters_mean_no_filter(self):
        self.acquire_ok(harness.uniq("q"), "empty-filter-client")
        body = self.json_of(self.server.get("/api/locks?prefix=&clientId="), 200)
        self.assertGreaterEqual(body["count"], 1)


class Timeouts(ServerTestCase):
    """With short --idle-timeout / --request-timeout (the defaults are 60 s and 10 s)."""
    server_args = ("--idle-timeout", "1000", "--request-timeout", "1000")

    def test_idle_connection_closed(self):
        s = harness.connect(self.server)
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            t0 = time.time()
            data, closed = harness.recv_until_closed(s, 10 * SLOW)
            self.assertTrue(closed, data)
            self.assertEqual(parse_responses(data)[0][0], 200, data)
            self.assertGreater(time.time() - t0, 0.5)
        finally:
            s.close()

    def test_never_used_connection_closed(self):
        s = harness.connect(self.server)
        try:
            data, closed = harness.recv_until_closed(s, 10 * SLOW)
            self.assertTrue(closed)
            self.assertNotIn(b"200", data)
        finally:
            s.close()

    def test_stalled_request_408(self):
        s = harness.connect(self.server)
        try:
            s.sendall(b"POST /api/locks/acquire HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n"
                      b"Content-Type: application/json\r\n\r\n{")
            data, closed = harness.recv_until_closed(s, 10 * SLOW)
            self.assertTrue(closed, data)
            resp = parse_responses(data)
            if resp:
                self.assertEqual(resp[0][0], 408, data)
                json.loads(resp[0][2])
        finally:
            s.close()
        self.assertEqual(self.info("x")["exists"], False)

    def test_trickling_client_still_timed_out(self):
        # One byte every 200 ms keeps the connection busy but the request never completes:
        # the request timeout counts from its start, not from the last byte.
        s = harness.connect(self.server)
        closed = False
        t0 = time.time()
        try:
            s.sendall(b"POST /api/locks/acquire HTTP/1.1\r\n")
            while time.time() - t0 < 8 * SLOW:
                try:
                    s.sendall(b"X-Slow: a\r\n")
                except OSError:
                    closed = True
                    break
                data, closed = harness.recv_until_closed(s, 0.2)
                if closed or data:
                    closed = True
                    break
        finally:
            s.close()
        self.assertTrue(closed, "a trickling request was never timed out")


class MaxConnections(ServerTestCase):
    server_args = ("--max-connections", "20")

    def test_connections_past_limit_closed_then_recover(self):
        # Connections closed just before (the harness's start-up probe) count until the
        # server has read their EOF; one round trip after them makes sure it has.
        self.assertEqual(self.server.get("/healthz").status, 200)
        socks = [harness.connect(self.server) for _ in range(20)]
        try:
            # Make sure the server has accepted them all: each one answers.
            for s in socks:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            for s in socks:
                data = b""
                while not parse_responses(data):
                    chunk = s.recv(4096)
                    self.assertTrue(chunk, "one of the first 20 connections was refused")
                    data += chunk
            extra = harness.connect(self.server)
            try:
                extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            except OSError:
                pass
            data, closed = harness.recv_until_closed(extra, 5 * SLOW)
            extra.close()
            self.assertTrue(closed, data)
            self.assertNotIn(b"200 OK", data)
        finally:
            for s in socks:
                s.close()
        ok = harness.wait_until(lambda: self._healthy(), timeout=5)
        self.assertTrue(ok)

    def _healthy(self):
        try:
            return self.server.get("/healthz", timeout=2).status == 200
        except OSError:
            return False


if __name__ == "__main__":
    harness.main()
