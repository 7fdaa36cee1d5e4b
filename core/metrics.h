/*
 * core/metrics.h
 *    Process-wide Prometheus counters and gauges, rendered in the text exposition format for /metrics.
 *
 * Design: a metric is identified by its name and a label string written in Prometheus syntax without braces,
 * e.g. metrics_inc("mrgate_http_requests_total", "route=\"/api/session\",status=\"200\"", 1). Families are declared
 * once with their help text and type so that the rendering carries # HELP and # TYPE lines. Gauges whose value
 * lives elsewhere (database pool) are set just before rendering by whoever owns them.
 * Threading: all functions are thread-safe.
 * Ownership: metrics_render returns a malloc'd string the caller frees.
 */
#ifndef MRGATE_CORE_METRICS_H
#define MRGATE_CORE_METRICS_H

void metrics_describe(const char *name, const char *type, const char *help);
void metrics_inc(const char *name, const char *labels, double by);
void metrics_set(const char *name, const char *labels, double value);
/* Value of one series (0 when absent); for tests and summaries. */
double metrics_get(const char *name, const char *labels);
char *metrics_render(void);
/* Escape a label value (backslash, quote, newline) into out. */
void metrics_label_escape(const char *in, char *out, unsigned long cap);

#endif
