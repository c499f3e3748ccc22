/* The embedded store: a hash table of locks, a per-client index and an expiry heap,
 * all owned by the loop thread. */
#ifndef CD_STORE_MEMORY_H
#define CD_STORE_MEMORY_H

#include "store/store.h"
#include "util/clock.h"

/** A new, empty memory store. Fencing tokens start above `fencing_start` (pass the wall
 * clock in µs so that they keep growing across restarts). NULL on allocation failure.
 * The clock must outlive the store. */
cd_store *cd_memstore_new(const cd_clock *clock, uint64_t fencing_start);

#endif
