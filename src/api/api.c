/* The Candado HTTP API.
 *
 * Each request becomes a `call`: the route's handler validates the input once, here at
 * the edge, starts one lock-layer or store operation and renders its answer in the
 * callback, which may come before the operation returns (memory store) or later (a
 * networked store, a waiter). Messages and keys follow the original LocksService so
 * that code written against it keeps working; see shared API.md. */
#include "api/api.h"

#include "util/hex.h"
#include "util/iso.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MSG_LOCKED   "Recurso bloqueado por otro proceso. Expira en %llums"
#define MSG_NOT_HELD "El lock no existe o el token no corresponde"
#define MSG_RELEASED "Liberados %zu locks del cliente %.*s"
#define ECHO_MAX     64

enum op {
    OP_ACQUIRE,
    OP_RELEASE,
    OP_EXTEND,
    OP_INFO,
    OP_LIST,
    OP_STATS,
    OP_CLIENT,
    OP_OTHER,
    OP_N
};
enum outcome { OUT_OK, OUT_REFUSED, OUT_INVALID, OUT_ERROR, OUT_N };

static const char *const op_names[OP_N] = {"acquire", "release", "extend",         "info",
                                           "list",    "stats",   "release_client", "other"};
static const char *const outcome_names[OUT_N] = {"ok", "refused", "invalid", "error"};

/* request latency histogram bounds, seconds */
static const double latency_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                        0.05,   0.1,     0.5,    1,     5,      30,    300};
#define NBOUNDS (sizeof latency_bounds / sizeof latency_bounds[0])

struct cd_api {
    cd_locks *locks;
    cd_store *store;
    cd_api_config cfg;
    char *admin_token;
    uint64_t started_ms;
    uint64_t ops[OP_N][OUT_N];
    uint64_t store_errors;
    uint64_t latency_buckets[NBOUNDS + 1];
    double latency_sum;
    uint64_t latency_count;
};

typedef struct call {
    cd_api *api;
    cd_http_req *req;
    enum op op;
    uint64_t started_ns;
    json_t *body; /* the parsed request body; names point into it */
    char *param;  /* decoded path parameter */
    size_t param_len;
    cd_waiter *waiter;         /* while queued for a lock */
    bool gone;                 /* the client hung up while a store operation was under way */
    bool refused;              /* answered 200 with acquired/released/extended false */
    const char *extra_headers; /* "Name: value\r\n" lines for the answer, or NULL */
} call;

typedef void (*handler_fn)(call *c);

/* ---- time ---- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- answering ---- */

static void observe(cd_api *api, enum op op, int status, bool refused, uint64_t started_ns)
{
    enum outcome o = status == 200  ? (refused ? OUT_REFUSED : OUT_OK)
                     : status < 500 ? OUT_INVALID
                                    : OUT_ERROR;
    api->ops[op][o]++;
    double secs = (double)(now_ns() - started_ns) / 1e9;
    size_t i = 0;
    while (i < NBOUNDS && secs > latency_bounds[i])
        i++;
    api->latency_buckets[i]++;
    api->latency_sum += secs;
    api->latency_count++;
}

static void call_free(call *c)
{
    json_decref(c->body);
    free(c->param);
    free(c);
}

/* Sends `json` (stolen) with `status` and ends the call. */
#define JSON_TYPE    "application/json; charset=utf-8"
#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Sends a rendered body and ends the call. */
static void reply_typed(call *c, int status, const char *type, const char *body, size_t len)
{
    observe(c->api, c->op, status, c->refused, c->started_ns);
    cd_http_respond_with(c->req, status, type, c->extra_headers, body, len);
    call_free(c);
}

static void reply_text(call *c, int status, const char *body, size_t len)
{
    reply_typed(c, status, JSON_TYPE, body, len);
}

/* Sends `json` (stolen) with `status` and ends the call. */
static void reply(call *c, int status, json_t *json)
{
    static const char oom[] =
        "{\"statusCode\":500,\"message\":\"Out of memory\",\"error\":\"Internal Server Error\"}";
    char stack[4096];
    size_t len = json ? json_dumpb(json, stack, sizeof stack, JSON_COMPACT) : 0;
    char *heap = len > sizeof stack ? malloc(len) : NULL;
    if (heap)
        len = json_dumpb(json, heap, len, JSON_COMPACT);
    json_decref(json);
    if (len == 0 || (len > sizeof stack && !heap))
        reply_text(c, 500, oom, sizeof oom - 1);
    else
        reply_text(c, status, heap ? heap : stack, len);
    free(heap);
}

/* Answers whose every value is a number, a boolean or text of our own (tokens, times,
 * fixed messages) need no escaping: they are printed straight into the answer, which
 * is several times cheaper than building and dumping a JSON tree on the hot path. */
static void reply_fixed(call *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void reply_fixed(call *c, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    assert(n > 0 && (size_t)n < sizeof buf);
    reply_text(c, 200, buf, (size_t)n);
}

static json_t *error_json(int status, const char *message)
{
    return json_pack("{s:i, s:s, s:s}", "statusCode", status, "message", message, "error",
                     cd_http_status_text(status));
}

static void reply_error(call *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reply_error(call *c, int status, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reply(c, status, error_json(status, msg));
}

/* An operation failed in the store or for want of memory. */
static void reply_failure(call *c, int err)
{
    if (err == -EINVAL) {
        reply_error(c, 400, "The lock store refused the request as invalid");
    } else if (err == -ENOMEM) {
        reply_error(c, 500, "Out of memory");
    } else {
        c->api->store_errors++;
        reply_error(c, 503, "Lock store unavailable");
    }
}

/* Copies at most ECHO_MAX bytes of client input into out, escaping what is not
 * printable ASCII, so a message can never carry invalid UTF-8 or much of the input. */
static void echo(char *out, size_t cap, const char *in, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && i < ECHO_MAX && o + 4 < cap; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (ch >= 0x20 && ch < 0x7f)
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, cap - o, "%%%02X", ch);
    }
    out[o] = '\0';
}

/* ---- input ---- */

static const char *name_problem(enum cd_name_error e)
{
    switch (e) {
    case CD_NAME_EMPTY:
        return "must not be empty";
    case CD_NAME_TOO_LONG:
        return "is too long";
    case CD_NAME_CONTROL:
        return "must not contain control characters";
    case CD_NAME_UTF8:
        return "must be valid UTF-8";
    case CD_NAME_OK:
        break;
    }
    return "is not valid";
}

/* Checks a name against the rules; false after answering 400. */
static bool check_name(call *c, const char *key, cd_str name, size_t max)
{
    enum cd_name_error e = cd_name_check(name, max);
    if (e == CD_NAME_TOO_LONG)
        reply_error(c, 400, "%s must be between 1 and %zu bytes", key, max);
    else if (e != CD_NAME_OK)
        reply_error(c, 400, "%s %s", key, name_problem(e));
    return e == CD_NAME_OK;
}

/* A name field of the body. false after answering 400. */
static bool body_name(call *c, const char *key, size_t max, cd_str *out)
{
    json_t *v = json_object_get(c->body, key);
    if (!json_is_string(v)) {
        reply_error(c, 400, "%s must be a string", key);
        return false;
    }
    *out = (cd_str){json_string_value(v), json_string_length(v)};
    return check_name(c, key, *out, max);
}

/* An optional integer field; absent or null gives `dflt`. false after answering 400. */
static bool body_int(call *c, const char *key, uint32_t min, uint32_t max, uint32_t dflt,
                     uint32_t *out)
{
    json_t *v = json_object_get(c->body, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return true;
    }
    /* numbers arrive as doubles (JSON_DECODE_INT_AS_REAL); like JavaScript, 30000.0 is
     * the integer 30000, while 1.5, "30000" and true are not integers. The range is
     * checked before the conversion, which is undefined for doubles out of range. */
    double d = json_is_number(v) ? json_number_value(v) : -1.0;
    if (!json_is_number(v) || !(d >= min && d <= max) || d != (double)(uint32_t)d) {
        reply_error(c, 400, "%s must be an integer between %u and %u", key, min, max);
        return false;
    }
    *out = (uint32_t)d;
    return true;
}

/* Reads the JSON body. false after answering. */
static bool parse_body(call *c)
{
    size_t ctlen;
    const char *ct = cd_http_req_header(c->req, "Content-Type", &ctlen);
    if (ct) {
        size_t n = 0;
        while (n < ctlen && ct[n] != ';' && ct[n] != ' ' && ct[n] != '\t')
            n++;
        if (n != 16 || strncasecmp(ct, "application/json", 16) != 0) {
            reply_error(c, 415, "Content-Type must be application/json");
            return false;
        }
    }
    size_t len;
    const char *body = cd_http_req_body(c->req, &len);
    if (len == 0) {
        c->body = json_object(); /* like Express: no body is an empty object */
        return true;
    }
    json_error_t jerr;
    /* numbers as doubles, as JavaScript reads them: 1e30 is a number out of range, not
     * a syntax error */
    c->body = json_loadb(body, len, JSON_DECODE_INT_AS_REAL, &jerr);
    if (!c->body) {
        reply_error(c, 400, "Body is not valid JSON (line %d, column %d)", jerr.line, jerr.column);
        return false;
    }
    if (!json_is_object(c->body)) {
        reply_error(c, 400, "Body must be a JSON object");
        return false;
    }
    return true;
}

/* Percent-decodes raw into a new buffer; NULL on bad escapes or no memory. */
static char *percent_decode(const char *raw, size_t len, size_t *out_len)
{
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (raw[i] != '%') {
            out[o++] = raw[i];
            continue;
        }
        int v = len - i >= 3 ? cd_hex_byte(raw + i + 1) : -1;
        if (v < 0) {
            free(out);
            return NULL;
        }
        out[o++] = (char)v;
        i += 2;
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

/* The path parameter (rest of the path, percent-decoded) checked as a name. */
static bool path_name(call *c, const char *raw, size_t len, const char *key, size_t max)
{
    c->param = percent_decode(raw, len, &c->param_len);
    if (!c->param) {
        reply_error(c, 400, "%s is not valid percent-encoding", key);
        return false;
    }
    return check_name(c, key, (cd_str){c->param, c->param_len}, max);
}

/* ---- POST /api/locks/acquire ---- */

static void release_ignored(void *ud, int err, bool ok)
{
    (void)ud, (void)err, (void)ok;
}

static void acquire_cb(void *ud, int err, const cd_grant *g)
{
    call *c = ud;
    c->waiter = NULL;
    if (err) {
        reply_failure(c, err);
        return;
    }
    if (c->gone && g->acquired) {
        /* granted to a client that has hung up: nobody would ever release it */
        json_t *res = json_object_get(c->body, "resource");
        cd_locks_release(c->api->locks, (cd_str){json_string_value(res), json_string_length(res)},
                         &g->token, release_ignored, NULL);
    }
    if (!g->acquired) {
        c->refused = true;
        reply_fixed(c,
                    "{\"acquired\":false,\"error\":\"" MSG_LOCKED "\",\"code\":\"LOCKED\","
                    "\"expiresIn\":%llu}",
                    (unsigned long long)g->remaining, (unsigned long long)g->remaining);
        return;
    }
    char token[CD_TOKEN_MAX_LEN], expires[CD_ISO_LEN];
    cd_token_format(&g->token, token);
    cd_iso_format(g->expires_at, expires);
    reply_fixed(c,
                "{\"acquired\":true,\"token\":\"%s\",\"expiresIn\":%u,\"expiresAt\":\"%s\","
                "\"fencingToken\":%llu}",
                token, g->ttl, expires, (unsigned long long)g->fencing);
}

static void on_abort(void *ud)
{
    call *c = ud;
    if (c->waiter) {
        cd_locks_cancel(c->api->locks, c->waiter);
        cd_http_req_drop(c->req);
        call_free(c);
    } else {
        c->gone = true; /* the operation under way still answers, to nobody */
    }
}

static void h_acquire(call *c)
{
    const cd_api_config *cfg = &c->api->cfg;
    cd_str res, client;
    uint32_t ttl, wait;
    if (!parse_body(c) || !body_name(c, "resource", CD_RESOURCE_MAX, &res) ||
        !body_name(c, "clientId", CD_CLIENT_ID_MAX, &client) ||
        !body_int(c, "ttl", 1, cfg->max_ttl, cfg->default_ttl, &ttl) ||
        !body_int(c, "wait", 0, cfg->max_wait, 0, &wait))
        return;
    cd_http_req_on_abort(c->req, on_abort, c);
    int err = cd_locks_acquire(c->api->locks, res, client, ttl, wait, acquire_cb, c, &c->waiter);
    if (err)
        reply_failure(c, err);
}

/* ---- POST /api/locks/release and /extend ---- */

/* Resource and token of a release or extend; *valid is false for a token that cannot be
 * anyone's (answered as not held, like any wrong token). false after answering 400. */
static bool body_token(call *c, cd_str *res, cd_token *token, bool *valid)
{
    if (!parse_body(c) || !body_name(c, "resource", CD_RESOURCE_MAX, res))
        return false;
    json_t *t = json_object_get(c->body, "token");
    if (!json_is_string(t)) {
        reply_error(c, 400, "token must be a string");
        return false;
    }
    *valid = cd_token_parse(token, json_string_value(t), json_string_length(t));
    return true;
}

static void reply_not_held(call *c, const char *flag)
{
    c->refused = true;
    reply_fixed(c, "{\"%s\":false,\"error\":\"" MSG_NOT_HELD "\",\"code\":\"NOT_HELD\"}", flag);
}

static void release_cb(void *ud, int err, bool ok)
{
    call *c = ud;
    if (err)
        reply_failure(c, err);
    else if (ok)
        reply_fixed(c, "{\"released\":true}");
    else
        reply_not_held(c, "released");
}

static void h_release(call *c)
{
    cd_str res;
    cd_token token;
    bool valid;
    if (!body_token(c, &res, &token, &valid))
        return;
    if (!valid) {
        release_cb(c, 0, false);
        return;
    }
    int err = cd_locks_release(c->api->locks, res, &token, release_cb, c);
    if (err)
        reply_failure(c, err);
}

static void extend_cb(void *ud, int err, const cd_extension *x)
{
    call *c = ud;
    char expires[CD_ISO_LEN];
    if (err) {
        reply_failure(c, err);
    } else if (x->extended) {
        cd_iso_format(x->expires_at, expires);
        reply_fixed(c, "{\"extended\":true,\"expiresIn\":%u,\"expiresAt\":\"%s\"}", x->ttl,
                    expires);
    } else {
        reply_not_held(c, "extended");
    }
}

static void h_extend(call *c)
{
    cd_str res;
    cd_token token;
    bool valid;
    uint32_t ttl;
    if (!body_token(c, &res, &token, &valid) ||
        !body_int(c, "ttl", 1, c->api->cfg.max_ttl, 0 /* the grant's TTL */, &ttl))
        return;
    if (!valid) {
        cd_extension none = {.extended = false};
        extend_cb(c, 0, &none);
        return;
    }
    int err = cd_locks_extend(c->api->locks, res, &token, ttl, extend_cb, c);
    if (err)
        reply_failure(c, err);
}

/* ---- GET /api/locks/info/:resource ---- */

/* Lock views are streamed into a memory FILE rather than built as a JSON tree: a page of
 * a million locks would otherwise be a million jansson objects before a byte is sent.
 * Client text (resource, clientId) is still escaped by jansson, one string at a time. */
static void put_json_string(FILE *f, cd_str s)
{
    char stack[1024];
    json_t *j = json_stringn_nocheck(s.ptr, s.len); /* names were checked as UTF-8 */
    size_t n = j ? json_dumpb(j, stack, sizeof stack, JSON_ENCODE_ANY) : 0;
    if (n > sizeof stack) {
        char *heap = malloc(n);
        if (heap && json_dumpb(j, heap, n, JSON_ENCODE_ANY) == n)
            fwrite(heap, 1, n, f);
        free(heap);
    } else {
        fwrite(stack, 1, n, f);
    }
    json_decref(j);
}

static void put_lock(FILE *f, const cd_lock_view *v)
{
    char acquired[CD_ISO_LEN], expires[CD_ISO_LEN];
    cd_iso_format(v->acquired_at, acquired);
    cd_iso_format(v->expires_at, expires);
    fputs("\"resource\":", f);
    put_json_string(f, v->resource);
    fputs(",\"clientId\":", f);
    put_json_string(f, v->client_id);
    fprintf(f,
            ",\"acquiredAt\":\"%s\",\"expiresAt\":\"%s\",\"timeRemaining\":%llu,"
            "\"fencingToken\":%llu",
            acquired, expires, (unsigned long long)v->remaining, (unsigned long long)v->fencing);
}

/* An answer written piece by piece into memory (open_memstream). */
typedef struct stream {
    FILE *f;
    char *text;
    size_t len;
} stream;

/* false after answering 500 */
static bool stream_open(call *c, stream *out)
{
    *out = (stream){0};
    out->f = open_memstream(&out->text, &out->len);
    if (!out->f)
        reply_failure(c, -ENOMEM);
    return out->f != NULL;
}

/* Ends the call with what was streamed. */
static void reply_stream(call *c, stream *out, const char *type)
{
    if (fclose(out->f) != 0 || !out->text) /* fclose() sets text and len */
        reply_failure(c, -ENOMEM);
    else
        reply_typed(c, 200, type, out->text, out->len);
    free(out->text);
}

static void info_cb(void *ud, int err, const cd_lock_view *held)
{
    call *c = ud;
    if (err) {
        reply_failure(c, err);
        return;
    }
    cd_str res = {c->param, c->param_len};
    stream out;
    if (!stream_open(c, &out))
        return;
    FILE *f = out.f;
    if (held) {
        fputs("{\"exists\":true,", f);
        put_lock(f, held);
        fprintf(f, ",\"waiting\":%zu}", cd_locks_waiting(c->api->locks, res));
    } else {
        fputs("{\"exists\":false,\"resource\":", f);
        put_json_string(f, res);
        fputc('}', f);
    }
    reply_stream(c, &out, JSON_TYPE);
}

static void h_info(call *c, const char *raw, size_t len)
{
    if (!path_name(c, raw, len, "resource", CD_RESOURCE_MAX))
        return;
    int err = c->api->store->ops->info(c->api->store, (cd_str){c->param, c->param_len}, info_cb, c);
    if (err)
        reply_failure(c, err);
}

/* ---- GET /api/locks ---- */

static void list_cb(void *ud, int err, const cd_list_page *page)
{
    call *c = ud;
    if (err == -EINVAL) { /* the cursor is the only part of a list the store judges */
        reply_error(c, 400, "cursor is not valid");
        return;
    }
    if (err) {
        reply_failure(c, err);
        return;
    }
    stream out;
    if (!stream_open(c, &out))
        return;
    FILE *f = out.f;
    fprintf(f, "{\"count\":%zu,\"locks\":[", page->count);
    for (size_t i = 0; i < page->count; i++) {
        fputs(i ? ",{" : "{", f);
        put_lock(f, &page->locks[i]);
        fputc('}', f);
    }
    fputc(']', f);
    if (page->next_cursor.len) {
        fputs(",\"nextCursor\":", f);
        put_json_string(f, page->next_cursor);
    }
    fputc('}', f);
    reply_stream(c, &out, JSON_TYPE);
}

/* One query parameter the list understands, and its decoded value (owned). */
typedef struct qparam {
    const char *key;
    char *value;
    size_t len;
} qparam;

/* A query-string value: '+' is a space (as forms and Express's parser have it), then
 * percent-decoding. */
static char *query_decode(const char *raw, size_t len, size_t *out_len)
{
    char *plus = malloc(len + 1);
    if (!plus)
        return NULL;
    for (size_t i = 0; i < len; i++)
        plus[i] = raw[i] == '+' ? ' ' : raw[i];
    char *v = percent_decode(plus, len, out_len);
    free(plus);
    return v;
}

/* A name given as a query filter follows the rules of names (empty: no filter). false
 * after answering 400. */
static bool query_name(call *c, const char *key, const qparam *p, size_t max)
{
    if (!p->value || p->len == 0)
        return true;
    return check_name(c, key, (cd_str){p->value, p->len}, max);
}

static void h_list(call *c)
{
    qparam params[] = {
        {"prefix", NULL, 0}, {"clientId", NULL, 0}, {"limit", NULL, 0}, {"cursor", NULL, 0}};
    enum { NP = sizeof params / sizeof params[0] };
    size_t qlen = 0;
    const char *q = cd_http_req_query(c->req, &qlen);
    const char *end = q ? q + qlen : NULL;
    bool bad = false;
    while (q && q < end && !bad) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(stop - q));
        const char *kend = eq ? eq : stop;
        for (size_t i = 0; i < NP; i++) {
            if (strlen(params[i].key) != (size_t)(kend - q) ||
                memcmp(params[i].key, q, (size_t)(kend - q)) != 0)
                continue;
            free(params[i].value);
            params[i].value =
                eq ? query_decode(eq + 1, (size_t)(stop - eq - 1), &params[i].len) : strdup("");
            if (!params[i].value)
                bad = true;
            else if (!eq)
                params[i].len = 0;
        }
        q = amp ? amp + 1 : end;
    }
    cd_list_query lq = {0};
    long long limit = 0;
    char *stop = NULL;
    if (bad) {
        reply_error(c, 400, "query is not valid percent-encoding");
    } else if (params[2].value &&
               (params[2].len == 0 || (limit = strtoll(params[2].value, &stop, 10)) < 1 ||
                limit > 100000 || *stop != '\0' || params[2].value[0] == '+' ||
                params[2].value[0] == ' ')) {
        reply_error(c, 400, "limit must be an integer between 1 and 100000");
    } else if (!query_name(c, "prefix", &params[0], CD_RESOURCE_MAX) ||
               !query_name(c, "clientId", &params[1], CD_CLIENT_ID_MAX)) {
        /* answered */
    } else {
        if (params[0].value)
            lq.prefix = (cd_str){params[0].value, params[0].len};
        if (params[1].value)
            lq.client_id = (cd_str){params[1].value, params[1].len};
        if (params[3].value)
            lq.cursor = (cd_str){params[3].value, params[3].len};
        lq.limit = (size_t)limit;
        /* the store copies nothing it keeps; the values live until this returns, and the
         * memory store answers before it returns */
        int err = c->api->store->ops->list(c->api->store, &lq, list_cb, c);
        if (err)
            list_cb(c, err, NULL); /* store.h: no callback came, so answer as it would */
    }
    for (size_t i = 0; i < NP; i++)
        free(params[i].value);
}

/* ---- GET /api/locks/stats ---- */

static json_t *counters_json(const cd_counters *k)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "acquired", (json_int_t)k->acquired,
                     "contended", (json_int_t)k->contended, "released", (json_int_t)k->released,
                     "expired", (json_int_t)k->expired, "extended", (json_int_t)k->extended,
                     "waitTimeouts", (json_int_t)k->wait_timeouts);
}

static void stats_cb(void *ud, int err, const cd_store_stats *st)
{
    call *c = ud;
    if (err) {
        reply_failure(c, err);
        return;
    }
    json_t *by_client = json_object();
    for (size_t i = 0; by_client && i < st->nclients; i++) {
        const cd_client_count *cc = &st->clients[i];
        json_object_setn_new(by_client, cc->client_id.ptr, cc->client_id.len,
                             json_integer((json_int_t)cc->count));
    }
    uint64_t now = cd_clock_mono(cd_clock_system());
    reply(c, 200,
          json_pack("{s:I, s:I, s:I, s:o, s:o, s:I, s:I}", "totalLocks", (json_int_t)st->total,
                    "activeLocks", (json_int_t)(st->total - st->expired), "expiredLocks",
                    (json_int_t)st->expired, "locksByClient", by_client, "counters",
                    counters_json(cd_locks_counters(c->api->locks)), "waiting",
                    (json_int_t)cd_locks_waiting_total(c->api->locks), "uptimeMs",
                    (json_int_t)(now - c->api->started_ms)));
}

static void h_stats(call *c)
{
    int err = c->api->store->ops->stats(c->api->store, stats_cb, c);
    if (err)
        reply_failure(c, err);
}

/* ---- DELETE /api/locks/client/:clientId ---- */

static bool admin_ok(call *c)
{
    const char *want = c->api->admin_token;
    if (!want)
        return true;
    size_t len;
    const char *auth = cd_http_req_header(c->req, "Authorization", &len);
    size_t wlen = strlen(want);
    if (!auth || len != 7 + wlen || strncasecmp(auth, "Bearer ", 7) != 0)
        return false;
    volatile unsigned char diff = 0;
    for (size_t i = 0; i < wlen; i++)
        diff |= (unsigned char)(auth[7 + i] ^ want[i]);
    return diff == 0;
}

static void client_cb(void *ud, int err, size_t count)
{
    call *c = ud;
    if (err) {
        reply_failure(c, err);
        return;
    }
    char msg[64 + CD_CLIENT_ID_MAX];
    snprintf(msg, sizeof msg, MSG_RELEASED, count, (int)c->param_len, c->param);
    reply(c, 200,
          json_pack("{s:b, s:s, s:I}", "success", 1, "message", msg, "releasedCount",
                    (json_int_t)count));
}

static void h_release_client(call *c, const char *raw, size_t len)
{
    if (!admin_ok(c)) {
        reply_error(c, 401, "A valid admin token is required (Authorization: Bearer <token>)");
        return;
    }
    if (!path_name(c, raw, len, "clientId", CD_CLIENT_ID_MAX))
        return;
    int err = c->api->store->ops->release_client(c->api->store, (cd_str){c->param, c->param_len},
                                                 client_cb, c);
    if (err)
        reply_failure(c, err);
}

/* ---- health and metrics ---- */

static void h_healthz(call *c)
{
    reply(c, 200, json_pack("{s:s}", "status", "ok"));
}

static void ready_cb(void *ud, int err, const char *reason)
{
    call *c = ud;
    if (err)
        reply_error(c, 503, "%s", reason ? reason : "Lock store unavailable");
    else
        reply(c, 200,
              json_pack("{s:s, s:s}", "status", "ready", "store", c->api->store->ops->name));
}

static void h_readyz(call *c)
{
    int err = c->api->store->ops->ready(c->api->store, ready_cb, c);
    if (err)
        reply_failure(c, err);
}

static void metrics_cb(void *ud, int err, const cd_store_stats *st)
{
    call *c = ud;
    cd_api *api = c->api;
    if (err) {
        reply_failure(c, err);
        return;
    }
    const cd_counters *k = cd_locks_counters(api->locks);
    stream out;
    if (!stream_open(c, &out))
        return;
    FILE *f = out.f;
    fprintf(f,
            "# HELP candado_locks_active Locks held right now.\n"
            "# TYPE candado_locks_active gauge\ncandado_locks_active %zu\n"
            "# HELP candado_waiters Requests waiting for a lock on this server.\n"
            "# TYPE candado_waiters gauge\ncandado_waiters %zu\n",
            st->total - st->expired, cd_locks_waiting_total(api->locks));
    const struct {
        const char *name;
        uint64_t value;
    } lock_events[] = {{"acquired", k->acquired}, {"contended", k->contended},
                       {"released", k->released}, {"expired", k->expired},
                       {"extended", k->extended}, {"wait_timeout", k->wait_timeouts}};
    fprintf(f, "# HELP candado_lock_events_total Lock events since start.\n"
               "# TYPE candado_lock_events_total counter\n");
    for (size_t i = 0; i < sizeof lock_events / sizeof lock_events[0]; i++)
        fprintf(f, "candado_lock_events_total{event=\"%s\"} %llu\n", lock_events[i].name,
                (unsigned long long)lock_events[i].value);
    fprintf(f, "# HELP candado_requests_total Requests by operation and outcome.\n"
               "# TYPE candado_requests_total counter\n");
    for (int o = 0; o < OP_N; o++)
        for (int r = 0; r < OUT_N; r++)
            fprintf(f, "candado_requests_total{op=\"%s\",outcome=\"%s\"} %llu\n", op_names[o],
                    outcome_names[r], (unsigned long long)api->ops[o][r]);
    fprintf(f, "# HELP candado_request_duration_seconds Time from request to answer.\n"
               "# TYPE candado_request_duration_seconds histogram\n");
    uint64_t cumulative = 0;
    for (size_t i = 0; i < NBOUNDS; i++) {
        cumulative += api->latency_buckets[i];
        fprintf(f, "candado_request_duration_seconds_bucket{le=\"%g\"} %llu\n", latency_bounds[i],
                (unsigned long long)cumulative);
    }
    fprintf(f,
            "candado_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
            "candado_request_duration_seconds_sum %.6f\n"
            "candado_request_duration_seconds_count %llu\n"
            "# HELP candado_store_errors_total Store operations that failed.\n"
            "# TYPE candado_store_errors_total counter\ncandado_store_errors_total %llu\n",
            (unsigned long long)api->latency_count, api->latency_sum,
            (unsigned long long)api->latency_count, (unsigned long long)api->store_errors);
    reply_stream(c, &out, METRICS_TYPE);
}

static void h_metrics(call *c)
{
    int err = c->api->store->ops->stats(c->api->store, metrics_cb, c);
    if (err)
        reply_failure(c, err);
}

/* ---- routing ---- */

typedef struct route {
    const char *path; /* exact, or a prefix followed by a parameter */
    bool param;
    enum cd_http_method method;
    enum op op;
    handler_fn plain;
    void (*with_param)(call *c, const char *raw, size_t len);
} route;

static const route routes[] = {
    {"/api/locks/acquire", false, CD_HTTP_POST, OP_ACQUIRE, h_acquire, NULL},
    {"/api/locks/release", false, CD_HTTP_POST, OP_RELEASE, h_release, NULL},
    {"/api/locks/extend", false, CD_HTTP_POST, OP_EXTEND, h_extend, NULL},
    {"/api/locks/stats", false, CD_HTTP_GET, OP_STATS, h_stats, NULL},
    {"/api/locks/info/", true, CD_HTTP_GET, OP_INFO, NULL, h_info},
    {"/api/locks/client/", true, CD_HTTP_DELETE, OP_CLIENT, NULL, h_release_client},
    {"/api/locks", false, CD_HTTP_GET, OP_LIST, h_list, NULL},
    {"/healthz", false, CD_HTTP_GET, OP_OTHER, h_healthz, NULL},
    {"/readyz", false, CD_HTTP_GET, OP_OTHER, h_readyz, NULL},
    {"/metrics", false, CD_HTTP_GET, OP_OTHER, h_metrics, NULL},
};

static bool route_matches(const route *r, const char *path, size_t len)
{
    size_t plen = strlen(r->path);
    if (r->param)
        return len > plen && memcmp(path, r->path, plen) == 0;
    return len == plen && memcmp(path, r->path, plen) == 0;
}

void cd_api_handle(cd_http_req *req, void *ud)
{
    cd_api *api = ud;
    call *c = calloc(1, sizeof *c);
    if (!c) {
        static const char oom[] = "{\"statusCode\":500,\"message\":\"Out of "
                                  "memory\",\"error\":\"Internal Server Error\"}";
        cd_http_respond(req, 500, oom, sizeof oom - 1);
        return;
    }
    c->api = api;
    c->req = req;
    c->op = OP_OTHER;
    c->started_ns = now_ns();

    size_t len;
    const char *path = cd_http_req_path(req, &len);
    if (len > 1 && path[len - 1] == '/')
        len--; /* like Express: /api/locks/ is /api/locks */
    enum cd_http_method m = cd_http_req_method(req);
    if (m == CD_HTTP_HEAD)
        m = CD_HTTP_GET;
    const route *other_method = NULL;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const route *r = &routes[i];
        if (!route_matches(r, path, len))
            continue;
        if (r->method != m) {
            other_method = r;
            continue;
        }
        c->op = r->op;
        if (r->param) {
            size_t plen = strlen(r->path);
            r->with_param(c, path + plen, len - plen);
        } else {
            r->plain(c);
        }
        return;
    }
    char shown[4 * ECHO_MAX + 1];
    size_t raw_len;
    const char *raw = cd_http_req_path(req, &raw_len);
    echo(shown, sizeof shown, raw, raw_len);
    if (other_method) {
        static const char *const allow[] = {
            [CD_HTTP_GET] = "Allow: GET, HEAD\r\n",
            [CD_HTTP_POST] = "Allow: POST\r\n",
            [CD_HTTP_DELETE] = "Allow: DELETE\r\n",
        };
        c->extra_headers = allow[other_method->method];
        reply_error(c, 405, "Cannot %s %s", cd_http_req_method_name(req), shown);
    } else {
        reply_error(c, 404, "Cannot %s %s", cd_http_req_method_name(req), shown);
    }
}

/* ---- lifetime ---- */

cd_api *cd_api_new(cd_locks *locks, const cd_api_config *cfg)
{
    cd_api *api = calloc(1, sizeof *api);
    if (!api)
        return NULL;
    api->locks = locks;
    api->store = cd_locks_store(locks);
    api->cfg = *cfg;
    if (cfg->admin_token && !(api->admin_token = strdup(cfg->admin_token))) {
        free(api);
        return NULL;
    }
    api->cfg.admin_token = api->admin_token;
    api->started_ms = cd_clock_mono(cd_clock_system());
    return api;
}

void cd_api_free(cd_api *api)
{
    if (!api)
        return;
    free(api->admin_token);
    free(api);
}
