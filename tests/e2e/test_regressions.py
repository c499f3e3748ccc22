"""Regression tests, each named after the bug it pins."""
import json
import socket
import threading

import harness
from harness import SLOW, ServerTestCase


def pipeline_acquires(server, names, client_id):
    """Acquires every name over one pipelined connection; returns the number of 200s."""
    blob = b"".join(
        b"POST /api/locks/acquire HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        for body in (json.dumps({"resource": n, "clientId": client_id, "ttl": 300000})
                     .encode() for n in names))
    s = socket.create_connection(("127.0.0.1", server.port), timeout=60 * SLOW)
    sender = threading.Thread(target=s.sendall, args=(blob,))
    sender.start()
    got = b""
    while got.count(b"HTTP/1.1 200 OK") < len(names):
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        got += chunk
    sender.join()
    s.close()
    return got.count(b"HTTP/1.1 200 OK")


class LargeListNotTruncated(ServerTestCase):
    """An answer larger than the kernel's socket buffer used to trip the server's guard
    against clients that do not read (more than 1 MiB unsent): GET /api/locks of tens of
    thousands of locks was cut off mid-body. The guard now looks only at earlier unsent
    answers."""

    def test_list_of_many_long_names_arrives_whole(self):
        names = ["big:%06d:" % i + "x" * 480 for i in range(12000)]
        self.assertEqual(pipeline_acquires(self.server, names, "bulk"), len(names))
        r = self.server.get("/api/locks?prefix=big:", timeout=60)
        self.assertEqual(r.status, 200)
        self.assertGreater(len(r.body), 4 << 20)  # well past any socket buffer
        body = r.json()
        self.assertEqual(body["count"], len(names))
        self.assertEqual(sorted(lock["resource"] for lock in body["locks"]), names)


class HalfCloseAfterConnectionClose(ServerTestCase):
    """A client that asked for `Connection: close` and then half-closed its side got a
    large answer cut off: the EOF closed the connection while the answer was still
    queued. Queued answers are now finished first, whatever the connection's state."""

    def test_close_answer_survives_half_close(self):
        names = ["hcc:%06d:" % i + "y" * 480 for i in range(12000)]
        self.assertEqual(pipeline_acquires(self.server, names, "bulk"), len(names))
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=30 * SLOW)
        try:
            s.sendall(b"GET /api/locks?prefix=hcc: HTTP/1.1\r\nHost: x\r\n"
                      b"Connection: close\r\n\r\n")
            s.shutdown(socket.SHUT_WR)
            got = b""
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                got += chunk
        finally:
            s.close()
        head, _, body = got.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), got[:200])
        self.assertEqual(json.loads(body)["count"], len(names))


if __name__ == "__main__":
    harness.main()
