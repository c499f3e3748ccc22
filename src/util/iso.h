/* ISO-8601 UTC with milliseconds, the way JavaScript's Date#toISOString prints it. */
#ifndef CD_ISO_H
#define CD_ISO_H

#include <stddef.h>
#include <stdint.h>

#define CD_ISO_LEN 32

/** Writes "2024-01-06T12:34:56.789Z" into buf (CD_ISO_LEN bytes); returns its length.
 * Keeps a one-entry cache: not thread-safe (the loop thread, or a single-threaded CLI). */
size_t cd_iso_format(int64_t epoch_ms, char *buf);

#endif
