"""HTTP: the verdict holds when a repo has its own CI (tests/gitlab-sim models GitLab's pipelines, docs/PIPELINES.md).

GitLab's "Pipelines must succeed" reads only the MR's head pipeline. Shows, with block_merge on, that in every
ordering a failing gate keeps the MR unmergeable by the simulator's merge API and a passing one lets it merge once
CI passed: the status posted before the CI pipeline exists; the CI pipeline there before the gate runs; a new
pipeline started after the verdict; a merged-results pipeline (on a merge commit, found through source_sha).
"""
import flows
from harness import Mrgate, run, wait_for
from sim import Sim

TOKEN = "glpat-pipelines-owner-0001"
LEAK = "glpat-Xk9Pq2mZr7Lw4Tb8Nc3V"  # a GitLab token shape the secrets scanner catches
sim = Sim("pipelines_sim")
sim.seed("pipe", projects=8, depth=1, fanout=1, tier="premium")
sim.add_token(TOKEN, kind="group_access", access={"pipe": 50})
gl = sim.client(TOKEN)
srv = Mrgate("pipelines", env={"MRGATE_GITLAB_RATE_LIMIT": "0"})
c = srv.login()
GATED = {"enabled": True, "block_merge": True, "fail_on": "high", "scans": ["secrets"], "comment": "off"}
projects = []


def mrgate_in(pid, pipeline_id, state):
    """mrgate's status with this state inside this pipeline."""
    return wait_for(lambda: [s for s in flows.statuses(sim, pid)
                             if s["pipeline_id"] == pipeline_id and s["status"] == state],
                    30, f"mrgate {state} in pipeline {pipeline_id}")


def one_mrgate_job(pid, pipeline_id):
    """The pipeline holds exactly one mrgate job: events caused by mrgate's own posts post nothing again."""
    sim.wait_deliveries()
    jobs = [s for s in flows.statuses(sim, pid) if s["pipeline_id"] == pipeline_id]
    assert len(jobs) == 1, jobs


def verdict(pid, sha):
    return flows.wait_verdicts(sim, pid, sha, 30)[-1]["status"]


def merge(pid, iid):
    return gl.put(f"/api/v4/projects/{pid}/merge_requests/{iid}/merge", {})


def mr(pid, iid):
    return gl.get(f"/api/v4/projects/{pid}/merge_requests/{iid}").json()


def files(bad):
    return [{"path": "config.py", "content": f"TOKEN = '{LEAK}'\n" if bad else "TOKEN = None\n"}]


def test_setup():
    flows.connect_and_sync(c, sim, "pipe", TOKEN, expect=None)
    assert c.put("/api/configs/default", GATED).status == 200
    wait_for(lambda: c.get("/api/repos?status=gated&limit=1").json()["count"] == 8, 60, "gated")
    hooks = [h for h in sim.hooks() if h["url"] == srv.base + "/hooks/gitlab"]
    assert len(hooks) == 8 and all(h["pipeline_events"] and h["merge_requests_events"] for h in hooks), hooks
    projects.extend(sorted(h["project_id"] for h in hooks))


def ci_passes(pid, m, ci, head=True):
    """The CI pipeline ci succeeds; it is the MR's head pipeline (checked unless head=False) and holds one mrgate
    job."""
    sim.set_pipeline(ci["id"], "success")
    if head:
        assert mr(pid, m["iid"])["head_pipeline"]["id"] == ci["id"]
    one_mrgate_job(pid, ci["id"])
    return m


def blocks_bad_merges_good(scenario, i):
    """A failing gate keeps the MR unmergeable (405) on projects[i]; a passing one lets it merge on projects[i + 1]."""
    m = scenario(projects[i], bad=True)
    assert merge(projects[i], m["iid"]).status == 405
    m = scenario(projects[i + 1], bad=False)
    assert merge(projects[i + 1], m["iid"]).status == 200


def scenario_status_before_ci(pid, bad):
    m = sim.open_mr(pid, files(bad))
    assert verdict(pid, m["sha"]) == ("failed" if bad else "success")
    ci = sim.ci_pipeline(pid, m["iid"], "branch", "running")
    mrgate_in(pid, ci["id"], "failed" if bad else "success")
    return ci_passes(pid, m, ci)


def test_status_before_the_ci_pipeline():
    m = scenario_status_before_ci(projects[0], bad=True)
    r = merge(projects[0], m["iid"])
    assert r.status == 405, (r.status, r.body, mr(projects[0], m["iid"])["head_pipeline"])
    m = scenario_status_before_ci(projects[1], bad=False)
    r = merge(projects[1], m["iid"])
    assert r.status == 200 and r.json()["state"] == "merged", r.body


def scenario_ci_first(pid, bad):
    m = sim.open_mr(pid, files(bad), notify=False)
    ci = sim.ci_pipeline(pid, m["iid"], "detached", "running")
    sim.close_mr(pid, m["iid"], wait=True)
    sim.reopen_mr(pid, m["iid"], wait=True)  # the gate runs now, with the CI pipeline already there
    mrgate_in(pid, ci["id"], "failed" if bad else "success")
    return ci_passes(pid, m, ci, head=False)


def test_status_after_the_ci_pipeline():
    blocks_bad_merges_good(scenario_ci_first, 2)


def scenario_new_pipeline_after_verdict(pid, bad):
    m = sim.open_mr(pid, files(bad))
    first = sim.ci_pipeline(pid, m["iid"], "detached", "running")
    mrgate_in(pid, first["id"], "failed" if bad else "success")
    sim.set_pipeline(first["id"], "failed")
    retry = sim.ci_pipeline(pid, m["iid"], "detached", "running")  # a retried or re-run pipeline, newer
    mrgate_in(pid, retry["id"], "failed" if bad else "success")
    return ci_passes(pid, m, retry)


def test_new_pipeline_after_the_verdict():
    blocks_bad_merges_good(scenario_new_pipeline_after_verdict, 4)


def scenario_merged_results(pid, bad):
    m = sim.open_mr(pid, files(bad))
    assert verdict(pid, m["sha"]) == ("failed" if bad else "success")
    mrp = sim.ci_pipeline(pid, m["iid"], "merged_results", "running")
    assert mrp["sha"] != m["sha"]
    held = mrgate_in(pid, mrp["id"], "failed" if bad else "success")
    assert held[0]["sha"] == mrp["sha"], "posted on the merge commit"
    return ci_passes(pid, m, mrp)


def test_merged_results_pipeline():
    blocks_bad_merges_good(scenario_merged_results, 6)


def test_hold_jobs_stay_out_of_the_jobs_list():
    # one hold job per pipeline event: bookkeeping, not a change someone started
    kinds = {j["kind"] for j in c.get("/api/jobs?limit=200").json()["items"]}
    assert "hold" not in kinds and "apply" in kinds, kinds


run([test_setup, test_status_before_the_ci_pipeline, test_status_after_the_ci_pipeline,
     test_new_pipeline_after_the_verdict, test_merged_results_pipeline, test_hold_jobs_stay_out_of_the_jobs_list])
