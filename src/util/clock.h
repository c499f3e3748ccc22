/* The one clock Candado reads. Expiry runs on the monotonic clock; wall time is only printed. */
#ifndef CD_CLOCK_H
#define CD_CLOCK_H

#include <stdint.h>

typedef struct cd_clock {
    uint64_t (*mono_ms)(void *ud); /* CLOCK_MONOTONIC in ms; never goes back */
    int64_t (*wall_ms)(void *ud);  /* Unix epoch ms, for acquiredAt/expiresAt and tokens */
    void *ud;
} cd_clock;

/** The operating system's clocks. Never NULL, never freed. */
const cd_clock *cd_clock_system(void);

static inline uint64_t cd_clock_mono(const cd_clock *c)
{
    return c->mono_ms(c->ud);
}

static inline int64_t cd_clock_wall(const cd_clock *c)
{
    return c->wall_ms(c->ud);
}

#endif
