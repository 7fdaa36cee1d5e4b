"""HTTP: gating configs, bulk configure (dry run, apply) and the apply engine against the GitLab simulator.

Shows: configuring 1,000 repos creates exactly one hook per repo and sets the merge setting; applying again makes
zero GitLab writes; changing the severity of 1,000 repos makes zero GitLab calls; un-gating removes only our hook
and restores the prior setting; a hook deleted or edited by hand is repaired on the next apply; a repo answering
403 is reported with advice while the others succeed; dry-run makes no write; importing an invalid file changes
nothing; invalid config values are a 400 naming the field and the allowed values.
"""
import functools
import json
import os
import re
import time

import flows
import harness
from harness import Mrgate, run
from sim import Sim

N = 1000
TOKEN = "glpat-configure-test"

sim = Sim("configure_sim")
# GitLab.com answers GET /projects/:id 400 times a minute per user (the simulator's default, issue 19); the apply
# reads it once per block_merge repo, so 1,000 repos take 2.5 minutes there. This test measures the apply itself.
sim.settings(project_get_per_minute=0)
sim.add_token(TOKEN, access={"acme": 50})
sim.seed("acme", projects=N, depth=2, fanout=3)
srv = Mrgate("configure", env={"MRGATE_GITLAB_CONCURRENCY": "16", "MRGATE_GITLAB_RATE_LIMIT": "0",
                                      "MRGATE_LOG_LEVEL": "info"})
c = srv.login()
HOOK = srv.base + "/hooks/gitlab"

flows.connect_and_sync(c, sim, "acme", TOKEN, timeout=120)
repos = functools.partial(flows.all_repos, c)
ALL = repos()
assert len(ALL) == N, len(ALL)
IDS = [r["id"] for r in ALL]


wait_applied = functools.partial(flows.wait_applied, c, 150)


def configure(body, expect=(200, 202)):
    body = dict(body, confirm_no_scanner=True)  # CFG enables sast, which has no scanner on this server
    r = c.post("/api/configure", body)
    assert r.status in expect, (r.status, r.body)
    return r.json()


our_hooks = functools.partial(sim.hooks_by_project, HOOK)


def merge_setting(pid):
    return sim.project(pid)["settings"]["only_allow_merge_if_pipeline_succeeds"]


# --- config model --------------------------------------------------------------------------------------------

def test_validation_names_field_and_values():
    cases = [
        ("/api/configs/default", {"fail_on": "hihg"}, ["fail_on", "critical, high, medium, low, never"]),
        ("/api/configs/groups/acme", {"scans": ["secrets", "fuzz"]}, ["scans", "fuzz", "malware"]),
        (f"/api/repos/{IDS[0]}/config", {"comment": "sometimes"}, ["comment", "off, on_findings, always"]),
        (f"/api/repos/{IDS[0]}/config", {"unmanaged": "yes"}, ["unmanaged", "true or false"]),
        ("/api/configs/default", {"colour": "red"}, ["colour", "enabled, fail_on, scans"]),
        ("/api/configs/default", {"ignore_paths": ["!x"]}, ["ignore_paths"]),
        # hostile globs are refused with the reason (matching is polynomial anyway)
        ("/api/configs/default", {"ignore_paths": ["*.md", "a" * 600]}, ["ignore_paths", "pattern 2 ", "512 bytes"]),
        # patterns that ignore every file would turn the gate off while it still says "gated" (a walk saved "**"
        # and an MR adding a token passed with "no new findings")
        ("/api/configs/default", {"ignore_paths": ["**"]}, ["ignore_paths", "every file", "enabled"]),
        # one that already stops gating is not told to stop gating (a walk read "set enabled to false" beside it)
        ("/api/configs/default", {"enabled": False, "ignore_paths": ["**"]}, ["every file", "already stops gating"]),
        ("/api/configs/groups/acme", {"ignore_paths": ["vendor/", "**/*"]}, ["ignore_paths", "every file"]),
        (f"/api/repos/{IDS[0]}/config", {"enabled": True, "ignore_paths": ["*"]}, ["ignore_paths", "every file"]),
        (f"/api/repos/{IDS[0]}/config", {"ignore_paths": ["*", "**/"]}, ["ignore_paths", "every file"]),
        ("/api/configs/default", {"ignore_paths": ["**/" * 22 + "x"]}, ["ignore_paths", "22 \"**\"; at most 8"]),
        # a pattern must show what it ignores: no invisible or reordering characters (U+202E showed "vendor/**"
        # where the pattern was "vendor/\u202e**" and ignored something else), no control characters, no NUL
        ("/api/configs/default", {"ignore_paths": ["vendor/\u202e**"]}, ["ignore_paths", "pattern 1 ", "U+202E"]),
        ("/api/configs/default", {"ignore_paths": ["a", "b\u200bc"]}, ["ignore_paths", "pattern 2 ", "U+200B"]),
        ("/api/configs/default", {"ignore_paths": ["docs/\tx"]}, ["ignore_paths", "control character"]),
        ("/api/configs/default", {"ignore_paths": ["docs/\u0000x"]}, ["NUL"]),
    ]
    for path, body, words in cases:
        r = c.put(path, body)
        assert r.status == 400, (path, body, r.status, r.body)
        msg = r.json()["message"]
        for w in words:
            assert w in msg, (w, msg)
    r = c.post("/api/configure", {"selection": {"ids": IDS[:2]}, "config": {"fail_on": "loud"}})
    assert r.status == 400 and "fail_on" in r.json()["message"], r.body
    r = c.post("/api/configure", {"selection": {"ids": IDS[:2]}, "config": {"ignore_paths": ["**/**"]}})
    assert r.status == 400 and "every file" in r.json()["message"], r.body
    # a scan type that does not exist is named as such, with the ones that do (a walk was told "no scanner on this
    # server for fuzz", as if configuring one would help)
    r = c.post("/api/configure", {"selection": {"ids": IDS[:2]}, "config": {"scans": ["secrets", "fuzz"]}})
    assert r.status == 400 and r.json()["error"] == "invalid_config", r.body
    assert "fuzz" in r.json()["message"] and "malware" in r.json()["message"], r.body
    # narrower patterns stay allowed
    for ok in [["vendor/**", "**/*.min.js"], ["*.md"], ["docs/"]]:
        r = c.put(f"/api/repos/{IDS[0]}/config", {"ignore_paths": ok})
        assert r.status == 200, (ok, r.body)
    assert c.delete(f"/api/repos/{IDS[0]}/config").status == 200
    # resetting again: it has no config of its own; resetting a repo that does not exist says so (a walk was told
    # "repository 999999 has no config of its own; it already inherits")
    r = c.delete(f"/api/repos/{IDS[0]}/config")
    assert r.status == 404 and "has no config of its own" in r.json()["message"], r.body
    r = c.delete("/api/repos/999999/config")
    assert r.status == 404 and r.json()["message"] == "no repository with id 999999", r.body
    # a repository id in a path is written as GitLab writes it: "+1000" and "01000" changed repo 1000
    own = c.get(f"/api/repos/{IDS[0]}/config").json()
    for bad in (f"+{IDS[0]}", f"0{IDS[0]}", f" {IDS[0]}", f"{IDS[0]}.0", "1e3", "0"):
        for method in (c.put, c.get):
            r = method(f"/api/repos/{bad.replace(' ', '%20')}/config", {"fail_on": "low"}) if method == c.put else \
                method(f"/api/repos/{bad.replace(' ', '%20')}/config")
            assert r.status == 400 and r.json()["message"] == "a repository id is a positive integer", (bad, r.body)
    assert c.get(f"/api/repos/{IDS[0]}/config").json() == own
    # a job id likewise, on every job route: a walk's id of 20 digits was "no job with id ..." (404) on the plan and
    # a 400 on the job itself
    for bad in ("99999999999999999999", "+1", "01", "abc"):
        for path in (f"/api/jobs/{bad}", f"/api/jobs/{bad}/plan"):
            r = c.get(path)
            assert r.status == 400 and r.json()["message"] == "a job id is a positive integer", (path, r.body)
    # and a number in a query the same way (a walk's limit=01, limit=+5 and items_limit=+1 were taken)
    for q in ("limit=01", "limit=+5", "limit=%205", "limit=5.0", "limit=99999999999999999999"):
        r = c.get(f"/api/jobs?{q}")
        assert r.status == 400 and r.json()["message"] == "limit must be an integer from 1 to 500", (q, r.body)
    r = c.get("/api/jobs?limit=5")
    assert r.status == 200, r.body
    # GitLab's own path rules (a segment starts with a letter, digit, "_" or ".", ends with a letter, digit, "_" or
    # "-", never ends in .git or .atom): a config for a path no group can have would silently gate nothing.
    before = c.get("/api/configs/groups").json()
    # CivetWeb would clean "sub." to "sub", "a/../b" to "b" and "a//b" to "a/b": mrgate refuses such a path rather
    # than store a config under a path the user did not send.
    for bad, why in [("-acme", "is not a GitLab group path"), ("acme/x.git", "is not a GitLab group path"),
                     ("acme/x.atom", "is not a GitLab group path"), ("acme/sub.", "a segment ending in"),
                     ("acme/%2E", "segments"), ("acme/%2E%2E", "segments"), ("acme/%2E%2E/other", "segments"),
                     ("acme//sub", "repeated slashes")]:
        r = c.put(f"/api/configs/groups/{bad}", {"fail_on": "low"})
        assert r.status == 400 and why in r.json()["message"], (bad, r.status, r.body)
    assert c.get("/api/configs/groups").json() == before
    for good in ["acme/.hidden", "acme/v1.2-rc_3", "acme/_a"]:
        assert c.put(f"/api/configs/groups/{good}", {"fail_on": "low", "confirm_new_group": True}).status == 200, good
        assert c.delete(f"/api/configs/groups/{good}").status == 200, good


def test_inheritance_sources_and_exception():
    before = sim.counters()["total"]
    deep = next(x for x in ALL if x["namespace_full_path"].count("/") >= 2)  # in acme/<group>/<subgroup>
    sub = deep["namespace_full_path"]
    top = "/".join(sub.split("/")[:2])
    assert c.put(f"/api/configs/groups/{top}", {"fail_on": "medium", "comment": "always"}).status == 200
    assert c.put(f"/api/configs/groups/{sub}", {"fail_on": "critical"}).status == 200
    g = c.get(f"/api/configs/groups/{sub}").json()
    assert g["config"] == {"fail_on": "critical"}, g
    row = c.get(f"/api/repos/{deep['id']}").json()
    assert row["config"]["fail_on"] == "critical" and row["config"]["comment"] == "always", row
    assert row["config_sources"]["fail_on"] == f"group:{sub}", row["config_sources"]
    assert row["config_sources"]["comment"] == f"group:{top}", row["config_sources"]
    assert row["config_sources"]["scans"] == "default"
    assert row["exception"] is False and row["status"] == "ungated", row
    # a repo config that differs is an exception; one equal to the inherited value is not
    r = c.put(f"/api/repos/{deep['id']}/config", {"fail_on": "critical"})
    assert r.status == 200 and r.json()["exception"] is False, r.body
    r = c.put(f"/api/repos/{deep['id']}/config", {"fail_on": "low"})
    assert r.status == 200 and r.json()["exception"] is True, r.body
    listed = c.get("/api/repos?status=exception").json()
    assert [x["id"] for x in listed["items"]] == [deep["id"]], listed
    assert c.delete(f"/api/repos/{deep['id']}/config").status == 200
    assert c.delete(f"/api/configs/groups/{sub}").status == 200
    assert c.delete(f"/api/configs/groups/{top}").status == 200
    assert c.get(f"/api/configs/groups/{sub}").status == 404
    # none of this touched GitLab: nothing is gated
    assert sim.counters()["total"] == before


def test_group_path_in_another_case_is_the_synced_group():
    # GitLab's paths ignore case (/groups/ACME/G1 is acme/g1): a config sent for the path in another case is the
    # synced group's config, stored under GitLab's spelling; before, it was stored as typed and gated nothing
    deep = next(x for x in ALL if x["namespace_full_path"].count("/") >= 2)
    sub = deep["namespace_full_path"]
    shout = sub.upper()
    assert shout != sub
    r = c.put(f"/api/configs/groups/{shout}", {"fail_on": "low"})
    assert r.status == 200 and r.json()["path"] == sub, r.body
    assert [g["path"] for g in c.get("/api/configs/groups").json() if g["path"].lower() == sub.lower()] == [sub]
    row = c.get(f"/api/repos/{deep['id']}").json()
    assert row["config"]["fail_on"] == "low" and row["config_sources"]["fail_on"] == f"group:{sub}", row
    assert c.get(f"/api/configs/groups/{shout}").json()["path"] == sub
    assert c.delete(f"/api/configs/groups/{shout}").status == 200
    assert c.get(f"/api/configs/groups/{sub}").status == 404
    assert c.get(f"/api/repos/{deep['id']}").json()["config_sources"]["fail_on"] == "default"
    # the same through Configure Scans with a group filter in another case: the group's repos, its config
    sel = {"filter": {"group": shout}}
    r = c.post("/api/configure", {"selection": sel, "config": {"fail_on": "medium"}, "dry_run": True})
    assert r.status in (200, 202), r.body
    summary = r.json()["summary"]
    assert summary["level"] == "group" and summary["target"] == sub and summary["selected"] > 0, summary
    # and the repo list filtered by the group in that case lists what Configure applies to (it listed none)
    exact = c.get(f"/api/repos?group={sub}&limit=500&with=summary").json()
    for spelling in (shout, sub.lower(), sub.swapcase()):
        listed = c.get(f"/api/repos?group={spelling}&limit=500&with=summary").json()
        assert [x["id"] for x in listed["items"]] == [x["id"] for x in exact["items"]], (spelling, listed)
        assert listed["count"] == exact["count"] == summary["selected"], (spelling, listed["count"], summary)
        assert listed["summary"] == exact["summary"], (spelling, listed["summary"])
    r = c.post("/api/configure", {"selection": sel, "config": {"fail_on": "medium"}})
    assert r.status in (200, 202) and r.json()["summary"]["target"] == sub, r.body
    assert c.get(f"/api/configs/groups/{sub}").json()["config"] == {"fail_on": "medium"}
    assert c.get(f"/api/repos/{deep['id']}").json()["config"]["fail_on"] == "medium"
    assert c.delete(f"/api/configs/groups/{sub}").status == 200
    assert [g for g in c.get("/api/configs/groups").json() if g["path"].lower() == sub.lower()] == []


def without_digest(ov):
    """A summary's overridden without its digest (of every path), which is checked where it matters."""
    assert len(ov.get("digest", "")) == 64, ov
    return {k: v for k, v in ov.items() if k != "digest"}


def test_a_group_configure_says_which_exceptions_and_subgroups_it_overrides():
    # a walk set one repo's exception to fail on critical, configured its group to fail on medium, and the exception
    # was gone without a word (the preview said only "You change: fail the gate on medium")
    deep = next(x for x in ALL if x["namespace_full_path"].count("/") >= 2)
    sub = deep["namespace_full_path"]
    top = "/".join(sub.split("/")[:2])
    assert c.put(f"/api/repos/{deep['id']}/config", {"fail_on": "critical", "comment": "always"}).status == 200
    assert c.put(f"/api/configs/groups/{sub}", {"fail_on": "low", "scans": ["secrets"]}).status == 200
    sel = {"filter": {"group": top}}
    r = c.post("/api/configure", {"selection": sel, "config": {"fail_on": "medium"}, "dry_run": True})
    assert r.status == 202, r.body
    ov = without_digest(r.json()["summary"]["overridden"])
    assert ov == {"groups": 1, "repos": 1, "paths": [sub, deep["path_with_namespace"]]}, ov
    # the dry run changed nothing
    assert c.get(f"/api/repos/{deep['id']}/config").json()["config"] == {"fail_on": "critical", "comment": "always"}
    # a field no more specific config sets overrides nothing
    r = c.post("/api/configure", {"selection": sel, "config": {"block_merge": False}, "dry_run": True})
    assert without_digest(r.json()["summary"]["overridden"]) == {"groups": 0, "repos": 0, "paths": []}, r.body
    # applied: the same answer, and only the field sent was taken out of them
    r = c.post("/api/configure", {"selection": sel, "config": {"fail_on": "medium"}})
    assert r.status in (200, 202) and r.json()["summary"]["overridden"]["repos"] == 1, r.body
    assert c.get(f"/api/repos/{deep['id']}/config").json()["config"] == {"comment": "always"}
    assert c.get(f"/api/configs/groups/{sub}").json()["config"] == {"scans": ["secrets"]}
    # a subgroup config left with no field sets nothing: it is gone, not listed as "sets nothing" (a walk saw them
    # pile up on the Defaults & groups page)
    r = c.post("/api/configure", {"selection": sel, "config": {"scans": ["secrets"]}})
    assert r.status in (200, 202) and r.json()["summary"]["overridden"]["groups"] == 1, r.body
    assert c.get(f"/api/configs/groups/{sub}").status == 404
    assert sub not in [g["path"] for g in c.get("/api/configs/groups").json()]
    assert c.get(f"/api/configs/groups/{top}").json()["config"] == {"fail_on": "medium", "scans": ["secrets"]}
    # nor can a PUT store a group config that sets nothing (null inherits): a 400 that says how to inherit all
    for body in ({}, {"fail_on": None}):
        r = c.put(f"/api/configs/groups/{sub}", body)
        assert r.status == 400 and r.json()["error"] == "invalid_config", (body, r.body)
        assert "it needs no config (DELETE removes one)" in r.json()["message"], r.body
    assert c.get(f"/api/configs/groups/{sub}").status == 404
    # the same below the default: a group config emptied by a default-level Configure is gone
    assert c.put(f"/api/configs/groups/{sub}", {"comment": "off"}).status == 200
    default_comment = c.get("/api/configs/default").json()["config"]["comment"]
    r = c.post("/api/configure", {"selection": {"filter": {}}, "config": {"comment": default_comment}})
    assert r.status in (200, 202) and r.json()["summary"]["overridden"]["groups"] == 1, r.body
    assert c.get(f"/api/configs/groups/{sub}").status == 404
    assert c.get(f"/api/repos/{deep['id']}/config").json()["config"] == {}
    assert c.delete(f"/api/repos/{deep['id']}/config").status == 200
    assert c.delete(f"/api/configs/groups/{top}").status == 200


def test_an_apply_that_would_replace_more_than_the_preview_showed_is_refused():
    # a walk previewed a group configure (it replaced nothing), an exception was added through the API before Apply,
    # and Apply replaced it with only "The job started." on screen
    deep = next(x for x in ALL if x["namespace_full_path"].count("/") >= 2)
    top = "/".join(deep["namespace_full_path"].split("/")[:2])
    sel = {"selection": {"filter": {"group": top}}, "config": {"fail_on": "medium"}}
    r = c.post("/api/configure", {**sel, "dry_run": True})
    assert r.status == 202, r.body
    shown = r.json()["summary"]["overridden"]
    assert without_digest(shown) == {"groups": 0, "repos": 0, "paths": []}, shown
    assert c.put(f"/api/repos/{deep['id']}/config", {"fail_on": "critical"}).status == 200
    audit_before = c.get("/api/audit?limit=1").json()["items"][0]["id"]
    r = c.post("/api/configure", {**sel, "expect_overridden": shown})
    assert r.status == 409, r.body
    body = r.json()
    assert body["error"] == "overrides_changed", body
    assert deep["path_with_namespace"] in body["message"] and "Nothing was stored" in body["message"], body
    assert without_digest(body["summary"]["overridden"]) == {"groups": 0, "repos": 1,
                                                            "paths": [deep["path_with_namespace"]]}, body
    # nothing stored: the exception, no group config, no audit entry
    assert c.get(f"/api/repos/{deep['id']}/config").json()["config"] == {"fail_on": "critical"}
    assert c.get(f"/api/configs/groups/{top}").status == 404
    assert c.get("/api/audit?limit=1").json()["items"][0]["id"] == audit_before
    # with what it now replaces as the expectation (the user saw it): applied
    r = c.post("/api/configure", {**sel, "expect_overridden": body["summary"]["overridden"]})
    assert r.status in (200, 202), r.body
    row = c.get(f"/api/repos/{deep['id']}").json()
    assert row["config"]["fail_on"] == "medium" and row["config_sources"]["fail_on"] == f"group:{top}", row
    # replacing less than was shown is no surprise: applied
    r = c.post("/api/configure", {"selection": {"filter": {"group": top}}, "config": {"fail_on": "low"},
                                  "expect_overridden": {"groups": 0, "repos": 1, "paths": ["x/y"]}})
    assert r.status in (200, 202), r.body
    # a malformed expectation is a 400 naming the field; nothing stored
    for bad in ("none", None, {"groups": -1, "repos": 0, "paths": []}, {"groups": 0, "repos": 0},
                {"groups": 0, "repos": 0, "paths": [3]}, {"groups": 0, "repos": 0, "paths": [], "extra": 1},
                {"groups": 0, "repos": 0, "paths": [], "digest": 7}):
        r = c.post("/api/configure", {**sel, "expect_overridden": bad})
        assert r.status == 400 and r.json()["error"] == "invalid_input" and "expect_overridden" in r.json()["message"], (bad, r.body)
    assert c.get(f"/api/configs/groups/{top}").json()["config"] == {"fail_on": "low"}
    assert c.delete(f"/api/repos/{deep['id']}/config").status in (200, 404)
    assert c.delete(f"/api/configs/groups/{top}").status == 200
    # beyond the 10 paths a summary lists: one exception swapped for another after the preview is refused too (a
    # walk had 15 exceptions, took out the 15th and added one: the same count, the same first 10 paths)
    mine = sorted([x for x in ALL if x["path_with_namespace"].startswith(top + "/")],
                  key=lambda x: x["path_with_namespace"])[:16]
    for x in mine[:15]:
        assert c.put(f"/api/repos/{x['id']}/config", {"comment": "always"}).status == 200
    sel = {"selection": {"filter": {"group": top}}, "config": {"comment": "off"}}
    shown = c.post("/api/configure", {**sel, "dry_run": True}).json()["summary"]["overridden"]
    assert shown["repos"] == 15 and len(shown["paths"]) == 10, shown
    last, newer = mine[14], mine[15]  # both past the 10 paths listed, in the database's order as in Python's
    assert c.delete(f"/api/repos/{last['id']}/config").status == 200
    assert c.put(f"/api/repos/{newer['id']}/config", {"comment": "always"}).status == 200
    r = c.post("/api/configure", {**sel, "expect_overridden": shown})
    assert r.status == 409 and r.json()["error"] == "overrides_changed", r.body
    assert c.get(f"/api/repos/{newer['id']}/config").json()["config"] == {"comment": "always"}
    r = c.post("/api/configure", {**sel, "expect_overridden": r.json()["summary"]["overridden"]})
    assert r.status in (200, 202), r.body
    assert c.get(f"/api/repos/{newer['id']}").json()["config_sources"]["comment"] == f"group:{top}"
    assert c.delete(f"/api/configs/groups/{top}").status == 200


# --- configure + apply ---------------------------------------------------------------------------------------

CFG = {"enabled": True, "fail_on": "high", "scans": ["secrets", "sast"], "block_merge": True}


def test_dry_run_writes_nothing():
    before = sim.counters()
    audit_before = c.get("/api/audit?limit=1").json()["items"]
    r = flows.dry_run(c, {"selection": {"ids": IDS[:20]}, "config": CFG, "confirm_no_scanner": True})
    assert len(r["plan"]) == 20 and r["job"]["kind"] == "dryrun" and r["job"]["changed"] == 20, r
    for p in r["plan"]:
        assert p["want"] == "hook+merge" and p["hooks"]["create"] == 1, p
        assert p["settings"] == [{"only_allow_merge_if_pipeline_succeeds": {"from": False, "to": True}}], p
    assert r["gitlab_writes_planned"] == 40, r
    after = sim.counters()
    assert after["writes"] == before["writes"], (before, after)
    assert our_hooks() == {}
    assert c.get("/api/audit?limit=1").json()["items"] == audit_before
    assert c.get(f"/api/repos/{IDS[0]}/config").json()["config"] == {}
    assert c.get("/api/configs/default").json()["config"]["enabled"] is False
    # the repo's history lists the preview as a preview: a walk read "applied to GitLab, changed" for it
    hist = c.get(f"/api/repos/{IDS[0]}/history").json()["items"]
    ours = [(i["kind"], i["action"], i["result"]) for i in hist if i.get("job_id") == r["job"]["id"]]
    assert ours == [("job", "dryrun", "changed")], hist
    assert not any(i["action"] == "apply" for i in hist), hist
    # each row says what the apply would do (a walk read only "would change GitLab")
    msgs = {i["message"] for i in flows.job_items(c, r["job"]["id"])}
    assert msgs == {"would create webhook, turn on Pipelines must succeed"}, msgs


def test_configure_1000_creates_one_hook_each_and_sets_merge():
    sim.reset_counters()
    t0 = time.time()
    r = configure({"selection": {"filter": {"group": "acme"}}, "config": CFG})
    assert r["summary"]["level"] == "group" and r["summary"]["selected"] == N, r
    assert r["apply"]["repos"] == N, r
    wait_applied()
    print(f"  applied {N} repos in {time.time() - t0:.1f}s")
    hooks = our_hooks()
    assert len(hooks) == N and all(len(v) == 1 for v in hooks.values()), len(hooks)
    h = next(iter(hooks.values()))[0]
    assert h["merge_requests_events"] is True and h["push_events"] is False, h
    secret_tokens = {x[0]["token"] for x in hooks.values()}
    assert len(secret_tokens) == 1 and None not in secret_tokens
    by = sim.counters()["by_route"]
    assert by.get("POST /api/v4/projects/:id/hooks") == N, by
    assert by.get("PUT /api/v4/projects/:id") == N, by
    assert all(merge_setting(p) is True for p in list(hooks)[:25])
    rows = repos()
    assert all(x["status"] == "gated" for x in rows), {x["status"] for x in rows}
    assert all(x["last_apply"]["result"] == "changed" for x in rows)
    # in words: a bare "created webhook 201" read like an HTTP status
    msg = rows[0]["last_apply"]["message"]
    assert re.search(r"created webhook \(hook id \d+\)", msg), msg
    assert rows[0]["config_sources"]["enabled"] == "group:acme", rows[0]


def test_applying_again_makes_zero_writes():
    sim.reset_counters()
    r = configure({"selection": {"filter": {"group": "acme"}}, "config": CFG, "reapply": True})
    assert r["apply"]["repos"] == N, r
    wait_applied()
    cnt = sim.counters()
    assert cnt["writes"] == 0, cnt
    by = cnt["by_route"]
    assert by.get("GET /api/v4/projects/:id/hooks") == N, by
    assert all(x["last_apply"]["result"] == "unchanged" for x in repos())
    assert not c.get("/api/audit?action=reapply.repair").json()["items"], "a re-apply that repaired nothing"


def test_a_reapply_with_no_field_stores_no_config():
    # a walk sent {"filter": {"group": g}}, "config": {}, "reapply": true: the repos were applied again, and the group
    # got an empty config that PUT /api/configs/groups/{path} refuses and the Defaults & groups page lists
    groups_before = c.get("/api/configs/groups").json()
    default_before = c.get("/api/configs/default").json()["config"]
    configured = {g["path"] for g in groups_before}
    sub = next(g["full_path"] for g in c.get("/api/groups").json() if g["full_path"] not in configured)
    sim.reset_counters()
    r = configure({"selection": {"filter": {"group": sub}}, "config": {}, "reapply": True})
    assert r["apply"]["repos"] > 0, r
    wait_applied()
    assert sim.counters()["by_route"].get("GET /api/v4/projects/:id/hooks") == r["apply"]["repos"]
    assert c.get("/api/configs/groups").json() == groups_before
    # "config" may be left out of a re-apply (a walk was told it must be an object)
    r = configure({"selection": {"ids": IDS[:3]}, "reapply": True})
    assert r["apply"]["repos"] == 3, r
    wait_applied()
    for pid in IDS[:3]:
        assert c.get(f"/api/repos/{pid}/config").json()["config"] == {}
    r = configure({"selection": {"filter": {}}, "config": {}, "reapply": True})
    wait_applied()
    assert c.get("/api/configs/default").json()["config"] == default_before
    assert c.get("/api/configs/groups").json() == groups_before


def test_changing_severity_of_1000_makes_zero_calls():
    sim.reset_counters()
    r = configure({"selection": {"filter": {"group": "acme"}}, "config": {"fail_on": "critical"}})
    assert r["apply"] is None and r["summary"]["to_apply"] == 0, r
    r = configure({"selection": {"ids": IDS}, "config": {"scans": ["secrets"], "comment": "always"}})
    assert r["apply"] is None, r
    time.sleep(0.5)
    assert sim.counters()["total"] == 0, sim.counters()
    row = repos()[5]
    assert row["config"]["fail_on"] == "critical" and row["config"]["comment"] == "always", row
    # a per-repo change equal to the inherited value leaves no exception behind
    assert c.get("/api/repos?status=exception").json()["count"] == N  # comment differs from inherited
    configure({"selection": {"filter": {"group": "acme"}}, "config": {"comment": "always", "scans": ["secrets"]}})
    assert c.get("/api/repos?status=exception").json()["count"] == 0
    assert sim.counters()["total"] == 0


def test_drift_is_repaired_on_next_apply():
    a, b = ALL[10]["id"], ALL[11]["id"]
    gl = sim.client(TOKEN)
    ha = our_hooks()[a][0]
    assert gl.delete(f"/api/v4/projects/{a}/hooks/{ha['id']}").status == 204
    hb = our_hooks()[b][0]
    assert gl.put(f"/api/v4/projects/{b}/hooks/{hb['id']}", {"url": HOOK, "push_events": True}).status == 200
    # someone else's hook is never touched
    assert gl.post(f"/api/v4/projects/{b}/hooks", {"url": "https://ci.example.com/hook"}).status == 201
    sim.reset_counters()
    r = configure({"selection": {"ids": [a, b]}, "config": {}, "reapply": True})
    wait_applied()
    # the repair is in the audit log, by the user who re-applied, naming both repos (a walk found only the
    # configure's entry, which says "no change", while two hooks were repaired)
    paths = sorted(x["path_with_namespace"] for x in ALL if x["id"] in (a, b))
    entry = srv.wait_for(lambda: c.get("/api/audit?action=reapply.repair&limit=1").json()["items"],
                         what="the re-apply's repair entry")[0]
    assert entry["actor"] == "admin" and entry["target"] == f"job {r['apply']['job_id']}", entry
    assert entry["details"]["repaired"] == paths, entry
    assert "repaired drift on 2 repositories" in entry["details"]["message"] and paths[0] in entry["details"]["message"]
    # and what was done to each (a walk read only the paths)
    pa = next(x["path_with_namespace"] for x in ALL if x["id"] == a)
    assert "created webhook" in entry["details"]["changes"][pa], entry
    assert f"{pa} (created webhook" in entry["details"]["message"], entry
    hooks = our_hooks()
    assert len(hooks[a]) == 1 and len(hooks[b]) == 1
    assert hooks[b][0]["push_events"] is False and hooks[b][0]["id"] == hb["id"]
    by = sim.counters()["by_route"]
    assert by.get("POST /api/v4/projects/:id/hooks") == 1 and by.get("PUT /api/v4/projects/:id/hooks/:hook_id") == 1, by
    assert any(h["url"] == "https://ci.example.com/hook" for h in sim.hooks() if h["project_id"] == b)
    # the CLI's re-apply repairs are audited too (a walk: it repaired, and the audit log had no word of it)
    ha = our_hooks()[a][0]
    assert gl.delete(f"/api/v4/projects/{a}/hooks/{ha['id']}").status == 204
    r = srv.cli("configure", "--repos", pa, "--reapply")
    assert r.returncode == 0 and "1 changed" in r.stdout, (r.stdout, r.stderr)
    entry = c.get("/api/audit?action=reapply.repair&limit=1").json()["items"][0]
    assert entry["actor"] == "cli" and entry["target"].startswith("run "), entry
    assert entry["details"]["repaired"] == [pa] and "created webhook" in entry["details"]["changes"][pa], entry
    assert "repaired drift on 1 repository" in entry["details"]["message"], entry
    assert len(our_hooks()[a]) == 1


def test_a_hook_token_edited_in_gitlab_is_resent_on_request():
    # a walk edited our hook's secret token in GitLab: GitLab never shows a hook's token, so a re-apply said
    # "already in the wanted state", every delivery got 401 and the repo's merge requests went ungated without a word
    pid, other = ALL[12]["id"], ALL[13]["id"]
    secret = our_hooks()[other][0]["token"]
    h = our_hooks()[pid][0]
    gl = sim.client(TOKEN)
    assert gl.put(f"/api/v4/projects/{pid}/hooks/{h['id']}", {"url": HOOK, "token": "edited-in-gitlab"}).status == 200
    sim.open_mr(pid, [{"path": "ok.py", "content": "x = 1\n"}], wait=True)
    sim.wait_deliveries(timeout_ms=30000)
    refused = [d for d in sim.deliveries(hook_id=h["id"]) if d["response_status"] == 401]
    assert refused, sim.deliveries(hook_id=h["id"])
    # the log says so, and what to do (at most once a minute, and nothing of the request)
    line = srv.wait_for(lambda: [l for l in srv.logs().splitlines() if "webhook: refused" in l], what="a log line")
    assert "resend_hook_tokens" in line[-1] and "wrong X-Gitlab-Token" in line[-1], line
    assert "edited-in-gitlab" not in srv.logs() and secret not in srv.logs()
    # a plain re-apply cannot see it (no write); the request must say to send the secret again
    sim.reset_counters()
    configure({"selection": {"ids": [pid]}, "reapply": True})
    wait_applied()
    assert sim.counters()["writes"] == 0 and our_hooks()[pid][0]["token"] == "edited-in-gitlab"
    for body, said in (({"selection": {"ids": [pid]}, "config": {}, "resend_hook_tokens": True}, '"reapply": true'),
                       ({"selection": {"ids": [pid]}, "reapply": True, "dry_run": True, "resend_hook_tokens": True},
                        "not with a dry run"),
                       ({"selection": {"ids": [pid]}, "reapply": True, "resend_hook_tokens": None}, "true or false")):
        r = c.post("/api/configure", body)
        assert r.status == 400 and said in r.json()["message"], (body, r.status, r.body)
    sim.reset_counters()
    r = configure({"selection": {"ids": [pid]}, "reapply": True, "resend_hook_tokens": True})
    wait_applied()
    by = sim.counters()["by_route"]
    assert by.get("PUT /api/v4/projects/:id/hooks/:hook_id") == 1 and not by.get("POST /api/v4/projects/:id/hooks"), by
    hooks = our_hooks()[pid]
    assert len(hooks) == 1 and hooks[0]["id"] == h["id"] and hooks[0]["token"] == secret, hooks
    # the audit log says the tokens were sent again (a deliberate write, not drift: no repair entry)
    entry = c.get("/api/audit?action=config.configure&limit=1").json()["items"][0]
    assert entry["details"]["reapply"] is True and entry["details"]["resend_hook_tokens"] is True, entry
    # the MR whose event was refused is gated now (its head never ran)
    assert by.get("GET /api/v4/groups/:id/merge_requests") or by.get("GET /api/v4/projects/:id/merge_requests"), by
    r = srv.cli("configure", "--repos", ALL[12]["path_with_namespace"], "--resend-hook-tokens")
    assert r.returncode != 0 and "--reapply" in r.stderr, r.stderr
    # the CLI's re-apply resends too (a walk: it printed "1 unchanged" and left the edited token in place)
    assert gl.put(f"/api/v4/projects/{pid}/hooks/{h['id']}", {"url": HOOK, "token": "edited-again"}).status == 200
    sim.reset_counters()
    r = srv.cli("configure", "--repos", ALL[12]["path_with_namespace"], "--reapply", "--resend-hook-tokens")
    assert r.returncode == 0 and "1 changed" in r.stdout, (r.stdout, r.stderr)
    assert sim.counters()["by_route"].get("PUT /api/v4/projects/:id/hooks/:hook_id") == 1, sim.counters()
    assert our_hooks()[pid][0]["token"] == secret


def test_403_is_reported_with_advice_others_succeed():
    bad, good = ALL[20]["id"], ALL[21]["id"]
    assert c.put(f"/api/repos/{bad}/config", {"unmanaged": True}).status == 200
    assert c.put(f"/api/repos/{good}/config", {"unmanaged": True}).status == 200
    wait_applied()
    assert bad not in our_hooks() and good not in our_hooks()
    sim.script("GET", f"/api/v4/projects/{bad}/hooks", [{"status": 403, "body": {"message": "403 Forbidden"}}])
    assert c.delete(f"/api/repos/{bad}/config").status == 200
    r = c.delete(f"/api/repos/{good}/config")
    assert r.status == 200
    wait_applied()
    rb = c.get(f"/api/repos/{bad}").json()
    rg = c.get(f"/api/repos/{good}").json()
    assert rb["status"] == "error" and rb["last_apply"]["result"] == "error", rb
    assert "the token needs Maintainer on this project to manage webhooks" in rb["last_apply"]["message"], rb
    assert rg["status"] == "gated" and rg["last_apply"]["result"] == "changed", rg
    # the next apply succeeds
    configure({"selection": {"ids": [bad]}, "config": {}, "reapply": True})
    wait_applied()
    assert c.get(f"/api/repos/{bad}").json()["status"] == "gated"


def test_ungating_removes_only_our_hook_and_restores_setting():
    # a repo whose merge setting was already on before mrgate: it stays on after un-gating
    pre, plain = ALL[30]["id"], ALL[31]["id"]
    gl = sim.client(TOKEN)
    assert c.put(f"/api/repos/{pre}/config", {"enabled": False}).status == 200
    wait_applied()
    assert gl.put(f"/api/v4/projects/{pre}", {"only_allow_merge_if_pipeline_succeeds": True}).status == 200
    assert c.delete(f"/api/repos/{pre}/config").status == 200
    wait_applied()
    assert gl.post(f"/api/v4/projects/{plain}/hooks", {"url": "https://other.example.com/x"}).status == 201
    sim.reset_counters()
    r = configure({"selection": {"ids": [pre, plain]}, "config": {"enabled": False}})
    assert r["apply"]["repos"] == 2
    wait_applied()
    hooks = our_hooks()
    assert pre not in hooks and plain not in hooks
    assert merge_setting(plain) is False, "restored to its prior value"
    assert merge_setting(pre) is True, "it was on before mrgate: left on"
    assert any(h["url"] == "https://other.example.com/x" for h in sim.hooks() if h["project_id"] == plain)
    by = sim.counters()["by_route"]
    assert by.get("DELETE /api/v4/projects/:id/hooks/:hook_id") == 2, by
    assert by.get("PUT /api/v4/projects/:id") == 1, by
    assert c.get(f"/api/repos/{plain}").json()["status"] in ("exception", "ungated")
    # the repo's result says what the setting was put back to
    msg = c.get(f"/api/repos/{plain}").json()["last_apply"]["message"]
    assert "restored Pipelines must succeed to off, as it was before mrgate" in msg, msg
    # each item says what it read (a walk's item counted 3 reads and named 2: the open MRs listed to clear mrgate's
    # statuses were not named); here every list is one page, so as many as it counts
    items = c.get(f"/api/jobs/{r['apply']['job_id']}?items_limit=5").json()["items"]
    assert len(items) == 2
    for it in items:
        read = it["details"]["read"]
        assert it["details"]["reads"] == len(read), it["details"]
        assert any(x.startswith("open merge requests read from GET /projects/:id/merge_requests") for x in read), it


def test_repo_history_lists_applies_and_config_changes():
    bad = ALL[20]["id"]  # the repo of the 403 test: unmanaged, then an error, then gated again
    r = c.get(f"/api/repos/{bad}/history")
    assert r.status == 200, r.body
    items = r.json()["items"]
    kinds = [(i["kind"], i["action"], i["result"]) for i in items]
    assert ("job", "apply", "error") in kinds and ("job", "apply", "changed") in kinds, kinds
    assert any(i["kind"] == "audit" and i["action"].startswith("config.repo") for i in items), kinds
    # what was set, in words (a walk read "its own config (exception) set" and nothing of what)
    own = next(i for i in items if i["action"] == "config.repo.update")
    assert own["message"].startswith("not managed by mrgate"), own
    # Configure Scans of it, and of the group it inherits from, are its config changes too (a walk found neither)
    mine = [i for i in items if i["action"] == "config.configure"]
    assert any(i["message"].startswith("Configure Scans of this repository: no field changed (applied again)")
               for i in mine), mine
    assert any(i["message"].startswith("Configure Scans of group acme: gate on; "
                                       "fail on high; scans secrets, sast; block merge on") for i in mine), mine
    other = ALL[22]["id"]  # in no selection of one repository
    assert not any(i["action"] == "config.configure" and i["message"].startswith("Configure Scans of this repository:")
                   for i in c.get(f"/api/repos/{other}/history").json()["items"])
    err = next(i for i in items if i["result"] == "error")
    assert "Maintainer" in err["message"] and err["job_id"], err
    ats = [i["at"] for i in items]
    assert ats == sorted(ats, reverse=True)
    assert c.get("/api/repos/999999999/history").status == 404
    # limit gives the latest n (a walk's limit=5 was ignored); out of range is a 400 that says so
    latest = c.get(f"/api/repos/{bad}/history?limit=2").json()["items"]
    assert len(items) > 2 and [i["at"] for i in latest] == ats[:2], (latest, ats)
    for bogus in ("0", "501", "x"):
        r = c.get(f"/api/repos/{bad}/history?limit={bogus}")
        assert r.status == 400 and "limit" in r.json()["message"], r.body


def test_repo_history_says_what_changed_and_what_its_own_config_keeps():
    # a walk read "the default config, which this repository inherits: gate off; ..." about a repository its own
    # config gates: every field of the default, not what changed, and not that its own config sets some of them;
    # and a group's Configure Scans that took a field out of its own config did not say so
    x = ALL[40]["id"]
    hist = lambda: c.get(f"/api/repos/{x}/history").json()["items"]
    assert c.put(f"/api/repos/{x}/config", {"fail_on": "low", "comment": "on_findings"}).status == 200
    wait_applied()
    default = c.get("/api/configs/default").json()["config"]
    changed = dict(default, fail_on="medium" if default["fail_on"] != "medium" else "critical")
    assert c.put("/api/configs/default", changed).status == 200
    wait_applied()
    top = hist()[0]
    assert top["action"] == "config.default.update", top
    assert top["message"] == (f"the default config changed: fail on {changed['fail_on']}; this repository's own "
                              "config sets fail on, which applies here"), top
    own = next(i for i in hist() if i["action"] == "config.repo.update")
    assert own["message"] == "its own config: fail on low; comment on findings", own
    assert c.put("/api/configs/default", default).status == 200
    # Configure Scans of its group replaces its own fail on
    configure({"selection": {"filter": {"group": "acme"}}, "config": {"fail_on": "critical"}})
    wait_applied()
    top = hist()[0]
    assert top["message"] == ("Configure Scans of group acme: fail on critical; replaced this repository's own "
                              "fail on low"), top
    configure({"selection": {"filter": {"group": "acme"}}, "config": {"fail_on": CFG["fail_on"]}})
    wait_applied()
    assert c.delete(f"/api/repos/{x}/config").status == 200
    wait_applied()


def test_audit_has_before_and_after():
    r = c.get("/api/audit?action=config.configure&limit=5")
    assert r.status == 200, r.body
    items = r.json()["items"]
    assert items and items[0]["before"] is not None and items[0]["after"] is not None, items[:1]
    assert items[0]["details"]["level"] in ("repos", "group", "default")


def test_export_and_invalid_import_changes_nothing():
    exported = srv.cli("export")
    assert exported.returncode == 0, exported.stderr
    doc = json.loads(exported.stdout)
    assert doc["version"] == 1 and "acme" in doc["groups"], doc["groups"]
    bad = json.loads(exported.stdout)
    bad["groups"]["acme"]["fail_on"] = "sometimes"
    path = os.path.join(srv.dir, "bad.json")
    with open(path, "w") as f:
        json.dump(bad, f)
    sim.reset_counters()
    r = srv.cli("import", path)
    assert r.returncode != 0 and "fail_on" in r.stderr, (r.returncode, r.stderr)
    again = json.loads(srv.cli("export").stdout)
    assert again == doc
    assert sim.counters()["writes"] == 0


def test_import_refuses_what_would_ungate_or_never_gate():
    # a walk imported {"default": {"enabled": null, ...}}: the CLI stored the built-in default and the job that
    # followed ungated every repo; PUT /api/configs/default had refused the same config
    doc = json.loads(srv.cli("export").stdout)
    gated = sorted(r["id"] for r in repos() if r["status"] == "gated")
    assert gated and doc["groups"]["acme"]["enabled"] is True, doc
    path = os.path.join(srv.dir, "ungate.json")
    cases = [
        (dict(doc, default=dict(doc["default"], enabled=None)), "null"),
        (dict(doc, default={}), "no field"),
        ({k: v for k, v in doc.items() if k != "default"}, "\"default\" is missing"),
        (dict(doc, default=None), "default"),
        (dict(doc, groups=dict(doc["groups"], acme={})), "at least one field"),
        (dict(doc, groups=dict(doc["groups"], **{"elsewhere/team": {"fail_on": "low"}})),
         "not in the connected group"),
        # a second walk: a default without "enabled", groups or repos left out or null, a repo entry without its
        # config, all read as "none" and ungated; so was a group key in another case (stored as typed, matching
        # none of its repos)
        (dict(doc, default={k: v for k, v in doc["default"].items() if k != "enabled"}), '"enabled" is required'),
        ({k: v for k, v in doc.items() if k != "groups"}, '"groups" is missing'),
        (dict(doc, groups=None), '"groups" is null'),
        ({k: v for k, v in doc.items() if k != "repos"}, '"repos" is missing'),
        (dict(doc, repos=None), '"repos" is null'),
        (dict(doc, repos=doc["repos"] + [{"id": ALL[3]["id"], "config": None}]), '"config" is null'),
        (dict(doc, repos=doc["repos"] + [{"id": ALL[3]["id"]}]), '"config" is missing'),
        (dict(doc, repos=doc["repos"] + [{"id": ALL[3]["id"], "config": {}, "bogus": 1}]), 'unknown member "bogus"'),
        (dict(doc, repos=doc["repos"] + [{"id": ALL[3]["id"], "config": {}}] * 2), "listed more than once"),
        (dict(doc, groups=dict(doc["groups"], ACME=doc["groups"]["acme"])), 'names the group "acme" again'),
        # an entry whose path names another repo than its id; a repository's path used as a group's
        (dict(doc, repos=doc["repos"] + [{"id": ALL[3]["id"], "path_with_namespace": ALL[4]["path_with_namespace"],
                                          "config": {}}]), f'repository {ALL[3]["id"]} is {ALL[3]["path_with_namespace"]}'),
        (dict(doc, groups=dict(doc["groups"], **{ALL[5]["path_with_namespace"]: {"fail_on": "low"}})),
         "is a repository, not a group"),
        (dict(doc, groups=dict(doc["groups"], **{"acme/" + "x" * 256: {"fail_on": "low"}})), "not a GitLab group path"),
        (dict(doc, default=dict(doc["default"], scans=["secrets", "sast"])), "no scanner on this server for sast"),
    ]
    sim.reset_counters()
    for bad, said in cases:
        with open(path, "w") as f:
            json.dump(bad, f)
        r = srv.cli("import", path)
        assert r.returncode != 0 and said in r.stderr and "nothing was changed" in r.stderr, (said, r.stderr)
    assert json.loads(srv.cli("export").stdout) == doc
    assert sorted(r["id"] for r in repos() if r["status"] == "gated") == gated
    assert sim.counters()["writes"] == 0
    # the export itself imports as it is, and changes nothing on GitLab, nor who changed each config and when
    def changed():
        return {"default": (lambda d: (d["updated_at"], d["updated_by"]))(c.get("/api/configs/default").json()),
                **{g["path"]: (g["updated_at"], g["updated_by"]) for g in c.get("/api/configs/groups").json()}}
    was = changed()
    assert len(was) >= 2 and all(v[0] for v in was.values()), was
    time.sleep(1.1)  # the times are to the second
    with open(path, "w") as f:
        json.dump(doc, f)
    r = srv.cli("import", path)
    assert r.returncode == 0, r.stderr
    assert json.loads(srv.cli("export").stdout) == doc
    assert changed() == was
    # what the command says of its arguments and its file (a walk: an extra argument was ignored, a directory or a
    # file with a byte order mark was only "not valid JSON", a missing file gave no reason)
    for args, code, said in ((["import", path, "extra"], 2, 'unexpected argument "extra"'),
                             (["import", srv.dir], 1, "Is a directory"),
                             (["import", path + ".missing"], 1, "No such file or directory")):
        r = srv.cli(*args)
        assert r.returncode == code and said in r.stderr, (args, r.returncode, r.stderr)
    with open(path, "wb") as f:
        f.write(b"\xef\xbb\xbf" + json.dumps(doc).encode())
    r = srv.cli("import", path)
    assert r.returncode == 1 and "byte order mark" in r.stderr, r.stderr
    with open(path, "w") as f:
        f.write('{"version": 1, "version": 1}')
    r = srv.cli("import", path)
    assert r.returncode == 1 and "same key twice" in r.stderr, r.stderr
    r = srv.cli("import", "--help")
    assert r.returncode == 0 and "--confirm-no-scanner" in r.stdout, r
    assert json.loads(srv.cli("export").stdout) == doc
    # a group key in another case is that group, stored under GitLab's spelling: nothing is ungated
    respelt = dict(doc, groups={("ACME" if k == "acme" else k): v for k, v in doc["groups"].items()})
    with open(path, "w") as f:
        json.dump(respelt, f)
    r = srv.cli("import", path)
    assert r.returncode == 0, r.stderr
    assert json.loads(srv.cli("export").stdout) == doc
    assert sorted(r["id"] for r in repos() if r["status"] == "gated") == gated
    assert sim.counters()["writes"] == 0
    # PUT of a group config outside the connected group is refused as Configure Scans refuses it
    r = c.put("/api/configs/groups/elsewhere/team", {"fail_on": "low"})
    assert r.status == 400 and r.json()["error"] == "outside_group", r.body
    assert "acme" in r.json()["message"], r.body
    assert c.get("/api/configs/groups/elsewhere/team").status == 404
    # in any case, and through Configure Scans too, confirmed or not (a walk stored them all)
    for path in (ALL[5]["path_with_namespace"], ALL[5]["path_with_namespace"].upper()):
        r = c.put(f"/api/configs/groups/{path}", {"fail_on": "low"})
        assert r.status == 400 and r.json()["error"] == "not_a_group", (path, r.body)
    r = c.post("/api/configure", {"selection": {"filter": {"group": ALL[5]["path_with_namespace"]}},
                                  "config": {"fail_on": "low"}, "confirm_new_group": True})
    assert r.status == 400 and "is a repository, not a group" in r.json()["message"], r.body
    r = srv.cli("configure", "--repos", ALL[5]["path_with_namespace"] + "/**", "--fail-on", "low", "--new-group")
    assert r.returncode != 0 and "is a repository, not a group" in r.stderr, r.stderr
    # the Configs page says which stored group configs cover nothing yet: a group no sync has listed (a group still
    # to come, or a typo), and a repository's path an older mrgate stored (it gates nothing)
    assert c.put("/api/configs/groups/acme/team-to-come", {"fail_on": "low", "confirm_new_group": True}).status == 200
    legacy = ALL[6]["path_with_namespace"]
    srv.sql(f"INSERT INTO config_groups (path, config, updated_by) VALUES ('{legacy}', '{{\"fail_on\": \"low\"}}', 'old')")
    try:
        listed = {g["path"]: g.get("listed_as", "missing") for g in c.get("/api/configs/groups").json()}
        assert listed["acme"] == "group", listed
        assert listed["acme/team-to-come"] is None, listed
        assert listed[legacy] == "repository", listed
        assert c.get("/api/configs/groups/acme/team-to-come").json()["listed_as"] is None
        assert c.get("/api/configs/groups/acme").json()["listed_as"] == "group"
    finally:
        assert c.delete("/api/configs/groups/acme/team-to-come").status == 200
        assert c.delete(f"/api/configs/groups/{legacy}").status == 200, "a legacy repo-path config can be removed"


def test_a_config_changed_while_its_apply_runs_ends_as_the_last_config_says():
    # a walk: a group ungated and at once gated again (API, or two imports) left the repos whose ungate was in
    # flight without their hooks, while the stored config said gated: the second write did not mark them (their
    # recorded state still matched) and the first apply deleted their hooks after it
    hooked = our_hooks()
    gated = [x for x in repos() if x["status"] == "gated" and len(hooked.get(x["id"], [])) == 1]
    groups = sorted({x["namespace_full_path"] for x in gated if x["namespace_full_path"].count("/") == 1})
    grp = max(groups, key=lambda g: sum(x["namespace_full_path"] == g for x in gated))  # a subgroup of acme
    ids = sorted(x["id"] for x in gated if x["namespace_full_path"] == grp)
    assert len(ids) >= 20, (grp, len(ids))
    before = c.get(f"/api/configs/groups/{grp}")
    sim.set_faults(latency_ms=300)
    sim.reset_counters()
    try:
        assert c.put(f"/api/configs/groups/{grp}", {"enabled": False, "confirm_ungate": True}).status == 200
        harness.wait_for(lambda: sim.counters()["by_route"].get("DELETE /api/v4/projects/:id/hooks/:hook_id"),
                         30, "the ungate to be in flight")
        assert c.put(f"/api/configs/groups/{grp}", {"enabled": True}).status == 200
    finally:
        sim.set_faults()
    wait_applied()
    hooks = our_hooks()
    assert [i for i in ids if len(hooks.get(i, [])) != 1] == [], "repos left without their hook"
    assert all(r["status"] == "gated" for r in repos() if r["id"] in ids)
    if before.status == 200:
        assert c.put(f"/api/configs/groups/{grp}", before.json()["config"]).status == 200
    else:
        assert c.delete(f"/api/configs/groups/{grp}").status == 200
    wait_applied()


def test_dry_run_is_a_job_with_progress_plan_and_errors():
    # un-gating five gated repos: each has a hook to delete (one of them refuses to list its hooks)
    ids = sorted(r["id"] for r in repos() if r["status"] == "gated")[:5]
    assert len(ids) == 5, ids
    bad = ids[0]
    sim.script("GET", f"/api/v4/projects/{bad}/hooks", [{"status": 403, "body": {"message": "403 Forbidden"}}])
    try:
        before = sim.counters()
        r = c.post("/api/configure", {"selection": {"ids": ids}, "config": {"enabled": False}, "dry_run": True})
        # the answer does not wait for GitLab: a job, the plan read by the workers
        assert r.status == 202, (r.status, r.body)
        d = r.json()
        assert d["plan_total"] == 5 and d["plan_job"]["kind"] == "dryrun" and d["plan_job"]["total"] == 5, d
        assert "plan" not in d and d.get("apply") is None, d
        # a preview's job is read by id, it does not fill the job list
        assert d["plan_job_id"] not in [x["id"] for x in c.get("/api/jobs?limit=500").json()["items"]]
        j = flows.wait_job(c, d["plan_job_id"])
        assert j["done"] == 5 and j["failed"] == 1 and j["changed"] == 4 and j["succeeded"] is False, j
        page = c.get(f"/api/jobs/{d['plan_job_id']}/plan?limit=2").json()
        assert len(page["items"]) == 2 and page["next_cursor"] and page["job"]["finished"] is True, page
        rest = c.get(f"/api/jobs/{d['plan_job_id']}/plan?limit=10&cursor={page['next_cursor']}").json()
        plan = page["items"] + rest["items"]
        assert [p["repo_id"] for p in plan] == sorted(ids) and rest["next_cursor"] is None, plan
        err = [p for p in plan if p["result"] == "error"]
        assert [p["repo_id"] for p in err] == [bad] and "Maintainer" in err[0]["message"], err
        # the job's items say the same, with GitLab's advice
        items = c.get(f"/api/jobs/{d['plan_job_id']}?items=error").json()["items"]
        assert [i["repo_id"] for i in items] == [bad] and "Maintainer" in items[0]["message"], items
        assert sim.counters()["writes"] == before["writes"], "a dry run wrote to GitLab"
    finally:
        sim.clear_scripts()
    # the old paging fields are refused with where the plan is now
    r = c.post("/api/configure", {"selection": {"ids": ids}, "config": {"enabled": False}, "dry_run": True,
                                  "plan_limit": 50})
    assert r.status == 400 and "/plan" in r.json()["message"], r.body
    # an apply job has no plan; an unknown job none either
    r = c.post("/api/configure", {"selection": {"ids": ids[:1]}, "config": {"enabled": True}, "reapply": True})
    assert r.status == 202, r.body
    r = c.get(f"/api/jobs/{r.json()['apply']['job_id']}/plan")
    assert r.status == 409 and r.json()["error"] == "not_a_dry_run", r.body
    assert c.get("/api/jobs/999999/plan").status == 404


def test_a_new_preview_ends_the_users_earlier_one():
    # a preview reads GitLab for every repo: one left running when its user asks again (or closes the dialog, which
    # cancels it) would spend the rate limit on a plan nobody reads
    ids = sorted(r["id"] for r in repos() if r["status"] == "gated")[:20]
    body = {"selection": {"ids": ids}, "config": {"enabled": False}, "dry_run": True}
    sim.set_faults(latency_ms=400)
    try:
        first = c.post("/api/configure", body)
        assert first.status == 202, first.body
        second = c.post("/api/configure", body)
        assert second.status == 202, second.body
        j1 = c.get(f"/api/jobs/{first.json()['plan_job_id']}?items_limit=0").json()
        assert j1["state"] == "canceled", j1
    finally:
        sim.set_faults()
    j2 = flows.wait_job(c, second.json()["plan_job_id"])
    assert j2["state"] == "done" and j2["done"] == 20, j2


def test_cli_configure_dry_run():
    sim.reset_counters()
    r = srv.cli("configure", "--repos", "acme/**", "--fail-on", "medium", "--scans", "secrets,iac", "--dry-run",
                "--confirm-no-scanner")  # iac has no scanner on this server
    assert r.returncode == 0, r.stderr
    assert "dry run" in r.stdout, r.stdout
    assert sim.counters()["writes"] == 0
    assert repos()[0]["config"]["fail_on"] != "medium"
    # each repo by its path with what an apply would do there, then what the plan comes to (a walk read "repo 1017:
    # unchanged {...}" for every repo after "92 would be applied")
    r = srv.cli("configure", "--repos", "acme/**", "--reapply", "--dry-run")
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stdout.splitlines() if l.startswith("acme/")]
    assert lines and all(re.match(r"acme/\S+: (already in the wanted state|would change|skipped|would fail) \{", l)
                         for l in lines), r.stdout
    m = re.search(r"^dry run: (\d+) would change GitLab \((\d+) writes?\), (\d+) already in the wanted state, (\d+) "
                  r"skipped, (\d+) would fail$", r.stdout, re.M)
    assert m and sum(int(m.group(i)) for i in (1, 3, 4, 5)) == len(lines), r.stdout
    assert re.search(rf"^dry run: \d+ repos selected \(group level\), {len(lines)} to read from GitLab$", r.stdout,
                     re.M), r.stdout
    assert sim.counters()["writes"] == 0
    r = srv.cli("configure", "--repos", "acme/**", "--fail-on", "bogus")
    assert r.returncode != 0 and "fail_on" in r.stderr, r.stderr
    # what a configure replaces is said, before (dry run) and after (a walk lost an exception to the CLI unseen)
    one = ALL[0]
    assert c.put(f"/api/repos/{one['id']}/config", {"fail_on": "never"}).status == 200
    r = srv.cli("configure", "--repos", "acme/**", "--fail-on", "high", "--dry-run")
    said = re.search(r"^replaces what (\d+) repository exceptions? set for the fields given: (.*)$", r.stdout, re.M)
    assert r.returncode == 0 and said and one["path_with_namespace"] in re.sub(r" and \d+ more$", "", said.group(2)).split(", "), r.stdout
    assert c.delete(f"/api/repos/{one['id']}/config").status == 200
    # a bare --reapply changes no config: a walk's re-apply of an ungated repo gated it (the CLI sent enabled: true)
    assert c.put(f"/api/repos/{one['id']}/config", {"enabled": False}).status == 200
    wait_applied()
    assert one["id"] not in our_hooks()
    own = c.get(f"/api/repos/{one['id']}/config").json()["config"]
    sim.reset_counters()
    r = srv.cli("configure", "--repos", one["path_with_namespace"], "--reapply")
    assert r.returncode == 0 and "re-applying 1 repos as their configs stand" in r.stdout, (r.stdout, r.stderr)
    assert one["id"] not in our_hooks() and sim.counters()["writes"] == 0, sim.counters()
    assert c.get(f"/api/repos/{one['id']}/config").json()["config"] == own
    assert c.delete(f"/api/repos/{one['id']}/config").status == 200
    wait_applied()


def test_a_selection_says_ids_or_a_filter():
    # a walk sent both: the ids were configured and the filter ignored without a word
    before = c.get("/api/audit?limit=1").json()["items"]
    for sel, said in (({"ids": IDS[:2], "filter": {"group": "acme"}}, 'both "ids" and "filter"'),
                      ({"idz": IDS[:2]}, 'member "idz"'),
                      ({"filter": {"status": "gatted"}}, 'unknown status "gatted": expected one of ungated, gated,'),
                      # a walk's [1000, 999999] configured 1000 and said nothing of the other
                      ({"ids": [IDS[0], 999999]}, "no repository has the id 999999 (GET /api/repos lists them)"),
                      ([999999, IDS[0], 999999], "no repository has the id 999999 ("),
                      ({"ids": [IDS[0]] + list(range(999990, 999997))},
                       "no repository has the ids 999990, 999991, 999992, 999993, 999994 and 2 more"),
                      # a walk's 10**23 was told it was not positive, and "item 0" for the first
                      ({"ids": [IDS[0], 10**23]}, "id 2 of the list is not (a larger number)"),
                      ({"ids": [-5]}, "id 1 of the list is not (-5)"),
                      ({"ids": ["7"]}, "from 1 to 9223372036854775807; id 1 of the list is not (\"7\")")):
        for dry in (False, True):
            r = c.post("/api/configure", {"selection": sel, "config": {"fail_on": "low"}, "dry_run": dry})
            assert r.status == 400 and r.json()["error"] == "invalid_input" and said in r.json()["message"], r.body
    assert c.get("/api/audit?limit=1").json()["items"] == before
    # the same id twice is that repository once
    r = c.post("/api/configure", {"selection": [IDS[5], IDS[5]], "config": {"comment": "always"}, "dry_run": True})
    assert r.status in (200, 202) and r.json()["summary"]["selected"] == 1, r.body


def test_a_misspelt_member_or_an_empty_filter_value_changes_nothing():
    # a walk sent "dryrun": true (for dry_run): 200, dry_run false, the change stored; and "path": "" (an unset
    # script variable) selected every repository and changed the default config
    before = c.get("/api/audit?limit=1").json()["items"]
    default_before = c.get("/api/configs/default").body
    bodies = [
        ({"selection": IDS[:1], "config": {"fail_on": "critical"}, "dryrun": True}, 'member "dryrun"'),
        ({"selection": IDS[:1], "config": {"fail_on": "critical"}, "confirm_no_scaner": True},
         'member "confirm_no_scaner"'),
    ]
    for key in ("q", "group", "status", "path"):
        for empty in ("", None):
            bodies.append(({"selection": {"filter": {key: empty}}, "config": {"fail_on": "low"}},
                           f'filter member "{key}" is {"empty" if empty == "" else "null"}'))
    bodies.append(({"selection": {"filter": {"archived": None}}, "config": {"fail_on": "low"}},
                   'filter member "archived" is null'))
    # "dry_run": null was read as false: the preview a script meant to make changed GitLab for real. A member that
    # changes what the request does is true or false, never null.
    for key in ("dry_run", "reapply", "confirm_no_scanner", "confirm_new_group"):
        b = {"selection": IDS[:1], "config": {"fail_on": "critical"}, key: None}
        r = c.post("/api/configure", b)
        assert r.status == 400 and r.json()["error"] == "invalid_input", (b, r.status, r.body)
        assert f'"{key}"' in r.json()["message"] and "true or false" in r.json()["message"], r.body
    r = c.post("/api/configure", {"selection": IDS[:1], "config": {"enabled": None, "fail_on": "low"}})
    assert r.status == 400 and '"enabled" is null' in r.json()["message"], (r.status, r.body)
    r = c.put(f"/api/repos/{IDS[0]}/config", {"fail_on": "critical", "unmanaged": None})
    assert r.status == 400 and "unmanaged" in r.json()["message"], (r.status, r.body)
    for body, said in bodies:
        for dry in (False, True):
            b = dict(body, dry_run=dry)
            r = c.post("/api/configure", b)
            assert r.status == 400 and r.json()["error"] == "invalid_input" and said in r.json()["message"], (b, r.body)
    assert c.get("/api/audit?limit=1").json()["items"] == before
    assert c.get("/api/configs/default").body == default_before


def test_a_group_no_sync_has_listed_is_refused_unless_confirmed():
    # a walk typed "demo/tema01" for demo/team01: 200, 0 repositories selected, and a group config stored that gates
    # nothing, so the user believed the team gated
    known = [g["full_path"] for g in c.get("/api/groups").json()]
    typo = known[-1] + "x"
    assert typo not in known
    before = c.get("/api/audit?limit=1").json()["items"]
    for dry in (False, True):
        r = c.post("/api/configure", {"selection": {"filter": {"group": typo}}, "config": {"fail_on": "low"},
                                      "dry_run": dry})
        assert r.status == 400 and r.json()["error"] == "unknown_group", r.body
        msg = r.json()["message"]
        assert f'no group "{typo}"' in msg and '"confirm_new_group": true' in msg, msg
    assert typo not in [g["path"] for g in c.get("/api/configs/groups").json()]
    assert c.get("/api/audit?limit=1").json()["items"] == before
    # so is a new config written directly (a walk: PUT /api/configs/groups/{typo} answered 200)
    r = c.put(f"/api/configs/groups/{typo}", {"fail_on": "low"})
    assert r.status == 400 and r.json()["error"] == "unknown_group", r.body
    assert f'no group "{typo}"' in r.json()["message"] and '"confirm_new_group": true' in r.json()["message"], r.body
    assert c.put(f"/api/configs/groups/{typo}", {"fail_on": "low", "confirm_new_group": "yes"}).status == 400
    assert typo not in [g["path"] for g in c.get("/api/configs/groups").json()]
    assert c.get("/api/audit?limit=1").json()["items"] == before
    r = c.put(f"/api/configs/groups/{typo}", {"fail_on": "low", "confirm_new_group": True})
    assert r.status == 200 and "confirm_new_group" not in r.json()["config"], r.body
    r = c.put(f"/api/configs/groups/{typo}", {"fail_on": "medium"})  # it has a config: confirmed when stored
    assert r.status == 200 and r.json()["config"] == {"fail_on": "medium"}, r.body
    assert c.delete(f"/api/configs/groups/{typo}").status == 200
    before = c.get("/api/audit?limit=1").json()["items"]
    r = srv.cli("configure", "--repos", typo + "/**", "--fail-on", "low")
    assert r.returncode != 0 and f'no group "{typo}"' in r.stderr and "--new-group" in r.stderr, r.stderr
    assert c.post("/api/configure", {"selection": {"filter": {"group": typo}}, "config": {"fail_on": "low"},
                                     "confirm_new_group": "yes"}).status == 400
    # a group outside the connected one can never have a repository here: refused even when confirmed (a walk stored
    # a config for "other/team" that could never gate anything)
    for outside in ("other/team", "acmex", "acmex/team"):
        r = c.post("/api/configure", {"selection": {"filter": {"group": outside}}, "config": {"fail_on": "low"},
                                      "confirm_new_group": True})
        assert r.status == 400 and r.json()["error"] == "outside_group", (outside, r.status, r.body)
        assert f'"{outside}"' in r.json()["message"] and 'connected group "acme"' in r.json()["message"], r.body
    assert c.get("/api/audit?limit=1").json()["items"] == before
    # a group still to come, said so: stored for its repositories to inherit once a sync lists them
    r = c.post("/api/configure", {"selection": {"filter": {"group": typo}}, "config": {"fail_on": "low"},
                                  "confirm_new_group": True})
    assert r.status == 200, r.body
    s = r.json()["summary"]
    assert s["level"] == "group" and s["target"] == typo and s["selected"] == 0, s
    assert typo in [g["path"] for g in c.get("/api/configs/groups").json()]
    assert c.delete(f"/api/configs/groups/{typo}").status == 200
    # a re-apply of no field on a group with no repository changes nothing: no audit entry says it did
    before = c.get("/api/audit?limit=1").json()["items"]
    r = c.post("/api/configure", {"selection": {"filter": {"group": typo}}, "config": {}, "reapply": True,
                                  "confirm_new_group": True})
    assert r.status == 200 and r.json()["apply"] is None and r.json()["summary"]["selected"] == 0, r.body
    assert c.get("/api/audit?limit=1").json()["items"] == before, "an audit entry for a configure that did nothing"
    assert typo not in [g["path"] for g in c.get("/api/configs/groups").json()]


run([test_validation_names_field_and_values, test_inheritance_sources_and_exception,
     test_group_path_in_another_case_is_the_synced_group,
     test_a_group_configure_says_which_exceptions_and_subgroups_it_overrides,
     test_an_apply_that_would_replace_more_than_the_preview_showed_is_refused, test_dry_run_writes_nothing,
     test_configure_1000_creates_one_hook_each_and_sets_merge, test_applying_again_makes_zero_writes, test_a_reapply_with_no_field_stores_no_config,
     test_changing_severity_of_1000_makes_zero_calls, test_drift_is_repaired_on_next_apply,
     test_a_hook_token_edited_in_gitlab_is_resent_on_request,
     test_403_is_reported_with_advice_others_succeed, test_ungating_removes_only_our_hook_and_restores_setting,
     test_repo_history_lists_applies_and_config_changes,
     test_repo_history_says_what_changed_and_what_its_own_config_keeps, test_audit_has_before_and_after, test_export_and_invalid_import_changes_nothing,
     test_import_refuses_what_would_ungate_or_never_gate,
     test_a_config_changed_while_its_apply_runs_ends_as_the_last_config_says, test_cli_configure_dry_run,
     test_dry_run_is_a_job_with_progress_plan_and_errors, test_a_new_preview_ends_the_users_earlier_one,
     test_a_selection_says_ids_or_a_filter, test_a_misspelt_member_or_an_empty_filter_value_changes_nothing, test_a_group_no_sync_has_listed_is_refused_unless_confirmed])
