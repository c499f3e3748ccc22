"""Mutual exclusion under contention: many threads race for few resources, and no two of
them ever hold one resource at the same time; fencing tokens only grow; the counters add
up to what the clients saw."""
import concurrent.futures
import os
import sys
import threading
import time
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SLOW, ServerTestCase, uniq  # noqa: E402


class Race(ServerTestCase):

    def test_mutual_exclusion_many_workers_few_resources(self):
        resources = [uniq("hot") for _ in range(3)]
        workers, rounds = 24, 12
        guard = threading.Lock()
        occupied = dict((r, None) for r in resources)
        grants = dict((r, []) for r in resources)  # fencing tokens in critical-section order
        violations, errors = [], []
        seen = {"contended": 0, "granted": 0, "released": 0}
        tokens = set()

        def worker(wid):
            me = "worker-%d" % wid
            conn = self.server.conn()
            try:
                done = 0
                attempt = 0
                while done < rounds:
                    res = resources[(wid + attempt) % len(resources)]
                    attempt += 1
                    b = self.server.acquire(res, me, ttl=int(20000 * SLOW), conn=conn).json()
                    if not b["acquired"]:
                        if b.get("code") != "LOCKED":
                            errors.append(b)
                        with guard:
                            seen["contended"] += 1
                        time.sleep(0.001)
                        continue
                    with guard:
                        seen["granted"] += 1
                        if b["token"] in tokens:
                            violations.append(("token reused", b))
                        tokens.add(b["token"])
                        if occupied[res] is not None:
                            violations.append((res, occupied[res], me))
                        occupied[res] = me
                        grants[res].append(b["fencingToken"])
                    # Inside the critical section the server agrees we are the holder.
                    i = self.server.get("/api/locks/info/" + quote(res, safe=""),
                                        conn=conn).json()
                    if i.get("clientId") != me or i.get("fencingToken") != b["fencingToken"]:
                        violations.append(("info", res, me, i))
                    time.sleep(0.002)
                    with guard:
                        if occupied[res] != me:
                            violations.append((res, "stolen from", me, occupied[res]))
                        occupied[res] = None
                    r = self.server.release(res, b["token"], conn=conn).json()
                    if r != {"released": True}:
                        errors.append(("release", res, me, r))
                    else:
                        with guard:
                            seen["released"] += 1
                    done += 1
            finally:
                conn.close()

        s0 = self.stats()["counters"]
        with concurrent.futures.ThreadPoolExecutor(workers) as ex:
            for f in [ex.submit(worker, w) for w in range(workers)]:
                f.result()
        self.assertEqual(violations, [])
        self.assertEqual(errors, [])
        self.assertEqual(seen["granted"], workers * rounds)
        for r in resources:
            self.assertEqual(grants[r], sorted(set(grants[r])), r)
            self.assertIs(self.info(r)["exists"], False)
        s1 = self.stats()["counters"]
        self.assertEqual(s1["acquired"] - s0["acquired"], seen["granted"])
        self.assertEqual(s1["released"] - s0["released"], seen["released"])
        self.assertEqual(s1["contended"] - s0["contended"], seen["contended"])
        self.assertGreater(seen["contended"], 0)  # there really was a race

    def test_simultaneous_burst_one_winner(self):
        for _ in range(3):
            res = uniq("burst")
            n = 40
            barrier = threading.Barrier(n)
            conns = [self.server.conn() for _ in range(n)]
            for c in conns:
                c.connect()

            def go(i):
                barrier.wait()
                return self.server.acquire(res, "burst-%d" % i, ttl=30000, conn=conns[i]).json()

            try:
                with concurrent.futures.ThreadPoolExecutor(n) as ex:
                    results = list(ex.map(go, range(n)))
            finally:
                for c in conns:
                    c.close()
            winners = [i for i, b in enumerate(results) if b["acquired"]]
            self.assertEqual(len(winners), 1, results)
            for b in results:
                if not b["acquired"]:
                    self.assertEqual(b["code"], "LOCKED")
            self.assertEqual(self.info(res)["clientId"], "burst-%d" % winners[0])

    def test_many_resources_in_parallel_all_granted(self):
        cid = uniq("par")
        names = [uniq("par") for _ in range(300)]

        def take(n):
            return n, self.server.acquire(n, cid, ttl=30000).json()

        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            results = dict(ex.map(take, names))
        self.assertTrue(all(b["acquired"] for b in results.values()))
        fences = [b["fencingToken"] for b in results.values()]
        self.assertEqual(len(set(fences)), len(fences))
        self.assertEqual(self.stats()["locksByClient"][cid], 300)
        # Release half concurrently, then free the rest through DELETE client.
        half = names[:150]

        def rel(n):
            return self.server.release(n, results[n]["token"]).json()

        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            self.assertTrue(all(r == {"released": True} for r in ex.map(rel, half)))
        d = self.json_of(self.server.delete("/api/locks/client/" + cid))
        self.assertEqual(d["releasedCount"], 150)
        self.assertEqual(self.stats()["locksByClient"].get(cid, 0), 0)

    def test_release_races_acquire(self):
        # A holder releases while others hammer the resource: after the release exactly
        # one of the hammering clients gets it, and nobody gets it twice at once.
        res = uniq("handoff")
        holder = self.acquire_ok(res, "holder", ttl=30000)
        stop = threading.Event()
        wins = []
        lock = threading.Lock()

        def hammer(i):
            conn = self.server.conn()
            try:
                while not stop.is_set():
                    b = self.server.acquire(res, "h%d" % i, ttl=30000, conn=conn).json()
                    if b["acquired"]:
                        with lock:
                            wins.append((i, b["fencingToken"]))
                        return
            finally:
                conn.close()

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            futs = [ex.submit(hammer, i) for i in range(8)]
            time.sleep(0.2)
            self.assertEqual(wins, [])
            self.assertEqual(self.json_of(self.server.release(res, holder["token"])),
                             {"released": True})
            harness.wait_until(lambda: wins, timeout=5)
            time.sleep(0.3)
            stop.set()
            for f in futs:
                f.result()
        self.assertEqual(len(wins), 1, wins)
        self.assertGreater(wins[0][1], holder["fencingToken"])
        self.assertEqual(self.info(res)["clientId"], "h%d" % wins[0][0])

    def test_delete_client_while_others_acquire(self):
        cid = uniq("victim")
        names = [uniq("dc") for _ in range(50)]
        for n in names:
            self.acquire_ok(n, cid, ttl=30000)
        got = []

        def grab(n):
            for _ in range(int(200 * SLOW)):
                b = self.server.acquire(n, "grabber", ttl=30000).json()
                if b["acquired"]:
                    return n
                time.sleep(0.01)
            return None

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            futs = [ex.submit(grab, n) for n in names]
            time.sleep(0.1)
            d = self.json_of(self.server.delete("/api/locks/client/" + cid))
            got = [f.result() for f in futs]
        self.assertEqual(d["releasedCount"], 50)
        self.assertEqual(sorted(got), sorted(names))
        for n in names[::10]:
            self.assertEqual(self.info(n)["clientId"], "grabber")


if __name__ == "__main__":
    harness.main()
