"""HTTP: group-hook mode against the GitLab simulator (faithful to GitLab on licensing and project events).

Shows: on a Free group (the group-hooks API accepts calls, delivery never happens) the switch is refused with why,
every project hook is still there and MR events still arrive; on a GitLab that accepts the hook test but never
delivers (a double) the switch is refused after the wait, the group hook mrgate made is deleted and project mode
stays; a non-Owner token is refused. On a premium group with an Owner group access token, PUT /api/settings
{"hook_mode":"group"} proves the group hook with a test delivery, then leaves exactly one group hook of ours
(merge request and project events) and no project hook of ours while the repos stay `gated`; a project created in a
nested subgroup (project_create to the group hook) is listed, gated and gets its merge setting within seconds,
without any resync; an MR on it gets an `mrgate` status through the group hook; a resync repairs a group hook whose
project_events was turned off; switching back to project mode gives every gated repo exactly one project hook and
removes the group hook. Every switch is a job: PUT /api/settings answers 202 at once with hook_mode_job, a refusal
is that job's failed item with the reason, and the mode changes only when the job succeeds.
"""
import time

import flows
from harness import Mrgate, run, wait_for
from sim import Sim

TOKEN = "glpat-group-hooks-owner"
DEV = "glpat-group-hooks-maint"
FREE = "glpat-group-hooks-free"
sim = Sim("group_hooks_sim")
sim.seed("ghq", projects=12, depth=1, fanout=2, tier="premium")
sim.add_group("ghfree", tier="free")
sim.add_project("ghfree", "one", notify=False)
sim.add_project("ghfree/sub", "two", notify=False)
sim.add_token(TOKEN, kind="group_access", access={"ghq": 50})
sim.add_token(DEV, kind="group_access", access={"ghq": 40})
sim.add_token(FREE, kind="group_access", access={"ghfree": 50})
srv = Mrgate("group_hooks", env={"MRGATE_GITLAB_RATE_LIMIT": "0", "MRGATE_LOG_LEVEL": "info"})
c = srv.login()
HOOK = srv.base + "/hooks/gitlab"
SUB = "ghq/team01"
GATED = {"enabled": True, "block_merge": True, "fail_on": "high", "scans": ["secrets"]}


def repos():
    r = c.get("/api/repos?limit=500")
    assert r.status == 200, r.body
    return r.json()["items"]


def ours():
    hooks = [h for h in sim.hooks() if h["url"] == HOOK]
    return [h for h in hooks if h.get("group_hook")], [h for h in hooks if not h.get("group_hook")]


def gated_ids():
    return sorted(r["id"] for r in repos() if r["status"] == "gated")


def switch(client, mode, expect_ok=True, timeout=90, during=None):
    """PUT hook_mode: 202 with the switch job at once (the request never waits on GitLab); wait for the job and return
    its only item (result, message, details). during(job) runs while the job runs."""
    t0 = time.time()
    r = client.put("/api/settings", {"hook_mode": mode})
    assert r.status == 202, (r.status, r.body)
    assert time.time() - t0 < 5, "the request waited"
    d = r.json()
    job = d["hook_mode_job"]
    assert job["kind"] == "hookmode" and job["total"] == 1, job
    if during:
        during(job)
    j = flows.wait_job(client, job["id"], timeout)
    item = client.get(f"/api/jobs/{job['id']}").json()["items"][0]
    if expect_ok:
        assert j["succeeded"] and item["result"] == "changed", item
    else:
        assert j["failed"] == 1 and item["result"] == "error", item
    return item


def test_free_group_switch_refused_and_project_hooks_kept():
    # its own mrgate: the Free group's repos never mix with ghq's
    fsrv = Mrgate("group_hooks_free", env={"MRGATE_GITLAB_RATE_LIMIT": "0"})
    fc = fsrv.login()
    fhook = fsrv.base + "/hooks/gitlab"
    flows.connect_and_sync(fc, sim, "ghfree", FREE, expect=None)
    assert fc.put("/api/configs/groups/ghfree", GATED).status == 200
    flows.wait_applied(fc, 60)
    mine = lambda: [h for h in sim.hooks() if h["url"] == fhook]  # noqa: E731
    before = sorted((h["id"], h["project_id"]) for h in mine())
    assert len(before) == 2 and all(not h["group_hook"] for h in mine()), mine()
    msg = switch(fc, "group", expect_ok=False)["message"]
    assert "Premium or Ultimate" in msg and "free" in msg and "project webhooks are kept" in msg, msg
    assert fc.get("/api/settings").json()["hook_mode"] == "project"
    # a refused switch is not retried from the job (an editor could replay an admin's stale decision under the
    # admin's name): an admin switches again from the settings
    job = [j for j in fc.get("/api/jobs").json()["items"] if j["kind"] == "hookmode"][0]
    r = fc.post(f"/api/jobs/{job['id']}/retry")
    assert r.status == 409 and "not retried" in r.json()["message"], r.body
    assert fc.get("/api/settings").json()["hook_mode"] == "project"
    assert sorted((h["id"], h.get("project_id")) for h in mine()) == before, mine()
    # merge request events still arrive through the project hooks
    pid = before[0][1]
    mr = sim.open_mr(pid, [{"path": "app.py", "content": "print('free')\n"}])
    assert flows.wait_verdicts(sim, pid, mr["sha"])[0]["status"] == "success"
    fsrv.stop()


def test_non_owner_is_refused():
    flows.connect(c, sim, "ghq", DEV)
    assert "Owner" in switch(c, "group", expect_ok=False)["message"]
    assert c.get("/api/settings").json()["hook_mode"] == "project"
    assert ours() == ([], [])


def test_setup_project_mode():
    flows.connect_and_sync(c, sim, "ghq", TOKEN, expect=None)
    assert c.put(f"/api/configs/groups/{SUB}", GATED).status == 200
    flows.wait_applied(c, 60)
    ids = gated_ids()
    assert len(ids) == 4, [(r["path_with_namespace"], r["status"]) for r in repos()]
    groups, projects = ours()
    assert groups == [] and sorted(h["project_id"] for h in projects) == ids, ours()


def test_double_that_never_delivers_is_refused():
    # a GitLab double: the hook test answers 201 but nothing is ever delivered
    _, projects_before = ours()
    sim.script("POST", "/api/v4/groups/:id/hooks/:hook_id/test/:trigger",
               [{"status": 201, "body": {"message": "201 Created"}}])
    t0 = time.time()
    msg = switch(c, "group", expect_ok=False)["message"]
    print(f"  refused after {time.time() - t0:.1f}s")
    assert "did not reach" in msg and HOOK in msg and "project webhooks are kept" in msg, msg
    assert c.get("/api/settings").json()["hook_mode"] == "project"
    groups, projects = ours()
    assert groups == [], "the unproven group hook is deleted"
    assert sorted(h["id"] for h in projects) == sorted(h["id"] for h in projects_before)
    pid = projects[0]["project_id"]
    mr = sim.open_mr(pid, [{"path": "ok.py", "content": "x = 1\n"}])
    assert flows.wait_verdicts(sim, pid, mr["sha"])[0]["status"] == "success"


def while_switching_to_group(job):
    # a walk asked for project mode while this switch ran: 202, "hook_mode": "project", no job, and the switch then
    # ended in group mode; both modes are refused while a switch runs, and nothing is stored
    interval = c.get("/api/settings").json()["resync_interval"]
    for mode, words in (("project", f"a webhook mode switch to group is running (job {job['id']}): wait for it to "
                                    "finish, then switch back to project"),
                        ("group", f"a webhook mode switch to group is already running (job {job['id']})")):
        r = c.put("/api/settings", {"hook_mode": mode, "resync_interval": interval + 60})
        assert r.status == 409 and words in r.json()["message"], (mode, r.status, r.body)
    s = c.get("/api/settings").json()
    assert s["hook_mode"] == "project" and s["resync_interval"] == interval, s


def test_switch_to_group_mode():
    before = gated_ids()
    tests_before = len(sim.deliveries(event="Push Hook"))
    sim.set_faults(latency_ms=300)  # the switch's GitLab calls take a while: the requests above come during it
    try:
        item = switch(c, "group", during=while_switching_to_group)
    finally:
        sim.set_faults()
    assert item["details"]["to"] == "group" and "group webhook in place" in item["message"], item
    # the Settings page shows this message after the switch: it names the apply job that removes the project hooks
    assert item["message"] == ("switched to group: group webhook in place; project webhooks being removed by apply "
                               f"job {item['details']['job_id']}"), item
    assert c.get("/api/settings").json()["hook_mode"] == "group"
    # a second switch while none runs and the mode is already group: nothing to do, 200
    r = c.put("/api/settings", {"hook_mode": "group"})
    assert r.status == 200 and "hook_mode_job" not in r.json(), r.body
    wait_for(lambda: not ours()[1], 30, "project hooks removed")
    flows.wait_applied(c, 30)
    groups, projects = ours()
    assert len(groups) == 1 and projects == [], (groups, projects)
    g = groups[0]
    assert g["merge_requests_events"] and g["project_events"] and not g["push_events"] and g["token"], g
    tests = sim.deliveries(event="Push Hook")
    assert len(tests) == tests_before + 1 and tests[-1]["hook_id"] == g["id"] and tests[-1]["success"], tests
    assert gated_ids() == before
    for pid in before:
        assert sim.project(pid)["settings"]["only_allow_merge_if_pipeline_succeeds"] is True


def test_project_create_gates_new_repo_without_resync():
    runs_before = c.get("/api/sync").json()["id"]
    made = sim.add_project(f"{SUB}/nested/deeper", "fresh-one", wait=True)
    assert len(made["deliveries"]) == 1, made
    pid = made["id"]
    t0 = time.time()
    row = wait_for(lambda: [r for r in repos() if r["id"] == pid and r["status"] == "gated"], 10, "new repo gated")
    print(f"  new repo gated {time.time() - t0:.1f}s after project_create")
    assert row[0]["path_with_namespace"] == f"{SUB}/nested/deeper/fresh-one", row
    wait_for(lambda: sim.project(pid)["settings"]["only_allow_merge_if_pipeline_succeeds"] is True, 10, "merge setting")
    assert c.get("/api/sync").json()["id"] == runs_before, "no resync ran"
    assert ours()[1] == [], "no project hook in group mode"
    mr = sim.open_mr(pid, [{"path": "app.py", "content": "print('hi')\n"}])
    st = flows.wait_verdicts(sim, pid, mr["sha"], 30)  # through the group hook
    assert st[0]["status"] == "success", st


def test_resync_repairs_project_events_off():
    g = ours()[0][0]
    owner = sim.client(TOKEN)
    r = owner.put(f"/api/v4/groups/ghq/hooks/{g['id']}", {"project_events": False})
    assert r.status == 200 and r.json()["project_events"] is False, r.body
    # the summary is written after discovery ends (the run reads "done" a little before)
    run_ = flows.sync(c, expect=None, ended=lambda j: (j.get("summary") or {}).get("group_hook"))
    gh = run_["summary"]["group_hook"]
    assert gh["ok"] and gh["repaired"], run_["summary"]
    groups, _ = ours()
    assert len(groups) == 1 and groups[0]["project_events"] is True, groups
    made = sim.add_project(SUB, "after-repair", wait=True)
    assert len(made["deliveries"]) == 1, "project_create reaches the repaired hook"
    wait_for(lambda: [r for r in repos() if r["id"] == made["id"] and r["status"] == "gated"], 10, "gated")


LEAK = "glpat-Xk9Pq2mZr7Lw4Tb8Nc3V"  # a GitLab token shape the secrets scanner catches


def runs_of(pid, iid):
    r = c.get(f"/api/gates?repo={pid}&mr={iid}")
    assert r.status == 200, r.body
    return r.json()["items"]


def resync():
    # the summary is written once the follow-up's apply job has ended
    return flows.sync(c, expect=None, ended=lambda j: (j.get("summary") or {}).get("group_hook"))


def test_merge_requests_opened_while_the_group_hook_was_down_are_gated_once_it_is_repaired():
    # project mode gates the open MRs a repaired project hook did not deliver; the group hook is the same promise:
    # GitLab disables it after failed deliveries (or someone turns its merge request events off), an MR adding a
    # secret is opened meanwhile, the resync repairs the hook and that MR must get its verdict
    ids = gated_ids()
    fine, down, off = ids[0], ids[1], ids[2]
    ok = sim.open_mr(fine, [{"path": "docs/a.md", "content": "hello\n"}], source_branch="docs-before")
    assert flows.final_status(sim, fine, ok["sha"], timeout=60, logs=srv)["status"] == "success"
    before_fine = runs_of(fine, ok["iid"])
    assert len(before_fine) == 1, before_fine
    owner = sim.client(TOKEN)

    def disable(g):
        sim.disable_hook(g["id"], alert_status="disabled")

    def events_off(g):
        r = owner.put(f"/api/v4/groups/ghq/hooks/{g['id']}", {"merge_requests_events": False})
        assert r.status == 200 and r.json()["merge_requests_events"] is False, r.body

    for pid, spoil, branch in ((down, disable, "leak-while-disabled"), (off, events_off, "leak-while-events-off")):
        spoil(ours()[0][0])
        mr = sim.open_mr(pid, [{"path": "deploy/ci.env", "content": f"A=1\nGITLAB_TOKEN={LEAK}\n"}],
                         source_branch=branch, wait=True)
        assert flows.statuses(sim, pid, mr["sha"]) == [] and runs_of(pid, mr["iid"]) == [], "nothing was delivered"
        run_ = resync()
        gh = run_["summary"]["group_hook"]
        assert gh["ok"] and gh["repaired"], run_["summary"]
        groups, _ = ours()
        assert len(groups) == 1 and groups[0]["merge_requests_events"] is True, groups
        final = flows.final_status(sim, pid, mr["sha"], timeout=60, logs=srv)
        assert final["status"] == "failed" and final["description"].startswith("1 high new finding"), (branch, final)
        assert len(runs_of(pid, mr["iid"])) == 1, runs_of(pid, mr["iid"])
    # an MR whose head had been gated is not run again, and a resync with nothing to repair queues nothing
    assert runs_of(fine, ok["iid"]) == before_fine
    queued = len(c.get("/api/gates?limit=200").json()["items"])
    run_ = resync()
    assert not run_["summary"]["group_hook"]["repaired"], run_["summary"]
    assert len(c.get("/api/gates?limit=200").json()["items"]) == queued


def test_switch_back_to_project_mode():
    ids = gated_ids()
    assert len(ids) == 6, ids
    item = switch(c, "project")
    assert "group webhook removed" in item["message"], item
    assert c.get("/api/settings").json()["hook_mode"] == "project"
    groups, projects = ours()
    assert groups == [], groups
    by = {}
    for h in projects:
        by.setdefault(h["project_id"], []).append(h)
    assert sorted(by) == ids and all(len(v) == 1 for v in by.values()), by
    assert gated_ids() == ids


run([test_free_group_switch_refused_and_project_hooks_kept, test_non_owner_is_refused, test_setup_project_mode,
     test_double_that_never_delivers_is_refused, test_switch_to_group_mode,
     test_project_create_gates_new_repo_without_resync, test_resync_repairs_project_events_off,
     test_merge_requests_opened_while_the_group_hook_was_down_are_gated_once_it_is_repaired,
     test_switch_back_to_project_mode])
