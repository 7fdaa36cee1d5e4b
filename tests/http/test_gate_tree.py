"""The tree external scanners get (issue 12): mrgate unpacks GitLab's archive (the simulator makes it as git archive
does: pax global header, directories, executable bits, symlinks) with libarchive and hands scanners regular files
and directories only. An MR that adds symlinks to /etc/passwd and to "..", next to an executable script, passes a
scanner that fails on any link or special file and on a lost executable bit."""
import io
import os
import tarfile
import time

import harness
from harness import Mrgate, run
from sim import Sim

PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "tree_probe.py")
TOKEN = "glpat-gateTreeTokenAcme001"

sim = Sim("gate_tree")
sim.add_group("acme", tier="premium")
sim.add_token(TOKEN, scopes=["api"], access={"acme": 50}, username="treebot", bot=True)
PID = sim.add_project("acme", "tree", files=[{"path": "README.md", "content": "# tree\n"}])["id"]
srv = Mrgate("gate_tree", env={"MRGATE_SCANNER_SAST": f"/usr/bin/python3 {PROBE}", "MRGATE_LOG_LEVEL": "info",
                               "TMPDIR": harness.workdir("gate_tree-tmp")})
c = srv.login()
HOOK_URL = srv.base + "/hooks/gitlab"


def wait_for(fn, timeout, what):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}\n{srv.logs()[-3000:]}")


def test_scanner_tree_has_no_links_and_keeps_executable_bits():
    assert c.put("/api/connection", {"gitlab_url": sim.base, "group": "acme", "token": TOKEN}).status == 200
    assert c.post("/api/sync").status == 202
    wait_for(lambda: c.get("/api/sync").json().get("state") == "done", 30, "sync")
    r = c.put(f"/api/repos/{PID}/config", {"enabled": True, "scans": ["secrets", "sast"], "comment": "off"})
    assert r.status == 200, r.body
    gl = sim.client(TOKEN)
    wait_for(lambda: any(h["url"] == HOOK_URL for h in gl.get(f"/api/v4/projects/{PID}/hooks").json()), 30,
             "the gate's webhook")
    mr = sim.open_mr(PID, [{"path": "src/app.py", "content": "x = 1\n"},
                           {"path": "bin/run.sh", "content": "#!/bin/sh\necho hi\n", "mode": "100755"},
                           {"path": "passwd", "content": "/etc/passwd", "mode": "120000"},
                           {"path": "src/up", "content": "..", "mode": "120000"}], source_branch="links")
    # the archive GitLab serves really holds the links (the witness is not kinder than GitLab)
    arch = gl.get(f"/api/v4/projects/{PID}/repository/archive.tar.gz?sha={mr['sha']}")
    with tarfile.open(fileobj=io.BytesIO(arch.body), mode="r:gz") as tf:
        assert sum(1 for m in tf.getmembers() if m.issym()) == 2
    run_ = wait_for(lambda: next((g for g in c.get(f"/api/gates?repo={PID}").json()["items"]
                                  if g["state"] in ("done", "error")), None), 60, "the gate run")
    full = c.get(f"/api/gates/{run_['id']}").json()
    assert (run_["verdict"], full["findings"]) == ("passed", []), full
    st = [s for s in sim.statuses(project_id=PID, sha=mr["sha"]) if s["name"] == "mrgate"]
    assert [s["status"] for s in st] == ["success"], st


run([test_scanner_tree_has_no_links_and_keeps_executable_bits])
