"""Every endpoint answers with the keys, types and words of the contract (API.md) and of
the original LocksService document, and the original document's curl examples work as
written."""
import json
import os
import shutil
import subprocess
import sys
import time
import unittest
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (ISO_RE, LOCKED_RE, NOT_HELD_MSG, SLOW, TOKEN_RE,  # noqa: E402
                     ServerTestCase, now_ms, parse_iso, parse_responses, uniq)

# Names that stress JSON escaping in every response that echoes them.
ODD_NAMES = [
    'factura:"quoted"\\back\\slash',
    "factura:ñandú:Ünïcödé:日本語",
    "emoji:\U0001F512\U0001F600",
    "slash/and?query#hash&amp=1%41+plus space",
    "</script><b>html</b>'single'",
    "\u2028line-sep\u2029",
]


class AcquireShapes(ServerTestCase):

    def test_granted_shape(self):
        res = uniq("factura:create")
        before = now_ms()
        r = self.server.acquire(res, "client-abc123", ttl=30000)
        after = now_ms()
        self.assertTrue(r.headers.get("content-type", "").startswith("application/json"))
        b = self.json_of(r)
        self.assertIs(b["acquired"], True)
        m = TOKEN_RE.match(b["token"])
        self.assertTrue(m, b["token"])
        # The number in the token is the grant time.
        self.assertLessEqual(before - 2000, int(m.group(1)))
        self.assertLessEqual(int(m.group(1)), after + 2000)
        self.assertEqual(b["expiresIn"], 30000)
        self.assertIs(type(b["expiresIn"]), int)
        self.assertRegex(b["expiresAt"], ISO_RE)
        exp = parse_iso(b["expiresAt"])
        self.assertLessEqual(before + 30000 - 2000, exp)
        self.assertLessEqual(exp, after + 30000 + 2000)
        self.assertIs(type(b["fencingToken"]), int)
        self.assertGreater(b["fencingToken"], 0)
        # JavaScript clients read it as a Number: it must stay an exact integer there.
        self.assertLessEqual(b["fencingToken"], 2 ** 53 - 1)

    def test_default_ttl_when_absent_or_null(self):
        for extra in ({}, {"ttl": None}):
            body = {"resource": uniq(), "clientId": "c"}
            body.update(extra)
            b = self.json_of(self.server.post("/api/locks/acquire", body))
            self.assertIs(b["acquired"], True, (extra, b))
            self.assertEqual(b["expiresIn"], 30000, (extra, b))

    def test_wait_zero_and_null_accepted(self):
        for extra in ({"wait": 0}, {"wait": None}):
            body = {"resource": uniq(), "clientId": "c", "ttl": 1000}
            body.update(extra)
            b = self.json_of(self.server.post("/api/locks/acquire", body))
            self.assertIs(b["acquired"], True, (extra, b))

    def test_integral_float_ttl_accepted(self):
        # JSON has one number type; 30000.0 and 3e4 are the integer 30000 (JavaScript).
        for raw in ("30000.0", "3e4"):
            body = '{"resource": "%s", "clientId": "c", "ttl": %s}' % (uniq(), raw)
            b = self.json_of(self.server.post(
                "/api/locks/acquire", body, headers={"Content-Type": "application/json"}))
            self.assertIs(b["acquired"], True, (raw, b))
            self.assertEqual(b["expiresIn"], 30000, (raw, b))

    def test_ttl_bounds_accepted(self):
        for ttl in (1, 300000):
            b = self.acquire_ok(uniq(), "c", ttl=ttl)
            self.assertEqual(b["expiresIn"], ttl)

    def test_contended_shape(self):
        res = uniq("factura:create")
        self.acquire_ok(res, "client-abc123", ttl=30000)
        b = self.acquire_locked(res, "client-xyz789", ttl=30000)
        self.assertIs(type(b["expiresIn"]), int)
        self.assertTrue(20000 < b["expiresIn"] <= 30000, b)
        # The number in the message is the expiresIn of the same answer.
        self.assertEqual(int(LOCKED_RE.match(b["error"]).group(1)), b["expiresIn"])
        self.assertNotIn("token", b)

    def test_contended_does_not_change_holder(self):
        res = uniq()
        first = self.acquire_ok(res, "holder", ttl=30000)
        self.acquire_locked(res, "intruder", ttl=100000)
        info = self.info(res)
        self.assertEqual(info["clientId"], "holder")
        self.assertEqual(info["fencingToken"], first["fencingToken"])
        self.assertEqual(info["expiresAt"], first["expiresAt"])

    def test_tokens_unique_and_fencing_increasing(self):
        tokens, fences = set(), []
        res = uniq()
        for i in range(30):
            b = self.acquire_ok(res if i % 2 else uniq(), "c%d" % i, ttl=5000)
            tokens.add(b["token"])
            fences.append(b["fencingToken"])
            if i % 2:
                self.json_of(self.server.release(res, b["token"]))
        self.assertEqual(len(tokens), 30)
        self.assertEqual(fences, sorted(fences))
        self.assertEqual(len(set(fences)), 30, fences)

    def test_fencing_increases_across_release_same_resource(self):
        res = uniq()
        a = self.acquire_ok(res, "a")
        self.assertEqual(self.json_of(self.server.release(res, a["token"])),
                         {"released": True})
        b = self.acquire_ok(res, "b")
        self.assertGreater(b["fencingToken"], a["fencingToken"])
        self.assertNotEqual(a["token"], b["token"])

    def test_content_type_with_charset_accepted(self):
        body = json.dumps({"resource": uniq(), "clientId": "c"})
        for ctype in ("application/json; charset=utf-8", "application/json;charset=UTF-8",
                      "application/json"):
            body = json.dumps({"resource": uniq(), "clientId": "c"})
            b = self.json_of(self.server.post("/api/locks/acquire", body,
                                              headers={"Content-Type": ctype}))
            self.assertIs(b["acquired"], True, ctype)

    def test_missing_content_type_parsed_as_json(self):
        body = json.dumps({"resource": uniq(), "clientId": "c"}).encode()
        s = harness.connect(self.server)
        try:
            s.sendall(b"POST /api/locks/acquire HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                      b"Connection: close\r\n\r\n%s" % (len(body), body))
            data, _ = harness.recv_until_closed(s, 10 * SLOW)
        finally:
            s.close()
        resp = parse_responses(data)
        self.assertEqual(len(resp), 1, data)
        self.assertEqual(resp[0][0], 200, data)
        self.assertIs(json.loads(resp[0][2])["acquired"], True)

    def test_name_length_limits_accepted(self):
        # 512 bytes of resource (2-byte characters) and 128 bytes of clientId.
        res = "\u00e9" * 256
        cid = "x" * 128
        self.assertEqual(len(res.encode()), 512)
        b = self.acquire_ok(res, cid, ttl=5000)
        info = self.info(res)
        self.assertEqual(info["resource"], res)
        self.assertEqual(info["clientId"], cid)
        self.json_of(self.server.release(res, b["token"]))


class ReleaseShapes(ServerTestCase):

    def test_release_holder(self):
        res = uniq()
        b = self.acquire_ok(res, "c")
        r = self.json_of(self.server.release(res, b["token"]))
        self.assertEqual(r, {"released": True})
        self.assertEqual(self.info(res), {"exists": False, "resource": res})

    def test_release_twice(self):
        res = uniq()
        b = self.acquire_ok(res, "c")
        self.json_of(self.server.release(res, b["token"]))
        r = self.json_of(self.server.release(res, b["token"]))
        self.assertIs(r["released"], False)
        self.assertEqual(r["error"], NOT_HELD_MSG)
        self.assertEqual(r["code"], "NOT_HELD")

    def test_release_wrong_token_changes_nothing(self):
        res = uniq()
        b = self.acquire_ok(res, "c", ttl=30000)
        other = self.acquire_ok(uniq(), "c")
        fake = "lock-%d-%s" % (now_ms(), "0" * 24)
        for tok in (other["token"], fake, "garbage", b["token"][:-1] + "x",
                    b["token"].upper(), b["token"] + "0"):
            r = self.json_of(self.server.release(res, tok))
            self.assertEqual(r, {"released": False, "error": NOT_HELD_MSG, "code": "NOT_HELD"},
                             tok)
        info = self.info(res)
        self.assertIs(info["exists"], True)
        self.assertEqual(info["fencingToken"], b["fencingToken"])
        # The right token still works afterwards, and only for its own resource.
        r = self.json_of(self.server.release(uniq(), b["token"]))
        self.assertIs(r["released"], False)
        self.assertEqual(self.json_of(self.server.release(res, b["token"])), {"released": True})

    def test_release_never_held(self):
        r = self.json_of(self.server.release(uniq(), "lock-1704567890123-9f86d081884c7d659a2feaa0"))
        self.assertEqual(r["released"], False)
        self.assertEqual(r["code"], "NOT_HELD")


class InfoAndListShapes(ServerTestCase):

    def test_info_held(self):
        res = "factura:create:" + uniq("FFF")
        b = self.acquire_ok(res, "client-abc123", ttl=30000)
        i = self.info(res)
        self.assertEqual(i["exists"], True)
        self.assertEqual(i["resource"], res)
        self.assertEqual(i["clientId"], "client-abc123")
        self.assertRegex(i["acquiredAt"], ISO_RE)
        self.assertEqual(i["expiresAt"], b["expiresAt"])
        self.assertEqual(parse_iso(i["expiresAt"]) - parse_iso(i["acquiredAt"]), 30000)
        self.assertIs(type(i["timeRemaining"]), int)
        self.assertTrue(20000 < i["timeRemaining"] <= 30000, i)
        self.assertEqual(i["fencingToken"], b["fencingToken"])
        self.assertEqual(i["waiting"], 0)
        self.assertNotIn("token", i)
        self.assertNotIn(b["token"].encode(), self.server.get(
            "/api/locks/info/" + quote(res, safe="")).body)

    def test_info_raw_colons_and_percent_encoded_are_same(self):
        res = "factura:create:" + uniq("FFF")
        self.acquire_ok(res, "c")
        a = self.json_of(self.server.get("/api/locks/info/" + res))
        b = self.json_of(self.server.get("/api/locks/info/" + res.replace(":", "%3A")))
        c = self.json_of(self.server.get("/api/locks/info/" + res.replace(":", "%3a")))
        self.assertEqual(a["exists"], True)
        self.assertEqual(a["resource"], res)
        for x in (b, c):
            self.assertEqual(x["resource"], res)
            self.assertEqual(x["fencingToken"], a["fencingToken"])

    def test_info_rest_of_path(self):
        # The resource is the rest of the path: slashes are part of it.
        res = "a/b/c:" + uniq()
        self.acquire_ok(res, "c")
        i = self.json_of(self.server.get("/api/locks/info/" + res))
        self.assertEqual(i["resource"], res)
        self.assertIs(i["exists"], True)
        j = self.json_of(self.server.get("/api/locks/info/" + quote(res, safe="")))
        self.assertEqual(j["resource"], res)
        self.assertIs(j["exists"], True)

    def test_info_ignores_query_and_keeps_plus(self):
        res = uniq("q+plus")
        self.acquire_ok(res, "c")
        i = self.json_of(self.server.get("/api/locks/info/%s?x=1&y=%%zz" % res))
        self.assertEqual(i["resource"], res)
        self.assertIs(i["exists"], True)
        self.assertIs(self.json_of(self.server.get("/api/locks/info/" + res.replace("+", " ")
                                                   .replace(" ", "%20")))["exists"], False)

    def test_info_not_held(self):
        res = uniq()
        self.assertEqual(self.info(res), {"exists": False, "resource": res})

    def test_list_shape_and_no_tokens(self):
        cid = uniq("lister")
        made = {}
        for i in range(3):
            res = uniq("list")
            made[res] = self.acquire_ok(res, cid, ttl=30000)
        r = self.server.get("/api/locks")
        body = self.json_of(r)
        self.assertEqual(body["count"], len(body["locks"]))
        for b in made.values():
            self.assertNotIn(b["token"].encode(), r.body)
        mine = [l for l in body["locks"] if l["clientId"] == cid]
        self.assertEqual(sorted(l["resource"] for l in mine), sorted(made))
        for l in mine:
            for key in ("resource", "clientId", "acquiredAt", "expiresAt", "timeRemaining",
                        "fencingToken"):
                self.assertIn(key, l)
            self.assertNotIn("token", l)
            self.assertRegex(l["acquiredAt"], ISO_RE)
            self.assertEqual(l["expiresAt"], made[l["resource"]]["expiresAt"])
            self.assertEqual(l["fencingToken"], made[l["resource"]]["fencingToken"])
            self.assertIs(type(l["timeRemaining"]), int)
            self.assertTrue(0 < l["timeRemaining"] <= 30000)
        # Released locks leave the list.
        res0 = next(iter(made))
        self.json_of(self.server.release(res0, made[res0]["token"]))
        body = self.json_of(self.server.get("/api/locks"))
        self.assertNotIn(res0, [l["resource"] for l in body["locks"]])

    def test_list_filters(self):
        p = uniq("pfx") + ":"
        ca, cb = uniq("ca"), uniq("cb")
        self.acquire_ok(p + "1", ca)
        self.acquire_ok(p + "2", cb)
        self.acquire_ok(uniq("elsewhere") + p, ca)
        body = self.json_of(self.server.get("/api/locks?prefix=" + quote(p, safe="")))
        self.assertEqual(sorted(l["resource"] for l in body["locks"]), [p + "1", p + "2"])
        self.assertEqual(body["count"], 2)
        body = self.json_of(self.server.get("/api/locks?clientId=" + ca))
        self.assertEqual(body["count"], 2)
        self.assertTrue(all(l["clientId"] == ca for l in body["locks"]))
        body = self.json_of(self.server.get(
            "/api/locks?clientId=%s&prefix=%s" % (ca, quote(p, safe=""))))
        self.assertEqual([l["resource"] for l in body["locks"]], [p + "1"])
        body = self.json_of(self.server.get("/api/locks?prefix=" + uniq("none")))
        self.assertEqual(body, {"count": 0, "locks": []})

    def test_list_pagination(self):
        p = uniq("page") + ":"
        names = sorted(p + "%02d" % i for i in range(7))
        for n in names:
            self.acquire_ok(n, "pager")
        seen, pages, cursor = [], [], None
        for _ in range(10):
            q = "/api/locks?prefix=%s&limit=3" % quote(p, safe="")
            if cursor is not None:
                q += "&cursor=" + quote(cursor, safe="")
            body = self.json_of(self.server.get(q))
            self.assertEqual(body["count"], len(body["locks"]), body)
            self.assertLessEqual(body["count"], 3)
            pages.append(body["count"])
            seen += [l["resource"] for l in body["locks"]]
            cursor = body.get("nextCursor")
            if cursor is None:
                self.assertNotIn("nextCursor", body)
                break
            self.assertIsInstance(cursor, str)
        self.assertEqual(sorted(seen), names)  # every lock once, no duplicates
        self.assertEqual(sum(pages), 7)
        self.assertGreaterEqual(len(pages), 3)
        # A limit that covers everything: no nextCursor at all.
        body = self.json_of(self.server.get("/api/locks?prefix=%s&limit=50" % quote(p, safe="")))
        self.assertEqual(body["count"], 7)
        self.assertNotIn("nextCursor", body)

    def test_pagination_survives_changes_between_pages(self):
        # Locks released or added between two pages neither duplicate nor hide the locks
        # that stayed held the whole time.
        p = uniq("pchg") + ":"
        names = sorted(p + "%02d" % i for i in range(10))
        toks = dict((n, self.acquire_ok(n, "pager")["token"]) for n in names)
        q = "/api/locks?prefix=%s&limit=4" % quote(p, safe="")
        first = self.json_of(self.server.get(q))
        self.assertEqual(first["count"], 4)
        got = [l["resource"] for l in first["locks"]]
        # Release two locks of the first page and one not yet seen; add one.
        gone = got[:2]
        unseen = [n for n in names if n not in got]
        gone.append(unseen[-1])
        for n in gone:
            self.json_of(self.server.release(n, toks[n]))
        self.acquire_ok(p + "00a", "pager")
        cursor = first["nextCursor"]
        for _ in range(10):
            body = self.json_of(self.server.get(q + "&cursor=" + quote(cursor, safe="")))
            got += [l["resource"] for l in body["locks"]]
            cursor = body.get("nextCursor")
            if cursor is None:
                break
        self.assertEqual(len(got), len(set(got)), got)
        stayed = [n for n in names if n not in gone]
        for n in stayed:
            self.assertIn(n, got)

    def test_odd_names_roundtrip_as_valid_json(self):
        for name in ODD_NAMES:
            cid = "cli:" + name
            res = name + uniq()
            r = self.server.acquire(res, cid, ttl=30000)
            b = self.json_of(r)
            self.assertIs(b["acquired"], True, name)
            i = self.info(res)
            self.assertEqual(i["resource"], res)
            self.assertEqual(i["clientId"], cid)
            c = self.acquire_locked(res, "x")
            self.assertEqual(c["code"], "LOCKED")
            lst = self.json_of(self.server.get("/api/locks?clientId=" + quote(cid, safe="")))
            self.assertEqual([l["resource"] for l in lst["locks"]], [res], name)
            st = self.stats()
            self.assertEqual(st["locksByClient"].get(cid), 1, name)
            d = self.json_of(self.server.delete("/api/locks/client/" + quote(cid, safe="")))
            self.assertEqual(d["message"], "Liberados 1 locks del cliente " + cid)
            self.assertEqual(d["releasedCount"], 1)
            self.assertEqual(self.info(res)["exists"], False)


class StatsShapes(ServerTestCase):

    def test_stats_shape_and_counters(self):
        s0 = self.stats()
        for key in ("totalLocks", "activeLocks", "expiredLocks", "locksByClient", "counters",
                    "waiting", "uptimeMs"):
            self.assertIn(key, s0)
        for key in ("acquired", "contended", "released", "expired", "extended",
                    "waitTimeouts"):
            self.assertIs(type(s0["counters"][key]), int, key)
        res = uniq()
        a = self.acquire_ok(res, "client-abc123")
        self.acquire_locked(res, "client-xyz789")
        self.json_of(self.server.release(res, a["token"]))
        self.json_of(self.server.release(res, a["token"]))  # not held: not counted
        s1 = self.stats()
        d = {k: s1["counters"][k] - s0["counters"][k] for k in s0["counters"]}
        self.assertEqual(d["acquired"], 1, d)
        self.assertEqual(d["contended"], 1, d)
        self.assertEqual(d["released"], 1, d)
        self.assertGreaterEqual(s1["uptimeMs"], s0["uptimeMs"])

    def test_stats_totals_and_locks_by_client(self):
        ca, cb = uniq("client-abc"), uniq("client-xyz")
        for i in range(2):
            self.acquire_ok(uniq(), ca)
        for i in range(3):
            self.acquire_ok(uniq(), cb)
        s = self.stats()
        self.assertEqual(s["locksByClient"][ca], 2)
        self.assertEqual(s["locksByClient"][cb], 3)
        self.assertEqual(s["totalLocks"], s["activeLocks"] + s["expiredLocks"])
        self.assertEqual(sum(s["locksByClient"].values()), s["activeLocks"])
        lst = self.json_of(self.server.get("/api/locks"))
        self.assertEqual(lst["count"], s["activeLocks"])
        self.assertIs(type(s["waiting"]), int)
        self.assertIs(type(s["uptimeMs"]), int)
        self.assertGreaterEqual(s["uptimeMs"], 0)


class DeleteClientShapes(ServerTestCase):

    def test_delete_client_doc_example(self):
        cid = "client-abc123"
        for _ in range(2):
            self.acquire_ok(uniq("factura"), cid)
        b = self.json_of(self.server.delete("/api/locks/client/client-abc123"))
        self.assertEqual(b, {"success": True,
                             "message": "Liberados 2 locks del cliente client-abc123",
                             "releasedCount": 2})

    def test_delete_client_none(self):
        cid = uniq("nobody")
        b = self.json_of(self.server.delete("/api/locks/client/" + cid))
        self.assertEqual(b, {"success": True,
                             "message": "Liberados 0 locks del cliente " + cid,
                             "releasedCount": 0})


class HealthAndMisc(ServerTestCase):

    def test_healthz(self):
        self.assertEqual(self.json_of(self.server.get("/healthz")), {"status": "ok"})

    def test_readyz(self):
        r = self.server.get("/readyz")
        self.assertEqual(r.status, 200, r)

    def test_metrics_is_prometheus_text(self):
        self.acquire_ok(uniq(), "m")
        r = self.server.get("/metrics")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers.get("content-type", "").startswith("text/plain"), r.headers)
        text = r.body.decode("utf-8")
        self.assertIn("# TYPE", text)
        samples = [l for l in text.splitlines() if l and not l.startswith("#")]
        self.assertTrue(samples, text)
        for line in samples:
            float(line.rsplit(" ", 1)[1])  # every sample ends with a number

    def test_trailing_slash_tolerated(self):
        a = self.json_of(self.server.get("/api/locks/"))
        self.assertIn("locks", a)
        self.assertIn("activeLocks", self.json_of(self.server.get("/api/locks/stats/")))
        res = uniq()
        b = self.json_of(self.server.post("/api/locks/acquire/", {"resource": res,
                                                                   "clientId": "c"}))
        self.assertIs(b["acquired"], True)
        self.assertEqual(self.json_of(self.server.get("/api/locks/info/%s/" % res))["resource"],
                         res)
        r = self.json_of(self.server.post("/api/locks/release/",
                                          {"resource": res, "token": b["token"]}))
        self.assertEqual(r, {"released": True})
        d = self.json_of(self.server.delete("/api/locks/client/c/"))
        self.assertIs(d["success"], True)

    def test_keep_alive_many_requests_one_connection(self):
        conn = self.server.conn()
        try:
            for i in range(20):
                r = self.server.get("/api/locks/stats", conn=conn)
                self.assertEqual(r.status, 200)
            res = uniq()
            b = self.server.acquire(res, "k", conn=conn).json()
            self.assertIs(b["acquired"], True)
            self.assertEqual(self.server.release(res, b["token"], conn=conn).json(),
                             {"released": True})
        finally:
            conn.close()

    def test_pipelined_requests_answered_in_order(self):
        res = uniq()
        body = json.dumps({"resource": res, "clientId": "pipe"}).encode()
        acq = (b"POST /api/locks/acquire HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
               b"\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        info = b"GET /api/locks/info/%s HTTP/1.1\r\nHost: x\r\n\r\n" % res.encode()
        last = b"GET /api/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        data = self.server.raw(info + acq + info + acq + last)
        resp = parse_responses(data)
        self.assertEqual([r[0] for r in resp], [200, 200, 200, 200, 404], data)
        bodies = [json.loads(r[2]) for r in resp]
        self.assertIs(bodies[0]["exists"], False)
        self.assertIs(bodies[1]["acquired"], True)
        self.assertIs(bodies[2]["exists"], True)
        self.assertIs(bodies[3]["acquired"], False)
        self.assertEqual(bodies[4]["statusCode"], 404)

    def test_connection_close_honoured(self):
        t0 = time.time()
        data = self.server.raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                               b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", read_timeout=8)
        self.assertLess(time.time() - t0, 5 * SLOW)
        self.assertEqual(len(parse_responses(data)), 1, data)

    def test_hundred_pipelined_requests(self):
        req = b"GET /api/locks/info/p%d HTTP/1.1\r\nHost: x\r\n\r\n"
        data = b"".join(req % i for i in range(100))
        data += b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        resp = parse_responses(self.server.raw(data, read_timeout=10))
        self.assertEqual(len(resp), 101)
        for i, (st, _, body) in enumerate(resp[:100]):
            self.assertEqual(st, 200)
            self.assertEqual(json.loads(body)["resource"], "p%d" % i)

    def test_half_closed_client_still_answered(self):
        # `printf 'GET ...' | nc host port`: the request is complete before the EOF.
        data = self.server.raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", shutdown=True)
        resp = parse_responses(data)
        self.assertEqual(resp[0][0], 200, data)

    def test_idle_keep_alive_connection_stays_usable(self):
        # The default idle timeout is 60 s: a few seconds of silence are fine.
        conn = self.server.conn()
        try:
            self.assertEqual(self.server.get("/healthz", conn=conn).status, 200)
            time.sleep(2)
            self.assertEqual(self.server.get("/healthz", conn=conn).status, 200)
            sock = conn.sock
            self.assertEqual(self.server.get("/healthz", conn=conn).status, 200)
            self.assertIs(conn.sock, sock)  # the same connection, not a reconnect
        finally:
            conn.close()

    def test_http10_request(self):
        t0 = time.time()
        data = self.server.raw(b"GET /healthz HTTP/1.0\r\n\r\n", read_timeout=8)
        # HTTP/1.0 without keep-alive: the server closes after the answer.
        self.assertLess(time.time() - t0, 5 * SLOW)
        resp = parse_responses(data)
        self.assertEqual(resp[0][0], 200, data)
        self.assertEqual(json.loads(resp[0][2]), {"status": "ok"})


class Restart(unittest.TestCase):

    def test_fencing_increases_across_restart(self):
        res = uniq()
        with harness.Server() as a:
            first = a.acquire(res, "c").json()
            second = a.acquire(uniq(), "c").json()
        with harness.Server() as b:
            third = b.acquire(res, "c").json()
        self.assertIs(third["acquired"], True)
        self.assertGreater(third["fencingToken"], first["fencingToken"])
        self.assertGreater(third["fencingToken"], second["fencingToken"])


class CurlExamples(ServerTestCase):
    """The Testing section of the original document, run with the real curl."""

    def curl(self, *args):
        p = subprocess.run(["curl", "-sS", "--max-time", str(int(20 * SLOW))] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30 * SLOW)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout.decode("utf-8"))

    def test_doc_curl_session(self):
        self.assertTrue(shutil.which("curl"), "curl is needed for this test")
        base = "http://localhost:%d" % self.server.port
        # Adquirir lock
        b = self.curl("-X", "POST", base + "/api/locks/acquire",
                      "-H", "Content-Type: application/json",
                      "-d", '{\n    "resource": "factura:create:FFF1",\n    "ttl": 30000,\n'
                            '    "clientId": "test-client"\n  }')
        self.assertIs(b["acquired"], True, b)
        self.assertEqual(b["expiresIn"], 30000)
        token = b["token"]
        # Ver estadísticas
        s = self.curl(base + "/api/locks/stats")
        self.assertGreaterEqual(s["activeLocks"], 1)
        self.assertEqual(s["locksByClient"]["test-client"], 1)
        # Info (section 3, with the colons as written)
        i = self.curl(base + "/api/locks/info/factura:create:FFF1")
        self.assertEqual(i["clientId"], "test-client")
        # Listar
        l = self.curl(base + "/api/locks")
        self.assertIn("factura:create:FFF1", [x["resource"] for x in l["locks"]])
        # Liberar lock (YOUR_TOKEN_HERE replaced by the token, as a user would)
        r = self.curl("-X", "POST", base + "/api/locks/release",
                      "-H", "Content-Type: application/json",
                      "-d", '{\n    "resource": "factura:create:FFF1",\n    "token": "%s"\n  }'
                            % token)
        self.assertEqual(r, {"released": True})
        # The literal placeholder is simply not the holder's token.
        r = self.curl("-X", "POST", base + "/api/locks/release",
                      "-H", "Content-Type: application/json",
                      "-d", '{"resource": "factura:create:FFF1", "token": "YOUR_TOKEN_HERE"}')
        self.assertEqual(r["released"], False)
        self.assertEqual(r["error"], NOT_HELD_MSG)
        # Section 6
        d = self.curl("-X", "DELETE", base + "/api/locks/client/client-abc123")
        self.assertEqual(d["message"], "Liberados 0 locks del cliente client-abc123")

    def test_curl_form_default_content_type_is_415(self):
        # curl -d without -H sends application/x-www-form-urlencoded: not JSON.
        p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                            "-X", "POST", "http://127.0.0.1:%d/api/locks/acquire"
                            % self.server.port,
                            "-d", '{"resource": "r", "clientId": "c"}'],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30 * SLOW)
        self.assertEqual(p.stdout, b"415", p.stderr)


if __name__ == "__main__":
    harness.main()
