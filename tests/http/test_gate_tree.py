"""The tree external scanners get (issue 12): mrgate unpacks GitLab's archive (the simulator makes it as git archive
does: pax global header, directories, executable bits, symlinks) with libarchive and hands scanners regular files
and directories only. An MR that adds symlinks to /etc/passwd and to "..", next to an executable script, passes a
scanner that fails on any link or special file and on a lost executable bit."""
import io
import os
import tarfile

import flows
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


def test_scanner_tree_has_no_links_and_keeps_executable_bits():
    flows.connect_and_sync(c, sim, "acme", TOKEN, timeout=30, logs=srv)
    r = c.put(f"/api/repos/{PID}/config", {"enabled": True, "scans": ["secrets", "sast"], "comment": "off"})
    assert r.status == 200, r.body
    gl = sim.client(TOKEN)
    flows.wait_hook(gl, PID, HOOK_URL, 30, logs=srv)
    mr = sim.open_mr(PID, [{"path": "src/app.py", "content": "x = 1\n"},
                           {"path": "bin/run.sh", "content": "#!/bin/sh\necho hi\n", "mode": "100755"},
                           {"path": "passwd", "content": "/etc/passwd", "mode": "120000"},
                           {"path": "src/up", "content": "..", "mode": "120000"}], source_branch="links")
    # the archive GitLab serves really holds the links (the witness is not kinder than GitLab)
    arch = gl.get(f"/api/v4/projects/{PID}/repository/archive.tar.gz?sha={mr['sha']}")
    with tarfile.open(fileobj=io.BytesIO(arch.body), mode="r:gz") as tf:
        assert sum(1 for m in tf.getmembers() if m.issym()) == 2
    run_ = srv.wait_for(lambda: next((g for g in c.get(f"/api/gates?repo={PID}").json()["items"]
                                      if g["state"] in ("done", "error")), None), 60, "the gate run")
    full = c.get(f"/api/gates/{run_['id']}").json()
    assert (run_["verdict"], full["findings"]) == ("passed", []), full
    st = flows.statuses(sim, PID, mr["sha"])
    assert [s["status"] for s in st] == ["success"], st


run([test_scanner_tree_has_no_links_and_keeps_executable_bits])
