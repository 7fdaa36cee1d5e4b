"""The embedded PostgreSQL is durable where data lives: the cluster `make run` (scripts/run.sh) creates keeps
fsync, synchronous_commit and full_page_writes on; only test clusters (scripts/pg.sh start-fast) turn them off;
a cluster created by an earlier script with the unsafe settings is corrected on its next start, stopped or
running."""
import os
import subprocess
import time

import harness
from harness import Proc, free_port, run, wait_http

PG = os.path.join(harness.SOURCE_DIR, "scripts", "pg.sh")
RUN = os.path.join(harness.SOURCE_DIR, "scripts", "run.sh")
BIN = harness.env_required("MRGATE_BIN")
work = harness.workdir("pg_durability")
clusters = []
SETTINGS = ("fsync", "synchronous_commit", "full_page_writes")


def pg(*args):
    r = subprocess.run([PG, *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def settings(cluster, want=None, timeout=10):
    """SHOW each durability setting; with want, wait for a reload to reach new connections."""
    url = pg("url", cluster, "postgres")
    deadline = time.time() + timeout
    while True:
        got = {s: harness.sql(url, f"SHOW {s}")[0][0] for s in SETTINGS}
        if want is None or all(v == want for v in got.values()) or time.time() > deadline:
            return got


def data_dir(cluster):
    loc = os.path.join(cluster, "LOCATION")  # as root, a private checkout keeps the cluster under /var/tmp
    base = open(loc).read().strip() if os.path.exists(loc) else cluster
    return os.path.join(base, "data")


def test_make_run_cluster_is_durable():
    state = os.path.join(work, "state")
    clusters.append(os.path.join(state, "pg"))
    port = free_port()
    env = {"MRGATE_STATE_DIR": state, "MRGATE_BIN": BIN, "MRGATE_LISTEN": f"127.0.0.1:{port}",
           "MRGATE_WEB_ROOT": os.path.join(harness.SOURCE_DIR, "web")}
    for k in ("MRGATE_DATABASE_URL", "MRGATE_ADMIN_PASSWORD", "MRGATE_SECRET_KEY_FILE", "MRGATE_PUBLIC_URL"):
        os.environ.pop(k, None)
    proc = Proc([RUN], os.path.join(work, "run.log"), env=env)
    assert harness.wait_serving(proc, port, timeout=120), proc.output()[-2000:]
    wait_http(f"http://127.0.0.1:{port}/readyz", proc=proc, timeout=120)
    assert settings(os.path.join(state, "pg")) == {s: "on" for s in SETTINGS}
    proc.stop()


def test_test_cluster_may_trade_durability_for_speed():
    cluster = os.path.join(work, "fast")
    clusters.append(cluster)
    pg("start-fast", cluster)
    assert settings(cluster) == {s: "off" for s in SETTINGS}
    # the same cluster started for keeping data becomes durable at once, without a restart
    pg("start", cluster)
    assert settings(cluster, "on") == {s: "on" for s in SETTINGS}


def test_unsafe_cluster_of_an_earlier_version_is_corrected():
    cluster = os.path.join(work, "legacy")
    clusters.append(cluster)
    pg("start", cluster)
    pg("stop", cluster)
    # what scripts/pg.sh used to append to every cluster it created, make run's included
    conf = os.path.join(data_dir(cluster), "postgresql.conf")
    text = open(conf).read().replace("include_if_exists = 'mrgate-speed.conf'\n", "")
    with open(conf, "w") as f:
        f.write(text + "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
    pg("start", cluster)
    assert settings(cluster) == {s: "on" for s in SETTINGS}
    # and a legacy cluster still running with them is corrected by the next start too
    pg("stop", cluster)
    with open(conf, "a") as f:
        f.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
    pg("start-fast", cluster)  # running, unsafe
    with open(conf, "a") as f:
        f.write("fsync = off\n")
    pg("start", cluster)
    assert settings(cluster, "on") == {s: "on" for s in SETTINGS}


try:
    run([test_make_run_cluster_is_durable, test_test_cluster_may_trade_durability_for_speed,
         test_unsafe_cluster_of_an_earlier_version_is_corrected])
finally:
    for c in clusters:
        subprocess.run([PG, "stop", c], capture_output=True)
