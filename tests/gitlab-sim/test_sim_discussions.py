"""Merge request discussions as GitLab answers them (doc/api/discussions.md "Merge requests", lib/api/discussions.rb,
app/models/diff_note.rb; tests/gitlab-sim/README.md "Discussions"): a thread on an added line needs the MR's
diff_refs, both paths and a line that the diff adds; anything else is GitLab's 400; resolving needs `resolved` and
the Developer role; the list pages and shows plain notes as individual discussions."""
from harness import run
from sim import Sim
from simtest import eq

sim = Sim("sim_discussions")
ADMIN = "glpat-admin-discuss-0001"
DEV = "glpat-dev-discuss-00001"
REPORTER = "glpat-rep-discuss-00001"
LINE_CODE = "400 Bad request - Note {:line_code=>[\"can't be blank\", \"must be a valid line code\"]}"


def fresh():
    sim.reset()
    sim.add_token(ADMIN, admin=True, username="admin")
    sim.add_token(DEV, access={"acme": 30}, username="dev")
    sim.add_token(REPORTER, access={"acme": 20}, username="rep")
    sim.add_group("acme", tier="premium")
    pid = sim.add_project("acme", "app", files=[{"path": "a.py", "content": "one\ntwo\nthree\n"}])["id"]
    mr = sim.open_mr(pid, [{"path": "a.py", "content": "one\ntwo\nADDED\nthree\n"},
                           {"path": "new.txt", "content": "n1\nn2\n"}], notify=False)
    return pid, mr["iid"]


def position(refs, path="a.py", **lines):
    p = {"position_type": "text", "base_sha": refs["base_sha"], "start_sha": refs["start_sha"],
         "head_sha": refs["head_sha"], "old_path": path, "new_path": path}
    p.update(lines)
    return p


def test_a_thread_on_an_added_line():
    pid, iid = fresh()
    c = sim.client(DEV)
    base = f"/api/v4/projects/{pid}/merge_requests/{iid}"
    refs = c.get(base).json()["diff_refs"]
    r = c.post(base + "/discussions", {"body": "on the line", "position": position(refs, new_line=3)})
    eq(r.status, 201, r.body)
    d = r.json()
    eq(len(d["id"]), 40, "discussion id")
    eq(d["individual_note"], False, "a thread")
    [note] = d["notes"]
    eq((note["type"], note["resolvable"], note["resolved"], note["resolved_by"]), ("DiffNote", True, False, None), note)
    eq((note["position"]["new_path"], note["position"]["new_line"], note["position"]["old_line"]), ("a.py", 3, None),
       note["position"])
    eq(note["position"]["head_sha"], refs["head_sha"], "head sha")
    # a new file's line, as form fields (position[...]) rather than JSON
    form = {"body": "form"}
    form.update({f"position[{k}]": v for k, v in position(refs, path="new.txt", new_line=2).items()})
    eq(c.post(base + "/discussions", form).status, 201, "form position")
    # GET one, and the list with plain notes as individual discussions, paged
    eq(c.get(base + f"/discussions/{d['id']}").json()["id"], d["id"], "get one")
    eq(c.get(base + "/discussions/" + "0" * 40).status, 404, "unknown id")
    eq(c.post(base + "/notes", {"body": "plain"}).status, 201, "a plain note")
    page1 = c.get(base + "/discussions?per_page=2")
    eq((page1.status, page1.header("X-Next-Page"), len(page1.json())), (200, "2", 2), "first page")
    [plain] = c.get(base + "/discussions?per_page=2&page=2").json()
    eq((plain["individual_note"], plain["notes"][0]["body"], plain["notes"][0]["type"]), (True, "plain", None), plain)
    # the notes API shows the diff note too
    types = sorted(str(n["type"]) for n in c.get(base + "/notes").json())
    eq(types, ["DiffNote", "DiffNote", "None"], "notes")


def test_bad_positions_are_refused_as_gitlab_does():
    pid, iid = fresh()
    c = sim.client(DEV)
    base = f"/api/v4/projects/{pid}/merge_requests/{iid}"
    refs = c.get(base).json()["diff_refs"]
    cases = [
        ({"position": position(refs, new_line=3)}, 400, {"error": "body is missing"}),
        ({"body": "x", "position": {"position_type": "text", "new_path": "a.py", "new_line": 3}}, 400,
         {"error": "position[base_sha] is missing, position[start_sha] is missing, position[head_sha] is missing"}),
        ({"body": "x", "position": dict(position(refs, new_line=3), position_type="line")}, 400,
         {"error": "position[position_type] does not have a valid value"}),
        ({"body": "x", "position": position(refs, new_line="three")}, 400, {"error": "position[new_line] is invalid"}),
        # an unchanged line given as added, a line past the diff, a file the MR does not change, wrong refs
        ({"body": "x", "position": position(refs, new_line=2)}, 400, {"message": LINE_CODE}),
        ({"body": "x", "position": position(refs, new_line=40)}, 400, {"message": LINE_CODE}),
        ({"body": "x", "position": position(refs, path="README.md", new_line=1)}, 400, {"message": LINE_CODE}),
        ({"body": "x", "position": dict(position(refs, new_line=3), head_sha=refs["base_sha"])}, 400,
         {"message": LINE_CODE}),
        ({"body": "x", "position": dict(position(refs, new_line=3), old_path="b.py")}, 400, {"message": LINE_CODE}),
        ({"body": "x", "position": {k: v for k, v in position(refs, new_line=3).items() if k != "old_path"}}, 400,
         {"message": LINE_CODE[:-1] + ", :position=>[\"is incomplete\"]}"}),
    ]
    for body, status, answer in cases:
        r = c.post(base + "/discussions", body)
        eq((r.status, r.json()), (status, answer), body)
    # an unchanged line with both numbers and a removed line are placeable, as in GitLab
    eq(c.post(base + "/discussions", {"body": "ctx", "position": position(refs, old_line=2, new_line=2)}).status, 201,
       "unchanged line")
    eq(c.get(base + "/discussions").json()[0]["notes"][0]["position"]["old_line"], 2, "stored")
    # a thread on the overview (no position) is a resolvable DiscussionNote
    r = c.post(base + "/discussions", {"body": "overview"})
    eq((r.status, r.json()["notes"][0]["type"]), (201, "DiscussionNote"), r.body)


def thread_on_an_added_line(body):
    """A fresh MR with a Developer's thread on its added line 3: (the MR's API path, the discussion)."""
    pid, iid = fresh()
    dev = sim.client(DEV)
    base = f"/api/v4/projects/{pid}/merge_requests/{iid}"
    refs = dev.get(base).json()["diff_refs"]
    return base, dev.post(base + "/discussions", {"body": body, "position": position(refs, new_line=3)}).json()


def test_resolve_needs_resolved_and_the_developer_role():
    base, d = thread_on_an_added_line("b")
    dev, rep = sim.client(DEV), sim.client(REPORTER)
    url = base + f"/discussions/{d['id']}"
    eq((dev.put(url, {}).status, dev.put(url, {}).json()), (400, {"error": "resolved is missing"}), "missing")
    eq(dev.put(url, {"resolved": "maybe"}).json(), {"error": "resolved is invalid"}, "invalid")
    eq(rep.put(url, {"resolved": True}).status, 403, "a Reporter")
    eq(dev.put(base + "/discussions/" + "f" * 40, {"resolved": True}).status, 404, "unknown")
    r = dev.put(url, {"resolved": True})
    eq(r.status, 200, r.body)
    note = r.json()["notes"][0]
    eq((note["resolved"], note["resolved_by"]["username"]), (True, "dev"), note)
    # resolving a resolved thread again leaves it as it is (ResolvableNote#resolve_without_save: `return false if
    # resolved?`): who resolved it first stays
    resolved_at = note["resolved_at"]
    r = sim.client(ADMIN).put(url, {"resolved": True})
    note = r.json()["notes"][0]
    eq((r.status, note["resolved_by"]["username"], note["resolved_at"]), (200, "dev", resolved_at), "resolved twice")
    r = dev.put(url + "?resolved=false", None)
    eq((r.status, r.json()["notes"][0]["resolved"], r.json()["notes"][0]["resolved_by"]), (200, False, None), r.body)
    # a reset forgets every discussion
    sim.reset()
    sim.add_token(ADMIN, admin=True, username="admin")
    eq(sim.client(ADMIN).get(url).status, 404, "after a reset")


def test_a_reply_in_a_thread():
    """POST .../discussions/:discussion_id/notes (doc/api/discussions.md "Add note to existing merge request
    thread"): body required; 201 with the note; the thread lists it after its first note (its Note Hook:
    tests/http/test_mr_command_thread.py)."""
    base, d = thread_on_an_added_line("first")
    dev, rep = sim.client(DEV), sim.client(REPORTER)
    url = base + f"/discussions/{d['id']}/notes"
    eq((dev.post(url, {}).status, dev.post(url, {}).json()), (400, {"error": "body is missing"}), "no body")
    eq(dev.post(base + "/discussions/" + "0" * 40 + "/notes", {"body": "x"}).status, 404, "unknown thread")
    r = rep.post(url, {"body": "a reply"})
    eq(r.status, 201, r.body)
    reply = r.json()
    eq((reply["body"], reply["author"]["username"], reply["type"], reply["resolvable"]),
       ("a reply", "rep", "DiffNote", True), reply)
    eq(reply["position"]["new_line"], 3, "the thread's position")
    thread = dev.get(base + f"/discussions/{d['id']}").json()
    eq([n["body"] for n in thread["notes"]], ["first", "a reply"], "the thread's notes")
    listed = dev.get(base + "/discussions").json()
    eq([[n["body"] for n in t["notes"]] for t in listed], [["first", "a reply"]], "not an individual discussion")
    eq(reply["id"] in [n["id"] for n in dev.get(base + "/notes").json()], True, "a note of the MR")


run([test_a_thread_on_an_added_line, test_bad_positions_are_refused_as_gitlab_does,
     test_resolve_needs_resolved_and_the_developer_role, test_a_reply_in_a_thread])
