"""Turning the gate on and off never strands open merge requests (DESIGN.md §3, last paragraph).

Gating a repo that already has open MRs queues a gate run for each of them at once: they get `pending`, then their
verdict, without any webhook delivery. Un-gating it posts a final `success` "mrgate gate removed for this
repository" where the latest `mrgate` status is `failed`, leaves an MR whose latest status is already `success`
alone, and never touches statuses of other names.
"""
import functools
import time

import flows
from harness import Mrgate, run
from sim import Sim

TOKEN = "glpat-gateTransitions001"
LEAK = "glpat-Xk9Pq2mZr7Lw4Tb8Nc3V"  # a GitLab token shape the secrets scanner must catch
DIFFS = "/api/v4/projects/:id/merge_requests/:merge_request_iid/diffs"
STATUS_POST = "/api/v4/projects/:id/statuses/:sha"
REMOVED = "mrgate gate removed for this repository"

sim = Sim("gate_transitions")
sim.add_group("acme", tier="premium")
sim.add_token(TOKEN, scopes=["api"], access={"acme": 50}, username="gatebot", bot=True)
PID = sim.add_project("acme", "app", files=[{"path": "README.md", "content": "# app\n"}])["id"]
# opened before mrgate gates the repo: no hook of ours exists, so GitLab tells mrgate nothing about them
MR_LEAK = sim.open_mr(PID, [{"path": "deploy/ci.env", "content": f"A=1\nGITLAB_TOKEN={LEAK}\n"}],
                      source_branch="leak", title="Ship the CI environment")
MR_CLEAN = sim.open_mr(PID, [{"path": "docs/intro.md", "content": "hello\n"}], source_branch="docs")
CLOSED = sim.open_mr(PID, [{"path": "x.env", "content": f"T={LEAK}\n"}], source_branch="closed")
sim.close_mr(PID, CLOSED["iid"])

srv = Mrgate("gate_transitions", env={"MRGATE_GATE_WORKERS": "2", "MRGATE_GATE_TIMEOUT": "20",
                                      "MRGATE_GITLAB_RETRIES": "2", "MRGATE_GITLAB_BACKOFF_MS": "20",
                                      "MRGATE_LOG_LEVEL": "info"})
c = srv.login()
gl = sim.client(TOKEN)
HOOK_URL = srv.base + "/hooks/gitlab"
GATED = {"enabled": True, "fail_on": "high", "scans": ["secrets"], "block_merge": True, "comment": "off"}


wait_for = srv.wait_for
ours = functools.partial(flows.statuses, sim, PID)  # every mrgate status on sha, oldest first (the full record)
db = srv.sql


def repo():
    r = c.get(f"/api/repos/{PID}")
    assert r.status == 200, r.body
    return r.json()


def apply_state():
    """(applied_state, applying, last_result, last_message, last_applied_at) of the repo, or None."""
    rows = db("SELECT applied_state, applying, last_result, coalesce(last_message, ''), last_applied_at"
              f" FROM repo_gitlab_state WHERE repo_id = {PID}")
    return tuple(rows[0]) if rows else None


def wait_applied(after=None):
    """Wait for an apply that finished after the one stamped `after`; its state row."""
    def done():
        st = apply_state()
        return st if st and st[1] == "f" and st[2] and st[4] != after else None
    return wait_for(done, 20, "apply finished")


def latest_per_api(sha):
    """What GitLab calls the latest mrgate status of sha (GET .../statuses without all=true)."""
    r = gl.get(f"/api/v4/projects/{PID}/repository/commits/{sha}/statuses?name=mrgate")
    assert r.status == 200, r.body
    return r.json()


def setup_module():
    flows.connect_and_sync(c, sim, "acme", TOKEN, timeout=20, logs=srv)
    assert repo()["status"] == "ungated"


def test_gating_a_repo_gates_its_open_mrs_without_a_webhook():
    # hold each scan a moment so that `pending` can be seen before the verdict
    sim.script("GET", DIFFS, [{"stall_ms": 1500}, {"stall_ms": 1500}])
    sim.reset_counters()
    r = c.put(f"/api/repos/{PID}/config", GATED)
    assert r.status == 200, r.body
    wait_for(lambda: all(ours(m["sha"]) for m in (MR_LEAK, MR_CLEAN)), 20, "pending statuses")
    assert ours(MR_LEAK["sha"])[-1]["status"] == "pending", ours(MR_LEAK["sha"])
    assert ours(MR_LEAK["sha"])[-1]["ref"] == "leak"
    leak = wait_for(lambda: (lambda s: s if s[-1]["status"] != "pending" else None)(ours(MR_LEAK["sha"])), 30,
                    "verdict on the leaking MR")[-1]
    assert leak["status"] == "failed" and leak["description"] == "1 high new finding (fails on high)", leak
    clean = wait_for(lambda: (lambda s: s if s[-1]["status"] != "pending" else None)(ours(MR_CLEAN["sha"])), 30,
                     "verdict on the clean MR")[-1]
    assert clean["status"] == "success", clean
    assert ours(CLOSED["sha"]) == [], "a closed MR is not gated"
    st = wait_applied()
    assert st[:3] == ("hook+merge", "f", "changed"), st
    assert "queued gate runs for 2 open merge requests" in st[3], st
    assert any(h["url"] == HOOK_URL for h in sim.hooks() if h["project_id"] == PID)
    assert sim.project(PID)["settings"]["only_allow_merge_if_pipeline_succeeds"] is True
    # no merge request webhook was involved: the runs came from the apply (the pipelines our statuses made send
    # pipeline events, which queue no run)
    mr_events = [d for d in sim.deliveries() if d["event"] != "Pipeline Hook"]
    assert mr_events == [], mr_events
    assert db(f"SELECT count(*) FROM webhook_events WHERE project_id = {PID}") == [["0"]]
    rows = db(f"SELECT mr_iid, head_sha, source_branch, state, event_id IS NULL FROM gate_runs"
              f" WHERE project_id = {PID} ORDER BY mr_iid")
    assert rows == [[str(MR_LEAK["iid"]), MR_LEAK["sha"], "leak", "done", "t"],
                    [str(MR_CLEAN["iid"]), MR_CLEAN["sha"], "docs", "done", "t"]], rows
    # the Gates page names each MR by its title, also without a delivery (a walk saw these runs as bare "!1")
    titles = {g["mr_iid"]: g["mr_title"] for g in c.get(f"/api/gates?repo={PID}").json()["items"]}
    assert titles[MR_LEAK["iid"]] == "Ship the CI environment", titles
    assert titles[MR_CLEAN["iid"]], titles
    # issue 14: the open MRs come from one list: a job of one repo in a group of one project reads the project's own
    # (a job of more repos than the group's project list has pages reads the group's: tests/http/test_apply_calls.py)
    assert sim.count("GET", "/api/v4/projects/:id/merge_requests") == 1
    assert sim.count("GET", "/api/v4/groups/:id/merge_requests") == 0


def test_applying_a_gated_repo_again_queues_nothing():
    before = db(f"SELECT count(*) FROM gate_runs WHERE project_id = {PID}")
    stamp = apply_state()[4]
    r = c.post("/api/configure", {"selection": {"ids": [PID]}, "config": {"enabled": True}, "reapply": True})
    assert r.status in (200, 202), r.body
    st = wait_applied(stamp)
    assert st[:3] == ("hook+merge", "f", "unchanged"), st
    time.sleep(0.3)
    assert db(f"SELECT count(*) FROM gate_runs WHERE project_id = {PID}") == before


def test_ungating_posts_gate_removed_where_blocked_and_nothing_else():
    sha = MR_LEAK["sha"]
    # another tool's failed status on the same commit: never ours to touch
    r = gl.post(f"/api/v4/projects/{PID}/statuses/{sha}", {"state": "failed", "name": "other-ci", "ref": "leak",
                                                          "description": "their verdict"})
    assert r.status == 201, r.body
    clean_before = ours(MR_CLEAN["sha"])
    assert [s["status"] for s in latest_per_api(sha)] == ["failed"]
    sim.reset_counters()
    stamp = apply_state()[4]
    r = c.put(f"/api/repos/{PID}/config", {"enabled": False})
    assert r.status == 200, r.body
    st = wait_applied(stamp)
    assert st[:3] == ("off", "f", "changed"), st
    assert "posted 1 final \"gate removed\" status on open merge requests" in st[3], st
    assert repo()["status"] in ("ungated", "exception"), repo()
    assert not any(h["url"] == HOOK_URL for h in sim.hooks() if h["project_id"] == PID)
    # the leaking MR: a final success says the gate was removed, and it is now the latest mrgate status
    latest = latest_per_api(sha)
    assert [(s["status"], s["description"]) for s in latest] == [("success", REMOVED)], latest
    assert latest[0]["ref"] == "leak"
    history = ours(sha)
    assert [s["status"] for s in history] == ["failed", "success"], history
    assert history[-1]["id"] > history[0]["id"]
    # the clean MR was already success: left alone
    assert ours(MR_CLEAN["sha"]) == clean_before
    assert sim.count("POST", STATUS_POST) == 1, sim.counters()["by_route"]
    # statuses of other names untouched
    other = [s for s in sim.statuses(project_id=PID, sha=sha) if s["name"] == "other-ci"]
    assert [(s["status"], s["description"]) for s in other] == [("failed", "their verdict")], other
    assert sim.project(PID)["settings"]["only_allow_merge_if_pipeline_succeeds"] is False, "setting restored"


def test_ungating_twice_posts_nothing_more():
    sim.reset_counters()
    stamp = apply_state()[4]
    r = c.post("/api/configure", {"selection": {"ids": [PID]}, "config": {"enabled": False}, "reapply": True})
    assert r.status in (200, 202), r.body
    st = wait_applied(stamp)
    assert st[:3] == ("off", "f", "unchanged"), st
    assert sim.count("POST", STATUS_POST) == 0, sim.counters()["by_route"]
    assert sim.count("GET", "/api/v4/projects/:id/merge_requests") == 0, "no transition, no MR list"


if __name__ == "__main__":
    setup_module()
    run([test_gating_a_repo_gates_its_open_mrs_without_a_webhook,
         test_applying_a_gated_repo_again_queues_nothing,
         test_ungating_posts_gate_removed_where_blocked_and_nothing_else,
         test_ungating_twice_posts_nothing_more])
