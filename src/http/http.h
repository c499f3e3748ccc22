/* HTTP/1.1 server on libuv + http-parser: connections, limits, timeouts, keep-alive,
 * pipelining order, answering later (long-poll) and noticing clients that hang up.
 *
 * Threading: everything here runs on the loop thread given to cd_http_server_new().
 * The server knows nothing of locks or routes: it hands each complete request to one
 * handler, and the handler answers now or later with cd_http_respond(). */
#ifndef CD_HTTP_H
#define CD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct cd_http_server cd_http_server;
typedef struct cd_http_req cd_http_req;

typedef struct cd_http_limits {
    size_t max_header_bytes;     /* request line + headers; 431 beyond */
    size_t max_body_bytes;       /* 413 beyond */
    unsigned max_connections;    /* connections past this are closed on accept */
    uint64_t request_timeout_ms; /* a started request must be complete within this; 408 */
    uint64_t idle_timeout_ms;    /* a keep-alive connection with nothing to do is closed */
} cd_http_limits;

/** Defaults: 8 KiB headers, 16 KiB body, 10000 connections, 10 s request, 60 s idle. */
cd_http_limits cd_http_limits_default(void);

/** Called once per complete request. The request is the handler's until it calls
 * cd_http_respond() or cd_http_req_drop(), exactly once, now or later. */
typedef void (*cd_http_handler)(cd_http_req *req, void *ud);

/** Returns NULL on allocation failure. Nothing is listened on yet. */
cd_http_server *cd_http_server_new(uv_loop_t *loop, const cd_http_limits *limits,
                                   cd_http_handler handler, void *ud);

/** Binds and listens. Returns 0 or a negative libuv error (uv_strerror() names it). */
int cd_http_server_listen(cd_http_server *s, const char *host, int port);

/** The port actually bound (useful with port 0). */
int cd_http_server_port(const cd_http_server *s);

/** Serves a connected stream socket (a socketpair end): how the fuzzer feeds the server. */
int cd_http_server_adopt_fd(cd_http_server *s, int fd);

/** Open connections right now (not counting those already closing). */
size_t cd_http_server_connections(const cd_http_server *s);

/** Stops listening and closes every connection (pending requests are aborted).
 * The server is freed once all its handles have closed; run the loop to finish. */
void cd_http_server_close(cd_http_server *s);

/* --- the request, valid from the handler call until respond/drop --- */

enum cd_http_method {
    CD_HTTP_OTHER,
    CD_HTTP_GET,
    CD_HTTP_HEAD,
    CD_HTTP_POST,
    CD_HTTP_PUT,
    CD_HTTP_DELETE,
    CD_HTTP_PATCH,
    CD_HTTP_OPTIONS
};

enum cd_http_method cd_http_req_method(const cd_http_req *r);
/** The method as sent ("GET", "PROPFIND", ...). */
const char *cd_http_req_method_name(const cd_http_req *r);
/** Raw path (not decoded), without the query. Never NULL. */
const char *cd_http_req_path(const cd_http_req *r, size_t *len);
/** Raw query after '?', or NULL when there is none. */
const char *cd_http_req_query(const cd_http_req *r, size_t *len);
/** First header with this name (case-insensitive), or NULL. */
const char *cd_http_req_header(const cd_http_req *r, const char *name, size_t *len);
/** The body (may contain NUL bytes); never NULL, length 0 when there is none. */
const char *cd_http_req_body(const cd_http_req *r, size_t *len);

/** Called at most once, when the client hangs up before the answer. The handler must
 * still end the request (cd_http_req_drop() from inside the callback is fine). */
void cd_http_req_on_abort(cd_http_req *r, void (*cb)(void *ud), void *ud);

/** Answers with a JSON body (Content-Type: application/json; charset=utf-8). The body is
 * copied. Ends the request. */
void cd_http_respond(cd_http_req *r, int status, const char *body, size_t len);

/** Like cd_http_respond() with another content type and optional extra header lines
 * ("Name: value\r\n" each, or NULL). */
void cd_http_respond_with(cd_http_req *r, int status, const char *content_type,
                          const char *extra_headers, const char *body, size_t len);

/** Ends the request without an answer (only sensible once the client is gone). */
void cd_http_req_drop(cd_http_req *r);

/** The reason phrase of a status code ("Not Found"). */
const char *cd_http_status_text(int status);

#endif
