/* The lock layer: waiter queues, wait deadlines and counters above any store.
 *
 * Queues are kept per resource in a uthash table, created with the first waiter and
 * freed with the last. Wait deadlines live in one binary min-heap of waiters. The store
 * tells us when a lock ends (on_freed); if that resource has waiters, the first one is
 * granted right there, inside the event, so nothing else can run in between. A try
 * (wait 0) that finds waiters queued is refused even if the store would grant it: the
 * queue is never jumped. */
#include "lock/locks.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#undef uthash_nonfatal_oom
#define uthash_nonfatal_oom(obj) (queue_oom = 1)

static int queue_oom;

typedef struct queue {
    UT_hash_handle hh;
    cd_waiter *head, *tail;
    size_t n;
    size_t len;
    char name[];
} queue;

struct cd_waiter {
    cd_locks *l;
    queue *q;
    cd_waiter *prev, *next;
    size_t heap_idx;
    uint64_t deadline;
    uint32_t ttl;
    bool granting;  /* a store acquire for it is under way */
    bool cancelled; /* its client left while granting */
    cd_locks_grant_cb cb;
    void *ud;
    size_t client_len;
    char client[];
};

struct cd_locks {
    cd_store *store;
    const cd_clock *clock;
    queue *queues;
    size_t nwaiting;
    cd_waiter **heap;
    size_t heap_len, heap_cap;
    cd_counters counters;
};

/* ---- names ---- */

bool cd_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str, *end = s + len;
    while (s < end) {
        unsigned c = *s++;
        if (c < 0x80)
            continue;
        size_t n;
        unsigned cp, min;
        if (c >= 0xc2 && c <= 0xdf)
            n = 1, cp = c & 0x1f, min = 0x80;
        else if (c >= 0xe0 && c <= 0xef)
            n = 2, cp = c & 0x0f, min = 0x800;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 3, cp = c & 0x07, min = 0x10000;
        else
            return false;
        if ((size_t)(end - s) < n)
            return false;
        for (size_t i = 0; i < n; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i] & 0x3f);
        }
        s += n;
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
    }
    return true;
}

enum cd_name_error cd_name_check(cd_str name, size_t max)
{
    if (name.len == 0)
        return CD_NAME_EMPTY;
    if (name.len > max)
        return CD_NAME_TOO_LONG;
    for (size_t i = 0; i < name.len; i++) {
        unsigned char c = (unsigned char)name.ptr[i];
        if (c < 0x20 || c == 0x7f)
            return CD_NAME_CONTROL;
    }
    return cd_utf8_valid(name.ptr, name.len) ? CD_NAME_OK : CD_NAME_UTF8;
}

/* ---- the wait-deadline heap ---- */

static void wheap_set(cd_locks *l, size_t i, cd_waiter *w)
{
    l->heap[i] = w;
    w->heap_idx = i;
}

static void wheap_up(cd_locks *l, size_t i)
{
    cd_waiter *w = l->heap[i];
    while (i > 0 && l->heap[(i - 1) / 2]->deadline > w->deadline) {
        wheap_set(l, i, l->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    wheap_set(l, i, w);
}

static void wheap_down(cd_locks *l, size_t i)
{
    cd_waiter *w = l->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= l->heap_len)
            break;
        if (c + 1 < l->heap_len && l->heap[c + 1]->deadline < l->heap[c]->deadline)
            c++;
        if (l->heap[c]->deadline >= w->deadline)
            break;
        wheap_set(l, i, l->heap[c]);
        i = c;
    }
    wheap_set(l, i, w);
}

static int wheap_push(cd_locks *l, cd_waiter *w)
{
    if (l->heap_len == l->heap_cap) {
        size_t cap = l->heap_cap ? 2 * l->heap_cap : 64;
        cd_waiter **h = realloc(l->heap, cap * sizeof *h);
        if (!h)
            return -ENOMEM;
        l->heap = h;
        l->heap_cap = cap;
    }
    l->heap[l->heap_len] = w;
    wheap_up(l, l->heap_len++);
    return 0;
}

static void wheap_remove(cd_locks *l, cd_waiter *w)
{
    size_t i = w->heap_idx;
    cd_waiter *last = l->heap[--l->heap_len];
    if (i == l->heap_len)
        return;
    wheap_set(l, i, last);
    if (i > 0 && l->heap[(i - 1) / 2]->deadline > last->deadline)
        wheap_up(l, i);
    else
        wheap_down(l, i);
}

/* ---- queues ---- */

static queue *queue_find(const cd_locks *l, cd_str res)
{
    queue *q = NULL;
    HASH_FIND(hh, l->queues, res.ptr, res.len, q);
    return q;
}

static int enqueue(cd_locks *l, cd_str res, cd_str client, uint32_t ttl, uint32_t wait_ms,
                   cd_locks_grant_cb cb, void *ud, cd_waiter **out)
{
    queue *q = queue_find(l, res);
    bool fresh = !q;
    if (fresh) {
        if (!(q = calloc(1, sizeof *q + res.len + 1)))
            return -ENOMEM;
        memcpy(q->name, res.ptr, res.len);
        q->len = res.len;
        queue_oom = 0;
        HASH_ADD_KEYPTR(hh, l->queues, q->name, q->len, q);
        if (queue_oom) {
            free(q);
            return -ENOMEM;
        }
    }
    cd_waiter *w = calloc(1, sizeof *w + client.len + 1);
    if (!w || wheap_push(l, w) < 0) {
        free(w);
        if (fresh) {
            HASH_DELETE(hh, l->queues, q);
            free(q);
        }
        return -ENOMEM;
    }
    /* wheap_push placed it by a zero deadline; set the real one and re-sift */
    w->deadline = cd_clock_mono(l->clock) + wait_ms;
    wheap_down(l, w->heap_idx);
    w->l = l;
    w->q = q;
    w->ttl = ttl;
    w->cb = cb;
    w->ud = ud;
    memcpy(w->client, client.ptr, client.len);
    w->client_len = client.len;
    w->prev = q->tail;
    if (q->tail)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
    q->n++;
    l->nwaiting++;
    *out = w;
    return 0;
}

/* Takes w out of its queue and the deadline heap, freeing the queue with its last
 * waiter; w itself is the caller's to free. */
static void dequeue(cd_locks *l, cd_waiter *w)
{
    queue *q = w->q;
    if (w->prev)
        w->prev->next = w->next;
    else
        q->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        q->tail = w->prev;
    wheap_remove(l, w);
    l->nwaiting--;
    if (--q->n == 0) {
        HASH_DELETE(hh, l->queues, q);
        free(q);
    }
    w->q = NULL;
}

/* ---- refusals that need the holder's remaining time ---- */

typedef struct refusal {
    cd_locks_grant_cb cb;
    void *ud;
} refusal;

static void refusal_info_cb(void *ud, int err, const cd_lock_view *held)
{
    refusal *r = ud;
    cd_grant g = {.acquired = false, .remaining = held ? held->remaining : 0};
    r->cb(r->ud, err, err ? NULL : &g);
    free(r);
}

static int refuse(cd_locks *l, cd_str res, cd_locks_grant_cb cb, void *ud)
{
    refusal *r = malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    *r = (refusal){cb, ud};
    int err = l->store->ops->info(l->store, res, refusal_info_cb, r);
    if (err)
        free(r);
    return err;
}

/* ---- hand-off to the first waiter ---- */

static void grant_next(cd_locks *l, queue *q);

static void handoff_release_cb(void *ud, int err, bool ok)
{
    (void)ud, (void)err, (void)ok;
}

static void handoff_cb(void *ud, int err, const cd_grant *g)
{
    cd_waiter *w = ud;
    cd_locks *l = w->l;
    w->granting = false;
    if (!err && !g->acquired && !w->cancelled)
        return; /* taken by someone the store knows and we don't: wait for its end */
    if (w->cancelled) {
        /* its client left while the grant was under way: give the lock straight back,
         * which hands it to the next waiter */
        char name[CD_RESOURCE_MAX];
        size_t len = w->q->len < sizeof name ? w->q->len : sizeof name;
        memcpy(name, w->q->name, len);
        dequeue(l, w);
        free(w);
        if (!err && g->acquired)
            l->store->ops->release(l->store, (cd_str){name, len}, &g->token, handoff_release_cb,
                                   NULL);
        return;
    }
    dequeue(l, w);
    if (!err)
        l->counters.acquired++;
    w->cb(w->ud, err, err ? NULL : g);
    free(w);
}

static void grant_next(cd_locks *l, queue *q)
{
    cd_waiter *w = q->head;
    if (!w || w->granting)
        return;
    w->granting = true;
    int err = l->store->ops->acquire(l->store, (cd_str){q->name, q->len},
                                     (cd_str){w->client, w->client_len}, w->ttl, handoff_cb, w);
    if (err) {
        w->granting = false;
        dequeue(l, w);
        w->cb(w->ud, err, NULL);
        free(w);
    }
}

static void on_freed(void *ud, cd_str res, enum cd_free_reason why)
{
    cd_locks *l = ud;
    if (why == CD_FREED_EXPIRED)
        l->counters.expired++;
    else
        l->counters.released++;
    queue *q = queue_find(l, res);
    if (q)
        grant_next(l, q);
}

/* ---- operations ---- */

/* An acquire on its way through the store; it owns copies of the names because a
 * networked store answers after cd_locks_acquire() has returned. */
typedef struct attempt {
    cd_locks *l;
    cd_locks_grant_cb cb;
    void *ud;
    cd_waiter **waiter;
    uint32_t ttl, wait_ms;
    size_t res_len, client_len;
    char names[]; /* resource, then client id */
} attempt;

static void attempt_cb(void *ud, int err, const cd_grant *g)
{
    attempt *a = ud;
    cd_locks *l = a->l;
    if (!err && g->acquired) {
        l->counters.acquired++;
    } else if (!err) {
        l->counters.contended++;
        if (a->wait_ms > 0) {
            /* With the memory store nothing can run between the refusal and this
             * enqueue. A networked store can see the lock end in between (its `freed`
             * event finds no queue yet): it must then try the new head of the queue
             * again, or the waiter sits until its timeout. */
            cd_str res = {a->names, a->res_len}, client = {a->names + a->res_len, a->client_len};
            err = enqueue(l, res, client, a->ttl, a->wait_ms, a->cb, a->ud, a->waiter);
            if (!err) {
                free(a);
                return;
            }
        }
    }
    a->cb(a->ud, err, err ? NULL : g);
    free(a);
}

int cd_locks_acquire(cd_locks *l, cd_str res, cd_str client, uint32_t ttl, uint32_t wait_ms,
                     cd_locks_grant_cb cb, void *ud, cd_waiter **waiter)
{
    *waiter = NULL;
    if (queue_find(l, res)) {
        /* others are waiting: a try is refused, a wait joins the end of the queue */
        l->counters.contended++;
        if (wait_ms == 0)
            return refuse(l, res, cb, ud);
        return enqueue(l, res, client, ttl, wait_ms, cb, ud, waiter);
    }
    attempt *a = malloc(sizeof *a + res.len + client.len);
    if (!a)
        return -ENOMEM;
    *a = (attempt){l, cb, ud, waiter, ttl, wait_ms, res.len, client.len};
    memcpy(a->names, res.ptr, res.len);
    memcpy(a->names + res.len, client.ptr, client.len);
    int err = l->store->ops->acquire(l->store, (cd_str){a->names, res.len},
                                     (cd_str){a->names + res.len, client.len}, ttl, attempt_cb, a);
    if (err)
        free(a);
    return err;
}

void cd_locks_cancel(cd_locks *l, cd_waiter *w)
{
    if (w->granting) {
        w->cancelled = true;
        return;
    }
    dequeue(l, w);
    free(w);
}

typedef struct extension {
    cd_locks *l;
    cd_store_extend_cb cb;
    void *ud;
} extension;

static void extend_cb(void *ud, int err, const cd_extension *x)
{
    extension *e = ud;
    if (!err && x->extended)
        e->l->counters.extended++;
    e->cb(e->ud, err, x);
    free(e);
}

int cd_locks_release(cd_locks *l, cd_str res, const cd_token *token, cd_store_bool_cb cb, void *ud)
{
    /* counted in on_freed, where every way a lock ends is seen */
    return l->store->ops->release(l->store, res, token, cb, ud);
}

int cd_locks_extend(cd_locks *l, cd_str res, const cd_token *token, uint32_t ttl,
                    cd_store_extend_cb cb, void *ud)
{
    extension *e = malloc(sizeof *e);
    if (!e)
        return -ENOMEM;
    *e = (extension){l, cb, ud};
    int err = l->store->ops->extend(l->store, res, token, ttl, extend_cb, e);
    if (err)
        free(e);
    return err;
}

size_t cd_locks_waiting(const cd_locks *l, cd_str res)
{
    queue *q = queue_find(l, res);
    return q ? q->n : 0;
}

size_t cd_locks_waiting_total(const cd_locks *l)
{
    return l->nwaiting;
}

const cd_counters *cd_locks_counters(const cd_locks *l)
{
    return &l->counters;
}

/* ---- timers ---- */

uint64_t cd_locks_next_deadline(const cd_locks *l)
{
    uint64_t t = l->store->ops->next_deadline(l->store);
    if (l->heap_len && l->heap[0]->deadline < t)
        t = l->heap[0]->deadline;
    return t;
}

typedef struct timeout {
    cd_locks_grant_cb cb;
    void *ud;
} timeout;

bool cd_locks_tick(cd_locks *l, size_t budget)
{
    /* locks first: a waiter whose wait ends in the same millisecond as the lock it waits
     * for is granted, not refused */
    bool more = l->store->ops->tick(l->store, budget);
    uint64_t now = cd_clock_mono(l->clock);
    while (l->heap_len && l->heap[0]->deadline <= now && budget) {
        cd_waiter *w = l->heap[0];
        budget--;
        if (w->granting) {
            /* its grant is under way (a networked store): look again in 1 ms, by
             * when that grant has answered */
            w->deadline = now + 1;
            wheap_down(l, 0);
            continue;
        }
        char name[CD_RESOURCE_MAX];
        size_t len = w->q->len < sizeof name ? w->q->len : sizeof name;
        memcpy(name, w->q->name, len);
        dequeue(l, w);
        l->counters.wait_timeouts++;
        if (refuse(l, (cd_str){name, len}, w->cb, w->ud) < 0)
            w->cb(w->ud, -ENOMEM, NULL);
        free(w);
    }
    return more || (l->heap_len && l->heap[0]->deadline <= now && !budget);
}

/* ---- lifetime ---- */

cd_locks *cd_locks_new(cd_store *store, const cd_clock *clock)
{
    cd_locks *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->store = store;
    l->clock = clock;
    store->on_freed = on_freed;
    store->on_freed_ud = l;
    return l;
}

void cd_locks_free(cd_locks *l)
{
    if (!l)
        return;
    while (l->heap_len) {
        cd_waiter *w = l->heap[0];
        dequeue(l, w);
        free(w);
    }
    free(l->heap);
    l->store->on_freed = NULL;
    free(l);
}

cd_store *cd_locks_store(const cd_locks *l)
{
    return l->store;
}
