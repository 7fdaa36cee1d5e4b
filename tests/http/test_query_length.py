"""Query values are never cut (issue 13): GET /api/repos reads its filters into fixed buffers, and a value that did
not fit used to be dropped silently, so a group path one character too long listed every repository instead of
none. A filter or cursor longer than the API allows is now refused with 400 and says which and how long; the
longest allowed value is taken whole."""
import urllib.parse

from harness import Mrgate, run

srv = Mrgate("query_length")
c = srv.login()


def test_too_long_group_filter_is_refused_not_ignored():
    for name, limit in (("group", 599), ("q", 399), ("cursor", 1599)):
        r = c.get(f"/api/repos?{name}=" + "a" * (limit + 1))
        assert r.status == 400, (name, r.status, r.body)
        e = r.json()
        assert e["error"] == "invalid_input" and e["message"] == f"{name} must be at most {limit} characters", e


def test_longest_group_filter_is_taken_whole():
    r = c.get("/api/repos?group=" + "/".join(["a" * 199] * 3))  # 599 characters (a segment has at most 255)
    assert r.status == 200, r.body
    assert r.json()["items"] == [] and r.json()["count"] == 0, r.json()


def test_messages_name_what_is_wrong():
    # found by a reviewer: text that is not UTF-8 was called a bad cursor, and an unknown sync id "no sync yet"
    for name in ("q", "group"):
        r = c.get(f"/api/repos?{name}=%ff")
        assert r.status == 400 and r.json()["message"] == "q and group must be UTF-8 text", (name, r.body)
    r = c.get("/api/sync?id=999")
    assert r.status == 404 and r.json()["message"] == "no sync with id 999", r.body


def test_a_group_no_gitlab_path_can_be_is_refused():
    # a walk listed nothing, without a word, for ?group=acme/ where Configure Scans with the same filter answered 400
    for group in ("acme/", "/acme", "acme//web", "-acme", "acme.", "acme/web.git", "ac me", "acme/../x", "a*"):
        r = c.get("/api/repos?group=" + urllib.parse.quote(group, safe=""))
        assert r.status == 400, (group, r.status, r.body)
        e = r.json()
        assert e["error"] == "invalid_input" and e["message"] == (
            f'group "{group}" is not a GitLab group path: segments of letters, digits, _, - and ., separated by /'), e
        r = c.post("/api/configure", {"selection": {"filter": {"group": group}}, "config": {}, "dry_run": True})
        assert r.status == 400, (group, r.status, r.body)
    # GitLab's paths still pass, in any case, and no group is no filter
    for group in ("acme", "Acme/Web-1", "a_b.c/d", ""):
        r = c.get("/api/repos?group=" + urllib.parse.quote(group, safe=""))
        assert r.status == 200, (group, r.status, r.body)


def test_a_parameter_given_twice_is_refused():
    # a walk sent ?group=a&group=b and got the first group's repos without a word: which one a client meant is not
    # for mrgate to guess. CivetWeb matches names without case, so GROUP and group are the same parameter.
    for query, name in (("group=a&group=b", "group"), ("status=gated&q=x&status=new", "status"),
                        ("limit=5&LIMIT=6", "LIMIT"), ("q=&q=", "q")):
        r = c.get(f"/api/repos?{query}")
        assert r.status == 400, (query, r.status, r.body)
        e = r.json()
        assert e["error"] == "invalid_input" and e["message"] == f"the query parameter {name} is given more than once", e
    for path in ("/api/jobs?limit=1&limit=2", "/api/audit?limit=1&limit=2"):
        r = c.get(path)
        assert r.status == 400 and "limit is given more than once" in r.json()["message"], (path, r.body)
    # ids= (no id) listed nothing where every other empty parameter is no filter: it says what it needs instead
    for query in ("ids=", "ids=,", "ids=,,"):
        r = c.get(f"/api/repos?{query}")
        assert r.status == 400 and r.json()["message"] == "ids must be 1 to 1000 repository ids separated by commas", (
            query, r.body)
    # nothing else changed: distinct names, empty names and flags still pass
    assert c.get("/api/repos?group=a&q=b&limit=5").status == 200
    assert c.get("/api/repos?&limit=5&").status == 200


run([test_too_long_group_filter_is_refused_not_ignored, test_longest_group_filter_is_taken_whole,
     test_messages_name_what_is_wrong, test_a_group_no_gitlab_path_can_be_is_refused,
     test_a_parameter_given_twice_is_refused])
