/* The memory store with a fake clock: exact expiry, the per-client index, fencing,
 * tokens, extend, list pages and bounded expiry work. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_clock.h"
#include "store/memory.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fixture {
    fake_time t;
    cd_clock clock;
    cd_store *st;
    /* what the last callbacks said */
    cd_grant grant;
    bool ok;
    cd_extension ext;
    bool held;
    cd_lock_view view;
    char client[64];
    size_t count;
    cd_store_stats stats;
    size_t freed[3];
    char freed_name[64];
    size_t page_count;
    char page_names[16][32];
    char cursor[128];
} fixture;

static cd_str S(const char *s)
{
    return (cd_str){s, strlen(s)};
}

static void on_freed(void *ud, cd_str res, enum cd_free_reason why)
{
    fixture *f = ud;
    f->freed[why]++;
    snprintf(f->freed_name, sizeof f->freed_name, "%.*s", (int)res.len, res.ptr);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->t = (fake_time){.mono = 1000, .wall = 1704567890000};
    f->clock = fake_clock(&f->t);
    f->st = cd_memstore_new(&f->clock, 41);
    f->st->on_freed = on_freed;
    f->st->on_freed_ud = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    cd_store_free(f->st);
    free(f);
    return 0;
}

static void grant_cb(void *ud, int err, const cd_grant *g)
{
    assert_int_equal(err, 0);
    ((fixture *)ud)->grant = *g;
}

static void bool_cb(void *ud, int err, bool ok)
{
    assert_int_equal(err, 0);
    ((fixture *)ud)->ok = ok;
}

static void extend_cb(void *ud, int err, const cd_extension *x)
{
    assert_int_equal(err, 0);
    ((fixture *)ud)->ext = *x;
}

static void info_cb(void *ud, int err, const cd_lock_view *v)
{
    fixture *f = ud;
    assert_int_equal(err, 0);
    f->held = v != NULL;
    if (v) {
        f->view = *v;
        snprintf(f->client, sizeof f->client, "%.*s", (int)v->client_id.len, v->client_id.ptr);
    }
}

static void count_cb(void *ud, int err, size_t n)
{
    assert_int_equal(err, 0);
    ((fixture *)ud)->count = n;
}

static void stats_cb(void *ud, int err, const cd_store_stats *st)
{
    assert_int_equal(err, 0);
    fixture *f = ud;
    f->stats = *st;
    f->count = 0;
    for (size_t i = 0; i < st->nclients; i++)
        f->count += st->clients[i].count;
}

static void list_cb(void *ud, int err, const cd_list_page *p)
{
    assert_int_equal(err, 0);
    fixture *f = ud;
    f->page_count = p->count;
    for (size_t i = 0; i < p->count && i < 16; i++)
        snprintf(f->page_names[i], 32, "%.*s", (int)p->locks[i].resource.len,
                 p->locks[i].resource.ptr);
    snprintf(f->cursor, sizeof f->cursor, "%.*s", (int)p->next_cursor.len, p->next_cursor.ptr);
}

static cd_grant acquire(fixture *f, const char *res, const char *client, uint32_t ttl)
{
    assert_int_equal(f->st->ops->acquire(f->st, S(res), S(client), ttl, grant_cb, f), 0);
    return f->grant;
}

static bool release(fixture *f, const char *res, const cd_token *tok)
{
    assert_int_equal(f->st->ops->release(f->st, S(res), tok, bool_cb, f), 0);
    return f->ok;
}

static bool info(fixture *f, const char *res)
{
    assert_int_equal(f->st->ops->info(f->st, S(res), info_cb, f), 0);
    return f->held;
}

static void stats(fixture *f)
{
    assert_int_equal(f->st->ops->stats(f->st, stats_cb, f), 0);
}

static void test_expiry_is_exact(void **state)
{
    fixture *f = *state;
    cd_grant g = acquire(f, "factura:create:FFF1", "a", 100);
    assert_true(g.acquired);
    assert_int_equal(g.ttl, 100);
    assert_int_equal(g.expires_at, f->t.wall + 100);
    assert_int_equal(g.token.ms, f->t.wall);

    fake_advance(&f->t, 99);
    assert_true(info(f, "factura:create:FFF1"));
    assert_int_equal(f->view.remaining, 1);
    cd_grant other = acquire(f, "factura:create:FFF1", "b", 100);
    assert_false(other.acquired);
    assert_int_equal(other.remaining, 1);

    fake_advance(&f->t, 1); /* the TTL's last millisecond has passed */
    assert_false(info(f, "factura:create:FFF1"));
    assert_int_equal(f->freed[CD_FREED_EXPIRED], 1);
    other = acquire(f, "factura:create:FFF1", "b", 100);
    assert_true(other.acquired);
}

static void test_timer_deadline_and_tick(void **state)
{
    fixture *f = *state;
    acquire(f, "a", "c", 300);
    acquire(f, "b", "c", 100);
    assert_int_equal(f->st->ops->next_deadline(f->st), 1100);
    fake_advance(&f->t, 99);
    assert_false(f->st->ops->tick(f->st, 100));
    assert_int_equal(f->freed[CD_FREED_EXPIRED], 0);
    fake_advance(&f->t, 1);
    assert_false(f->st->ops->tick(f->st, 100));
    assert_int_equal(f->freed[CD_FREED_EXPIRED], 1);
    assert_string_equal(f->freed_name, "b");
    assert_int_equal(f->st->ops->next_deadline(f->st), 1300);
    stats(f);
    assert_int_equal(f->stats.total, 1);
}

static void test_bounded_expiry_work(void **state)
{
    fixture *f = *state;
    char name[16];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "r%d", i);
        acquire(f, name, i % 2 ? "odd" : "even", 50);
    }
    fake_advance(&f->t, 50);
    assert_true(f->st->ops->tick(f->st, 3)); /* more to do */
    assert_int_equal(f->freed[CD_FREED_EXPIRED], 3);
    /* not yet cleaned up, but never reported held and counted as expired */
    assert_int_equal(f->st->ops->list(f->st, &(cd_list_query){0}, list_cb, f), 0);
    assert_int_equal(f->page_count, 0);
    assert_true(f->st->ops->tick(f->st, 3));
    assert_true(f->st->ops->tick(f->st, 3));
    assert_false(f->st->ops->tick(f->st, 3));
    assert_int_equal(f->freed[CD_FREED_EXPIRED], 10);
    assert_int_equal(f->st->ops->next_deadline(f->st), UINT64_MAX);
}

static void test_per_client_index(void **state)
{
    fixture *f = *state;
    acquire(f, "f:1", "alpha", 1000);
    acquire(f, "f:2", "alpha", 1000);
    acquire(f, "f:3", "beta", 1000);
    acquire(f, "f:4", "alpha", 1000);
    stats(f);
    assert_int_equal(f->stats.total, 4);
    assert_int_equal(f->stats.nclients, 2);
    assert_int_equal(f->count, 4); /* per-client counts sum to the active locks */

    assert_int_equal(f->st->ops->release_client(f->st, S("alpha"), count_cb, f), 0);
    assert_int_equal(f->count, 3);
    assert_int_equal(f->freed[CD_FREED_CLIENT], 3);
    assert_false(info(f, "f:1"));
    assert_true(info(f, "f:3"));
    stats(f);
    assert_int_equal(f->stats.total, 1);
    assert_int_equal(f->stats.nclients, 1);
    assert_int_equal(f->stats.clients[0].count, 1);

    assert_int_equal(f->st->ops->release_client(f->st, S("nobody"), count_cb, f), 0);
    assert_int_equal(f->count, 0);
}

static void test_fencing_strictly_increases(void **state)
{
    fixture *f = *state;
    uint64_t last = 41;
    for (int i = 0; i < 50; i++) {
        cd_grant g = acquire(f, i % 3 ? "x" : "y", "c", 10);
        if (!g.acquired) {
            fake_advance(&f->t, 10); /* let it expire */
            g = acquire(f, i % 3 ? "x" : "y", "c", 10);
        }
        assert_true(g.acquired);
        assert_true(g.fencing > last);
        last = g.fencing;
        if (i % 2)
            release(f, i % 3 ? "x" : "y", &g.token);
    }
}

static void test_tokens(void **state)
{
    fixture *f = *state;
    cd_grant g = acquire(f, "r", "a", 100);
    cd_token wrong = g.token;
    wrong.rnd[11] ^= 1;
    assert_false(release(f, "r", &wrong));
    cd_token wrong_ms = g.token;
    wrong_ms.ms++;
    assert_false(release(f, "r", &wrong_ms));
    assert_false(release(f, "other", &g.token));
    assert_true(info(f, "r")); /* nothing changed */
    assert_int_equal(f->freed[CD_FREED_RELEASED], 0);

    /* a token from an expired grant never releases a later holder's lock */
    fake_advance(&f->t, 100);
    cd_grant later = acquire(f, "r", "b", 100);
    assert_true(later.acquired);
    assert_false(release(f, "r", &g.token));
    assert_true(info(f, "r"));
    assert_string_equal(f->client, "b");
    assert_true(release(f, "r", &later.token));
    assert_false(info(f, "r"));
    assert_false(release(f, "r", &later.token)); /* only once */
}

static void test_extend(void **state)
{
    fixture *f = *state;
    cd_grant g = acquire(f, "r", "a", 100);
    fake_advance(&f->t, 60);
    assert_int_equal(f->st->ops->extend(f->st, S("r"), &g.token, 500, extend_cb, f), 0);
    assert_true(f->ext.extended);
    assert_int_equal(f->ext.ttl, 500);
    assert_int_equal(f->ext.expires_at, f->t.wall + 500);
    assert_true(info(f, "r"));
    assert_int_equal(f->view.remaining, 500);
    assert_int_equal(f->view.fencing, g.fencing);
    assert_int_equal(f->st->ops->next_deadline(f->st), f->t.mono + 500);

    /* without a ttl: the TTL of the grant */
    assert_int_equal(f->st->ops->extend(f->st, S("r"), &g.token, 0, extend_cb, f), 0);
    assert_int_equal(f->ext.ttl, 100);

    cd_token wrong = g.token;
    wrong.rnd[0] ^= 0x80;
    assert_int_equal(f->st->ops->extend(f->st, S("r"), &wrong, 500, extend_cb, f), 0);
    assert_false(f->ext.extended);

    fake_advance(&f->t, 100); /* expired: cannot be extended */
    assert_int_equal(f->st->ops->extend(f->st, S("r"), &g.token, 500, extend_cb, f), 0);
    assert_false(f->ext.extended);
    assert_false(info(f, "r"));
}

static void test_list_pages(void **state)
{
    fixture *f = *state;
    const char *names[] = {"fa:1", "xx:2", "fa:3", "fa:4", "fa:5"};
    cd_grant grants[5];
    for (int i = 0; i < 5; i++)
        grants[i] = acquire(f, names[i], i == 3 ? "other" : "me", 1000);

    cd_list_query q = {.prefix = S("fa:"), .limit = 2};
    assert_int_equal(f->st->ops->list(f->st, &q, list_cb, f), 0);
    assert_int_equal(f->page_count, 2);
    assert_string_equal(f->page_names[0], "fa:1");
    assert_string_equal(f->page_names[1], "fa:3");
    assert_true(strlen(f->cursor) > 0);

    /* the cursor's lock goes away between pages: the walk still resumes after it */
    release(f, "fa:3", &grants[2].token);
    char cursor[128];
    strcpy(cursor, f->cursor);
    q.cursor = S(cursor);
    assert_int_equal(f->st->ops->list(f->st, &q, list_cb, f), 0);
    assert_int_equal(f->page_count, 2);
    assert_string_equal(f->page_names[0], "fa:4");
    assert_string_equal(f->page_names[1], "fa:5");
    assert_string_equal(f->cursor, ""); /* the last page */

    cd_list_query by_client = {.client_id = S("other")};
    assert_int_equal(f->st->ops->list(f->st, &by_client, list_cb, f), 0);
    assert_int_equal(f->page_count, 1);
    assert_string_equal(f->page_names[0], "fa:4");

    cd_list_query bad = {.cursor = S("not-a-cursor")};
    assert_int_equal(f->st->ops->list(f->st, &bad, list_cb, f), -EINVAL);
}

static void test_stats_counts_backlog_as_expired(void **state)
{
    fixture *f = *state;
    char name[16];
    for (int i = 0; i < 6000; i++) {
        snprintf(name, sizeof name, "r%d", i);
        acquire(f, name, "c", 10);
    }
    acquire(f, "long", "c", 1000);
    acquire(f, "other", "d", 5);
    fake_advance(&f->t, 10);
    stats(f); /* cleans up 1024 on its own, reports the rest as expired */
    assert_int_equal(f->stats.total, 6002 - 1024);
    assert_int_equal(f->stats.expired, 6001 - 1024);
    /* locksByClient counts active locks only, backlog or not: c holds "long", d nothing */
    assert_int_equal(f->stats.nclients, 1);
    assert_string_equal(f->stats.clients[0].client_id.ptr, "c");
    assert_int_equal(f->stats.clients[0].count, 1);
    assert_int_equal(f->count, f->stats.total - f->stats.expired);
    stats(f); /* the scratch counts were reset: the same answer again, less 1024 */
    assert_int_equal(f->stats.clients[0].count, 1);
    assert_int_equal(f->stats.expired, 6001 - 2048);
    while (f->st->ops->tick(f->st, 1000))
        ;
    stats(f);
    assert_int_equal(f->stats.total, 1);
    assert_int_equal(f->stats.expired, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_expiry_is_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_deadline_and_tick, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounded_expiry_work, setup, teardown),
        cmocka_unit_test_setup_teardown(test_per_client_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fencing_strictly_increases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_counts_backlog_as_expired, setup, teardown),
    };
    return cmocka_run_group_tests_name("memstore", tests, NULL, NULL);
}
