"""HTTP: authentication, sessions, CSRF, API tokens, throttling, JSON errors, body cap, metrics, shutdown."""
import json
import signal

import harness
from harness import ADMIN_PASSWORD, Mrgate, run

srv = Mrgate("api_auth")


def test_api_requires_auth():
    c = srv.client()
    for method, path in [("GET", "/api/session"), ("DELETE", "/api/session"), ("GET", "/api/anything")]:
        r = c.request(method, path)
        assert r.status in (401, 404), (method, path, r.status)
        body = r.json()
        assert set(body) == {"error", "message"}, body
    r = c.get("/api/session")
    assert r.status == 401 and r.json()["error"] == "unauthorized"
    assert r.header("Content-Type") == "application/json"


def test_login_ok_and_bad():
    c = srv.client()
    r = c.post("/api/session", {"username": "admin", "password": "wrong password"})
    assert r.status == 401, r.body
    assert r.json() == {"error": "unauthorized", "message": "wrong username or password"}
    assert "mrgate_session" not in c.cookies
    r = c.post("/api/session", {"username": "admin", "password": ADMIN_PASSWORD})
    assert r.status == 200, r.body
    cookie = r.header("Set-Cookie")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie, cookie
    me = c.get("/api/session")
    assert me.status == 200 and me.json()["username"] == "admin" and me.json()["is_admin"] is True
    # names are unique ignoring case, so a login ignores case too, and the session is the stored name's
    c2 = srv.client()
    assert c2.post("/api/session", {"username": "Admin", "password": ADMIN_PASSWORD}).status == 200
    assert c2.get("/api/session").json()["username"] == "admin"


def test_bad_input_is_400_with_reason():
    c = srv.client()
    cases = [
        (b'{"username": "admin", "password": ', "ends early"),
        (b'{"username": "admin"} trailing', "after the JSON value"),
        (b'["admin"]', "must be a JSON object"),
        # a walk sent null and read "the document ends early"
        (b'null', "the request body is null: it must be a JSON object"),
        (b' \n null\n', "is null"),
        (b'nul', "ends early"),
        (b'{"username": 5, "password": "x"}', '"username"'),
        (b'{"username": "admin", "password": null}', '"password"'),
        # every other body refuses a member it does not know; a login answered "wrong username or password"
        (b'{"username": "admin", "password": "x", "extra": 1}', 'unknown field "extra"'),
        (b'{"user": "admin", "password": "x"}', 'unknown field "user"'),
    ]
    for raw, why in cases:
        r = c.post("/api/session", raw=raw, headers={"Content-Type": "application/json"})
        assert r.status == 400, (raw, r.status, r.body)
        assert why in r.json()["message"], (raw, r.json())


def test_a_login_is_json_only():
    # a walk: POST /api/session read a text/plain body, which a form on another site can send without a preflight,
    # signing the visitor's browser in as someone else (login CSRF)
    c = srv.client()
    body = b'{"username": "admin", "password": "' + ADMIN_PASSWORD.encode() + b'"}'
    for ctype in (None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                  "application/jsonx"):
        r = c.post("/api/session", raw=body, headers={"Content-Type": ctype} if ctype else {})
        assert r.status == 415 and r.json()["error"] == "unsupported_media_type", (ctype, r.status, r.body)
        assert "Content-Type: application/json" in r.json()["message"], r.body
        assert not any(k.lower() == "set-cookie" for k in r.headers.keys()), (ctype, r.headers)
    for ctype in ("application/json", "application/json; charset=utf-8", "Application/JSON"):
        r = c.post("/api/session", raw=body, headers={"Content-Type": ctype})
        assert r.status == 200, (ctype, r.status, r.body)


def test_every_json_body_is_json_only():
    # a walk: POST /api/configure read a text/plain body sent with a valid CSRF token; only the login refused one
    c = srv.login()
    before = c.get("/api/configs/default").json()
    body = json.dumps({"enabled": True, "fail_on": "low", "scans": ["secrets"]}).encode()
    for method, path in (("PUT", "/api/configs/default"), ("POST", "/api/configure"), ("POST", "/api/users"),
                         ("PUT", "/api/settings")):
        for ctype in (None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx"):
            r = c.request(method, path, raw=body, headers={"Content-Type": ctype} if ctype else {})
            assert r.status == 415 and r.json()["error"] == "unsupported_media_type", (path, ctype, r.status, r.body)
            assert "Content-Type: application/json" in r.json()["message"], r.body
    assert c.get("/api/configs/default").json() == before
    r = c.request("PUT", "/api/configs/default", raw=body, headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status == 200 and r.json()["config"]["fail_on"] == "low", r.body


def test_body_cap():
    c = srv.client()
    big = b'{"username": "' + b"a" * (1024 * 1024 + 10) + b'"}'
    r = c.post("/api/session", raw=big, headers={"Content-Type": "application/json"})
    assert r.status == 413, r.status
    assert r.json()["error"] == "too_large"


def test_csrf_required_for_cookie_writes():
    c = srv.client()
    r = c.post("/api/session", {"username": "admin", "password": ADMIN_PASSWORD})
    csrf = r.json()["csrf_token"]
    r = c.delete("/api/session")  # no CSRF header
    assert r.status == 403 and r.json()["error"] == "csrf", r.body
    r = c.delete("/api/session", headers={"X-CSRF-Token": "wrong" + csrf})
    assert r.status == 403
    assert c.get("/api/session").status == 200  # still logged in
    r = c.delete("/api/session", headers={"X-CSRF-Token": csrf})
    assert r.status == 204
    assert c.get("/api/session").status == 401  # logged out


def test_logout_ends_the_session_server_side():
    c = srv.client()
    c.post("/api/session", {"username": "admin", "password": ADMIN_PASSWORD})
    stolen = dict(c.cookies)
    csrf = c.get("/api/session").json()["csrf_token"]
    assert c.delete("/api/session", headers={"X-CSRF-Token": csrf}).status == 204
    other = srv.client()
    other.cookies = stolen  # a copy of the old cookie no longer works
    assert other.get("/api/session").status == 401


def test_bearer_token():
    out = srv.cli("token", "create", "admin", "ci-script")
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert token.startswith("mrg_")
    c = srv.client()
    r = c.get("/api/session", headers={"Authorization": "Bearer " + token})
    assert r.status == 200 and r.json()["auth"] == "token", r.body
    # bearer writes need no CSRF token
    r = c.delete("/api/session", headers={"Authorization": "Bearer " + token})
    assert r.status == 204
    r = c.get("/api/session", headers={"Authorization": "Bearer mrg_not-a-token"})
    assert r.status == 401
    assert token not in srv.logs()


def test_login_throttling():
    assert srv.cli("user", "add", "dave", stdin="dave-passphrase\n").returncode == 0
    c = srv.client()
    # the guesses are counted against the user whatever the case of the name they give
    for name in ("dave", "Dave", "DAVE", "dAve", "daVe"):
        assert c.post("/api/session", {"username": name, "password": "bad-passphrase"}).status == 401
    r = c.post("/api/session", {"username": "dave", "password": "dave-passphrase"})
    assert r.status == 429, r.body
    assert int(r.header("Retry-After")) > 0
    assert r.json()["error"] == "too_many_requests"


def test_user_add_cli_errors():
    r = srv.cli("user", "add", "dave", stdin="another-passphrase\n")
    assert r.returncode != 0 and "already exists" in r.stderr
    r = srv.cli("user", "add", "erin", stdin="short\n")
    assert r.returncode != 0 and "fewer than 8 characters" in r.stderr and "at least 8 characters" in r.stderr, r.stderr
    r = srv.cli("user", "add", "erin", stdin="aaaaaaaaaa\n")
    assert r.returncode != 0 and "repeats one character" in r.stderr, r.stderr
    r = srv.cli("user", "add", "erin", stdin="12345678\n")
    assert r.returncode != 0 and "run of neighbouring characters" in r.stderr, r.stderr
    r = srv.cli("user", "add", "erin", stdin="Password1\n")
    assert r.returncode != 0 and "most common passwords" in r.stderr, r.stderr
    r = srv.cli("user", "add", "bad name", stdin="a-good-password-1\n")
    assert r.returncode != 0 and "invalid user name" in r.stderr, r.stderr
    r = srv.cli("user", "add", "erin", stdin="")
    assert r.returncode != 0


def test_unknown_route_and_method():
    c = srv.login()
    r = c.get("/api/no-such-thing")
    assert r.status == 404 and r.json()["error"] == "not_found"
    r = c.put("/healthz", {})
    assert r.status == 405 and r.json()["error"] == "method_not_allowed"


def test_health_and_metrics():
    c = srv.client()
    assert c.get("/healthz").json()["status"] == "ok"
    r = c.get("/readyz")
    assert r.status == 200 and r.json()["status"] == "ready"
    text = c.get("/metrics").body.decode()
    assert "# TYPE mrgate_http_requests_total counter" in text
    assert 'mrgate_http_requests_total{route="/api/session",method="POST",status="401"}' in text
    assert 'mrgate_db_connections{state="open"}' in text
    assert 'mrgate_db_connections{state="waiting"} 0' in text  # nothing waits for a connection now
    assert 'mrgate_db_connections{state="max"} 16' in text  # the default pool (README)
    # every metric says what it is (a walk found mrgate_job_claim_queries_total and mrgate_gitlab_token_ok without)
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    assert "mrgate_job_claim_queries_total" in names, names
    for n in sorted(names):
        assert f"# TYPE {n} " in text and f"# HELP {n} " in text, n


def test_static_dashboard():
    r = srv.client().get("/")
    assert r.status == 200 and b"<html" in r.body.lower()


def test_no_secrets_in_logs():
    logs = srv.logs()
    assert ADMIN_PASSWORD not in logs
    assert "dave-passphrase" not in logs
    for line in logs.splitlines():
        if line.startswith("{"):
            json.loads(line)  # every log line is JSON


def test_graceful_shutdown():
    assert srv.stop(signal.SIGTERM) == 0
    assert '"msg":"stopped"' in srv.logs()


run([test_api_requires_auth, test_login_ok_and_bad, test_bad_input_is_400_with_reason, test_a_login_is_json_only,
     test_every_json_body_is_json_only, test_body_cap,
     test_csrf_required_for_cookie_writes, test_logout_ends_the_session_server_side, test_bearer_token,
     test_login_throttling, test_user_add_cli_errors, test_unknown_route_and_method, test_health_and_metrics,
     test_static_dashboard, test_no_secrets_in_logs, test_graceful_shutdown])
