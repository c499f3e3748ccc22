/* The memory store.
 *
 * Locks live in a uthash table keyed by resource name. uthash also keeps the entries in
 * insertion order, and since every grant inserts at the tail with the next fencing
 * token, that order is fencing order: pages of GET /api/locks walk it, and a cursor
 * (fencing token + name) resumes in O(1) while its lock still exists.
 *
 * Each client's locks are linked into the client's own list, so releasing a client and
 * counting per client cost O(that client's locks).
 *
 * Expiry is exact: a binary min-heap on the monotonic deadline gives the next moment
 * anything ends, the owner's timer calls tick() then, and tick() ends at most `budget`
 * locks per call so that a million locks ending together never stall the loop. A lock
 * whose deadline has passed but that tick() has not reached yet is never reported held:
 * every lookup ends it on the spot (find_live). */
#include "store/memory.h"

#include "util/hex.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#undef uthash_nonfatal_oom
#define uthash_nonfatal_oom(obj) (oom = 1)

/* uthash doubles a table by moving every entry at once: measured here, 65 ms at 930k
 * entries and 138 ms at 1.9M, a stall no lock server can have. uthash takes a new table's
 * size from these macros when the table is made, so the lock table is made with 2^20
 * buckets (16 MiB, which a million locks need anyway) and first doubles at about 1.9M
 * locks; the client table starts small as usual. uthash also frees a table with its
 * last entry (and would re-make 16 MiB on the next grant), so the lock table holds one
 * permanent entry with an empty name, which no lookup can ask for (names are never
 * empty): `m->locks`, the head of the table. */
#define LOCK_TABLE_LOG2 20u
static unsigned new_table_log2 = 5;
#undef HASH_INITIAL_NUM_BUCKETS
#undef HASH_INITIAL_NUM_BUCKETS_LOG2
#define HASH_INITIAL_NUM_BUCKETS      (1u << new_table_log2)
#define HASH_INITIAL_NUM_BUCKETS_LOG2 new_table_log2

typedef struct mlock mlock;

typedef struct mclient {
    UT_hash_handle hh;
    mlock *head, *tail; /* in grant order */
    size_t count;
    size_t due; /* scratch for mem_stats: locks past their deadline, not yet ended */
    size_t len;
    char id[];
} mclient;

struct mlock {
    UT_hash_handle hh;
    mclient *client;
    mlock *cprev, *cnext;
    uint64_t fencing;
    uint64_t deadline;   /* monotonic ms */
    int64_t acquired_at; /* wall ms; also the time inside the token */
    int64_t expires_at;  /* wall ms */
    uint32_t ttl;        /* as granted */
    uint32_t heap_idx;
    uint8_t rnd[CD_TOKEN_RANDOM_BYTES];
    uint16_t len;
    char name[];
};

typedef struct heap_entry {
    uint64_t deadline;
    mlock *lock;
} heap_entry;

typedef struct memstore {
    cd_store base;
    const cd_clock *clock;
    mlock *locks;
    mclient *clients;
    heap_entry *heap;
    size_t heap_len, heap_cap;
    uint64_t fencing;
    /* scratch for results handed to callbacks */
    cd_lock_view *views;
    size_t views_cap;
    cd_client_count *counts;
    size_t counts_cap;
    size_t *stack; /* for heap_visit_due */
    size_t stack_cap;
} memstore;

static int oom; /* set by uthash when an insertion could not grow the table */

/* ---- expiry heap ---- */

static void heap_set(memstore *m, size_t i, heap_entry e)
{
    m->heap[i] = e;
    e.lock->heap_idx = (uint32_t)i;
}

static void heap_up(memstore *m, size_t i)
{
    heap_entry e = m->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (m->heap[parent].deadline <= e.deadline)
            break;
        heap_set(m, i, m->heap[parent]);
        i = parent;
    }
    heap_set(m, i, e);
}

static void heap_down(memstore *m, size_t i)
{
    heap_entry e = m->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= m->heap_len)
            break;
        if (child + 1 < m->heap_len && m->heap[child + 1].deadline < m->heap[child].deadline)
            child++;
        if (m->heap[child].deadline >= e.deadline)
            break;
        heap_set(m, i, m->heap[child]);
        i = child;
    }
    heap_set(m, i, e);
}

static int heap_push(memstore *m, mlock *lk)
{
    if (m->heap_len == m->heap_cap) {
        size_t cap = m->heap_cap ? m->heap_cap * 2 : 1024;
        heap_entry *h = realloc(m->heap, cap * sizeof *h);
        if (!h)
            return -ENOMEM;
        m->heap = h;
        m->heap_cap = cap;
    }
    m->heap[m->heap_len] = (heap_entry){lk->deadline, lk};
    heap_up(m, m->heap_len++);
    return 0;
}

static void heap_remove(memstore *m, mlock *lk)
{
    size_t i = lk->heap_idx;
    heap_entry last = m->heap[--m->heap_len];
    if (i == m->heap_len)
        return;
    heap_set(m, i, last);
    if (i > 0 && m->heap[(i - 1) / 2].deadline > last.deadline)
        heap_up(m, i);
    else
        heap_down(m, i);
}

static void heap_update(memstore *m, mlock *lk)
{
    size_t i = lk->heap_idx;
    m->heap[i].deadline = lk->deadline;
    if (i > 0 && m->heap[(i - 1) / 2].deadline > lk->deadline)
        heap_up(m, i);
    else
        heap_down(m, i);
}

/* Entries due by `now` that tick() has not ended yet. Only a backlog (a heap whose top
 * is due) costs anything: then a sequential pass over the deadlines, about 2 ms for a
 * million, which beats chasing the due subtree through the array. */
static size_t heap_count_due(const memstore *m, uint64_t now)
{
    if (m->heap_len == 0 || m->heap[0].deadline > now)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < m->heap_len; i++)
        n += m->heap[i].deadline <= now;
    return n;
}

/* ---- locks and clients ---- */

static mclient *client_get(memstore *m, cd_str id, bool create)
{
    mclient *c = NULL;
    HASH_FIND(hh, m->clients, id.ptr, id.len, c);
    if (c || !create)
        return c;
    c = calloc(1, sizeof *c + id.len + 1);
    if (!c)
        return NULL;
    memcpy(c->id, id.ptr, id.len);
    c->len = id.len;
    oom = 0;
    new_table_log2 = 5;
    HASH_ADD_KEYPTR(hh, m->clients, c->id, c->len, c);
    if (oom) {
        free(c);
        return NULL;
    }
    return c;
}

static void client_link(mclient *c, mlock *lk)
{
    lk->client = c;
    lk->cnext = NULL;
    lk->cprev = c->tail;
    if (c->tail)
        c->tail->cnext = lk;
    else
        c->head = lk;
    c->tail = lk;
    c->count++;
}

static void client_unlink(memstore *m, mlock *lk)
{
    mclient *c = lk->client;
    if (lk->cprev)
        lk->cprev->cnext = lk->cnext;
    else
        c->head = lk->cnext;
    if (lk->cnext)
        lk->cnext->cprev = lk->cprev;
    else
        c->tail = lk->cprev;
    if (--c->count == 0) {
        HASH_DELETE(hh, m->clients, c);
        free(c);
    }
}

/* Takes the lock out of every index; the caller then reports it and frees it. */
static void lock_unlink(memstore *m, mlock *lk)
{
    heap_remove(m, lk);
    client_unlink(m, lk);
    HASH_DELETE(hh, m->locks, lk);
}

/* Ends a lock and tells the owner. The owner may grant the resource again from inside
 * the event, so nothing here touches the store after it. */
static void lock_end(memstore *m, mlock *lk, enum cd_free_reason why)
{
    lock_unlink(m, lk);
    cd_store_emit_freed(&m->base, (cd_str){lk->name, lk->len}, why);
    free(lk);
}

static mlock *find_live(memstore *m, cd_str res, uint64_t now)
{
    for (;;) {
        mlock *lk = NULL;
        HASH_FIND(hh, m->locks, res.ptr, res.len, lk);
        if (!lk || lk->deadline > now)
            return lk;
        lock_end(m, lk, CD_FREED_EXPIRED);
    }
}

static bool token_matches(const mlock *lk, const cd_token *t)
{
    cd_token held = {.ms = lk->acquired_at};
    memcpy(held.rnd, lk->rnd, sizeof held.rnd);
    return cd_token_equal(&held, t);
}

static cd_lock_view view_of(const mlock *lk, uint64_t now)
{
    return (cd_lock_view){
        .resource = {lk->name, lk->len},
        .client_id = {lk->client->id, lk->client->len},
        .acquired_at = lk->acquired_at,
        .expires_at = lk->expires_at,
        .remaining = lk->deadline - now,
        .fencing = lk->fencing,
        .ttl = lk->ttl,
    };
}

/* ---- operations ---- */

static int mem_acquire(cd_store *s, cd_str res, cd_str client_id, uint32_t ttl,
                       cd_store_grant_cb cb, void *ud)
{
    memstore *m = (memstore *)s;
    uint64_t now = cd_clock_mono(m->clock);
    mlock *held = find_live(m, res, now);
    if (held) {
        cd_grant g = {.acquired = false, .remaining = held->deadline - now};
        cb(ud, 0, &g);
        return 0;
    }
    if (res.len > UINT16_MAX)
        return -EINVAL;
    mlock *lk = calloc(1, sizeof *lk + res.len + 1);
    if (!lk)
        return -ENOMEM;
    mclient *c = client_get(m, client_id, true);
    if (!c)
        goto fail;
    memcpy(lk->name, res.ptr, res.len);
    lk->len = (uint16_t)res.len;
    lk->acquired_at = cd_clock_wall(m->clock);
    lk->expires_at = lk->acquired_at + ttl;
    lk->deadline = now + ttl;
    lk->ttl = ttl;
    if (heap_push(m, lk) < 0)
        goto fail_client;
    oom = 0;
    new_table_log2 = LOCK_TABLE_LOG2;
    HASH_ADD_KEYPTR(hh, m->locks, lk->name, lk->len, lk);
    if (oom) {
        heap_remove(m, lk);
        goto fail_client;
    }
    client_link(c, lk);
    lk->fencing = ++m->fencing;

    cd_grant g = {
        .acquired = true, .fencing = lk->fencing, .ttl = ttl, .expires_at = lk->expires_at};
    cd_token_new(&g.token, lk->acquired_at);
    memcpy(lk->rnd, g.token.rnd, sizeof lk->rnd);
    cb(ud, 0, &g);
    return 0;

fail_client:
    if (c->count == 0) {
        HASH_DELETE(hh, m->clients, c);
        free(c);
    }
fail:
    free(lk);
    return -ENOMEM;
}

static int mem_release(cd_store *s, cd_str res, const cd_token *token, cd_store_bool_cb cb,
                       void *ud)
{
    memstore *m = (memstore *)s;
    mlock *lk = find_live(m, res, cd_clock_mono(m->clock));
    bool ok = lk && token_matches(lk, token);
    if (ok)
        lock_end(m, lk, CD_FREED_RELEASED);
    cb(ud, 0, ok);
    return 0;
}

static int mem_extend(cd_store *s, cd_str res, const cd_token *token, uint32_t ttl,
                      cd_store_extend_cb cb, void *ud)
{
    memstore *m = (memstore *)s;
    uint64_t now = cd_clock_mono(m->clock);
    mlock *lk = find_live(m, res, now);
    cd_extension x = {.extended = false};
    if (lk && token_matches(lk, token)) {
        x.extended = true;
        x.ttl = ttl ? ttl : lk->ttl;
        lk->deadline = now + x.ttl;
        lk->expires_at = cd_clock_wall(m->clock) + x.ttl;
        x.expires_at = lk->expires_at;
        heap_update(m, lk);
    }
    cb(ud, 0, &x);
    return 0;
}

static int mem_info(cd_store *s, cd_str res, cd_store_info_cb cb, void *ud)
{
    memstore *m = (memstore *)s;
    uint64_t now = cd_clock_mono(m->clock);
    mlock *lk = find_live(m, res, now);
    if (!lk) {
        cb(ud, 0, NULL);
        return 0;
    }
    cd_lock_view v = view_of(lk, now);
    cb(ud, 0, &v);
    return 0;
}

static int views_push(memstore *m, size_t n, cd_lock_view v)
{
    if (n == m->views_cap) {
        size_t cap = m->views_cap ? m->views_cap * 2 : 64;
        cd_lock_view *nv = realloc(m->views, cap * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        m->views = nv;
        m->views_cap = cap;
    }
    m->views[n] = v;
    return 0;
}

/* Cursor: "<fencing>.<name in hex>" of the last lock on the previous page. */
static bool cursor_parse(cd_str cur, uint64_t *fencing, char *name, size_t *name_len)
{
    size_t i = 0;
    uint64_t f = 0;
    while (i < cur.len && cur.ptr[i] >= '0' && cur.ptr[i] <= '9') {
        if (f > (UINT64_MAX - 9) / 10)
            return false;
        f = f * 10 + (uint64_t)(cur.ptr[i++] - '0');
    }
    if (i == 0 || i >= cur.len || cur.ptr[i++] != '.' || (cur.len - i) % 2 != 0 ||
        (cur.len - i) / 2 > UINT16_MAX)
        return false;
    size_t n = 0;
    for (; i < cur.len; i += 2) {
        int v = cd_hex_byte(cur.ptr + i);
        if (v < 0)
            return false;
        name[n++] = (char)v;
    }
    *fencing = f;
    *name_len = n;
    return true;
}

static char *cursor_format(const mlock *lk)
{
    char *out = malloc(24 + 2 * (size_t)lk->len);
    if (!out)
        return NULL;
    int n = sprintf(out, "%llu.", (unsigned long long)lk->fencing);
    for (size_t i = 0; i < lk->len; i++)
        n += sprintf(out + n, "%02x", (unsigned char)lk->name[i]);
    return out;
}

/* The first lock to list: after the cursor's lock if it still exists, otherwise the
 * first with a larger fencing token (the order is fencing order). */
static mlock *list_start(memstore *m, mclient *c, bool has_cursor, uint64_t after, cd_str name)
{
    mlock *first = c ? c->head : m->locks->hh.next;
    if (!has_cursor)
        return first;
    mlock *lk = NULL;
    HASH_FIND(hh, m->locks, name.ptr, name.len, lk);
    if (lk && lk->fencing == after && (!c || lk->client == c))
        return c ? lk->cnext : lk->hh.next;
    for (lk = first; lk && lk->fencing <= after; lk = c ? lk->cnext : lk->hh.next)
        ;
    return lk;
}

static int mem_list(cd_store *s, const cd_list_query *q, cd_store_list_cb cb, void *ud)
{
    memstore *m = (memstore *)s;
    uint64_t now = cd_clock_mono(m->clock);
    uint64_t after = 0;
    size_t nlen = 0;
    char *name = NULL;
    int err = 0;
    if (q->cursor.len) {
        if (!(name = malloc(q->cursor.len / 2 + 1)))
            return -ENOMEM;
        if (!cursor_parse(q->cursor, &after, name, &nlen)) {
            err = -EINVAL;
            goto out;
        }
    }
    mclient *c = NULL;
    if (q->client_id.len && !(c = client_get(m, q->client_id, false))) {
        cd_list_page empty = {0};
        cb(ud, 0, &empty);
        goto out;
    }
    mlock *lk = list_start(m, c, q->cursor.len > 0, after, (cd_str){name, nlen});
    size_t n = 0;
    mlock *last = NULL;
    for (; lk; lk = c ? lk->cnext : lk->hh.next) {
        if (lk->deadline <= now)
            continue;
        if (q->prefix.len &&
            (lk->len < q->prefix.len || memcmp(lk->name, q->prefix.ptr, q->prefix.len) != 0))
            continue;
        if (q->limit && n == q->limit)
            break;
        if ((err = views_push(m, n, view_of(lk, now))) < 0)
            goto out;
        n++;
        last = lk;
    }
    cd_list_page page = {.locks = m->views, .count = n};
    char *cursor = NULL;
    if (lk && last) { /* stopped at the limit with more to look at */
        if (!(cursor = cursor_format(last))) {
            err = -ENOMEM;
            goto out;
        }
        page.next_cursor = (cd_str){cursor, strlen(cursor)};
    }
    cb(ud, 0, &page);
    free(cursor);
out:
    free(name);
    return err;
}

static bool mem_tick(cd_store *s, size_t budget);

/* Locks past their deadline that tick() has not ended yet are counted per client, so
 * that locksByClient holds active locks only. Each costs a visit to its lock; beyond
 * this many (a mass expiry, for the few hundred ms it takes to clean up) that would
 * stall the loop, and the counts include them (docs/DESIGN.md). */
#define EXACT_BACKLOG_MAX 8192

enum due_visit { DUE_COUNT, DUE_MARK, DUE_RESET };

/* Walks the due entries — a subtree hanging from the heap's root — depth first, visiting
 * at most `max`; returns how many were due, or max + 1 when there are more. */
static size_t heap_visit_due(memstore *m, uint64_t now, size_t max, enum due_visit what)
{
    size_t n = 0, top = 0;
    if (m->heap_len == 0 || m->heap[0].deadline > now)
        return 0;
    if (m->stack_cap < max + 2) {
        size_t *ns = realloc(m->stack, (max + 2) * sizeof *ns);
        if (!ns)
            return max + 1; /* treated as too many to count per client */
        m->stack = ns;
        m->stack_cap = max + 2;
    }
    m->stack[top++] = 0;
    while (top) {
        size_t i = m->stack[--top];
        if (++n > max)
            return max + 1;
        mclient *c = m->heap[i].lock->client;
        if (what == DUE_MARK)
            c->due++;
        else if (what == DUE_RESET)
            c->due = 0;
        for (size_t k = 2 * i + 1; k <= 2 * i + 2 && k < m->heap_len; k++)
            if (m->heap[k].deadline <= now)
                m->stack[top++] = k; /* at most one more pending than visited */
    }
    return n;
}

static int mem_stats(cd_store *s, cd_store_stats_cb cb, void *ud)
{
    memstore *m = (memstore *)s;
    mem_tick(s, 1024); /* small backlogs are cleaned before they are counted */
    size_t n = HASH_COUNT(m->clients);
    if (n > m->counts_cap) {
        cd_client_count *nc = realloc(m->counts, n * sizeof *nc);
        if (!nc)
            return -ENOMEM;
        m->counts = nc;
        m->counts_cap = n;
    }
    uint64_t now = cd_clock_mono(m->clock);
    size_t due = heap_visit_due(m, now, EXACT_BACKLOG_MAX, DUE_COUNT);
    bool exact = due <= EXACT_BACKLOG_MAX;
    size_t expired = exact ? due : heap_count_due(m, now);
    if (exact && due)
        heap_visit_due(m, now, EXACT_BACKLOG_MAX, DUE_MARK);
    size_t i = 0;
    for (mclient *c = m->clients; c; c = c->hh.next)
        if (c->count > c->due)
            m->counts[i++] = (cd_client_count){{c->id, c->len}, c->count - c->due};
    if (exact && due)
        heap_visit_due(m, now, EXACT_BACKLOG_MAX, DUE_RESET);
    cd_store_stats st = {
        .total = HASH_COUNT(m->locks) - 1, /* not the sentinel */
        .expired = expired,
        .clients = m->counts,
        .nclients = i,
    };
    cb(ud, 0, &st);
    return 0;
}

static int mem_release_client(cd_store *s, cd_str client_id, cd_store_count_cb cb, void *ud)
{
    memstore *m = (memstore *)s;
    uint64_t now = cd_clock_mono(m->clock);
    mclient *c = client_get(m, client_id, false);
    size_t released = 0;
    /* Unlink them all first: events may grant a waiter of this very client, and that new
     * lock is not part of what is being released. */
    mlock *gone = NULL;
    while (c) {
        mlock *lk = c->head;
        bool last = c->count == 1;
        lock_unlink(m, lk); /* frees c with its last lock */
        lk->cnext = gone;
        gone = lk;
        if (last)
            c = NULL;
    }
    while (gone) {
        mlock *lk = gone;
        gone = lk->cnext;
        bool live = lk->deadline > now;
        released += live;
        cd_store_emit_freed(&m->base, (cd_str){lk->name, lk->len},
                            live ? CD_FREED_CLIENT : CD_FREED_EXPIRED);
        free(lk);
    }
    cb(ud, 0, released);
    return 0;
}

static int mem_ready(cd_store *s, cd_store_ready_cb cb, void *ud)
{
    cb(ud, 0, NULL);
    return 0;
}

static uint64_t mem_next_deadline(cd_store *s)
{
    memstore *m = (memstore *)s;
    return m->heap_len ? m->heap[0].deadline : UINT64_MAX;
}

static bool mem_tick(cd_store *s, size_t budget)
{
    memstore *m = (memstore *)s;
    uint64_t now = cd_clock_mono(m->clock);
    while (m->heap_len && m->heap[0].deadline <= now) {
        if (budget-- == 0)
            return true;
        lock_end(m, m->heap[0].lock, CD_FREED_EXPIRED);
    }
    return false;
}

static void mem_free(cd_store *s)
{
    memstore *m = (memstore *)s;
    mlock *lk, *ltmp;
    HASH_ITER(hh, m->locks, lk, ltmp)
    {
        HASH_DELETE(hh, m->locks, lk);
        free(lk);
    }
    mclient *c, *ctmp;
    HASH_ITER(hh, m->clients, c, ctmp)
    {
        HASH_DELETE(hh, m->clients, c);
        free(c);
    }
    free(m->heap);
    free(m->views);
    free(m->counts);
    free(m->stack);
    free(m);
}

static const cd_store_ops memstore_ops = {
    .name = "memory",
    .acquire = mem_acquire,
    .release = mem_release,
    .extend = mem_extend,
    .info = mem_info,
    .list = mem_list,
    .stats = mem_stats,
    .release_client = mem_release_client,
    .ready = mem_ready,
    .next_deadline = mem_next_deadline,
    .tick = mem_tick,
    .free = mem_free,
};

cd_store *cd_memstore_new(const cd_clock *clock, uint64_t fencing_start)
{
    memstore *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->base.ops = &memstore_ops;
    m->clock = clock;
    m->fencing = fencing_start;
    mlock *sentinel = calloc(1, sizeof *sentinel + 1);
    if (!sentinel) {
        free(m);
        return NULL;
    }
    oom = 0;
    new_table_log2 = LOCK_TABLE_LOG2;
    HASH_ADD_KEYPTR(hh, m->locks, sentinel->name, 0, sentinel);
    if (oom) {
        free(sentinel);
        free(m);
        return NULL;
    }
    return &m->base;
}
