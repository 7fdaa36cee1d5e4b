"""HTTP: PUT /api/connection is no port scanner. Refused, unresolved and "answers but is not GitLab" look alike in
mrgate's own words, no upstream body is echoed, MRGATE_GITLAB_URL_ALLOW limits the hosts, and GitLab-supplied
web_url values that are not http(s) never reach the API."""
import http.server
import threading

import harness
from harness import Mrgate, run
from sim import Sim

MARKER = "UPSTREAM-SECRET-BODY-4242"
hits = []
user_status = [500]  # what the fake answers to GET /api/v4/user


class NotGitLab(http.server.BaseHTTPRequestHandler):
    """Something that answers HTTP on a port, with a body worth stealing, but is not GitLab."""

    def _answer(self):
        hits.append(self.path)
        if self.path.startswith("/api/v4/user"):
            body = f'{{"message": "{MARKER} internal admin panel"}}'.encode()
            self.send_response(user_status[0])
        else:
            body = f"<html><body>{MARKER} router login</body></html>".encode()
            self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer

    def log_message(self, *args):
        pass


fake = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotGitLab)
threading.Thread(target=fake.serve_forever, daemon=True).start()
fake_url = f"http://127.0.0.1:{fake.server_address[1]}"

srv = Mrgate("connection_guard")
admin = srv.login()
TOKEN = "glpat-guard-0123456789abcdef"


def put(url, client=None):
    return (client or admin).put("/api/connection", {"gitlab_url": url, "group": "acme", "token": TOKEN})


def test_refused_unresolved_and_not_gitlab_look_alike():
    answers = {}
    for what, url in [("refused", f"http://127.0.0.1:{harness.free_port()}"),
                      ("unresolved", "http://no-such-host.invalid"),
                      ("not gitlab", fake_url)]:
        r = put(url)
        body = r.body.decode()
        assert MARKER not in body, (what, body)
        assert r.status == 502, (what, r.status, body)
        msg = r.json()["message"]
        answers[what] = (r.status, r.json()["error"], msg.replace(url, "URL"))
    assert hits, "the not-GitLab server was never asked"
    assert len(set(answers.values())) == 1, answers
    status, code, msg = answers["refused"]
    assert code == "gitlab_unreachable" and "could not connect" in msg, answers
    for word in ("refused", "resolve", "404", "500", "html"):
        assert word not in msg.lower(), (word, msg)
    # (the GitLab client's debug lines may quote GitLab for an operator; nothing above debug does)
    loud = [l for l in srv.logs().splitlines() if MARKER in l and '"level":"debug"' not in l]
    assert not loud, loud


def test_a_server_that_answers_404_looks_alike_too():
    # found by a reviewer: an open port that answered 404 to GET /api/v4/user got a 400 naming it, a closed one 502
    user_status[0] = 404
    try:
        closed = put(f"http://127.0.0.1:{harness.free_port()}")
        open_ = put(fake_url)
    finally:
        user_status[0] = 500
    assert open_.status == closed.status == 502, (open_.status, open_.body, closed.status)
    assert open_.json()["error"] == closed.json()["error"] == "gitlab_unreachable", (open_.body, closed.body)
    # the message names the URL, whose port may hold the digits 404: only the rest of it must not
    assert MARKER not in open_.body.decode() and "404" not in open_.json()["message"].replace(fake_url, "URL"), \
        open_.body


def test_url_with_credentials_is_refused():
    r = put("http://user:pass@127.0.0.1:1")
    assert r.status == 400 and "user name or password" in r.json()["message"], r.body


def test_allow_list():
    guarded = Mrgate("connection_guard_allow", env={"MRGATE_GITLAB_URL_ALLOW": "gitlab.example.com, GitLab.Acme.test:8443"})
    c = guarded.login()
    n = len(hits)
    r = put(fake_url, c)
    assert r.status == 400 and r.json()["error"] == "invalid_input", r.body
    assert "MRGATE_GITLAB_URL_ALLOW" in r.json()["message"] and "127.0.0.1" in r.json()["message"], r.body
    assert len(hits) == n, "a host outside the allow list was contacted"
    for url in ("http://127.0.0.1.nip.io", "http://gitlab.example.com.evil.test", "http://[::1]:80",
                "http://0x7f000001", "https://gitlab.acme.test:9999"):
        r = put(url, c)
        assert r.status == 400 and "MRGATE_GITLAB_URL_ALLOW" in r.json()["message"], (url, r.body)
    # an allowed host goes through to the check (and fails there: nothing listens)
    r = put("https://gitlab.acme.test:8443", c)
    assert r.status == 502, r.body
    help_text = guarded.cli("--help").stdout
    assert "MRGATE_GITLAB_URL_ALLOW" in help_text


def test_only_http_web_urls_are_ingested():
    hostile = Sim("guard_hostile", args=["--instance-url", "javascript:alert(document.domain)//"])
    hostile.add_group("acme")
    hostile.add_project("acme", "svc")
    hostile.add_token(TOKEN, scopes=["api"], access={"acme": 50})
    r = put(hostile.base)
    assert r.status == 200, r.body
    r = admin.post("/api/sync", {})
    assert r.status == 202, r.body
    import time
    for _ in range(200):
        s = admin.get("/api/sync").json()
        if s.get("state") not in ("running", "queued"):
            break
        time.sleep(0.1)
    repos = admin.get("/api/repos").json()["items"]
    assert [x["path"] for x in repos] == ["svc"], repos
    assert repos[0]["web_url"] is None, repos[0]
    rows = harness.sql(srv.db_url, "SELECT coalesce(web_url, '<null>') FROM repos")
    assert rows == [["<null>"]], rows


if __name__ == "__main__":
    run([test_refused_unresolved_and_not_gitlab_look_alike, test_a_server_that_answers_404_looks_alike_too, test_url_with_credentials_is_refused, test_allow_list,
         test_only_http_web_urls_are_ingested])
