"""HTTP: the GitLab calls of an apply, counted by route on the simulator (issue 14), and no hold-and-wait.

Shows, for a group of N repos (counts, never times):
- a first apply with block merge costs per repo GET hooks, POST hook and PUT project, plus for the whole job the
  pages of one GET /groups/:id/projects and one GET /groups/:id/merge_requests; no GET /projects/:id and no
  per-project MR list, and the open MRs of the newly gated repos are gated all the same;
- re-applying with nothing to change costs one GET hooks per repo (plus the list pages), and no write, over
  connections kept alive (at most 40 for its 152 calls, not one a call);
- hooks made before mrgate asked for note events (comment commands, issue 16) are updated once: project hooks by the
  next apply, the group hook by the next resync; the one after that writes nothing;
- a merge setting turned off by hand after the list was read is turned back on by the next resync, and the job item
  says what it read and when ("merge setting read from the group's project list at HH:MM:SS");
- a list page with a member mrgate reads twice in one project is refused (which value holds is ambiguous): every
  repo is read alone and the setting turned off by hand is turned back on; so is a project listed twice with copies
  that differ;
- a webhook secret GitLab echoes in an error is hidden in the item's message and the log;
- a repo claimed by another apply (apply_claims) is neither read nor written until the claim is released: the item
  waits and retries;
- a first apply without block merge costs GET hooks and POST hook per repo;
- in group-hook mode a first apply with block merge is one PUT project per repo, and a no-change re-apply costs
  only the list pages (<= ceil(N/100) + 2 calls in all);
- a server whose database pool has 2 connections and 8 job workers applies 200 repos (no hold-and-wait), with
  exactly its 8 GitLab slots in flight at the peak (16 workers take a slot per exchange, never more);
- two apply jobs that read the group's project list at the same time on a server of 2 GitLab slots both finish (the
  lists take their slots one taker at a time);
- a preview (dry run) of the group reads as an apply job does: GET hooks per repo and the group's list pages, each
  entry saying what it read and when (it read each project, its hooks and its open MRs alone: 3 calls per repo);
- the CLI's foreground re-apply (`mrgate configure --reapply`) and its --dry-run read the group's list the same way:
  GET hooks per repo and the list pages (they read each project alone too);
- a job of no more repos than the group's project list has pages reads each project alone (GET /projects/:id), and
  no list: a job of one repo costs its own calls, not ceil(N / 100) pages; one repo more and the list is read.
"""
import math
import re

import flows
from harness import Mrgate, run, wait_for
from sim import Sim

N = 150
TOKEN = "glpat-apply-calls-owner"
sim = Sim("apply_calls_sim")
sim.seed("calls", projects=N, depth=1, fanout=2, tier="premium")
sim.add_token(TOKEN, kind="group_access", access={"calls": 50})
srv = Mrgate("apply_calls", env={"MRGATE_GITLAB_RATE_LIMIT": "0", "MRGATE_LOG_LEVEL": "info"})
c = srv.login()
HOOK = srv.base + "/hooks/gitlab"
GATED = {"enabled": True, "block_merge": True, "fail_on": "high", "scans": ["secrets"]}
PAGES = math.ceil(N / 100)

flows.connect_and_sync(c, sim, "calls", TOKEN, timeout=120)
IDS = sorted(r["id"] for r in flows.all_repos(c))
assert len(IDS) == N, len(IDS)
# open MRs on three repos before they are gated: gating starts -> their MRs get a gate run
MRS = [(pid, sim.open_mr(pid, [{"path": "ok.py", "content": "x = 1\n"}], notify=False)) for pid in IDS[:3]]


def configure(config, reapply=False):
    body = {"selection": {"filter": {"group": "calls"}}, "config": config, "confirm_no_scanner": True}
    if reapply:
        body["reapply"] = True
    r = c.post("/api/configure", body)
    assert r.status in (200, 202), (r.status, r.body)
    return r.json()


def apply(config, reapply=False):
    """Configure the whole group, wait for its apply job; the simulator's counters of the job alone."""
    sim.reset_counters()
    out = configure(config, reapply)
    assert out["apply"] and out["apply"]["repos"] == N, out
    job = flows.wait_job(c, out["apply"]["job_id"], 120)
    assert job["succeeded"], job
    return out["apply"]["job_id"], sim.counters()


def by_route(cnt, route):
    return cnt["by_route"].get(route, 0)


# the routes an apply calls per repo (the gate runs queued for open MRs make their own calls on other routes)
PER_REPO = ("GET /api/v4/projects/:id/hooks", "POST /api/v4/projects/:id/hooks", "PUT /api/v4/projects/:id/hooks/:hook_id",
            "DELETE /api/v4/projects/:id/hooks/:hook_id", "GET /api/v4/projects/:id", "PUT /api/v4/projects/:id",
            "GET /api/v4/projects/:id/merge_requests")


def per_repo_calls(cnt):
    return sum(by_route(cnt, r) for r in PER_REPO)


def merge_setting(pid):
    return sim.project(pid)["settings"]["only_allow_merge_if_pipeline_succeeds"]


def test_a_preview_of_many_repos_reads_the_groups_lists():
    # a preview (dry run) read each project alone: GET /projects/:id, GET hooks and, for each repo whose gating
    # would start, GET /projects/:id/merge_requests: 3 calls per repo where an apply makes 1 read and shares the
    # group's list pages; the preview a user runs before "Apply" cost as much GitLab time and rate limit as the apply
    sim.reset_counters()
    d = flows.dry_run(c, {"selection": {"filter": {"group": "calls"}}, "config": GATED, "confirm_no_scanner": True},
                      timeout=120)
    cnt = sim.counters()
    print(f"  a preview of {N} repos: {cnt['total']} calls: {cnt['by_route']}")
    assert d["job"]["succeeded"] and len(d["plan"]) == N, d["job"]
    assert cnt["writes"] == 0, cnt
    assert by_route(cnt, "GET /api/v4/projects/:id/hooks") == N, cnt
    assert by_route(cnt, "GET /api/v4/projects/:id") == 0, cnt
    assert by_route(cnt, "GET /api/v4/projects/:id/merge_requests") == 0, cnt
    assert by_route(cnt, "GET /api/v4/groups/:id/projects") == PAGES, cnt
    assert by_route(cnt, "GET /api/v4/groups/:id/merge_requests") == 1, cnt
    assert cnt["total"] == N + PAGES + 1, cnt
    # the plan is the same: every repo would get its hook and the merge setting, the three open MRs a gate run
    plan = {p["repo_id"]: p for p in d["plan"]}
    assert all(p["result"] == "changed" for p in plan.values()), d["plan"][:3]
    assert all(p["settings"] and p["hooks"]["create"] == 1 for p in plan.values()), d["plan"][:3]
    for pid, _ in MRS:
        assert plan[pid]["open_mrs_to_gate"] == 1, plan[pid]
    assert sum(p.get("open_mrs_to_gate") or 0 for p in plan.values()) == len(MRS), d["plan"][:3]
    # each entry says where its merge setting and open MRs came from, and when
    for p in plan.values():
        assert any(re.fullmatch(r"merge setting read from the group's project list at \d\d:\d\d:\d\d", x)
                   for x in p["read"]), p
    assert any(x.startswith("open merge requests read from the group's merge request list at ")
               for x in plan[MRS[0][0]]["read"]), plan[MRS[0][0]]
    assert sum(p["gitlab_reads"] for p in plan.values()) == cnt["total"], cnt


def test_first_apply_with_block_merge_is_three_calls_per_repo():
    _, cnt = apply(GATED)
    print(f"  first apply: {cnt['total']} calls for {N} repos: {cnt['by_route']}")
    assert by_route(cnt, "GET /api/v4/projects/:id/hooks") == N, cnt
    assert by_route(cnt, "POST /api/v4/projects/:id/hooks") == N, cnt
    assert by_route(cnt, "PUT /api/v4/projects/:id") == N, cnt
    assert by_route(cnt, "GET /api/v4/projects/:id") == 0, cnt
    assert by_route(cnt, "GET /api/v4/projects/:id/merge_requests") == 0, cnt
    assert by_route(cnt, "GET /api/v4/groups/:id/projects") == PAGES, cnt
    assert by_route(cnt, "GET /api/v4/groups/:id/merge_requests") == 1, cnt
    assert per_repo_calls(cnt) == 3 * N, cnt
    assert all(merge_setting(pid) is True for pid in IDS[:10])
    hooks = sim.hooks_by_project(HOOK)
    assert len(hooks) == N and all(len(v) == 1 for v in hooks.values())
    # the open MRs of the newly gated repos were gated from the group's list
    for pid, mr in MRS:
        assert flows.wait_verdicts(sim, pid, mr["sha"])[0]["status"] == "success", (pid, mr)


def test_no_change_reapply_is_one_get_per_repo():
    job_id, cnt = apply(GATED, reapply=True)
    print(f"  no-change re-apply: {cnt['total']} calls: {cnt['by_route']}")
    assert cnt["writes"] == 0, cnt
    assert by_route(cnt, "GET /api/v4/projects/:id/hooks") == N, cnt
    assert by_route(cnt, "GET /api/v4/groups/:id/projects") == PAGES, cnt
    assert cnt["total"] == N + PAGES, cnt
    # connections are kept alive and reused (GitLab keeps them open): not one per call. The workers' pooled
    # handles (16 at most here), the list's fan-out, the test's own control calls: far fewer than the calls
    print(f"  {cnt['connections']} connections for {cnt['total']} calls")
    assert cnt["connections"] <= 40, cnt
    items = c.get(f"/api/jobs/{job_id}?items_limit=5").json()["items"]
    read = items[0]["details"]["read"]
    assert any(x.startswith("merge setting read from the group's project list at ") for x in read), items[0]
    # the repos were claimed ahead of their items, a batch at a time: every claim was given back
    assert srv.sql("SELECT count(*) FROM apply_claims") == [["0"]], srv.sql("SELECT * FROM apply_claims")


def test_the_clis_apply_and_preview_read_the_groups_lists():
    # `mrgate configure` applies in the foreground, and read each project alone: a re-apply of the group cost
    # GET /projects/:id and GET hooks per repo (2 calls where the API's job makes 1 and shares the list pages),
    # a first apply 5 (with each newly gated repo's open MRs); its --dry-run too
    for args, what in ((("--reapply",), "re-apply"), (("--reapply", "--dry-run"), "preview of a re-apply")):
        sim.reset_counters()
        r = srv.cli("configure", "--repos", "calls/**", *args)
        assert r.returncode == 0, (r.stdout, r.stderr)
        cnt = sim.counters()
        print(f"  the CLI's {what} of {N} repos: {cnt['total']} calls: {cnt['by_route']}")
        assert cnt["writes"] == 0, cnt
        assert by_route(cnt, "GET /api/v4/projects/:id/hooks") == N, cnt
        assert by_route(cnt, "GET /api/v4/projects/:id") == 0, cnt
        assert by_route(cnt, "GET /api/v4/groups/:id/projects") == PAGES, cnt
        assert cnt["total"] == N + PAGES, cnt
    assert "applied 150 repos: 0 changed, 150 unchanged" in srv.cli("configure", "--repos", "calls/**",
                                                                      "--reapply").stdout


def without_note_events(hooks, path):
    """Turn note events off on hooks, as every mrgate hook was before comment commands."""
    gl = sim.client(TOKEN)
    for owner, h in hooks:
        r = gl.put(f"/api/v4/{path}/{owner}/hooks/{h['id']}", {"url": HOOK, "note_events": False})
        assert r.status == 200 and r.json()["note_events"] is False, r.body


def test_hooks_without_note_events_are_updated_once():
    without_note_events([(pid, hs[0]) for pid, hs in sim.hooks_by_project(HOOK).items()], "projects")
    _, cnt = apply(GATED, reapply=True)
    print(f"  re-apply after note events: {cnt['total']} calls: {cnt['by_route']}")
    assert by_route(cnt, "PUT /api/v4/projects/:id/hooks/:hook_id") == N, cnt
    assert by_route(cnt, "POST /api/v4/projects/:id/hooks") == 0, cnt
    assert by_route(cnt, "DELETE /api/v4/projects/:id/hooks/:hook_id") == 0, cnt
    assert cnt["writes"] == N, cnt
    hooks = sim.hooks_by_project(HOOK)
    assert len(hooks) == N and all(len(v) == 1 and v[0]["note_events"] and not v[0]["confidential_note_events"]
                                   for v in hooks.values()), hooks
    _, cnt = apply(GATED, reapply=True)
    assert cnt["writes"] == 0 and cnt["total"] == N + PAGES, cnt


def test_hand_changed_merge_setting_is_repaired_by_next_resync():
    pid = IDS[7]
    gl = sim.client(TOKEN)
    assert gl.put(f"/api/v4/projects/{pid}", {"only_allow_merge_if_pipeline_succeeds": False}).status == 200
    assert merge_setting(pid) is False
    flows.sync(c, timeout=120, ended=flows.resync_ended)
    flows.wait_applied(c, 120)
    wait_for(lambda: merge_setting(pid) is True, 60, "the merge setting turned back on")


def test_a_list_page_with_a_member_twice_is_refused_and_each_repo_is_read_alone():
    # a project listed with only_allow_merge_if_pipeline_succeeds twice: a reader keeping the first value would take
    # the setting (turned off by hand) for on and never repair it. The page is refused; every repo is read alone.
    pid = IDS[9]
    gl = sim.client(TOKEN)
    assert gl.put(f"/api/v4/projects/{pid}", {"only_allow_merge_if_pipeline_succeeds": False}).status == 200
    page = ('[{"id": %d, "archived": false, "only_allow_merge_if_pipeline_succeeds": true,'
            ' "only_allow_merge_if_pipeline_succeeds": false}]' % pid)
    sim.script("GET", "/api/v4/groups/:id/projects", [{"status": 200, "body": page}])
    job_id, cnt = apply(GATED, reapply=True)
    assert merge_setting(pid) is True
    assert by_route(cnt, "GET /api/v4/projects/:id") == N, cnt  # the list refused: each project read alone
    assert by_route(cnt, "PUT /api/v4/projects/:id") == 1, cnt
    assert "could not list the group's projects" in srv.logs() and "member mrgate reads twice" in srv.logs()


def test_a_project_listed_twice_with_different_settings_is_read_alone():
    # offset pages read side by side can list a project twice (one deleted meanwhile shifts the next page): copies
    # that differ are not trusted, the project is read alone, and a setting turned off by hand is turned back on
    pid = IDS[10]
    gl = sim.client(TOKEN)
    assert gl.put(f"/api/v4/projects/{pid}", {"only_allow_merge_if_pipeline_succeeds": False}).status == 200
    copies = [False, True, True]  # whichever copy a search by id lands on, a reader must not take "on"
    page = "[" + ", ".join('{"id": %d, "archived": false, "only_allow_merge_if_pipeline_succeeds": %s}'
                           % (pid, "true" if on else "false") for on in copies) + "]"
    sim.script("GET", "/api/v4/groups/:id/projects", [{"status": 200, "body": page}])
    apply(GATED, reapply=True)
    assert merge_setting(pid) is True
    # 3 copies, or 4 when the scripted answer took the place of the page that does not hold the project
    assert re.search(rf"project {pid} is listed [34] times with different attributes", srv.logs())


def test_a_webhook_secret_gitlab_echoes_is_hidden():
    # GitLab answering an error with the hook's secret token in its message: the item's message and the log hide
    # it as they hide the GitLab token (the secret itself is never printed by this test)
    secret = srv.cli("webhook-secret").stdout.strip()
    assert len(secret) >= 16
    pid = IDS[11]
    gl = sim.client(TOKEN)
    assert gl.put(f"/api/v4/projects/{pid}", {"only_allow_merge_if_pipeline_succeeds": False}).status == 200
    sim.script("PUT", f"/api/v4/projects/{pid}",
               [{"status": 400, "body": {"message": f"hook token {secret} rejected"}}])
    job_id = configure(GATED, reapply=True)["apply"]["job_id"]
    job = flows.wait_job(c, job_id, 120)
    assert job["failed"] == 1, job
    items = c.get(f"/api/jobs/{job_id}?items_limit=500").json()["items"]
    failed = [i for i in items if i.get("repo_id") == pid]
    assert failed and failed[0]["state"] == "failed", "the scripted refusal did not fail the item"
    assert secret not in failed[0]["message"], "the item's message holds the webhook secret"
    assert "[redacted]" in failed[0]["message"], "the item's message lost GitLab's explanation"
    assert failed[0]["message"].count("GitLab rejected the request") == 1, "the item's message repeats itself"
    assert secret not in srv.logs(), "the log holds the webhook secret"
    apply(GATED, reapply=True)  # no script left: the setting is repaired
    assert merge_setting(pid) is True


def test_a_repo_claimed_by_another_apply_is_not_touched_until_released():
    # another apply (another replica) holds the repo's claim: this one neither reads nor writes it, and retries
    pid = IDS[20]
    srv.sql(f"INSERT INTO apply_claims (repo_id, owner, expires_at) VALUES ({pid}, 'elsewhere',"
            " now() + interval '1 hour')")
    sim.reset_counters()
    r = c.post("/api/configure", {"selection": {"ids": [pid]}, "config": {"enabled": True}, "reapply": True})
    assert r.status in (200, 202), r.body
    job_id = r.json()["apply"]["job_id"]

    def waiting():
        items = c.get(f"/api/jobs/{job_id}?items_limit=1").json()["items"]
        return items if items and items[0]["attempts"] >= 1 and items[0]["state"] == "pending" else None
    item = wait_for(waiting, 30, "the item to wait for the claim")[0]
    assert "another apply of this repository is running" in item["message"], item
    assert per_repo_calls(sim.counters()) == 0, sim.counters()
    srv.sql(f"DELETE FROM apply_claims WHERE repo_id = {pid}")
    job = flows.wait_job(c, job_id, 120)
    assert job["succeeded"] and job["unchanged"] == 1, job
    assert srv.sql(f"SELECT count(*) FROM apply_claims WHERE repo_id = {pid}") == [["0"]]


def test_a_gated_repo_stays_gated_while_a_reapply_checks_it():
    # an explicit re-apply of repos whose config is in place checks them, as a resync does: they stay "gated" while
    # their hooks are read (before, every re-applied repo showed "applying", the coverage "0 gated", until checked);
    # one whose hook was deleted by hand is repaired all the same, and one still to be gated shows "applying"
    kept, drifted = IDS[30], IDS[31]
    gl = sim.client(TOKEN)
    [hook] = sim.hooks_by_project(HOOK)[drifted]
    assert gl.delete(f"/api/v4/projects/{drifted}/hooks/{hook['id']}").status == 204
    for pid in (kept, drifted):
        sim.script("GET", f"/api/v4/projects/{pid}/hooks", [{"stall_ms": 3000}])
    sim.reset_counters()
    rows = f"SELECT repo_id, xmin::text FROM repo_gitlab_state WHERE repo_id IN ({kept}, {drifted}) ORDER BY 1"
    before = srv.sql(rows)
    r = c.post("/api/configure", {"selection": {"ids": [kept, drifted]}, "config": {}, "reapply": True})
    assert r.status in (200, 202), r.body
    job_id = r.json()["apply"]["job_id"]
    # the request leaves their state rows as they were (it rewrote them all: 1,000 rows in bench/apply's re-apply)
    assert len(before) == 2 and srv.sql(rows) == before, (before, srv.sql(rows))

    def statuses():
        return [c.get(f"/api/repos/{pid}").json()["status"] for pid in (kept, drifted)]
    assert statuses() == ["gated", "gated"], "re-applied repos with nothing to change are shown applying"
    wait_for(lambda: sim.counters()["by_route"].get("GET /api/v4/projects/:id/hooks", 0) >= 1 or None, 30,
             "the re-apply to read the hooks")
    assert statuses() == ["gated", "gated"], "repos are shown applying while their hooks are read"
    job = flows.wait_job(c, job_id, 60)
    assert job["succeeded"] and job["changed"] == 1 and job["unchanged"] == 1, job
    assert len(sim.hooks_by_project(HOOK)[drifted]) == 1, "the deleted hook was not made again"
    assert [c.get(f"/api/repos/{pid}").json()["status"] for pid in (kept, drifted)] == ["gated", "gated"]


def test_a_job_of_fewer_repos_than_list_pages_reads_its_projects_alone():
    # a job of one repo read the group's whole project list (ceil(N / 100) pages: 100 at 10,000 repos) and its
    # open MRs, where one GET /projects/:id does; a job of more repos than the list has pages reads the list
    pid = IDS[40]
    sim.reset_counters()
    r = c.put(f"/api/repos/{pid}/config", {"block_merge": False})
    assert r.status == 200 and r.json()["apply"]["repos"] == 1, r.body
    job_id = r.json()["apply"]["job_id"]
    flows.wait_job(c, job_id, 60)
    cnt = sim.counters()
    print(f"  a job of one repo: {cnt['total']} calls: {cnt['by_route']}")
    assert merge_setting(pid) is False, "the merge setting was not turned back off"
    assert by_route(cnt, "GET /api/v4/groups/:id/projects") == 0, cnt
    assert by_route(cnt, "GET /api/v4/groups/:id/merge_requests") == 0, cnt
    assert by_route(cnt, "GET /api/v4/projects/:id") == 1, cnt
    assert by_route(cnt, "PUT /api/v4/projects/:id") == 1, cnt
    assert by_route(cnt, "GET /api/v4/projects/:id/hooks") == 1, cnt
    assert cnt["total"] == 3, cnt
    [item] = c.get(f"/api/jobs/{job_id}?items_limit=5").json()["items"]
    assert any(x.startswith("merge setting read from GET /projects/:id") for x in item["details"]["read"]), item
    # back to the group's config: gated again with block merge, by a job of one repo
    sim.reset_counters()
    r = c.delete(f"/api/repos/{pid}/config")
    assert r.status == 200, r.body
    flows.wait_job(c, r.json()["apply"]["job_id"], 60)
    cnt = sim.counters()
    assert merge_setting(pid) is True
    assert by_route(cnt, "GET /api/v4/groups/:id/projects") == 0 and by_route(cnt, "GET /api/v4/projects/:id") == 1, cnt
    # as many repos as the list has pages: read alone; one more: the list
    for n, alone in ((PAGES, True), (PAGES + 1, False)):
        sim.reset_counters()
        r = c.post("/api/configure", {"selection": {"ids": IDS[50:50 + n]}, "config": {}, "reapply": True})
        assert r.status in (200, 202), r.body
        job = flows.wait_job(c, r.json()["apply"]["job_id"], 60)
        assert job["succeeded"] and job["unchanged"] == n, job
        cnt = sim.counters()
        print(f"  a re-apply of {n} repos ({PAGES} list pages): {cnt['by_route']}")
        assert by_route(cnt, "GET /api/v4/projects/:id") == (n if alone else 0), cnt
        assert by_route(cnt, "GET /api/v4/groups/:id/projects") == (0 if alone else PAGES), cnt
        assert cnt["total"] == n + (n if alone else PAGES), cnt


def test_first_apply_without_block_merge_is_two_calls_per_repo():
    # un-gate (hooks removed, merge setting restored), then gate again without block merge
    configure({"enabled": False})
    flows.wait_applied(c, 120)
    assert sim.hooks_by_project(HOOK) == {} or all(not v for v in sim.hooks_by_project(HOOK).values())
    _, cnt = apply({"enabled": True, "block_merge": False})
    print(f"  first apply without block merge: {cnt['total']} calls: {cnt['by_route']}")
    assert by_route(cnt, "GET /api/v4/projects/:id/hooks") == N, cnt
    assert by_route(cnt, "POST /api/v4/projects/:id/hooks") == N, cnt
    assert by_route(cnt, "PUT /api/v4/projects/:id") == 0, cnt
    assert by_route(cnt, "GET /api/v4/projects/:id") == 0, cnt
    assert by_route(cnt, "GET /api/v4/projects/:id/merge_requests") == 0, cnt
    assert per_repo_calls(cnt) == 2 * N, cnt


def test_group_hook_mode_first_apply_is_one_put_per_repo():
    configure({"enabled": False})
    flows.wait_applied(c, 120)
    flows.switch_hook_mode(c, "group")
    flows.wait_applied(c, 120)
    _, cnt = apply(dict(GATED))
    print(f"  group-hook mode, first apply: {cnt['total']} calls: {cnt['by_route']}")
    assert by_route(cnt, "PUT /api/v4/projects/:id") == N, cnt
    assert by_route(cnt, "GET /api/v4/projects/:id/hooks") == 0, cnt
    assert by_route(cnt, "POST /api/v4/projects/:id/hooks") == 0, cnt
    assert per_repo_calls(cnt) == N, cnt
    assert all(merge_setting(pid) is True for pid in IDS[:10])
    _, cnt = apply(dict(GATED), reapply=True)
    print(f"  group-hook mode, no-change re-apply: {cnt['total']} calls: {cnt['by_route']}")
    assert cnt["writes"] == 0 and cnt["total"] <= PAGES + 2, cnt
    # a group hook without note events (made before comment commands) is repaired once by the resync, which checks
    # the group hook, and then left alone
    [gh] = [h for h in sim.hooks() if h["url"] == HOOK and h.get("group_hook")]
    without_note_events([(gh["group_id"], gh)], "groups")
    for expect in (1, 0):
        sim.reset_counters()
        flows.sync(c, timeout=120, ended=flows.resync_ended)
        flows.wait_applied(c, 120)
        cnt = sim.counters()
        assert by_route(cnt, "PUT /api/v4/groups/:id/hooks/:hook_id") == expect, cnt
        assert by_route(cnt, "POST /api/v4/groups/:id/hooks") == 0, cnt
    [gh2] = [h for h in sim.hooks() if h["url"] == HOOK and h.get("group_hook")]
    assert gh2["id"] == gh["id"] and gh2["note_events"] is True and gh2["confidential_note_events"] is False, gh2


def test_pool_of_two_connections_and_eight_workers_applies_200_repos():
    sim.seed("pool", projects=200, depth=1, fanout=2)
    sim.add_token("glpat-apply-calls-pool", kind="group_access", access={"pool": 50})
    small = Mrgate("apply_calls_pool", env={"MRGATE_GITLAB_RATE_LIMIT": "0", "MRGATE_DB_POOL": "2",
                                            "MRGATE_WORKERS": "8", "MRGATE_GITLAB_CONCURRENCY": "8"})
    sc = small.login()
    flows.connect_and_sync(sc, sim, "pool", "glpat-apply-calls-pool", timeout=120)
    # open MRs: gating them takes a database connection, which apply used to borrow while holding one
    for r in flows.all_repos(sc)[:40]:
        sim.open_mr(r["id"], [{"path": "ok.py", "content": "x = 1\n"}], notify=False)
    r = sc.post("/api/configure", {"selection": {"filter": {"group": "pool"}}, "config": GATED,
                                   "confirm_no_scanner": True})
    assert r.status in (200, 202), r.body
    job = flows.wait_job(sc, r.json()["apply"]["job_id"], 300)
    assert job["succeeded"] and job["changed"] == 200, job
    hooks = sim.hooks_by_project(small.base + "/hooks/gitlab")
    assert len(hooks) == 200 and all(len(v) == 1 for v in hooks.values())
    # the slots: once the gate runs of those MRs are done (the gate workers are not job workers), a re-apply where
    # every call takes a while: 16 workers (twice the slots) take a slot per GitLab exchange and the group list's
    # pages side by side one each, so never more than the 8 slots are in flight, and all 8 are used
    wait_for(lambda: small.sql("SELECT count(*) FROM gate_runs WHERE state IN ('queued', 'running')")[0][0] == "0",
             120, "the gate runs of the open MRs")
    sim.set_faults(latency_ms=20)
    sim.reset_counters()
    r = sc.post("/api/configure", {"selection": {"filter": {"group": "pool"}}, "config": GATED,
                                   "confirm_no_scanner": True, "reapply": True})
    job = flows.wait_job(sc, r.json()["apply"]["job_id"], 300)
    sim.set_faults()
    assert job["succeeded"] and job["unchanged"] == 200, job
    cnt = sim.counters()
    assert cnt["peak_in_flight"] == 8, f"{cnt['peak_in_flight']} GitLab requests in flight at once, with 8 slots"
    assert by_route(cnt, "GET /api/v4/groups/:id/projects") == 2, cnt


def test_two_jobs_reading_the_group_list_at_once_both_finish():
    # two apply jobs whose first items read the group's project list side by side on a server of 2 GitLab slots:
    # each list wants both slots; taken one by one by both at once, each would hold one and wait for the other
    sim.seed("twojobs", projects=300, depth=1, fanout=2)
    sim.add_token("glpat-apply-calls-two", kind="group_access", access={"twojobs": 50})
    two = Mrgate("apply_calls_two", env={"MRGATE_GITLAB_RATE_LIMIT": "0", "MRGATE_GITLAB_CONCURRENCY": "2"})
    tc = two.login()
    flows.connect_and_sync(tc, sim, "twojobs", "glpat-apply-calls-two", timeout=120)
    ids = sorted(r["id"] for r in flows.all_repos(tc))
    # slow answers, so that the two jobs' first items reach the list (3 pages) while the other's are in flight
    sim.set_faults(latency_ms=200)
    sim.reset_counters()
    jobs = []
    for sel in (ids[:4], ids[4:8]):  # more repos than the list's 3 pages: each job reads the list
        r = tc.post("/api/configure", {"selection": {"ids": sel}, "config": GATED, "confirm_no_scanner": True})
        assert r.status in (200, 202), r.body
        jobs.append(r.json()["apply"]["job_id"])
    done = [flows.wait_job(tc, j, 120) for j in jobs]
    sim.set_faults()
    assert all(j["succeeded"] for j in done), done
    assert sim.counters()["peak_in_flight"] <= 2, sim.counters()
    assert by_route(sim.counters(), "GET /api/v4/groups/:id/projects") == 2 * 3, sim.counters()


run([test_a_preview_of_many_repos_reads_the_groups_lists, test_first_apply_with_block_merge_is_three_calls_per_repo, test_no_change_reapply_is_one_get_per_repo,
     test_the_clis_apply_and_preview_read_the_groups_lists,
     test_hooks_without_note_events_are_updated_once, test_a_gated_repo_stays_gated_while_a_reapply_checks_it,
     test_a_job_of_fewer_repos_than_list_pages_reads_its_projects_alone,
     test_hand_changed_merge_setting_is_repaired_by_next_resync,
     test_a_list_page_with_a_member_twice_is_refused_and_each_repo_is_read_alone,
     test_a_project_listed_twice_with_different_settings_is_read_alone, test_a_webhook_secret_gitlab_echoes_is_hidden,
     test_a_repo_claimed_by_another_apply_is_not_touched_until_released,
     test_first_apply_without_block_merge_is_two_calls_per_repo,
     test_group_hook_mode_first_apply_is_one_put_per_repo, test_pool_of_two_connections_and_eight_workers_applies_200_repos,
     test_two_jobs_reading_the_group_list_at_once_both_finish])
