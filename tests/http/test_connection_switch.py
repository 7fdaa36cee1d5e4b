"""HTTP: connecting another group (PUT /api/connection with a different group or GitLab URL) while mrgate is still
working on the connected one is refused with 409, and the connection stays as it was.

A sync that is listing the group, and the apply job that follows it, run against the repos of the group they started
with, but each GitLab call takes the token of the connection as it is at that moment. Switching to another group in
between made them carry on with the new token: a new-user walk saw the old group's sync follow-up apply 192 repos
with the new group's token (and, with a token that reaches both groups, it writes webhooks into a group mrgate is no
longer connected to). A new token for the same group is still taken at any time (token rotation), and the switch
goes through once the sync or job has finished.
"""
import time

import flows
from harness import Mrgate, run, wait_for
from sim import Sim

TOKEN = "glpat-switch-both-groups-01"  # reaches both groups, as an instance-wide admin token would
TOKEN2 = "glpat-switch-both-groups-02"
BETA_TOKEN = "glpat-switch-beta-only-001"
sim = Sim("connection_switch_sim")
sim.settings(project_get_per_minute=0)
sim.add_group("acme", tier="premium")
sim.add_group("beta", tier="premium")
sim.add_token(TOKEN, access={"acme": 50, "beta": 50})
sim.add_token(TOKEN2, access={"acme": 50, "beta": 50})
sim.add_token(BETA_TOKEN, access={"beta": 50})
srv = Mrgate("connection_switch", env={"MRGATE_GITLAB_RATE_LIMIT": "0"})
c = srv.login()
HOOK = srv.base + "/hooks/gitlab"


def group_id(path):
    return sim.client(TOKEN).get("/api/v4/groups/" + path).json()["id"]


def connection_group():
    r = c.get("/api/connection")
    assert r.status == 200, r.body
    return r.json()["group"]["full_path"]


def put(group, token):
    return c.put("/api/connection", {"gitlab_url": sim.base, "group": group, "token": token})


def running_sync():
    """POST /api/sync with the listing of acme's projects held for 3 s; returns the run id once it is running."""
    sim.script("GET", f"/api/v4/groups/{group_id('acme')}/projects", [{"stall_ms": 3000}])
    r = c.post("/api/sync")
    assert r.status == 202, r.body
    run_id = r.json()["id"]
    assert c.get(f"/api/sync?id={run_id}").json()["state"] == "running"
    return run_id


def setup_module():
    sim.seed("acme", projects=12, depth=1, fanout=2)
    sim.seed("beta", projects=3, depth=1, fanout=1)
    flows.connect(c, sim, "acme", TOKEN)
    flows.sync(c)


def test_switch_refused_while_a_sync_runs():
    run_id = running_sync()
    r = put("beta", BETA_TOKEN)
    assert r.status == 409, r.body
    j = r.json()
    assert j["error"] == "busy", j
    assert "sync" in j["message"] and "acme" in j["message"], j["message"]
    assert connection_group() == "acme"
    # nor can the connection go away while the sync still lists with its token (a Disconnect, then a Connect of
    # another group, went round the refusal)
    r = c.delete("/api/connection")
    assert r.status == 409 and r.json()["error"] == "busy", r.body
    assert "disconnect once it has finished" in r.json()["message"], r.body
    assert connection_group() == "acme"
    # the sync still lists acme with acme's connection
    run_ = wait_for(lambda: (lambda x: x if flows.sync_ended(x) else None)(c.get(f"/api/sync?id={run_id}").json()),
                    60, "the sync to end")
    assert run_["state"] == "done", run_
    assert run_["repos_seen"] == 12, run_


def test_new_token_for_the_same_group_while_a_sync_runs():
    run_id = running_sync()
    r = put("acme", TOKEN2)
    assert r.status == 200, r.body
    assert connection_group() == "acme" and r.json()["token"]["last4"].endswith(TOKEN2[-4:])
    wait_for(lambda: flows.sync_ended(c.get(f"/api/sync?id={run_id}").json()), 60, "the sync to end")


def test_switch_refused_while_an_apply_job_runs():
    acme = [x["id"] for x in flows.all_repos(c)]
    assert len(acme) == 12
    sim.script("POST", "/api/v4/projects/:id/hooks", [{"stall_ms": 1500}] * 3)
    r = c.post("/api/configure", {"selection": {"ids": acme}, "config": {"enabled": True}})
    assert r.status == 202, r.body
    job_id = r.json()["apply"]["job_id"]
    time.sleep(0.3)
    assert not flows.job(c, job_id)["finished"]
    r = put("beta", BETA_TOKEN)
    assert r.status == 409, r.body
    assert r.json()["error"] == "busy" and f"job {job_id}" in r.json()["message"], r.body
    assert "Jobs page" in r.json()["message"], r.body
    assert connection_group() == "acme"
    j = flows.wait_job(c, job_id)
    assert j["failed"] == 0 and j["changed"] == 12, j
    # every acme project got its hook from the acme connection, none after
    assert len(sim.hooks_by_project(HOOK)) == 12


def test_no_second_sync_nor_switch_while_a_sync_applies_what_it_found():
    """A sync's listing ends (state done), then its follow-up re-checks the 12 gated repos in an apply job. Until
    that job has finished and the run has its summary: "Sync now" is refused (a second run's job found the repos
    taken and reported drift that was not there), and so are another group and a disconnect."""
    sim.script("GET", "/api/v4/projects/:id/hooks", [{"stall_ms": 2000}] * 2)
    r = c.post("/api/sync")
    assert r.status == 202, r.body
    run_id = r.json()["id"]
    wait_for(lambda: c.get(f"/api/sync?id={run_id}").json()["state"] == "done", 30, "the listing to end")
    assert c.get(f"/api/sync?id={run_id}").json()["summary"] is None
    r = c.post("/api/sync")
    assert r.status == 409 and r.json()["error"] == "sync_running", r.body
    assert f"run {run_id}" in r.json()["message"], r.body
    r = put("beta", BETA_TOKEN)
    assert r.status == 409 and r.json()["error"] == "busy", r.body
    assert "applying what it found" in r.json()["message"], r.body
    assert c.delete("/api/connection").status == 409
    run_ = wait_for(lambda: (lambda x: x if x["summary"] is not None else None)(
        c.get(f"/api/sync?id={run_id}").json()), 60, "the follow-up to end")
    assert run_["summary"]["checked"] == 12 and run_["summary"]["failed"] == 0, run_["summary"]
    assert run_["summary"]["drifted"] == 0, run_["summary"]
    assert connection_group() == "acme"


def test_switch_goes_through_once_idle():
    r = put("beta", BETA_TOKEN)
    assert r.status == 200, r.body
    assert connection_group() == "beta"
    run_ = flows.sync(c)
    assert run_["repos_seen"] == 3, run_


def test_first_sync_of_another_group_marks_none_new():
    """The README: the first sync of a connection marks no repo `new` (everything is new then); the next sync marks
    the repos it lists for the first time. Before, the syncs of the earlier group counted, and all of beta's repos
    came up `new` after its first sync."""
    statuses = {x["path_with_namespace"]: x["status"] for x in flows.all_repos(c)}
    assert len(statuses) == 3 and "new" not in statuses.values(), statuses
    pid = sim.add_project("beta", "late-one")["id"]
    flows.sync(c)
    new = [x["id"] for x in flows.all_repos(c, status="new")]
    assert new == [pid], new


def test_tokens_not_logged():
    logs = srv.logs()
    assert not any(t in logs for t in (TOKEN, TOKEN2, BETA_TOKEN))


setup_module()
run([test_switch_refused_while_a_sync_runs, test_new_token_for_the_same_group_while_a_sync_runs,
     test_switch_refused_while_an_apply_job_runs,
     test_no_second_sync_nor_switch_while_a_sync_applies_what_it_found, test_switch_goes_through_once_idle,
     test_first_sync_of_another_group_marks_none_new, test_tokens_not_logged])
