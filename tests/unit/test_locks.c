/* The lock layer over the memory store with a fake clock: name rules, first-come
 * first-served waiters, hand-off in the same turn, cancel, wait timeouts, and tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_clock.h"
#include "lock/locks.h"
#include "store/memory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cd_str S(const char *s)
{
    return (cd_str){s, strlen(s)};
}

/* ---- names and tokens ---- */

static void test_name_rules(void **state)
{
    (void)state;
    char long_name[CD_RESOURCE_MAX + 2];
    memset(long_name, 'a', sizeof long_name);
    assert_int_equal(cd_name_check(S("factura:create:FFF1"), 512), CD_NAME_OK);
    assert_int_equal(cd_name_check(S("café ☕ 😀"), 512), CD_NAME_OK);
    assert_int_equal(cd_name_check((cd_str){long_name, 512}, 512), CD_NAME_OK);
    assert_int_equal(cd_name_check((cd_str){long_name, 513}, 512), CD_NAME_TOO_LONG);
    assert_int_equal(cd_name_check(S(""), 512), CD_NAME_EMPTY);
    assert_int_equal(cd_name_check(S("a\nb"), 512), CD_NAME_CONTROL);
    assert_int_equal(cd_name_check(S("a\x1f"), 512), CD_NAME_CONTROL);
    assert_int_equal(cd_name_check(S("a\x7f"), 512), CD_NAME_CONTROL);
    assert_int_equal(cd_name_check((cd_str){"a\0b", 3}, 512), CD_NAME_CONTROL);
    assert_int_equal(cd_name_check(S("\xff"), 512), CD_NAME_UTF8);
    assert_int_equal(cd_name_check(S("\xc0\xaf"), 512), CD_NAME_UTF8);         /* overlong */
    assert_int_equal(cd_name_check(S("\xed\xa0\x80"), 512), CD_NAME_UTF8);     /* surrogate */
    assert_int_equal(cd_name_check(S("\xf4\x90\x80\x80"), 512), CD_NAME_UTF8); /* > 10FFFF */
    assert_int_equal(cd_name_check(S("\xe2\x98"), 512), CD_NAME_UTF8);         /* cut short */
}

static void test_token_text_form(void **state)
{
    (void)state;
    cd_token a, b, parsed;
    cd_token_new(&a, 1704567890123);
    cd_token_new(&b, 1704567890123);
    assert_false(cd_token_equal(&a, &b)); /* 96 random bits: never the same twice */
    char text[CD_TOKEN_MAX_LEN];
    size_t n = cd_token_format(&a, text);
    assert_int_equal(n, strlen("lock-1704567890123-") + 24);
    assert_memory_equal(text, "lock-1704567890123-", 19);
    assert_true(cd_token_parse(&parsed, text, n));
    assert_true(cd_token_equal(&a, &parsed));
    const char *bad[] = {"",
                         "lock-",
                         "lock-1-",
                         "lock-1704567890123-9f86d081884c7d659a2feaa",
                         "lock-1704567890123-9F86D081884C7D659A2FEAA0",
                         "lock-1704567890123-9f86d081884c7d659a2feaa00",
                         "lock--9f86d081884c7d659a2feaa0",
                         "lok-1-9f86d081884c7d659a2feaa0",
                         "lock-1704567890123x9f86d081884c7d659a2feaa0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(cd_token_parse(&parsed, bad[i], strlen(bad[i])));
}

/* ---- waiters ---- */

typedef struct reply {
    bool called;
    int err;
    cd_grant g;
    int order;
} reply;

typedef struct fixture {
    fake_time t;
    cd_clock clock;
    cd_store *st;
    cd_locks *l;
    int next_order;
} fixture;

static fixture *F;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->t = (fake_time){.mono = 5000, .wall = 1704567890000};
    f->clock = fake_clock(&f->t);
    f->st = cd_memstore_new(&f->clock, 0);
    f->l = cd_locks_new(f->st, &f->clock);
    F = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    cd_locks_free(f->l);
    cd_store_free(f->st);
    free(f);
    return 0;
}

static void grant_cb(void *ud, int err, const cd_grant *g)
{
    reply *r = ud;
    assert_false(r->called); /* exactly once */
    r->called = true;
    r->err = err;
    if (g)
        r->g = *g;
    r->order = ++F->next_order;
}

static cd_waiter *acquire(fixture *f, const char *res, const char *client, uint32_t ttl,
                          uint32_t wait, reply *r)
{
    cd_waiter *w = NULL;
    memset(r, 0, sizeof *r);
    assert_int_equal(cd_locks_acquire(f->l, S(res), S(client), ttl, wait, grant_cb, r, &w), 0);
    return w;
}

static void ignore_bool(void *ud, int err, bool ok)
{
    *(bool *)ud = ok;
}

static bool release(fixture *f, const char *res, const cd_token *t)
{
    bool ok = false;
    assert_int_equal(cd_locks_release(f->l, S(res), t, ignore_bool, &ok), 0);
    return ok;
}

static void test_waiters_first_come_first_served(void **state)
{
    fixture *f = *state;
    reply holder, w[5];
    acquire(f, "batch:1", "h", 1000, 0, &holder);
    assert_true(holder.g.acquired);
    for (int i = 0; i < 5; i++) {
        char client[8];
        snprintf(client, sizeof client, "w%d", i);
        assert_non_null(acquire(f, "batch:1", client, 1000, 60000, &w[i]));
        assert_false(w[i].called);
    }
    assert_int_equal(cd_locks_waiting(f->l, S("batch:1")), 5);
    assert_int_equal(cd_locks_waiting_total(f->l), 5);

    cd_token t = holder.g.token;
    for (int i = 0; i < 5; i++) {
        assert_true(release(f, "batch:1", &t));
        /* granted inside the release itself: the lock was never free */
        assert_true(w[i].called);
        assert_true(w[i].g.acquired);
        for (int j = i + 1; j < 5; j++)
            assert_false(w[j].called);
        t = w[i].g.token;
    }
    for (int i = 1; i < 5; i++)
        assert_true(w[i].g.fencing > w[i - 1].g.fencing);
    assert_int_equal(cd_locks_waiting_total(f->l), 0);
    assert_int_equal(cd_locks_counters(f->l)->acquired, 6);
}

static void test_try_never_jumps_the_queue(void **state)
{
    fixture *f = *state;
    reply holder, waiter, try;
    acquire(f, "r", "h", 1000, 0, &holder);
    acquire(f, "r", "w", 1000, 60000, &waiter);
    assert_true(release(f, "r", &holder.g.token));
    assert_true(waiter.g.acquired);
    acquire(f, "r", "t", 1000, 0, &try);
    assert_true(try.called);
    assert_false(try.g.acquired);
    assert_int_equal(try.g.remaining, 1000);
}

static void test_expiry_hands_over_in_the_same_tick(void **state)
{
    fixture *f = *state;
    reply holder, waiter;
    acquire(f, "r", "h", 100, 0, &holder);
    acquire(f, "r", "w", 700, 5000, &waiter);
    assert_int_equal(cd_locks_next_deadline(f->l), 5100);
    fake_advance(&f->t, 100);
    cd_locks_tick(f->l, 100);
    assert_true(waiter.called);
    assert_true(waiter.g.acquired);
    assert_int_equal(waiter.g.ttl, 700); /* the TTL counts from the grant */
    assert_int_equal(cd_locks_counters(f->l)->expired, 1);
}

static void test_cancelled_waiter_is_never_granted(void **state)
{
    fixture *f = *state;
    reply holder, gone, next;
    acquire(f, "r", "h", 1000, 0, &holder);
    cd_waiter *w = acquire(f, "r", "gone", 1000, 60000, &gone);
    acquire(f, "r", "next", 1000, 60000, &next);
    cd_locks_cancel(f->l, w);
    assert_int_equal(cd_locks_waiting(f->l, S("r")), 1);
    assert_true(release(f, "r", &holder.g.token));
    assert_false(gone.called);
    assert_true(next.g.acquired);
}

static void test_wait_timeout(void **state)
{
    fixture *f = *state;
    reply holder, waiter;
    acquire(f, "r", "h", 10000, 0, &holder);
    acquire(f, "r", "w", 1000, 300, &waiter);
    assert_int_equal(cd_locks_next_deadline(f->l), 5300);
    fake_advance(&f->t, 299);
    cd_locks_tick(f->l, 100);
    assert_false(waiter.called);
    fake_advance(&f->t, 1);
    cd_locks_tick(f->l, 100);
    assert_true(waiter.called);
    assert_false(waiter.g.acquired);
    assert_int_equal(waiter.g.remaining, 10000 - 300);
    assert_int_equal(cd_locks_counters(f->l)->wait_timeouts, 1);
    assert_int_equal(cd_locks_waiting_total(f->l), 0);
}

static void ignore_count(void *ud, int err, size_t n)
{
    *(size_t *)ud = n;
}

static void test_release_client_keeps_its_waiters(void **state)
{
    fixture *f = *state;
    reply a1, b1, a2;
    acquire(f, "x", "A", 1000, 0, &a1);
    acquire(f, "y", "B", 1000, 0, &b1);
    acquire(f, "y", "A", 1000, 60000, &a2); /* A also waits for y */
    size_t n = 0;
    assert_int_equal(cd_locks_store(f->l)->ops->release_client(f->st, S("A"), ignore_count, &n), 0);
    assert_int_equal(n, 1);
    assert_false(a2.called);
    assert_int_equal(cd_locks_waiting(f->l, S("y")), 1);
    assert_true(release(f, "y", &b1.g.token));
    assert_true(a2.g.acquired);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_rules),
        cmocka_unit_test(test_token_text_form),
        cmocka_unit_test_setup_teardown(test_waiters_first_come_first_served, setup, teardown),
        cmocka_unit_test_setup_teardown(test_try_never_jumps_the_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_hands_over_in_the_same_tick, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_waiter_is_never_granted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_client_keeps_its_waiters, setup, teardown),
    };
    return cmocka_run_group_tests_name("locks", tests, NULL, NULL);
}
