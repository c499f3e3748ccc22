/* candado-loadgen: the benchmark client for what wrk cannot do.
 *
 *   load     N acquires of distinct 30-byte names, pipelined in batches over a few
 *            connections (fills the server fast: memory and mass-expiry scenarios).
 *            --ttl MS gives every lock the same TTL; --deadline-in MS instead computes
 *            each request's ttl as (start + MS) - now, so that all locks end at the
 *            same moment. With --probe, once loaded it waits until just before that
 *            moment and then sends GET /api/locks/stats and POST acquire back to back
 *            on a fresh connection, recording the slowest answer, until stats shows
 *            no loaded lock left (activeLocks <= the probe's own lock).
 *   handoff  --waiters W clients each wait (wait=60000) on one resource on their own
 *            connection; the holder releases; each grantee releases at once: a chain.
 *            Records release-sent -> next-grant-received in the client.
 *   req      one request, prints the response body (used instead of curl).
 *
 * Output: key=value lines on stdout. Plain sockets and poll(2); one thread. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

static const char *host = "127.0.0.1";
static int port = 3001;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int fcntl_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int fcntl_block(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

/* ---- a growable buffer and one connection ---- */

typedef struct buf {
    char *p;
    size_t len, off, cap;
} buf;

static void buf_reserve(buf *b, size_t more)
{
    if (b->off && b->off == b->len)
        b->off = b->len = 0;
    if (b->len + more <= b->cap)
        return;
    if (b->off) { /* compact first */
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->len + more <= b->cap)
            return;
    }
    size_t ncap = b->cap ? b->cap : 65536;
    while (ncap < b->len + more)
        ncap *= 2;
    b->p = realloc(b->p, ncap);
    if (!b->p)
        die("realloc");
    b->cap = ncap;
}

static void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, room, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        buf_reserve(b, (size_t)(n < 0 ? 4096 : n + 1));
    }
}

typedef struct conn {
    int fd;
    buf out, in;
    long inflight;
    int state; /* handoff: 0 idle, 1 waiting for a grant, 2 releasing */
    char token[96];
} conn;

static void add_request(conn *c, const char *method, const char *path, const char *body)
{
    size_t blen = body ? strlen(body) : 0;
    buf_reserve(&c->out, blen + 256);
    if (body)
        buf_printf(&c->out,
                   "%s %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\n\r\n%s",
                   method, path, blen, body);
    else
        buf_printf(&c->out, "%s %s HTTP/1.1\r\nHost: bench\r\n\r\n", method, path);
    c->inflight++;
}

/* Writes what it can; returns false on a hard error. */
static bool flush_some(conn *c)
{
    while (c->out.off < c->out.len) {
        ssize_t n = write(c->fd, c->out.p + c->out.off, c->out.len - c->out.off);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return true;
            return false;
        }
        c->out.off += (size_t)n;
    }
    c->out.off = c->out.len = 0;
    return true;
}

static void flush_all(conn *c)
{
    while (c->out.off < c->out.len) {
        ssize_t n = write(c->fd, c->out.p + c->out.off, c->out.len - c->out.off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("write");
        }
        c->out.off += (size_t)n;
    }
    c->out.off = c->out.len = 0;
}

/* Reads once; returns bytes read, 0 on EOF, -1 on EAGAIN. */
static ssize_t read_some(conn *c)
{
    buf_reserve(&c->in, 65536);
    ssize_t n = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return -1;
        die("read");
    }
    c->in.len += (size_t)n;
    return n;
}

/* One complete response at the front of c->in, or false. Body is not NUL-terminated. */
typedef struct resp {
    int status;
    const char *body;
    size_t blen;
} resp;

static bool next_response(conn *c, resp *r)
{
    const char *p = c->in.p + c->in.off;
    size_t avail = c->in.len - c->in.off;
    const char *end = memmem(p, avail, "\r\n\r\n", 4);
    if (!end)
        return false;
    size_t hlen = (size_t)(end - p) + 4;
    long cl = 0;
    for (const char *h = p; h < end;) {
        const char *eol = memmem(h, (size_t)(end - h) + 2, "\r\n", 2);
        if (strncasecmp(h, "Content-Length:", 15) == 0)
            cl = strtol(h + 15, NULL, 10);
        h = eol + 2;
    }
    if (avail < hlen + (size_t)cl)
        return false;
    r->status = atoi(p + 9);
    r->body = p + hlen;
    r->blen = (size_t)cl;
    c->in.off += hlen + (size_t)cl;
    return true;
}

static bool body_has(const resp *r, const char *s)
{
    return memmem(r->body, r->blen, s, strlen(s)) != NULL;
}

/* Blocking: send one request, wait for its response. Returns latency in ms. */
static double roundtrip(conn *c, const char *method, const char *path, const char *body, resp *r)
{
    double t0 = now_ms();
    add_request(c, method, path, body);
    flush_all(c);
    while (!next_response(c, r))
        if (read_some(c) == 0) {
            fprintf(stderr, "loadgen: server closed the connection\n");
            exit(1);
        }
    c->inflight--;
    return now_ms() - t0;
}

static long json_int(const resp *r, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = memmem(r->body, r->blen, k, strlen(k));
    return p ? strtol(p + strlen(k), NULL, 10) : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)n + 0.999999);
    if (i < 1)
        i = 1;
    if (i > n)
        i = n;
    return v[i - 1];
}

/* ---- load (+ probe) ---- */

static struct {
    long count, conns, depth, ttl, deadline_in, waiters, rounds;
    const char *prefix, *client;
    bool probe;
} opt = {1000000, 4, 512, 300000, 0, 100, 5, "bench:memory:", "bench-load", false};

static int cmd_load(void)
{
    size_t plen = strlen(opt.prefix);
    if (plen >= 30) {
        fprintf(stderr, "loadgen: --prefix must be shorter than 30 bytes\n");
        return 2;
    }
    int digits = (int)(30 - plen);
    conn *cs = calloc((size_t)opt.conns, sizeof *cs);
    for (long i = 0; i < opt.conns; i++) {
        cs[i].fd = dial();
        if (fcntl_nonblock(cs[i].fd) < 0)
            die("fcntl");
    }
    double start = now_ms(), deadline = start + (double)opt.deadline_in;
    long next = 0, done = 0, granted = 0, refused = 0, errors = 0, ttl_min = LONG_MAX, ttl_max = 0;
    struct pollfd *pf = calloc((size_t)opt.conns, sizeof *pf);
    char body[256], name[64];
    while (done < opt.count) {
        for (long i = 0; i < opt.conns; i++) {
            conn *c = &cs[i];
            if (c->inflight <= opt.depth / 2) {
                while (c->inflight < opt.depth && next < opt.count) {
                    snprintf(name, sizeof name, "%s%0*ld", opt.prefix, digits, next);
                    long ttl = opt.ttl;
                    if (opt.deadline_in) {
                        ttl = (long)(deadline - now_ms() + 0.5);
                        if (ttl < 1) {
                            fprintf(stderr, "loadgen: loading took past the deadline; raise "
                                            "--deadline-in\n");
                            return 1;
                        }
                    }
                    ttl_min = ttl < ttl_min ? ttl : ttl_min;
                    ttl_max = ttl > ttl_max ? ttl : ttl_max;
                    snprintf(body, sizeof body,
                             "{\"resource\":\"%s\",\"clientId\":\"%s\",\"ttl\":%ld}", name,
                             opt.client, ttl);
                    add_request(c, "POST", "/api/locks/acquire", body);
                    next++;
                }
            }
            if (!flush_some(c))
                die("write");
            pf[i] = (struct pollfd){
                .fd = c->fd, .events = (short)(POLLIN | (c->out.len > c->out.off ? POLLOUT : 0))};
        }
        if (poll(pf, (nfds_t)opt.conns, 10000) <= 0) {
            fprintf(stderr, "loadgen: no progress for 10 s (done %ld)\n", done);
            return 1;
        }
        for (long i = 0; i < opt.conns; i++) {
            conn *c = &cs[i];
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t got;
            while ((got = read_some(c)) > 0) {
                resp r;
                while (next_response(c, &r)) {
                    c->inflight--;
                    done++;
                    if (r.status != 200)
                        errors++;
                    else if (body_has(&r, "\"acquired\":true"))
                        granted++;
                    else
                        refused++;
                }
            }
            if (got == 0) {
                fprintf(stderr, "loadgen: server closed a connection\n");
                return 1;
            }
        }
    }
    double elapsed = now_ms() - start;
    printf("load_count=%ld\nload_granted=%ld\nload_refused=%ld\nload_errors=%ld\n"
           "load_seconds=%.3f\nload_rate=%.0f\nname_bytes=30\nttl_min=%ld\nttl_max=%ld\n",
           done, granted, refused, errors, elapsed / 1e3, done / (elapsed / 1e3), ttl_min, ttl_max);
    fflush(stdout);
    for (long i = 0; i < opt.conns; i++)
        close(cs[i].fd);
    if (!opt.probe)
        return errors ? 1 : 0;

    /* The probe: from 500 ms before the deadline until nothing loaded is left. */
    double wait_ms = deadline - 500 - now_ms();
    if (wait_ms > 0)
        usleep((useconds_t)(wait_ms * 1e3));
    conn p = {.fd = dial()};
    resp r;
    double max_stats = 0, max_acq = 0, max_after = 0, zero_at = -1, clean_at = -1;
    long probes = 0, over10 = 0, active = -1, total = -1, held = 0;
    size_t ns = 0, cap = 1 << 16;
    double *lat = malloc(cap * sizeof *lat);
    const char *acq = "{\"resource\":\"probe:expiry\",\"clientId\":\"probe\",\"ttl\":300000}";
    for (;;) {
        double t = now_ms();
        double ls = roundtrip(&p, "GET", "/api/locks/stats", NULL, &r);
        active = json_int(&r, "activeLocks");
        total = json_int(&r, "totalLocks");
        double la = roundtrip(&p, "POST", "/api/locks/acquire", acq, &r);
        if (body_has(&r, "\"acquired\":true"))
            held = 1;
        probes++;
        max_stats = ls > max_stats ? ls : max_stats;
        max_acq = la > max_acq ? la : max_acq;
        if (t >= deadline) {
            double m = ls > la ? ls : la;
            max_after = m > max_after ? m : max_after;
        }
        over10 += (ls > 10) + (la > 10);
        if (ns + 2 > cap)
            lat = realloc(lat, (cap *= 2) * sizeof *lat);
        lat[ns++] = ls;
        lat[ns++] = la;
        if (t >= deadline && zero_at < 0 && active >= 0 && active <= held)
            zero_at = now_ms();
        if (t >= deadline && total >= 0 && total <= held) {
            clean_at = now_ms();
            break;
        }
        if (t > deadline + 60000)
            break;
    }
    qsort(lat, ns, sizeof *lat, cmp_double);
    printf(
        "probe_pairs=%ld\nprobe_max_ms=%.3f\nprobe_max_stats_ms=%.3f\nprobe_max_acquire_ms=%.3f\n"
        "probe_max_after_deadline_ms=%.3f\nprobe_p50_ms=%.3f\nprobe_p99_ms=%.3f\n"
        "probe_over_10ms=%ld\nactive_zero_after_deadline_ms=%.1f\n"
        "cleanup_done_after_deadline_ms=%.1f\nactive_at_end=%ld\ntotal_at_end=%ld\n",
        probes, max_stats > max_acq ? max_stats : max_acq, max_stats, max_acq, max_after,
        pct(lat, ns, 0.5), pct(lat, ns, 0.99), over10, zero_at < 0 ? -1 : zero_at - deadline,
        clean_at < 0 ? -1 : clean_at - deadline, active, total);
    close(p.fd);
    return zero_at < 0 || clean_at < 0 ? 1 : 0;
}

/* ---- hand-off chain ---- */

static bool grab_token(const resp *r, char *out, size_t cap)
{
    const char *p = memmem(r->body, r->blen, "\"token\":\"", 9);
    if (!p)
        return false;
    p += 9;
    const char *q = memchr(p, '"', r->blen - (size_t)(p - r->body));
    if (!q || (size_t)(q - p) >= cap)
        return false;
    memcpy(out, p, (size_t)(q - p));
    out[q - p] = 0;
    return true;
}

static int cmd_handoff(void)
{
    long W = opt.waiters;
    conn holder = {.fd = dial()};
    conn *ws = calloc((size_t)W, sizeof *ws);
    struct pollfd *pf = calloc((size_t)W, sizeof *pf);
    for (long i = 0; i < W; i++)
        ws[i].fd = dial();
    double *lat = malloc((size_t)(W * opt.rounds) * sizeof *lat);
    size_t ns = 0;
    long bad = 0;
    char body[512], path[128], res[64];
    resp r;
    for (long round = 0; round < opt.rounds; round++) {
        snprintf(res, sizeof res, "bench:handoff:%ld:%ld", (long)getpid(), round);
        snprintf(body, sizeof body, "{\"resource\":\"%s\",\"clientId\":\"holder\",\"ttl\":60000}",
                 res);
        roundtrip(&holder, "POST", "/api/locks/acquire", body, &r);
        if (!grab_token(&r, holder.token, sizeof holder.token)) {
            fprintf(stderr, "loadgen: holder did not get the lock\n");
            return 1;
        }
        for (long i = 0; i < W; i++) {
            snprintf(
                body, sizeof body,
                "{\"resource\":\"%s\",\"clientId\":\"waiter-%ld\",\"ttl\":60000,\"wait\":60000}",
                res, i);
            add_request(&ws[i], "POST", "/api/locks/acquire", body);
            flush_all(&ws[i]);
            ws[i].state = 1;
        }
        /* every waiter queued? */
        snprintf(path, sizeof path, "/api/locks/info/%s", res);
        for (int tries = 0;; tries++) {
            roundtrip(&holder, "GET", path, NULL, &r);
            if (json_int(&r, "waiting") == W)
                break;
            if (tries > 5000) {
                fprintf(stderr, "loadgen: waiters never all queued\n");
                return 1;
            }
            usleep(1000);
        }
        for (long i = 0; i < W; i++)
            if (fcntl_nonblock(ws[i].fd) < 0)
                die("fcntl");
        snprintf(body, sizeof body, "{\"resource\":\"%s\",\"token\":\"%s\"}", res, holder.token);
        double sent = now_ms();
        add_request(&holder, "POST", "/api/locks/release", body);
        flush_all(&holder);
        long granted = 0, released = 0;
        while (released < W) {
            for (long i = 0; i < W; i++)
                pf[i] = (struct pollfd){.fd = ws[i].fd, .events = POLLIN};
            if (poll(pf, (nfds_t)W, 10000) <= 0) {
                fprintf(stderr, "loadgen: hand-off stalled after %ld grants\n", granted);
                return 1;
            }
            for (long i = 0; i < W; i++) {
                if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                conn *c = &ws[i];
                ssize_t got;
                while ((got = read_some(c)) > 0)
                    ;
                if (got == 0) {
                    fprintf(stderr, "loadgen: server closed waiter %ld\n", i);
                    return 1;
                }
                double t = now_ms();
                while (next_response(c, &r)) {
                    c->inflight--;
                    if (c->state == 1) {
                        if (!grab_token(&r, c->token, sizeof c->token)) {
                            bad++;
                            fprintf(stderr, "loadgen: waiter %ld got %.*s\n", i, (int)r.blen,
                                    r.body);
                            return 1;
                        }
                        lat[ns++] = t - sent;
                        granted++;
                        snprintf(body, sizeof body, "{\"resource\":\"%s\",\"token\":\"%s\"}", res,
                                 c->token);
                        sent = now_ms();
                        add_request(c, "POST", "/api/locks/release", body);
                        flush_all(c);
                        c->state = 2;
                    } else if (c->state == 2) {
                        if (!body_has(&r, "\"released\":true"))
                            bad++;
                        released++;
                        c->state = 0;
                    }
                }
            }
        }
        /* the holder's release answer */
        while (!next_response(&holder, &r))
            if (read_some(&holder) == 0)
                die("holder closed");
        holder.inflight--;
        if (!body_has(&r, "\"released\":true"))
            bad++;
        for (long i = 0; i < W; i++)
            if (fcntl_block(ws[i].fd) < 0)
                die("fcntl");
    }
    qsort(lat, ns, sizeof *lat, cmp_double);
    double sum = 0;
    for (size_t i = 0; i < ns; i++)
        sum += lat[i];
    printf("handoff_waiters=%ld\nhandoff_rounds=%ld\nhandoff_samples=%zu\nhandoff_bad=%ld\n"
           "handoff_p50_ms=%.3f\nhandoff_p99_ms=%.3f\nhandoff_max_ms=%.3f\nhandoff_mean_ms=%.3f\n",
           W, opt.rounds, ns, bad, pct(lat, ns, 0.5), pct(lat, ns, 0.99), lat[ns - 1],
           sum / (double)ns);
    return bad ? 1 : 0;
}

/* ---- one request ---- */

static int cmd_req(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: loadgen req METHOD PATH [BODY]\n");
        return 2;
    }
    conn c = {.fd = dial()};
    resp r;
    roundtrip(&c, argv[0], argv[1], argc > 2 ? argv[2] : NULL, &r);
    fwrite(r.body, 1, r.blen, stdout);
    putchar('\n');
    close(c.fd);
    return r.status == 200 ? 0 : 1;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"host", required_argument, 0, 'H'},
                                       {"port", required_argument, 0, 'p'},
                                       {"count", required_argument, 0, 'n'},
                                       {"conns", required_argument, 0, 'c'},
                                       {"depth", required_argument, 0, 'd'},
                                       {"ttl", required_argument, 0, 't'},
                                       {"deadline-in", required_argument, 0, 'D'},
                                       {"prefix", required_argument, 0, 'P'},
                                       {"client", required_argument, 0, 'C'},
                                       {"probe", no_argument, 0, 'r'},
                                       {"waiters", required_argument, 0, 'w'},
                                       {"rounds", required_argument, 0, 'R'},
                                       {0, 0, 0, 0}};
    if (argc < 2) {
        fprintf(stderr, "usage: loadgen load|handoff|req [--port N] [options]  (see the source)\n");
        return 2;
    }
    const char *cmd = argv[1];
    int ch;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "+", lo, NULL)) != -1) {
        switch (ch) {
        case 'H':
            host = optarg;
            break;
        case 'p':
            port = atoi(optarg);
            break;
        case 'n':
            opt.count = atol(optarg);
            break;
        case 'c':
            opt.conns = atol(optarg);
            break;
        case 'd':
            opt.depth = atol(optarg);
            break;
        case 't':
            opt.ttl = atol(optarg);
            break;
        case 'D':
            opt.deadline_in = atol(optarg);
            break;
        case 'P':
            opt.prefix = optarg;
            break;
        case 'C':
            opt.client = optarg;
            break;
        case 'r':
            opt.probe = true;
            break;
        case 'w':
            opt.waiters = atol(optarg);
            break;
        case 'R':
            opt.rounds = atol(optarg);
            break;
        default:
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(cmd, "load") == 0)
        return cmd_load();
    if (strcmp(cmd, "handoff") == 0)
        return cmd_handoff();
    if (strcmp(cmd, "req") == 0)
        return cmd_req(argc - optind, argv + optind);
    fprintf(stderr, "loadgen: unknown command '%s'\n", cmd);
    return 2;
}
