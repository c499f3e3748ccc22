/* System clock: CLOCK_MONOTONIC for deadlines, CLOCK_REALTIME for what people read. */
#include "clock.h"

#include <time.h>

static uint64_t sys_mono(void *ud)
{
    (void)ud;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int64_t sys_wall(void *ud)
{
    (void)ud;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const cd_clock *cd_clock_system(void)
{
    static const cd_clock sys = {sys_mono, sys_wall, 0};
    return &sys;
}
