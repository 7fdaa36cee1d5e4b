/*
 * core/publicurl.h
 *    MRGATE_PUBLIC_URL: is it a URL GitLab accepts, and can a GitLab reach it?
 *
 * Design: the public URL makes the webhook URL ({public_url}/hooks/gitlab) and every commit status's target_url
 * ({public_url}/#/gates/{id}). GitLab validates both: a commit status's target_url must be an addressable http(s) URL
 * (CommitStatus, AddressableUrlValidator: 400 otherwise, so a scheme-less public URL fails every status post, the
 * final one included), and a hook URL that points at loopback, a private range or a link-local address is refused
 * with 422 "Invalid url given" unless the instance allows local requests (GitLab.com never does; Gitlab::UrlBlocker).
 * publicurl_check() is the first test, made at start (a bad value stops mrgate with a clear message);
 * publicurl_local() is the second, a warning at start and on the Connection page, before any apply meets the 422.
 * Hosts: IPv4/IPv6 literals in 127/8, 10/8, 172.16/12, 192.168/16, 169.254/16, 100.64/10, 0/8, ::1, ::, fc00::/7,
 * fe80::/10; "localhost" and *.localhost; a single-label name ("mrgate") that no public DNS resolves. Names are not
 * resolved here (a start must not wait on DNS): a public-looking name that resolves to a private address is not
 * caught, GitLab's own refusal is then reported by the apply.
 * Threading: pure functions. Ownership: nothing is kept.
 */
#ifndef MRGATE_CORE_PUBLICURL_H
#define MRGATE_CORE_PUBLICURL_H

#include "status.h"

#include <stdbool.h>
#include <stddef.h>

/* The longest public URL accepted: a hook URL made from it always fits PUBLICURL_HOOK_URL_MAX, never cut. */
#define PUBLICURL_MAX 500
/* Bytes that hold {public_url}/hooks/gitlab with its NUL. */
#define PUBLICURL_HOOK_URL_MAX (PUBLICURL_MAX + sizeof("/hooks/gitlab"))

/* CORE_OK for an http(s) URL of at most PUBLICURL_MAX characters with a host (and, if any, a port 1-65535), no
 * query, fragment, blanks or control characters; CORE_EINVAL otherwise, with the reason in err (lower case, names
 * MRGATE_PUBLIC_URL). */
enum core_status publicurl_check(const char *url, char *err, size_t errlen);

/* true when GitLab cannot reach the URL's host from outside (see above); why gets a sentence for the user. */
bool publicurl_local(const char *url, char *why, size_t whylen);

#endif
