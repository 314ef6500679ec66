"""Deployment files, checked as far as possible without a Docker engine.

The compose file is also validated against the Compose specification's JSON schema and
the Dockerfile linted with hadolint in `.ci/run`; this test checks what a schema cannot:
that the daemon migrates before it runs and waits for a healthy database.
"""

from __future__ import annotations

import yaml

from tests.conftest import ROOT


def test_compose_runs_db_upgrade_before_the_daemon() -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = doc["services"]
    assert {"db", "wirewatch"} <= set(services)
    command = " ".join(services["wirewatch"]["entrypoint"])
    assert command.index("wirewatch db upgrade") < command.index("wirewatch run")
    assert services["wirewatch"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert "healthcheck" in services["db"]
    assert services["wirewatch"]["environment"]["WIREWATCH_DATABASE_URL"].startswith("postgresql://")


def test_systemd_unit_migrates_first_and_reloads_with_sighup() -> None:
    unit = (ROOT / "deploy" / "wirewatch.service").read_text(encoding="utf-8")
    assert "ExecStartPre=/opt/wirewatch/.venv/bin/wirewatch db upgrade" in unit
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit
