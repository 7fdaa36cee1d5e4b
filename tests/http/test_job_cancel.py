"""HTTP: canceling an apply job stops it: what GitLab ends up with is what the job reports, and no repo is left
"applying".

A new-user walk canceled a job of 288 repos and saw two defects. The repos whose items the cancel skipped kept the
status "applying" (their mark was only taken off by an apply) until a sync came by. And 64 items went on after the
cancel for 45 s: a worker claims a few items at a time, a claimed item counts as running, and the cancel skipped
only pending ones, so every item already claimed was applied although the confirmation promised that only those
being changed at that moment would finish. A preview's cancel (the dashboard cancels the previews it drops) is not
audited; a webhook-mode switch is not canceled (it runs to its end). And a job's per-repo result says why mrgate
deleted a webhook.
"""
import flows
from harness import Mrgate, run, wait_for
from sim import Sim

N = 200
CONCURRENCY = 8  # GitLab requests in flight; the workers are twice as many, each claiming up to 4 items at a time
WORKERS = 2 * CONCURRENCY
TOKEN = "glpat-job-cancel-000000001"

sim = Sim("job_cancel_sim")
sim.add_token(TOKEN, access={"acme": 50})
sim.seed("acme", projects=N, depth=2, fanout=3)
srv = Mrgate("job_cancel", env={"MRGATE_GITLAB_RATE_LIMIT": "0", "MRGATE_GITLAB_CONCURRENCY": str(CONCURRENCY),
                                "MRGATE_WORKERS": str(WORKERS), "MRGATE_RESYNC_INTERVAL": "86400"})
c = srv.login()
flows.connect_and_sync(c, sim, "acme", TOKEN, repos=N)
HOOK = srv.base + "/hooks/gitlab"


def hooked():
    return {h["project_id"] for h in sim.hooks() if h["url"] == HOOK}


def test_cancel_stops_the_claimed_items_and_leaves_no_repo_applying():
    sim.set_faults(latency_ms=200)
    try:
        r = c.post("/api/configure", {"selection": {"filter": {}}, "config": {"enabled": True}})
        assert r.status == 202, r.body
        job_id = r.json()["apply"]["job_id"]
        wait_for(lambda: flows.job(c, job_id)["done"] >= 10, 60, "the first items applied", 0.05)
        sim.reset_counters()
        r = c.post(f"/api/jobs/{job_id}/cancel", {})
        assert r.status == 200, r.body
        at_cancel = r.json()
        assert at_cancel["state"] == "canceled", at_cancel
        # the items the cancel could not skip at once: those a worker was running or had claimed
        left = N - at_cancel["done"]
        assert left > 0, at_cancel
        # while items are still in flight the job is not finished: a client waiting for "finished" to read the
        # results would read them before the last ones are in (and GitLab still changing)
        assert at_cancel["finished"] is False, at_cancel
        end = wait_for(lambda: (lambda j: j if j["done"] == N else None)(flows.job(c, job_id)), 60,
                       "the items in flight to finish", 0.1)
    finally:
        sim.set_faults()
    assert end["state"] == "canceled" and end["finished"] is True, end
    # a worker runs one item at a time: the webhooks created from the cancel on are at most one per worker (the
    # items under way); the items claimed and not started were skipped when their turn came. ("running" in the
    # job's counts also holds items done and not yet recorded: a worker records its outcomes a batch at a time.)
    created_after = sim.counters()["by_route"].get("POST /api/v4/projects/:id/hooks", 0)
    assert created_after <= WORKERS, (created_after, left, at_cancel, end)
    assert end["skipped"] > at_cancel["skipped"], "claimed items were skipped too"
    items = flows.job_items(c, job_id)
    changed = {i["repo_id"] for i in items if i["result"] == "changed"}
    canceled = {i["repo_id"] for i in items if i["result"] == "skipped" and i["message"] == "canceled"}
    assert len(changed) + len(canceled) == N, (len(changed), len(canceled))
    assert len(canceled) == end["skipped"], end
    # what GitLab ended up with is what the job says
    assert hooked() == changed
    # no repo stays "applying": the skipped ones are ungated (their config says enabled; the next apply or resync
    # gates them), the applied ones gated
    assert flows.no_repo_applying(c), c.get("/api/repos?status=applying&limit=5").json()
    status = {r["id"]: r["status"] for r in flows.all_repos(c)}
    assert {status[i] for i in canceled} == {"ungated"}, {status[i] for i in canceled}
    assert {status[i] for i in changed} == {"gated"}, {status[i] for i in changed}
    # no repo stays claimed: the claims read ahead for items the cancel skipped were given back (another apply
    # of those repos would wait for them to run out, 5 minutes)
    assert srv.sql("SELECT count(*) FROM apply_claims") == [["0"]], (srv.sql("SELECT * FROM apply_claims"), srv.sql("SELECT i.id, i.state, i.result, i.message, i.attempts, i.lease_owner FROM job_items i JOIN apply_claims a ON a.owner = 'job-item-' || i.id"))
    # the audit log says who canceled and how many the cancel skipped at once
    a = [x for x in c.get("/api/audit?action=job.cancel&limit=50").json()["items"] if x["target"] == f"job {job_id}"]
    assert len(a) == 1 and a[0]["actor"] == "admin", a
    assert a[0]["details"]["kind"] == "apply" and a[0]["details"]["skipped"] == at_cancel["skipped"], a
    # canceling again changes nothing; the job stays as it ended
    r = c.post(f"/api/jobs/{job_id}/cancel", {})
    assert r.status == 200 and r.json()["done"] == N and r.json()["skipped"] == end["skipped"], r.body


def test_a_preview_cancel_is_not_audited():
    sim.set_faults(latency_ms=200)
    try:
        r = c.post("/api/configure", {"selection": {"filter": {}}, "config": {"enabled": False}, "dry_run": True})
        assert r.status == 202, r.body
        job_id = r.json()["plan_job_id"]
        r = c.post(f"/api/jobs/{job_id}/cancel", {})
        assert r.status == 200 and r.json()["state"] == "canceled", r.body
    finally:
        sim.set_faults()
    a = [x for x in c.get("/api/audit?action=job.cancel&limit=50").json()["items"] if x["target"] == f"job {job_id}"]
    assert a == [], a


def test_a_preview_cancel_stops_its_reads():
    # a walk canceled a preview of 92 repos: the cancel answered with 15 skipped, and the 61 items already claimed
    # went on reading GitLab (3 calls each) after it; the dashboard cancels every preview whose form changes, so
    # each change kept spending GitLab's rate limit on a plan nobody would read
    sim.set_faults(latency_ms=200)
    try:
        r = c.post("/api/configure", {"selection": {"filter": {}}, "config": {}, "reapply": True, "dry_run": True})
        assert r.status == 202, r.body
        job_id = r.json()["plan_job_id"]
        assert r.json()["plan_total"] == N, r.body
        wait_for(lambda: flows.job(c, job_id)["done"] >= 10, 60, "the first entries read", 0.05)
        sim.reset_counters()
        r = c.post(f"/api/jobs/{job_id}/cancel", {})
        assert r.status == 200, r.body
        at_cancel = r.json()
        end = wait_for(lambda: (lambda j: j if j["finished"] else None)(flows.job(c, job_id)), 60,
                       "the entries in flight to finish", 0.1)
    finally:
        sim.set_faults()
    after = sim.counters()
    print(f"  after the cancel ({at_cancel['done']} of {N} read): {after['total']} calls, {end['skipped']} skipped")
    # at most the entries being read at the cancel go on: one per worker, each at most 2 reads (its hooks, and its
    # project where the group's list does not hold it)
    assert after["total"] <= 2 * WORKERS, (after, at_cancel, end)
    assert end["state"] == "canceled" and end["done"] == N, end
    assert end["skipped"] >= N - at_cancel["done"] - WORKERS, (at_cancel, end)


def test_ungating_says_why_the_webhook_was_deleted():
    # a walk read "deleted duplicate or unwanted webhook N" for mrgate's own webhook when gating was turned off
    gated = [r["id"] for r in flows.all_repos(c, status="gated")][:3]
    assert len(gated) == 3, gated
    r = c.post("/api/configure", {"selection": {"ids": gated}, "config": {"enabled": False}})
    assert r.status == 202, r.body
    job_id = r.json()["apply"]["job_id"]
    flows.wait_job(c, job_id)
    items = flows.job_items(c, job_id)
    assert len(items) == 3 and all(i["result"] == "changed" for i in items), items
    for i in items:
        assert i["message"].startswith("gating is off: deleted mrgate's webhook "), i
    assert not hooked() & set(gated)


run([
    test_cancel_stops_the_claimed_items_and_leaves_no_repo_applying,
    test_a_preview_cancel_is_not_audited,
    test_a_preview_cancel_stops_its_reads,
    test_ungating_says_why_the_webhook_was_deleted,
])
