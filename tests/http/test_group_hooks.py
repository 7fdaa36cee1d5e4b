"""HTTP: group-hook mode against the GitLab simulator.

Shows: on a premium group with an Owner group access token, PUT /api/settings {"hook_mode":"group"} leaves exactly
one group hook of ours and no project hook of ours while the repos stay `gated`; a project added in a gated
subgroup (GitLab sends project_create to the group hook) is listed, gated and gets its merge setting within
seconds, without any resync; an MR on it gets an `mrgate` status through the group hook; switching back to project
mode gives every gated repo exactly one project hook and removes the group hook; a free-tier group or a
non-Owner token is refused with a clear message.
"""
import time

import harness  # noqa: F401
from harness import Mrgate, run
from sim import Sim

TOKEN = "glpat-group-hooks-owner"
DEV = "glpat-group-hooks-maint"
FREE = "glpat-group-hooks-free"
sim = Sim("group_hooks_sim")
sim.seed("ghq", projects=12, depth=1, fanout=2, tier="premium")
sim.add_group("ghfree", tier="free")
sim.add_project("ghfree", "one", notify=False)
sim.add_token(TOKEN, kind="group_access", access={"ghq": 50})
sim.add_token(DEV, kind="group_access", access={"ghq": 40})
sim.add_token(FREE, kind="group_access", access={"ghfree": 50})
srv = Mrgate("group_hooks", env={"MRGATE_GITLAB_RATE_LIMIT": "0", "MRGATE_LOG_LEVEL": "info"})
c = srv.login()
HOOK = srv.base + "/hooks/gitlab"
SUB = "ghq/team01"
GATED = {"enabled": True, "block_merge": True, "fail_on": "high", "scans": ["secrets"]}


def wait_for(fn, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def connect(token, group):
    r = c.put("/api/connection", {"gitlab_url": sim.base, "group": group, "token": token})
    assert r.status == 200, r.body


def sync():
    r = c.post("/api/sync")
    assert r.status == 202, r.body
    run_id = r.json()["id"]
    wait_for(lambda: c.get(f"/api/sync?id={run_id}").json()["state"] != "running", 60, "sync")


def repos():
    r = c.get("/api/repos?limit=500")
    assert r.status == 200, r.body
    return r.json()["items"]


def ours():
    hooks = [h for h in sim.hooks() if h["url"] == HOOK]
    return [h for h in hooks if h.get("group_hook")], [h for h in hooks if not h.get("group_hook")]


def gated_ids():
    return sorted(r["id"] for r in repos() if r["status"] == "gated")


def no_applying():
    return c.get("/api/repos?status=applying&limit=1").json()["count"] == 0


def test_free_tier_and_non_owner_are_refused():
    connect(FREE, "ghfree")
    r = c.put("/api/settings", {"hook_mode": "group"})
    assert r.status == 409 and "Premium or Ultimate and an Owner token" in r.json()["message"], r.body
    connect(DEV, "ghq")
    r = c.put("/api/settings", {"hook_mode": "group"})
    assert r.status == 409 and "Owner" in r.json()["message"], r.body
    assert c.get("/api/settings").json()["hook_mode"] == "project"
    assert ours() == ([], [])


def test_setup_project_mode():
    connect(TOKEN, "ghq")
    sync()
    assert c.put(f"/api/configs/groups/{SUB}", GATED).status == 200
    wait_for(no_applying, 60, "apply")
    ids = gated_ids()
    assert len(ids) == 4, [(r["path_with_namespace"], r["status"]) for r in repos()]
    groups, projects = ours()
    assert groups == [] and sorted(h["project_id"] for h in projects) == ids, ours()


def test_switch_to_group_mode():
    before = gated_ids()
    r = c.put("/api/settings", {"hook_mode": "group"})
    assert r.status == 200 and r.json()["hook_mode"] == "group", r.body
    wait_for(lambda: not ours()[1], 30, "project hooks removed")
    wait_for(no_applying, 30, "apply")
    groups, projects = ours()
    assert len(groups) == 1 and projects == [], (groups, projects)
    g = groups[0]
    assert g["merge_requests_events"] and not g["push_events"] and g["token"], g
    assert gated_ids() == before
    for pid in before:
        assert sim.project(pid)["settings"]["only_allow_merge_if_pipeline_succeeds"] is True


def test_project_create_gates_new_repo_without_resync():
    runs_before = c.get("/api/sync").json()["id"]
    made = sim.add_project(SUB, "fresh-one", wait=True)
    pid = made["id"]
    t0 = time.time()
    row = wait_for(lambda: [r for r in repos() if r["id"] == pid and r["status"] == "gated"], 10, "new repo gated")
    print(f"  new repo gated {time.time() - t0:.1f}s after project_create")
    assert row[0]["path_with_namespace"] == f"{SUB}/fresh-one", row
    wait_for(lambda: sim.project(pid)["settings"]["only_allow_merge_if_pipeline_succeeds"] is True, 10, "merge setting")
    assert c.get("/api/sync").json()["id"] == runs_before, "no resync ran"
    assert ours()[1] == [], "no project hook in group mode"
    mr = sim.open_mr(pid, [{"path": "app.py", "content": "print('hi')\n"}])
    st = wait_for(lambda: [s for s in sim.statuses(project_id=pid, sha=mr["sha"]) if s["name"] == "mrgate"
                           and s["status"] in ("success", "failed")], 30, "mrgate status via the group hook")
    assert st[0]["status"] == "success", st


def test_switch_back_to_project_mode():
    ids = gated_ids()
    assert len(ids) == 5, ids
    r = c.put("/api/settings", {"hook_mode": "project"})
    assert r.status == 200 and r.json()["hook_mode"] == "project", r.body
    groups, projects = ours()
    assert groups == [], groups
    by = {}
    for h in projects:
        by.setdefault(h["project_id"], []).append(h)
    assert sorted(by) == ids and all(len(v) == 1 for v in by.values()), by
    assert gated_ids() == ids


run([test_free_tier_and_non_owner_are_refused, test_setup_project_mode, test_switch_to_group_mode,
     test_project_create_gates_new_repo_without_resync, test_switch_back_to_project_mode])
