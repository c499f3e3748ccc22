/* A clock the tests move by hand: no test sleeps. */
#ifndef CD_TEST_FAKE_CLOCK_H
#define CD_TEST_FAKE_CLOCK_H

#include "util/clock.h"

typedef struct fake_time {
    uint64_t mono;
    int64_t wall;
} fake_time;

static uint64_t fake_mono(void *ud)
{
    return ((fake_time *)ud)->mono;
}

static int64_t fake_wall(void *ud)
{
    return ((fake_time *)ud)->wall;
}

static inline cd_clock fake_clock(fake_time *t)
{
    return (cd_clock){fake_mono, fake_wall, t};
}

static inline void fake_advance(fake_time *t, uint64_t ms)
{
    t->mono += ms;
    t->wall += (int64_t)ms;
}

#endif
