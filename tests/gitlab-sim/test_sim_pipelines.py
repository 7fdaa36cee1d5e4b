"""Pipelines as GitLab keeps them: external pipelines made by commit statuses, a project's own CI pipelines (branch,
detached and merged-results), the MR's head pipeline (newest for the head sha or, for merged results, its
source_sha), Pipeline Hook events on every status change, and the merge API whose "Pipelines must succeed" check
reads only the head pipeline."""
import time

from harness import run
from sim import Sim
from simtest import Receiver, eq, first_project, fresh_world

sim = Sim("sim_pipelines")
ADMIN = "glpat-admin-pipes"


def fresh():
    c = fresh_world(sim, ADMIN, 4, fanout=1, tier="premium")
    p = first_project(c)
    eq(c.put(f"/api/v4/projects/{p['id']}", {"only_allow_merge_if_pipeline_succeeds": True}).status, 200, "setting")
    return c, p["id"]


def status(c, pid, sha, state, **kw):
    body = {"state": state, "name": "gate"}
    body.update(kw)
    return c.post(f"/api/v4/projects/{pid}/statuses/{sha}", body)


def mr_get(c, pid, iid):
    return c.get(f"/api/v4/projects/{pid}/merge_requests/{iid}").json()


def merge_status(c, pid, iid, timeout=10):
    """detailed_merge_status once GitLab's asynchronous mergeability check is over (unchecked/checking before)."""
    deadline = time.time() + timeout
    while True:
        st = mr_get(c, pid, iid)["detailed_merge_status"]
        if st not in ("unchecked", "checking") or time.time() > deadline:
            return st
        time.sleep(0.05)


def merge(c, pid, iid):
    return c.put(f"/api/v4/projects/{pid}/merge_requests/{iid}/merge", {})


def test_status_before_ci_lands_in_a_pipeline_the_merge_check_ignores():
    c, pid = fresh()
    mr = sim.open_mr(pid, [{"path": "a", "content": "1\n"}], notify=False)
    r = status(c, pid, mr["sha"], "failed")
    eq(r.status, 201, "status")
    ext = mr_get(c, pid, mr["iid"])["head_pipeline"]
    eq((ext["source"], ext["status"]), ("external", "failed"), "external pipeline is head")
    eq(merge(c, pid, mr["iid"]).status, 405, "failed head pipeline blocks")
    ci = sim.ci_pipeline(pid, mr["iid"], "branch", "success")
    hp = mr_get(c, pid, mr["iid"])["head_pipeline"]
    eq((hp["id"], hp["status"]), (ci["id"], "success"), "the newer CI pipeline is the head pipeline")
    r = merge(c, pid, mr["iid"])
    eq((r.status, r.json()["state"]), (200, "merged"), "the failed status in the older pipeline is ignored")


def test_status_with_pipeline_id_joins_the_ci_pipeline():
    c, pid = fresh()
    mr = sim.open_mr(pid, [{"path": "a", "content": "2\n"}], notify=False)
    ci = sim.ci_pipeline(pid, mr["iid"], "detached", "running")
    eq(merge_status(c, pid, mr["iid"]), "ci_still_running", "running")
    r = status(c, pid, mr["sha"], "failed", pipeline_id=ci["id"])
    eq(r.status, 201, "joined")
    sim.set_pipeline(ci["id"], "success")
    hp = mr_get(c, pid, mr["iid"])["head_pipeline"]
    eq((hp["id"], hp["status"]), (ci["id"], "failed"), "a failed job fails the pipeline")
    eq(merge(c, pid, mr["iid"]).status, 405, "blocked")
    eq(status(c, pid, mr["sha"], "success", pipeline_id=ci["id"]).status, 201, "new job, same name")
    eq(mr_get(c, pid, mr["iid"])["head_pipeline"]["status"], "success", "latest job per name decides")
    eq(merge(c, pid, mr["iid"]).status, 200, "merged")


def test_merged_results_pipeline():
    c, pid = fresh()
    mr = sim.open_mr(pid, [{"path": "a", "content": "3\n"}], notify=False)
    mrp = sim.ci_pipeline(pid, mr["iid"], "merged_results", "success")
    assert mrp["sha"] != mr["sha"] and mrp["source_sha"] == mr["sha"], mrp
    eq(mrp["ref"], f"refs/merge-requests/{mr['iid']}/merge", "ref")
    hp = mr_get(c, pid, mr["iid"])["head_pipeline"]
    eq(hp["id"], mrp["id"], "head pipeline found through source_sha")
    # a status on the head sha cannot join it: pipeline_id needs the pipeline's own sha
    r = status(c, pid, mr["sha"], "failed", pipeline_id=mrp["id"])
    eq((r.status, r.json()), (404, {"message": "404 Pipeline for pipeline_id, sha and ref Not Found"}), "sha")
    eq(status(c, pid, mr["sha"], "failed").status, 201, "lands in an external pipeline")
    # Ci::PipelinesForMergeRequestFinder#sort: merge request pipelines first, then newest
    eq(mr_get(c, pid, mr["iid"])["head_pipeline"]["id"], mrp["id"], "the merged-results pipeline stays head")
    eq(merge_status(c, pid, mr["iid"]), "mergeable", "so the failed status is ignored")
    eq(status(c, pid, mrp["sha"], "failed", pipeline_id=mrp["id"]).status, 201, "joined on the merge commit")
    eq(merge(c, pid, mr["iid"]).status, 405, "now it blocks")


def test_pipeline_events():
    c, pid = fresh()
    rx = Receiver()
    c.post(f"/api/v4/projects/{pid}/hooks", {"url": rx.url, "token": "t", "pipeline_events": True,
                                            "push_events": False})
    mr = sim.open_mr(pid, [{"path": "a", "content": "4\n"}], notify=False)
    ci = sim.ci_pipeline(pid, mr["iid"], "detached", "running")
    eq(len(ci["deliveries"]), 1, "created pipeline fires")
    got = rx.received()[-1]
    eq(got["headers"]["X-Gitlab-Event"], "Pipeline Hook", "header")
    b = got["body"]
    eq((b["object_kind"], b["object_attributes"]["id"], b["object_attributes"]["sha"], b["object_attributes"]["status"],
        b["merge_request"]["iid"]), ("pipeline", ci["id"], mr["sha"], "running", mr["iid"]), "payload")
    n = len(rx.received())
    eq(status(c, pid, mr["sha"], "failed", pipeline_id=ci["id"]).status, 201, "status")
    sim.wait_deliveries()
    eq(rx.received()[n]["body"]["object_attributes"]["status"], "failed", "status change fires")
    n = len(rx.received())
    eq(status(c, pid, mr["sha"], "failed", pipeline_id=ci["id"]).status, 201, "same status again")
    sim.wait_deliveries()
    eq(len(rx.received()), n, "no transition, no event")


def test_merge_api():
    c, pid = fresh()
    mr = sim.open_mr(pid, [{"path": "a", "content": "5\n"}], notify=False)
    eq(merge(c, pid, mr["iid"]).status, 405, "no pipeline while one must succeed")
    ci = sim.ci_pipeline(pid, mr["iid"], "branch", "success")
    assert ci
    r = c.put(f"/api/v4/projects/{pid}/merge_requests/{mr['iid']}/merge", {"sha": "0" * 40})
    eq(r.status, 409, "sha mismatch")
    eq(merge(c, pid, mr["iid"]).status, 200, "merge")
    eq(merge(c, pid, mr["iid"]).status, 405, "merged already")


run([test_status_before_ci_lands_in_a_pipeline_the_merge_check_ignores, test_status_with_pipeline_id_joins_the_ci_pipeline,
     test_merged_results_pipeline, test_pipeline_events, test_merge_api])
