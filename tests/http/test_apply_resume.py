"""HTTP: an apply job survives a SIGKILL of the server; two servers share one job (DESIGN.md §3, core/jobs.h).

Shows (issue 5, "Must show"): mrgate is SIGKILLed in the middle of a 1,000-repo apply job and started again on the
same database: the job completes with total = done = 1000 and failed = 0; every project ends with exactly one hook
with our URL, every hook POST the simulator counted created a distinct project's hook and none was deleted; each
item is recorded once (the job's counters equal the items' results, the items recorded by the killed instance are
exactly the job's progress at the kill, the rest by the restarted one), and the items that were running at the kill
were taken over (attempts >= 2). Then two servers on one database work off one job together: both appear as lease
owners and no item or hook is doubled.

The simulator answers every API call after 20 ms, so the job runs for several seconds; the lease is 3 s
(MRGATE_JOB_LEASE_MS) so the takeover comes quickly. The client-side rate limit is off (MRGATE_GITLAB_RATE_LIMIT=0):
at its default of 1,200 calls a minute the job would take minutes (see docs/PERFORMANCE.md).
"""
import time

import flows
import harness
from harness import Mrgate, run
from sim import Sim

N = 1000
N_PAIR = 300
TOKEN = "glpat-apply-resume-test"
LATENCY_MS = 20
CFG = {"enabled": True, "block_merge": True}
ENV = {"MRGATE_GITLAB_CONCURRENCY": "8", "MRGATE_GITLAB_RATE_LIMIT": "0", "MRGATE_JOB_LEASE_MS": "3000",
       "MRGATE_LOG_LEVEL": "info"}
POST_HOOK = "POST /api/v4/projects/:id/hooks"
DELETE_HOOK = "DELETE /api/v4/projects/:id/hooks/:hook_id"

sim = Sim("apply_resume_sim")
# GitLab.com answers GET /projects/:id 400 times a minute per user (the simulator's default, issue 19); the apply
# reads it once per block_merge repo, so 1,000 repos take 2.5 minutes there. This test measures the apply itself.
sim.settings(project_get_per_minute=0)
sim.add_token(TOKEN, access={"acme": 50, "beta": 50})
sim.seed("acme", projects=N, depth=2, fanout=3)
sim.seed("beta", projects=N_PAIR, depth=1, fanout=3)


def group_project_ids(group):
    gl = sim.client(TOKEN)
    ids, page = set(), 1
    while page:
        r = gl.get(f"/api/v4/groups/{group}/projects?include_subgroups=true&simple=true&per_page=100&page={page}")
        assert r.status == 200, r.body
        ids |= {p["id"] for p in r.json()}
        page = int(r.header("X-Next-Page") or 0)
    return ids


def start_job(c, group, n):
    r = c.post("/api/configure", {"selection": {"filter": {"group": group}}, "config": CFG})
    assert r.status == 202, (r.status, r.body)
    apply = r.json()["apply"]
    assert apply and apply["repos"] == n and apply["job_id"], apply
    return apply["job_id"]


def check_one_hook_each(hook_url, project_ids):
    """Every project has exactly one hook with our URL and no other project has one; returns {project: hook id}."""
    by = sim.hooks_by_project(hook_url)
    doubled = {p: [h["id"] for h in hs] for p, hs in by.items() if len(hs) != 1}
    assert not doubled, f"projects with more than one mrgate hook: {dict(list(doubled.items())[:10])}"
    missing = project_ids - set(by)
    assert not missing, f"{len(missing)} projects without our hook, e.g. {sorted(missing)[:10]}"
    extra = set(by) - project_ids
    assert not extra, f"hooks on projects outside the job: {sorted(extra)[:10]}"
    return {p: hs[0]["id"] for p, hs in by.items()}


def check_posts_made_distinct_hooks(hook_url, n):
    """Every hook POST the simulator saw created a hook that is still there, on a distinct project."""
    by = sim.counters()["by_route"]
    posts, deletes = by.get(POST_HOOK, 0), by.get(DELETE_HOOK, 0)
    live = sum(len(v) for v in sim.hooks_by_project(hook_url).values())
    assert deletes == 0, f"{deletes} hook DELETEs: a duplicate was created and cleaned up"
    assert posts >= n, f"only {posts} hook POSTs for {n} projects"
    # no DELETE, and every project has one hook: a POST beyond n would show as a second hook on some project
    assert posts == live == n, f"{posts} hook POSTs, {live} live mrgate hooks, {n} projects"
    return posts


def check_items_recorded_once(db, job_id, n):
    """One final result per item, and the job's counters are exactly the sum of the items' results."""
    j = harness.sql(db, f"SELECT state, total, done, changed, unchanged, skipped, failed FROM jobs WHERE id = {job_id}")
    state, total, done, changed, unchanged, skipped, failed = j[0][0], *map(int, j[0][1:])
    assert (state, total, done, failed) == ("done", n, n, 0), j
    items = harness.sql(db, f"SELECT state, coalesce(result, '-'), count(*), count(DISTINCT repo_id)"
                            f" FROM job_items WHERE job_id = {job_id} GROUP BY 1, 2")
    per = {r[1]: int(r[2]) for r in items}
    assert all(r[0] == "done" for r in items), items
    assert sum(per.values()) == n and sum(int(r[3]) for r in items) == n, items
    assert per.get("changed", 0) == changed and per.get("unchanged", 0) == unchanged, (per, j)
    assert per.get("skipped", 0) == skipped and per.get("error", 0) == failed, (per, j)
    assert changed + unchanged + skipped + failed == done, j
    return per


def owners(db, job_id):
    rows = harness.sql(db, f"SELECT lease_owner, count(*) FROM job_items WHERE job_id = {job_id} GROUP BY 1")
    return {r[0]: int(r[1]) for r in rows}


def owner_of(pid, owner_counts):
    mine = [o for o in owner_counts if o.split(":")[1:2] == [str(pid)]]
    assert len(mine) <= 1, owner_counts
    return mine[0] if mine else None


# --- SIGKILL in the middle of a 1,000-repo job, then a restart ------------------------------------------------

def test_sigkill_mid_job_then_restart_completes_once():
    srv = Mrgate("apply_resume", env=ENV)
    c = srv.login()
    hook_url = srv.base + "/hooks/gitlab"
    flows.connect_and_sync(c, sim, "acme", TOKEN, repos=N)
    projects = group_project_ids("acme")
    assert len(projects) == N
    sim.set_faults(latency_ms=LATENCY_MS)
    sim.reset_counters()
    t0 = time.time()
    job_id = start_job(c, "acme", N)

    # SIGKILL when 20-60 % is done
    while True:
        j = flows.job(c, job_id)
        pct = j["done"] * 100 // N
        if pct >= 20:
            break
        assert time.time() - t0 < 60, f"the job did not reach 20% within 60s: {j}"
        time.sleep(0.05)
    assert pct <= 60, f"the job ran too fast to be interrupted in the middle ({pct}% at the first poll past 20%)"
    killed_pid = srv.proc.p.pid
    srv.proc.kill()
    t_kill = time.time()
    # the job as the killed server left it (the database is still up), once the statements it had sent have ended
    harness.wait_other_clients_gone(srv.db_url)
    done_at_kill = int(harness.sql(srv.db_url, f"SELECT done FROM jobs WHERE id = {job_id}")[0][0])
    running_at_kill = {int(r[0]) for r in harness.sql(
        srv.db_url, f"SELECT id FROM job_items WHERE job_id = {job_id} AND state = 'running'")}
    hooks_at_kill = {p: hs[0]["id"] for p, hs in sim.hooks_by_project(hook_url).items()}
    assert 0.2 * N <= done_at_kill < N and running_at_kill, (done_at_kill, running_at_kill)
    print(f"  killed pid {killed_pid} after {t_kill - t0:.1f}s at {done_at_kill}/{N} done,"
          f" {len(running_at_kill)} items running, {len(hooks_at_kill)} hooks created")

    # restart on the same database, secret key file and URL
    srv.start()
    assert srv.proc.p.pid != killed_pid
    c = srv.login()
    j = flows.wait_job(c, job_id, 75)
    print(f"  job finished {time.time() - t_kill:.1f}s after the kill ({time.time() - t0:.1f}s in all): {j}")
    assert j["state"] == "done" and j["succeeded"] is True, j
    assert (j["total"], j["done"], j["failed"]) == (N, N, 0), j

    # GitLab: one hook per project, each POST a distinct project's hook, hooks made before the kill kept
    hook_ids = check_one_hook_each(hook_url, projects)
    posts = check_posts_made_distinct_hooks(hook_url, N)
    assert all(hook_ids[p] == h for p, h in hooks_at_kill.items()), "a hook created before the kill was replaced"
    merge_off = [p for p in sorted(projects)[:50] if sim.project(p)["settings"]
                 ["only_allow_merge_if_pipeline_succeeds"] is not True]
    assert not merge_off, merge_off

    # the database: one result per item; the killed server recorded exactly its progress, the new one the rest
    per = check_items_recorded_once(srv.db_url, job_id, N)
    by_owner = owners(srv.db_url, job_id)
    old, new = owner_of(killed_pid, by_owner), owner_of(srv.proc.p.pid, by_owner)
    assert old and new and set(by_owner) == {old, new}, by_owner
    assert by_owner[old] == done_at_kill and by_owner[new] == N - done_at_kill, (by_owner, done_at_kill)
    ids = ",".join(map(str, running_at_kill))
    taken = harness.sql(srv.db_url, f"SELECT id, attempts, lease_owner FROM job_items WHERE id IN ({ids})")
    assert len(taken) == len(running_at_kill), taken
    assert all(int(a) >= 2 and o == new for _, a, o in taken), taken
    once = harness.sql(srv.db_url, f"SELECT count(*) FROM job_items WHERE job_id = {job_id} AND attempts = 1"
                                   f" AND id NOT IN ({ids})")
    assert int(once[0][0]) == N - len(running_at_kill), (once, len(running_at_kill))
    logs = srv.logs()
    assert logs.count("taken over after its lease expired") >= len(running_at_kill), logs[-3000:]
    assert "result not recorded" not in logs, "a result was refused: the lease was lost"
    gated = harness.sql(srv.db_url, "SELECT count(*) FROM repo_gitlab_state WHERE applied_state = 'hook+merge'"
                                    " AND NOT applying")
    assert int(gated[0][0]) == N, gated
    print(f"  results {per}; recorded by the killed server {by_owner[old]}, by the restarted one {by_owner[new]};"
          f" {len(taken)} items taken over; {posts} hook POSTs")

    # the duplicate check above can fail: a second hook with our URL on one project is caught
    pid = sorted(projects)[0]
    gl = sim.client(TOKEN)
    r = gl.post(f"/api/v4/projects/{pid}/hooks", {"url": hook_url, "merge_requests_events": True})
    assert r.status == 201, r.body
    try:
        check_one_hook_each(hook_url, projects)
        raise RuntimeError("a duplicate hook went unnoticed")
    except AssertionError as e:
        assert str(pid) in str(e), e
    try:
        check_posts_made_distinct_hooks(hook_url, N)
        raise RuntimeError("a POST beyond one per project went unnoticed")
    except AssertionError:
        pass
    assert gl.delete(f"/api/v4/projects/{pid}/hooks/{r.json()['id']}").status == 204
    sim.set_faults()
    srv.stop()


# --- two servers, one database, one job -------------------------------------------------------------------------

def test_two_servers_share_one_job():
    sim.set_faults()
    a = Mrgate("apply_resume_pair", env=ENV)
    # the same database, secret key and public URL (two replicas behind one address)
    b = Mrgate("apply_resume_pair_b", db_url=a.db_url,
               env=dict(ENV, MRGATE_SECRET_KEY_FILE=a.env["MRGATE_SECRET_KEY_FILE"], MRGATE_PUBLIC_URL=a.base))
    c = a.login()
    hook_url = a.base + "/hooks/gitlab"
    flows.connect_and_sync(c, sim, "beta", TOKEN, repos=N_PAIR)
    projects = group_project_ids("beta")
    sim.set_faults(latency_ms=LATENCY_MS)
    sim.reset_counters()
    t0 = time.time()
    job_id = start_job(c, "beta", N_PAIR)
    j = flows.wait_job(b.login(), job_id, 60)
    assert (j["state"], j["total"], j["done"], j["failed"]) == ("done", N_PAIR, N_PAIR, 0), j
    check_one_hook_each(hook_url, projects)
    check_posts_made_distinct_hooks(hook_url, N_PAIR)
    check_items_recorded_once(a.db_url, job_id, N_PAIR)
    by_owner = owners(a.db_url, job_id)
    oa, ob = owner_of(a.proc.p.pid, by_owner), owner_of(b.proc.p.pid, by_owner)
    assert oa and ob and set(by_owner) == {oa, ob}, by_owner
    att = harness.sql(a.db_url, f"SELECT max(attempts) FROM job_items WHERE job_id = {job_id}")
    assert int(att[0][0]) == 1, f"an item was claimed twice: {att}"
    for s in (a, b):
        assert "result not recorded" not in s.logs() and "taken over" not in s.logs()
    print(f"  {N_PAIR} repos in {time.time() - t0:.1f}s; items by owner {by_owner}")
    sim.set_faults()
    b.stop()
    a.stop()


run([test_sigkill_mid_job_then_restart_completes_once, test_two_servers_share_one_job])
