"""A NUL character never shortens what a user sent (found by a reviewer): C strings end at NUL, so a JSON string
"\\u0000" used to read as "" and a filter {"q": "\\u0000"} widened a Configure to every repository; "low\\u0000"
was stored as "low", and a password with "\\u0000" and anything after it logged in. Every JSON body with a NUL in a
string or a key, and every query filter with %00, is refused with 400 and nothing is stored; the CLI refuses an
empty --repos pattern (an unset shell variable would otherwise select every repository)."""
import json

from harness import ADMIN_PASSWORD, Mrgate, run

srv = Mrgate("input_nul")
c = srv.login()


def refused(r, what):
    assert r.status == 400, (what, r.status, r.body)
    e = r.json()
    assert e["error"] == "invalid_json" and "NUL" in e["message"], (what, e)


def test_json_strings_with_nul_are_refused():
    refused(c.post("/api/configure", {"selection": {"filter": {"q": "\u0000"}}, "config": {"fail_on": "low"},
                                      "dry_run": True}), "a filter of one NUL")
    before = c.get("/api/configs/default").json()
    refused(c.put("/api/configs/default", {"fail_on": "low\u0000"}), "a severity with a NUL")
    refused(c.put("/api/configs/default", {"ignore_paths": ["vendor/\u0000**"]}), "a glob with a NUL")
    refused(c.put("/api/configs/default", {"fail_on\u0000x": "low"}), "a key with a NUL")
    assert c.get("/api/configs/default").json() == before


def test_lone_surrogate_escapes_are_refused():
    # a walk bypassed with the reason "ok \ud800": json-c decoded the lone half of a surrogate pair into U+FFFD and
    # GitLab's status read "bypassed by editor1: ok \ufffd"; a whole pair (an emoji) is a character like any other
    before = c.get("/api/configs/default").json()
    for what, value in (("a lone high half", "docs/\ud800/**"), ("a lone low half", "docs/\udc00/**"),
                        ("a high half before a letter", "docs/\ud83dx/**")):
        r = c.put("/api/configs/default", {"ignore_paths": [value]})
        assert r.status == 400, (what, r.status, r.body)
        e = r.json()
        assert e["error"] == "invalid_json" and "surrogate" in e["message"], (what, e)
    assert c.get("/api/configs/default").json() == before
    # the same half written directly as UTF-8 bytes (CESU-8), and an overlong "/": a walk's bypass reason in those
    # bytes passed the parser, was posted to GitLab, then could not be stored (GitLab green, mrgate no record)
    for what, raw in (("a surrogate as UTF-8 bytes", b'{"ignore_paths": ["ok \xed\xa0\x80"]}'),
                      ("an overlong slash", b'{"ignore_paths": ["a\xc0\xafb"]}'),
                      ("past U+10FFFF", b'{"ignore_paths": ["\xf4\x90\x80\x80"]}'),
                      ("a sequence cut short", b'{"ignore_paths": ["\xe2\x82"]}')):
        r = c.request("PUT", "/api/configs/default", raw=raw, headers={"Content-Type": "application/json"})
        assert r.status == 400, (what, r.status, r.body)
        e = r.json()
        assert e["error"] == "invalid_json" and "not well-formed UTF-8" in e["message"], (what, e)
    assert c.get("/api/configs/default").json() == before
    r = c.put("/api/configs/default", {"enabled": False, "ignore_paths": ["docs/\U0001F600/**"]})
    assert r.status == 200 and r.json()["config"]["ignore_paths"] == ["docs/\U0001F600/**"], r.body
    assert c.put("/api/configs/default", dict(before["config"])).status == 200


def test_a_password_with_nul_does_not_log_in():
    anon = srv.client()
    refused(anon.post("/api/session", {"username": "admin", "password": ADMIN_PASSWORD + "\u0000zzz"}), "password")
    refused(anon.post("/api/session", {"username": "admin\u0000zzz", "password": ADMIN_PASSWORD}), "username")
    # the escaped backslash before u0000 is text, not a NUL: still a plain wrong password
    r = anon.request("POST", "/api/session",
                     raw=json.dumps({"username": "admin", "password": "x\\u0000"}).encode(),
                     headers={"Content-Type": "application/json"})
    assert r.status == 401, (r.status, r.body)


def test_query_filters_with_nul_are_refused():
    for name in ("q", "group"):
        r = c.get(f"/api/repos?{name}=demo%00xyz")
        assert r.status == 400, (name, r.status, r.body)
        assert r.json()["message"] == f"{name} must not contain a NUL character", r.json()


def test_cli_refuses_an_empty_pattern():
    p = srv.cli("configure", "--repos", "", "--dry-run")
    assert p.returncode != 0, (p.returncode, p.stdout, p.stderr)
    assert "pattern" in p.stderr and "empty" in p.stderr, p.stderr


def test_duplicate_keys_are_refused():
    """{"enabled": false, "enabled": true} means false to one parser and true to another: refused, nothing stored."""
    before = c.get("/api/configs/default").json()
    for raw in [b'{"enabled": false, "enabled": true}', b'{"fail_on": "low", "scans": ["secrets"], "fail_on": "never"}']:
        r = c.request("PUT", "/api/configs/default", raw=raw, headers={"Content-Type": "application/json"})
        assert r.status == 400 and r.json()["error"] == "invalid_json", (raw, r.status, r.body)
        assert "the same key twice" in r.json()["message"], r.body
    assert c.get("/api/configs/default").json() == before


def test_paths_with_nul_are_refused():
    """A %00 in the path used to end it early (found by a reviewer): PUT /api/configs/groups/acme%00 stored the config
    of acme, and DELETE /api/tokens/1%00/../x deleted token 1. Refused with 400, nothing stored or deleted."""
    before = c.get("/api/configs/groups").json()
    for method, path in [("PUT", "/api/configs/groups/acme%00"), ("PUT", "/api/configs/groups/acme%00/x"),
                         ("DELETE", "/api/tokens/1%00/../x"), ("GET", "/api/repos/1%00"), ("GET", "/app.js%00.html"),
                         ("PUT", "/api/configs/groups/acme%0a"), ("GET", "/api/repos/1%zz")]:
        r = c.request(method, path, {"fail_on": "low"} if method == "PUT" else None)
        assert r.status == 400 and r.json()["error"] == "invalid_path", (method, path, r.status, r.body)
    assert c.get("/api/configs/groups").json() == before
    # an encoded character that is no control is decoded once, as before: %61 is "a"
    assert c.put("/api/configs/groups/%61cme-enc", {"fail_on": "low", "confirm_new_group": True}).status == 200
    assert [g["path"] for g in c.get("/api/configs/groups").json() if g["path"] == "acme-enc"] == ["acme-enc"]
    assert c.delete("/api/configs/groups/acme-enc").status == 200


run([test_json_strings_with_nul_are_refused, test_paths_with_nul_are_refused, test_a_password_with_nul_does_not_log_in,
     test_query_filters_with_nul_are_refused, test_cli_refuses_an_empty_pattern, test_duplicate_keys_are_refused,
     test_lone_surrogate_escapes_are_refused])
