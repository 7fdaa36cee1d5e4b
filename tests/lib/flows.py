"""The steps the http tests take again and again against a running mrgate and the GitLab simulator.

    import flows
    c = srv.login()                                   # harness.Mrgate.login: admin client with the CSRF token
    flows.connect_and_sync(c, sim, "acme", TOKEN)     # PUT /api/connection, POST /api/sync, wait: done
    job = flows.wait_job(c, job_id, timeout=60)       # GET /api/jobs/:id until finished
    st = flows.final_status(sim, pid, sha)            # mrgate's latest commit status, once final

Design: each helper acts through the client (harness.Client) or simulator (sim.Sim) it is given, so a test with
two mrgate instances or two simulators uses the same helpers; it asserts only the status codes the API documents
for the step (the assertions a test is about stay in the test) and waits with harness.wait_for, which fails naming
what it waited for. Nothing here keeps state; a helper is as thread-safe as the client it is given (harness.Client
is not: one per thread).
"""
import harness
from sim import Sim

STATUS_NAME = "mrgate"  # the commit status mrgate posts
FINAL = ("success", "failed")


# --- connection and sync ------------------------------------------------------------------------------------------

def connect(c, sim, group, token):
    """PUT /api/connection: the simulator's group with token. Asserts 200; returns the answer."""
    r = c.put("/api/connection", {"gitlab_url": sim.base, "group": group, "token": token})
    assert r.status == 200, r.body
    return r


def sync_ended(run):
    """A sync run has ended once it is no longer running."""
    return run["state"] != "running"


def resync_ended(run):
    """A resync has ended when it failed, or when it is done with its summary (discovery finishes first; the summary
    is written once the follow-up apply job is done)."""
    return run["state"] == "failed" or (run["state"] == "done" and run.get("summary") is not None)


def start_sync(c, timeout=60, interval=0.2, logs=None):
    """POST /api/sync until it answers 202 (asserted), and return that answer. A run whose listing is done may still
    be applying what it found (its follow-up job): a new run starts once that has ended (409 sync_running until
    then), as a client should wait for it."""
    def start():
        r = c.post("/api/sync")
        if r.status == 409 and r.json().get("error") == "sync_running":
            return None
        assert r.status == 202, r.body
        return r
    return harness.wait_for(start, timeout, "a sync to start", interval, logs)


def sync(c, expect="done", timeout=60, interval=0.2, ended=sync_ended, logs=None):
    """start_sync, then wait until ended(run) holds for that run (GET /api/sync?id=). Asserts the run's state is
    expect unless expect is None; returns the run."""
    r = start_sync(c, timeout, interval, logs)
    run_id = r.json()["id"]

    def poll():
        run = c.get(f"/api/sync?id={run_id}").json()
        return run if ended(run) else None
    run = harness.wait_for(poll, timeout, f"sync run {run_id} to end", interval, logs)
    if expect is not None:
        assert run["state"] == expect, run
    return run


def sync_at_latency(c, sim, latency_ms, **sync_args):
    """sync (keyword arguments go to sync) with every GitLab call answered after latency_ms, the simulator's
    counters reset first; the faults are cleared afterwards. Returns the run."""
    sim.set_faults(latency_ms=latency_ms)
    sim.reset_counters()
    try:
        return sync(c, **sync_args)
    finally:
        sim.set_faults()


def connect_and_sync(c, sim, group, token, repos=None, **sync_args):
    """connect, then sync (keyword arguments go to sync); with repos, assert GET /api/repos counts that many."""
    connect(c, sim, group, token)
    run = sync(c, **sync_args)
    if repos is not None:
        r = c.get("/api/repos?limit=1").json()
        assert r["count"] == repos, r
    return run


# --- repos and apply jobs -----------------------------------------------------------------------------------------

def all_repos(c, **q):
    """Every repo GET /api/repos lists with the filters q (500 a page, following next_cursor)."""
    out, cursor = [], None
    while True:
        qs = "&".join([f"{k}={v}" for k, v in q.items()] + ["limit=500"] + ([f"cursor={cursor}"] if cursor else []))
        page = c.get("/api/repos?" + qs)
        assert page.status == 200, page.body
        page = page.json()
        out += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return out


def no_repo_applying(c):
    return c.get("/api/repos?status=applying&limit=1").json()["count"] == 0


def no_apply_job_unfinished(c):
    return not any(j["kind"] == "apply" and not j["finished"] for j in c.get("/api/jobs?limit=50").json()["items"])


def wait_applied(c, timeout=60, interval=0.2):
    """Wait until no repo is applying and no apply job is unfinished (a repo re-applied with nothing to change
    stays gated while its job checks it)."""
    harness.wait_for(lambda: no_repo_applying(c) and no_apply_job_unfinished(c), timeout, "apply", interval)


def job(c, job_id):
    """GET /api/jobs/:id without its items (asserts 200)."""
    r = c.get(f"/api/jobs/{job_id}?items_limit=0")
    assert r.status == 200, r.body
    return r.json()


def job_items(c, job_id, limit=500):
    """Every per-repo result of job job_id (GET /api/jobs/:id, `limit` a page, following items_next_cursor)."""
    out, cursor = [], None
    while True:
        r = c.get(f"/api/jobs/{job_id}?items_limit={limit}" + (f"&items_cursor={cursor}" if cursor else ""))
        assert r.status == 200, r.body
        j = r.json()
        out += j["items"]
        cursor = j.get("items_next_cursor")
        if not cursor:
            return out


def wait_job(c, job_id, timeout=60, interval=0.2):
    """Wait until apply job job_id has finished; returns it (without items)."""
    return harness.wait_for(lambda: (lambda j: j if j["finished"] else None)(job(c, job_id)), timeout,
                            f"job {job_id} to finish", interval)


def dry_run(c, body, timeout=60, limit=100):
    """POST /api/configure as a dry run (asserts 202 and a plan job), wait for the job, read its whole plan: the
    answer with "plan" (every entry), "job" (the finished job) and "gitlab_writes_planned" (summed) added."""
    r = c.post("/api/configure", dict(body, dry_run=True))
    assert r.status == 202, (r.status, r.body)
    d = r.json()
    assert d["dry_run"] is True and d["plan_job_id"] == d["plan_job"]["id"], d
    d["job"] = wait_job(c, d["plan_job_id"], timeout)
    d["plan"], cursor = [], None
    while True:
        page = c.get(f"/api/jobs/{d['plan_job_id']}/plan?limit={limit}" + (f"&cursor={cursor}" if cursor else ""))
        assert page.status == 200, page.body
        d["plan"] += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    assert len(d["plan"]) == d["plan_total"] == d["job"]["total"], d
    d["gitlab_writes_planned"] = sum(p["gitlab_writes_planned"] for p in d["plan"])
    return d


# --- what GitLab (the simulator) ended up with ---------------------------------------------------------------------

def statuses(sim, pid, sha=None):
    """Every mrgate commit status on the project (on sha), oldest first: the simulator's full record."""
    return [s for s in sim.statuses(project_id=pid, sha=sha) if s["name"] == STATUS_NAME]


def final_status(sim, pid, sha, timeout=30, logs=None):
    """Wait until mrgate's latest status on sha is final (success or failed); returns that status."""
    def done():
        st = statuses(sim, pid, sha)
        return st if st and st[-1]["status"] in FINAL else None
    return harness.wait_for(done, timeout, f"final mrgate status on {sha[:8]}", logs=logs)[-1]


def wait_verdicts(sim, pid, sha, timeout=30):
    """Wait until sha has a final mrgate status (success or failed); returns every final one, oldest first."""
    return harness.wait_for(lambda: [s for s in statuses(sim, pid, sha) if s["status"] in FINAL], timeout,
                            "mrgate verdict")


def acme_sim(name, token):
    """A simulator with the premium group acme and token, an api bot token (user gatebot) with Owner on acme."""
    sim = Sim(name)
    sim.add_group("acme", tier="premium")
    sim.add_token(token, scopes=["api"], access={"acme": 50}, username="gatebot", bot=True)
    return sim


def gate_repos(c, sim, token, pids, hook_url, config, logs=None):
    """PUT /api/repos/:id/config for each repo (200 asserted) and wait until GitLab lists the gate's webhook on it;
    returns the configs as stored."""
    stored = []
    for pid in pids:
        r = c.put(f"/api/repos/{pid}/config", config)
        assert r.status == 200, (pid, r.status, r.body)
        stored.append(r.json()["config"])
        wait_hook(sim.client(token), pid, hook_url, logs=logs)
    return stored


def gate_run_of(c, pid, iid, sha, timeout=30, logs=None):
    """GET /api/gates/:id of MR iid's newest run once it is recorded done on head sha (a run posts its final status,
    then records itself done): the run with its findings."""
    def done():
        items = c.get(f"/api/gates?repo={pid}&mr={iid}").json()["items"]
        return items[0] if items and items[0]["state"] == "done" and items[0]["head_sha"] == sha else None
    item = harness.wait_for(done, timeout, f"the run of {sha[:8]} recorded done", logs=logs)
    return c.get(f"/api/gates/{item['id']}").json()


def wait_hook(gl, pid, url, timeout=30, logs=None):
    """Wait until the project has a hook with url, as GitLab's API lists them to the client gl."""
    harness.wait_for(lambda: any(h["url"] == url for h in gl.get(f"/api/v4/projects/{pid}/hooks").json()), timeout,
                     "the gate's webhook", logs=logs)


def switch_hook_mode(c, mode, timeout=120):
    """PUT /api/settings hook_mode (a job: 202 at once) and wait until the switch job succeeded; returns the job."""
    r = c.put("/api/settings", {"hook_mode": mode})
    assert r.status == 202, (r.status, r.body)
    j = wait_job(c, r.json()["hook_mode_job"]["id"], timeout)
    assert j["succeeded"], j
    assert c.get("/api/settings").json()["hook_mode"] == mode
    return j


# --- one gated repo -------------------------------------------------------------------------------------------------

def gate_repo(c, sim, group, token, pid, hook_url, logs=None, **config):
    """Connect to group with token, sync, gate repo pid with config (PUT /api/repos/:id/config, enabled) and wait
    until its webhook (hook_url) is on GitLab."""
    connect_and_sync(c, sim, group, token, timeout=30, logs=logs)
    r = c.put(f"/api/repos/{pid}/config", dict(config, enabled=True))
    assert r.status == 200, r.body
    wait_hook(sim.client(token), pid, hook_url, logs=logs)


def newest_run(c, pid, iid, sha, timeout=30, logs=None):
    """Wait until the newest gate run of MR iid is on sha and done; returns its detail (GET /api/gates/:id)."""
    def done():
        items = c.get(f"/api/gates?repo={pid}&mr={iid}").json()["items"]
        return items[0] if items and items[0]["state"] == "done" and items[0]["head_sha"] == sha else None
    found = harness.wait_for(done, timeout, f"the run of {sha[:8]} recorded done", logs=logs)
    return c.get(f"/api/gates/{found['id']}").json()
