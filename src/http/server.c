/* The HTTP/1.1 server: libuv for sockets and timers, http-parser for the protocol.
 *
 * One request per connection is in the handler's hands at a time. When it completes,
 * parsing pauses; bytes that arrive meanwhile (pipelining) wait in the connection's
 * input buffer and are parsed once the answer is on its way, so answers leave in
 * request order. Reading goes on while an answer is held back, which is how a long-poll
 * learns at once that its client hung up (EOF) and leaves its queue.
 *
 * Limits: request line + headers (431), body (413, also announced by Content-Length),
 * a deadline for a request that has started (408: a client that sends half a request
 * and stalls is cut off, and never delays anyone: nothing here blocks), an idle timeout
 * for keep-alive connections, a cap on connections, and a cap on unsent output for
 * clients that do not read their answers. */
#include "http/http.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_HEADERS      64
#define MAX_PIPELINED    (64 * 1024)   /* unparsed input kept while an answer is pending */
#define MAX_UNSENT       (1024 * 1024) /* unsent output past which a new answer closes */
#define READ_BUFFER_SIZE (64 * 1024)

typedef struct conn conn;

typedef struct header {
    uint32_t name_off, name_len, value_off, value_len;
} header;

struct cd_http_req {
    conn *c;
    void (*abort_cb)(void *ud);
    void *abort_ud;
};

enum conn_state { C_READING, C_PENDING, C_CLOSING };
enum last_cb { CB_NONE, CB_FIELD, CB_VALUE };

struct conn {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } h;
    uv_timer_t timer;
    cd_http_server *srv;
    conn *prev, *next;
    http_parser parser;
    cd_http_req req;
    enum conn_state state;

    /* the request being parsed: URL then header names and values in hbuf */
    char *hbuf;
    size_t hlen, hcap, url_len;
    header hdrs[MAX_HEADERS];
    unsigned nhdrs;
    enum last_cb last;
    char *body;
    size_t blen, bcap;
    int error_status; /* a limit a parser callback ran into */
    bool in_request;  /* a message has begun and not completed */
    bool keep_alive;
    bool head; /* HEAD: answer without the body */

    /* input that arrived while an answer was pending */
    char *in;
    size_t in_len, in_cap;
    bool processing; /* inside process(): answers must not re-enter it */
    bool reading;

    size_t path_off, path_len; /* of the request target, absolute-form included */
    size_t query_off, query_len;
    bool has_query;

    conn *drain_next; /* in the server's list of connections to parse again */
    bool drain_queued;

    uint64_t deadline;  /* loop ms when the request or idle time runs out; 0: none */
    uint64_t timer_due; /* loop ms the libuv timer is set for */

    bool req_active;   /* the handler holds req */
    bool abort_called; /* abort callback has run */
    int open_handles;  /* stream + timer, until their close callbacks */
};

struct cd_http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool listening;
    bool closing;
    cd_http_limits lim;
    cd_http_handler handler;
    void *ud;
    http_parser_settings settings;
    conn *conns;
    size_t nconns; /* allocated, closing ones included */
    size_t nopen;  /* not closing: what the connection limit counts */
    /* connections whose answer came later, parsed again on the next loop turn */
    uv_idle_t drainer;
    conn *drain_head, *drain_tail;
    int open_handles; /* listener (once listening) + drainer, until closed */
};

typedef struct wreq {
    uv_write_t w;
    conn *c;
    size_t len;
    char data[];
} wreq;

static char read_buffer[READ_BUFFER_SIZE]; /* one loop thread: read callbacks never overlap */

static void conn_close(conn *c);
static void drain(conn *c);
static void fail(conn *c, int status);
static void on_drainer(uv_idle_t *h);

cd_http_limits cd_http_limits_default(void)
{
    return (cd_http_limits){
        .max_header_bytes = 8192,
        .max_body_bytes = 16384,
        .max_connections = 10000,
        .request_timeout_ms = 10000,
        .idle_timeout_ms = 60000,
    };
}

const char *cd_http_status_text(int status)
{
    static const struct {
        int code;
        const char *text;
    } table[] = {
        {100, "Continue"},
        {200, "OK"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {413, "Payload Too Large"},
        {415, "Unsupported Media Type"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {503, "Service Unavailable"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].code == status)
            return table[i].text;
    return "Unknown";
}

/* ---- small buffers ---- */

static int buf_append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
    if (*len + n > *cap) {
        size_t ncap = *cap ? *cap : 256;
        while (ncap < *len + n)
            ncap *= 2;
        char *nb = realloc(*buf, ncap);
        if (!nb)
            return -1;
        *buf = nb;
        *cap = ncap;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    return 0;
}

/* ---- timers ---- */

/* Each connection has one deadline (request or idle) and one libuv timer that may fire
 * early: moving the deadline later only records it, and the timer re-arms itself when it
 * fires before the deadline. Keep-alive requests then cost no timer-heap work at all,
 * where setting and clearing a timer per request cost three heap operations. */
static void on_timer(uv_timer_t *t)
{
    conn *c = t->data;
    if (c->deadline == 0 || uv_is_closing(&c->h.handle))
        return;
    uint64_t now = uv_now(t->loop);
    if (now < c->deadline) {
        uv_timer_start(&c->timer, on_timer, c->deadline - now, 0);
        c->timer_due = c->deadline;
        return;
    }
    c->deadline = 0;
    if (c->state == C_READING && c->in_request)
        fail(c, 408);
    else if (c->state != C_PENDING)
        conn_close(c); /* idle keep-alive, or a last answer the client never reads */
}

static void timer_arm(conn *c, uint64_t ms)
{
    c->deadline = uv_now(c->timer.loop) + ms;
    if (!uv_is_active((uv_handle_t *)&c->timer) || c->timer_due > c->deadline) {
        uv_timer_start(&c->timer, on_timer, ms, 0);
        c->timer_due = c->deadline;
    }
}

static void timer_clear(conn *c)
{
    c->deadline = 0; /* the timer may still fire; it then finds nothing to do */
}

/* ---- writing ---- */

static void on_write(uv_write_t *w, int status)
{
    wreq *r = (wreq *)w;
    conn *c = r->c;
    if (status < 0 || (c->state == C_CLOSING && uv_stream_get_write_queue_size(w->handle) == 0))
        conn_close(c);
    free(r);
}

/* The Date header's value, formatted once a second. */
static const char *http_date(size_t *len)
{
    static time_t cached_at = -1;
    static char cached[64];
    static size_t cached_len;
    time_t now = time(NULL);
    if (now != cached_at) {
        struct tm tm;
        gmtime_r(&now, &tm);
        cached_len = strftime(cached, sizeof cached, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached_at = now;
    }
    *len = cached_len;
    return cached;
}

static char *put(char *p, const char *s, size_t n)
{
    if (n) /* s may be NULL when n is 0 */
        memcpy(p, s, n);
    return p + n;
}

#define PUT_LIT(p, lit) put(p, lit, sizeof lit - 1)

static char *put_uint(char *p, size_t v)
{
    char digits[24];
    size_t n = 0;
    do
        digits[sizeof digits - ++n] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    return put(p, digits + sizeof digits - n, n);
}

/* Answers are built with plain copies rather than printf: on the hot path the header
 * costs as much as everything else the server does for a request. */
static void send_response(conn *c, int status, const char *content_type, const char *extra,
                          const char *body, size_t len, bool close_after)
{
    if (uv_stream_get_write_queue_size(&c->h.stream) > MAX_UNSENT) {
        conn_close(c); /* earlier answers are still unread: the client is not reading */
        return;
    }
    size_t date_len;
    const char *date = http_date(&date_len);
    const char *reason = cd_http_status_text(status);
    size_t reason_len = strlen(reason), ct_len = strlen(content_type);
    size_t extra_len = extra ? strlen(extra) : 0;
    size_t body_len = c->head ? 0 : len;
    size_t cap = 160 + reason_len + date_len + ct_len + extra_len + body_len;
    char stack[4096];
    char *buf = cap <= sizeof stack ? stack : malloc(cap);
    if (!buf) {
        conn_close(c);
        return;
    }
    char *p = PUT_LIT(buf, "HTTP/1.1 ");
    p = put_uint(p, (size_t)status);
    *p++ = ' ';
    p = put(p, reason, reason_len);
    p = PUT_LIT(p, "\r\nDate: ");
    p = put(p, date, date_len);
    p = PUT_LIT(p, "\r\nContent-Type: ");
    p = put(p, content_type, ct_len);
    p = PUT_LIT(p, "\r\nContent-Length: ");
    p = put_uint(p, len);
    p = close_after ? PUT_LIT(p, "\r\nConnection: close\r\n")
                    : PUT_LIT(p, "\r\nConnection: keep-alive\r\n");
    p = put(p, extra, extra_len);
    p = PUT_LIT(p, "\r\n");
    p = put(p, body, body_len);
    size_t total = (size_t)(p - buf);

    /* Most answers fit in the socket buffer: send them now. uv_write() would also do
     * that, but then re-arms the socket's epoll interest, one more syscall per request;
     * only what the kernel does not take goes through a write request. (uv_try_write()
     * refuses while earlier writes are queued, so order is kept.) */
    uv_buf_t b = uv_buf_init(buf, (unsigned)total);
    int n = uv_try_write(&c->h.stream, &b, 1);
    size_t sent = n > 0 ? (size_t)n : 0;
    wreq *r = NULL;
    if (n < 0 && n != UV_EAGAIN) {
        conn_close(c);
    } else if (sent == total) {
        if (close_after)
            conn_close(c);
    } else if (!(r = malloc(sizeof *r + total - sent))) {
        conn_close(c);
    } else {
        r->c = c;
        r->len = total - sent;
        memcpy(r->data, buf + sent, r->len);
        b = uv_buf_init(r->data, (unsigned)r->len);
        if (uv_write(&r->w, &c->h.stream, &b, 1, on_write) < 0) {
            free(r);
            conn_close(c);
        } else if (close_after) {
            timer_arm(c, c->srv->lim.idle_timeout_ms); /* a client that never reads */
        }
    }
    if (buf != stack)
        free(buf);
}

/* A protocol error: answer in the API's error shape, then close. */
static void fail(conn *c, int status)
{
    static const struct {
        int status;
        const char *message;
    } messages[] = {
        {400, "Malformed HTTP request"}, {408, "Request not completed in time"},
        {413, "Request body too large"}, {431, "Request headers too large"},
        {500, "Out of memory"},
    };
    const char *msg = "Bad request";
    for (size_t i = 0; i < sizeof messages / sizeof messages[0]; i++)
        if (messages[i].status == status)
            msg = messages[i].message;
    char body[256];
    int n = snprintf(body, sizeof body, "{\"statusCode\":%d,\"message\":\"%s\",\"error\":\"%s\"}",
                     status, msg, cd_http_status_text(status));
    c->head = false;
    c->state = C_CLOSING;
    timer_clear(c);
    if (c->reading) {
        uv_read_stop(&c->h.stream);
        c->reading = false;
    }
    send_response(c, status, "application/json; charset=utf-8", NULL, body, (size_t)n, true);
}

/* ---- connection lifetime ---- */

static void conn_free(conn *c)
{
    cd_http_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    free(c->hbuf);
    free(c->body);
    free(c->in);
    free(c);
    if (s->closing && s->nconns == 0 && s->open_handles == 0)
        free(s);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    conn *c = h->data;
    if (--c->open_handles == 0 && !c->req_active && !c->drain_queued)
        conn_free(c);
}

static void abort_request(conn *c)
{
    if (c->req_active && !c->abort_called) {
        c->abort_called = true;
        if (c->req.abort_cb)
            c->req.abort_cb(c->req.abort_ud);
    }
}

static void conn_close(conn *c)
{
    if (uv_is_closing(&c->h.handle))
        return;
    /* A closing connection stops counting against the limit now, not when libuv has
     * finished closing it: a client that hangs up and reconnects at once must fit. */
    c->srv->nopen--;
    c->state = C_CLOSING;
    uv_close(&c->h.handle, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
    abort_request(c);
}

/* The handler is done with the request (answered or dropped). */
static void req_end(conn *c)
{
    c->req_active = false;
    c->req.abort_cb = NULL;
    if (c->open_handles == 0 && !c->drain_queued)
        conn_free(c);
}

/* ---- parsing ---- */

static int limit(conn *c, int status)
{
    c->error_status = status;
    return -1;
}

static int hbuf_add(conn *c, const char *at, size_t len)
{
    if (c->hlen + len > c->srv->lim.max_header_bytes)
        return limit(c, 431);
    if (buf_append(&c->hbuf, &c->hlen, &c->hcap, at, len) < 0)
        return limit(c, 500);
    return 0;
}

static int on_message_begin(http_parser *p)
{
    conn *c = p->data;
    c->hlen = c->url_len = c->blen = 0;
    c->nhdrs = 0;
    c->last = CB_NONE;
    c->in_request = true;
    timer_arm(c, c->srv->lim.request_timeout_ms);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    if (hbuf_add(c, at, len) < 0)
        return -1;
    c->url_len += len;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    if (c->last != CB_FIELD) {
        if (c->nhdrs == MAX_HEADERS)
            return limit(c, 431);
        c->hdrs[c->nhdrs++] = (header){(uint32_t)c->hlen, 0, (uint32_t)c->hlen, 0};
        c->last = CB_FIELD;
    }
    if (hbuf_add(c, at, len) < 0)
        return -1;
    c->hdrs[c->nhdrs - 1].name_len += (uint32_t)len;
    c->hdrs[c->nhdrs - 1].value_off = (uint32_t)c->hlen;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    if (c->last != CB_VALUE) {
        c->hdrs[c->nhdrs - 1].value_off = (uint32_t)c->hlen;
        c->last = CB_VALUE;
    }
    if (hbuf_add(c, at, len) < 0)
        return -1;
    c->hdrs[c->nhdrs - 1].value_len += (uint32_t)len;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    conn *c = p->data;
    if (p->content_length != ULLONG_MAX && p->content_length > c->srv->lim.max_body_bytes)
        return limit(c, 413);
    size_t n;
    const char *expect = cd_http_req_header(&c->req, "Expect", &n);
    if (expect && n == 12 && strncasecmp(expect, "100-continue", 12) == 0) {
        static char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        wreq *r = malloc(sizeof *r);
        if (!r)
            return limit(c, 500);
        r->c = c;
        uv_buf_t b = uv_buf_init(cont, sizeof cont - 1);
        if (uv_write(&r->w, &c->h.stream, &b, 1, on_write) < 0)
            free(r);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    if (c->blen + len > c->srv->lim.max_body_bytes)
        return limit(c, 413);
    if (buf_append(&c->body, &c->blen, &c->bcap, at, len) < 0)
        return limit(c, 500);
    return 0;
}

/* Splits the request target into path and query with http-parser's URL parser, which
 * also takes the absolute form ("GET http://host/api/locks HTTP/1.1") that servers must
 * accept; a target it cannot parse is split at its first '?'. */
static void split_target(conn *c)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    c->has_query = false;
    if (c->url_len && http_parser_parse_url(c->hbuf, c->url_len, 0, &u) == 0) {
        c->path_off = u.field_data[UF_PATH].off;
        c->path_len = u.field_set & (1 << UF_PATH) ? u.field_data[UF_PATH].len : 0;
        if (u.field_set & (1 << UF_QUERY)) {
            c->has_query = true;
            c->query_off = u.field_data[UF_QUERY].off;
            c->query_len = u.field_data[UF_QUERY].len;
        }
        return;
    }
    const char *q = c->url_len ? memchr(c->hbuf, '?', c->url_len) : NULL;
    c->path_off = 0;
    c->path_len = q ? (size_t)(q - c->hbuf) : c->url_len;
    if (q) {
        c->has_query = true;
        c->query_off = c->path_len + 1;
        c->query_len = c->url_len - c->query_off;
    }
}

static int on_message_complete(http_parser *p)
{
    conn *c = p->data;
    split_target(c);
    c->in_request = false;
    c->keep_alive = http_should_keep_alive(p);
    c->head = p->method == HTTP_HEAD;
    timer_clear(c);
    http_parser_pause(p, 1); /* one request at a time: the rest waits for this answer */
    return 0;
}

static void dispatch(conn *c)
{
    c->state = C_PENDING;
    c->req_active = true;
    c->abort_called = false;
    c->req.abort_cb = NULL;
    c->srv->handler(&c->req, c->srv->ud);
}

/* Parses as much of data as the connection may, dispatching each complete request;
 * returns the bytes consumed. */
static size_t process(conn *c, const char *data, size_t len)
{
    size_t off = 0;
    c->processing = true;
    while (off < len && c->state == C_READING) {
        off += http_parser_execute(&c->parser, &c->srv->settings, data + off, len - off);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            dispatch(c);
        } else if (e != HPE_OK) {
            fail(c, c->error_status ? c->error_status : 400);
            off = len;
        } else {
            break;
        }
    }
    c->processing = false;
    return off;
}

static void keep(conn *c, const char *data, size_t len)
{
    if (buf_append(&c->in, &c->in_len, &c->in_cap, data, len) < 0) {
        conn_close(c);
        return;
    }
    /* Pausing reads here would also stop us seeing the client hang up, and a waiter
     * must leave its queue when it does; so a client that piles up more than this
     * behind an unanswered request is disconnected instead. */
    if (c->in_len > MAX_PIPELINED)
        conn_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h, (void)suggested;
    *buf = uv_buf_init(read_buffer, sizeof read_buffer);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = st->data;
    if (nread < 0) {
        c->reading = false;
        if (nread == UV_EOF && c->state != C_PENDING && !c->in_request &&
            uv_stream_get_write_queue_size(st) > 0) {
            /* The client has said all it will (a half-close) and its answers are still
             * on their way: send them, then close (on_write), within the idle timeout. */
            if (c->state != C_CLOSING)
                timer_arm(c, c->srv->lim.idle_timeout_ms);
            c->state = C_CLOSING;
            return;
        }
        conn_close(c); /* a waiting request's client has gone: it is aborted */
        return;
    }
    if (nread == 0 || c->state == C_CLOSING)
        return;
    if (c->state == C_READING && c->in_len == 0) {
        size_t used = process(c, buf->base, (size_t)nread);
        if (used < (size_t)nread && c->state != C_CLOSING)
            keep(c, buf->base + used, (size_t)nread - used);
    } else {
        keep(c, buf->base, (size_t)nread);
    }
}

static void start_reading(conn *c)
{
    if (!c->reading && c->state != C_CLOSING && uv_read_start(&c->h.stream, on_alloc, on_read) == 0)
        c->reading = true;
}

/* Parses input that waited for an answer. */
static void drain(conn *c)
{
    if (c->processing || c->state != C_READING)
        return;
    if (c->in_len) {
        size_t used = process(c, c->in, c->in_len);
        if (c->state == C_CLOSING)
            return;
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
    }
}

/* Parses a connection's waiting input on the next loop turn. Answers that come later
 * (a waiter granted by another client's release) land here instead of parsing right
 * away: parsing runs handlers, which can answer other waiters, whose input would be
 * parsed in turn, one stack frame deeper for every waiter in a chain. */
static void drain_later(conn *c)
{
    cd_http_server *s = c->srv;
    if (c->drain_queued)
        return;
    c->drain_queued = true;
    c->drain_next = NULL;
    if (s->drain_tail)
        s->drain_tail->drain_next = c;
    else
        s->drain_head = c;
    s->drain_tail = c;
    uv_idle_start(&s->drainer, on_drainer);
}

static void on_drainer(uv_idle_t *h)
{
    cd_http_server *s = h->data;
    conn *c = s->drain_head;
    s->drain_head = s->drain_tail = NULL; /* drains may queue others: next turn */
    while (c) {
        conn *next = c->drain_next;
        c->drain_queued = false;
        if (c->open_handles == 0 && !c->req_active)
            conn_free(c); /* closed while queued */
        else
            drain(c);
        c = next;
    }
    if (!s->drain_head)
        uv_idle_stop(h);
}

/* ---- accepting ---- */

static conn *conn_new(cd_http_server *s)
{
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->srv = s;
    c->req.c = c;
    c->h.handle.data = c;
    c->timer.data = c;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_timer_init(s->loop, &c->timer);
    c->open_handles = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    s->nopen++;
    return c;
}

static void conn_start(conn *c)
{
    c->state = C_READING;
    timer_arm(c, c->srv->lim.idle_timeout_ms);
    start_reading(c);
}

static void on_connection(uv_stream_t *listener, int status)
{
    cd_http_server *s = listener->data;
    if (status < 0)
        return;
    conn *c = conn_new(s);
    if (!c) {
        uv_tcp_t *drop = malloc(sizeof *drop);
        if (drop && uv_tcp_init(s->loop, drop) == 0 &&
            uv_accept(listener, (uv_stream_t *)drop) == 0)
            uv_close((uv_handle_t *)drop, (uv_close_cb)free);
        else
            free(drop);
        return;
    }
    uv_tcp_init(s->loop, &c->h.tcp);
    if (uv_accept(listener, &c->h.stream) < 0 || s->nopen > s->lim.max_connections) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->h.tcp, 1);
    conn_start(c);
}

/* ---- public API ---- */

cd_http_server *cd_http_server_new(uv_loop_t *loop, const cd_http_limits *limits,
                                   cd_http_handler handler, void *ud)
{
    cd_http_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->loop = loop;
    s->lim = limits ? *limits : cd_http_limits_default();
    s->handler = handler;
    s->ud = ud;
    s->settings = (http_parser_settings){
        .on_message_begin = on_message_begin,
        .on_url = on_url,
        .on_header_field = on_header_field,
        .on_header_value = on_header_value,
        .on_headers_complete = on_headers_complete,
        .on_body = on_body,
        .on_message_complete = on_message_complete,
    };
    uv_idle_init(loop, &s->drainer);
    s->drainer.data = s;
    s->open_handles = 1;
    return s;
}

int cd_http_server_listen(cd_http_server *s, const char *host, int port)
{
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    uv_getaddrinfo_t gai;
    int err = uv_getaddrinfo(s->loop, &gai, NULL, host, service, &hints);
    if (err)
        return err;
    uv_tcp_init(s->loop, &s->listener);
    s->listener.data = s;
    s->listening = true;
    s->open_handles++;
    err = uv_tcp_bind(&s->listener, gai.addrinfo->ai_addr, 0);
    uv_freeaddrinfo(gai.addrinfo);
    if (!err)
        err = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection);
    return err;
}

int cd_http_server_port(const cd_http_server *s)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int cd_http_server_adopt_fd(cd_http_server *s, int fd)
{
    conn *c = conn_new(s);
    if (!c)
        return UV_ENOMEM;
    uv_pipe_init(s->loop, &c->h.pipe, 0);
    int err = uv_pipe_open(&c->h.pipe, fd);
    if (err) {
        conn_close(c);
        return err;
    }
    conn_start(c);
    return 0;
}

size_t cd_http_server_connections(const cd_http_server *s)
{
    return s->nopen;
}

static void on_server_handle_closed(uv_handle_t *h)
{
    cd_http_server *s = h->data;
    if (--s->open_handles == 0 && s->nconns == 0)
        free(s);
}

void cd_http_server_close(cd_http_server *s)
{
    s->closing = true;
    for (conn *c = s->drain_head; c; c = c->drain_next)
        c->drain_queued = false; /* closing: their close callbacks free them */
    s->drain_head = s->drain_tail = NULL;
    for (conn *c = s->conns; c; c = c->next)
        conn_close(c);
    if (s->listening && !uv_is_closing((uv_handle_t *)&s->listener))
        uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&s->drainer))
        uv_close((uv_handle_t *)&s->drainer, on_server_handle_closed);
}

/* ---- requests ---- */

static const struct {
    enum http_method parser;
    enum cd_http_method ours;
} method_map[] = {
    {HTTP_GET, CD_HTTP_GET},         {HTTP_HEAD, CD_HTTP_HEAD},     {HTTP_POST, CD_HTTP_POST},
    {HTTP_PUT, CD_HTTP_PUT},         {HTTP_DELETE, CD_HTTP_DELETE}, {HTTP_PATCH, CD_HTTP_PATCH},
    {HTTP_OPTIONS, CD_HTTP_OPTIONS},
};

enum cd_http_method cd_http_req_method(const cd_http_req *r)
{
    for (size_t i = 0; i < sizeof method_map / sizeof method_map[0]; i++)
        if (method_map[i].parser == r->c->parser.method)
            return method_map[i].ours;
    return CD_HTTP_OTHER;
}

const char *cd_http_req_method_name(const cd_http_req *r)
{
    return http_method_str((enum http_method)r->c->parser.method);
}

const char *cd_http_req_path(const cd_http_req *r, size_t *len)
{
    const conn *c = r->c;
    if (c->path_len == 0) {
        *len = 1; /* "http://host" names the root */
        return "/";
    }
    *len = c->path_len;
    return c->hbuf + c->path_off;
}

const char *cd_http_req_query(const cd_http_req *r, size_t *len)
{
    const conn *c = r->c;
    if (!c->has_query)
        return NULL;
    *len = c->query_len;
    return c->hbuf + c->query_off;
}

const char *cd_http_req_header(const cd_http_req *r, const char *name, size_t *len)
{
    const conn *c = r->c;
    size_t nlen = strlen(name);
    for (unsigned i = 0; i < c->nhdrs; i++) {
        const header *h = &c->hdrs[i];
        if (h->name_len != nlen || strncasecmp(c->hbuf + h->name_off, name, nlen) != 0)
            continue;
        const char *v = c->hbuf + h->value_off;
        size_t n = h->value_len;
        while (n && (v[0] == ' ' || v[0] == '\t'))
            v++, n--;
        while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        *len = n;
        return v;
    }
    return NULL;
}

const char *cd_http_req_body(const cd_http_req *r, size_t *len)
{
    *len = r->c->blen;
    return r->c->blen ? r->c->body : "";
}

void cd_http_req_on_abort(cd_http_req *r, void (*cb)(void *ud), void *ud)
{
    r->abort_cb = cb;
    r->abort_ud = ud;
}

void cd_http_respond_with(cd_http_req *r, int status, const char *content_type,
                          const char *extra_headers, const char *body, size_t len)
{
    conn *c = r->c;
    if (c->state == C_CLOSING) {
        req_end(c);
        return;
    }
    bool close_after = !c->keep_alive || c->srv->closing;
    c->state = close_after ? C_CLOSING : C_READING;
    send_response(c, status, content_type, extra_headers, body, len, close_after);
    c->head = false;
    req_end(c);
    if (c->state == C_READING) {
        timer_arm(c, c->srv->lim.idle_timeout_ms);
        if (!c->processing && c->in_len)
            drain_later(c);
    }
}

void cd_http_respond(cd_http_req *r, int status, const char *body, size_t len)
{
    cd_http_respond_with(r, status, "application/json; charset=utf-8", NULL, body, len);
}

void cd_http_req_drop(cd_http_req *r)
{
    conn *c = r->c;
    if (c->state != C_CLOSING)
        conn_close(c);
    req_end(c);
}
