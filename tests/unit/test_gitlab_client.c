/*
 * tests/unit/test_gitlab_client.c
 *    The GitLab client against a scripted local HTTP(S) server (tests/lib/fakehttp.py): pagination, retries,
 *    resets, POST safety, 429 pauses, error messages, size cap, timeouts, unreachable, TLS, bounded fan-out,
 *    metrics, and that the token never reaches a message or the log.
 */
#include "gitlab.h"
#include "jsonx.h"
#include "log.h"
#include "ratelimit.h"
#include "testlib.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char TOKEN[] = "glpat-Sup3rSecretT0kenValue42xyz";

struct server {
	pid_t pid;
	long port;
	char base[64];
	char cert[512];
};

static struct server plain, tls;
static char log_path[] = "/tmp/mrgate-gitlab-test-XXXXXX";
static int saved_stderr = -1;

/* 17,408 bytes of a query value: a Link header longer than the client keeps (16 KiB). */
#define A64  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define A1K  A64 A64 A64 A64 A64 A64 A64 A64 A64 A64 A64 A64 A64 A64 A64 A64
#define A17K A1K A1K A1K A1K A1K A1K A1K A1K A1K A1K A1K A1K A1K A1K A1K A1K A1K

/*
 * The script, with ' for " (JSON inside a C string reads better so). \\' gives a JSON \" inside strings.
 */
static const char SCRIPT[] =
    "{'token': '%s', 'rules': ["
    /* pagination over x-next-page, with a lying x-total-pages on page 1 */
    "{'name': 'p3', 'method': 'GET', 'path': '/api/v4/groups/7/projects',"
    "  'params': {'page': '3', 'per_page': '2', 'order_by': 'id'},"
    "  'responses': [{'json': [{'id': 5}], 'headers': {'X-Next-Page': '', 'X-Page': '3'}}]},"
    "{'name': 'p2', 'method': 'GET', 'path': '/api/v4/groups/7/projects',"
    "  'params': {'page': '2', 'per_page': '2', 'order_by': 'id'},"
    "  'responses': [{'json': [{'id': 3}, {'id': 4}], 'headers': {'X-Next-Page': '3'}}]},"
    "{'name': 'p1', 'method': 'GET', 'path': '/api/v4/groups/7/projects', 'params': {'page': null},"
    "  'responses': [{'json': [{'id': 1}, {'id': 2}], 'headers': {'X-Next-Page': '2', 'X-Total-Pages': '1'}}]},"
    /* keyset pagination: Link only */
    "{'name': 'k2', 'path': '/api/v4/projects', 'params': {'id_after': '2'},"
    "  'responses': [{'json': [{'id': 3}], 'headers': {'Link': '<$BASE/api/v4/projects?pagination=keyset>; "
    "rel=\\'first\\''}}]},"
    "{'name': 'k1', 'path': '/api/v4/projects', 'params': {'id_after': null},"
    "  'responses': [{'json': [{'id': 1}, {'id': 2}], 'headers': {'Link': "
    "'<$BASE/api/v4/projects?pagination=keyset&per_page=2>; rel=\\'first\\', "
    "<https://elsewhere.example/api/v4/projects?pagination=keyset&per_page=2&id_after=2>; rel=\\'next\\''}}]},"
    /* a next link too long to keep: the list must fail, not end after its first page */
    "{'name': 'klong', 'path': '/api/v4/longlink', 'responses': [{'json': [{'id': 1}], 'headers': {'Link': "
    "'<$BASE/api/v4/longlink?after=" A17K ">; rel=\\'next\\''}}]},"
    /* retries */
    "{'name': 'flaky5xx', 'path': '/api/v4/projects/1', 'responses': [{'status': 500}, {'status': 502},"
    "  {'status': 503}, {'json': {'id': 1}}]},"
    "{'name': 'always502', 'path': '/api/v4/projects/2', 'responses': [{'status': 502, 'body': "
    "'<html>Bad Gateway</html>'}]},"
    "{'name': 'resetget', 'path': '/api/v4/projects/3', 'responses': [{'action': 'reset'}, {'json': {'id': 3}}]},"
    "{'name': 'resetpost', 'method': 'POST', 'path': '/api/v4/projects/4/hooks', 'responses': [{'action': 'reset'},"
    "  {'status': 201, 'json': {'id': 9}}]},"
    "{'name': 'post502', 'method': 'POST', 'path': '/api/v4/projects/5/hooks', 'responses': [{'status': 502},"
    "  {'status': 201, 'json': {'id': 9}}]},"
    "{'name': 'idempost', 'method': 'POST', 'path': '/api/v4/projects/6/statuses/abc1234',"
    "  'responses': [{'action': 'reset'}, {'status': 201, 'json': {'id': 1}}]},"
    /* 429 */
    "{'name': 'r429s', 'path': '/api/v4/projects/10', 'responses': [{'status': 429, 'headers': {'Retry-After': "
    "'1'}, 'body': 'Retry later'}, {'json': {'id': 10}}]},"
    "{'name': 'r429d', 'path': '/api/v4/projects/11', 'responses': [{'status': 429, 'headers': {'Retry-After': "
    "'$HTTPDATE+2'}, 'body': 'Retry later'}, {'json': {'id': 11}}]},"
    "{'name': 'r429reset', 'path': '/api/v4/projects/12', 'responses': [{'status': 429, 'headers': "
    "{'RateLimit-Reset': '$NOW+1'}, 'body': 'Retry later'}, {'json': {'id': 12}}]},"
    "{'name': 'r429long', 'path': '/api/v4/projects/13', 'responses': [{'status': 429, 'headers': "
    "{'Retry-After': '3600'}, 'body': 'Retry later'}]},"
    "{'name': 'ok', 'path': '/api/v4/ok', 'responses': [{'json': {'ok': true}}]},"
    "{'name': 'rl0', 'path': '/api/v4/rl0', 'responses': [{'json': [], 'headers': {'RateLimit-Remaining': '0',"
    "  'RateLimit-Reset': '$NOW+1'}}]},"
    /* hostile: a reset so far away that reset * 1000 wraps negative in int64 */
    "{'name': 'rlhuge', 'path': '/api/v4/rlhuge', 'responses': [{'json': [], 'headers': {'RateLimit-Remaining': "
    "'0', 'RateLimit-Reset': '10000000000000000'}}]},"
    /* error bodies, verbatim from GITLAB-API.md 1.1 */
    "{'path': '/api/v4/e/unknown', 'responses': [{'status': 401, 'json': {'message': '401 Unauthorized'}}]},"
    "{'path': '/api/v4/e/expired', 'responses': [{'status': 401, 'headers': {'WWW-Authenticate': 'Bearer "
    "realm=\\'The API\\', error=\\'invalid_token\\''}, 'json': {'error': 'invalid_token', 'error_description': "
    "'Token is expired. You can either do re-authorization or token refresh.'}}]},"
    "{'path': '/api/v4/e/revoked', 'responses': [{'status': 401, 'json': {'error': 'invalid_token', "
    "'error_description': 'Token was revoked. You have to re-authorize from the user.'}}]},"
    "{'path': '/api/v4/e/scope', 'responses': [{'status': 403, 'json': {'error': 'insufficient_scope', "
    "'error_description': 'The request requires higher privileges than provided by the access token.', "
    "'scope': 'api'}}]},"
    "{'path': '/api/v4/e/forbidden', 'responses': [{'status': 403, 'json': {'message': '403 Forbidden'}}]},"
    "{'path': '/api/v4/e/notfound', 'responses': [{'status': 404, 'json': {'message': '404 Project Not Found'}}]},"
    "{'path': '/api/v4/e/conflict', 'responses': [{'status': 409, 'json': {'message': '409 Conflict: Resource "
    "lock'}}]},"
    "{'path': '/api/v4/e/invalid', 'responses': [{'status': 400, 'json': {'message': {'bio': ['is too long "
    "(maximum is 255 characters)']}}}]},"
    "{'path': '/api/v4/e/echo', 'responses': [{'status': 422, 'json': {'message': 'token %s is not "
    "allowed here'}}]},"
    "{'path': '/api/v4/e/html', 'responses': [{'status': 200, 'headers': {'Content-Type': 'text/html'}, 'body': "
    "'<html>sign in</html>'}]},"
    /* size, time */
    "{'path': '/api/v4/big', 'responses': [{'body_bytes': 4096}]},"
    "{'path': '/api/v4/bigchunked', 'responses': [{'body_bytes': 4096, 'chunked': true}]},"
    "{'path': '/api/v4/small', 'responses': [{'body_bytes': 500}]},"
    "{'name': 'stall', 'path': '/api/v4/stall', 'responses': [{'action': 'stall', 'stall': 3}]},"
    /* fan-out */
    "{'name': 'flakymulti', 'path': '/api/v4/flaky/1', 'responses': [{'status': 503}, {'echo': true}]},"
    "{'name': 'slow', 'path_prefix': '/api/v4/slow/', 'responses': [{'echo': true, 'delay': 0.05}]},"
    "{'name': 'fast', 'path_prefix': '/api/v4/fast/', 'responses': [{'echo': true}]},"
    "{'name': 'slower', 'path_prefix': '/api/v4/slower/', 'responses': [{'echo': true, 'delay': 0.6}]}"
    "]}";

static const char TLS_SCRIPT[] = "{'token': '%s', 'rules': [{'path': '/api/v4/user', 'responses': [{'json': "
                                 "{'id': 1, 'username': 'bot'}}]}]}";

/* Write the script (quotes swapped, token filled in) to a temporary file; returns its path in buf. */
static bool write_script(const char *tmpl, char *buf, size_t cap)
{
	size_t n = strlen(tmpl) + 2 * sizeof(TOKEN) + 1;
	char *s = malloc(n);
	bool ok = false;
	if (!s)
		return false;
	snprintf(s, n, tmpl, TOKEN, TOKEN);
	for (char *p = s; *p; p++)
		if (*p == '\'')
			*p = '"';
	snprintf(buf, cap, "/tmp/mrgate-fakehttp-XXXXXX");
	int fd = mkstemp(buf);
	if (fd >= 0) {
		size_t len = strlen(s);
		ok = write(fd, s, len) == (ssize_t)len;
		close(fd);
	}
	free(s);
	return ok;
}

/* Start tests/lib/fakehttp.py and read its {"port", "cert"} line. */
static bool server_start(const char *script_tmpl, bool use_tls, struct server *s)
{
	char script[256], prog[1024];
	const char *src = getenv("MRGATE_SOURCE_DIR");
	int pfd[2];
	bool ok = false;
	struct json_object *j = NULL;

	memset(s, 0, sizeof(*s));
	snprintf(prog, sizeof(prog), "%s/tests/lib/fakehttp.py", src ? src : ".");
	if (!write_script(script_tmpl, script, sizeof(script)) || pipe(pfd) != 0)
		return false;
	s->pid = fork();
	if (s->pid == 0) {
		dup2(pfd[1], STDOUT_FILENO);
		close(pfd[0]);
		close(pfd[1]);
		if (use_tls)
			execl("/usr/bin/python3", "python3", prog, "--port", "0", "--script", script, "--tls",
			      (char *)NULL);
		else
			execl("/usr/bin/python3", "python3", prog, "--port", "0", "--script", script, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	char line[1024];
	size_t len = 0;
	struct pollfd p = {.fd = pfd[0], .events = POLLIN};
	while (len < sizeof(line) - 1 && poll(&p, 1, 20000) == 1) {
		ssize_t r = read(pfd[0], line + len, 1);
		if (r <= 0 || line[len] == '\n')
			break;
		len++;
	}
	line[len] = '\0';
	close(pfd[0]);
	const char *cert = NULL;
	int64_t port = 0;
	if (jsonx_parse(line, len, &j) == CORE_OK && jsonx_int64(j, "port", &port) && port > 0) {
		s->port = (long)port;
		snprintf(s->base, sizeof(s->base), "%s://127.0.0.1:%ld", use_tls ? "https" : "http", s->port);
		if (jsonx_str(j, "cert", &cert))
			snprintf(s->cert, sizeof(s->cert), "%s", cert);
		ok = true;
	} else {
		fprintf(stderr, "fakehttp did not start: %s\n", line);
	}
	json_object_put(j);
	unlink(script);
	return ok;
}

static void server_stop(struct server *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
}

/* --- control requests to the fake server (plain libcurl, not the client under test) ---------------------------- */

struct buf {
	char *p;
	size_t n;
};

static size_t on_data(char *d, size_t sz, size_t nm, void *u)
{
	struct buf *b = u;
	char *np = realloc(b->p, b->n + sz * nm + 1);
	if (!np)
		return 0;
	b->p = np;
	memcpy(b->p + b->n, d, sz * nm);
	b->n += sz * nm;
	b->p[b->n] = '\0';
	return sz * nm;
}

static struct json_object *ctl(const char *method, const char *path)
{
	char url[256];
	struct buf b = {0};
	struct json_object *j = NULL;
	CURL *h = curl_easy_init();
	snprintf(url, sizeof(url), "%s%s", plain.base, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	if (curl_easy_perform(h) == CURLE_OK && b.n > 0)
		jsonx_parse(b.p, b.n, &j);
	curl_easy_cleanup(h);
	free(b.p);
	return j;
}

static long hits(const char *name)
{
	struct json_object *st = ctl("GET", "/_ctl/stats");
	int64_t n = 0;
	if (!jsonx_int64(jsonx_get(st, "hits"), name, &n))
		n = 0;
	json_object_put(st);
	return (long)n;
}

static long stat_int(const char *key)
{
	struct json_object *st = ctl("GET", "/_ctl/stats");
	int64_t n = -1;
	jsonx_int64(st, key, &n);
	json_object_put(st);
	return (long)n;
}

/* --- helpers --------------------------------------------------------------------------------------------------- */

struct gl_cfg {
	const char *base;
	const char *ca;
	const char *ca_pem;
	int retries;
	long total_ms;
	size_t max_bytes;
	int rpm;
	long max_pause_ms;
};

static struct gitlab *new_gl(struct gl_cfg c)
{
	struct gitlab_opts o;
	char err[256];
	memset(&o, 0, sizeof(o));
	o.base_url = c.base ? c.base : plain.base;
	o.token = TOKEN;
	o.ca_bundle_file = c.ca;
	o.ca_bundle_pem = c.ca_pem;
	o.connect_timeout_ms = 2000;
	o.total_timeout_ms = c.total_ms ? c.total_ms : 5000;
	o.max_response_bytes = c.max_bytes;
	o.requests_per_minute = c.rpm;
	o.max_retries = c.retries;
	o.backoff_base_ms = 10;
	o.backoff_max_ms = 80;
	o.max_pause_ms = c.max_pause_ms ? c.max_pause_ms : 10000;
	struct gitlab *gl = gitlab_new(&o, err, sizeof(err));
	if (!gl)
		fprintf(stderr, "gitlab_new: %s\n", err);
	return gl;
}

/*
 * The fixture of most tests: a client made from a gl_cfg, handed to the test and freed after it (also when a
 * REQUIRE returned early). RUN_GL(test_x, .retries = 2) runs test_x(gl) under testlib_run.
 */
static struct {
	struct gl_cfg cfg;
	void (*fn)(struct gitlab *gl);
} with;

static void with_client(void)
{
	struct gitlab *gl = new_gl(with.cfg);
	REQUIRE(gl);
	with.fn(gl);
	gitlab_free(gl);
}

/* One GET of path by a client made from cfg (and freed), checked to end in want; the response is the caller's. */
static struct gitlab_response *fresh_get(struct gl_cfg cfg, const char *path, enum core_status want)
{
	struct gitlab_response *r = NULL;
	struct gitlab *gl = new_gl(cfg);
	CHECK(gl);
	if (gl)
		CHECK_INT(gitlab_request(gl, "GET", path, NULL, &r), want);
	gitlab_free(gl);
	return r;
}

#define RUN_GL(fn_, ...) (with.cfg = (struct gl_cfg){__VA_ARGS__}, with.fn = (fn_), testlib_run(#fn_, with_client))

static int64_t now_ms(void)
{
	return ratelimit_now_ms();
}

static bool has(const char *hay, const char *needle)
{
	return hay && strstr(hay, needle) != NULL;
}

/* Every message a caller may show must be free of the token. */
static void check_clean(const struct gitlab_response *r)
{
	CHECK(r != NULL);
	if (r)
		CHECK(!has(r->message, TOKEN));
}

/* --- tests ----------------------------------------------------------------------------------------------------- */

static void test_new_rejects_bad_options(void)
{
	struct gitlab_opts o;
	char err[256];
	memset(&o, 0, sizeof(o));
	o.base_url = "ftp://gitlab.example.com";
	o.token = TOKEN;
	CHECK(gitlab_new(&o, err, sizeof(err)) == NULL);
	CHECK(has(err, "https://"));
	o.base_url = "https://gitlab.example.com/";
	o.token = "glpat-abc\r\nX-Evil: 1";
	CHECK(gitlab_new(&o, err, sizeof(err)) == NULL);
	CHECK(has(err, "control characters") && !has(err, "glpat"));
	o.token = TOKEN;
	o.ca_bundle_file = "/nonexistent/ca.pem";
	CHECK(gitlab_new(&o, err, sizeof(err)) == NULL);
	CHECK(has(err, "CA bundle"));
	o.ca_bundle_file = NULL;
	o.base_url = "https://gitlab.example.com/api/v4/";
	struct gitlab *gl = gitlab_new(&o, err, sizeof(err));
	REQUIRE(gl);
	CHECK_STR(gitlab_api_root(gl), "https://gitlab.example.com/api/v4");
	struct gitlab_response *r = NULL;
	CHECK_INT(gitlab_request(gl, "GET", "projects", NULL, &r), CORE_EINVAL);
	CHECK(r && r->kind == GITLAB_ERR_REQUEST);
	gitlab_response_free(r);
	CHECK_INT(gitlab_request(gl, "BREW", "/projects", NULL, &r), CORE_EINVAL);
	gitlab_response_free(r);
	CHECK_INT(gitlab_request(gl, "GET", "/projects\r\nX: y", NULL, &r), CORE_EINVAL);
	gitlab_response_free(r);
	gitlab_free(gl);
	gitlab_free(NULL);
}

struct collected {
	int pages;
	int64_t ids[16];
	int n;
};

static enum core_status collect(struct json_object *page, void *user)
{
	struct collected *c = user;
	c->pages++;
	for (size_t i = 0; i < json_object_array_length(page) && c->n < 16; i++) {
		int64_t id;
		if (jsonx_int64(json_object_array_get_idx(page, i), "id", &id))
			c->ids[c->n++] = id;
	}
	return CORE_OK;
}

static void test_paginate_x_next_page(struct gitlab *gl)
{
	struct collected c = {0};
	struct gitlab_response *err = NULL;
	CHECK_INT(gitlab_paginate(gl, "/groups/7/projects?per_page=2&order_by=id", collect, &c, &err), CORE_OK);
	CHECK(err == NULL);
	CHECK_INT(c.pages, 3); /* x-total-pages said 1: it is ignored */
	CHECK_INT(c.n, 5);
	for (int i = 0; i < c.n; i++)
		CHECK_INT(c.ids[i], i + 1);
	CHECK_INT(hits("p1") + hits("p2") + hits("p3"), 3);
	gitlab_response_free(err);
}

static void test_paginate_link_only(struct gitlab *gl)
{
	struct collected c = {0};
	struct gitlab_response *err = NULL;
	/* The next link names another host: only its path is used, against our own API root. */
	CHECK_INT(gitlab_paginate(gl, "/projects?pagination=keyset&per_page=2&order_by=id", collect, &c, &err),
	          CORE_OK);
	CHECK_INT(c.pages, 2);
	CHECK_INT(c.n, 3);
	CHECK_INT(c.ids[2], 3);
	CHECK_INT(hits("k1"), 1);
	CHECK_INT(hits("k2"), 1);
	gitlab_response_free(err);

	/* A callback failure stops the walk and is returned; a non-list is CORE_EUPSTREAM with a response. */
	CHECK_INT(gitlab_paginate(gl, "/ok", collect, &c, &err), CORE_EUPSTREAM);
	CHECK(err && err->kind == GITLAB_ERR_BAD_RESPONSE);
	gitlab_response_free(err);
	/* A Link header longer than the client keeps is refused, never cut (a cut one ended the list silently). */
	struct collected c2 = {0};
	CHECK_INT(gitlab_paginate(gl, "/longlink", collect, &c2, &err), CORE_EUPSTREAM);
	CHECK(err && err->kind == GITLAB_ERR_BAD_RESPONSE);
	CHECK_INT(c2.pages, 0);
	CHECK_INT(hits("klong"), 1);
	gitlab_response_free(err);
	CHECK_INT(gitlab_paginate(gl, "/e/notfound", collect, &c, &err), CORE_ENOTFOUND);
	CHECK(err && err->http_status == 404);
	gitlab_response_free(err);
}

static void test_retry_5xx(struct gitlab *gl)
{
	struct gitlab_response *r = NULL;
	CHECK_INT(gitlab_request(gl, "GET", "/projects/1", NULL, &r), CORE_OK);
	REQUIRE(r);
	int64_t id = 0;
	CHECK(jsonx_int64(r->json, "id", &id) && id == 1);
	CHECK_INT(r->attempts, 4);
	CHECK_INT(hits("flaky5xx"), 4);
	gitlab_response_free(r);

	struct gitlab *gl2 = new_gl((struct gl_cfg){.retries = 2});
	REQUIRE(gl2);
	CHECK_INT(gitlab_request(gl2, "GET", "/projects/2", NULL, &r), CORE_EUPSTREAM);
	CHECK(r && r->kind == GITLAB_ERR_SERVER && r->http_status == 502);
	CHECK(r && has(r->message, "502") && has(r->message, "Bad Gateway"));
	CHECK_INT(hits("always502"), 3);
	gitlab_response_free(r);

	/* Metrics: by method, template and status, with retries. */
	struct gitlab_metrics *m = NULL;
	REQUIRE(gitlab_metrics_snapshot(gl, &m) == CORE_OK);
	uint64_t n500 = 0, n502 = 0, n200 = 0;
	for (size_t i = 0; i < m->n_rows; i++) {
		if (strcmp(m->rows[i].method, "GET") != 0 || strcmp(m->rows[i].endpoint, "/projects/:id") != 0)
			continue;
		if (m->rows[i].status == 500)
			n500 += m->rows[i].count;
		if (m->rows[i].status == 502)
			n502 += m->rows[i].count;
		if (m->rows[i].status == 200)
			n200 += m->rows[i].count;
	}
	CHECK_INT(n500, 1);
	CHECK_INT(n502, 1);
	CHECK_INT(n200, 1);
	CHECK_INT(m->calls, 4);
	CHECK_INT(m->retries, 3);
	gitlab_metrics_free(m);
	gitlab_free(gl2);
}

static void test_reset_get_retried_post_not(struct gitlab *gl)
{
	struct gitlab_response *r = NULL;
	CHECK_INT(gitlab_request(gl, "GET", "/projects/3", NULL, &r), CORE_OK);
	CHECK_INT(hits("resetget"), 2);
	gitlab_response_free(r);

	struct json_object *body = json_object_new_object();
	json_object_object_add(body, "url", json_object_new_string("https://mrgate.example/hooks/gitlab"));
	CHECK_INT(gitlab_request(gl, "POST", "/projects/4/hooks", body, &r), CORE_EUNAVAIL);
	CHECK(r && r->kind == GITLAB_ERR_MAYBE_APPLIED);
	CHECK(r && has(r->message, "may have been applied") && has(r->message, "re-read"));
	CHECK_INT(hits("resetpost"), 1);
	check_clean(r);
	gitlab_response_free(r);

	/* A 5xx answer to a POST is not repeated either. */
	CHECK_INT(gitlab_request(gl, "POST", "/projects/5/hooks", body, &r), CORE_EUPSTREAM);
	CHECK(r && r->kind == GITLAB_ERR_MAYBE_APPLIED && r->http_status == 502);
	CHECK_INT(hits("post502"), 1);
	gitlab_response_free(r);

	/* ... unless the caller says the POST is safe to repeat. */
	CHECK_INT(gitlab_request_ex(gl, "POST", "/projects/6/statuses/abc1234", body, GITLAB_CALL_IDEMPOTENT, &r),
	          CORE_OK);
	CHECK(r && r->http_status == 201);
	CHECK_INT(hits("idempost"), 2);
	gitlab_response_free(r);
	json_object_put(body);

	struct gitlab_metrics *m = NULL;
	REQUIRE(gitlab_metrics_snapshot(gl, &m) == CORE_OK);
	CHECK_INT(m->maybe_applied, 2);
	gitlab_metrics_free(m);
}

struct req_thread {
	struct gitlab *gl;
	const char *path;
	enum core_status st;
	int64_t end_ms;
};

static void *run_req(void *arg)
{
	struct req_thread *t = arg;
	struct gitlab_response *r = NULL;
	t->st = gitlab_request(t->gl, "GET", t->path, NULL, &r);
	t->end_ms = now_ms();
	gitlab_response_free(r);
	return NULL;
}

static void test_429_retry_after_pauses_everyone(struct gitlab *gl)
{
	int64_t t0 = now_ms();
	struct req_thread a = {.gl = gl, .path = "/projects/10"};
	pthread_t th;
	REQUIRE(pthread_create(&th, NULL, run_req, &a) == 0);
	struct timespec ts = {.tv_sec = 0, .tv_nsec = 300 * 1000000L};
	nanosleep(&ts, NULL);
	/* Another caller of the same GitLab, on another endpoint, waits for the pause too. */
	struct gitlab_response *r = NULL;
	CHECK_INT(gitlab_request(gl, "GET", "/ok", NULL, &r), CORE_OK);
	int64_t b_end = now_ms();
	gitlab_response_free(r);
	pthread_join(th, NULL);
	CHECK_INT(a.st, CORE_OK);
	CHECK(a.end_ms - t0 >= 900);
	CHECK(b_end - t0 >= 900);
	CHECK(a.end_ms - t0 < 4000);
	CHECK_INT(hits("r429s"), 2);
	struct gitlab_metrics *m = NULL;
	REQUIRE(gitlab_metrics_snapshot(gl, &m) == CORE_OK);
	CHECK_INT(m->throttled, 1);
	gitlab_metrics_free(m);
}

static void test_429_http_date_and_ratelimit_reset(struct gitlab *gl)
{
	struct gitlab_response *r = NULL;
	int64_t t0 = now_ms();
	CHECK_INT(gitlab_request(gl, "GET", "/projects/11", NULL, &r), CORE_OK);
	int64_t el = now_ms() - t0;
	CHECK(el >= 900 && el < 4000); /* an HTTP date 2 s ahead, at 1 s granularity */
	CHECK_INT(hits("r429d"), 2);
	gitlab_response_free(r);

	t0 = now_ms();
	CHECK_INT(gitlab_request(gl, "GET", "/projects/12", NULL, &r), CORE_OK);
	el = now_ms() - t0;
	CHECK(el >= 900 && el < 4000); /* RateLimit-Reset 1 s ahead (+1 s for its granularity) */
	CHECK_INT(hits("r429reset"), 2);
	gitlab_response_free(r);

	/* RateLimit-Remaining: 0 on a success holds the next request until the reset. */
	CHECK_INT(gitlab_request(gl, "GET", "/rl0", NULL, &r), CORE_OK);
	gitlab_response_free(r);
	t0 = now_ms();
	CHECK_INT(gitlab_request(gl, "GET", "/ok", NULL, &r), CORE_OK);
	el = now_ms() - t0;
	CHECK(el >= 500 && el < 4000);
	gitlab_response_free(r);
}

/* Everyone is paused: a call fails with CORE_ETHROTTLED without sending a request, within 1.5 s of t0. Returns
 * its response (the caller frees it). */
static struct gitlab_response *check_paused(struct gitlab *gl, int64_t t0)
{
	struct gitlab_response *r = NULL;
	long before = hits("ok");
	CHECK_INT(gitlab_request(gl, "GET", "/ok", NULL, &r), CORE_ETHROTTLED);
	CHECK_INT(hits("ok"), before);
	CHECK(now_ms() - t0 < 1500);
	return r;
}

/* A hostile RateLimit-Reset neither overflows (UBSan in make test-asan) nor is ignored: "none left until the
 * far future" pauses everyone for the longest pause, and calls then fail at once instead of waiting. */
static void test_ratelimit_reset_far_future(struct gitlab *gl)
{
	struct gitlab_response *r = NULL;
	CHECK_INT(gitlab_request(gl, "GET", "/rlhuge", NULL, &r), CORE_OK);
	gitlab_response_free(r);
	gitlab_response_free(check_paused(gl, now_ms()));
}

static void test_429_too_long_fails_fast(struct gitlab *gl)
{
	struct gitlab_response *r = NULL;
	int64_t t0 = now_ms();
	CHECK_INT(gitlab_request(gl, "GET", "/projects/13", NULL, &r), CORE_ETHROTTLED);
	CHECK(r && r->kind == GITLAB_ERR_RATE_LIMITED && r->http_status == 429);
	CHECK(r && has(r->message, "rate limited") && has(r->message, "3600 s"));
	gitlab_response_free(r);
	/* Everyone is paused now: the next call fails at once, without a request. */
	r = check_paused(gl, t0);
	CHECK(r && has(r->message, "paused"));
	gitlab_response_free(r);
}

static void test_error_messages(void)
{
	static const struct {
		const char *path;
		enum core_status st;
		enum gitlab_error kind;
		const char *text;
	} cases[] = {
	    {"/e/unknown", CORE_EUNAUTH, GITLAB_ERR_TOKEN_INVALID, "invalid or unknown"},
	    {"/e/expired", CORE_EUNAUTH, GITLAB_ERR_TOKEN_EXPIRED, "the token is expired"},
	    {"/e/revoked", CORE_EUNAUTH, GITLAB_ERR_TOKEN_REVOKED, "the token was revoked"},
	    {"/e/scope", CORE_EFORBIDDEN, GITLAB_ERR_SCOPE, "the token lacks the api scope"},
	    {"/e/forbidden", CORE_EFORBIDDEN, GITLAB_ERR_FORBIDDEN, "403 Forbidden"},
	    {"/e/notfound", CORE_ENOTFOUND, GITLAB_ERR_NOT_FOUND, "not found or the token has no access"},
	    {"/e/conflict", CORE_ECONFLICT, GITLAB_ERR_CONFLICT, "Resource lock"},
	    {"/e/invalid", CORE_EINVAL, GITLAB_ERR_INVALID, "bio is too long"},
	    {"/e/echo", CORE_EINVAL, GITLAB_ERR_INVALID, "is not allowed here"},
	    {"/e/html", CORE_EUPSTREAM, GITLAB_ERR_BAD_RESPONSE, "not JSON"},
	    {"/no/such/route", CORE_ENOTFOUND, GITLAB_ERR_NOT_FOUND, "404 Not Found"},
	};
	struct gitlab *gl = NULL;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct gitlab_response *r = NULL;
		gitlab_free(gl); /* a fresh client per case: a refused token latches its client (test_token_latch) */
		gl = new_gl((struct gl_cfg){.retries = 2});
		REQUIRE(gl);
		enum core_status st = gitlab_request(gl, "GET", cases[i].path, NULL, &r);
		CHECK_INT(st, cases[i].st);
		REQUIRE(r);
		CHECK_INT(r->kind, cases[i].kind);
		if (!has(r->message, cases[i].text))
			fprintf(stderr, "%s: message \"%s\" lacks \"%s\"\n", cases[i].path, r->message, cases[i].text);
		CHECK(has(r->message, cases[i].text));
		CHECK_INT(r->attempts, 1); /* none of these is retried */
		check_clean(r);
		gitlab_response_free(r);
	}
	/* The scrubbing is real: the echoed body still has the token, the message does not. */
	struct gitlab_response *r = NULL;
	gitlab_request(gl, "GET", "/e/echo", NULL, &r);
	CHECK(r && has(r->body, TOKEN));
	CHECK(r && has(r->message, "[redacted]"));
	gitlab_response_free(r);
	gitlab_free(gl);
}

static int latch_calls;
static enum gitlab_error latch_kind;
static void on_latch(void *user, enum gitlab_error kind, const char *message)
{
	(void)message;
	latch_calls += *(int *)user;
	latch_kind = kind;
}

/* The first 401 refusing the token latches the client: later calls are not sent, the callback runs once. */
static void test_token_latch(void)
{
	struct gitlab *gl = new_gl((struct gl_cfg){.retries = 2});
	REQUIRE(gl);
	int one = 1;
	gitlab_on_token_rejected(gl, on_latch, &one);
	struct gitlab_response *r = NULL;
	CHECK_INT(gitlab_request(gl, "GET", "/ok", NULL, &r), CORE_OK);
	gitlab_response_free(r);
	CHECK_INT(gitlab_token_rejected(gl), GITLAB_ERR_NONE);
	CHECK_INT(gitlab_request(gl, "GET", "/e/revoked", NULL, &r), CORE_EUNAUTH);
	gitlab_response_free(r);
	CHECK_INT(latch_calls, 1);
	CHECK_INT(latch_kind, GITLAB_ERR_TOKEN_REVOKED);
	CHECK_INT(gitlab_token_rejected(gl), GITLAB_ERR_TOKEN_REVOKED);
	long before = hits("ok");
	for (int i = 0; i < 3; i++) {
		CHECK_INT(gitlab_request(gl, "GET", "/ok", NULL, &r), CORE_EUNAUTH);
		CHECK(r && r->kind == GITLAB_ERR_TOKEN_REVOKED && r->http_status == 0 && has(r->message, "not sent"));
		gitlab_response_free(r);
	}
	struct gitlab_call calls[2] = {{.method = "GET", .path = "/ok"}, {.method = "POST", .path = "/ok"}};
	CHECK_INT(gitlab_multi(gl, calls, 2, 2), CORE_OK);
	for (int i = 0; i < 2; i++) {
		CHECK_INT(calls[i].status, CORE_EUNAUTH);
		gitlab_response_free(calls[i].resp);
	}
	CHECK_INT(hits("ok"), before);
	CHECK_INT(latch_calls, 1);
	gitlab_free(gl);
	/* latched from outside (a token already known refused): nothing is sent, no callback */
	gl = new_gl((struct gl_cfg){.retries = 2});
	REQUIRE(gl);
	gitlab_on_token_rejected(gl, on_latch, &one);
	gitlab_set_token_rejected(gl, GITLAB_ERR_TOKEN_EXPIRED);
	CHECK_INT(gitlab_request(gl, "GET", "/ok", NULL, &r), CORE_EUNAUTH);
	CHECK(r && r->kind == GITLAB_ERR_TOKEN_EXPIRED);
	gitlab_response_free(r);
	CHECK_INT(hits("ok"), before);
	CHECK_INT(latch_calls, 1);
	gitlab_free(gl);
}

static void test_response_size_cap(struct gitlab *gl)
{
	struct gitlab_response *r = NULL;
	CHECK_INT(gitlab_request(gl, "GET", "/big", NULL, &r), CORE_ETOOLARGE); /* refused by Content-Length */
	CHECK(r && r->kind == GITLAB_ERR_TOO_LARGE && has(r->message, "1024 byte cap"));
	gitlab_response_free(r);
	CHECK_INT(gitlab_request(gl, "GET", "/bigchunked", NULL, &r), CORE_ETOOLARGE); /* cut while reading */
	CHECK(r && r->kind == GITLAB_ERR_TOO_LARGE);
	gitlab_response_free(r);
	CHECK_INT(gitlab_request(gl, "GET", "/small", NULL, &r), CORE_OK);
	CHECK(r && r->json && json_object_is_type(r->json, json_type_array) && r->body_len <= 1024);
	gitlab_response_free(r);
}

static void test_timeout_and_unreachable(void)
{
	struct gitlab *gl = new_gl((struct gl_cfg){.retries = 1, .total_ms = 400});
	REQUIRE(gl);
	struct gitlab_response *r = NULL;
	int64_t t0 = now_ms();
	CHECK_INT(gitlab_request(gl, "GET", "/stall", NULL, &r), CORE_ETIMEOUT);
	CHECK(r && r->kind == GITLAB_ERR_TIMEOUT && has(r->message, "in time"));
	CHECK(now_ms() - t0 < 2500);
	CHECK_INT(hits("stall"), 2); /* retried once */
	gitlab_response_free(r);
	gitlab_free(gl);

	/* A port nobody listens on. */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	REQUIRE(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 && getsockname(s, (struct sockaddr *)&a, &al) == 0);
	close(s);
	char base[64];
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", ntohs(a.sin_port));
	gl = new_gl((struct gl_cfg){.base = base, .retries = 2});
	REQUIRE(gl);
	CHECK_INT(gitlab_request(gl, "GET", "/user", NULL, &r), CORE_EUNAVAIL);
	CHECK(r && r->kind == GITLAB_ERR_UNREACHABLE && has(r->message, "unreachable") && has(r->message, base));
	CHECK(r && r->attempts == 3 && r->http_status == 0);
	check_clean(r);
	gitlab_response_free(r);
	/* Nothing was sent, so even a POST may be retried; it still ends unreachable, not "maybe applied". */
	CHECK_INT(gitlab_request(gl, "POST", "/projects/1/hooks", NULL, &r), CORE_EUNAVAIL);
	CHECK(r && r->kind == GITLAB_ERR_UNREACHABLE);
	gitlab_response_free(r);
	gitlab_free(gl);
}

static void test_tls(void)
{
	REQUIRE(tls.pid > 0 && tls.cert[0]);
	struct gitlab_response *r = fresh_get((struct gl_cfg){.base = tls.base, .retries = 2}, "/user", CORE_EUNAVAIL);
	CHECK(r && r->kind == GITLAB_ERR_TLS);
	CHECK(r && strncmp(r->message, "TLS", 3) == 0);
	CHECK(r && r->attempts == 1);
	if (r)
		fprintf(stderr, "tls message: %s\n", r->message);
	gitlab_response_free(r);

	r = fresh_get((struct gl_cfg){.base = tls.base, .ca = tls.cert, .retries = 2}, "/user", CORE_OK);
	const char *u = NULL;
	CHECK(r && jsonx_str(r->json, "username", &u) && strcmp(u, "bot") == 0);
	gitlab_response_free(r);

	/* the same CA as PEM text in memory (how a stored connection passes it: no file) */
	char pem[16384];
	FILE *f = fopen(tls.cert, "r");
	REQUIRE(f);
	size_t n = fread(pem, 1, sizeof(pem) - 1, f);
	fclose(f);
	pem[n] = '\0';
	gitlab_response_free(
	    fresh_get((struct gl_cfg){.base = tls.base, .ca_pem = pem, .retries = 2}, "/user", CORE_OK));
	/* and a PEM of some other CA is refused like no CA at all */
	const char *other = strstr(pem, "-----BEGIN CERTIFICATE-----");
	REQUIRE(other);
	char wrong[16384];
	snprintf(wrong, sizeof(wrong), "%.*sX%s", (int)(other - pem) + 40, pem, other + 41); /* one byte changed */
	r = fresh_get((struct gl_cfg){.base = tls.base, .ca_pem = wrong, .retries = 2}, "/user", CORE_EUNAVAIL);
	CHECK(r && r->kind == GITLAB_ERR_TLS);
	gitlab_response_free(r);
}

static void test_multi_bounded(void)
{
	enum { N = 50 };
	struct gitlab_call calls[N + 1];
	char paths[N][32];
	struct gitlab *gl = new_gl((struct gl_cfg){.retries = 3});
	REQUIRE(gl);
	struct json_object *rs = ctl("POST", "/_ctl/reset");
	json_object_put(rs);
	memset(calls, 0, sizeof(calls));
	for (int i = 0; i < N; i++) {
		snprintf(paths[i], sizeof(paths[i]), "/slow/%d?x=%d", i, i);
		calls[i].method = "GET";
		calls[i].path = paths[i];
	}
	calls[N].method = "GET";
	calls[N].path = "/flaky/1";
	int64_t t0 = now_ms();
	CHECK_INT(gitlab_multi(gl, calls, N + 1, 8), CORE_OK);
	int64_t el = now_ms() - t0;
	long max_inflight = stat_int("max_inflight");
	CHECK(max_inflight <= 8);
	CHECK(max_inflight >= 4); /* really concurrent */
	CHECK(el < 3000);
	int ok = 0;
	for (int i = 0; i <= N; i++) {
		const char *p = NULL;
		char want[64];
		snprintf(want, sizeof(want), "/api/v4%s", calls[i].path);
		if (calls[i].status == CORE_OK && calls[i].resp && jsonx_str(calls[i].resp->json, "path", &p) &&
		    strcmp(p, want) == 0)
			ok++;
		gitlab_response_free(calls[i].resp);
	}
	CHECK_INT(ok, N + 1); /* every result belongs to its own call */
	CHECK_INT(hits("flakymulti"), 2);
	CHECK_INT(hits("slow"), N);
	gitlab_free(gl);

	/* A client-side limit of 300/min (burst 50, then 5/s) also holds in a fan-out. */
	gl = new_gl((struct gl_cfg){.retries = 1, .rpm = 300});
	REQUIRE(gl);
	struct gitlab_call fast[53];
	char fpaths[53][32];
	memset(fast, 0, sizeof(fast));
	for (int i = 0; i < 53; i++) {
		snprintf(fpaths[i], sizeof(fpaths[i]), "/fast/%d", i);
		fast[i].method = "GET";
		fast[i].path = fpaths[i];
	}
	t0 = now_ms();
	CHECK_INT(gitlab_multi(gl, fast, 53, 8), CORE_OK);
	el = now_ms() - t0;
	CHECK(el >= 500 && el < 3000); /* 3 past the burst at 200 ms each */
	for (int i = 0; i < 53; i++) {
		CHECK_INT(fast[i].status, CORE_OK);
		gitlab_response_free(fast[i].resp);
	}
	/* Bad calls fail alone. */
	struct gitlab_call mixed[2] = {{.method = "GET", .path = "nope"}, {.method = "GET", .path = "/fast/x"}};
	CHECK_INT(gitlab_multi(gl, mixed, 2, 2), CORE_OK);
	CHECK_INT(mixed[0].status, CORE_EINVAL);
	CHECK_INT(mixed[1].status, CORE_OK);
	gitlab_response_free(mixed[0].resp);
	gitlab_response_free(mixed[1].resp);
	CHECK_INT(gitlab_multi(gl, mixed, 2, 0), CORE_EINVAL);
	gitlab_free(gl);
}

struct narrowings {
	int n;
	int64_t at[8];
};

static void on_narrowed(void *user)
{
	struct narrowings *w = user;
	if (w->n < 8)
		w->at[w->n] = now_ms();
	w->n++;
}

/* gitlab_multi_narrowing(): a slot per exchange goes back when its call is done and no call is left for it. */
static void test_multi_narrowing(void)
{
	struct gitlab *gl = new_gl((struct gl_cfg){.retries = 1});
	REQUIRE(gl);
	struct gitlab_call calls[4] = {{.method = "GET", .path = "/slower/1"},
	                               {.method = "GET", .path = "/fast/a"},
	                               {.method = "GET", .path = "/fast/b"},
	                               {.method = "GET", .path = "/fast/c"}};
	struct narrowings w = {0};
	int64_t t0 = now_ms();
	CHECK_INT(gitlab_multi_narrowing(gl, calls, 4, 4, on_narrowed, &w), CORE_OK);
	int64_t el = now_ms() - t0;
	CHECK(el >= 600);
	CHECK_INT(w.n, 4); /* four exchanges at most in flight, down to none */
	/* the three fast calls' slots went back while the slow one still ran, not when it ended */
	for (int i = 0; i < 3; i++)
		CHECK(w.at[i] - t0 < 400);
	CHECK(w.at[3] - t0 >= 600);
	for (int i = 0; i < 4; i++) {
		CHECK_INT(calls[i].status, CORE_OK);
		gitlab_response_free(calls[i].resp);
	}
	/* more calls than the concurrency: nothing goes back while a call is left to start */
	struct gitlab_call more[6];
	char paths[6][32];
	memset(more, 0, sizeof(more));
	for (int i = 0; i < 6; i++) {
		snprintf(paths[i], sizeof(paths[i]), i == 5 ? "/slower/%d" : "/fast/%d", i);
		more[i].method = "GET";
		more[i].path = paths[i];
	}
	w = (struct narrowings){0};
	t0 = now_ms();
	CHECK_INT(gitlab_multi_narrowing(gl, more, 6, 2, on_narrowed, &w), CORE_OK);
	CHECK_INT(w.n, 2);
	CHECK(w.at[1] - t0 >= 600); /* the last one when the slow call ended */
	for (int i = 0; i < 6; i++) {
		CHECK_INT(more[i].status, CORE_OK);
		gitlab_response_free(more[i].resp);
	}
	/* without a callback it is gitlab_multi() */
	struct gitlab_call one[1] = {{.method = "GET", .path = "/fast/z"}};
	CHECK_INT(gitlab_multi_narrowing(gl, one, 1, 3, NULL, NULL), CORE_OK);
	CHECK_INT(one[0].status, CORE_OK);
	gitlab_response_free(one[0].resp);
	gitlab_free(gl);
}

static void test_token_never_logged(void)
{
	struct json_object *st = ctl("GET", "/_ctl/stats");
	struct json_object *reqs = NULL;
	/* The token was sent on every request (the fake server answers 401 otherwise). */
	REQUIRE(jsonx_array(st, "requests", &reqs));
	size_t bad = 0;
	for (size_t i = 0; i < json_object_array_length(reqs); i++) {
		bool ok = false;
		if (!jsonx_bool(json_object_array_get_idx(reqs, i), "token_ok", &ok) || !ok)
			bad++;
	}
	CHECK_INT(bad, 0);
	json_object_put(st);

	fsync(STDERR_FILENO);
	FILE *f = fopen(log_path, "r");
	REQUIRE(f);
	char *all = NULL;
	size_t cap = 0, len = 0;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		char *na = realloc(all, cap = len + n + 1);
		REQUIRE(na);
		all = na;
		memcpy(all + len, chunk, n);
		len += n;
		all[len] = '\0';
	}
	fclose(f);
	CHECK(all && has(all, "gitlab GET /projects/:id")); /* the debug log was written ... */
	CHECK(all && !has(all, TOKEN));                     /* ... and never holds the token */
	CHECK(all && !has(all, "Sup3rSecret"));
	free(all);
}

int main(void)
{
	if (gitlab_global_init() != CORE_OK)
		return 2;
	if (!server_start(SCRIPT, false, &plain) || !server_start(TLS_SCRIPT, true, &tls)) {
		fprintf(stderr, "test setup: could not start tests/lib/fakehttp.py (is MRGATE_SOURCE_DIR set?)\n");
		server_stop(&plain);
		server_stop(&tls);
		return 2;
	}
	/* Capture our stderr (the log) to check it for the token at the end. */
	int fd = mkstemp(log_path);
	if (fd < 0)
		return 2;
	saved_stderr = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
	log_init(LOG_DEBUG, 1);

	RUN(test_new_rejects_bad_options);
	RUN_GL(test_paginate_x_next_page, .retries = 2);
	RUN_GL(test_paginate_link_only, .retries = 2);
	RUN_GL(test_retry_5xx, .retries = 4);
	RUN_GL(test_reset_get_retried_post_not, .retries = 3);
	RUN_GL(test_429_retry_after_pauses_everyone, .retries = 3);
	RUN_GL(test_429_http_date_and_ratelimit_reset, .retries = 3);
	RUN_GL(test_429_too_long_fails_fast, .retries = 3, .max_pause_ms = 5000);
	RUN_GL(test_ratelimit_reset_far_future, .retries = 1, .max_pause_ms = 5000);
	RUN(test_error_messages);
	RUN(test_token_latch);
	RUN_GL(test_response_size_cap, .retries = 2, .max_bytes = 1024);
	RUN(test_timeout_and_unreachable);
	RUN(test_tls);
	RUN(test_multi_bounded);
	RUN(test_multi_narrowing);
	RUN(test_token_never_logged);

	server_stop(&plain);
	server_stop(&tls);
	/* Give the captured log back to the real stderr (failures are in it). */
	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	FILE *f = fopen(log_path, "r");
	if (f) {
		char chunk[4096];
		size_t n;
		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			fwrite(chunk, 1, n, stderr);
		fclose(f);
	}
	unlink(log_path);
	gitlab_global_cleanup();
	return testlib_done();
}
