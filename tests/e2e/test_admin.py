"""DELETE /api/locks/client/:clientId: frees exactly that client's locks, answers with the
original service's words, and asks for the admin token when one is configured."""
import os
import sys
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import NOT_HELD_MSG, ServerTestCase, uniq  # noqa: E402

ADMIN = "s3cret-admin-token"


class AdminTokenCases:
    """Mixed into a ServerTestCase whose server has the admin token ADMIN."""

    def setup_locks(self):
        cid = uniq("client-abc")
        toks = {}
        for _ in range(2):
            r = uniq("factura")
            toks[r] = self.acquire_ok(r, cid, ttl=60000)
        return cid, toks

    def assert_still_held(self, cid, toks):
        for r, b in toks.items():
            i = self.info(r)
            self.assertEqual(i["clientId"], cid)
            self.assertEqual(i["fencingToken"], b["fencingToken"])

    def test_without_token_401(self):
        cid, toks = self.setup_locks()
        for hdrs in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer "},
                     {"Authorization": "Bearer"}, {"Authorization": ADMIN},
                     {"Authorization": "Basic " + ADMIN},
                     {"Authorization": "Bearer " + ADMIN + "x"},
                     {"Authorization": "Bearer " + ADMIN[:-1]},
                     {"X-Admin-Token": ADMIN}):
            with self.subTest(hdrs=hdrs):
                r = self.server.delete("/api/locks/client/" + cid, headers=hdrs)
                self.assertError(r, 401, "Unauthorized")
        self.assert_still_held(cid, toks)
        self.assertEqual(self.stats()["locksByClient"][cid], 2)

    def test_with_token_200(self):
        cid, toks = self.setup_locks()
        r = self.server.delete("/api/locks/client/" + cid,
                               headers={"Authorization": "Bearer " + ADMIN})
        b = self.json_of(r)
        self.assertEqual(b, {"success": True, "message": "Liberados 2 locks del cliente " + cid,
                             "releasedCount": 2})
        for res in toks:
            self.assertIs(self.info(res)["exists"], False)

    def test_other_endpoints_need_no_token(self):
        res = uniq()
        b = self.acquire_ok(res, "c")
        self.acquire_locked(res, "d")
        self.assertIs(self.info(res)["exists"], True)
        self.json_of(self.server.get("/api/locks"))
        self.stats()
        self.assertEqual(self.json_of(self.server.release(res, b["token"])), {"released": True})

    def test_bad_name_with_token_still_400(self):
        r = self.server.delete("/api/locks/client/a%00b",
                               headers={"Authorization": "Bearer " + ADMIN})
        self.assertError(r, 400)


class AdminTokenFlag(ServerTestCase, AdminTokenCases):
    server_args = ("--admin-token", ADMIN)


class AdminTokenEnv(ServerTestCase, AdminTokenCases):
    server_env = {"CANDADO_ADMIN_TOKEN": ADMIN}


class NoAdminToken(ServerTestCase):

    def test_no_token_needed(self):
        cid = uniq("free")
        self.acquire_ok(uniq(), cid)
        b = self.json_of(self.server.delete("/api/locks/client/" + cid))
        self.assertEqual(b["releasedCount"], 1)
        cid = uniq("free")
        self.acquire_ok(uniq(), cid)
        b = self.json_of(self.server.delete("/api/locks/client/" + cid,
                                            headers={"Authorization": "Bearer whatever"}))
        self.assertEqual(b["releasedCount"], 1)

    def test_releases_only_that_clients_locks(self):
        a, b_, c = uniq("client-a"), uniq("client-b"), uniq("client-a")  # c shares a's prefix
        held = {}
        for cid, n in ((a, 3), (b_, 2), (c, 1)):
            for _ in range(n):
                r = uniq("res")
                held[r] = (cid, self.acquire_ok(r, cid, ttl=60000))
        s0 = self.stats()
        d = self.json_of(self.server.delete("/api/locks/client/" + a))
        self.assertEqual(d, {"success": True, "message": "Liberados 3 locks del cliente " + a,
                             "releasedCount": 3})
        for r, (cid, g) in held.items():
            i = self.info(r)
            if cid == a:
                self.assertIs(i["exists"], False, r)
                # The old token is dead; the resource is free for anyone.
                rel = self.json_of(self.server.release(r, g["token"]))
                self.assertEqual(rel, {"released": False, "error": NOT_HELD_MSG,
                                       "code": "NOT_HELD"})
            else:
                self.assertEqual(i["clientId"], cid)
                self.assertEqual(i["fencingToken"], g["fencingToken"])
        s1 = self.stats()
        self.assertEqual(s1["locksByClient"].get(a, 0), 0)
        self.assertEqual(s1["locksByClient"][b_], 2)
        self.assertEqual(s1["locksByClient"][c], 1)
        self.assertEqual(s1["activeLocks"], s0["activeLocks"] - 3)
        # A freed resource can be taken at once by someone else.
        freed = [r for r, (cid, _) in held.items() if cid == a][0]
        n = self.acquire_ok(freed, b_)
        self.assertGreater(n["fencingToken"], held[freed][1]["fencingToken"])
        # Again: nothing left for a.
        d = self.json_of(self.server.delete("/api/locks/client/" + a))
        self.assertEqual(d["releasedCount"], 0)
        self.assertEqual(d["message"], "Liberados 0 locks del cliente " + a)

    def test_client_id_percent_decoded(self):
        cid = "client x:\u00f1/\"q\""
        self.acquire_ok(uniq(), cid)
        d = self.json_of(self.server.delete("/api/locks/client/" + quote(cid, safe="")))
        self.assertEqual(d["message"], "Liberados 1 locks del cliente " + cid)
        self.assertEqual(d["releasedCount"], 1)

    def test_client_id_is_exact_not_prefix_or_case(self):
        cid = uniq("Client-Case")
        self.acquire_ok(uniq(), cid)
        for other in (cid.lower(), cid[:-1], cid + "0", " " + cid):
            d = self.json_of(self.server.delete("/api/locks/client/" + quote(other, safe="")))
            self.assertEqual(d["releasedCount"], 0, other)
        self.assertEqual(self.stats()["locksByClient"][cid], 1)

    def test_delete_counts_only_held_not_expired(self):
        import time
        cid = uniq("exp")
        self.acquire_ok(uniq(), cid, ttl=200)
        self.acquire_ok(uniq(), cid, ttl=60000)
        time.sleep(0.2 + 0.5 * harness.SLOW)
        d = self.json_of(self.server.delete("/api/locks/client/" + cid))
        self.assertEqual(d["releasedCount"], 1, d)


if __name__ == "__main__":
    harness.main()
