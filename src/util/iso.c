/* Time formatting through gmtime_r/strftime; only the milliseconds are ours. */
#include "iso.h"

#include <stdio.h>
#include <time.h>

size_t cd_iso_format(int64_t epoch_ms, char *buf)
{
    time_t secs = (time_t)(epoch_ms / 1000);
    int ms = (int)(epoch_ms % 1000);
    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(buf, CD_ISO_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(buf + n, CD_ISO_LEN - n, ".%03dZ", ms);
    return n;
}
