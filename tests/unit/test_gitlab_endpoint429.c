/*
 * tests/unit/test_gitlab_endpoint429.c
 *    The GitLab client against GitLab's per-endpoint 429s (JSON body, no Retry-After, core/endpointlimit.h): only the
 *    limited endpoint backs off, with growing waits and one probe at a time; other requests, single or fanned out
 *    with gitlab_multi(), go on at once. The scripted server is tests/lib/fakehttp.py.
 */
#include "gitlab.h"
#include "jsonx.h"
#include "testlib.h"

#include <curl/curl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char TOKEN[] = "glpat-EndpointLimitTestToken0001";
static const char LIMITED[] = "{'status': 429, 'json': {'message': {'error': 'This endpoint has been requested too "
                              "many times. Try again later.'}}}";
static pid_t server_pid;
static char base[64];

static bool server_start(void)
{
	char script[] = "/tmp/mrgate-endpoint429-XXXXXX", prog[1024], body[2048], line[512];
	const char *src = getenv("MRGATE_SOURCE_DIR");
	snprintf(prog, sizeof(prog), "%s/tests/lib/fakehttp.py", src ? src : ".");
	snprintf(
	    body, sizeof(body),
	    "{'token': '%s', 'rules': ["
	    "{'name': 'arch', 'path': '/api/v4/projects/20/repository/archive.tar.gz', 'responses': [%s]},"
	    "{'name': 'arch2', 'path': '/api/v4/projects/21/repository/archive.tar.gz', 'responses': [{'json': {}}]},"
	    "{'name': 'ok', 'path_prefix': '/api/v4/ok', 'responses': [{'echo': true}]}]}",
	    TOKEN, LIMITED);
	for (char *p = body; *p; p++)
		if (*p == '\'')
			*p = '"';
	int fd = mkstemp(script), pfd[2];
	if (fd < 0 || write(fd, body, strlen(body)) != (ssize_t)strlen(body) || pipe(pfd) != 0)
		return false;
	close(fd);
	server_pid = fork();
	if (server_pid == 0) {
		dup2(pfd[1], STDOUT_FILENO);
		close(pfd[0]);
		close(pfd[1]);
		execl("/usr/bin/python3", "python3", prog, "--port", "0", "--script", script, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	size_t len = 0;
	struct pollfd p = {.fd = pfd[0], .events = POLLIN};
	while (len < sizeof(line) - 1 && poll(&p, 1, 20000) == 1 && read(pfd[0], line + len, 1) == 1 &&
	       line[len] != '\n')
		len++;
	line[len] = '\0';
	close(pfd[0]);
	unlink(script);
	struct json_object *j = NULL;
	int64_t port = 0;
	bool ok = jsonx_parse(line, len, &j) == CORE_OK && jsonx_int64(j, "port", &port) && port > 0;
	json_object_put(j);
	snprintf(base, sizeof(base), "http://127.0.0.1:%lld", (long long)port);
	return ok;
}

/* The paths the server saw, in order, joined by spaces ("/api/v4/" dropped). */
static void seen(char *out, size_t cap)
{
	char url[128];
	struct json_object *j = NULL, *reqs = NULL;
	out[0] = '\0';
	snprintf(url, sizeof(url), "%s/_ctl/stats", base);
	struct gitlab_opts o = {.base_url = base, .token = TOKEN};
	(void)o;
	CURL *h = curl_easy_init();
	FILE *mem = tmpfile();
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, mem);
	if (curl_easy_perform(h) == CURLE_OK) {
		long n = ftell(mem);
		char *b = malloc((size_t)n + 1);
		rewind(mem);
		if (b && fread(b, 1, (size_t)n, mem) == (size_t)n && jsonx_parse(b, (size_t)n, &j) == CORE_OK &&
		    json_object_object_get_ex(j, "requests", &reqs)) {
			for (size_t i = 0; i < json_object_array_length(reqs); i++) {
				const char *path = NULL;
				jsonx_str(json_object_array_get_idx(reqs, i), "path", &path);
				size_t l = strlen(out);
				snprintf(out + l, cap - l, "%s%s", l ? " " : "", path ? path + 8 : "?");
			}
		}
		free(b);
	}
	fclose(mem);
	curl_easy_cleanup(h);
	json_object_put(j);
}

static void reset_server(void)
{
	char url[128];
	snprintf(url, sizeof(url), "%s/_ctl/reset", base);
	CURL *h = curl_easy_init();
	FILE *null = fopen("/dev/null", "w");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
	curl_easy_setopt(h, CURLOPT_WRITEDATA, null);
	curl_easy_perform(h);
	curl_easy_cleanup(h);
	fclose(null);
}

static struct gitlab *new_gl(int retries)
{
	struct gitlab_opts o = {
	    .base_url = base, .token = TOKEN, .max_retries = retries, .backoff_base_ms = 10, .backoff_max_ms = 80};
	char err[256];
	struct gitlab *gl = gitlab_new(&o, err, sizeof(err));
	if (!gl)
		fprintf(stderr, "gitlab_new: %s\n", err);
	return gl;
}

struct req_thread {
	struct gitlab *gl;
	const char *path;
	enum core_status st;
	struct gitlab_response *resp;
};

static void *run_req(void *arg)
{
	struct req_thread *t = arg;
	t->st = gitlab_request(t->gl, "GET", t->path, NULL, &t->resp);
	return NULL;
}

static void test_other_endpoints_go_on_while_one_backs_off(void)
{
	reset_server();
	struct gitlab *gl = new_gl(1);
	REQUIRE(gl);
	struct req_thread a = {.gl = gl, .path = "/projects/20/repository/archive.tar.gz"};
	pthread_t th;
	REQUIRE(pthread_create(&th, NULL, run_req, &a) == 0);
	char s[512];
	for (int i = 0; i < 200; i++) { /* until the first 429 was answered */
		seen(s, sizeof(s));
		if (strstr(s, "archive"))
			break;
		usleep(10000);
	}
	struct gitlab_response *r = NULL;
	CHECK_INT(gitlab_request(gl, "GET", "/ok/1", NULL, &r), CORE_OK); /* no pause of the host */
	gitlab_response_free(r);
	CHECK_INT(gitlab_request(gl, "GET", "/projects/21/repository/archive.tar.gz", NULL, &r), CORE_OK);
	gitlab_response_free(r); /* the same endpoint of another project: its own limit */
	pthread_join(th, NULL);
	CHECK_INT(a.st, CORE_ETHROTTLED);
	CHECK(a.resp && a.resp->kind == GITLAB_ERR_RATE_LIMITED && a.resp->http_status == 429);
	CHECK(a.resp && strstr(a.resp->message, "retry after"));
	gitlab_response_free(a.resp);
	seen(s, sizeof(s));
	CHECK_STR(s, "projects/20/repository/archive.tar.gz ok/1 projects/21/repository/archive.tar.gz "
	             "projects/20/repository/archive.tar.gz");
	gitlab_free(gl);
}

static void test_fan_out_parks_the_limited_calls_only(void)
{
	reset_server();
	struct gitlab *gl = new_gl(1);
	REQUIRE(gl);
	struct gitlab_call calls[] = {{.method = "GET", .path = "/projects/20/repository/archive.tar.gz"},
	                              {.method = "GET", .path = "/projects/20/repository/archive.tar.gz?sha=b"},
	                              {.method = "GET", .path = "/ok/a"},
	                              {.method = "GET", .path = "/ok/b"},
	                              {.method = "GET", .path = "/ok/c"}};
	CHECK_INT(gitlab_multi(gl, calls, 5, 1), CORE_OK);
	CHECK_INT(calls[0].status, CORE_ETHROTTLED);
	CHECK_INT(calls[1].status, CORE_ETHROTTLED);
	for (int i = 2; i < 5; i++)
		CHECK_INT(calls[i].status, CORE_OK);
	char s[1024];
	seen(s, sizeof(s));
	/* the second archive call waits for the first one's back-off instead of adding a 429, the others go first;
	   after the wait one probe at a time: at most a 429 per wait */
	static const char first[] = "projects/20/repository/archive.tar.gz ok/a ok/b ok/c ";
	CHECK(strncmp(s, first, sizeof(first) - 1) == 0);
	int n429 = 0;
	for (const char *p = s; (p = strstr(p, "archive")) != NULL; p++)
		n429++;
	CHECK_INT(n429, 4); /* two attempts per call (retries 1), never two at once */
	for (int i = 0; i < 5; i++)
		gitlab_response_free(calls[i].resp);
	gitlab_free(gl);
}

int main(void)
{
	if (gitlab_global_init() != CORE_OK)
		return 2;
	if (!server_start()) {
		fprintf(stderr, "test setup: could not start tests/lib/fakehttp.py (is MRGATE_SOURCE_DIR set?)\n");
		return 2;
	}
	RUN(test_other_endpoints_go_on_while_one_backs_off);
	RUN(test_fan_out_parks_the_limited_calls_only);
	kill(server_pid, SIGTERM);
	waitpid(server_pid, NULL, 0);
	gitlab_global_cleanup();
	return testlib_done();
}
