"""HTTP: users and API tokens managed by an admin: create, list (paged), change role, disable (sessions and tokens
stop at once), reset a password, delete; tokens listed and revoked; every change in the audit log; the last admin
cannot be removed."""
import re

import harness
from harness import Mrgate, run

ISO_Z = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"

srv = Mrgate("users")
admin = srv.login()


def audit(action):
    r = admin.get(f"/api/audit?action={action}&limit=50")
    assert r.status == 200, r.body
    return r.json()["items"]


def user_id(name):
    cursor = None
    while True:
        r = admin.get("/api/users?limit=200" + (f"&cursor={cursor}" if cursor else ""))
        page = r.json()
        for u in page["items"]:
            if u["username"] == name:
                return u["id"]
        cursor = page["next_cursor"]
        if not cursor:
            raise AssertionError(f"no user {name}")


def last_seen(name):
    return [u for u in admin.get("/api/users?limit=200").json()["items"] if u["username"] == name][0]["last_seen_at"]


def test_create_and_list_with_paging():
    r = admin.post("/api/users", {"username": "ann", "password": "ann-password-1", "role": "editor"})
    assert r.status == 201, r.body
    u = r.json()
    assert u["username"] == "ann" and u["role"] == "editor" and u["disabled"] is False, u
    # times as everywhere else in the API: ISO 8601 UTC ending in Z
    assert re.fullmatch(ISO_Z, u["created_at"]) and re.fullmatch(ISO_Z, u["updated_at"]), u
    assert "password" not in r.body.decode() and "hash" not in r.body.decode()
    for i in range(4):
        assert admin.post("/api/users", {"username": f"page{i}", "password": "page-passphrase"}).status == 201
    seen, cursor, pages = [], None, 0
    while True:
        r = admin.get("/api/users?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert r.status == 200, r.body
        body = r.json()
        assert len(body["items"]) <= 2
        seen += [u["username"] for u in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == ["admin", "ann", "page0", "page1", "page2", "page3"], seen
    assert pages == 3
    # a new user without a role is a viewer
    assert [u for u in admin.get("/api/users?limit=200").json()["items"] if u["username"] == "page0"][0][
        "role"] == "viewer"
    created = [a for a in audit("user.create") if a["target"] == "ann"]
    assert created and created[0]["actor"] == "admin" and created[0]["after"]["role"] == "editor", created


def test_bad_input():
    cases = [({"username": "bad name", "password": "long-enough"}, 400, "username"),
             ({"username": "bob", "password": "short"}, 400, "password"),
             # a walk set 16 spaces: one character repeated is no password, in any script; nor what a guesser tries
             # first (NIST SP 800-63B): a short pattern repeated, a run, a common password, the user name; nor one
             # with an invisible character, which cannot be typed again
             ({"username": "bob", "password": " " * 16}, 400, "repeats one character or a short pattern"),
             ({"username": "bob", "password": "é" * 8}, 400, "repeats one character"),
             ({"username": "bob", "password": "abababab"}, 400, "short pattern"),
             ({"username": "bob", "password": "hunter2hunter2"}, 400, "short pattern"),
             ({"username": "bob", "password": "12345678"}, 400, "run of neighbouring characters"),
             ({"username": "bob", "password": "87654321"}, 400, "run of neighbouring characters"),
             ({"username": "bob", "password": "asdfghjkl"}, 400, "run of neighbouring characters"),
             ({"username": "bob", "password": "PassWord123"}, 400, "most common passwords"),
             ({"username": "bob", "password": "iloveyou"}, 400, "most common passwords"),
             ({"username": "bob.builder", "password": "BOB.BUILDER"}, 400, "is the user name"),
             ({"username": "bob", "password": "long\u200benough"}, 400, "invisible"),
             ({"username": "bob", "password": "long\u202eenough"}, 400, "invisible"),
             ({"username": "bob", "password": "long\tenough"}, 400, "control character"),
             ({"username": "bob", "password": "éàü"}, 400, "fewer than 8 characters"),
             # a second walk's list, each in every top-10k list or a run in the README's own sense
             ({"username": "bob", "password": "zaq12wsx"}, 400, "run of neighbouring characters"),
             ({"username": "bob", "password": "a12345678"}, 400, "run of neighbouring characters"),
             ({"username": "bob", "password": "!@#$%^&*"}, 400, "run of neighbouring characters"),
             ({"username": "bob", "password": "ABCdefgh"}, 400, "run of neighbouring characters"),
             ({"username": "bob", "password": "aaaaaaab"}, 400, "repeats one character"),
             ({"username": "bob", "password": "Password123!"}, 400, "most common passwords"),
             ({"username": "bob", "password": "p4ssw0rd"}, 400, "most common passwords"),
             ({"username": "bob", "password": "Summer2024"}, 400, "most common passwords"),
             ({"username": "bob", "password": "01012000"}, 400, "most common passwords"),
             ({"username": "bob", "password": "\uff30\uff41\uff53\uff53\uff57\uff4f\uff52\uff44"}, 400, "most common"),
             # a third walk's: two guessable pieces put together passed, each piece on its own being refused
             ({"username": "bob", "password": "qwertyuiop123"}, 400, "guessable pieces"),
             ({"username": "bob", "password": "qwer1234"}, 400, "guessable pieces"),
             ({"username": "bob", "password": "1234qwer"}, 400, "guessable pieces"),
             ({"username": "bob", "password": "abcd1234"}, 400, "guessable pieces"),
             ({"username": "bob", "password": "123456789abc"}, 400, "guessable pieces"),
             ({"username": "bob", "password": "zxcvbnm,./"}, 400, "run of neighbouring characters"),
             ({"username": "bob", "password": "!qaz@wsx"}, 400, "run of neighbouring characters"),
             ({"username": "carol", "password": "Carol123"}, 400, "user name"),
             ({"username": "alicebob", "password": "alicebob1"}, 400, "user name"),
             # a fourth: common words with a prefix, reversed or with 3 for e and 1 for i; the name and a word
             ({"username": "bob", "password": "123password"}, 400, "guessable pieces"),
             ({"username": "bob", "password": "mypassword1"}, 400, "guessable pieces"),
             ({"username": "bob", "password": "drowssap1"}, 400, "most common passwords"),
             ({"username": "bob", "password": "s3cr3t123"}, 400, "most common passwords"),
             ({"username": "bob", "password": "qweasd123"}, 400, "guessable pieces"),
             ({"username": "dave", "password": "dave-password"}, 400, "guessable pieces"),
             ({"username": "bob", "password": "long-enough", "role": "owner"}, 400, "role"),
             ({"username": "bob", "password": "long-enough", "is_admin": True}, 400, "is_admin"),
             ({"username": "ann", "password": "long-enough"}, 409, "already exists"),
             # "Ann" beside "ann" would be another person on every audit line: names are unique ignoring case
             ({"username": "Ann", "password": "long-enough"}, 409, "ignoring case"),
             ({"username": "ADMIN", "password": "long-enough"}, 409, "ignoring case")]
    for body, status, why in cases:
        r = admin.post("/api/users", body)
        assert r.status == status and why in r.json()["message"], (body, r.status, r.body)
    assert admin.get("/api/users?limit=0").status == 400
    assert admin.get("/api/users?cursor=abc").status == 400
    ann = user_id("ann")
    assert admin.request("PATCH", f"/api/users/{ann}", {}).status == 400
    assert admin.request("PATCH", f"/api/users/{ann}", {"disabled": "yes"}).status == 400
    # null is not "leave it": a script's unset variable would have changed nothing while it believed otherwise
    for body in ({"disabled": None}, {"role": None}, {"disabled": None, "role": "viewer"},
                 {"password": None, "role": "viewer"}):
        r = admin.request("PATCH", f"/api/users/{ann}", body)
        assert r.status == 400 and "must be" in r.json()["message"], (body, r.body)
    assert admin.post("/api/users", {"username": "bob", "password": "long-enough", "role": None}).status == 400
    r = admin.request("PATCH", f"/api/users/{ann}", {"password": "a" * 12})
    assert r.status == 400 and "repeats one character" in r.json()["message"], r.body
    r = admin.request("PATCH", f"/api/users/{ann}", {"password": "qwerty123"})
    assert r.status == 400 and "most common" in r.json()["message"], r.body
    # a reset is checked against the user's name as a new user's password is
    r = admin.request("PATCH", f"/api/users/{ann}", {"password": "Ann12345"})
    assert r.status == 400 and "user name" in r.json()["message"], r.body
    for body, said in (({"password": None}, "not null"), ({"role": None}, "not null")):
        r = admin.request("PATCH", f"/api/users/{ann}", body)
        assert r.status == 400 and said in r.json()["message"], (body, r.body)
    # what is left allowed: any characters (spaces, accents, emoji), no composition rule
    for ok in ("correct horse", "Zürich-Genève", "ab" * 3 + "cd", "🔑🔒🗝️ secret", "bob-likes-7", "xK9#mP2q"):
        r = admin.post("/api/users", {"username": "bob", "password": ok, "role": "viewer"})
        assert r.status == 201, (ok, r.body)
        assert admin.delete(f"/api/users/{user_id('bob')}").status == 204
    assert admin.request("PATCH", "/api/users/999999", {"role": "viewer"}).status == 404
    assert admin.delete("/api/users/999999").status == 404


def test_role_change_applies_at_once():
    ann = user_id("ann")
    c = srv.login("ann", "ann-password-1")
    assert c.put("/api/configs/default", {"enabled": False, "fail_on": "low"}).status == 200
    r = admin.request("PATCH", f"/api/users/{ann}", {"role": "viewer"})
    assert r.status == 200 and r.json()["role"] == "viewer", r.body
    # the same session, the next request: a viewer now
    assert c.put("/api/configs/default", {"enabled": False, "fail_on": "low"}).status == 403
    assert c.get("/api/session").json()["role"] == "viewer"
    upd = [a for a in audit("user.update") if a["target"] == "ann"]
    assert upd and upd[0]["before"]["role"] == "editor" and upd[0]["after"]["role"] == "viewer", upd


def test_disabled_user_stops_at_once():
    assert admin.post("/api/users", {"username": "dora", "password": "dora-passphrase", "role": "editor"}).status == 201
    dora = user_id("dora")
    token = srv.cli("token", "create", "dora", "ci").stdout.strip()
    bearer = {"Authorization": "Bearer " + token}
    c = srv.login("dora", "dora-passphrase")
    other = srv.client()
    assert c.get("/api/repos").status == 200
    assert other.get("/api/repos", headers=bearer).status == 200
    r = admin.request("PATCH", f"/api/users/{dora}", {"disabled": True})
    assert r.status == 200 and r.json()["disabled"] is True, r.body
    assert c.get("/api/repos").status == 401
    # her sessions are ended, and her "last seen" stays: an admin investigating the account needs it
    assert last_seen("dora") is not None and re.fullmatch(ISO_Z, last_seen("dora")), last_seen("dora")
    assert other.get("/api/repos", headers=bearer).status == 401
    assert other.put("/api/configs/default", {"fail_on": "low"}, headers=bearer).status == 401
    r = srv.client().post("/api/session", {"username": "dora", "password": "dora-passphrase"})
    assert r.status == 401 and r.json()["message"] == "wrong username or password", r.body
    # enabled again: the token works again, the old session stays ended
    assert admin.request("PATCH", f"/api/users/{dora}", {"disabled": False}).status == 200
    assert other.get("/api/repos", headers=bearer).status == 200
    assert c.get("/api/repos").status == 401
    acts = [(a["before"]["disabled"], a["after"]["disabled"]) for a in audit("user.update") if a["target"] == "dora"]
    assert acts == [(True, False), (False, True)], acts


def test_password_reset():
    ann = user_id("ann")
    c = srv.login("ann", "ann-password-1")
    r = admin.request("PATCH", f"/api/users/{ann}", {"password": "ann-password-2"})
    assert r.status == 200, r.body
    assert c.get("/api/session").status == 401  # sessions end with a new password
    seen = last_seen("ann")
    assert seen is not None, "a password reset erased when the user was last seen"
    assert srv.client().post("/api/session", {"username": "ann", "password": "ann-password-1"}).status == 401
    srv.login("ann", "ann-password-2")
    assert last_seen("ann") >= seen
    resets = [a for a in audit("user.password_reset") if a["target"] == "ann"]
    assert resets and resets[0]["actor"] == "admin", resets
    assert "ann-password-2" not in str(admin.get("/api/audit?limit=200").body)
    assert "ann-password-2" not in srv.logs()


def test_tokens_list_and_revoke():
    out = srv.cli("token", "create", "ann", "deploy")
    token = out.stdout.strip()
    r = admin.get("/api/tokens?limit=200")
    assert r.status == 200, r.body
    items = r.json()["items"]
    mine = [t for t in items if t["username"] == "ann" and t["name"] == "deploy"]
    assert len(mine) == 1 and mine[0]["hint"].endswith(token[-4:]), items
    assert token not in r.body.decode()
    ann = user_id("ann")
    only = admin.get(f"/api/tokens?user_id={ann}").json()["items"]
    assert {t["username"] for t in only} == {"ann"}, only
    bearer = {"Authorization": "Bearer " + token}
    assert srv.client().get("/api/session", headers=bearer).status == 200
    used = [t for t in admin.get("/api/tokens?limit=200").json()["items"] if t["id"] == mine[0]["id"]][0]
    assert re.fullmatch(ISO_Z, used["created_at"]) and re.fullmatch(ISO_Z, used["last_used_at"]), used
    seen = [u for u in admin.get("/api/users?limit=200").json()["items"] if u["username"] == "admin"][0]
    assert re.fullmatch(ISO_Z, seen["last_seen_at"]), seen
    assert admin.delete(f"/api/tokens/{mine[0]['id']}").status == 204
    assert srv.client().get("/api/session", headers=bearer).status == 401
    assert admin.delete(f"/api/tokens/{mine[0]['id']}").status == 404
    made = [a for a in audit("token.create") if a["target"] == "ann (token deploy)"]
    assert made and made[0]["after"]["hint"] == mine[0]["hint"] and token not in str(made), made
    dels = [a for a in audit("token.delete") if a["target"] == "ann (token deploy)"]
    assert dels and dels[0]["actor"] == "admin", dels


def test_only_admins_read_the_audit_of_users_and_tokens():
    # a walk read, as a viewer, every role change and password reset from GET /api/audit?action=user: the README
    # says viewers (and editors) read everything except users and tokens
    assert audit("user.") and audit("token."), "the tests before made user and token entries"
    admin.post("/api/users", {"username": "eddie", "password": "eddie-password-1", "role": "editor"})
    admin.post("/api/users", {"username": "vivi", "password": "vivi-password-1", "role": "viewer"})
    assert admin.put("/api/configs/default", {"enabled": False, "fail_on": "high"}).status == 200
    for who, pw in (("vivi", "vivi-password-1"), ("eddie", "eddie-password-1")):
        c = srv.login(who, pw)
        for q in ("user", "user.", "token", "token.create", "use", "tok"):
            r = c.get(f"/api/audit?action={q}&limit=500")
            assert r.status == 200 and r.json()["items"] == [], (who, q, r.body[:300])
        items = c.get("/api/audit?limit=500").json()["items"]
        assert items and not [a for a in items if a["action"].split(".")[0] in ("user", "token")], (who, items[:3])
        assert any(a["action"] == "config.default.update" for a in items), who
    every = admin.get("/api/audit?limit=500").json()["items"]
    assert any(a["action"].startswith("user.") for a in every) and any(a["action"].startswith("token.") for a in every)


def test_last_admin_and_self():
    me = user_id("admin")
    r = admin.request("PATCH", f"/api/users/{me}", {"role": "editor"})
    assert r.status == 409 and "yourself" in r.json()["message"], r.body
    assert admin.delete(f"/api/users/{me}").status == 409
    # a second admin may not demote the only other admin... once only one would remain
    assert admin.post("/api/users", {"username": "root2", "password": "root2-passphrase", "role": "admin"}).status == 201
    root2 = srv.login("root2", "root2-passphrase")
    r2 = user_id("root2")
    r = root2.request("PATCH", f"/api/users/{me}", {"role": "viewer"})
    assert r.status == 200, r.body  # root2 remains admin
    r = admin.request("PATCH", f"/api/users/{r2}", {"role": "viewer"})
    assert r.status == 403  # admin is a viewer now
    # root2 is the only admin: it cannot demote itself, and disabling it is refused as well
    assert root2.request("PATCH", f"/api/users/{r2}", {"disabled": True}).status == 409
    assert root2.request("PATCH", f"/api/users/{me}", {"role": "admin"}).status == 200
    assert admin.get("/api/users").status == 200


def test_delete_user():
    page3 = user_id("page3")
    token = srv.cli("token", "create", "page3", "t").stdout.strip()
    assert admin.delete(f"/api/users/{page3}").status == 204
    assert srv.client().get("/api/session", headers={"Authorization": "Bearer " + token}).status == 401
    assert "page3" not in [u["username"] for u in admin.get("/api/users?limit=200").json()["items"]]
    dels = [a for a in audit("user.delete") if a["target"] == "page3"]
    assert dels and dels[0]["before"]["role"] == "viewer", dels


def test_a_user_changes_their_own_password():
    # a walk: a viewer (or an editor) could not change their own password; only an admin could reset it
    r = srv.cli("user", "add", "vic", "--role", "viewer", stdin="vic-password-1\n")
    assert r.returncode == 0, r.stderr
    c = srv.login("vic", "vic-password-1")
    other = srv.login("vic", "vic-password-1")  # the same user's session elsewhere
    # bad input is a 400 that says why, and changes nothing
    right = "vic-password-1"
    for body, err, said in (
            ({}, "invalid_input", '"current_password"'),
            ({"current_password": right}, "invalid_input", '"new_password" must be a string: a password of at least 8'),
            ({"current_password": right, "new_password": "short"}, "invalid_input", "fewer than 8 characters"),
            ({"current_password": right, "new_password": " " * 16}, "invalid_input", "repeats one character"),
            ({"current_password": right, "new_password": "VIC"}, "invalid_input", "fewer than 8"),
            ({"current_password": right, "new_password": right}, "invalid_input", "the new password is the current one"),
            ({"current_password": right, "new_password": "vic-password-2", "role": "admin"}, "invalid_input",
             'unknown member "role"'),
            ({"current_password": "not-the-passphrase", "new_password": "vic-password-2"}, "wrong_password",
             "the current password is wrong: nothing was changed")):
        r = c.put("/api/session/password", body)
        assert r.status == 400 and r.json()["error"] == err and said in r.json()["message"], (body, r.body)
    assert srv.client().post("/api/session", {"username": "vic", "password": right}).status == 200
    # a cookie session must send its CSRF token; no session, no change
    bare = srv.login("vic", right)
    del bare.headers["X-CSRF-Token"]
    assert bare.put("/api/session/password", {"current_password": right, "new_password": "vic-password-2"}).status == 403
    assert srv.client().put("/api/session/password", {"current_password": right,
                                                      "new_password": "vic-password-2"}).status == 401
    # the right one: changed, this session stays, the user's other sessions end, the old password is gone
    r = c.put("/api/session/password", {"current_password": right, "new_password": "vic-password-2"})
    assert r.status == 200 and r.json()["changed"] is True, r.body
    assert "other sessions were ended" in r.json()["message"], r.body
    # a viewer has no Users page: told whom to ask (a walk was told to revoke tokens there)
    assert "ask an admin to revoke them" in r.json()["message"] and "Users page" not in r.json()["message"], r.body
    assert c.get("/api/session").status == 200
    assert other.get("/api/session").status == 401
    assert srv.client().post("/api/session", {"username": "vic", "password": right}).status == 401
    srv.login("vic", "vic-password-2")
    changes = [a for a in audit("user.password_change") if a["target"] == "vic"]
    assert changes and changes[0]["actor"] == "vic", changes
    for secret in (right, "vic-password-2", "not-the-passphrase"):
        assert secret not in srv.logs() and secret not in str(admin.get("/api/audit?limit=200").body)
    # guessing the current password through an open session meets the login throttle
    statuses = [c.put("/api/session/password", {"current_password": f"guess-{i}", "new_password": "vic-password-3"})
                .status for i in range(6)]
    assert statuses == [400] * 5 + [429], statuses
    assert srv.client().post("/api/session", {"username": "vic", "password": "vic-password-2"}).status == 429
    assert srv.cli("user", "unlock", "vic").returncode == 0
    assert srv.client().post("/api/session", {"username": "vic", "password": "vic-password-2"}).status == 200


if __name__ == "__main__":
    run([test_create_and_list_with_paging, test_bad_input, test_role_change_applies_at_once,
         test_disabled_user_stops_at_once, test_password_reset, test_tokens_list_and_revoke,
         test_only_admins_read_the_audit_of_users_and_tokens, test_last_admin_and_self,
         test_delete_user, test_a_user_changes_their_own_password])
