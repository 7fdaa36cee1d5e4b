/*
 * core/metrics.c
 *    A small registry: families (name, type, help) and series (name, labels, value) in arrays under one mutex.
 */
#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FAMILIES 64
#define MAX_SERIES   4096

struct family {
	char name[96];
	char type[12];
	char help[200];
};

struct series {
	char name[96];
	char labels[256];
	double value;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct family families[MAX_FAMILIES];
static int nfamilies;
static struct series series[MAX_SERIES];
static int nseries;

void metrics_describe(const char *name, const char *type, const char *help)
{
	pthread_mutex_lock(&lock);
	for (int i = 0; i < nfamilies; i++)
		if (strcmp(families[i].name, name) == 0)
			goto out;
	if (nfamilies < MAX_FAMILIES) {
		struct family *f = &families[nfamilies++];
		snprintf(f->name, sizeof(f->name), "%s", name);
		snprintf(f->type, sizeof(f->type), "%s", type);
		snprintf(f->help, sizeof(f->help), "%s", help);
	}
out:
	pthread_mutex_unlock(&lock);
}

/* Find or add a series; called with the lock held. NULL when the registry is full. */
static struct series *find(const char *name, const char *labels)
{
	labels = labels ? labels : "";
	for (int i = 0; i < nseries; i++)
		if (strcmp(series[i].name, name) == 0 && strcmp(series[i].labels, labels) == 0)
			return &series[i];
	if (nseries >= MAX_SERIES)
		return NULL;
	struct series *s = &series[nseries++];
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->labels, sizeof(s->labels), "%s", labels);
	s->value = 0;
	return s;
}

void metrics_inc(const char *name, const char *labels, double by)
{
	pthread_mutex_lock(&lock);
	struct series *s = find(name, labels);
	if (s)
		s->value += by;
	pthread_mutex_unlock(&lock);
}

void metrics_set(const char *name, const char *labels, double value)
{
	pthread_mutex_lock(&lock);
	struct series *s = find(name, labels);
	if (s)
		s->value = value;
	pthread_mutex_unlock(&lock);
}

double metrics_get(const char *name, const char *labels)
{
	double v = 0;
	pthread_mutex_lock(&lock);
	labels = labels ? labels : "";
	for (int i = 0; i < nseries; i++)
		if (strcmp(series[i].name, name) == 0 && strcmp(series[i].labels, labels) == 0)
			v = series[i].value;
	pthread_mutex_unlock(&lock);
	return v;
}

__attribute__((format(printf, 4, 5))) static void append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(*buf ? *buf + *len : NULL, *buf ? *cap - *len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (*buf && *len + (size_t)n < *cap) {
			*len += (size_t)n;
			return;
		}
		size_t ncap = (*cap ? *cap * 2 : 4096) + (size_t)n;
		char *nb = realloc(*buf, ncap);
		if (!nb)
			return;
		*buf = nb;
		*cap = ncap;
	}
}

char *metrics_render(void)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	append(&buf, &len, &cap, "%s", "");
	pthread_mutex_lock(&lock);
	for (int f = 0; f < nfamilies; f++) {
		append(&buf, &len, &cap, "# HELP %s %s\n# TYPE %s %s\n", families[f].name, families[f].help,
		       families[f].name, families[f].type);
		for (int i = 0; i < nseries; i++) {
			if (strcmp(series[i].name, families[f].name) != 0)
				continue;
			if (series[i].labels[0])
				append(&buf, &len, &cap, "%s{%s} %.17g\n", series[i].name, series[i].labels,
				       series[i].value);
			else
				append(&buf, &len, &cap, "%s %.17g\n", series[i].name, series[i].value);
		}
	}
	/* Series of undeclared families, untyped. */
	for (int i = 0; i < nseries; i++) {
		int declared = 0;
		for (int f = 0; f < nfamilies && !declared; f++)
			declared = strcmp(series[i].name, families[f].name) == 0;
		if (declared)
			continue;
		if (series[i].labels[0])
			append(&buf, &len, &cap, "%s{%s} %.17g\n", series[i].name, series[i].labels, series[i].value);
		else
			append(&buf, &len, &cap, "%s %.17g\n", series[i].name, series[i].value);
	}
	pthread_mutex_unlock(&lock);
	return buf;
}

void metrics_label_escape(const char *in, char *out, unsigned long cap)
{
	unsigned long j = 0;
	for (; in && *in && j + 3 < cap; in++) {
		if (*in == '\\' || *in == '"') {
			out[j++] = '\\';
			out[j++] = *in;
		} else if (*in == '\n') {
			out[j++] = '\\';
			out[j++] = 'n';
		} else {
			out[j++] = *in;
		}
	}
	if (cap)
		out[j] = '\0';
}
