"""HTTP: an idle server sends no claim statements (job workers and gate workers wait for NOTIFY on their own LISTEN
connections, with a 10 s safety poll), a notification wakes them, and an API token's last_used_at is written at
most once a minute however many requests it makes."""
import re
import time

from harness import Mrgate, run

srv = Mrgate("idle")

CLAIMS = ("mrgate_job_claim_queries_total", "mrgate_gate_claim_queries_total")


def claims():
    """Claim statements sent so far, per queue (each pool claims once at start, so both counters exist)."""
    text = srv.client().get("/metrics").body.decode()
    out = {}
    for name in CLAIMS:
        m = re.search(r"^" + name + r" ([0-9.e+]+)$", text, re.M)
        assert m, f"{name} missing from /metrics"
        out[name] = float(m.group(1))
    return out


def test_idle_workers_send_no_claims():
    # both pools listen, each on its own connection
    srv.wait_for(lambda: srv.sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN mrgate_%' "
                                  "AND datname = current_database()")
                 == [["2"]], what="the job and gate workers' LISTEN connections")
    time.sleep(1)  # the start-up claims are over
    before = claims()
    time.sleep(3)
    after = claims()
    sent = sum(after[k] - before[k] for k in CLAIMS)
    # the safety poll (10 s) may fire once per pool within the window; polling workers sent 20+ here before
    assert sent <= 2, (before, after)


def test_a_notification_wakes_the_workers():
    before = claims()
    srv.sql("SELECT pg_notify('mrgate_jobs', ''), pg_notify('mrgate_gate', '')")
    srv.wait_for(lambda: all(claims()[k] > before[k] for k in CLAIMS), timeout=5,
                 what="a claim by each pool after NOTIFY")
    time.sleep(0.5)
    settled = claims()
    time.sleep(2)
    assert sum(claims()[k] - settled[k] for k in CLAIMS) <= 2  # idle again: the chain ended


def test_token_last_used_written_once_a_minute():
    out = srv.cli("token", "create", "admin", "poller")
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    c = srv.client()
    hdr = {"Authorization": "Bearer " + token}
    assert c.get("/api/session", headers=hdr).status == 200
    first = srv.sql("SELECT last_used_at, xmin FROM api_tokens WHERE name = 'poller'")
    assert first[0][0], first  # the first use is recorded
    for _ in range(30):
        assert c.get("/api/jobs", headers=hdr).status == 200
    # same value and same row version: 30 requests, no write
    assert srv.sql("SELECT last_used_at, xmin FROM api_tokens WHERE name = 'poller'") == first
    # a minute later the next request writes it again
    srv.sql("UPDATE api_tokens SET last_used_at = now() - interval '61 seconds' WHERE name = 'poller'")
    aged = srv.sql("SELECT last_used_at FROM api_tokens WHERE name = 'poller'")
    assert c.get("/api/session", headers=hdr).status == 200
    assert srv.sql("SELECT last_used_at FROM api_tokens WHERE name = 'poller'") != aged
    # the token list shows it
    admin = srv.login()
    items = admin.get("/api/tokens").json()["items"]
    assert [t for t in items if t["name"] == "poller" and t["last_used_at"]], items
    # a disabled user's token neither works nor writes
    srv.sql("UPDATE api_tokens SET last_used_at = NULL WHERE name = 'poller'")
    srv.sql("UPDATE users SET disabled = true WHERE username = 'admin'")
    try:
        assert c.get("/api/session", headers=hdr).status == 401
        assert srv.sql("SELECT last_used_at IS NULL FROM api_tokens WHERE name = 'poller'") == [["t"]]
    finally:
        srv.sql("UPDATE users SET disabled = false WHERE username = 'admin'")


if __name__ == "__main__":
    run([test_idle_workers_send_no_claims, test_a_notification_wakes_the_workers,
         test_token_last_used_written_once_a_minute])
