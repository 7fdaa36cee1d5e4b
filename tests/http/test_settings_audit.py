"""The audit log tells what a settings change changed (found by a reviewer): PUT /api/settings {} used to be logged
as "fail_mode: closed -> not set; hook_mode: project -> not set; ..." (the whole settings before, only the request
after). The entry now holds, before and after, just the settings the request set; a request that changes nothing
writes no entry. The next scheduled resync follows a new interval (it showed the old time, then "4 min ago")."""
import datetime

from harness import Mrgate, run

srv = Mrgate("settings_audit")
c = srv.login()


def entries():
    r = c.get("/api/audit?action=settings&limit=50")
    assert r.status == 200, r.body
    return [a for a in r.json()["items"] if a["action"] == "settings.update"]


def test_a_change_is_logged_with_only_what_it_set():
    before = c.get("/api/settings").json()
    old = before["resync_interval"]
    r = c.put("/api/settings", {"resync_interval": old + 600})
    assert r.status == 200, r.body
    got = entries()
    assert len(got) == 1, got
    assert got[0]["before"] == {"resync_interval": old}, got[0]
    assert got[0]["after"] == {"resync_interval": old + 600}, got[0]


def test_nothing_changed_is_not_an_event():
    n = len(entries())
    # {} is refused, as PATCH /api/users {} is: a script that sends nothing has lost what it meant to send
    r = c.put("/api/settings", {})
    assert r.status == 400 and "nothing to change" in r.json()["message"], r.body
    cur = c.get("/api/settings").json()["resync_interval"]
    assert c.put("/api/settings", {"resync_interval": cur}).status == 200
    assert len(entries()) == n, entries()


def test_the_next_resync_follows_a_new_interval():
    def ts(v):
        return datetime.datetime.strptime(v, "%Y-%m-%dT%H:%M:%SZ")

    sched = srv.wait_for(lambda: c.get("/api/settings").json()["scheduler"]["last_started_at"] and
                         c.get("/api/settings").json()["scheduler"], 10, "the scheduler's first run")
    interval = c.get("/api/settings").json()["resync_interval"] + 1200
    assert c.put("/api/settings", {"resync_interval": interval}).status == 200
    now = c.get("/api/settings").json()["scheduler"]
    assert ts(now["next_run_at"]) - ts(sched["last_started_at"]) == datetime.timedelta(seconds=interval), now


def test_the_action_filter_is_a_prefix_and_says_what_it_takes():
    """action=%ff or action=% used to answer a vague error or every entry (a LIKE wildcard); a long one was cut."""
    for bad, why in [("%ff", "lower-case letters"), ("%25", "lower-case letters"), ("Settings", "lower-case letters"),
                     ("s" * 120, "at most 99 characters")]:
        r = c.get(f"/api/audit?action={bad}")
        assert r.status == 400 and why in r.json()["message"], (bad, r.status, r.body)
    c.put("/api/settings", {"fail_mode": "open"})
    c.put("/api/settings", {"fail_mode": "closed"})
    # "_" is a character here, not a wildcard: "settings_update" is no prefix of "settings.update"
    assert c.get("/api/audit?action=settings_update").json()["items"] == []
    assert c.get("/api/audit?action=settings.update").json()["items"], "the exact prefix finds the entries"


run([test_a_change_is_logged_with_only_what_it_set, test_nothing_changed_is_not_an_event,
     test_the_next_resync_follows_a_new_interval, test_the_action_filter_is_a_prefix_and_says_what_it_takes])
