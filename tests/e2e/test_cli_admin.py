"""`scripts/mailbridge` for admin access and deployments (README.md, "Admin access"): the admin
lists, `admin sessions revoke-all`, `doctor`, and one clear line when a function is out of reach."""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess

import pytest

from mailbridge.services import admin_access
from tests.helpers import make_services

CLI = str(Path(__file__).resolve().parents[2] / "scripts" / "mailbridge")


@pytest.fixture
def run(mb_env):
    def run_cli(*args, **env):
        merged = {**os.environ, **mb_env, **env}
        for key, value in env.items():
            if value is None:
                merged.pop(key, None)
        return subprocess.run([CLI, *args], env=merged, capture_output=True, text=True, timeout=120)

    return run_cli


def test_admin_emails_are_set_and_shown(run):
    done = run("settings", "set", "admin_emails", "Boss@acme.example, ops@acme.example")
    assert done.returncode == 0, done.stderr
    shown = json.loads(run("settings", "show", "--json").stdout)
    assert shown["admin_emails"] == ["boss@acme.example", "ops@acme.example"]


def test_an_admin_domain_that_is_not_a_domain_is_bad_input(run):
    done = run("settings", "set", "admin_domain", "not a domain")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["error: admin_domain 'not a domain' is not a domain name (e.g. example.com)"]


def test_revoke_all_ends_every_admin_session(run, mb_env):
    services = make_services()
    sessions = [admin_access.open_session(services, None, "link") for _ in range(2)]
    done = run("admin", "sessions", "revoke-all")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2 admin sessions ended"
    assert all(admin_access.load_session(services, s) is None for s in sessions)


def test_doctor_without_a_region_says_how_to_give_one(run):
    done = run("doctor", MAILBRIDGE_REGION=None)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["error: the region is not set: export MAILBRIDGE_REGION or pass --region"]


def test_doctor_without_credentials_is_one_line_and_exit_1(run, tmp_path):
    done = run("doctor", MAILBRIDGE_REGION="europe-west1", GOOGLE_APPLICATION_CREDENTIALS=str(tmp_path / "missing.json"))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "doctor: no application default credentials: run `gcloud auth application-default login`"]


def test_a_function_out_of_reach_is_one_line_and_exit_1(run):
    done = run("poll", MAILBRIDGE_FUNCTIONS_URL=None,
               MAILBRIDGE_FUNCTION_URLS=json.dumps({"poll": "http://127.0.0.1:9/poll"}))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == ["error: cannot reach http://127.0.0.1:9/poll: ConnectionError"]


def test_a_deployed_function_without_credentials_to_call_it_is_one_line(run, tmp_path):
    done = run("poll", MAILBRIDGE_FUNCTIONS_URL=None, GOOGLE_APPLICATION_CREDENTIALS=str(tmp_path / "missing.json"),
               MAILBRIDGE_FUNCTION_URLS=json.dumps({"poll": "https://mailbridge-poll-abc-ew.a.run.app"}))
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: cannot call https://mailbridge-poll-abc-ew.a.run.app: no identity token")
    assert "Traceback" not in done.stderr
