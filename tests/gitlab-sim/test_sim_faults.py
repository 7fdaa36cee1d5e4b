"""Rate limits (429 with GitLab's headers), scripted responses, random faults, latency and TLS."""
import http.client
import subprocess
import time

from harness import run
from sim import Sim
from simtest import eq, fresh_world

sim = Sim("sim_faults")
ADMIN = "glpat-admin-faults"


def fresh():
    return fresh_world(sim, ADMIN, 10)


def test_rate_limit_headers_and_429():
    c = fresh()
    sim.set_faults(rate_limit_per_minute=5)
    for i in range(1, 6):
        r = c.get("/api/v4/user")
        eq(r.status, 200, f"request {i}")
        eq(r.header("RateLimit-Limit"), "5", "limit")
        eq(r.header("RateLimit-Observed"), str(i), "observed")
        eq(r.header("RateLimit-Remaining"), str(5 - i), "remaining")
        eq(r.header("RateLimit-Name"), "throttle_authenticated_api", "name")
        reset = int(r.header("RateLimit-Reset"))
        assert time.time() - 1 <= reset <= time.time() + 61, reset
    r = c.get("/api/v4/user")
    eq(r.status, 429, "over the limit")
    eq(r.body, b"Retry later", "plain-text body")
    assert r.header("Content-Type").startswith("text/plain"), r.header("Content-Type")
    retry = int(r.header("Retry-After"))
    assert 1 <= retry <= 60, retry
    assert r.header("RateLimit-ResetTime").endswith(" GMT"), r.header("RateLimit-ResetTime")
    eq(r.header("RateLimit-Remaining"), "0", "remaining at 429")
    # another token has its own budget
    sim.add_token("other", admin=True)
    eq(sim.client("other").get("/api/v4/user").status, 200, "per-token bucket")
    # counters see every request, the 429s included
    eq(sim.counters()["by_route"]["GET /api/v4/user"], 7, "counted")
    eq(sim.counters()["rate_limited"], 1, "the 429 of the rate limit counted apart")
    sim.set_faults()
    eq(c.get("/api/v4/user").header("RateLimit-Limit"), None, "no headers without a limit")


def test_scripted_409_then_normal():
    c = fresh()
    p = c.get("/api/v4/projects?per_page=1").json()[0]
    head = sim.project(p["id"])["head_sha"]
    sim.script("POST", "/api/v4/projects/:id/statuses/:sha",
               [{"status": 409, "body": {"message": "Another update to this commit status is in progress"}}])
    url = f"/api/v4/projects/{p['id']}/statuses/{head}"
    r = c.post(url, {"state": "pending"})
    eq((r.status, r.json()), (409, {"message": "Another update to this commit status is in progress"}), "scripted")
    eq(sim.statuses(project_id=p["id"]), [], "scripted answer changed nothing")
    eq(c.post(url, {"state": "pending"}).status, 201, "next one is normal")


def test_scripted_reset_headers_and_stall():
    c = fresh()
    sim.script("GET", "/api/v4/user", [{"reset": True}, {"status": 503, "headers": {"Retry-After": "2"}},
                                        {"stall_ms": 300}])
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
    conn.request("GET", "/api/v4/user", headers={"PRIVATE-TOKEN": ADMIN})
    try:
        conn.getresponse()
        raise AssertionError("expected the connection to be dropped")
    except (http.client.RemoteDisconnected, ConnectionResetError):
        pass
    r = c.get("/api/v4/user")
    eq((r.status, r.header("Retry-After"), r.json()), (503, "2", {"message": "503 Service Unavailable"}), "scripted")
    t0 = time.time()
    eq(c.get("/api/v4/user").status, 200, "stall then normal")
    assert time.time() - t0 >= 0.3, "stalled"
    eq(c.get("/api/v4/user").status, 200, "script used up")


def test_random_errors_latency():
    c = fresh()
    sim.set_faults(error_rate=1.0)
    statuses = {c.get("/api/v4/user").status for _ in range(30)}
    assert statuses <= {500, 502, 503} and len(statuses) >= 2, statuses
    sim.set_faults(latency_ms=150, jitter_ms=50)
    t0 = time.time()
    eq(c.get("/api/v4/user").status, 200, "with latency")
    dt = time.time() - t0
    assert 0.15 <= dt < 1.5, dt
    sim.set_faults(reset_rate=1.0)
    try:
        c.get("/api/v4/user", timeout=5)
        raise AssertionError("expected a dropped connection")
    except (http.client.RemoteDisconnected, ConnectionResetError):
        pass
    sim.set_faults(error_rate=0.5)
    got = [c.get("/api/v4/user").status for _ in range(60)]
    assert 5 <= sum(s >= 500 for s in got) <= 55, got
    # the control API is never faulted
    eq(sim.health()["ok"], True, "control unaffected")
    sim.set_faults()
    eq(sim.client().post("/__sim/faults", {"error_rate": 2}).status, 400, "invalid faults")


def test_tls_with_and_without_ca():
    tls = Sim("sim_faults_tls", tls=True, args=["--token", "tls-admin", "--seed", "secure:5"])
    url = tls.base + "/api/v4/groups/secure/projects?include_subgroups=true"
    ok = subprocess.run(["curl", "-sS", "--fail", "--cacert", tls.ca_file, "-H", "PRIVATE-TOKEN: tls-admin", url],
                        capture_output=True, text=True)
    eq(ok.returncode, 0, f"curl with CA: {ok.stderr}")
    assert '"path_with_namespace":"secure/' in ok.stdout, ok.stdout[:200]
    bad = subprocess.run(["curl", "-sS", "-H", "PRIVATE-TOKEN: tls-admin", url], capture_output=True, text=True)
    eq(bad.returncode, 60, f"curl without CA must fail verification: {bad.stderr}")
    r = tls.client("tls-admin").get("/api/v4/user")
    eq(r.status, 200, "python client with CA")
    # links in pagination headers use https
    assert tls.client("tls-admin").get("/api/v4/projects?per_page=1").header("Link").startswith("<https://")
    tls.stop()


run([test_rate_limit_headers_and_429, test_scripted_409_then_normal, test_scripted_reset_headers_and_stall,
     test_random_errors_latency, test_tls_with_and_without_ca])
