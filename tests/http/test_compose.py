"""docker-compose.yml and Dockerfile: `docker compose config` where a Docker client with compose exists; everywhere,
a structural check that the compose file parses, runs PostgreSQL 15 and mrgate wired to it, and that every path the
Dockerfile copies exists."""
import os
import re
import shutil
import subprocess

import yaml

import harness
from harness import run

ROOT = harness.SOURCE_DIR


def test_compose_config_validates_where_docker_exists():
    docker = shutil.which("docker")
    env = dict(os.environ, MRGATE_ADMIN_PASSWORD="x" * 12)
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        r = subprocess.run([docker, "compose", "-f", os.path.join(ROOT, "docker-compose.yml"), "config", "-q"],
                           capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
        print("docker compose config: valid")
    else:
        print("note: no 'docker compose' client here; checked the file's structure only")
    compose = yaml.safe_load(open(os.path.join(ROOT, "docker-compose.yml")))
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:15")
    m = services["mrgate"]
    assert m["build"] == "."
    assert "postgres" in m["depends_on"]
    url = m["environment"]["MRGATE_DATABASE_URL"]
    assert "@postgres:5432/" in url, url
    # every variable the compose file sets is one mrgate knows
    known = set(re.findall(r'"(MRGATE_[A-Z_]+)"', open(os.path.join(ROOT, "core", "config.c")).read()))
    for k in m["environment"]:
        assert k in known, k


def test_dockerfile_copies_existing_paths():
    text = open(os.path.join(ROOT, "Dockerfile")).read()
    copies = re.findall(r"^COPY (?!--from)(\S+)", text, re.M)
    assert copies
    for src in copies:
        assert os.path.exists(os.path.join(ROOT, src)), src


run([test_compose_config_validates_where_docker_exists, test_dockerfile_copies_existing_paths])
