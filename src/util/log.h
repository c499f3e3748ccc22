/* Leveled logging to stderr, one line per event. */
#ifndef CD_LOG_H
#define CD_LOG_H

enum cd_log_level { CD_LOG_ERROR, CD_LOG_WARN, CD_LOG_INFO, CD_LOG_DEBUG };

/** Parses "error" | "warn" | "info" | "debug"; -1 when unknown. */
int cd_log_parse_level(const char *s);
void cd_log_set_level(enum cd_log_level level);
void cd_log(enum cd_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define cd_log_error(...) cd_log(CD_LOG_ERROR, __VA_ARGS__)
#define cd_log_warn(...)  cd_log(CD_LOG_WARN, __VA_ARGS__)
#define cd_log_info(...)  cd_log(CD_LOG_INFO, __VA_ARGS__)
#define cd_log_debug(...) cd_log(CD_LOG_DEBUG, __VA_ARGS__)

#endif
