"""A real GitLab client, python-gitlab (Debian's python3-gitlab), against the simulator."""
import time

import gitlab

from harness import run
from sim import Sim
from simtest import eq

sim = Sim("sim_python_gitlab")
TOKEN = "glpat-python-gitlab-000"
sim.add_token(TOKEN, kind="group_access", scopes=["api"], access={"acme": 50}, name="python-gitlab")
sim.seed("acme", 10050, depth=3, fanout=4, tier="premium")
gl = gitlab.Gitlab(sim.base, private_token=TOKEN, timeout=30)


def test_auth_and_user():
    gl.auth()
    eq(gl.user.bot, True, "group access token user is a bot")
    bad = gitlab.Gitlab(sim.base, private_token="wrong")
    try:
        bad.auth()
        raise AssertionError("auth with a wrong token succeeded")
    except gitlab.exceptions.GitlabAuthenticationError as e:
        eq(e.response_code, 401, "401")


def test_list_all_10050_projects():
    group = gl.groups.get("acme")
    eq(group.full_path, "acme", "group")
    sub = gl.groups.get("acme/team01")  # python-gitlab URL-encodes the path
    eq(sub.full_path, "acme/team01", "subgroup by path")
    t0 = time.time()
    projects = group.projects.list(include_subgroups=True, archived=False, with_shared=False, order_by="id",
                                   sort="asc", per_page=100, get_all=True)
    dt = time.time() - t0
    eq(len(projects), 10050, "projects listed")
    eq(len({p.id for p in projects}), 10050, "distinct")
    assert all(p.path_with_namespace.startswith("acme/") for p in projects)
    assert dt < 30, f"{dt:.1f}s"
    # the client followed rel="next" 101 times
    eq(sim.count("GET", "/api/v4/groups/:id/projects"), 101, "pages requested")


def test_create_and_list_hook():
    project = gl.projects.get("acme/acme-00001")
    hook = project.hooks.create({"url": "https://mrgate.example.com/hooks/gitlab", "merge_requests_events": True,
                                 "push_events": False, "token": "t0k", "enable_ssl_verification": True})
    assert hook.id > 0
    eq(hook.merge_requests_events, True, "flag")
    hooks = project.hooks.list(get_all=True)
    eq([h.url for h in hooks], ["https://mrgate.example.com/hooks/gitlab"], "listed")
    eq([h["token"] for h in sim.hooks() if h["id"] == hook.id], ["t0k"], "secret stored")
    hook.note_events = True
    hook.save()
    eq(project.hooks.get(hook.id).note_events, True, "saved")


def test_post_commit_status():
    found = gl.groups.get("acme").projects.list(include_subgroups=True, search="acme-00002")
    eq([p.path for p in found], ["acme-00002"], "search")
    project = gl.projects.get(found[0].path_with_namespace)
    sha = sim.project(project.id)["head_sha"]
    commit = project.commits.get(sha)
    st = commit.statuses.create({"state": "pending", "name": "mrgate", "description": "scanning"})
    eq(st.status, "pending", "pending")
    st = commit.statuses.create({"state": "success", "name": "mrgate", "description": "0 new findings"})
    eq(st.status, "success", "success")
    listed = commit.statuses.list(get_all=True)
    eq([(s.name, s.status) for s in listed], [("mrgate", "success")], "listed")
    try:
        commit.statuses.create({"state": "running", "name": "x", "ref": "main"})
        commit.statuses.create({"state": "running", "name": "x", "ref": "main"})
        raise AssertionError("running twice accepted")
    except gitlab.exceptions.GitlabCreateError as e:
        eq(e.response_code, 400, "invalid transition")


run([test_auth_and_user, test_list_all_10050_projects, test_create_and_list_hook, test_post_commit_status])
