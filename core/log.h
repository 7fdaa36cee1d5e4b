/*
 * core/log.h
 *    Structured logs on stderr: one JSON object per line ({"ts","level","msg", ...fields}), or plain text.
 *
 * Design: log_msg() takes a printf-style message; the message is escaped into JSON. Callers never pass secrets:
 * tokens are logged only as their last four characters (see crypto_token_hint()).
 * Threading: safe from any thread; each line is written with one write(2).
 */
#ifndef MRGATE_CORE_LOG_H
#define MRGATE_CORE_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Configure once at start. format_json false gives "ts LEVEL msg" lines. */
void log_init(enum log_level min_level, int format_json);
/* Parse "debug|info|warn|error"; returns -1 when unknown. */
int log_level_parse(const char *s);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
