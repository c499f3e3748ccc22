/* libcandado's transport: one libcurl easy handle per cd_client, reused so that calls share a
 * kept-alive connection. Every endpoint call is "build URL and body (proto.c), request(), parse
 * (proto.c)"; request() is the one place where HTTP statuses and libcurl failures become the
 * library's error codes. */
#define _GNU_SOURCE
#include "candado/client.h"
#include "proto.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS 10000L
#define MAX_CONNECT_MS     5000L
#define MAX_BODY           (64u << 20) /* a list of every lock can be big; this is not */

struct cd_client {
    CURL *curl;
    char *base;      /* base URL without trailing '/' */
    long timeout_ms; /* per request; an acquire's wait comes on top */
    long status;     /* of the last response, 0 when none */
    char *body;      /* last response body, NUL-terminated; never NULL after _new */
    size_t body_len, body_cap;
    char error[CURL_ERROR_SIZE + 64];
    char curl_error[CURL_ERROR_SIZE];
};

/* ---- errors ------------------------------------------------------------------------------ */

static const char *const error_names[] = {
    [0] = "ok",
    [-CD_CLIENT_EINVAL] = "invalid argument",
    [-CD_CLIENT_ENOMEM] = "out of memory",
    [-CD_CLIENT_EUNREACHABLE] = "server unreachable",
    [-CD_CLIENT_EBADREQ] = "bad request",
    [-CD_CLIENT_EAUTH] = "not authorized",
    [-CD_CLIENT_ENOTFOUND] = "endpoint not found",
    [-CD_CLIENT_ESERVER] = "server error",
    [-CD_CLIENT_EPROTO] = "unexpected response",
    [-CD_CLIENT_ELOCKED] = "lock held by another client",
};

const char *cd_client_strerror(int err)
{
    size_t i = (size_t) - (long)err;
    if (err > 0 || i >= sizeof error_names / sizeof error_names[0] || !error_names[i])
        return "unknown error";
    return error_names[i];
}

/* HTTP statuses other than 200, by range: the first row that contains the status wins. */
static const struct {
    long lo, hi;
    int err;
} status_errors[] = {
    {401, 401, CD_CLIENT_EAUTH},   {403, 403, CD_CLIENT_EAUTH},   {404, 405, CD_CLIENT_ENOTFOUND},
    {400, 499, CD_CLIENT_EBADREQ}, {500, 599, CD_CLIENT_ESERVER}, {0, 999, CD_CLIENT_EPROTO},
};

static int status_error(long status)
{
    for (size_t i = 0; i < sizeof status_errors / sizeof status_errors[0]; i++)
        if (status >= status_errors[i].lo && status <= status_errors[i].hi)
            return status_errors[i].err;
    return CD_CLIENT_EPROTO;
}

/* libcurl failures that are not "the server is not there". */
static const struct {
    CURLcode code;
    int err;
} curl_errors[] = {
    {CURLE_OUT_OF_MEMORY, CD_CLIENT_ENOMEM},        {CURLE_URL_MALFORMAT, CD_CLIENT_EINVAL},
    {CURLE_UNSUPPORTED_PROTOCOL, CD_CLIENT_EINVAL}, {CURLE_WRITE_ERROR, CD_CLIENT_EPROTO},
    {CURLE_BAD_CONTENT_ENCODING, CD_CLIENT_EPROTO},
};

static int curl_error(CURLcode code)
{
    for (size_t i = 0; i < sizeof curl_errors / sizeof curl_errors[0]; i++)
        if (curl_errors[i].code == code)
            return curl_errors[i].err;
    /* Refused, unresolvable, timed out, reset, empty reply, TLS...: all mean no usable answer. */
    return CD_CLIENT_EUNREACHABLE;
}

static int fail(cd_client *c, int err, const char *msg)
{
    snprintf(c->error, sizeof c->error, "%s", msg);
    return err;
}

/* ---- lifetime ---------------------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    cd_client *c = ud;
    size_t n = size * nmemb;
    if (c->body_len + n + 1 > c->body_cap) {
        if (c->body_len + n + 1 > MAX_BODY)
            return 0; /* libcurl turns this into CURLE_WRITE_ERROR */
        size_t cap = c->body_cap * 2;
        while (cap < c->body_len + n + 1)
            cap *= 2;
        char *grown = realloc(c->body, cap);
        if (!grown)
            return 0;
        c->body = grown;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, data, n);
    c->body_len += n;
    c->body[c->body_len] = '\0';
    return n;
}

/* Close-on-exec sockets: a child that `candado run` forks must not keep our connection open. */
static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)ud;
    (void)purpose;
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

cd_client *cd_client_new(const char *base_url)
{
    if (!base_url || !*base_url)
        return NULL;
    /* Thread-safe since libcurl 7.84; later calls only bump a counter. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NULL;
    cd_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->timeout_ms = DEFAULT_TIMEOUT_MS;
    c->body_cap = 1024;
    c->body = calloc(1, c->body_cap);
    c->base = strdup(base_url);
    c->curl = curl_easy_init();
    if (!c->body || !c->base || !c->curl)
        goto fail;
    size_t n = strlen(c->base);
    while (n > 0 && c->base[n - 1] == '/')
        c->base[--n] = '\0';

    CURL *h = c->curl;
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->curl_error);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "libcandado");
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    /* The API is plain HTTP/1.1 on known paths; a redirect would be somebody else's server. */
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    return c;
fail:
    cd_client_free(c);
    return NULL;
}

void cd_client_free(cd_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    free(c->base);
    free(c->body);
    free(c);
}

void cd_client_set_timeout(cd_client *c, long ms)
{
    c->timeout_ms = ms > 0 ? ms : DEFAULT_TIMEOUT_MS;
}

const char *cd_client_last_error(const cd_client *c)
{
    return c->error;
}

const char *cd_client_last_body(const cd_client *c)
{
    return c->body;
}

long cd_client_last_status(const cd_client *c)
{
    return c->status;
}

int cd_client_default_id(char *buf, size_t len)
{
    if (!buf || len < 2)
        return CD_CLIENT_EINVAL;
    char host[256];
    if (gethostname(host, sizeof host) != 0 || !host[0])
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    snprintf(buf, len, "%s-%ld", host, (long)getpid());
    return 0;
}

/* ---- the one request path ---------------------------------------------------------------- */

/* Sends one request and keeps the body. Returns 0 on a 200, else the error code with c->error
 * saying why. extra_ms extends the timeout for a request the server may hold back (wait). */
static int request(cd_client *c, const char *method, const char *url, const char *body,
                   const char *admin_token, long extra_ms)
{
    CURL *h = c->curl;
    struct curl_slist *headers = NULL, *grown;
    char *auth = NULL;
    int rc = CD_CLIENT_ENOMEM;

    c->status = 0;
    c->body_len = 0;
    c->body[0] = '\0';
    c->error[0] = '\0';
    c->curl_error[0] = '\0';

    const char *lines[] = {"Accept: application/json",
                           body ? "Content-Type: application/json" : NULL, "Expect:"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        if (!lines[i])
            continue;
        if (!(grown = curl_slist_append(headers, lines[i])))
            goto done;
        headers = grown;
    }
    if (admin_token) {
        if (asprintf(&auth, "Authorization: Bearer %s", admin_token) < 0) {
            auth = NULL;
            goto done;
        }
        if (!(grown = curl_slist_append(headers, auth)))
            goto done;
        headers = grown;
    }

    long timeout = c->timeout_ms + (extra_ms > 0 ? extra_ms : 0);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     c->timeout_ms < MAX_CONNECT_MS ? c->timeout_ms : MAX_CONNECT_MS);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, strcmp(method, "GET") ? method : NULL);
    }

    CURLcode cc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL); /* the list is freed below */
    if (cc != CURLE_OK) {
        rc = curl_error(cc);
        snprintf(c->error, sizeof c->error, "%s: %s", c->base,
                 c->curl_error[0] ? c->curl_error : curl_easy_strerror(cc));
        goto done;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->status);
    if (c->status == 200) {
        rc = 0;
        goto done;
    }
    rc = status_error(c->status);
    if (!cd_client_proto_error_message(c->body, c->error, sizeof c->error))
        snprintf(c->error, sizeof c->error, "HTTP %ld from %s", c->status, c->base);
done:
    if (rc == CD_CLIENT_ENOMEM && !c->error[0])
        fail(c, rc, "out of memory");
    curl_slist_free_all(headers);
    free(auth);
    return rc;
}

/* A response that came with 200 but does not parse: say so in the error text. */
static int parsed(cd_client *c, int rc)
{
    if (rc == CD_CLIENT_EPROTO)
        snprintf(c->error, sizeof c->error, "unexpected response from %s", c->base);
    else if (rc == CD_CLIENT_ENOMEM)
        fail(c, rc, "out of memory");
    return rc;
}

/* Builds nothing means a string jansson refused (not UTF-8) far more often than no memory. */
static int bad_body(cd_client *c)
{
    return fail(c, CD_CLIENT_EINVAL, "a name or token is not valid UTF-8");
}

static int check_args(cd_client *c, const void *a, const void *b)
{
    if (!c)
        return CD_CLIENT_EINVAL;
    if (!a || !b)
        return fail(c, CD_CLIENT_EINVAL, "missing argument");
    return 0;
}

/* ---- endpoints --------------------------------------------------------------------------- */

int cd_client_acquire(cd_client *c, const char *resource, const cd_client_acquire_opts *opts,
                      cd_client_grant *out)
{
    int rc = check_args(c, resource, out);
    if (rc < 0)
        return rc;
    char id[300];
    const char *client_id = opts && opts->client_id ? opts->client_id : NULL;
    if (!client_id) {
        cd_client_default_id(id, sizeof id);
        client_id = id;
    }
    int64_t ttl = opts && opts->ttl_ms > 0 ? opts->ttl_ms : -1;
    int64_t wait = opts && opts->wait_ms > 0 ? opts->wait_ms : -1;
    char *url = cd_client_proto_url(c->base, "/api/locks/acquire", NULL);
    char *body = cd_client_proto_acquire_body(resource, client_id, ttl, wait);
    if (!url)
        rc = fail(c, CD_CLIENT_ENOMEM, "out of memory");
    else if (!body)
        rc = bad_body(c);
    else if ((rc = request(c, "POST", url, body, NULL, wait > 0 ? (long)wait : 0)) == 0)
        rc = parsed(c, cd_client_proto_grant(c->body, out));
    free(url);
    free(body);
    return rc;
}

void cd_client_grant_clear(cd_client_grant *g)
{
    if (!g)
        return;
    free(g->token);
    free(g->expires_at);
    free(g->message);
    free(g->code);
    memset(g, 0, sizeof *g);
}

int cd_client_release(cd_client *c, const char *resource, const char *token, bool *released)
{
    int rc = check_args(c, resource, token);
    if (rc < 0)
        return rc;
    bool ok = false;
    char *url = cd_client_proto_url(c->base, "/api/locks/release", NULL);
    char *body = cd_client_proto_release_body(resource, token);
    if (!url)
        rc = fail(c, CD_CLIENT_ENOMEM, "out of memory");
    else if (!body)
        rc = bad_body(c);
    else if ((rc = request(c, "POST", url, body, NULL, 0)) == 0)
        rc = parsed(c, cd_client_proto_released(c->body, &ok));
    if (rc == 0 && released)
        *released = ok;
    free(url);
    free(body);
    return rc;
}

int cd_client_extend(cd_client *c, const char *resource, const char *token, int64_t ttl_ms,
                     cd_client_extension *out)
{
    int rc = check_args(c, resource, token);
    if (rc < 0)
        return rc;
    if (!out)
        return fail(c, CD_CLIENT_EINVAL, "missing argument");
    char *url = cd_client_proto_url(c->base, "/api/locks/extend", NULL);
    char *body = cd_client_proto_extend_body(resource, token, ttl_ms > 0 ? ttl_ms : -1);
    if (!url)
        rc = fail(c, CD_CLIENT_ENOMEM, "out of memory");
    else if (!body)
        rc = bad_body(c);
    else if ((rc = request(c, "POST", url, body, NULL, 0)) == 0)
        rc = parsed(c, cd_client_proto_extension(c->body, out));
    free(url);
    free(body);
    return rc;
}

int cd_client_info(cd_client *c, const char *resource, cd_client_lock *out)
{
    int rc = check_args(c, resource, out);
    if (rc < 0)
        return rc;
    char *url = cd_client_proto_url(c->base, "/api/locks/info/", resource);
    if (!url)
        rc = fail(c, CD_CLIENT_ENOMEM, "out of memory");
    else if ((rc = request(c, "GET", url, NULL, NULL, 0)) == 0)
        rc = parsed(c, cd_client_proto_info(c->body, out));
    free(url);
    return rc;
}

void cd_client_lock_clear(cd_client_lock *l)
{
    if (!l)
        return;
    free(l->resource);
    free(l->client_id);
    free(l->acquired_at);
    free(l->expires_at);
    memset(l, 0, sizeof *l);
}

int cd_client_list(cd_client *c, const cd_client_list_opts *opts, cd_client_lock_list *out)
{
    int rc = check_args(c, out, out);
    if (rc < 0)
        return rc;
    char *url = cd_client_proto_list_url(c->base, opts);
    if (!url)
        rc = fail(c, CD_CLIENT_ENOMEM, "out of memory");
    else if ((rc = request(c, "GET", url, NULL, NULL, 0)) == 0)
        rc = parsed(c, cd_client_proto_list(c->body, out));
    free(url);
    return rc;
}

void cd_client_lock_list_clear(cd_client_lock_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->count; i++)
        cd_client_lock_clear(&l->locks[i]);
    free(l->locks);
    free(l->next_cursor);
    memset(l, 0, sizeof *l);
}

int cd_client_stats_get(cd_client *c, cd_client_stats *out)
{
    int rc = check_args(c, out, out);
    if (rc < 0)
        return rc;
    char *url = cd_client_proto_url(c->base, "/api/locks/stats", NULL);
    if (!url)
        rc = fail(c, CD_CLIENT_ENOMEM, "out of memory");
    else if ((rc = request(c, "GET", url, NULL, NULL, 0)) == 0)
        rc = parsed(c, cd_client_proto_stats(c->body, out));
    free(url);
    return rc;
}

void cd_client_stats_clear(cd_client_stats *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nclients; i++)
        free(s->by_client[i].client_id);
    free(s->by_client);
    memset(s, 0, sizeof *s);
}

int cd_client_release_client(cd_client *c, const char *client_id, const char *admin_token,
                             int64_t *released_count)
{
    int rc = check_args(c, client_id, client_id);
    if (rc < 0)
        return rc;
    int64_t n = 0;
    char *url = cd_client_proto_url(c->base, "/api/locks/client/", client_id);
    if (!url)
        rc = fail(c, CD_CLIENT_ENOMEM, "out of memory");
    else if ((rc = request(c, "DELETE", url, NULL, admin_token, 0)) == 0)
        rc = parsed(c, cd_client_proto_released_count(c->body, &n));
    if (rc == 0 && released_count)
        *released_count = n;
    free(url);
    return rc;
}

int cd_client_health(cd_client *c)
{
    if (!c)
        return CD_CLIENT_EINVAL;
    char *url = cd_client_proto_url(c->base, "/healthz", NULL);
    int rc;
    if (!url)
        rc = fail(c, CD_CLIENT_ENOMEM, "out of memory");
    else if ((rc = request(c, "GET", url, NULL, NULL, 0)) == 0)
        rc = parsed(c, cd_client_proto_health(c->body));
    free(url);
    return rc;
}

int cd_client_with_lock(cd_client *c, const char *resource, const cd_client_acquire_opts *opts,
                        cd_client_locked_fn fn, void *ud, int *fn_ret)
{
    if (!fn)
        return c ? fail(c, CD_CLIENT_EINVAL, "missing argument") : CD_CLIENT_EINVAL;
    cd_client_grant g;
    int rc = cd_client_acquire(c, resource, opts, &g);
    if (rc < 0)
        return rc;
    if (!g.acquired) {
        snprintf(c->error, sizeof c->error, "%s", g.message ? g.message : "lock held");
        cd_client_grant_clear(&g);
        return CD_CLIENT_ELOCKED;
    }
    int ret = fn(c, resource, &g, ud);
    if (fn_ret)
        *fn_ret = ret;
    bool released = false;
    /* Whatever fn did, try to give the lock back; if this fails the TTL frees it. */
    if (cd_client_release(c, resource, g.token, &released) == 0 && !released)
        fail(c, 0, "the lock expired before it was released");
    cd_client_grant_clear(&g);
    return 0;
}
