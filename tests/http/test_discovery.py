"""Discovery: 10,050 repos over nested subgroups (GitLab omits totals above 10,000), an unchanged second run,
removed and archived projects, faults injected during the listing, progress while running, one run at a time,
and the repository list API (filters, sorting, cursor paging)."""
import functools
import time

import flows
import harness
from harness import Mrgate, run
from sim import Sim

N = 10050
TOKEN = "glpat-discoveryToken0001"
sim = Sim("discovery")
sim.add_group("acme", tier="ultimate")
sim.seed("acme", projects=N, depth=3, fanout=3)
sim.add_token(TOKEN, kind="group_access", scopes=["api"], access={"acme": 50})
# These tests list 10,050 repos a dozen times in a few minutes, past GitLab.com's 600 a minute on
# GET /groups/:id/projects, which they are not about (tests/unit/test_gitlab_endpoint429.c is).
sim.settings(group_projects_per_minute=0)
srv = Mrgate("discovery", env={"MRGATE_GITLAB_RETRIES": "6", "MRGATE_GITLAB_BACKOFF_MS": "20",
                               "MRGATE_GITLAB_RATE_LIMIT": "0"})
c = srv.login()
flows.connect(c, sim, "acme", TOKEN)
sync_and_wait = functools.partial(flows.sync, c, expect=None, timeout=240)  # the ended run, whatever its state


def exact_count():
    """The repos listed (not removed), counted exactly: the page's count stops at 10,000, the summary does not."""
    return c.get("/api/repos?limit=1&with=summary").json()["summary"]["repos"]


def test_first_discovery_lists_everything_without_totals():
    # the simulator omits x-total / x-total-pages above 10,000 rows, as GitLab does
    r = sim.client(TOKEN).get("/api/v4/groups/acme/projects?include_subgroups=true&per_page=100")
    assert r.header("x-total") is None and r.header("x-total-pages") is None
    sim.reset_counters()
    s = sync_and_wait()
    assert s["state"] == "done", s
    assert s["repos_seen"] == N and s["new_repos"] == N and s["removed"] == 0, s
    # one listing per group (each group's own projects), every page stored once
    assert s["pages"] == sim.count("GET", "/api/v4/groups/:id/projects"), (s, sim.counters())
    assert (N + 99) // 100 <= s["pages"] <= (N + 99) // 100 + 40, s
    assert s["groups_seen"] == 1 + 3 + 9 + 27, s
    # more than 10,000 repos: the page's count stops at 10,000 and says so; the summary counts them all
    page = c.get("/api/repos?limit=1").json()
    assert N > 10000 and page["count"] == 10000 and page["count_capped"] is True, page
    assert exact_count() == N
    assert int(harness.sql(srv.db_url, "SELECT count(*) FROM repos")[0][0]) == N


def test_second_run_changes_nothing():
    s = sync_and_wait()
    assert s["state"] == "done", s
    assert (s["repos_seen"], s["new_repos"], s["updated"], s["removed"], s["archived"]) == (N, 0, 0, 0, 0), s


def test_removed_and_archived_are_marked():
    items = c.get("/api/repos?limit=3").json()["items"]
    gone, shelved = items[0], items[1]
    sim.remove_project(gone["id"], wait=True)
    sim.archive_project(shelved["id"])
    s = sync_and_wait()
    assert s["state"] == "done", s
    assert s["removed"] == 1 and s["archived"] == 1 and s["repos_seen"] == N - 1, s
    g = c.get(f"/api/repos/{gone['id']}").json()
    assert g["status"] == "removed" and g["removed_at"], g
    a = c.get(f"/api/repos/{shelved['id']}").json()
    assert a["archived"] is True and a["status"] == "archived", a
    # removed repos are kept, listed only when asked for
    assert c.get("/api/repos?status=removed").json()["count"] == 1
    assert exact_count() == N - 1
    assert c.get("/api/repos?archived=true").json()["count"] == 1


def test_faults_during_discovery_are_retried():
    sim.set_faults(error_rate=0.15, reset_rate=0.05)
    # and two scripted 429s with Retry-After on the project list
    sim.script("GET", "/api/v4/groups/:id/projects", [
        {"status": 429, "body": "Retry later", "headers": {"Retry-After": "1"}},
        {"status": 502, "body": "bad gateway"},
    ])
    try:
        s = sync_and_wait()
    finally:
        sim.set_faults()
    assert s["state"] == "done", s
    assert s["repos_seen"] == N - 1 and s["new_repos"] == 0 and s["removed"] == 0, s
    text = c.get("/metrics").body.decode()
    assert "mrgate_gitlab_retries_total" in text
    retries = float([l for l in text.splitlines() if l.startswith("mrgate_gitlab_retries_total")][0].split()[1])
    assert retries >= 2, retries
    assert 'endpoint="/groups/:id/projects",status="429"' in text, "the 429 is not in the metrics"


def test_progress_is_readable_and_one_run_at_a_time():
    sim.set_faults(latency_ms=30)
    try:
        # the previous test's run may still be applying what it found: this one starts once that has ended
        r = flows.start_sync(c)
        run_id = r.json()["id"]
        second = c.post("/api/sync")
        assert second.status == 409 and second.json()["error"] == "sync_running", second.body
        seen_pages = []
        while True:
            s = c.get(f"/api/sync?id={run_id}").json()
            if s["state"] != "running":
                break
            seen_pages.append(s["pages"])
            time.sleep(0.1)
        assert s["state"] == "done", s
        assert any(0 < p < s["pages"] for p in seen_pages), seen_pages  # progress visible mid-run
        assert seen_pages == sorted(seen_pages)
    finally:
        sim.set_faults()


def test_repo_list_filters_sort_and_cursor():
    # group filter includes subgroups; a sibling prefix does not leak in
    g = c.get("/api/repos?group=acme/team01&limit=5").json()
    assert g["count"] > 0 and all(i["namespace_full_path"].startswith("acme/team01") for i in g["items"])
    sub = c.get("/api/repos?group=acme/team01/sub01&limit=500").json()
    assert 0 < sub["count"] < g["count"]
    # text search: acme-00040 .. acme-00049
    q = c.get("/api/repos?q=acme-0004&limit=500").json()
    assert q["count"] == 10 and all("acme-0004" in i["path_with_namespace"] for i in q["items"]), q["count"]
    # walk every page of a filter by cursor: no duplicates, nothing missing, sorted
    paths, cursor = [], None
    while True:
        url = "/api/repos?group=acme/team02&limit=137" + (f"&cursor={cursor}" if cursor else "")
        page = c.get(url).json()
        paths += [i["path_with_namespace"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(paths) == len(set(paths)) == page["count"]
    assert paths == sorted(paths, key=lambda p: p.encode())
    # descending by activity also pages completely
    ids, cursor = [], None
    while True:
        page = c.get("/api/repos?sort=activity&order=desc&limit=400&group=acme/team03" +
                     (f"&cursor={cursor}" if cursor else "")).json()
        ids += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(ids) == len(set(ids)) == page["count"]
    for bad in ["status=bogus", "sort=size", "limit=0", "cursor=!!!", "archived=maybe"]:
        r = c.get("/api/repos?" + bad)
        assert r.status == 400 and r.json()["error"] == "invalid_input", (bad, r.body)


def test_group_tree():
    groups = c.get("/api/groups").json()
    paths = [g["full_path"] for g in groups]
    assert paths[0] == "acme" and len(paths) == 40
    root = groups[0]
    assert root["repos"] == N - 1


def test_cli_sync():
    out = srv.cli("sync")
    assert out.returncode == 0, out.stderr
    assert f"{N - 1} repos" in out.stdout, out.stdout


def group_id(path):
    return sim.client(TOKEN).get("/api/v4/groups/" + path.replace("/", "%2F")).json()["id"]


def test_listing_that_misses_projects_marks_none_removed():
    # A project moved between two subgroups while they are listed one by one can be missed by both listings.
    # Stand-in: the listing of one small group answers an empty page. Its projects are then read one by one, and
    # only the one GitLab no longer has is marked removed.
    sim.add_group("acme/tiny")
    made = [sim.add_project("acme/tiny", f"svc-{i}")["id"] for i in range(4)]
    s = sync_and_wait()
    assert s["state"] == "done" and s["new_repos"] == 4 and s["removed"] == 0, s
    total = s["repos_seen"]
    sim.remove_project(made[0], wait=True)
    sim.script("GET", f"/api/v4/groups/{group_id('acme/tiny')}/projects", [{"status": 200, "body": []}])
    sim.reset_counters()
    s = sync_and_wait()
    assert s["state"] == "done", s
    assert s["removed"] == 1 and s["repos_seen"] == total - 1 and s["updated"] == 0, s
    assert sim.count("GET", "/api/v4/projects/:id") == 4, sim.counters()
    for pid in made[1:]:
        assert c.get(f"/api/repos/{pid}").json()["status"] != "removed"
    assert c.get(f"/api/repos/{made[0]}").json()["status"] == "removed"


def test_large_miss_lists_the_whole_tree_again():
    # More than 200 unseen repos are not read one by one: one listing of the tree in id order decides.
    big = max((g for g in c.get("/api/groups").json() if g["full_path"].count("/") == 3), key=lambda g: g["repos"])
    assert big["repos"] > 200, big
    before = exact_count()
    sim.script("GET", f"/api/v4/groups/{group_id(big['full_path'])}/projects", [{"status": 200, "body": []}])
    sim.reset_counters()
    s = sync_and_wait()
    assert s["state"] == "done" and s["removed"] == 0 and s["repos_seen"] == before and s["updated"] == 0, s
    assert sim.count("GET", "/api/v4/projects/:id") == 0, sim.counters()
    assert exact_count() == before


def test_groups_are_listed_concurrently():
    # With 40 ms per call, listing 40 groups one after the other would take at least 120 pages x 40 ms; the
    # simulator's peak of concurrent project-list requests shows the fan-out without timing anything.
    s = flows.sync_at_latency(c, sim, 40, expect=None, timeout=240)
    assert s["state"] == "done" and s["removed"] == 0, s
    peak = sim.counters().get("peak_in_flight")
    assert peak is not None and peak >= 4, sim.counters()


def test_token_not_logged():
    assert TOKEN not in srv.logs()


run([test_first_discovery_lists_everything_without_totals, test_second_run_changes_nothing,
     test_removed_and_archived_are_marked, test_faults_during_discovery_are_retried,
     test_progress_is_readable_and_one_run_at_a_time, test_repo_list_filters_sort_and_cursor, test_group_tree,
     test_cli_sync, test_listing_that_misses_projects_marks_none_removed, test_large_miss_lists_the_whole_tree_again,
     test_groups_are_listed_concurrently, test_token_not_logged])
