/* store.h — the table of asynchronous operations every lock store implements.
 *
 * A store keeps who holds which resource until when. It knows nothing of HTTP, waiters
 * or JSON. Every operation takes a completion callback: the memory store calls it before
 * returning, a networked store (Redis) when the answer arrives; callers must work with
 * both. If an operation returns an error, its callback is never called.
 *
 * Errors are negative errno values: -ENOMEM, -EIO (store unreachable), -EINVAL.
 * Results passed to callbacks (and the strings they point to) are valid only during
 * the callback; copy what you keep.
 *
 * When a held lock ends (release, expiry, release of a client), the store tells its
 * owner through the `freed` event, after its own state is consistent, so the owner may
 * start new operations (grant the next waiter) from inside the event. */
#ifndef CD_STORE_H
#define CD_STORE_H

#include "util/token.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cd_store cd_store;

/** A string that is not NUL-terminated (names may hold any valid UTF-8). */
typedef struct cd_str {
    const char *ptr;
    size_t len;
} cd_str;

enum cd_free_reason { CD_FREED_RELEASED, CD_FREED_EXPIRED, CD_FREED_CLIENT };

/** A held lock as the store reports it (never with its token). */
typedef struct cd_lock_view {
    cd_str resource;
    cd_str client_id;
    int64_t acquired_at; /* wall clock, epoch ms */
    int64_t expires_at;  /* wall clock, epoch ms */
    uint64_t remaining;  /* ms until the lock ends, > 0 */
    uint64_t fencing;
    uint32_t ttl; /* the TTL it was granted (or last extended) with */
} cd_lock_view;

typedef struct cd_grant {
    bool acquired;
    /* acquired: */
    cd_token token;
    uint64_t fencing;
    uint32_t ttl;
    int64_t expires_at; /* wall ms */
    /* refused: how long the current holder still has */
    uint64_t remaining;
} cd_grant;

typedef struct cd_extension {
    bool extended;
    uint32_t ttl;
    int64_t expires_at;
} cd_extension;

typedef struct cd_list_query {
    cd_str prefix;    /* empty: every resource */
    cd_str client_id; /* empty: every client */
    size_t limit;     /* 0: no limit */
    cd_str cursor;    /* empty: from the start; otherwise a next_cursor from before */
} cd_list_query;

typedef struct cd_list_page {
    const cd_lock_view *locks;
    size_t count;
    cd_str next_cursor; /* empty on the last page */
} cd_list_page;

typedef struct cd_client_count {
    cd_str client_id;
    size_t count;
} cd_client_count;

typedef struct cd_store_stats {
    size_t total;                   /* entries in the store */
    size_t expired;                 /* entries past their TTL that cleanup has not removed yet */
    const cd_client_count *clients; /* active locks per client */
    size_t nclients;
} cd_store_stats;

typedef void (*cd_store_grant_cb)(void *ud, int err, const cd_grant *g);
typedef void (*cd_store_bool_cb)(void *ud, int err, bool ok);
typedef void (*cd_store_extend_cb)(void *ud, int err, const cd_extension *x);
typedef void (*cd_store_info_cb)(void *ud, int err, const cd_lock_view *held /* NULL: free */);
typedef void (*cd_store_list_cb)(void *ud, int err, const cd_list_page *page);
typedef void (*cd_store_stats_cb)(void *ud, int err, const cd_store_stats *st);
typedef void (*cd_store_count_cb)(void *ud, int err, size_t count);
typedef void (*cd_store_ready_cb)(void *ud, int err, const char *reason);

typedef struct cd_store_ops {
    const char *name; /* "memory", "redis" */

    /** Grants the lock when the resource is free (or its holder's TTL has ended). */
    int (*acquire)(cd_store *s, cd_str resource, cd_str client_id, uint32_t ttl,
                   cd_store_grant_cb cb, void *ud);
    /** Ends the lock if `token` is the current holder's; ok=false otherwise. */
    int (*release)(cd_store *s, cd_str resource, const cd_token *token, cd_store_bool_cb cb,
                   void *ud);
    /** Sets the remaining time to ttl (0: the TTL of the grant) if `token` holds it. */
    int (*extend)(cd_store *s, cd_str resource, const cd_token *token, uint32_t ttl,
                  cd_store_extend_cb cb, void *ud);
    int (*info)(cd_store *s, cd_str resource, cd_store_info_cb cb, void *ud);
    int (*list)(cd_store *s, const cd_list_query *q, cd_store_list_cb cb, void *ud);
    int (*stats)(cd_store *s, cd_store_stats_cb cb, void *ud);
    /** Ends every lock the client holds; the count of locks ended. */
    int (*release_client)(cd_store *s, cd_str client_id, cd_store_count_cb cb, void *ud);
    /** err 0 when the store can serve, otherwise a reason. */
    int (*ready)(cd_store *s, cd_store_ready_cb cb, void *ud);

    /** Timers, driven by the owner's loop: the monotonic ms at which tick() has work
     * (UINT64_MAX: none). tick() does at most `budget` units of work and returns true
     * when more is due right away. */
    uint64_t (*next_deadline)(cd_store *s);
    bool (*tick)(cd_store *s, size_t budget);

    void (*free)(cd_store *s);
} cd_store_ops;

typedef void (*cd_store_freed_fn)(void *ud, cd_str resource, enum cd_free_reason why);

/** The part every store shares; a store's own struct starts with it. */
struct cd_store {
    const cd_store_ops *ops;
    cd_store_freed_fn on_freed; /* set by the owner; may be NULL */
    void *on_freed_ud;
};

static inline void cd_store_free(cd_store *s)
{
    if (s)
        s->ops->free(s);
}

/** Tells the owner that a lock ended (for stores to call). */
static inline void cd_store_emit_freed(cd_store *s, cd_str resource, enum cd_free_reason why)
{
    if (s->on_freed)
        s->on_freed(s->on_freed_ud, resource, why);
}

#endif
