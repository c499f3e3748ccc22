/* stderr logger: ISO timestamp, level, message. */
#include "log.h"

#include "clock.h"
#include "iso.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static enum cd_log_level current = CD_LOG_INFO;
static const char *const names[] = {"error", "warn", "info", "debug"};

int cd_log_parse_level(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

void cd_log_set_level(enum cd_log_level level)
{
    current = level;
}

void cd_log(enum cd_log_level level, const char *fmt, ...)
{
    if (level > current)
        return;
    char ts[CD_ISO_LEN];
    cd_iso_format(cd_clock_wall(cd_clock_system()), ts);
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s %-5s %s\n", ts, names[level], line);
}
