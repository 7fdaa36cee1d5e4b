"""Gate runs are leased with a heartbeat, like job items (issue 12): while an instance works on a run its lease is
renewed; when the instance is killed (SIGKILL) with gate runs in flight, another instance takes each run over once
its lease runs out and every run ends with exactly one verdict, posted once, within the lease (not after the whole
gate timeout and a margin, as before)."""
import time

import flows
import harness
from harness import Mrgate, run, wait_for
from sim import Sim

TOKEN = "glpat-gateLeaseTokenAcme01"
LEASE_MS = 3000
TIMEOUT_S = 120  # the old lease was this + 120 s: a takeover would take 4 minutes
EMPTY_SARIF = """printf '%s' '{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"ok"}},"results":[]}]}' #"""
STATUS_POST = "POST /api/v4/projects/:id/statuses/:sha"

sim = Sim("gate_lease")
# Each of the 3 runs downloads the project's archive once per instance: 6 in a minute, past GitLab.com's 5 a minute
# per project (issue 19), whose waits are tested in test_gate_limits.py. This test is about leases.
sim.settings(archive_per_minute=0)
sim.add_group("acme", tier="premium")
sim.add_token(TOKEN, scopes=["api"], access={"acme": 50}, username="leasebot", bot=True)
PID = sim.add_project("acme", "leased", files=[{"path": "README.md", "content": "# leased\n"}])["id"]

common = {"MRGATE_GATE_WORKERS": "4", "MRGATE_GATE_TIMEOUT": str(TIMEOUT_S), "MRGATE_JOB_LEASE_MS": str(LEASE_MS),
          "MRGATE_LOG_LEVEL": "info", "TMPDIR": harness.workdir("gate_lease-tmp")}
# The first instance's scanner never finishes in time: its runs are in flight when it is killed.
a = Mrgate("gate_lease", env=dict(common, MRGATE_SCANNER_SAST="sleep 20 #"))
c = a.login()
HOOK_URL = a.base + "/hooks/gitlab"
N = 3


db = a.sql


def setup():
    flows.connect_and_sync(c, sim, "acme", TOKEN, timeout=30)
    r = c.put(f"/api/repos/{PID}/config", {"enabled": True, "scans": ["secrets", "sast"], "comment": "off"})
    assert r.status == 200, r.body
    flows.wait_hook(sim.client(TOKEN), PID, HOOK_URL, 30)


def test_heartbeat_renews_and_a_killed_instances_runs_are_taken_over_once():
    setup()
    mrs = [sim.open_mr(PID, [{"path": f"src/f{i}.py", "content": f"x = {i}\n"}], source_branch=f"b{i}")
           for i in range(N)]
    shas = {m["sha"] for m in mrs}
    wait_for(lambda: db("SELECT count(*) FROM gate_runs WHERE state = 'running' AND pending_posted")[0][0] == str(N),
             30, f"{N} runs in flight with their pending status posted")
    # the heartbeat renews the leases while the scanner runs (the lease is shorter than the scan)
    lease = "SELECT id, extract(epoch FROM lease_until) FROM gate_runs WHERE state = 'running' ORDER BY id"
    first = db(lease)
    time.sleep(LEASE_MS / 1000 * 1.5)
    later = dict(db(lease))
    assert len(later) == N, later  # still running: the leases did not run out
    for rid, until in first:
        assert float(later[rid]) > float(until), (rid, until, later[rid])

    sim.reset_counters()
    a.proc.kill()  # SIGKILL: no goodbye, the leases just stop being renewed
    t_kill = time.time()
    b = Mrgate("gate_lease_b", db_url=a.db_url,
               env=dict(common, MRGATE_SCANNER_SAST=EMPTY_SARIF, MRGATE_SECRET_KEY_FILE=a.env["MRGATE_SECRET_KEY_FILE"]))
    rows = wait_for(lambda: (lambda r: r if all(x[1] == "done" for x in r) else None)(
        db("SELECT id, state, verdict, attempts, lease_owner FROM gate_runs ORDER BY id")),
        60, "every run finished by the second instance")
    took = time.time() - t_kill
    # within the lease (plus claim polling and the run itself), far from the old timeout + 120 s
    assert took < LEASE_MS / 1000 + 30, took
    assert len(rows) == N, rows
    for rid, state, verdict, attempts, owner in rows:
        assert (state, verdict, attempts, owner) == ("done", "passed", "2", ""), (rid, state, verdict, attempts)
    # exactly one verdict each: one final status per head, posted once (the pending ones were posted before the kill)
    time.sleep(LEASE_MS / 1000)
    assert sim.counters()["by_route"].get(STATUS_POST) == N, sim.counters()["by_route"]
    for sha in shas:
        st = flows.statuses(sim, PID, sha)
        assert [s["status"] for s in st] == ["success"], st
    assert "lost their lease" not in b.logs()
    b.stop()


run([test_heartbeat_renews_and_a_killed_instances_runs_are_taken_over_once])
