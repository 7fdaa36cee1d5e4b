"""A merge request whose gate run could not post any verdict because the GitLab token stopped working is gated once
the token is replaced.

A new-user walk revoked the token, opened a merge request that adds a secret, then saved a new token and synced: the
run stayed "error" ("could not evaluate the change (fail-closed): ... the token was revoked") and GitLab had no
mrgate status at all on the merge request, so without block merge it could be merged ungated, and nothing ever ran
the gate again. Saving a working token for the same group now queues again each merge request's newest run that
ended in error with no status posted (within 7 days); a run whose verdict reached GitLab is left as it is.
"""
import flows
from harness import Mrgate, run, wait_for
from sim import Sim

OLD, NEW = "glpat-gateTokenRetry-old01", "glpat-gateTokenRetry-new01"
LEAK = "glpat-Xk9Pq2mZr7Lw4Tb8Nc3V"  # a GitLab token shape the secrets scanner catches

sim = Sim("gate_token_retry")
sim.add_group("acme", tier="premium")
sim.add_token(OLD, scopes=["api"], access={"acme": 50})
sim.add_token(NEW, scopes=["api"], access={"acme": 50})
PID = sim.add_project("acme", "app", files=[{"path": "README.md", "content": "# app\n"}])["id"]
srv = Mrgate("gate_token_retry", env={"MRGATE_GATE_WORKERS": "2", "MRGATE_GITLAB_RETRIES": "1",
                                      "MRGATE_GITLAB_BACKOFF_MS": "20"})
c = srv.login()
flows.connect_and_sync(c, sim, "acme", OLD, repos=1)


def runs_of(iid):
    return c.get(f"/api/gates?repo={PID}&mr={iid}").json()["items"]


def test_a_run_that_could_post_nothing_is_gated_after_the_token_is_replaced():
    r = c.put(f"/api/repos/{PID}/config", {"enabled": True, "fail_on": "high", "scans": ["secrets"], "comment": "off"})
    assert r.status == 200, r.body
    flows.wait_job(c, r.json()["apply"]["job_id"])
    # a merge request gated while the token works: its verdict reaches GitLab
    ok = sim.open_mr(PID, [{"path": "docs/a.md", "content": "hello\n"}], source_branch="docs")
    assert flows.final_status(sim, PID, ok["sha"])["status"] == "success"
    sim.revoke_token(OLD)
    mr = sim.open_mr(PID, [{"path": "deploy/ci.env", "content": f"A=1\nGITLAB_TOKEN={LEAK}\n"}],
                     source_branch="leak")
    ended = wait_for(lambda: (lambda rs: rs if rs and rs[0]["state"] == "error" else None)(runs_of(mr["iid"])),
                     60, "the run to end in error", logs=srv)
    assert flows.statuses(sim, PID, mr["sha"]) == [], "nothing could be posted with a revoked token"
    before_ok = runs_of(ok["iid"])
    # the same group with a working token: the run is queued again and its verdict reaches GitLab
    flows.connect(c, sim, "acme", NEW)
    final = flows.final_status(sim, PID, mr["sha"], timeout=60, logs=srv)
    assert final["status"] == "failed", final
    again = runs_of(mr["iid"])
    assert again[0]["id"] == ended[0]["id"] and again[0]["verdict"] == "failed", again
    # the merge request whose verdict had reached GitLab is not run again
    assert runs_of(ok["iid"]) == before_ok


run([test_a_run_that_could_post_nothing_is_gated_after_the_token_is_replaced])
