"""Discovery of one flat group (no subgroups, 1,205 projects, 13 pages): with nothing to fan out over but the group's
own pages, the listing reads numbered pages ahead (GitLab offers offset pages only for group project listings), so
more than one request is in flight; it stores every project once and asks for at most a few pages past the end."""
import functools

import flows
from harness import Mrgate, run
from sim import Sim

N = 1205
CONCURRENCY = 8
TOKEN = "glpat-discoveryFlat00001"
sim = Sim("discovery_flat")
sim.seed("flat", projects=N, depth=0)
sim.add_token(TOKEN, kind="group_access", scopes=["api"], access={"flat": 50})
srv = Mrgate("discovery_flat", env={"MRGATE_GITLAB_CONCURRENCY": str(CONCURRENCY), "MRGATE_GITLAB_RATE_LIMIT": "0"})
c = srv.login()
flows.connect(c, sim, "flat", TOKEN)
sync_and_wait = functools.partial(flows.sync, c, expect=None, timeout=120)
PAGES = (N + 99) // 100


def test_one_group_is_read_ahead():
    # 40 ms a call: a strictly sequential walk would have one request in flight at a time
    s = flows.sync_at_latency(c, sim, 40, expect=None, timeout=120)
    assert s["state"] == "done" and s["repos_seen"] == N and s["new_repos"] == N, s
    assert s["groups_seen"] == 1 and s["pages"] == PAGES, s
    cnt = sim.counters()
    calls = cnt["by_route"].get("GET /api/v4/groups/:id/projects", 0)
    # pages past the end answer empty: at most concurrency - 1 of them
    assert PAGES <= calls <= PAGES + CONCURRENCY - 1, cnt
    assert cnt.get("peak_in_flight", 0) >= 4, cnt
    assert c.get("/api/repos?limit=1").json()["count"] == N


def test_second_run_changes_nothing():
    s = sync_and_wait()
    assert (s["state"], s["repos_seen"], s["new_repos"], s["updated"], s["removed"]) == ("done", N, 0, 0, 0), s


def test_a_removed_project_is_found():
    gone = c.get("/api/repos?limit=1").json()["items"][0]
    sim.remove_project(gone["id"])
    s = sync_and_wait()
    assert (s["state"], s["repos_seen"], s["removed"]) == ("done", N - 1, 1), s
    assert c.get(f"/api/repos/{gone['id']}").json()["status"] == "removed"


run([test_one_group_is_read_ahead, test_second_run_changes_nothing, test_a_removed_project_is_found])
