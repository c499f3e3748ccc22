/* libcandado: the C client of a Candado lock server (docs/API.md), built on libcurl.
 *
 * One call per endpoint. Every call blocks until the server answers or the request times out.
 *
 * Errors. Calls return 0 or a negative CD_CLIENT_E* code (cd_client_strerror() names it, and
 * cd_client_last_error() says what happened in words). An answer the server gives in a 200 body is
 * a normal result, not an error: "held by someone else" is grant.acquired == false, "not your lock"
 * is released/extended == false. Out-parameters are only written when a call returns 0.
 *
 * Ownership. Every `char *` inside a result struct is owned by that struct and freed by its
 * *_clear() function; the struct itself is the caller's (usually on the stack). Call *_clear()
 * only after a call returned 0, or on a zero-initialized struct; it leaves the struct zeroed, so a
 * second clear is harmless. `const char *` returned by a cd_client_* accessor belongs to the
 * cd_client and stays valid until the next call on that client.
 *
 * Threads. A cd_client is not thread-safe: use one per thread (each holds its own connection,
 * kept alive between calls). Different clients may be used from different threads at once.
 * cd_client_new() calls curl_global_init() the first time, which is thread-safe in libcurl >= 7.84;
 * with an older libcurl, create the first client before starting threads. The library never calls
 * curl_global_cleanup(). Sockets are opened close-on-exec, so a forked child does not inherit the
 * server connection, and no signal handlers are installed (CURLOPT_NOSIGNAL).
 */
#ifndef CANDADO_CLIENT_H
#define CANDADO_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes: every call returns 0 or one of these. */
enum cd_client_error {
    CD_CLIENT_OK = 0,
    CD_CLIENT_EINVAL = -1,       /* a bad argument was passed to the library (NULL, bad URL) */
    CD_CLIENT_ENOMEM = -2,       /* out of memory */
    CD_CLIENT_EUNREACHABLE = -3, /* no answer: refused, unresolvable, reset, or timed out */
    CD_CLIENT_EBADREQ = -4,      /* the server rejected the request as invalid (400, 413, 415) */
    CD_CLIENT_EAUTH = -5,        /* the admin token is missing or wrong (401, 403) */
    CD_CLIENT_ENOTFOUND = -6,    /* 404/405: not a Candado server, or one without this endpoint */
    CD_CLIENT_ESERVER = -7,      /* the server failed (5xx, e.g. its store is unavailable) */
    CD_CLIENT_EPROTO = -8,       /* the answer was not what the API promises (bad JSON, status) */
    CD_CLIENT_ELOCKED = -9,      /* cd_client_with_lock() only: the lock stayed held by another */
};

/** A short English name for an error code ("server unreachable"). Never NULL; static storage. */
const char *cd_client_strerror(int err);

typedef struct cd_client cd_client;

/** A client of the server at base_url ("http://127.0.0.1:3001"; a trailing '/' is ignored).
 * Connects lazily: this never touches the network. NULL when base_url is NULL/empty or memory
 * runs out. Free with cd_client_free(). */
cd_client *cd_client_new(const char *base_url);

/** Closes the connection and frees the client. NULL is allowed. */
void cd_client_free(cd_client *c);

/** Per-request timeout in ms (default 10000; connecting alone gives up after min(this, 5000)).
 * An acquire with wait > 0 is allowed wait ms on top of it. ms <= 0 restores the default. */
void cd_client_set_timeout(cd_client *c, long ms);

/** Why the last call failed, in words: the server's "message" for a 4xx/5xx, or libcurl's reason
 * for a transport failure. "" when the last call succeeded. Owned by c; valid until the next call.
 */
const char *cd_client_last_error(const cd_client *c);

/** The last response body as received (usually JSON), NUL-terminated; "" when there was none.
 * Owned by c; valid until the next call. This is what `candado --json` prints. */
const char *cd_client_last_body(const cd_client *c);

/** The HTTP status of the last response; 0 when no response came. */
long cd_client_last_status(const cd_client *c);

/** Writes "<hostname>-<pid>" (truncated to fit, NUL-terminated) into buf: the client id used
 * when none is given. Returns 0, or CD_CLIENT_EINVAL when buf is NULL or len < 2. */
int cd_client_default_id(char *buf, size_t len);

/* ---- acquire ---------------------------------------------------------------------------- */

typedef struct cd_client_acquire_opts {
    const char *client_id; /* NULL: cd_client_default_id() */
    int64_t ttl_ms;        /* lock lifetime; 0: the server's default (30000 unless configured) */
    int64_t wait_ms;       /* how long the server may queue us for the lock; 0: try once */
} cd_client_acquire_opts;

typedef struct cd_client_grant {
    bool acquired;         /* false: held by someone else (a normal result, not an error) */
    char *token;           /* owned; the proof of ownership for release/extend. NULL if !acquired */
    int64_t fencing_token; /* grows with every grant of the resource; -1 if the server sent none */
    int64_t expires_in_ms; /* granted: the TTL; refused: time left on the holder's lock (-1: ?) */
    char *expires_at;      /* owned; ISO-8601 UTC, NULL when refused or not sent */
    char *message;         /* owned; refused: the server's explanation ("error"), else NULL */
    char *code;            /* owned; refused: "LOCKED" or another code the server gives, or NULL */
} cd_client_grant;

/** POST /api/locks/acquire. opts may be NULL (defaults). Returns 0 with out->acquired telling the
 * outcome, or a negative code. With wait_ms > 0 the call may block up to wait_ms + the timeout. */
int cd_client_acquire(cd_client *c, const char *resource, const cd_client_acquire_opts *opts,
                      cd_client_grant *out);

/** Frees the strings of a grant and zeroes it. */
void cd_client_grant_clear(cd_client_grant *g);

/* ---- release / extend ------------------------------------------------------------------- */

/** POST /api/locks/release. Returns 0 with *released false when the token is not the current
 * holder's (expired, released, or never ours): nothing was changed. */
int cd_client_release(cd_client *c, const char *resource, const char *token, bool *released);

typedef struct cd_client_extension {
    bool extended;         /* false: the lock is no longer ours (a normal result, not an error) */
    int64_t expires_in_ms; /* when extended: the new remaining time */
    char expires_at[32];   /* when extended and sent: ISO-8601 UTC; else "" */
} cd_client_extension;

/** POST /api/locks/extend: sets the remaining time of our lock to ttl_ms from now (ttl_ms <= 0:
 * the TTL it was granted with). Same token, same fencing token. Needs no clear. */
int cd_client_extend(cd_client *c, const char *resource, const char *token, int64_t ttl_ms,
                     cd_client_extension *out);

/* ---- info / list ------------------------------------------------------------------------ */

typedef struct cd_client_lock {
    bool exists;               /* info: false when the resource is free; list: always true */
    char *resource;            /* owned */
    char *client_id;           /* owned; NULL when !exists */
    char *acquired_at;         /* owned; ISO-8601 UTC; NULL when !exists */
    char *expires_at;          /* owned; ISO-8601 UTC; NULL when !exists */
    int64_t time_remaining_ms; /* 0 when !exists */
    int64_t fencing_token;     /* -1 when !exists or not sent */
    int64_t waiting;           /* clients queued for it; -1 when not sent */
} cd_client_lock;

/** GET /api/locks/info/:resource (the resource is percent-encoded here). Free is a normal result:
 * out->exists == false. Never returns a token: the server does not show them. */
int cd_client_info(cd_client *c, const char *resource, cd_client_lock *out);

/** Frees the strings of a lock and zeroes it. */
void cd_client_lock_clear(cd_client_lock *l);

typedef struct cd_client_list_opts {
    const char *prefix;    /* only resources starting with this; NULL: all */
    const char *client_id; /* only locks of this client; NULL: all */
    int64_t limit;         /* at most this many; 0: no limit */
    const char *cursor;    /* a next_cursor from an earlier page; NULL: the first page */
} cd_client_list_opts;

typedef struct cd_client_lock_list {
    size_t count;          /* entries in locks */
    cd_client_lock *locks; /* owned array of count entries */
    char *next_cursor;     /* owned; set when more pages remain (only with a limit), else NULL */
} cd_client_lock_list;

/** GET /api/locks: the unexpired locks, filtered. opts may be NULL. */
int cd_client_list(cd_client *c, const cd_client_list_opts *opts, cd_client_lock_list *out);

/** Frees a list (its locks and strings) and zeroes it. */
void cd_client_lock_list_clear(cd_client_lock_list *l);

/* ---- stats / admin / health ------------------------------------------------------------- */

typedef struct cd_client_client_count {
    char *client_id; /* owned */
    int64_t count;
} cd_client_client_count;

/* Counters the original service did not have are -1 when the server does not send them. */
typedef struct cd_client_stats {
    int64_t total_locks, active_locks, expired_locks;
    int64_t waiting, uptime_ms;
    int64_t acquired, contended, released, expired, extended, wait_timeouts; /* since start */
    size_t nclients;                   /* entries in by_client */
    cd_client_client_count *by_client; /* owned; active locks per client */
} cd_client_stats;

/** GET /api/locks/stats. */
int cd_client_stats_get(cd_client *c, cd_client_stats *out);

/** Frees the per-client array of stats and zeroes it. */
void cd_client_stats_clear(cd_client_stats *s);

/** DELETE /api/locks/client/:clientId: frees every lock the client holds (its pending waiters
 * stay). admin_token is sent as "Authorization: Bearer ..." when not NULL; a server with an admin
 * token configured answers CD_CLIENT_EAUTH without it. *released_count may be NULL. */
int cd_client_release_client(cd_client *c, const char *client_id, const char *admin_token,
                             int64_t *released_count);

/** GET /healthz: 0 when the server answers {"status":"ok"}. */
int cd_client_health(cd_client *c);

/* ---- with_lock -------------------------------------------------------------------------- */

/** The work to do under the lock. The grant (and its strings) is valid only during the call; pass
 * grant->fencing_token to the systems you write to. c may be used (e.g. to extend). */
typedef int (*cd_client_locked_fn)(cd_client *c, const char *resource, const cd_client_grant *grant,
                                   void *ud);

/** Acquires resource (waiting as opts says), calls fn, then releases the lock, whatever fn returns.
 * Returns 0 when fn was called, with its return value in *fn_ret (may be NULL). Otherwise fn was
 * never called: CD_CLIENT_ELOCKED when someone else held the lock for the whole wait, or the
 * acquire's error. A failed release after fn is not an error of this call - the server frees the
 * lock when its TTL runs out - but cd_client_last_error() then says why: the transport error, or
 * that the lock had expired before the release (fn outlived its TTL). "" when released cleanly. */
int cd_client_with_lock(cd_client *c, const char *resource, const cd_client_acquire_opts *opts,
                        cd_client_locked_fn fn, void *ud, int *fn_ret);

#ifdef __cplusplus
}
#endif

#endif
