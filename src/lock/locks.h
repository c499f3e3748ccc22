/* The lock layer: what every store shares. Name rules, the waiter queues (first come,
 * first served per resource), wait deadlines and the operation counters. It sits
 * between the API layer and store.h and owns the store's `freed` event: when a lock
 * ends, the first waiter of that resource is granted in the same loop turn, so a
 * released or expired lock with waiters is never seen free.
 *
 * Threading: the loop thread only. Operations complete through callbacks, now or later,
 * exactly as store.h describes; an operation that returns an error never calls back. */
#ifndef CD_LOCKS_H
#define CD_LOCKS_H

#include "store/store.h"
#include "util/clock.h"

typedef struct cd_locks cd_locks;
typedef struct cd_waiter cd_waiter;

typedef struct cd_counters {
    uint64_t acquired;      /* grants, immediate or after waiting */
    uint64_t contended;     /* acquires that found the resource held (counted once each) */
    uint64_t released;      /* locks ended by release or by DELETE client */
    uint64_t expired;       /* locks ended by their TTL */
    uint64_t extended;      /* successful extends */
    uint64_t wait_timeouts; /* waits that ran out */
} cd_counters;

/* ---- names ---- */

enum cd_name_error { CD_NAME_OK, CD_NAME_EMPTY, CD_NAME_TOO_LONG, CD_NAME_CONTROL, CD_NAME_UTF8 };

#define CD_RESOURCE_MAX  512
#define CD_CLIENT_ID_MAX 128

/** Checks a resource or clientId against the rules: 1..max bytes of valid UTF-8 without
 * control characters (U+0000-U+001F, U+007F). */
enum cd_name_error cd_name_check(cd_str name, size_t max);

/** True when s is valid UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF). */
bool cd_utf8_valid(const char *s, size_t len);

/* ---- lifetime ---- */

/** Takes over the store's `freed` event; the store must outlive the lock layer. */
cd_locks *cd_locks_new(cd_store *store, const cd_clock *clock);
/** Frees pending waiters without calling them back. */
void cd_locks_free(cd_locks *l);
cd_store *cd_locks_store(const cd_locks *l);

/* ---- operations ---- */

typedef void (*cd_locks_grant_cb)(void *ud, int err, const cd_grant *g);

/** Tries to take `resource` for `client_id` for `ttl` ms. With wait_ms > 0 and the
 * resource held, the request joins the resource's queue: the callback comes when it is
 * granted or when wait_ms have passed (refused). *waiter is set to a handle while the
 * request is queued (NULL otherwise); it stays valid until the callback or
 * cd_locks_cancel(). The strings need to live only until this call returns. */
int cd_locks_acquire(cd_locks *l, cd_str resource, cd_str client_id, uint32_t ttl, uint32_t wait_ms,
                     cd_locks_grant_cb cb, void *ud, cd_waiter **waiter);

/** Takes a queued request out of its queue (its client went away); its callback is
 * never called. Safe only while the handle is valid. */
void cd_locks_cancel(cd_locks *l, cd_waiter *w);

int cd_locks_release(cd_locks *l, cd_str resource, const cd_token *token, cd_store_bool_cb cb,
                     void *ud);
int cd_locks_extend(cd_locks *l, cd_str resource, const cd_token *token, uint32_t ttl,
                    cd_store_extend_cb cb, void *ud);

/** Requests waiting for `resource` (on this server). */
size_t cd_locks_waiting(const cd_locks *l, cd_str resource);
/** Requests waiting for any resource (on this server). */
size_t cd_locks_waiting_total(const cd_locks *l);
const cd_counters *cd_locks_counters(const cd_locks *l);

/* ---- timers ---- */

/** The monotonic ms at which cd_locks_tick() has work: the next lock expiry or wait
 * deadline (UINT64_MAX: none). */
uint64_t cd_locks_next_deadline(const cd_locks *l);
/** Ends due locks and due waits, at most `budget` of each; true when more is due now. */
bool cd_locks_tick(cd_locks *l, size_t budget);

#endif
