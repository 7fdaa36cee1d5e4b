/*
 * core/metrics.c
 *    A small registry: families (name, type, help) and series (name, labels, value) in arrays under one mutex.
 */
#include "metrics.h"

#include "buf.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FAMILIES 64
#define MAX_SERIES   4096

/* Names, labels and help texts are copies (xstrdup), kept for the life of the process. */
struct family {
	char *name;
	char *type;
	char *help;
};

struct series {
	char *name;
	char *labels;
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
		f->name = xstrdup(name);
		f->type = xstrdup(type);
		f->help = xstrdup(help);
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
	s->name = xstrdup(name);
	s->labels = xstrdup(labels);
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

static void render_series(struct buf *b, const struct series *s)
{
	if (s->labels[0])
		buf_printf(b, "%s{%s} %.17g\n", s->name, s->labels, s->value);
	else
		buf_printf(b, "%s %.17g\n", s->name, s->value);
}

char *metrics_render(void)
{
	struct buf b = {0};
	pthread_mutex_lock(&lock);
	for (int f = 0; f < nfamilies; f++) {
		buf_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", families[f].name, families[f].help, families[f].name,
		           families[f].type);
		for (int i = 0; i < nseries; i++)
			if (strcmp(series[i].name, families[f].name) == 0)
				render_series(&b, &series[i]);
	}
	/* Series of undeclared families, untyped. */
	for (int i = 0; i < nseries; i++) {
		int declared = 0;
		for (int f = 0; f < nfamilies && !declared; f++)
			declared = strcmp(series[i].name, families[f].name) == 0;
		if (!declared)
			render_series(&b, &series[i]);
	}
	pthread_mutex_unlock(&lock);
	return buf_steal(&b);
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
