"""Connecting a GitLab group: each kind of token gets the documented answer, only valid connections are stored,
TLS with and without a CA bundle, and the token never leaves the server (issue: connect and discover)."""
import concurrent.futures
import datetime
import json

import harness
from harness import Mrgate, run
from sim import Sim

sim = Sim("connection")
sim.add_group("acme", tier="premium")
sim.seed("acme", projects=12, depth=2, fanout=2)
sim.add_group("other")
soon = (datetime.date.today() + datetime.timedelta(days=10)).isoformat()
past = (datetime.date.today() - datetime.timedelta(days=1)).isoformat()
TOKENS = {
    "api": "glpat-apiTokenForAcme0001",
    "bot": "glpat-botTokenForAcme0002",
    "read": "glpat-readApiTokenAcme003",
    "expired": "glpat-expiredTokenAcme04",
    "revoked": "glpat-revokedTokenAcme05",
    "noaccess": "glpat-noAccessTokenAcme6",
    "soon": "glpat-expiresSoonAcme0007",
    "userscope": "glpat-readUserOnlyAcme08",
}
sim.add_token(TOKENS["api"], scopes=["api"], access={"acme": 50}, username="alice", bot=False)
sim.add_token(TOKENS["bot"], kind="group_access", scopes=["api"], access={"acme": 40})
sim.add_token(TOKENS["read"], scopes=["read_api"], access={"acme": 40})
sim.add_token(TOKENS["expired"], scopes=["api"], access={"acme": 50}, expires_at=past)
sim.add_token(TOKENS["revoked"], scopes=["api"], access={"acme": 50}, revoked=True)
sim.add_token(TOKENS["noaccess"], scopes=["api"], access={"other": 50})
sim.add_token(TOKENS["soon"], kind="group_access", scopes=["api"], access={"acme": 50}, expires_at=soon)
sim.add_token(TOKENS["userscope"], scopes=["read_user"], access={"acme": 50})

srv = Mrgate("connection", env={"MRGATE_GITLAB_RETRIES": "1", "MRGATE_GITLAB_BACKOFF_MS": "20"})
c = srv.login()
seen = []  # every response body, searched for tokens at the end


def put(token, url=None, group="acme", ca=None):
    body = {"gitlab_url": url or sim.base, "group": group, "token": token}
    if ca is not None:
        body["ca_bundle"] = ca
    r = c.put("/api/connection", body)
    seen.append(r.body)
    return r


def get():
    r = c.get("/api/connection")
    seen.append(r.body)
    return r


def test_no_connection_yet():
    r = get()
    assert r.status == 404 and r.json()["error"] == "no_connection", r.body
    # starting a sync is not looking up a missing thing: the request conflicts with the state (nothing to sync yet)
    r = c.post("/api/sync")
    assert r.status == 409 and r.json()["error"] == "no_connection", r.body
    assert "PUT /api/connection" in r.json()["message"], r.body


def test_api_token_gates():
    r = put(TOKENS["api"])
    assert r.status == 200, r.body
    j = r.json()
    assert j["capability"] == "gate"
    assert j["group"]["full_path"] == "acme" and j["group"]["id"] > 0
    assert j["token"]["last4"] == "\u2026" + TOKENS["api"][-4:]
    assert "api" in j["token"]["scopes"]
    assert j["user"]["username"] == "alice" and j["user"]["bot"] is False
    assert j["group_access_level"] == 50
    assert not any("Maintainer" in w or "not a member" in w for w in j["warnings"]), j["warnings"]
    # a person's token: gating stops when they leave
    assert any("belongs to a person" in w for w in j["warnings"]), j["warnings"]
    g = get().json()
    assert g["capability"] == "gate" and g["token"]["last4"] == j["token"]["last4"]


def test_group_by_numeric_id_and_bot_token():
    gid = get().json()["group"]["id"]
    r = put(TOKENS["bot"], group=gid)
    assert r.status == 200, r.body
    j = r.json()
    assert j["group"]["full_path"] == "acme"
    assert j["user"]["bot"] is True and j["token"]["kind"] == "group_access"
    assert not any("belongs to a person" in w for w in j["warnings"]), j["warnings"]


def test_below_maintainer_warns():
    sim.add_token("glpat-developerOnAcme0009", scopes=["api"], access={"acme": 30})
    r = put("glpat-developerOnAcme0009")
    assert r.status == 200, r.body
    assert r.json()["group_access_level"] == 30
    assert any("below Maintainer" in w for w in r.json()["warnings"]), r.json()["warnings"]


def test_read_api_is_read_only():
    r = put(TOKENS["read"])
    assert r.status == 200, r.body
    j = r.json()
    assert j["capability"] == "read_only", j
    assert any("read_api" in w for w in j["warnings"])


def test_expiring_soon_warns():
    r = put(TOKENS["soon"])
    assert r.status == 200, r.body
    assert any("expires on " + soon in w for w in r.json()["warnings"]), r.json()["warnings"]
    assert r.json()["token"]["expires_at"] == soon


def test_bad_tokens_are_refused_and_nothing_changes():
    before = get().json()
    cases = [
        (TOKENS["expired"], 400, "token_expired", "expired"),
        (TOKENS["revoked"], 400, "token_revoked", "revoked"),
        ("glpat-unknownTokenXYZ123", 400, "token_invalid", "does not accept"),
        (TOKENS["noaccess"], 400, "group_not_found", "not found"),
        (TOKENS["userscope"], 400, "token_insufficient", "api scope"),
    ]
    for token, status, code, words in cases:
        r = put(token)
        assert r.status == status, (token, r.status, r.body)
        assert r.json()["error"] == code, r.body
        assert words in r.json()["message"], r.body
        after = get().json()
        assert after == before, "a refused token changed the stored connection"
    # the log says what went wrong in the same words, not "could not reach GitLab" for a token GitLab refused
    logs = srv.logs()
    assert "could not reach GitLab" not in logs, [l for l in logs.splitlines() if "connection check" in l]
    assert "GitLab does not accept this token" in logs, [l for l in logs.splitlines() if "connection check" in l]
    # the client's own line names the token tried (its last 4 characters), not as if the stored one were refused
    refused = [l for l in logs.splitlines() if "no further request is sent" in l]
    assert refused and any("the token ending in Z123" in l for l in refused), refused


def test_bad_input():
    for body, field in [({"group": "acme", "token": "x" * 20}, "gitlab_url"),
                        ({"gitlab_url": sim.base, "token": "x" * 20}, "group"),
                        ({"gitlab_url": sim.base, "group": "acme", "token": 5}, "token"),
                        ({"gitlab_url": "ftp://x", "group": "acme", "token": "x" * 20}, "gitlab_url")]:
        r = c.put("/api/connection", body)
        assert r.status == 400 and field in r.json()["message"], (body, r.body)


def test_unreachable_gitlab():
    r = put(TOKENS["api"], url=f"http://127.0.0.1:{harness.free_port()}")
    assert r.status == 502 and r.json()["error"] == "gitlab_unreachable", r.body
    assert "unreachable" in r.json()["message"] or "connect" in r.json()["message"], r.body


def test_tls_with_and_without_ca_bundle():
    tls = Sim("connection_tls", tls=True)
    tls.add_group("acme")
    tls.add_token(TOKENS["api"], scopes=["api"], access={"acme": 50})
    r = put(TOKENS["api"], url=tls.base)
    assert r.status == 502 and r.json()["error"] == "gitlab_tls", r.body
    assert "TLS" in r.json()["message"], r.body
    ca = open(tls.ca_file).read()
    r = put(TOKENS["api"], url=tls.base, ca=ca)
    assert r.status == 200, r.body
    assert r.json()["ca_bundle"] is True
    assert r.json()["gitlab_url"] == tls.base
    # back to the plain simulator for the rest
    assert put(TOKENS["api"]).status == 200


def test_update_token_keeps_connection_and_audits():
    first = get().json()
    r = put(TOKENS["bot"])
    assert r.status == 200
    second = get().json()
    assert second["created_at"] == first["created_at"]
    assert second["token"]["last4"] != first["token"]["last4"]
    audit = c.get("/api/audit?limit=50")
    if audit.status == 200:  # the audit endpoint lists connection changes without secrets
        seen.append(audit.body)
        entry = next(e for e in audit.json()["items"] if e["action"] == "connection.update")
        # what changed is the token, not the capability (it said "not set -> gate" for every update)
        assert entry["before"]["capability"] == entry["after"]["capability"] == "gate", entry
        assert entry["before"]["token_last4"] != entry["after"]["token_last4"], entry


def test_delete_connection():
    r = c.delete("/api/connection")
    assert r.status == 204
    assert get().status == 404
    assert c.delete("/api/connection").status == 404
    assert put(TOKENS["api"]).status == 200


def test_token_never_leaves_the_server():
    logs = srv.logs()
    for name, token in TOKENS.items():
        assert token not in logs, f"the {name} token appears in mrgate's log"
        for body in seen:
            assert token.encode() not in body, f"the {name} token appears in an API response"
    # stored sealed, not in clear
    rows = harness.sql(srv.db_url, "SELECT token_sealed, token_hint FROM connection")
    assert rows and rows[0][0].startswith("v1:") and TOKENS["api"] not in json.dumps(rows)


def test_connects_side_by_side_on_a_small_pool():
    # PUT /api/connection held its connection, after its commit, while it borrowed another to read the stored
    # connection back: with every connection of the pool so held, each waited for the others until its 10 s ran
    # out and answered 503, with the change already committed
    small = Mrgate("connection_pool", env={"MRGATE_DB_POOL": "2"})
    try:
        sc = small.login()
        body = {"gitlab_url": sim.base, "group": "acme", "token": TOKENS["api"]}
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            got = list(ex.map(lambda _: sc.put("/api/connection", body), range(4)))
        assert [r.status for r in got] == [200] * 4, [(r.status, r.body[:200]) for r in got]
        assert all(r.json()["group"]["full_path"] == "acme" for r in got)
    finally:
        small.stop()


run([test_no_connection_yet, test_api_token_gates, test_group_by_numeric_id_and_bot_token, test_below_maintainer_warns,
     test_read_api_is_read_only, test_expiring_soon_warns, test_bad_tokens_are_refused_and_nothing_changes,
     test_bad_input, test_unreachable_gitlab, test_tls_with_and_without_ca_bundle,
     test_update_token_keeps_connection_and_audits, test_delete_connection, test_token_never_leaves_the_server,
     test_connects_side_by_side_on_a_small_pool])
