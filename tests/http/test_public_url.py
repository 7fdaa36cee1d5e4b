"""MRGATE_PUBLIC_URL (issue 19): a value GitLab would refuse as a commit status target_url stops mrgate at start with
a clear message; a public URL a GitLab cannot reach (loopback, private ranges) is warned about at start and on the
Connection page (GET /api/connection, GET /api/connection/public-url) before any apply meets GitLab's 422."""
import os
import subprocess
import time

import harness
from harness import Mrgate, run
from sim import Sim

BIN = harness.env_required("MRGATE_BIN")
TOKEN = "glpat-publicUrlToken00001"

sim = Sim("public_url_sim", local_hooks=False)  # as GitLab.com: local hook URLs are refused
sim.add_group("acme", tier="premium")
sim.add_token(TOKEN, scopes=["api"], access={"acme": 50}, username="bot", bot=True)
PID = sim.add_project("acme", "app", files=[{"path": "README.md", "content": "# app\n"}])["id"]


def test_public_url_without_scheme_is_refused_at_start():
    url = harness.fresh_database("public_url_bad")
    for bad, why in (("127.0.0.1:8080", "no scheme"), ("ftp://mrgate.example.com", "http:// or https://"),
                     ("https://mrgate.example.com:99999", "port"), ("http://", "http:// or https://"),
                     ("https://mrgate.example.com/?x=1", "query")):
        env = dict(os.environ, MRGATE_DATABASE_URL=url, MRGATE_PUBLIC_URL=bad, MRGATE_LISTEN="127.0.0.1:0")
        out = subprocess.run([BIN, "serve"], capture_output=True, text=True, env=env, timeout=30)
        assert out.returncode == 2, (bad, out.returncode, out.stderr[-2000:])
        assert "invalid MRGATE_PUBLIC_URL" in out.stderr and why in out.stderr, (bad, out.stderr)


def test_loopback_public_url_is_warned_before_any_apply():
    srv = Mrgate("public_url_loop", env={"MRGATE_LOG_LEVEL": "info"})
    c = srv.login()
    # at start, in the log
    assert "is a loopback address: a GitLab cannot deliver webhooks there" in srv.logs(), srv.logs()[-2000:]
    # before any connection exists
    r = c.get("/api/connection/public-url")
    assert r.status == 200, r.body
    p = r.json()
    assert (p["public_url"], p["hook_url"], p["reachable"]) == (srv.base, srv.base + "/hooks/gitlab", False), p
    assert "loopback" in p["warning"] and "MRGATE_PUBLIC_URL" in p["warning"], p
    assert srv.client().get("/api/connection/public-url").status == 401  # a read for users only
    # on the connection itself
    r = c.put("/api/connection", {"gitlab_url": sim.base, "group": "acme", "token": TOKEN})
    assert r.status == 200, r.body
    assert r.json()["public_url"]["reachable"] is False, r.json()
    assert "loopback" in c.get("/api/connection").json()["public_url"]["warning"]
    # and the warning was right: GitLab refuses the hook URL when the gate is applied
    assert c.post("/api/sync").status == 202
    deadline = time.time() + 30
    while time.time() < deadline and c.get("/api/sync").json().get("state") != "done":
        time.sleep(0.2)
    r = c.put(f"/api/repos/{PID}/config", {"enabled": True, "fail_on": "high", "scans": ["secrets"]})
    assert r.status == 200, r.body
    deadline = time.time() + 30
    repo = {}
    while time.time() < deadline:
        repo = c.get(f"/api/repos/{PID}").json()
        if repo.get("status") == "error":
            break
        time.sleep(0.2)
    assert repo.get("status") == "error", repo
    assert [h for h in sim.client(TOKEN).get(f"/api/v4/projects/{PID}/hooks").json()] == []
    # the job item's result follows the repo's status by a moment (the runner's recorder writes it)
    hist = {}
    deadline = time.time() + 10
    while time.time() < deadline and "GitLab refused the webhook URL" not in str(hist):
        hist = c.get(f"/api/repos/{PID}/history").json()
        time.sleep(0.1)
    assert "GitLab refused the webhook URL" in str(hist), hist
    srv.stop()


def test_public_address_is_not_warned():
    srv = Mrgate("public_url_ok", env={"MRGATE_PUBLIC_URL": "https://mrgate.example.com", "MRGATE_LOG_LEVEL": "info"})
    c = srv.login()
    p = c.get("/api/connection/public-url").json()
    assert (p["reachable"], p["warning"], p["hook_url"]) == (True, None, "https://mrgate.example.com/hooks/gitlab"), p
    assert "cannot deliver webhooks" not in srv.logs()
    srv.stop()


run([test_public_url_without_scheme_is_refused_at_start, test_loopback_public_url_is_warned_before_any_apply,
     test_public_address_is_not_warned])
