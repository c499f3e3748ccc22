"""Locks expire at their TTL: held before it, free after it, everywhere the server shows
them; a token from an expired grant never touches a later holder's lock.

Margins are generous on purpose (shared, noisy machines; sanitizer builds)."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (NOT_HELD_MSG, SLOW, ServerTestCase, now_ms, parse_iso,  # noqa: E402
                     uniq, wait_until)

MARGIN = 0.5 * SLOW  # seconds past the deadline before a lock must be free


def sleep_until_ms(epoch_ms):
    d = epoch_ms / 1000.0 - time.time()
    if d > 0:
        time.sleep(d)


class Expiry(ServerTestCase):

    def test_short_ttl_free_after_ttl(self):
        res = uniq()
        t0 = time.time()
        a = self.acquire_ok(res, "first", ttl=300)
        self.assertEqual(a["expiresIn"], 300)
        time.sleep(max(0.0, t0 + 0.3 - time.time()) + MARGIN)
        self.assertEqual(self.info(res), {"exists": False, "resource": res})
        b = self.acquire_ok(res, "second", ttl=30000)
        self.assertGreater(b["fencingToken"], a["fencingToken"])
        self.assertEqual(self.info(res)["clientId"], "second")

    def test_held_before_ttl_free_after(self):
        # Long enough that "before" is certainly before, even under ASan.
        ttl = int(3000 * SLOW)
        res = uniq()
        a = self.acquire_ok(res, "first", ttl=ttl)
        c = self.acquire_locked(res, "second")
        self.assertTrue(0 < c["expiresIn"] <= ttl, c)
        i1 = self.info(res)
        self.assertIs(i1["exists"], True)
        time.sleep(0.3)
        i2 = self.info(res)
        self.assertIs(i2["exists"], True)
        self.assertLess(i2["timeRemaining"], i1["timeRemaining"])
        self.assertEqual(i2["expiresAt"], a["expiresAt"])
        # The contended answer counts down too.
        c2 = self.acquire_locked(res, "second")
        self.assertLess(c2["expiresIn"], c["expiresIn"])
        sleep_until_ms(parse_iso(a["expiresAt"]))
        time.sleep(MARGIN)
        self.assertIs(self.info(res)["exists"], False)
        self.acquire_ok(res, "second")

    def test_expired_token_cannot_release_later_holder(self):
        res = uniq()
        a = self.acquire_ok(res, "A", ttl=300)
        time.sleep(0.3 + MARGIN)
        b = self.acquire_ok(res, "B", ttl=30000)
        r = self.json_of(self.server.release(res, a["token"]))
        self.assertEqual(r, {"released": False, "error": NOT_HELD_MSG, "code": "NOT_HELD"})
        i = self.info(res)
        self.assertEqual(i["clientId"], "B")
        self.assertEqual(i["fencingToken"], b["fencingToken"])
        self.assertEqual(self.json_of(self.server.release(res, b["token"])), {"released": True})

    def test_expired_token_release_without_new_holder(self):
        res = uniq()
        a = self.acquire_ok(res, "A", ttl=200)
        time.sleep(0.2 + MARGIN)
        r = self.json_of(self.server.release(res, a["token"]))
        self.assertIs(r["released"], False)
        self.assertEqual(r["code"], "NOT_HELD")

    def test_expired_lock_gone_from_list_and_stats(self):
        cid = uniq("exp-client")
        res_short, res_long = uniq("short"), uniq("long")
        s0 = self.stats()
        self.acquire_ok(res_short, cid, ttl=300)
        self.acquire_ok(res_long, cid, ttl=60000)
        lst = self.json_of(self.server.get("/api/locks?clientId=" + cid))
        self.assertEqual(lst["count"], 2)
        self.assertEqual(self.stats()["locksByClient"][cid], 2)
        time.sleep(0.3 + MARGIN)
        lst = self.json_of(self.server.get("/api/locks?clientId=" + cid))
        self.assertEqual([l["resource"] for l in lst["locks"]], [res_long])
        self.assertEqual(lst["count"], 1)
        all_locks = self.json_of(self.server.get("/api/locks"))["locks"]
        self.assertNotIn(res_short, [l["resource"] for l in all_locks])
        for l in all_locks:
            self.assertGreater(l["timeRemaining"], 0)
        s = self.stats()
        self.assertEqual(s["locksByClient"][cid], 1)
        self.assertEqual(sum(s["locksByClient"].values()), s["activeLocks"])
        self.assertEqual(s["totalLocks"], s["activeLocks"] + s["expiredLocks"])
        # The expiry is counted (at once or by the periodic cleanup).
        ok = wait_until(lambda: self.stats()["counters"]["expired"]
                        > s0["counters"]["expired"], timeout=15)
        self.assertTrue(ok, self.stats())
        s = self.stats()
        self.assertEqual(s["totalLocks"], s["activeLocks"] + s["expiredLocks"])

    def test_fencing_increases_across_expiry(self):
        res = uniq()
        fences = []
        for i in range(3):
            a = self.acquire_ok(res, "c%d" % i, ttl=150)
            fences.append(a["fencingToken"])
            time.sleep(0.15 + MARGIN)
        self.assertEqual(fences, sorted(set(fences)))

    def test_acquired_at_and_expires_at_match_ttl(self):
        for ttl in (1, 777, 12345, 300000):
            res = uniq()
            before = now_ms()
            a = self.acquire_ok(res, "c", ttl=ttl)
            exp = parse_iso(a["expiresAt"])
            self.assertLessEqual(before + ttl - 1500, exp)
            self.assertLessEqual(exp, now_ms() + ttl + 1500)
            if ttl >= 1000:
                i = self.info(res)
                self.assertEqual(parse_iso(i["expiresAt"]) - parse_iso(i["acquiredAt"]), ttl)
                self.assertEqual(i["expiresAt"], a["expiresAt"])

    def test_ttl_one_ms(self):
        res = uniq()
        self.acquire_ok(res, "c", ttl=1)
        time.sleep(0.05 + MARGIN / 5)
        self.assertIs(self.info(res)["exists"], False)
        self.acquire_ok(res, "d", ttl=1000)

    def test_many_expire_together(self):
        cid = uniq("bulk")
        names = [uniq("bulk") for _ in range(200)]
        for n in names:
            self.acquire_ok(n, cid, ttl=400)
        self.assertEqual(self.stats()["locksByClient"].get(cid), 200)
        time.sleep(0.4 + MARGIN)
        self.assertEqual(self.stats()["locksByClient"].get(cid, 0), 0)
        lst = self.json_of(self.server.get("/api/locks?clientId=" + cid))
        self.assertEqual(lst["count"], 0)
        for n in names[::20]:
            self.assertIs(self.info(n)["exists"], False)
        d = self.json_of(self.server.delete("/api/locks/client/" + cid))
        self.assertEqual(d["releasedCount"], 0, d)


if __name__ == "__main__":
    harness.main()
