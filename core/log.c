/*
 * core/log.c
 *    JSON-lines logger on stderr.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static enum log_level min_level = LOG_INFO;
static int as_json = 1;

void log_init(enum log_level level, int format_json)
{
	min_level = level;
	as_json = format_json;
}

int log_level_parse(const char *s)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	for (int i = 0; i < 4; i++)
		if (s && strcasecmp(s, names[i]) == 0)
			return i;
	return -1;
}

/* Append s to buf as JSON string content; returns the new length (never past cap - 1). */
static size_t json_escape(char *buf, size_t len, size_t cap, const char *s)
{
	for (; *s && len + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[len++] = '\\';
			buf[len++] = (char)c;
		} else if (c == '\n') {
			buf[len++] = '\\';
			buf[len++] = 'n';
		} else if (c < 0x20) {
			len += (size_t)snprintf(buf + len, cap - len, "\\u%04x", c);
		} else {
			buf[len++] = (char)c;
		}
	}
	buf[len] = '\0';
	return len;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	if (level < min_level)
		return;

	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char when[80];
	snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(ts.tv_nsec / 1000000) % 1000);

	char line[4600];
	size_t len;
	if (as_json) {
		len = (size_t)snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", when,
		                       names[level]);
		len = json_escape(line, len, sizeof(line) - 4, msg);
		memcpy(line + len, "\"}\n", 4);
		len += 3;
	} else {
		/* control characters escaped as in JSON: a message carrying a user's text (a login name with a newline)
		 * wrote a forged line of its own */
		len = (size_t)snprintf(line, sizeof(line), "%s %-5s ", when, names[level]);
		for (const char *m = msg; *m && len + 8 < sizeof(line); m++) {
			unsigned char c = (unsigned char)*m;
			if (c == '\n')
				len += (size_t)snprintf(line + len, sizeof(line) - len, "\\n");
			else if (c < 0x20 || c == 0x7f)
				len += (size_t)snprintf(line + len, sizeof(line) - len, "\\x%02x", c);
			else
				line[len++] = (char)c;
		}
		line[len++] = '\n';
	}
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}
