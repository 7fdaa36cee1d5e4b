"""HTTP: the repo list's page cache (MRGATE_REPO_LIST_CACHE_MB, core/repos.h) never answers with a page older than
the request.

Over a synced group: the same page read twice while nothing commits is served from the cache (mrgate_repo_list_pages_total
{source="cache"}), the same text for a bearer token and for a session; a repo exception saved through the API shows
in the very next read by the same client and by another; a change committed in SQL shows at once; a page read while
a write is in progress does not show it, and shows it once it commits; with a cached page, a revoked token and a
disabled user's session are still refused (the cache sits behind authentication); a page with its summary carries
both.
"""
import json
import re
import subprocess

import flows
from harness import Mrgate, run, wait_for
from sim import Sim

TOKEN = "glpat-list-cache-owner"
sim = Sim("repo_list_cache_sim")
sim.seed("lc", projects=12, depth=1, fanout=2, tier="premium")
sim.add_token(TOKEN, kind="group_access", access={"lc": 50})
srv = Mrgate("repo_list_cache")
admin = srv.login()
flows.connect_and_sync(admin, sim, "lc", TOKEN, repos=12)
PAGE = "/api/repos?limit=5"


def pages(source):
    text = admin.get("/metrics").body.decode()
    m = re.search(r'mrgate_repo_list_pages_total\{source="%s"\} (\d+)' % source, text)
    return int(m.group(1)) if m else 0


def read(client, path=PAGE, **kw):
    """(body, served from the cache) of one GET."""
    before = pages("cache")
    r = client.get(path, **kw)
    assert r.status == 200, r.body
    return r.body, pages("cache") > before


def read_cached(client, want=None, path=PAGE, **kw):
    """Read until a read comes from the cache (a background commit, such as a session's sliding expiry, moves the
    snapshot and rightly reads again); it must equal want when given. Returns the body."""
    for _ in range(20):
        body, cached = read(client, path, **kw)
        if want is not None:
            assert body == want
        if cached:
            return body
    raise AssertionError("20 reads in a row were not served from the cache: is it on?")


def first(body, key="name"):
    return json.loads(body)["items"][0][key]


bearer_token = srv.cli("token", "create", "admin", "list-cache").stdout.strip()
BEARER = {"Authorization": "Bearer " + bearer_token}


def test_same_page_same_snapshot_from_cache():
    body, _ = read(admin, headers=BEARER)
    read_cached(admin, body, headers=BEARER)
    viewer_body = read_cached(admin)  # a session reads the same page: the same text
    assert viewer_body == body


def test_api_write_shows_in_the_next_read():
    body = read_cached(admin)
    rid = int(first(body, "id"))
    assert first(body, "status") != "exception"
    r = admin.put(f"/api/repos/{rid}/config", {"fail_on": "critical"})
    assert r.status == 200, r.body
    body, cached = read(admin)
    assert not cached and first(body, "status") == "exception", body[:300]
    body, _ = read(admin, headers=BEARER)
    assert first(body, "status") == "exception"
    assert admin.delete(f"/api/repos/{rid}/config").status == 200
    body, _ = read(admin)
    assert first(body, "status") != "exception"


def test_sql_commit_and_write_in_progress():
    body = read_cached(admin, headers=BEARER)
    rid = first(body, "id")
    srv.sql(f"UPDATE repos SET name = 'renamed-by-commit' WHERE id = {rid}")
    body, cached = read(admin, headers=BEARER)
    assert not cached and first(body) == "renamed-by-commit"
    read_cached(admin, body, headers=BEARER)
    # a transaction that has written and not committed: not in the page; its commit is
    psql = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", srv.db_url], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    psql.stdin.write(f"BEGIN; UPDATE repos SET name = 'renamed-in-transaction' WHERE id = {rid};\n"
                     "SELECT pg_sleep(2); COMMIT;\n")
    psql.stdin.flush()
    wait_for(lambda: srv.sql("SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                             " AND query LIKE '%pg_sleep(2)%' AND pid <> pg_backend_pid()")[0][0] == "1",
             timeout=10, what="the writing transaction to be open")
    body, _ = read(admin, headers=BEARER)
    assert first(body) == "renamed-by-commit"
    psql.stdin.close()
    assert psql.wait(timeout=10) == 0, psql.stderr.read()
    body, cached = read(admin, headers=BEARER)
    assert not cached and first(body) == "renamed-in-transaction"


def test_cache_stays_behind_authentication():
    assert srv.cli("user", "add", "vera", "--role", "viewer", stdin="vera-passphrase\n").returncode == 0
    vera = srv.login("vera", "vera-passphrase")
    body = read_cached(vera)
    uid = next(u["id"] for u in admin.get("/api/users").json()["items"] if u["username"] == "vera")
    tok = srv.cli("token", "create", "vera", "soon-revoked").stdout.strip()
    read_cached(vera, body, headers={"Authorization": "Bearer " + tok})
    tid = next(t["id"] for t in admin.get(f"/api/tokens?user_id={uid}").json()["items"] if t["name"] == "soon-revoked")
    assert admin.delete(f"/api/tokens/{tid}").status == 204
    assert vera.get(PAGE, headers={"Authorization": "Bearer " + tok}).status == 401
    assert admin.request("PATCH", f"/api/users/{uid}", {"disabled": True}).status == 200
    assert vera.get(PAGE).status == 401
    assert srv.client().get(PAGE).status == 401
    read_cached(admin, body)  # still cached for those who may read it


def test_summary_with_a_cached_page():
    read_cached(admin, path="/api/repos?limit=1")
    r = admin.get("/api/repos?limit=1&with=summary")
    assert r.status == 200, r.body
    page = r.json()
    assert page["summary"]["repos"] == 12 and len(page["items"]) == 1 and page["count"] == 12, page
    assert list(page)[:4] == ["items", "count", "count_capped", "next_cursor"]


if __name__ == "__main__":
    run([test_same_page_same_snapshot_from_cache, test_api_write_shows_in_the_next_read,
         test_sql_commit_and_write_in_progress, test_cache_stays_behind_authentication,
         test_summary_with_a_cached_page])
