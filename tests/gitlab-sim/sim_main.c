/*
 * tests/gitlab-sim/sim_main.c
 *    gitlab-sim: a GitLab REST API double for mrgate's tests, benchmarks and demo. Command line,
 *    CivetWeb set-up (plain HTTP or TLS), and the per-request pipeline:
 *
 *      count the request -> scripted response? -> rate limit (429) -> latency/jitter
 *      -> random fault (reset, stall, 5xx) -> the API handler -> RateLimit-* headers -> send
 *
 * Design: CivetWeb runs one thread per connection (num_threads, default 256: a kept-alive connection holds its
 *    thread while idle, 500 ms at most) with decode_url=no so %2F survives routing. The model mutex is held only
 *    while counting/deciding and while a handler runs; sleeps and socket writes happen without it. The control API
 *    (/__sim/) bypasses faults, rate limits and counters.
 * Ownership: main owns the struct sim and the CivetWeb context; both live until exit.
 */
#include "sim_api.h"
#include "sim_control.h"
#include "sim_hooks.h"
#include "sim_http.h"
#include "sim_render.h"
#include "sim_state.h"
#include "sim_strict.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEMO_TOKEN "glpat-demo-0123456789abcdef"

struct options {
	const char *listen;
	const char *tls_cert;
	const char *instance_url;
	const char *tokens_file;
	const char *tokens[32];
	int n_tokens;
	bool seed_demo;
	bool allow_local_hooks;
	const char *seed_root;
	long seed_projects;
	int threads;
	int hook_workers;
	int webhook_timeout_s;
};

static struct options opts = {.listen = "127.0.0.1:8929", .threads = 256, .hook_workers = 4, .webhook_timeout_s = 10};

static void usage(FILE *f)
{
	fprintf(f, "usage: gitlab-sim [options]\n"
	           "  --listen HOST:PORT      address to listen on (default 127.0.0.1:8929)\n"
	           "  --tls-cert FILE         serve HTTPS with this PEM file (private key + certificate)\n"
	           "  --instance-url URL      base URL in payloads and web_url (default http[s]://LISTEN)\n"
	           "  --token TOKEN           an admin personal access token with the api scope (repeatable)\n"
	           "  --tokens-file FILE      a JSON array of token objects as POST /__sim/tokens takes\n"
	           "  --seed-demo             seed group 'demo' (premium) with 300 projects and token " DEMO_TOKEN "\n"
	           "  --seed ROOT:N           seed group ROOT with N projects over 3 levels of subgroups\n"
	           "  --threads N             HTTP worker threads (default 256)\n"
	           "  --hook-workers N        webhook delivery threads (default 4)\n"
	           "  --webhook-timeout S     webhook request timeout in seconds (default 10)\n"
	           "  --allow-local-hooks     accept loopback/private hook URLs "
	           "(allow_local_requests_from_web_hooks_and_services)\n"
	           "The control API is under /__sim/ (see tests/gitlab-sim/README.md).\n");
}

static bool parse_long(const char *s, long *out)
{
	int64_t v = 0;
	if (!sim_parse_int64(s, &v))
		return false;
	*out = (long)v;
	return true;
}

static bool parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		long n = 0;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(a, "--seed-demo") == 0) {
			opts.seed_demo = true;
			continue;
		} else if (strcmp(a, "--allow-local-hooks") == 0) {
			opts.allow_local_hooks = true;
			continue;
		}
		if (!v) {
			fprintf(stderr, "gitlab-sim: %s needs a value\n", a);
			return false;
		}
		i++;
		if (strcmp(a, "--listen") == 0) {
			opts.listen = v;
		} else if (strcmp(a, "--tls-cert") == 0) {
			opts.tls_cert = v;
		} else if (strcmp(a, "--instance-url") == 0) {
			opts.instance_url = v;
		} else if (strcmp(a, "--token") == 0 && opts.n_tokens < 32) {
			opts.tokens[opts.n_tokens++] = v;
		} else if (strcmp(a, "--tokens-file") == 0) {
			opts.tokens_file = v;
		} else if (strcmp(a, "--seed") == 0) {
			const char *colon = strrchr(v, ':');
			if (!colon || !parse_long(colon + 1, &opts.seed_projects)) {
				fprintf(stderr, "gitlab-sim: --seed wants ROOT:N\n");
				return false;
			}
			opts.seed_root = sim_strndup(v, (size_t)(colon - v));
		} else if (strcmp(a, "--threads") == 0 && parse_long(v, &n) && n > 0) {
			opts.threads = (int)n;
		} else if (strcmp(a, "--hook-workers") == 0 && parse_long(v, &n) && n > 0) {
			opts.hook_workers = (int)n;
		} else if (strcmp(a, "--webhook-timeout") == 0 && parse_long(v, &n) && n > 0) {
			opts.webhook_timeout_s = (int)n;
		} else {
			fprintf(stderr, "gitlab-sim: bad option %s %s\n", a, v);
			return false;
		}
	}
	return true;
}

/* Tokens and seeding from the command line; also what POST /__sim/reset restores (lock held). */
static void startup(struct sim *s)
{
	const char *err = NULL;
	s->settings.allow_local_requests = opts.allow_local_hooks;
	for (int i = 0; i < opts.n_tokens; i++) {
		struct json_object *spec = json_object_new_object();
		json_object_object_add(spec, "token", json_object_new_string(opts.tokens[i]));
		json_object_object_add(spec, "admin", json_object_new_boolean(true));
		json_object_object_add(spec, "username", json_object_new_string("admin"));
		json_object_object_add(spec, "name", json_object_new_string("command line token"));
		if (!sim_control_add_token(s, spec, &err))
			fprintf(stderr, "gitlab-sim: --token: %s\n", err);
		json_object_put(spec);
	}
	if (opts.tokens_file) {
		struct json_object *arr = json_object_from_file(opts.tokens_file);
		if (!arr || !json_object_is_type(arr, json_type_array))
			fprintf(stderr, "gitlab-sim: %s: not a JSON array of tokens\n", opts.tokens_file);
		for (size_t i = 0;
		     arr && json_object_is_type(arr, json_type_array) && i < json_object_array_length(arr); i++)
			if (!sim_control_add_token(s, json_object_array_get_idx(arr, i), &err))
				fprintf(stderr, "gitlab-sim: %s: token %zu: %s\n", opts.tokens_file, i, err);
		json_object_put(arr);
	}
	if (opts.seed_root)
		sim_seed(s, opts.seed_root, opts.seed_projects, 3, 4, SIM_TIER_PREMIUM, NULL);
	if (opts.seed_demo) {
		sim_seed(s, "demo", 300, 2, 3, SIM_TIER_PREMIUM, NULL);
		struct json_object *spec = json_tokener_parse("{\"token\":\"" DEMO_TOKEN "\",\"kind\":\"group_access\","
		                                              "\"scopes\":[\"api\"],\"name\":\"mrgate demo\","
		                                              "\"access\":{\"demo\":50}}");
		sim_control_add_token(s, spec, &err);
		json_object_put(spec);
	}
}

/* --- rate limiting --------------------------------------------------------------------------------------- */

struct rate_decision {
	bool limited_on;
	bool over;
	int limit;
	int observed;
	time_t reset_at;
};

static void rate_check(struct sim *s, const char *key, struct rate_decision *d)
{
	memset(d, 0, sizeof(*d));
	if (s->faults.rate_limit_per_minute <= 0)
		return;
	struct sim_rate_bucket *b = sim_rate_count(&s->rate_buckets, key);
	d->limited_on = true;
	d->limit = s->faults.rate_limit_per_minute;
	d->observed = b->count;
	d->over = b->count > d->limit;
	d->reset_at = b->window_start + 60;
}

static void rate_headers(struct sim_req *r, const struct rate_decision *d)
{
	char buf[64];
	if (!d->limited_on)
		return;
	sim_add_header(r, "RateLimit-Name", "throttle_authenticated_api");
	snprintf(buf, sizeof(buf), "%d", d->limit);
	sim_add_header(r, "RateLimit-Limit", buf);
	snprintf(buf, sizeof(buf), "%d", d->observed);
	sim_add_header(r, "RateLimit-Observed", buf);
	snprintf(buf, sizeof(buf), "%d", d->observed >= d->limit ? 0 : d->limit - d->observed);
	sim_add_header(r, "RateLimit-Remaining", buf);
	snprintf(buf, sizeof(buf), "%lld", (long long)d->reset_at);
	sim_add_header(r, "RateLimit-Reset", buf);
	if (d->over) {
		char date[40];
		sim_http_date(d->reset_at, date);
		sim_add_header(r, "RateLimit-ResetTime", date);
		long wait = (long)(d->reset_at - time(NULL));
		snprintf(buf, sizeof(buf), "%ld", wait < 1 ? 1 : wait);
		sim_add_header(r, "Retry-After", buf);
	}
}

/* --- the request pipeline -------------------------------------------------------------------------------- */

static void sleep_ms(int ms)
{
	if (ms <= 0)
		return;
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Sleeps until ms after *from (CLOCK_MONOTONIC); at once when that moment has passed. */
static void sleep_until_ms(const struct timespec *from, int ms)
{
	if (ms <= 0)
		return;
	struct timespec at = *from;
	at.tv_sec += ms / 1000;
	at.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (at.tv_nsec >= 1000000000L) {
		at.tv_sec++;
		at.tv_nsec -= 1000000000L;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) != 0)
		;
}

/*
 * GITLAB_SIM_TRACE=FILE: one line per API request appended to FILE, "start end METHOD route" (CLOCK_MONOTONIC
 * microseconds; route as counted, e.g. /api/v4/projects/:id/hooks), for a timeline of the calls in flight
 * (how a benchmark finds the moments its GitLab slots stand idle). Caller holds s->mu.
 */
static void trace_request(const struct sim_req *r, const char *route, const struct timespec *t0,
                          const struct timespec *t1)
{
	static FILE *trace;
	static bool opened;
	if (!opened) {
		opened = true;
		const char *path = getenv("GITLAB_SIM_TRACE");
		if (path && *path)
			trace = fopen(path, "a");
	}
	if (!trace)
		return;
	fprintf(trace, "%lld %lld %s %s\n", (long long)t0->tv_sec * 1000000 + t0->tv_nsec / 1000,
	        (long long)t1->tv_sec * 1000000 + t1->tv_nsec / 1000, r->method, route ? route : "?");
	fflush(trace);
}

enum fault { FAULT_NONE, FAULT_RESET, FAULT_STALL, FAULT_ERROR };

static void api_request(struct sim *s, struct sim_req *r)
{
	struct sim_script_step step;
	bool scripted = false;
	struct rate_decision rd;
	enum fault fault = FAULT_NONE;
	int latency = 0, stall = 0, error_status = 500;

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_mutex_lock(&s->mu);
	const char *tmpl = sim_api_template(r);
	char *tmpl_copy = sim_strdup(tmpl ? tmpl : r->path);
	sim_count_request(s, r->method, tmpl_copy, 0);
	if (++s->in_flight > s->peak_in_flight)
		s->peak_in_flight = s->in_flight;
	scripted = sim_control_script_next(s, r->method, r->path, tmpl, &step);
	const char *key = sim_header(r, "PRIVATE-TOKEN");
	if (!key)
		key = sim_header(r, "Authorization");
	if (!key)
		key = mg_get_request_info(r->conn)->remote_addr;
	rate_check(s, key, &rd);
	if (rd.over && !scripted)
		s->counter_rate_limited++;
	latency = s->faults.latency_ms + (s->faults.jitter_ms > 0 ? (int)(sim_random(s) * s->faults.jitter_ms) : 0);
	double x = sim_random(s);
	if (x < s->faults.reset_rate)
		fault = FAULT_RESET;
	else if (x < s->faults.reset_rate + s->faults.stall_rate)
		fault = FAULT_STALL;
	else if (x < s->faults.reset_rate + s->faults.stall_rate + s->faults.error_rate)
		fault = FAULT_ERROR;
	stall = s->faults.stall_ms;
	static const int errors[] = {500, 502, 503};
	error_status = errors[(int)(sim_random(s) * 3) % 3];
	pthread_mutex_unlock(&s->mu);

	if (scripted) {
		if (step.stall_ms)
			sleep_ms(step.stall_ms);
		if (step.reset) {
			r->drop = true;
			goto out;
		}
		if (step.status) {
			if (step.body)
				sim_reply_text(r, step.status, "application/json", step.body, strlen(step.body));
			else {
				char *msg = sim_printf("%d %s", step.status, sim_status_text(step.status));
				sim_reply_message(r, step.status, msg);
				free(msg);
			}
			if (step.headers) {
				json_object_object_foreach(step.headers, hk, hv)
				{
					if (strcasecmp(hk, "Content-Type") == 0)
						r->content_type =
						    "text/plain"; /* replaced below with the given value */
					sim_add_header(r, hk, json_object_get_string(hv));
				}
			}
			rate_headers(r, &rd);
			goto out;
		}
		/* A stall-only step delays, then the request proceeds normally. */
	}
	if (rd.over) {
		sim_reply_text(r, 429, "text/plain", "Retry later", 11);
		rate_headers(r, &rd);
		goto out;
	}
	/*
	 * The latency is the whole answer's time, as GitLab's is: half of it before the request is handled (the way
	 * there), and the answer leaves `latency` ms after the request came in. So the simulator's own work and its
	 * lock waits are inside the latency, not added to it (a faulted request sleeps the full latency first).
	 */
	sleep_until_ms(&t0, fault == FAULT_NONE ? latency / 2 : latency);
	if (fault == FAULT_RESET) {
		r->drop = true;
		goto out;
	}
	if (fault == FAULT_STALL)
		sleep_ms(stall);
	if (fault == FAULT_ERROR) {
		char *msg = sim_printf("%d %s", error_status, sim_status_text(error_status));
		sim_reply_message(r, error_status, msg);
		free(msg);
		rate_headers(r, &rd);
		goto out;
	}
	/* the per-commit lock of a status post (sim_strict.h), held while GitLab would work on it */
	char *lock_key = NULL;
	if (strcmp(r->method, "POST") == 0 && tmpl_copy &&
	    strcmp(tmpl_copy, "/api/v4/projects/:id/statuses/:sha") == 0 && r->n_segs >= 6)
		lock_key = sim_printf("%s:%s", r->segs[3], r->segs[5]);
	if (lock_key && !sim_strict_status_lock(s, lock_key)) {
		sim_reply_message(r, 409, "Another update to this commit status is in progress");
		rate_headers(r, &rd);
		free(lock_key);
		goto out;
	}
	pthread_mutex_lock(&s->mu);
	bool reads = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
	if (!reads)
		sim_wait_renders(s); /* a write may change what a page being written reads */
	sim_api_handle(r);
	if (!reads)
		s->version++; /* it may have changed the model (struct sim's version; listing cache in sim_api.c) */
	pthread_mutex_unlock(&s->mu);
	if (lock_key) {
		sim_strict_status_unlock(s, lock_key);
		free(lock_key);
	}
	sleep_until_ms(&t0, latency);
	rate_headers(r, &rd);
out:
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pthread_mutex_lock(&s->mu);
	s->in_flight--;
	s->busy_ms += (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	trace_request(r, tmpl_copy, &t0, &t1);
	pthread_mutex_unlock(&s->mu);
	if (scripted) {
		free(step.body);
		json_object_put(step.headers);
	}
	free(tmpl_copy);
}

/* "addr" and port of a socket address, as CivetWeb writes a request's remote_addr; false for other families. */
static bool addr_port(const struct sockaddr_storage *a, char *addr, size_t addr_len, int *port)
{
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)a;
		*port = ntohs(in->sin_port);
		return inet_ntop(AF_INET, &in->sin_addr, addr, (socklen_t)addr_len) != NULL;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)a;
		*port = ntohs(in6->sin6_port);
		return inet_ntop(AF_INET6, &in6->sin6_addr, addr, (socklen_t)addr_len) != NULL;
	}
	return false;
}

/*
 * End a dropped request's connection at once, without an answer. CivetWeb (1.15) keeps a connection alive after any
 * handler and has no call to end it, so its socket is found among the process's descriptors by its two ends and
 * shut down: the client reads end-of-file at once, CivetWeb's next read fails and it closes the socket. Left to
 * CivetWeb, the client would see the reset only when the connection idled out, half a second later.
 */
static void drop_connection(struct mg_connection *conn)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	for (int fd = 0; fd < 65536 && ri; fd++) {
		struct sockaddr_storage peer, self;
		socklen_t peer_len = sizeof(peer), self_len = sizeof(self);
		char addr[64];
		int peer_port = 0, self_port = 0;
		if (getpeername(fd, (struct sockaddr *)&peer, &peer_len) != 0 ||
		    getsockname(fd, (struct sockaddr *)&self, &self_len) != 0)
			continue;
		if (addr_port(&self, addr, sizeof(addr), &self_port) && self_port == ri->server_port &&
		    addr_port(&peer, addr, sizeof(addr), &peer_port) && peer_port == ri->remote_port &&
		    strcmp(addr, ri->remote_addr) == 0) {
			shutdown(fd, SHUT_RDWR);
			return;
		}
	}
}

static int handle_request(struct mg_connection *conn, void *ud)
{
	struct sim *s = ud;
	struct sim_req r;
	if (!sim_req_parse(&r, conn, s)) {
		sim_reply_message(&r, 413, "413 Request Entity Too Large");
		sim_send(&r);
		sim_req_free(&r);
		return 413;
	}
	if (strncmp(r.path, "/__sim/", 7) == 0) {
		pthread_mutex_lock(&s->mu);
		sim_wait_renders(s);
		sim_control_handle(&r);
		s->version++; /* any control request may have changed the model */
		pthread_mutex_unlock(&s->mu);
	} else if (strncmp(r.path, "/api/v4/", 8) == 0 || strcmp(r.path, "/api/v4") == 0) {
		api_request(s, &r);
	} else {
		sim_reply_error(&r, 404, "404 Not Found");
	}
	sim_send(&r);
	if (r.drop)
		drop_connection(conn);
	int status = r.drop ? 1 : r.status;
	sim_req_free(&r);
	return status;
}

/* A TCP connection accepted (keep-alive: one serves many requests); counted for GET /__sim/counters. */
static int init_connection(const struct mg_connection *conn, void **conn_data)
{
	struct sim *s = mg_get_user_data(mg_get_context(conn));
	(void)conn_data;
	pthread_mutex_lock(&s->mu);
	s->counter_connections++;
	pthread_mutex_unlock(&s->mu);
	return 0;
}

static int log_message(const struct mg_connection *conn, const char *message)
{
	(void)conn;
	fprintf(stderr, "gitlab-sim: civetweb: %s\n", message);
	return 1;
}

int main(int argc, char **argv)
{
	int rc = 1;
	struct sim *s = NULL;
	struct mg_context *ctx = NULL;
	char *ports = NULL, *threads = NULL, *instance = NULL;
	if (!parse_args(argc, argv)) {
		usage(stderr);
		return 2;
	}
	unsigned want = opts.tls_cert ? MG_FEATURES_TLS : 0;
	unsigned got = mg_init_library(want);
	if ((got & want) != want) {
		fprintf(stderr, "gitlab-sim: TLS is unavailable in this CivetWeb (libssl.so must be loadable)\n");
		goto out;
	}
	if (opts.tls_cert && access(opts.tls_cert, R_OK) != 0) {
		fprintf(stderr, "gitlab-sim: cannot read %s\n", opts.tls_cert);
		goto out;
	}
	instance = opts.instance_url ? sim_strdup(opts.instance_url)
	                             : sim_printf("%s://%s", opts.tls_cert ? "https" : "http", opts.listen);
	sim_render_init();
	s = sim_state_new(instance);
	s->webhook_timeout_s = opts.webhook_timeout_s;
	sim_control_set_startup(startup);
	pthread_mutex_lock(&s->mu);
	startup(s);
	pthread_mutex_unlock(&s->mu);

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* threads started below inherit the mask */
	signal(SIGPIPE, SIG_IGN);

	sim_hooks_start(s, opts.hook_workers);
	ports = sim_printf("%s%s", opts.listen, opts.tls_cert ? "s" : "");
	threads = sim_printf("%d", opts.threads);
	const char *options[] = {"listening_ports", ports, "num_threads", threads, "decode_url", "no",
	                         "enable_keep_alive", "yes",
	                         /* headers and body are two writes: on a kept-alive connection the second would wait
	                            for the client's delayed ACK (about 40 ms) */
	                         "tcp_nodelay", "1", "request_timeout_ms", "120000",
	                         opts.tls_cert ? "ssl_certificate" : NULL, opts.tls_cert, NULL, NULL};
	struct mg_callbacks cb;
	memset(&cb, 0, sizeof(cb));
	cb.log_message = log_message;
	cb.init_connection = init_connection;
	ctx = mg_start(&cb, s, options);
	if (!ctx) {
		fprintf(stderr, "gitlab-sim: cannot listen on %s\n", ports);
		goto out;
	}
	mg_set_request_handler(ctx, "/", handle_request, s);
	printf("gitlab-sim listening on %s (instance %s)\n", ports, instance);
	if (opts.seed_demo)
		printf("gitlab-sim demo: group 'demo' with 300 projects; token %s\n", DEMO_TOKEN);
	fflush(stdout);

	int sig = 0;
	sigwait(&set, &sig);
	fprintf(stderr, "gitlab-sim: signal %d, stopping\n", sig);
	rc = 0;
out:
	if (ctx)
		mg_stop(ctx);
	if (s) {
		sim_hooks_stop(s);
		sim_state_free(s);
	}
	free(ports);
	free(threads);
	free(instance);
	mg_exit_library();
	return rc;
}
