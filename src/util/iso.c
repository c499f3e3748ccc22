/* Time formatting through gmtime_r/strftime; only the milliseconds are ours. */
#include "iso.h"

#include <string.h>
#include <time.h>

size_t cd_iso_format(int64_t epoch_ms, char *buf)
{
    /* Most times printed in one second share that second: format it once. */
    static time_t cached_secs = -1;
    static char cached[CD_ISO_LEN];
    static size_t cached_len;
    time_t secs = (time_t)(epoch_ms / 1000);
    int ms = (int)(epoch_ms % 1000);
    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    if (secs != cached_secs) {
        struct tm tm;
        gmtime_r(&secs, &tm);
        cached_len = strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S.", &tm);
        cached_secs = secs;
    }
    memcpy(buf, cached, cached_len);
    buf[cached_len] = (char)('0' + ms / 100);
    buf[cached_len + 1] = (char)('0' + ms / 10 % 10);
    buf[cached_len + 2] = (char)('0' + ms % 10);
    buf[cached_len + 3] = 'Z';
    buf[cached_len + 4] = '\0';
    return cached_len + 4;
}
