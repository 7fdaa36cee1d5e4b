/*
 * core/scan_report.c
 *    JSON lines, text and SARIF 2.1.0 for the secrets scanner's findings. See scan_report.h.
 */
#include "scan_report.h"

#include "scan_secrets.h"
#include "textsafe.h"
#include "xalloc.h"

#include <json-c/json.h>
#include <string.h>

#ifndef MRGATE_VERSION
#define MRGATE_VERSION "dev"
#endif

#define SARIF_SCHEMA "https://json.schemastore.org/sarif-2.1.0.json"
#define JSON_FLAGS   (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* Add the string members kv[0]: kv[1], kv[2]: kv[3], ... (n pairs) to o. */
static void add_strings(struct json_object *o, const char *const *kv, size_t n)
{
	for (size_t i = 0; i < n; i++)
		json_object_object_add(o, kv[2 * i], jx_str(kv[2 * i + 1]));
}

/* o as one line of JSON, then o is freed. */
static void put_line(struct buf *out, struct json_object *o)
{
	buf_puts(out, json_object_to_json_string_ext(o, JSON_FLAGS));
	buf_putc(out, '\n');
	json_object_put(o);
}

void scan_report_json_line(struct buf *out, const struct finding *f)
{
	struct json_object *o = jx_object();
	const char *head[] = {"path", f->path};
	const char *rest[] = {
	    "rule_id", f->rule_id, "title",       f->title,       "severity", severity_name(f->severity),
	    "excerpt", f->excerpt, "fingerprint", f->fingerprint,
	};
	add_strings(o, head, 1);
	json_object_object_add(o, "line", jx_int(f->line));
	add_strings(o, rest, 5);
	put_line(out, o);
}

/* s with each control byte as a C escape or an octal byte ("\\n", "\\033"), and each invisible or reordering
 * character (core/textsafe.h) as its octal bytes ("\\342\\200\\256" for U+202E), as git writes it; as_path: also '"'
 * and '\\' as git quotes a path (core.quotePath), and then the whole in double quotes. Either way a newline in a file
 * name cannot start a line of its own, no terminal escape sequence reaches the terminal, and no U+202E turns the
 * rest of the line around. */
static void put_escaped(struct buf *out, const char *s, bool as_path)
{
	static const char esc_in[] = "\a\b\t\n\v\f\r\"\\", esc_out[] = "abtnvfr\"\\";
	const char *end = s + strlen(s);
	long cp = 0;
	bool plain = true;
	for (const unsigned char *p = (const unsigned char *)s; *p && plain; p++)
		plain = *p >= 0x20 && *p != 0x7f && (!as_path || (*p != '"' && *p != '\\')) &&
		        !textsafe_invisible((const char *)p, end, &cp);
	if (plain) {
		buf_puts(out, s);
		return;
	}
	if (as_path)
		buf_putc(out, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		const char *e = strchr(esc_in, *p);
		size_t inv = textsafe_invisible((const char *)p, end, &cp);
		if (inv) {
			for (size_t k = 0; k < inv; k++)
				buf_printf(out, "\\%03o", p[k]);
			p += inv - 1;
		} else if (e && *e && (as_path || *p < 0x20))
			buf_printf(out, "\\%c", esc_out[e - esc_in]);
		else if (*p < 0x20 || *p == 0x7f)
			buf_printf(out, "\\%03o", *p);
		else
			buf_putc(out, (char)*p);
	}
	if (as_path)
		buf_putc(out, '"');
}

void scan_report_text(struct buf *out, const struct finding *f)
{
	put_escaped(out, f->path, true);
	buf_printf(out, ":%ld: %s %s: %s\n", f->line, severity_name(f->severity), f->rule_id, f->title);
	if (f->excerpt && *f->excerpt) {
		buf_puts(out, "    ");
		put_escaped(out, f->excerpt, false);
		buf_putc(out, '\n');
	}
}

static const char *sarif_level(enum severity s)
{
	return s >= SEV_HIGH ? "error" : s == SEV_MEDIUM ? "warning" : "note";
}

/* A score scan_sarif_severity_from_score() maps back to s. */
static const char *sarif_score(enum severity s)
{
	switch (s) {
	case SEV_CRITICAL: return "9.5";
	case SEV_HIGH: return "8.0";
	case SEV_MEDIUM: return "5.5";
	default: return "2.0";
	}
}

/* A relative URI reference for a path: RFC 3986 unreserved characters and '/' kept, every other byte %XX. */
static struct json_object *path_uri(const char *path)
{
	static const char hex[] = "0123456789ABCDEF";
	struct buf b = {0};
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~/", *p)) {
			buf_putc(&b, (char)*p);
		} else {
			buf_putc(&b, '%');
			buf_putc(&b, hex[*p >> 4]);
			buf_putc(&b, hex[*p & 15]);
		}
	}
	struct json_object *s = jx_strn(buf_str(&b), b.len);
	buf_free(&b);
	return s;
}

static struct json_object *text_obj(const char *s)
{
	struct json_object *o = jx_object();
	json_object_object_add(o, "text", jx_str(s));
	return o;
}

static struct json_object *props_score(enum severity s)
{
	struct json_object *p = jx_object();
	json_object_object_add(p, "security-severity", jx_str(sarif_score(s)));
	return p;
}

static struct json_object *sarif_rules(void)
{
	struct json_object *rules = jx_array();
	for (size_t i = 0; i < scan_secrets_rule_count(); i++) {
		const struct scan_secrets_rule_info *ri = scan_secrets_rule(i);
		struct json_object *r = jx_object(), *dc = jx_object(), *props = props_score(ri->severity);
		struct json_object *tags = jx_array();
		const char *names[] = {"id", ri->id, "name", ri->id};
		add_strings(r, names, 2);
		json_object_object_add(r, "shortDescription", text_obj(ri->title));
		json_object_object_add(r, "helpUri", jx_str(ri->source));
		json_object_object_add(dc, "level", jx_str(sarif_level(ri->severity)));
		json_object_object_add(r, "defaultConfiguration", dc);
		json_object_array_add(tags, jx_str("security"));
		json_object_array_add(tags, jx_str("secret"));
		json_object_object_add(props, "tags", tags);
		json_object_object_add(r, "properties", props);
		json_object_array_add(rules, r);
	}
	return rules;
}

static struct json_object *sarif_result(const struct finding *f)
{
	struct json_object *res = jx_object(), *loc = jx_object(), *phys = jx_object(), *art = jx_object();
	struct json_object *region = jx_object(), *locs = jx_array(), *fps = jx_object();
	json_object_object_add(res, "ruleId", jx_str(f->rule_id));
	for (size_t i = 0; i < scan_secrets_rule_count(); i++)
		if (strcmp(scan_secrets_rule(i)->id, f->rule_id) == 0)
			json_object_object_add(res, "ruleIndex", jx_int((int64_t)i));
	json_object_object_add(res, "level", jx_str(sarif_level(f->severity)));
	json_object_object_add(res, "message", text_obj(f->title));
	json_object_object_add(art, "uri", path_uri(f->path));
	json_object_object_add(phys, "artifactLocation", art);
	json_object_object_add(region, "startLine", jx_int(f->line > 0 ? f->line : 1));
	if (f->excerpt && *f->excerpt)
		json_object_object_add(region, "snippet", text_obj(f->excerpt));
	json_object_object_add(phys, "region", region);
	json_object_object_add(loc, "physicalLocation", phys);
	json_object_array_add(locs, loc);
	json_object_object_add(res, "locations", locs);
	json_object_object_add(fps, "mrgate/v1", jx_str(f->fingerprint));
	json_object_object_add(res, "partialFingerprints", fps);
	json_object_object_add(res, "properties", props_score(f->severity));
	return res;
}

struct json_object *scan_report_sarif(const struct finding_list *l)
{
	struct json_object *log = jx_object(), *runs = jx_array(), *run = jx_object(), *tool = jx_object();
	struct json_object *driver = jx_object(), *results = jx_array();
	json_object_object_add(log, "$schema", jx_str(SARIF_SCHEMA));
	json_object_object_add(log, "version", jx_str("2.1.0"));
	json_object_object_add(driver, "name", jx_str("mrgate"));
	json_object_object_add(driver, "version", jx_str(MRGATE_VERSION));
	json_object_object_add(driver, "rules", sarif_rules());
	json_object_object_add(tool, "driver", driver);
	json_object_object_add(run, "tool", tool);
	for (size_t i = 0; l && i < l->count; i++)
		json_object_array_add(results, sarif_result(&l->items[i]));
	json_object_object_add(run, "results", results);
	json_object_array_add(runs, run);
	json_object_object_add(log, "runs", runs);
	return log;
}

void scan_report_rules(struct buf *out)
{
	for (size_t i = 0; i < scan_secrets_rule_count(); i++) {
		const struct scan_secrets_rule_info *ri = scan_secrets_rule(i);
		bool icase = false;
		const char *rx = scan_secrets_rule_regex(i, &icase);
		struct json_object *o = jx_object();
		const char *kv[] = {"id",     ri->id,     "title", ri->title, "severity", severity_name(ri->severity),
		                    "source", ri->source, "regex", rx};
		add_strings(o, kv, 5);
		json_object_object_add(o, "case_insensitive", jx_bool(icase));
		put_line(out, o);
	}
}
