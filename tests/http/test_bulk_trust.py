"""HTTP: the bulk flow a user can trust (issue 11), against the GitLab simulator.

Shows: a configure of every repo (no filter: the default level) works, dry run and apply, from the API and the
CLI; a read-only connection never sends a write: configure answers 409 token_read_only and GitLab sees no call;
a token revoked in the middle of an apply job is refused by GitLab at most once, every remaining item ends with
the reason without a call, and /api/connection says so at once; scan types without a scanner on this server are
named by the API, refused unless confirmed, and a config with no scan at all is a 400.
"""
import time

import flows
from harness import Mrgate, run
from sim import Sim

N = 12
TOKEN = "glpat-bulk-trust-write"
RO_TOKEN = "glpat-bulk-trust-read"
MID_TOKEN = "glpat-bulk-trust-midjob"

sim = Sim("bulk_trust_sim")
sim.add_token(TOKEN, access={"acme": 50})
sim.add_token(RO_TOKEN, scopes=["read_api"], access={"acme": 50})
sim.add_token(MID_TOKEN, access={"acme": 50})
sim.seed("acme", projects=N, depth=2, fanout=2)
ENV = {"MRGATE_GITLAB_RATE_LIMIT": "0", "MRGATE_LOG_LEVEL": "info", "MRGATE_RESYNC_INTERVAL": "86400"}
IAC_SCANNER = "printf '{\"version\":\"2.1.0\",\"runs\":[]}'"


def hooked_projects(srv):
    url = srv.base + "/hooks/gitlab"
    return {h["project_id"] for h in sim.hooks() if h["url"] == url}


main = Mrgate("bulk_trust", env=dict(ENV, MRGATE_SCANNER_IAC=IAC_SCANNER))
c = main.login()
flows.connect_and_sync(c, sim, "acme", TOKEN, repos=N)


# --- defect 1: a configure of every repo (the default level) --------------------------------------------------

def test_select_all_without_filter_dry_run_and_apply():
    body = {"selection": {"filter": {}}, "config": {"enabled": True, "fail_on": "high", "scans": ["secrets"],
                                                       "block_merge": True}}
    d = flows.dry_run(c, body)
    assert d["summary"]["level"] == "default" and d["summary"]["selected"] == N, d["summary"]
    assert len(d["plan"]) == N, d
    assert not hooked_projects(main), "a dry run wrote to GitLab"
    r = c.post("/api/configure", body)
    assert r.status == 202, (r.status, r.body)
    j = flows.wait_job(c, r.json()["apply"]["job_id"])
    assert j["failed"] == 0, j
    assert len(hooked_projects(main)) == N
    cfg = c.get("/api/configs/default").json()["config"]
    assert cfg["fail_on"] == "high" and cfg["block_merge"] is True, cfg
    gated = c.get("/api/repos?status=gated&limit=1").json()["count"]
    assert gated == N, gated


def test_cli_configure_every_repo():
    r = main.cli("configure", "--repos", "**", "--fail-on", "critical", "--dry-run")
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert c.get("/api/configs/default").json()["config"]["fail_on"] == "high", "a dry run stored the config"
    r = main.cli("configure", "--repos", "**", "--fail-on", "critical")
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert c.get("/api/configs/default").json()["config"]["fail_on"] == "critical"


# --- defect 3: a read-only connection never writes ------------------------------------------------------------

def test_read_only_connection_configure_is_409_without_gitlab_calls():
    ro = Mrgate("bulk_trust_ro", env=ENV)
    rc = ro.login()
    flows.connect_and_sync(rc, sim, "acme", RO_TOKEN, repos=N)
    conn = rc.get("/api/connection").json()
    assert conn["capability"] == "read_only", conn
    ids = [x["id"] for x in rc.get("/api/repos?limit=5").json()["items"]]
    sim.reset_counters()
    for sel in ({"ids": ids}, {"filter": {}}, {"filter": {"group": "acme"}}):
        r = rc.post("/api/configure", {"selection": sel, "config": {"fail_on": "low"}})
        assert r.status == 409, (sel, r.status, r.body)
        e = r.json()
        assert e["error"] == "token_read_only", e
        assert "api scope" in e["message"] and "update" in e["message"], e
    r = ro.cli("configure", "--repos", "**", "--fail-on", "low")
    assert r.returncode != 0 and "read-only" in r.stderr and "api scope" in r.stderr, (r.returncode, r.stderr)
    time.sleep(1)  # nothing should be queued either: give a worker the time to (wrongly) act
    counters = sim.counters()
    assert counters["total"] == 0, counters
    assert rc.get("/api/jobs").json()["items"] == [], "a job was created"
    assert rc.get("/api/configs/default").json()["config"].get("fail_on") != "low", "the config was stored"
    ro.stop()


# --- defect 4: a token refused mid-job is noticed at once ------------------------------------------------------

def test_token_revoked_mid_job_one_401_then_every_item_ends_with_reason():
    mid = Mrgate("bulk_trust_mid", env=dict(ENV, MRGATE_GITLAB_CONCURRENCY="1", MRGATE_WORKERS="1"))
    mc = mid.login()
    flows.connect_and_sync(mc, sim, "acme", MID_TOKEN, repos=N)
    assert mc.get("/api/connection").json()["token"]["status"] == "ok"
    sim.set_faults(latency_ms=150)
    try:
        r = mc.post("/api/configure", {"selection": {"filter": {}}, "config": {"enabled": True}})
        assert r.status == 202, (r.status, r.body)
        job_id = r.json()["apply"]["job_id"]
        deadline = time.time() + 60
        while time.time() < deadline:
            j = mc.get(f"/api/jobs/{job_id}?items_limit=0").json()
            if j["done"] >= 2:
                break
            time.sleep(0.05)
        assert not j["finished"], f"the job ended before the token could be revoked: {j}"
        sim.revoke_token(MID_TOKEN)
        sim.reset_counters()  # from here on, every request GitLab receives is answered 401
        j = flows.wait_job(mc, job_id)
    finally:
        sim.set_faults()
    counters = sim.counters()
    assert counters["total"] <= 1, f"GitLab was called {counters['total']} times after the revocation: {counters}"
    items = flows.job_items(mc, job_id, limit=5)  # pages of 5: the cursor is followed
    assert len(items) == N, (len(items), items)
    refused = [x for x in items if x["result"] == "error"]
    assert refused and j["failed"] == len(refused), j
    for x in refused:
        assert "revoked" in x["message"], x
    conn = mc.get("/api/connection").json()
    assert conn["token"]["status"] == "revoked", conn
    assert "update" in conn["token"]["problem"], conn
    mid.stop()


# --- removing a group config says which repos it stops gating -----------------------------------------------------

def test_removing_a_group_config_that_gates_repos_needs_confirming_the_ungating():
    # a walk removed a group config on the Configs page: "Its repositories inherit ... again", and the job that
    # followed deleted the hooks of every repo the config had gated, which nothing had said
    default = c.get("/api/configs/default").json()["config"]
    r = c.put("/api/configs/default", dict(default, enabled=False))
    assert r.status == 200, r.body
    flows.wait_job(c, r.json()["apply"]["job_id"])
    assert not hooked_projects(main)
    groups = sorted(g["full_path"] for g in c.get("/api/groups").json())
    sub, other = [g for g in groups if g != "acme"][:2]
    in_sub = {x["id"] for x in c.get(f"/api/repos?group={sub}&limit=100").json()["items"]}
    assert in_sub, sub
    r = c.put(f"/api/configs/groups/{sub}", {"enabled": True})
    assert r.status == 200, r.body
    flows.wait_job(c, r.json()["apply"]["job_id"])
    assert hooked_projects(main) == in_sub
    before = (c.get("/api/configs/groups").json(), c.get("/api/audit?limit=1").json()["items"])
    sim.reset_counters()
    for query in ("", "?confirm_ungate=false"):
        r = c.delete(f"/api/configs/groups/{sub}{query}")
        assert r.status == 409, (query, r.status, r.body)
        e = r.json()
        assert e["error"] == "would_ungate" and e["ungated"] == len(in_sub), e
        assert f"stops gating {len(in_sub)} " in e["message"] and "confirm_ungate" in e["message"], e
        assert "nothing was changed" in e["message"], e
        assert e["examples"] and all(p.startswith(sub + "/") for p in e["examples"]), e
    # saving a config that stops gating them is asked about too: a walk's Edit set "Gate these repositories" to
    # Inherit, and 92 repositories were ungated without a word
    for body in ({"fail_on": "low"}, {"enabled": None, "block_merge": True}, {"enabled": False},
                 {"enabled": False, "confirm_ungate": False}):
        r = c.put(f"/api/configs/groups/{sub}", body)
        assert r.status == 409, (body, r.status, r.body)
        e = r.json()
        assert e["error"] == "would_ungate" and e["ungated"] == len(in_sub), e
        assert e["message"].startswith(f'saving the config of "{sub}" stops gating {len(in_sub)} repositories'), e
        assert '"confirm_ungate": true' in e["message"] and "nothing was changed" in e["message"], e
        assert e["examples"] and all(p.startswith(sub + "/") for p in e["examples"]), e
    r = c.put(f"/api/configs/groups/{sub}", {"fail_on": "low", "confirm_ungate": "yes"})
    assert r.status == 400 and "confirm_ungate" in r.json()["message"], r.body
    # a confirmation is "true" and nothing else: not a NUL-cut "true" (a walk's true%00 removed the config)
    for value in ("yes", "TRUE", "true%00", "true%00x", "truetruetrue", ""):
        r = c.delete(f"/api/configs/groups/{sub}?confirm_ungate={value}")
        assert r.status == 400, (value, r.status, r.body)
        assert r.json()["message"] == "confirm_ungate must be true or false", (value, r.body)
    assert (c.get("/api/configs/groups").json(), c.get("/api/audit?limit=1").json()["items"]) == before
    time.sleep(0.3)
    assert sim.counters()["writes"] == 0 and hooked_projects(main) == in_sub
    # a group config that sets nothing would change nothing: refused, saying what to do instead
    r = c.put(f"/api/configs/groups/{other}", {})
    assert r.status == 400 and "with none it would change nothing" in r.json()["message"], r.body
    assert "DELETE removes one" in r.json()["message"], r.body
    # a config that gates nothing is removed without it
    assert c.put(f"/api/configs/groups/{other}", {"fail_on": "low"}).status == 200
    r = c.delete(f"/api/configs/groups/{other}")
    assert r.status == 200 and r.json()["ungated"] == 0, r.body
    # confirmed: removed, the answer says how many, and its job ungates them on GitLab
    r = c.delete(f"/api/configs/groups/{sub}?confirm_ungate=true")
    assert r.status == 200 and r.json()["ungated"] == len(in_sub), r.body
    entry = c.get("/api/audit?limit=1").json()["items"][0]
    assert entry["action"] == "config.group.delete" and entry["target"] == sub, entry
    assert entry["details"] == {"ungated": len(in_sub), "confirm_ungate": True}, entry
    flows.wait_job(c, r.json()["apply"]["job_id"])
    assert not hooked_projects(main)
    assert sub not in [g["path"] for g in c.get("/api/configs/groups").json()]
    # a save that keeps them gated needs no confirmation; one that stops gating them, confirmed, says how many
    r = c.put(f"/api/configs/groups/{sub}", {"enabled": True})
    assert r.status == 200 and r.json()["ungated"] == 0, r.body
    flows.wait_job(c, r.json()["apply"]["job_id"])
    r = c.put(f"/api/configs/groups/{sub}", {"enabled": True, "fail_on": "low"})
    assert r.status == 200 and r.json()["ungated"] == 0 and r.json()["config"] == {"enabled": True, "fail_on": "low"}, r.body
    assert r.json()["apply"] is None, r.body  # the severity is read by the gate: nothing to change on GitLab
    assert hooked_projects(main) == in_sub
    r = c.put(f"/api/configs/groups/{sub}", {"fail_on": "low", "confirm_ungate": True})
    assert r.status == 200 and r.json()["ungated"] == len(in_sub), r.body
    assert r.json()["config"] == {"fail_on": "low"}, r.body
    entry = c.get("/api/audit?limit=1").json()["items"][0]
    assert entry["action"] == "config.group.update" and entry["target"] == sub, entry
    assert entry["details"] == {"ungated": len(in_sub), "confirm_ungate": True}, entry
    flows.wait_job(c, r.json()["apply"]["job_id"])
    assert not hooked_projects(main)
    r = c.put("/api/configs/default", default)
    assert r.status == 200, r.body
    flows.wait_job(c, r.json()["apply"]["job_id"])
    assert len(hooked_projects(main)) == N


# --- defect 6: one paging convention ----------------------------------------------------------------------------

def walk(path, key="items", limit_param="limit", cursor_param="cursor", next_key="next_cursor", limit=2):
    out, cursor, pages = [], None, 0
    sep = "&" if "?" in path else "?"
    while True:
        r = c.get(f"{path}{sep}{limit_param}={limit}" + (f"&{cursor_param}={cursor}" if cursor else ""))
        assert r.status == 200, (path, r.status, r.body)
        page = r.json()
        assert len(page[key]) <= limit, page
        out += page[key]
        pages += 1
        cursor = page[next_key]
        assert cursor is None or isinstance(cursor, str), page
        if not cursor:
            return out, pages


def test_every_list_pages_with_cursor_and_next_cursor():
    one = c.get("/api/repos?limit=1").json()["items"][0]["id"]
    r = c.post("/api/configure", {"selection": {"ids": [one]}, "config": {"comment": "always"}, "reapply": True})
    assert r.status == 202, r.body  # a second job, of one item
    flows.wait_job(c, r.json()["apply"]["job_id"])
    audit_all = c.get("/api/audit?limit=500").json()["items"]
    audit, pages = walk("/api/audit")
    assert [a["id"] for a in audit] == [a["id"] for a in audit_all] and pages > 1, (len(audit), pages)
    jobs_all = c.get("/api/jobs?limit=500").json()["items"]
    jobs, pages = walk("/api/jobs", limit=1)
    assert [j["id"] for j in jobs] == [j["id"] for j in jobs_all] and pages == len(jobs_all) >= 2, (jobs, pages)
    job_id = jobs_all[-1]["id"]
    items, pages = walk(f"/api/jobs/{job_id}", limit_param="items_limit", cursor_param="items_cursor",
                        next_key="items_next_cursor", limit=5)
    assert len(items) == N and len({i["id"] for i in items}) == N and pages == 3, (len(items), pages)
    repos, _ = walk("/api/repos", limit=5)
    assert len(repos) == N
    for path in ("/api/audit?before=5", "/api/audit?cursor=x", "/api/jobs?cursor=-1"):
        r = c.get(path)
        assert r.status == 400 or "before" in path, (path, r.status)


# --- defect 9: a GitLab URL that includes the group path --------------------------------------------------------

def test_gitlab_url_with_group_path_says_what_to_enter():
    srv = Mrgate("bulk_trust_url", env=ENV)
    cc = srv.login()
    r = cc.put("/api/connection", {"gitlab_url": sim.base + "/acme/team01", "group": "acme", "token": TOKEN})
    assert r.status == 400, (r.status, r.body)
    e = r.json()
    assert e["error"] == "invalid_input", e
    assert "the address of the GitLab instance, " + sim.base + "," in e["message"], e
    assert "token's user" not in e["message"], e
    srv.stop()


# --- defect 5: scan types without a scanner -----------------------------------------------------------------

def test_api_names_the_scanners_of_this_server():
    r = c.get("/api/scanners")
    assert r.status == 200, r.body
    by = {x["scan"]: x for x in r.json()["items"]}
    assert set(by) == {"secrets", "sast", "dependencies", "iac", "license", "malware"}, by
    assert by["secrets"]["available"] and by["secrets"]["builtin"], by["secrets"]
    assert by["iac"]["available"] and not by["iac"]["builtin"], by["iac"]
    for s in ("sast", "dependencies", "license", "malware"):
        assert by[s]["available"] is False and by[s]["setting"] == "MRGATE_SCANNER_" + s.upper(), by[s]
    assert "printf" not in r.body.decode(), "the scanner command line is not shown"


def test_scan_without_scanner_needs_confirmation():
    ids = [x["id"] for x in c.get("/api/repos?limit=3").json()["items"]]
    before = [c.get(f"/api/repos/{i}").json()["config"]["scans"] for i in ids]
    body = {"selection": {"ids": ids}, "config": {"scans": ["secrets", "dependencies"]}}
    for dry in (True, False):
        r = c.post("/api/configure", dict(body, dry_run=dry))
        assert r.status == 400, (dry, r.status, r.body)
        e = r.json()
        assert e["error"] == "no_scanner" and "dependencies" in e["message"], e
        assert "confirm_no_scanner" in e["message"], e
    assert [c.get(f"/api/repos/{i}").json()["config"]["scans"] for i in ids] == before, "stored without a scanner"
    r = main.cli("configure", "--repos", "acme/**", "--scans", "secrets,dependencies")
    assert r.returncode != 0 and "no scanner on this server for dependencies" in r.stderr, (r.returncode, r.stderr)
    # a type that has a scanner here needs no confirmation
    r = c.post("/api/configure", {"selection": {"ids": ids}, "config": {"scans": ["secrets", "iac"]}})
    assert r.status in (200, 202), r.body
    # the config pages' writes ask the same (a walk saved "sast" for a group and one repo without a word, and every
    # merge request there then failed "sast: no scanner configured")
    configs_before = (c.get("/api/configs/default").json(), c.get("/api/configs/groups").json(),
                      c.get(f"/api/repos/{ids[0]}/config").json())
    for path in ("/api/configs/default", "/api/configs/groups/acme", f"/api/repos/{ids[0]}/config"):
        r = c.put(path, {"enabled": True, "scans": ["secrets", "sast"]})
        assert r.status == 400, (path, r.status, r.body)
        e = r.json()
        assert e["error"] == "no_scanner" and "sast" in e["message"] and "confirm_no_scanner" in e["message"], e
    assert (c.get("/api/configs/default").json(), c.get("/api/configs/groups").json(),
            c.get(f"/api/repos/{ids[0]}/config").json()) == configs_before, "stored without a scanner"
    r = c.put("/api/configs/groups/acme/nowhere", {"scans": ["sast"], "confirm_no_scanner": True,
                                                   "confirm_new_group": True})
    assert r.status == 200 and r.json()["config"]["scans"] == ["sast"], r.body
    assert c.put("/api/configs/groups/acme/nowhere", {"confirm_no_scanner": "yes"}).status == 400
    assert c.delete("/api/configs/groups/acme/nowhere").status == 200
    r = c.post("/api/configure", dict(body, confirm_no_scanner=True))
    assert r.status in (200, 202), r.body
    assert all(c.get(f"/api/repos/{i}").json()["config"]["scans"] == ["secrets", "dependencies"] for i in ids)


def test_zero_scans_is_400():
    ids = [x["id"] for x in c.get("/api/repos?limit=2").json()["items"]]
    for path, body in (("/api/configure", {"selection": {"ids": ids}, "config": {"scans": []}}),
                       ("/api/configs/default", {"scans": []})):
        r = c.post(path, body) if path == "/api/configure" else c.put(path, body)
        assert r.status == 400, (path, r.status, r.body)
        assert "scans" in r.json()["message"] and "no scan" in r.json()["message"], r.body


def test_configure_without_fields_is_400():
    r = c.post("/api/configure", {"selection": {"filter": {}}, "config": {}})
    assert r.status == 400 and "no field" in r.json()["message"], r.body


def test_the_default_config_refuses_null_and_no_field():
    # a walk: PUT /api/configs/default with {} or {"enabled": null} answered 200, the default became the built-in
    # one (not enabled) and the job that followed deleted every repo's hook and cleared its MRs' gates
    ids = [x["id"] for x in c.get("/api/repos?limit=1").json()["items"]]
    before = (c.get("/api/configs/default").json(), c.get("/api/configs/groups").json(),
              c.get(f"/api/repos/{ids[0]}/config").json())
    for path, body, said in (("/api/configs/default", {}, "no field"),
                             ("/api/configs/default", {"enabled": None, "fail_on": "high"}, "enabled"),
                             ("/api/configs/default", {"enabled": True, "scans": None}, "scans"),
                             # a second walk: without "enabled" it took the built-in false
                             ("/api/configs/default", {"fail_on": "medium"}, '"enabled" is required')):
        r = c.put(path, body)
        assert r.status == 400, (path, body, r.status, r.body)
        e = r.json()
        assert e["error"] == "invalid_config" and said in e["message"], (path, e)
        assert "null" in e["message"] or not body or "enabled" not in body, e
    assert (c.get("/api/configs/default").json(), c.get("/api/configs/groups").json(),
            c.get(f"/api/repos/{ids[0]}/config").json()) == before, "a refused write stored something"


run([
    test_the_default_config_refuses_null_and_no_field,
    test_gitlab_url_with_group_path_says_what_to_enter,
    test_api_names_the_scanners_of_this_server,
    test_scan_without_scanner_needs_confirmation,
    test_zero_scans_is_400,
    test_configure_without_fields_is_400,
    test_select_all_without_filter_dry_run_and_apply,
    test_cli_configure_every_repo,
    test_removing_a_group_config_that_gates_repos_needs_confirming_the_ungating,
    test_every_list_pages_with_cursor_and_next_cursor,
    test_read_only_connection_configure_is_409_without_gitlab_calls,
    test_token_revoked_mid_job_one_401_then_every_item_ends_with_reason,
])
