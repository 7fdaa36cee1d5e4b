"""HTTP: two mrgate instances on one database share the scheduled resync (leader election by advisory lock).

Shows: exactly one instance leads (GET /api/settings scheduler.leader names it; mrgate_scheduler_leader is 1 on it
and 0 on the other); scheduled resyncs (sync_runs.trigger 'schedule') run every MRGATE_RESYNC_INTERVAL seconds,
only on the leader (sync_runs.owner) and never two at once; after the leader is killed with SIGKILL the other
instance leads within a few seconds and runs the next scheduled resync; the interval can be changed at run time
through PUT /api/settings (10 seconds at least).
"""
import time

import flows
import harness
from harness import Mrgate, run, wait_for
from sim import Sim

TOKEN = "glpat-scheduler-token-01"
INTERVAL = 10
sim = Sim("scheduler_sim")
sim.add_group("acme", tier="premium")
sim.add_token(TOKEN, access={"acme": 50})
sim.seed("acme", projects=20, depth=2, fanout=2)

DB = harness.fresh_database("scheduler")
ENV = {"MRGATE_RESYNC_INTERVAL": str(INTERVAL), "MRGATE_LOG_LEVEL": "info", "MRGATE_GITLAB_RATE_LIMIT": "0"}
a = Mrgate("scheduler_a", db_url=DB, env=ENV)
# one installation: the same secret key and public URL (behind a load balancer), two processes
b = Mrgate("scheduler_b", db_url=DB, env=dict(ENV, MRGATE_SECRET_KEY_FILE=a.env["MRGATE_SECRET_KEY_FILE"],
                                              MRGATE_PUBLIC_URL=a.base))
INSTANCES = [a, b]
ca = a.login()
flows.connect(ca, sim, "acme", TOKEN)
STATE = {}


def leader_gauge(srv):
    for line in srv.client().get("/metrics").body.decode().splitlines():
        if line.startswith("mrgate_scheduler_leader"):
            return float(line.split()[-1])
    return None


def pid_of(instance_name):
    return int(instance_name.split(":")[-2])


def scheduler_state(srv):
    c = srv.login()
    r = c.get("/api/settings")
    assert r.status == 200, r.body
    return r.json()["scheduler"]


def runs():
    """Every sync run: (id, trigger, owner, started_at epoch, finished_at epoch or None, state)."""
    rows = harness.sql(DB, "SELECT id, trigger, owner, extract(epoch FROM started_at),"
                           " extract(epoch FROM finished_at), state FROM sync_runs ORDER BY id")
    return [(int(r[0]), r[1], r[2], float(r[3]), float(r[4]) if r[4] else None, r[5]) for r in rows]


def assert_never_concurrent():
    rs = runs()
    for prev, cur in zip(rs, rs[1:]):
        assert prev[4] is not None and cur[3] >= prev[4], f"runs overlap: {prev} and {cur}"


def test_exactly_one_leads():
    def one_leader():
        gauges = [leader_gauge(s) for s in INSTANCES]
        return gauges if sorted(gauges) == [0, 1] else None
    gauges = wait_for(one_leader, 10, "exactly one leader")
    leader = INSTANCES[gauges.index(1)]
    st = scheduler_state(a)
    assert st["leader"] and pid_of(st["leader"]) == leader.proc.p.pid, (st, leader.proc.p.pid)
    assert scheduler_state(b)["leader"] == st["leader"]
    # and it stays that way for a while (the other keeps trying every second and keeps failing)
    for _ in range(5):
        time.sleep(0.4)
        assert [leader_gauge(s) for s in INSTANCES] == gauges
    STATE["leader"], STATE["other"] = leader, INSTANCES[1 - gauges.index(1)]


def test_scheduled_resyncs_run_on_the_leader_only_and_never_overlap():
    leader = STATE["leader"]
    def two_finished():
        s = [r for r in runs() if r[1] == "schedule"]
        return s if len([r for r in s if r[4] is not None]) >= 2 else None
    sched = wait_for(two_finished, 3 * INTERVAL + 10, "two scheduled resyncs")
    assert all(pid_of(r[2]) == leader.proc.p.pid for r in sched), sched
    assert all(r[5] == "done" for r in sched if r[4] is not None), sched
    first, second = sched[0], sched[1]
    assert second[3] - first[3] >= INTERVAL - 1.5, (first, second)
    st = scheduler_state(leader)
    assert st["last_started_at"] and st["next_run_at"] and st["last_finished_at"], st
    # a run asked for through the API in between does not overlap a scheduled one either
    c = STATE["other"].login()
    r = c.post("/api/sync")
    assert r.status in (202, 409), r.body
    wait_for(lambda: all(x[4] is not None for x in runs()), 30, "the runs to finish")
    assert_never_concurrent()
    assert c.get("/api/repos?limit=1").json()["count"] == 20


def test_killed_leader_is_replaced_and_the_duty_goes_on():
    leader, other = STATE["leader"], STATE["other"]
    # kill it between runs (a run killed half-way is reaped as stale after two minutes, outside this test)
    wait_for(lambda: all(x[4] is not None for x in runs()), 30, "no run in progress")
    killed_at = time.time()
    leader.proc.kill()
    wait_for(lambda: leader_gauge(other) == 1, 5, "the other instance to lead")
    took = time.time() - killed_at
    print(f"  took over {took:.1f}s after SIGKILL")
    st = scheduler_state(other)
    assert pid_of(st["leader"]) == other.proc.p.pid, st
    before = max(r[0] for r in runs())
    nxt = wait_for(lambda: [r for r in runs() if r[0] > before and r[1] == "schedule" and r[4] is not None],
                   INTERVAL + 10, "a scheduled resync by the new leader")
    assert pid_of(nxt[0][2]) == other.proc.p.pid and nxt[0][5] == "done", nxt
    assert_never_concurrent()


def test_interval_is_a_setting():
    c = STATE["other"].login()
    r = c.put("/api/settings", {"resync_interval": 5})
    assert r.status == 400 and "10 to 604800" in r.json()["message"], r.body
    # a null (a script's unset variable) says so, and that leaving it out keeps the setting
    for key in ("resync_interval", "auto_gate_new_repos", "fail_mode", "hook_mode"):
        r = c.put("/api/settings", {key: None})
        assert r.status == 400 and "not null: leave a setting out" in r.json()["message"], (key, r.body)
    r = c.put("/api/settings", {"resync_interval": 3600})
    assert r.status == 200 and r.json()["resync_interval"] == 3600, r.body
    # the next due time follows the new interval: no scheduled run within the old one
    wait_for(lambda: all(x[4] is not None for x in runs()), 30, "no run in progress")
    before = max(r[0] for r in runs())
    time.sleep(INTERVAL + 2)
    assert not [x for x in runs() if x[0] > before and x[1] == "schedule"], runs()[-3:]


run([test_exactly_one_leads, test_scheduled_resyncs_run_on_the_leader_only_and_never_overlap,
     test_killed_leader_is_replaced_and_the_duty_goes_on, test_interval_is_a_setting])
