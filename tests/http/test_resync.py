"""HTTP: the resync (POST /api/sync, the same run the scheduler makes) against the GitLab simulator.

Shows: 25 projects in nested subgroups appear, inherit their group configs and, with auto_gate_new_repos on, get
their hook and merge setting in the same resync; an archived and a deleted project are handled; our hook deleted
by hand on 3 repos and disabled by GitLab on 2 are all repaired on the next resync, counted (drifted, repaired)
and listed in its summary and in the "resync.repair" audit entry; a merge setting turned off by hand is turned
back on; token health: an expiry within 30 days is a warning and the mrgate_gitlab_token_expires_in_days gauge,
an expired or revoked token fails the resync with the reason, shows on GET /api/connection, stops GitLab writes
(the apply item says why) until PUT /api/connection stores a good token; a no-change resync of 1,000 gated repos
makes no GitLab write; an unknown hook_mode is refused.
"""
import datetime
import functools
import time

import flows
import harness
from harness import Mrgate, run
from sim import Sim

TOKEN = "glpat-resync-token-0001"
sim = Sim("resync_sim")
# GitLab.com answers GET /projects/:id 400 times a minute per user (the simulator's default, issue 19); a resync
# reads it once per block_merge repo, so 1,000 repos take 2.5 minutes there. This test counts writes, not minutes.
sim.settings(project_get_per_minute=0)
sim.add_group("acme", tier="premium")
sim.add_token(TOKEN, access={"acme": 50})
srv = Mrgate("resync", env={"MRGATE_GITLAB_CONCURRENCY": "16", "MRGATE_GITLAB_RATE_LIMIT": "0",
                            "MRGATE_LOG_LEVEL": "info", "MRGATE_GITLAB_BACKOFF_MS": "20"})
c = srv.login()
HOOK = srv.base + "/hooks/gitlab"
GATED = {"enabled": True, "block_merge": True, "fail_on": "high", "scans": ["secrets"]}


def day(offset):
    return (datetime.date.today() + datetime.timedelta(days=offset)).isoformat()


# Run a resync now and return the finished run (with its summary when it got that far).
sync = functools.partial(flows.sync, c, timeout=120, ended=flows.resync_ended)
our_hooks = functools.partial(sim.hooks_by_project, HOOK)
repos = functools.partial(flows.all_repos, c)


def metric(name):
    for line in c.get("/metrics").body.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.split()[-1])
    return None


def setup_module():
    r = c.put("/api/connection", {"gitlab_url": sim.base, "group": "acme", "token": TOKEN})
    assert r.status == 200, r.body
    # configs first (no repo is known yet, so no group is listed: each is confirmed as a group still to come), then
    # 25 projects over 3 levels of subgroups
    assert c.put("/api/configs/groups/acme", GATED).status == 400
    assert c.put("/api/configs/groups/acme", dict(GATED, confirm_new_group=True)).status == 200
    assert c.put("/api/configs/groups/acme/team01", {"fail_on": "critical", "confirm_new_group": True}).status == 200
    r = c.put("/api/settings", {"auto_gate_new_repos": True})
    assert r.status == 200 and r.json()["auto_gate_new_repos"] is True, r.body
    sim.seed("acme", projects=25, depth=3, fanout=2)


setup_module()
STATE = {}


def test_new_repos_appear_inherit_and_are_gated():
    sim.reset_counters()
    s = sync()
    assert s["new_repos"] == 25 and s["trigger"] == "api", s
    sm = s["summary"]
    assert sm["new"] == 25 and sm["newly_gated"] == 25 and sm["failed"] == 0, sm
    assert sm["drifted"] == 0 and sm["repaired"] == 0 and sm["repaired_repos"] == [], sm
    rows = repos()
    assert len(rows) == 25
    assert max(r["namespace_full_path"].count("/") for r in rows) == 3, "nested subgroups"
    assert all(r["status"] == "gated" for r in rows), {r["path_with_namespace"]: r["status"] for r in rows}
    deep = [r for r in rows if r["namespace_full_path"].startswith("acme/team01/")]
    assert deep, [r["namespace_full_path"] for r in rows]
    one = c.get(f"/api/repos/{deep[0]['id']}").json()
    assert one["config"]["fail_on"] == "critical" and one["config_sources"]["fail_on"] == "group:acme/team01", one
    assert one["config_sources"]["enabled"] == "group:acme", one
    hooks = our_hooks()
    assert sorted(hooks) == sorted(r["id"] for r in rows) and all(len(v) == 1 for v in hooks.values()), hooks
    assert all(sim.project(r["id"])["settings"]["only_allow_merge_if_pipeline_succeeds"] is True for r in rows[:5])
    by = sim.counters()["by_route"]
    assert by.get("POST /api/v4/projects/:id/hooks") == 25, by
    STATE["rows"] = rows


def test_archived_and_deleted_are_handled():
    rows = STATE["rows"]
    shelved, gone = rows[0], rows[1]
    sim.archive_project(shelved["id"])
    sim.remove_project(gone["id"], wait=True)
    sim.reset_counters()
    s = sync()
    sm = s["summary"]
    assert s["archived"] == 1 and s["removed"] == 1, s
    assert sm["archived"] == 1 and sm["removed"] == 1 and sm["new"] == 0 and sm["failed"] == 0, sm
    assert sm["repaired"] == 0 and sm["drifted"] == 0, sm
    a = c.get(f"/api/repos/{shelved['id']}").json()
    assert a["archived"] is True and a["status"] == "archived", a
    g = c.get(f"/api/repos/{gone['id']}").json()
    assert g["status"] == "removed" and g["removed_at"], g
    assert c.get("/api/repos?limit=1").json()["count"] == 24
    # neither is touched on GitLab (an archived project is read-only there)
    cnt = sim.counters()
    assert cnt["writes"] == 0, cnt
    by = cnt["by_route"]
    assert by.get("GET /api/v4/projects/:id/hooks") == 23, by  # only the 23 repos still gated are re-read
    # the group tree counts as gated what the list does: not the archived repo (a walk found it counted)
    tree = c.get("/api/groups").json()
    assert tree[0]["repos"] == 24 and tree[0]["gated"] == 23, tree[0]
    STATE["live"] = [r for r in rows if r["id"] not in (shelved["id"], gone["id"])]


def test_five_drifted_hooks_are_repaired_and_listed():
    live = STATE["live"]
    gl = sim.client(TOKEN)
    hooks = our_hooks()
    deleted, disabled = live[0:3], live[3:5]
    for r in deleted:
        h = hooks[r["id"]][0]
        assert gl.delete(f"/api/v4/projects/{r['id']}/hooks/{h['id']}").status == 204
    old_disabled = []
    for r, alert in zip(disabled, ("disabled", "temporarily_disabled")):
        h = hooks[r["id"]][0]
        sim.disable_hook(h["id"], alert_status=alert, disabled_for_s=3600)
        old_disabled.append(h["id"])
    sim.reset_counters()
    s = sync()
    sm = s["summary"]
    paths = sorted(r["path_with_namespace"] for r in deleted + disabled)
    assert sm["drifted"] == 5 and sm["repaired"] == 5 and sm["failed"] == 0, sm
    assert sm["repaired_repos"] == paths, (sm["repaired_repos"], paths)
    assert sm["newly_gated"] == 0 and sm["checked"] == 23, sm
    hooks = our_hooks()
    for r in deleted + disabled:
        assert len(hooks[r["id"]]) == 1, hooks[r["id"]]
        assert hooks[r["id"]][0]["alert_status"] == "executable", hooks[r["id"]]
    live_ids = {h["id"] for v in hooks.values() for h in v}
    assert not live_ids & set(old_disabled), "the disabled hooks were replaced"
    by = sim.counters()["by_route"]
    assert by.get("POST /api/v4/projects/:id/hooks") == 5, by
    assert by.get("DELETE /api/v4/projects/:id/hooks/:hook_id") == 2, by
    assert sim.counters()["writes"] == 7, sim.counters()
    # the audit log names them
    a = c.get("/api/audit?action=resync.repair&limit=1").json()["items"]
    assert a and a[0]["details"]["repaired"] == paths and a[0]["details"]["sync_run"] == s["id"], a
    assert a[0]["actor"] == "system (resync)", a[0]
    # the audit page shows the job and a sentence that names the repos (an entry without before/after)
    assert a[0]["target"] == f"job {a[0]['details']['job']}", a[0]
    assert a[0]["details"]["message"] == (
        f"sync run {s['id']} repaired drift on 5 repositories: " + ", ".join(paths)), a[0]
    for r in deleted + disabled:
        row = c.get(f"/api/repos/{r['id']}").json()
        assert row["status"] == "gated" and row["last_apply"]["result"] == "changed", row
    # the next resync finds nothing to repair
    sim.reset_counters()
    s = sync()
    assert s["summary"]["repaired"] == 0 and s["summary"]["drifted"] == 0, s["summary"]
    assert sim.counters()["writes"] == 0


LEAK = "glpat-Xk9Pq2mZr7Lw4Tb8Nc3V"  # a GitLab token shape the secrets scanner catches


def runs_of(pid, iid):
    return c.get(f"/api/gates?repo={pid}&mr={iid}").json()["items"]


def test_merge_requests_opened_while_the_hook_was_down_are_gated_once_it_is_repaired():
    # a walk: GitLab disabled the hook of two gated repos (as it does after failed deliveries), an MR adding a
    # secret was opened on each, the resync repaired both hooks, and neither MR ever got a gate run: one was merged
    # with no mrgate status at all. A repaired hook now gates the open MRs it did not deliver (their head never ran)
    live = STATE["live"]
    down, gone, fine = live[7], live[8], live[9]
    hooks = our_hooks()
    ok = sim.open_mr(fine["id"], [{"path": "docs/a.md", "content": "hello\n"}], source_branch="docs")
    assert flows.final_status(sim, fine["id"], ok["sha"], timeout=60, logs=srv)["status"] == "success"
    before_fine = runs_of(fine["id"], ok["iid"])
    sim.disable_hook(hooks[down["id"]][0]["id"], alert_status="disabled", disabled_for_s=3600)
    assert sim.client(TOKEN).delete(f"/api/v4/projects/{gone['id']}/hooks/{hooks[gone['id']][0]['id']}").status == 204
    mrs = {}
    for r in (down, gone):
        mrs[r["id"]] = sim.open_mr(r["id"], [{"path": "deploy/ci.env", "content": f"A=1\nGITLAB_TOKEN={LEAK}\n"}],
                                   source_branch="leak", wait=True)
    for pid, mr in mrs.items():
        assert flows.statuses(sim, pid, mr["sha"]) == [] and runs_of(pid, mr["iid"]) == [], "nothing was delivered"
    s = sync()
    assert s["summary"]["repaired"] == 2, s["summary"]
    for pid, mr in mrs.items():
        final = flows.final_status(sim, pid, mr["sha"], timeout=60, logs=srv)
        # the secret is found (acme/team01 fails on critical only: there it is reported, not failed)
        assert final["description"].startswith("1 high new finding"), (pid, final)
        assert final["status"] == ("success" if "/team01/" in c.get(f"/api/repos/{pid}").json()["path_with_namespace"]
                                   else "failed"), (pid, final)
        assert len(runs_of(pid, mr["iid"])) == 1
    # an MR whose head had been gated is not run again, and the next resync queues nothing
    assert runs_of(fine["id"], ok["iid"]) == before_fine
    s = sync()
    assert s["summary"]["repaired"] == 0, s["summary"]
    for pid, mr in mrs.items():
        assert len(runs_of(pid, mr["iid"])) == 1


def test_merge_setting_changed_by_hand_is_repaired():
    r = STATE["live"][6]
    gl = sim.client(TOKEN)
    assert gl.put(f"/api/v4/projects/{r['id']}", {"only_allow_merge_if_pipeline_succeeds": False}).status == 200
    s = sync()
    assert s["summary"]["repaired_repos"] == [r["path_with_namespace"]], s["summary"]
    assert sim.project(r["id"])["settings"]["only_allow_merge_if_pipeline_succeeds"] is True


def test_a_pending_ungate_a_resync_applies_is_not_called_a_repair():
    # a walk: an ungate that GitLab refused was applied by the next resync, which audited it as "resync.repair
    # repaired drift" on the repo, as if someone had removed the gate by hand
    r = STATE["live"][10]
    hook = our_hooks()[r["id"]][0]
    sim.script("DELETE", f"/api/v4/projects/{r['id']}/hooks/{hook['id']}",
               [{"status": 403, "body": {"message": "403 Forbidden"}}])
    try:
        resp = c.put(f"/api/repos/{r['id']}/config", {"enabled": False})
        assert resp.status == 200, resp.body
        job = flows.wait_job(c, resp.json()["apply"]["job_id"])
        assert job["failed"] == 1, job
    finally:
        sim.clear_scripts()
    assert our_hooks().get(r["id"]), "the refused ungate removed the hook"
    repairs = len(c.get("/api/audit?action=resync.repair&limit=100").json()["items"])
    sm = sync()["summary"]
    assert sm["repaired"] == 0 and sm["repaired_repos"] == [] and sm["drifted"] == 0, sm
    assert sm["applied"] == 1 and sm["failed"] == 0, sm
    assert not our_hooks().get(r["id"]), "the resync did not apply the ungate"
    assert len(c.get("/api/audit?action=resync.repair&limit=100").json()["items"]) == repairs
    resp = c.delete(f"/api/repos/{r['id']}/config")
    assert resp.status == 200, resp.body
    assert flows.wait_job(c, resp.json()["apply"]["job_id"])["failed"] == 0
    assert len(our_hooks()[r["id"]]) == 1


def test_a_cli_sync_lists_only_and_leaves_sync_now_free():
    # a walk: after `mrgate sync` the run had no summary, so POST /api/sync was refused "still applying what it
    # found" for minutes and the dashboard said so, though nothing was being applied
    r = srv.cli("sync")
    assert r.returncode == 0 and "listed only" in r.stdout, (r.stdout, r.stderr)
    run = c.get("/api/sync").json()
    assert run["trigger"] == "cli" and run["summary"]["listed_only"] is True, run
    assert "checked" not in run["summary"], run
    r = c.post("/api/sync")  # at once, not after the two minutes a lost follow-up is given
    assert r.status == 202, r.body
    run_id = r.json()["id"]
    s = harness.wait_for(lambda: (lambda x: x if flows.resync_ended(x) else None)(c.get(f"/api/sync?id={run_id}").json()),
                         120, "the resync to end")
    assert s["trigger"] == "api" and s["summary"]["checked"] >= 1 and "listed_only" not in s["summary"], s


def test_token_expiring_soon_is_a_warning_and_a_gauge():
    soon = "glpat-resync-token-soon"
    sim.add_token(soon, access={"acme": 50}, expires_at=day(10))
    r = c.put("/api/connection", {"gitlab_url": sim.base, "group": "acme", "token": soon})
    assert r.status == 200, r.body
    assert any("expires" in w for w in r.json()["warnings"]), r.json()["warnings"]
    sync()
    days = metric("mrgate_gitlab_token_expires_in_days")
    assert days is not None and 9 <= days <= 10.01, days
    assert metric("mrgate_gitlab_token_ok") == 1
    conn = c.get("/api/connection").json()
    assert conn["token"]["status"] == "ok" and any("expires" in w for w in conn["warnings"]), conn
    STATE["token"] = soon


def _bad_token_stops_writes(kind, spoil, reason, target):
    tok = STATE["token"]
    spoil(tok)
    s = sync(expect="failed")
    assert reason in s["error"] and "updated" in s["error"], s
    conn = c.get("/api/connection").json()
    assert conn["token"]["status"] == kind and reason in conn["token"]["problem"], conn["token"]
    assert metric("mrgate_gitlab_token_ok") == 0
    # a configure that would write: no GitLab write, the item says why
    sim.reset_counters()
    r = c.post("/api/configure", {"selection": {"ids": [target["id"]]}, "config": {"enabled": False}})
    assert r.status in (200, 202), r.body
    job_id = r.json()["apply"]["job_id"]
    deadline = time.time() + 30
    while time.time() < deadline:
        job = c.get(f"/api/jobs/{job_id}").json()
        if job["finished"]:
            break
        time.sleep(0.1)
    items = job["items"]
    assert items and items[0]["result"] == "error" and reason in items[0]["message"], items
    assert sim.counters()["writes"] == 0, sim.counters()
    assert target["id"] in our_hooks()
    # a good token clears it; the next resync then carries out the pending un-gating
    fresh = f"glpat-resync-token-{kind}-fixed"
    sim.add_token(fresh, access={"acme": 50})
    r = c.put("/api/connection", {"gitlab_url": sim.base, "group": "acme", "token": fresh})
    assert r.status == 200, r.body
    conn = c.get("/api/connection").json()
    assert conn["token"]["status"] == "ok" and "problem" not in conn["token"], conn["token"]
    s = sync()
    assert s["summary"]["failed"] == 0, s["summary"]
    assert target["id"] not in our_hooks()
    STATE["token"] = fresh


def test_expired_token_stops_writes_until_updated():
    _bad_token_stops_writes("expired", lambda t: sim.add_token(t, access={"acme": 50}, expires_at=day(-1)),
                            "expired", STATE["live"][7])


def test_revoked_token_stops_writes_until_updated():
    _bad_token_stops_writes("revoked", sim.revoke_token, "revoked", STATE["live"][8])


def test_no_change_resync_of_1000_makes_no_write():
    sim.seed("acme/bulk", projects=1000 - 24, depth=1, fanout=3)
    t0 = time.time()
    s = sync(timeout=180)
    assert s["summary"]["new"] == 976 and s["summary"]["newly_gated"] == 976 and s["summary"]["failed"] == 0, s
    print(f"  gated 976 new repos in one resync in {time.time() - t0:.1f}s")
    gated = [r["id"] for r in repos(status="gated")]
    assert len(gated) == 997, len(gated)  # 1000 listed, 1 archived, 2 un-gated by the token tests
    hooks = our_hooks()
    assert all(len(hooks.get(i, [])) == 1 for i in gated)
    sim.reset_counters()
    t0 = time.time()
    s = sync(timeout=180)
    print(f"  no-change resync of 1000 repos in {time.time() - t0:.1f}s")
    sm = s["summary"]
    assert sm["checked"] == 997 and sm["drifted"] == 0 and sm["new"] == 0 and sm["failed"] == 0, sm
    cnt = sim.counters()
    assert cnt["writes"] == 0, cnt
    assert cnt["by_route"].get("GET /api/v4/projects/:id/hooks") == 997, cnt["by_route"]


def test_gated_repos_stay_gated_while_a_resync_checks_them():
    # a walk saw every gated repo turn "applying" for the seconds a resync's follow-up re-read their hooks: the Gated
    # filter and count said 0 while nothing was being changed. A check that finds nothing to change is not an apply.
    gated = len(repos(status="gated"))
    assert gated == 997, gated
    sim.set_faults(latency_ms=60)
    try:
        run_id = flows.start_sync(c).json()["id"]
        seen, polls = set(), 0
        while True:
            run = c.get(f"/api/sync?id={run_id}").json()
            page = c.get("/api/repos?limit=1&with=summary").json()
            seen.add((page["summary"]["statuses"].get("gated", 0), page["summary"]["statuses"].get("applying", 0)))
            polls += 1
            if flows.resync_ended(run):
                break
            time.sleep(0.05)
    finally:
        sim.set_faults()
    assert run["state"] == "done" and run["summary"]["checked"] == 997 and run["summary"]["drifted"] == 0, run
    assert polls >= 10, polls  # the follow-up was watched, not missed
    assert seen == {(997, 0)}, seen
    # a repo that does need a change still shows it is being applied: the hook deleted by hand, then a resync
    victim = next(r for r in repos(status="gated"))
    h = our_hooks()[victim["id"]][0]
    assert sim.client(TOKEN).delete(f"/api/v4/projects/{victim['id']}/hooks/{h['id']}").status == 204
    s = sync()
    assert s["summary"]["drifted"] == 1 and s["summary"]["repaired"] == 1, s["summary"]
    assert c.get(f"/api/repos/{victim['id']}").json()["status"] == "gated"


def test_a_config_written_before_its_group_exists_applies_whatever_its_case():
    # a walk wrote the config of a group GitLab did not have yet as "Demo/Later2"; GitLab then created demo/later2
    # and its repos inherited nothing, while Defaults & groups listed the config as if it applied
    assert c.put("/api/configs/groups/ACME/Later-Team", {"fail_on": "low", "comment": "always",
                                                         "confirm_new_group": True}).status == 200
    assert c.put("/api/configs/groups/acme/later-team/Sub", {"fail_on": "critical",
                                                             "confirm_new_group": True}).status == 200
    sim.add_group("acme/later-team")
    sim.add_group("acme/later-team/sub")
    p1 = sim.add_project("acme/later-team", "p1")
    p2 = sim.add_project("acme/later-team/sub", "p2")
    s = sync()
    assert s["summary"]["failed"] == 0, s["summary"]
    r1, r2 = c.get(f"/api/repos/{p1['id']}").json(), c.get(f"/api/repos/{p2['id']}").json()
    assert r1["config"]["fail_on"] == "low" and r1["config_sources"]["fail_on"] == "group:acme/later-team", r1
    assert r1["config_sources"]["comment"] == "group:acme/later-team", r1
    assert r2["config"]["fail_on"] == "critical" and r2["config_sources"]["fail_on"] == "group:acme/later-team/sub", r2
    assert r2["config"]["comment"] == "always", r2
    paths = [g["path"] for g in c.get("/api/configs/groups").json()]
    assert "acme/later-team" in paths and "acme/later-team/sub" in paths, paths
    assert "ACME/Later-Team" not in paths and "acme/later-team/Sub" not in paths, paths
    a = c.get("/api/audit?action=config.group.respell&limit=5").json()["items"]
    assert {(x["before"]["path"], x["after"]["path"]) for x in a} >= {
        ("ACME/Later-Team", "acme/later-team"), ("acme/later-team/Sub", "acme/later-team/sub")}, a
    assert all(x["actor"] == "system (sync)" for x in a), a
    # the next sync changes nothing more
    n = len(a)
    sync()
    assert len(c.get("/api/audit?action=config.group.respell&limit=5").json()["items"]) == n
    assert c.delete("/api/configs/groups/acme/later-team/sub").status == 200
    assert c.delete("/api/configs/groups/acme/later-team").status == 200


def test_group_hook_mode_is_refused_cleanly():
    # group-hook mode itself is tests/http/test_group_hooks.py; an unknown mode is refused and nothing changes
    r = c.put("/api/settings", {"hook_mode": "groups"})
    assert r.status == 400 and "\"project\"" in r.json()["message"], r.body
    r = c.put("/api/settings", {"hook_mode": "project"})
    assert r.status == 200 and r.json()["hook_mode"] == "project", r.body
    assert not [h for h in sim.hooks() if h.get("group_hook")]


def test_token_not_logged():
    logs = srv.logs()
    assert TOKEN not in logs and "glpat-resync-token-soon" not in logs


run([test_new_repos_appear_inherit_and_are_gated, test_archived_and_deleted_are_handled,
     test_five_drifted_hooks_are_repaired_and_listed,
     test_merge_requests_opened_while_the_hook_was_down_are_gated_once_it_is_repaired,
     test_merge_setting_changed_by_hand_is_repaired,
     test_a_pending_ungate_a_resync_applies_is_not_called_a_repair,
     test_a_cli_sync_lists_only_and_leaves_sync_now_free,
     test_token_expiring_soon_is_a_warning_and_a_gauge, test_expired_token_stops_writes_until_updated,
     test_revoked_token_stops_writes_until_updated, test_no_change_resync_of_1000_makes_no_write,
     test_gated_repos_stay_gated_while_a_resync_checks_them,
     test_a_config_written_before_its_group_exists_applies_whatever_its_case,
     test_group_hook_mode_is_refused_cleanly, test_token_not_logged])
