"""`make demo` (scripts/run.sh with MRGATE_DEMO=1) starts from a database of its own, made anew on every start, and
never touches the database `make run` keeps.

A walk ran `make demo` a second time: the dashboard showed the first demo's connection and gated repositories against
a simulator seeded anew (no hooks, no merge requests), so a merge request opened as the demo prints was never gated
until a resync; and a demo's connection replaced the one `make run` had made with the same database.
"""
import os
import re
import signal
import subprocess
import time

import harness
from harness import Client, Proc, free_port, run, wait_http, wait_serving

RUN = os.path.join(harness.SOURCE_DIR, "scripts", "run.sh")
PG = os.path.join(harness.SOURCE_DIR, "scripts", "pg.sh")
BIN = harness.env_required("MRGATE_BIN")
SIM = harness.env_required("GITLAB_SIM_BIN")
work = harness.workdir("demo_fresh")
state = os.path.join(work, "state")
DEMO_TOKEN = "glpat-demo-0123456789abcdef"  # what scripts/demo.sh prints


def run_sh(demo, port, sim_port):
    """run.sh as `make run` or `make demo` would start it, on these ports."""
    env = {"MRGATE_STATE_DIR": state, "MRGATE_BIN": BIN, "MRGATE_LISTEN": f"127.0.0.1:{port}",
           "MRGATE_WEB_ROOT": os.path.join(harness.SOURCE_DIR, "web"), "GITLAB_SIM_BIN": SIM}
    if demo:
        env.update(MRGATE_DEMO="1", MRGATE_DEMO_GITLAB=f"127.0.0.1:{sim_port}")
    for k in ("MRGATE_DATABASE_URL", "MRGATE_ADMIN_PASSWORD", "MRGATE_SECRET_KEY_FILE", "MRGATE_PUBLIC_URL"):
        os.environ.pop(k, None)
    return Proc([RUN], os.path.join(work, f"run-{port}-{time.time()}.log"), env=env)


def start(demo, ports=None):
    """run.sh started and ready; returns (proc, client logged in, simulator base)."""
    for attempt in range(3):
        port, sim_port = ports or (free_port(), free_port())
        proc = run_sh(demo, port, sim_port)
        base = f"http://127.0.0.1:{port}"
        # another test may take a free port before our server does (CI met one: the login then went to another
        # suite's simulator): wait for mrgate to hold it, or for run.sh to give up
        if wait_serving(proc, port, timeout=120):
            wait_http(base + "/readyz", proc=proc, timeout=120)
            break
        taken = "is in use" in proc.output() or "could not start the HTTP server" in proc.output()
        assert not ports and taken and attempt < 2, proc.output()[-2000:]
    c = Client(base)
    password = open(os.path.join(state, "admin-password")).read().strip()
    r = c.post("/api/session", {"username": "admin", "password": password})
    assert r.status == 200, r.body
    c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return proc, c, f"http://127.0.0.1:{sim_port}"


def stop(proc):
    """The whole process group: run.sh's demo is a shell with the simulator and mrgate as its children."""
    try:
        os.killpg(proc.p.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    proc.stop()


def connect_demo(c, sim_base):
    r = c.put("/api/connection", {"gitlab_url": sim_base, "group": "demo", "token": DEMO_TOKEN})
    assert r.status == 200, r.body
    r = c.post("/api/sync")
    assert r.status in (202, 409), r.body  # 409: the connect started it already
    deadline = time.time() + 60
    while time.time() < deadline:
        r = c.get("/api/sync")
        run_ = r.json()
        if run_.get("state") == "done":
            # a duration in words a person reads: a walk saw "seconds":0.26679900000000001
            m = re.search(rb'"seconds":\s*([0-9.e+-]+)', r.body)
            assert m and re.fullmatch(rb"\d+(\.\d{1,3})?", m.group(1)), r.body
            return run_
        time.sleep(0.2)
    raise AssertionError(f"the demo's first sync did not end: {run_}")


started = []


def start_tracked(demo, ports=None):
    got = start(demo, ports)
    started.append(got[0])
    return got


def test_a_second_demo_starts_afresh_and_run_keeps_its_data():
    # make run: a user of the real product adds a user (its database "mrgate")
    proc, c, _ = start_tracked(demo=False)
    r = c.post("/api/users", {"username": "keeper", "password": "a long enough password", "role": "viewer"})
    assert r.status == 201, r.body
    stop(proc)
    # a first demo: connected and synced
    proc, c, sim_base = start_tracked(demo=True)
    assert connect_demo(c, sim_base)["repos_seen"] == 300
    assert c.get("/api/repos?limit=1").json()["count"] == 300
    stop(proc)
    # the second demo starts as the first did: nothing connected, no repos, against its new simulator
    proc, c, sim_base = start_tracked(demo=True)
    assert c.get("/api/connection").status == 404, "the first demo's connection is gone"
    assert c.get("/api/repos?limit=1").json()["count"] == 0
    assert connect_demo(c, sim_base)["repos_seen"] == 300
    stop(proc)
    # make run again: its own data, untouched by either demo
    proc, c, _ = start_tracked(demo=False)
    assert c.get("/api/connection").status == 404, "a demo's connection replaced make run's"
    assert "keeper" in [u["username"] for u in c.get("/api/users").json()["items"]]
    stop(proc)


def test_a_second_demo_on_the_ports_of_a_running_one_stops_before_it_touches_anything():
    # a walk ran `make demo` while a demo ran: it dropped and made anew the demo database under the running server
    # (which then served an empty dashboard while the simulator kept its hooks), and only then found the ports taken
    ports = (free_port(), free_port())
    proc, c, sim_base = start_tracked(demo=True, ports=ports)
    assert connect_demo(c, sim_base)["repos_seen"] == 300
    for demo, taken in ((True, f"127.0.0.1:{ports[0]}"), (False, f"127.0.0.1:{ports[0]}")):
        second = run_sh(demo, *ports)
        started.append(second)
        assert second.p.wait(timeout=60) != 0
        out = second.output()
        assert f"{taken} is in use" in out and "MRGATE_LISTEN" in out, out
    # with mrgate's port free but the simulator's taken, the demo says so, before it drops its database too
    other = free_port()
    second = run_sh(True, other, ports[1])
    started.append(second)
    assert second.p.wait(timeout=60) != 0
    out = second.output()
    assert f"127.0.0.1:{ports[1]} is in use" in out and "MRGATE_DEMO_GITLAB" in out, out
    # on ports of its own, as those messages suggest, it still refuses: the running demo's database is in use (a
    # walk did so, and the second demo dropped the first one's data under it)
    second = run_sh(True, free_port(), free_port())
    started.append(second)
    assert second.p.wait(timeout=60) != 0
    out = second.output()
    assert "a demo is already running" in out, out
    # the running demo kept its data
    assert c.get("/api/connection").status == 200
    assert c.get("/api/repos?limit=1").json()["count"] == 300
    stop(proc)


def teardown():
    for p in started:
        stop(p)  # a failed step leaves its demo running: the simulator and mrgate are the shell's children
    subprocess.run([PG, "stop", os.path.join(state, "pg")], capture_output=True)


try:
    run([test_a_second_demo_starts_afresh_and_run_keeps_its_data,
         test_a_second_demo_on_the_ports_of_a_running_one_stops_before_it_touches_anything])
finally:
    teardown()
