/*
 * server/static_files.c
 *    The dashboard's files, served from the web root by mrgate itself rather than by CivetWeb's file server.
 *
 * Design: CivetWeb's file server follows symbolic links, serves dotfiles and runs CGI and SSI by file name. This
 * one serves only what the dashboard is: regular files inside the web root with a known extension (html, js, css,
 * yaml, json, svg, png, ico, txt, woff2, map). A request path with any segment that starts with "." (dotfiles,
 * "..") is a 404 before the file system is touched; the path is then resolved with realpath(), and a result outside
 * the root (a link pointing out of it) is a 404 as well; the file is opened with O_NOFOLLOW | O_NONBLOCK (a FIFO
 * cannot stall a thread) and must be a regular file (fstat). Every reply carries the security headers
 * (http_json.h). Caching as CivetWeb did: assets for an hour (max-age=3600, with an ETag), HTML pages revalidated
 * every time ("no-cache"), so the dashboard loads its modules from the browser's cache.
 * Threading: any thread; the root is resolved once at start.
 */
#include "http_json.h"
#include "log.h"
#include "routes.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATIC_MAX_BYTES (16 * 1024 * 1024)

static char root_real[PATH_MAX];
static bool have_root;

static const struct {
	const char *ext;
	const char *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".yaml", "application/yaml; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
    {".woff2", "font/woff2"},
    {".map", "application/json"},
};

static const char *type_of(const char *path)
{
	const char *dot = strrchr(path, '.');
	const char *slash = strrchr(path, '/');
	if (!dot || (slash && dot < slash))
		return NULL;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return NULL;
}

/* No empty-name tricks: every segment non-empty (except a trailing one), none starting with '.', no backslash. */
static bool path_acceptable(const char *path)
{
	if (path[0] != '/' || strchr(path, '\\') || strlen(path) > 1024)
		return false;
	for (const char *p = path; *p; p++)
		if (*p == '/' && p[1] == '.')
			return false;
	return true;
}

static int not_found(struct mg_connection *conn)
{
	return http_send_error(conn, 404, "not_found", "no such file");
}

bool static_files_init(const char *web_root)
{
	have_root = web_root && realpath(web_root, root_real) != NULL;
	return have_root;
}

int static_files_serve(struct mg_connection *conn, const char *path)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);
	bool head = strcmp(ri->request_method, "HEAD") == 0;
	if (!head && strcmp(ri->request_method, "GET") != 0)
		return http_send_error(conn, 405, "method_not_allowed", "only GET and HEAD are allowed on files");
	if (!have_root || !path_acceptable(path))
		return not_found(conn);
	char want[PATH_MAX + 32], real[PATH_MAX];
	int n =
	    snprintf(want, sizeof(want), "%s%s%s", root_real, path, path[strlen(path) - 1] == '/' ? "index.html" : "");
	if (n < 0 || (size_t)n >= sizeof(want))
		return not_found(conn);
	const char *type = type_of(want);
	if (!type || !realpath(want, real))
		return not_found(conn);
	size_t rl = strlen(root_real);
	if (strncmp(real, root_real, rl) != 0 || real[rl] != '/' || strstr(real + rl, "/."))
		return not_found(conn); /* resolved outside the root, or to a dotfile through a link */
	int fd = open(real, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return not_found(conn);
	struct stat sb;
	char *buf = NULL;
	int status;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > STATIC_MAX_BYTES) {
		status = not_found(conn);
		goto out;
	}
	const char *cache = strcmp(type, types[0].type) == 0 ? "no-cache" : "max-age=3600";
	char etag[64], hdrs[160];
	snprintf(etag, sizeof(etag), "\"%llx-%llx\"", (unsigned long long)sb.st_mtime, (unsigned long long)sb.st_size);
	const char *inm = mg_get_header(conn, "If-None-Match");
	snprintf(hdrs, sizeof(hdrs), "ETag: %s\r\n", etag);
	if (inm && strcmp(inm, etag) == 0) {
		status = http_send_raw_cache(conn, 304, type, "", 0, hdrs, cache);
		goto out;
	}
	size_t len = (size_t)sb.st_size, got = 0;
	buf = malloc(len + 1);
	if (!buf) {
		status = http_send_status(conn, CORE_ENOMEM, "out of memory");
		goto out;
	}
	while (got < len) {
		ssize_t r = read(fd, buf + got, len - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (head) {
		/* the length of the body a GET would get, and no body */
		status = http_send_raw_cache(conn, 200, type, NULL, got, hdrs, cache);
		goto out;
	}
	status = http_send_raw_cache(conn, 200, type, buf, got, hdrs, cache);
out:
	free(buf);
	close(fd);
	return status;
}
