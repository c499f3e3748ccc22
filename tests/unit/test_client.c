/* Unit tests of libcandado that need no Candado server: URL building and escaping, request bodies,
 * response parsing (src/client/proto.c), error names, the transport's "nobody there", and - with
 * a canned one-thread HTTP responder - how statuses map to error codes and what with_lock sends. */
#define _GNU_SOURCE /* strcasestr */
#include "candado/client.h"
#include "client/proto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

static void url_escapes_segment(void **state)
{
    (void)state;
    char *u = cd_client_proto_url("http://h:1", "/api/locks/info/", "factura:create/F 1%");
    assert_string_equal(u, "http://h:1/api/locks/info/factura%3Acreate%2FF%201%25");
    free(u);
    u = cd_client_proto_url("http://h:1", "/api/locks/stats", NULL);
    assert_string_equal(u, "http://h:1/api/locks/stats");
    free(u);
    /* UTF-8 is escaped byte by byte. */
    u = cd_client_proto_url("http://h", "/api/locks/info/", "a\xc3\xb1o");
    assert_string_equal(u, "http://h/api/locks/info/a%C3%B1o");
    free(u);
}

static void list_url_has_only_given_params(void **state)
{
    (void)state;
    char *u = cd_client_proto_list_url("http://h", NULL);
    assert_string_equal(u, "http://h/api/locks");
    free(u);
    cd_client_list_opts o = {.prefix = "factura:", .limit = 10};
    u = cd_client_proto_list_url("http://h", &o);
    assert_string_equal(u, "http://h/api/locks?prefix=factura%3A&limit=10");
    free(u);
    cd_client_list_opts all = {"p", "c&d", 5, "x=y"};
    u = cd_client_proto_list_url("http://h", &all);
    assert_string_equal(u, "http://h/api/locks?prefix=p&clientId=c%26d&limit=5&cursor=x%3Dy");
    free(u);
}

static void bodies_leave_out_defaults(void **state)
{
    (void)state;
    char *b = cd_client_proto_acquire_body("r", "c", -1, -1);
    assert_string_equal(b, "{\"resource\":\"r\",\"clientId\":\"c\"}");
    free(b);
    b = cd_client_proto_acquire_body("r\"q", "c", 500, 0);
    assert_string_equal(b, "{\"resource\":\"r\\\"q\",\"clientId\":\"c\",\"ttl\":500,\"wait\":0}");
    free(b);
    b = cd_client_proto_extend_body("r", "t", -1);
    assert_string_equal(b, "{\"resource\":\"r\",\"token\":\"t\"}");
    free(b);
    b = cd_client_proto_release_body("r", "t");
    assert_string_equal(b, "{\"resource\":\"r\",\"token\":\"t\"}");
    free(b);
    /* Not UTF-8: jansson refuses, and the client reports a bad argument rather than sending. */
    assert_null(cd_client_proto_release_body("r\xff", "t"));
}

static void grant_granted_and_refused(void **state)
{
    (void)state;
    cd_client_grant g;
    assert_int_equal(
        cd_client_proto_grant("{\"acquired\":true,\"token\":\"lock-1-abc\",\"expiresIn\":30000,"
                              "\"expiresAt\":\"2024-01-06T12:35:26.789Z\",\"fencingToken\":42}",
                              &g),
        0);
    assert_true(g.acquired);
    assert_string_equal(g.token, "lock-1-abc");
    assert_int_equal(g.expires_in_ms, 30000);
    assert_int_equal(g.fencing_token, 42);
    assert_string_equal(g.expires_at, "2024-01-06T12:35:26.789Z");
    assert_null(g.message);
    cd_client_grant_clear(&g);
    cd_client_grant_clear(&g); /* twice is harmless */

    /* The original service's refusal has neither code nor expiresIn. */
    assert_int_equal(
        cd_client_proto_grant("{\"acquired\":false,\"error\":\"Recurso bloqueado\"}", &g), 0);
    assert_false(g.acquired);
    assert_null(g.token);
    assert_string_equal(g.message, "Recurso bloqueado");
    assert_null(g.code);
    assert_int_equal(g.expires_in_ms, -1);
    cd_client_grant_clear(&g);

    assert_int_equal(
        cd_client_proto_grant("{\"acquired\":false,\"error\":\"x\",\"code\":\"LOCKED\","
                              "\"expiresIn\":25000}",
                              &g),
        0);
    assert_string_equal(g.code, "LOCKED");
    assert_int_equal(g.expires_in_ms, 25000);
    cd_client_grant_clear(&g);
}

static void grant_rejects_broken_answers(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "not json",
        "[]",
        "{\"acquired\":\"yes\"}",
        "{\"acquired\":true,\"expiresIn\":1}",                   /* no token */
        "{\"acquired\":true,\"token\":\"t\",\"expiresIn\":1.5}", /* not an integer */
        "{\"acquired\":true,\"token\":7,\"expiresIn\":1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cd_client_grant g;
        assert_int_equal(cd_client_proto_grant(bad[i], &g), CD_CLIENT_EPROTO);
        assert_null(g.token); /* left zeroed: nothing to free */
    }
}

static void release_and_extend(void **state)
{
    (void)state;
    bool r = true;
    assert_int_equal(cd_client_proto_released("{\"released\":false,\"code\":\"NOT_HELD\"}", &r), 0);
    assert_false(r);
    assert_int_equal(cd_client_proto_released("{\"released\":true}", &r), 0);
    assert_true(r);
    assert_int_equal(cd_client_proto_released("{}", &r), CD_CLIENT_EPROTO);

    cd_client_extension e;
    assert_int_equal(cd_client_proto_extension("{\"extended\":true,\"expiresIn\":600,"
                                               "\"expiresAt\":\"2024-01-06T12:35:26.789Z\"}",
                                               &e),
                     0);
    assert_true(e.extended);
    assert_int_equal(e.expires_in_ms, 600);
    assert_string_equal(e.expires_at, "2024-01-06T12:35:26.789Z");
    assert_int_equal(cd_client_proto_extension("{\"extended\":false,\"error\":\"x\"}", &e), 0);
    assert_false(e.extended);
}

static void info_held_and_free(void **state)
{
    (void)state;
    cd_client_lock l;
    assert_int_equal(
        cd_client_proto_info("{\"exists\":true,\"resource\":\"f:1\",\"clientId\":\"c\","
                             "\"acquiredAt\":\"A\",\"expiresAt\":\"B\",\"timeRemaining\":25000,"
                             "\"fencingToken\":3,\"waiting\":2}",
                             &l),
        0);
    assert_true(l.exists);
    assert_string_equal(l.resource, "f:1");
    assert_string_equal(l.client_id, "c");
    assert_int_equal(l.time_remaining_ms, 25000);
    assert_int_equal(l.fencing_token, 3);
    assert_int_equal(l.waiting, 2);
    cd_client_lock_clear(&l);

    assert_int_equal(cd_client_proto_info("{\"exists\":false,\"resource\":\"f:1\"}", &l), 0);
    assert_false(l.exists);
    assert_string_equal(l.resource, "f:1");
    assert_null(l.client_id);
    cd_client_lock_clear(&l);

    assert_int_equal(cd_client_proto_info("{\"exists\":true,\"resource\":\"f\"}", &l),
                     CD_CLIENT_EPROTO);
    assert_null(l.resource);
}

static void list_with_and_without_cursor(void **state)
{
    (void)state;
    cd_client_lock_list l;
    assert_int_equal(cd_client_proto_list("{\"count\":0,\"locks\":[]}", &l), 0);
    assert_int_equal(l.count, 0);
    assert_null(l.next_cursor);
    cd_client_lock_list_clear(&l);

    assert_int_equal(
        cd_client_proto_list("{\"count\":2,\"nextCursor\":\"abc\",\"locks\":["
                             "{\"resource\":\"a\",\"clientId\":\"c1\",\"acquiredAt\":\"A\","
                             "\"expiresAt\":\"B\",\"timeRemaining\":1,\"fencingToken\":1},"
                             "{\"resource\":\"b\",\"clientId\":\"c2\",\"acquiredAt\":\"A\","
                             "\"expiresAt\":\"B\",\"timeRemaining\":2}]}",
                             &l),
        0);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.locks[1].client_id, "c2");
    assert_int_equal(l.locks[1].fencing_token, -1);
    assert_string_equal(l.next_cursor, "abc");
    cd_client_lock_list_clear(&l);

    /* A broken second entry frees the first (run under ASan to see it). */
    assert_int_equal(cd_client_proto_list(
                         "{\"locks\":[{\"resource\":\"a\",\"clientId\":\"c1\",\"acquiredAt\":"
                         "\"A\",\"expiresAt\":\"B\",\"timeRemaining\":1},{\"resource\":\"b\"}]}",
                         &l),
                     CD_CLIENT_EPROTO);
    assert_int_equal(l.count, 0);
}

static void stats_old_and_new_servers(void **state)
{
    (void)state;
    cd_client_stats s;
    assert_int_equal(cd_client_proto_stats("{\"totalLocks\":3,\"activeLocks\":2,\"expiredLocks\":1,"
                                           "\"locksByClient\":{\"a\":1,\"b\":1}}",
                                           &s),
                     0);
    assert_int_equal(s.total_locks, 3);
    assert_int_equal(s.nclients, 2);
    assert_int_equal(s.acquired, -1); /* not sent */
    assert_int_equal(s.waiting, -1);
    cd_client_stats_clear(&s);

    assert_int_equal(cd_client_proto_stats("{\"totalLocks\":0,\"activeLocks\":0,\"expiredLocks\":0,"
                                           "\"locksByClient\":{},\"counters\":{\"acquired\":7,"
                                           "\"waitTimeouts\":1},\"waiting\":0,\"uptimeMs\":5}",
                                           &s),
                     0);
    assert_int_equal(s.acquired, 7);
    assert_int_equal(s.wait_timeouts, 1);
    assert_int_equal(s.uptime_ms, 5);
    assert_int_equal(s.nclients, 0);
    cd_client_stats_clear(&s);

    assert_int_equal(cd_client_proto_stats("{\"totalLocks\":0,\"activeLocks\":0,\"expiredLocks\":0,"
                                           "\"locksByClient\":{\"a\":\"1\"}}",
                                           &s),
                     CD_CLIENT_EPROTO);
}

static void error_messages(void **state)
{
    (void)state;
    char buf[64];
    assert_true(cd_client_proto_error_message(
        "{\"statusCode\":400,\"message\":\"ttl must be an integer\",\"error\":\"Bad Request\"}",
        buf, sizeof buf));
    assert_string_equal(buf, "ttl must be an integer");
    assert_true(cd_client_proto_error_message("{\"message\":[\"a\",\"b\"]}", buf, sizeof buf));
    assert_string_equal(buf, "a; b");
    assert_false(cd_client_proto_error_message("<html>", buf, sizeof buf));
    char tiny[4];
    assert_true(cd_client_proto_error_message("{\"message\":\"abcdef\"}", tiny, sizeof tiny));
    assert_string_equal(tiny, "abc");
    int64_t n = 0;
    assert_int_equal(cd_client_proto_released_count("{\"success\":true,\"releasedCount\":2}", &n),
                     0);
    assert_int_equal(n, 2);
    assert_int_equal(cd_client_proto_health("{\"status\":\"ok\"}"), 0);
    assert_int_equal(cd_client_proto_health("{\"status\":\"down\"}"), CD_CLIENT_EPROTO);
}

static void error_names_and_ids(void **state)
{
    (void)state;
    assert_string_equal(cd_client_strerror(CD_CLIENT_EUNREACHABLE), "server unreachable");
    assert_string_equal(cd_client_strerror(0), "ok");
    assert_string_equal(cd_client_strerror(-1000), "unknown error");
    assert_string_equal(cd_client_strerror(5), "unknown error");
    char id[300];
    assert_int_equal(cd_client_default_id(id, sizeof id), 0);
    char pid[32];
    snprintf(pid, sizeof pid, "-%ld", (long)getpid());
    assert_non_null(strstr(id, pid));
    assert_int_equal(cd_client_default_id(id, 1), CD_CLIENT_EINVAL);
    assert_null(cd_client_new(NULL));
    assert_null(cd_client_new(""));
}

/* A port nobody listens on: bound and closed again, so a connect is refused at once. */
static int dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static int never_called(cd_client *c, const char *resource, const cd_client_grant *g, void *ud)
{
    (void)c, (void)resource, (void)g;
    *(bool *)ud = true;
    return 0;
}

static void unreachable_server(void **state)
{
    (void)state;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", dead_port());
    cd_client *c = cd_client_new(url);
    assert_non_null(c);
    cd_client_grant g;
    assert_int_equal(cd_client_acquire(c, "r", NULL, &g), CD_CLIENT_EUNREACHABLE);
    assert_true(strlen(cd_client_last_error(c)) > 0);
    assert_int_equal(cd_client_last_status(c), 0);
    assert_int_equal(cd_client_health(c), CD_CLIENT_EUNREACHABLE);
    bool called = false;
    int ret = -1;
    assert_int_equal(cd_client_with_lock(c, "r", NULL, never_called, &called, &ret),
                     CD_CLIENT_EUNREACHABLE);
    assert_false(called);
    assert_int_equal(ret, -1);
    assert_int_equal(cd_client_release(c, NULL, "t", NULL), CD_CLIENT_EINVAL);
    assert_int_equal(cd_client_release(c, "r\xff", "t", NULL), CD_CLIENT_EINVAL);
    cd_client_free(c);
    cd_client_free(NULL);
}

/* ---- a canned HTTP responder ---------------------------------------------------------------- */

/* Answers each connection with the next canned reply and keeps the requests it got. */
typedef struct canned {
    int fd, port, n, served;
    const char *const *replies; /* "STATUS BODY", e.g. "200 {\"released\":true}" */
    char requests[8][2048];
    pthread_t thread;
} canned;

static void *canned_main(void *ud)
{
    canned *cn = ud;
    for (cn->served = 0; cn->served < cn->n; cn->served++) {
        int c = accept(cn->fd, NULL, NULL);
        if (c < 0)
            break;
        char *req = cn->requests[cn->served < 8 ? cn->served : 7];
        size_t len = 0;
        for (;;) { /* headers, then Content-Length bytes of body */
            ssize_t r = recv(c, req + len, 2047 - len, 0);
            if (r <= 0)
                break;
            len += (size_t)r;
            req[len] = '\0';
            char *end = strstr(req, "\r\n\r\n");
            char *cl = strcasestr(req, "Content-Length:");
            if (end && (!cl || strlen(end + 4) >= (size_t)atoi(cl + 15)))
                break;
        }
        const char *reply = cn->replies[cn->served];
        char out[1024];
        int n = snprintf(out, sizeof out,
                         "HTTP/1.1 %.3s X\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                         reply, strlen(reply + 4), reply + 4);
        ssize_t w = send(c, out, (size_t)n, MSG_NOSIGNAL);
        (void)w;
        close(c);
    }
    return NULL;
}

static cd_client *canned_start(canned *cn, const char *const *replies, int n)
{
    memset(cn, 0, sizeof *cn);
    cn->replies = replies;
    cn->n = n;
    cn->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(cn->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(cn->fd, 8), 0);
    assert_int_equal(getsockname(cn->fd, (struct sockaddr *)&a, &len), 0);
    cn->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&cn->thread, NULL, canned_main, cn), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", cn->port);
    return cd_client_new(url);
}

static void canned_stop(canned *cn, cd_client *c)
{
    cd_client_free(c);
    shutdown(cn->fd, SHUT_RDWR);
    pthread_join(cn->thread, NULL);
    close(cn->fd);
}

static void statuses_become_error_codes(void **state)
{
    (void)state;
    static const char *const replies[] = {
        "400 {\"statusCode\":400,\"message\":\"ttl must be an integer\",\"error\":\"Bad Request\"}",
        "401 {\"statusCode\":401,\"message\":\"Unauthorized\"}",
        "404 {\"statusCode\":404,\"message\":\"Cannot POST /api/locks/extend\"}",
        "503 {\"statusCode\":503,\"message\":\"store unavailable\"}",
        "200 <html>",
        "302 ",
    };
    static const int expect[] = {CD_CLIENT_EBADREQ, CD_CLIENT_EAUTH,  CD_CLIENT_ENOTFOUND,
                                 CD_CLIENT_ESERVER, CD_CLIENT_EPROTO, CD_CLIENT_EPROTO};
    canned cn;
    cd_client *c = canned_start(&cn, replies, 6);
    bool released;
    for (int i = 0; i < 6; i++)
        assert_int_equal(cd_client_release(c, "r", "t", &released), expect[i]);
    canned_stop(&cn, c);
}

static void error_text_comes_from_the_server(void **state)
{
    (void)state;
    static const char *const replies[] = {
        "503 {\"statusCode\":503,\"message\":\"store unavailable\"}",
        "200 {\"success\":true,\"releasedCount\":3}",
    };
    canned cn;
    cd_client *c = canned_start(&cn, replies, 2);
    cd_client_lock l;
    assert_int_equal(cd_client_info(c, "a:b c", &l), CD_CLIENT_ESERVER);
    assert_string_equal(cd_client_last_error(c), "store unavailable");
    assert_int_equal(cd_client_last_status(c), 503);
    assert_non_null(strstr(cd_client_last_body(c), "statusCode"));
    assert_non_null(strstr(cn.requests[0], "GET /api/locks/info/a%3Ab%20c HTTP/1.1"));
    int64_t n = 0;
    assert_int_equal(cd_client_release_client(c, "c1", "s3cret", &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(cd_client_last_error(c), "");
    assert_non_null(strstr(cn.requests[1], "DELETE /api/locks/client/c1 HTTP/1.1"));
    assert_non_null(strstr(cn.requests[1], "Authorization: Bearer s3cret\r\n"));
    canned_stop(&cn, c);
}

typedef struct seen {
    int calls;
    char token[64];
    int64_t fencing;
} seen;

static int record(cd_client *c, const char *resource, const cd_client_grant *g, void *ud)
{
    (void)c;
    seen *s = ud;
    s->calls++;
    snprintf(s->token, sizeof s->token, "%s", g->token);
    s->fencing = g->fencing_token;
    assert_string_equal(resource, "job");
    return 7;
}

static void with_lock_calls_then_releases(void **state)
{
    (void)state;
    static const char *const replies[] = {
        "200 {\"acquired\":true,\"token\":\"lock-1-aa\",\"expiresIn\":500,\"fencingToken\":9}",
        "200 {\"released\":true}",
        "200 {\"acquired\":false,\"error\":\"held\",\"code\":\"LOCKED\",\"expiresIn\":100}",
        "200 {\"acquired\":true,\"token\":\"lock-2-bb\",\"expiresIn\":500}",
        "200 {\"released\":false,\"code\":\"NOT_HELD\"}",
    };
    canned cn;
    cd_client *c = canned_start(&cn, replies, 5);
    seen s = {0};
    int ret = 0;
    cd_client_acquire_opts o = {"me", 500, 2000};
    assert_int_equal(cd_client_with_lock(c, "job", &o, record, &s, &ret), 0);
    assert_int_equal(ret, 7);
    assert_int_equal(s.calls, 1);
    assert_string_equal(s.token, "lock-1-aa");
    assert_int_equal(s.fencing, 9);
    assert_non_null(strstr(cn.requests[0], "\"clientId\":\"me\",\"ttl\":500,\"wait\":2000"));
    assert_non_null(strstr(cn.requests[1], "POST /api/locks/release"));
    assert_non_null(strstr(cn.requests[1], "\"token\":\"lock-1-aa\""));
    assert_string_equal(cd_client_last_error(c), "");

    /* Held by someone else: fn is not called, and nothing is released. */
    ret = 0;
    assert_int_equal(cd_client_with_lock(c, "job", &o, record, &s, &ret), CD_CLIENT_ELOCKED);
    assert_int_equal(s.calls, 1);
    assert_int_equal(ret, 0);

    /* fn outlived the lock: still 0 (fn ran), and last_error says so. */
    assert_int_equal(cd_client_with_lock(c, "job", &o, record, &s, NULL), 0);
    assert_int_equal(s.calls, 2);
    assert_non_null(strstr(cd_client_last_error(c), "expired"));
    canned_stop(&cn, c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(url_escapes_segment),
        cmocka_unit_test(list_url_has_only_given_params),
        cmocka_unit_test(bodies_leave_out_defaults),
        cmocka_unit_test(grant_granted_and_refused),
        cmocka_unit_test(grant_rejects_broken_answers),
        cmocka_unit_test(release_and_extend),
        cmocka_unit_test(info_held_and_free),
        cmocka_unit_test(list_with_and_without_cursor),
        cmocka_unit_test(stats_old_and_new_servers),
        cmocka_unit_test(error_messages),
        cmocka_unit_test(error_names_and_ids),
        cmocka_unit_test(unreachable_server),
        cmocka_unit_test(statuses_become_error_codes),
        cmocka_unit_test(error_text_comes_from_the_server),
        cmocka_unit_test(with_lock_calls_then_releases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
