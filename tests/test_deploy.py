"""Deployment files, run as far as this machine allows (there is no Docker engine or systemd PID 1).

docker-compose.yml is validated against the Compose specification's JSON schema, then the
``wirewatch`` service's own command line runs for real with the service's environment,
against PostgreSQL and the config folder it mounts, until the service's health check
passes.  The systemd unit is checked with ``systemd-analyze verify``, then its
``ExecStartPre`` and ``ExecStart`` lines run as written against a temporary root (every
absolute path of the unit moved under it), the way systemd would start them.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.servers import free_port

BIN = Path(sys.prefix) / "bin"


def _compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return doc


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WIREWATCH_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def _wait(predicate: Any, proc: subprocess.Popen[str], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"exited ({proc.returncode}) before {what}")
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _start(argv: list[str], env: dict[str, str], cwd: Path | str, log: Path) -> subprocess.Popen[str]:
    with log.open("w") as sink:
        return subprocess.Popen(argv, env=_env(env), cwd=cwd, text=True, stdout=sink, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen[str], log: Path, timeout: float = 60) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"did not stop within {timeout} s of SIGTERM:\n{log.read_text()}") from None
    return proc.returncode, log.read_text()


# ---------------------------------------------------------------------------- compose


def test_compose_file_matches_the_compose_schema() -> None:
    checker = shutil.which("check-jsonschema", path=str(BIN)) or shutil.which("check-jsonschema")
    assert checker, "check-jsonschema is a dev dependency"
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_mounts_the_config_folder_and_checks_health() -> None:
    services = _compose()["services"]
    daemon = services["wirewatch"]
    command = " ".join(daemon["entrypoint"])
    assert command.index("wirewatch db upgrade") < command.index("wirewatch run")
    assert daemon["depends_on"]["db"]["condition"] == "service_healthy"
    assert "healthcheck" in services["db"]
    for name in ("wirewatch", "worker"):
        # A folder, never the single file: editors that save by replacing the file break
        # a file bind mount, and the container would never see the edit.
        (mount,) = services[name]["volumes"]
        source, target, mode = mount.rsplit(":", 2)
        assert mode == "ro"
        assert target == "/etc/wirewatch"
        assert services[name]["environment"]["WIREWATCH_CONFIG"] == "/etc/wirewatch/config.toml"
        assert source.startswith("${WIREWATCH_CONFIG_DIR")
    assert "/healthz" in " ".join(daemon["healthcheck"]["test"])
    assert daemon["environment"]["WIREWATCH_LISTEN"] == "127.0.0.1:9310"
    # mailpit takes the bundled config's login over its plain port.
    mail = services["mailpit"]
    assert mail["profiles"] == ["mail"]
    assert mail["environment"]["MP_SMTP_AUTH_ACCEPT_ANY"] == "1"


def test_env_example_names_every_variable_the_deployment_reads() -> None:
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    named = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, re.MULTILINE))
    used: set[str] = set()
    for name in ("config.toml", "docker-compose.yml"):
        for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
            if not line.lstrip().startswith("#"):
                used |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", line))
    assert "SMTP_PASSWORD" in used
    assert used - named == set()


def test_compose_mail_profile_reaches_mailpit_with_the_bundled_config() -> None:
    """The env that .env.example gives for the mail profile turns the bundled e-mail URL into mailpit's."""
    from monitor.config import load_config

    config = load_config(ROOT / "config.toml")
    analysts = next(s for s in config.subscribers if s.name == "analysts")
    env = {
        "SMTP_SCHEME": "mailto",
        "SMTP_HOST": "mailpit",
        "SMTP_PORT": "1025",
        "SMTP_USER": "wirewatch",
        "SMTP_PASSWORD": "x",
        "ALERTS_FROM": "wirewatch@example.org",
        "ANALYSTS_TO": "analysts@example.org",
    }
    (url,), missing = analysts.resolve_urls(env)
    assert missing == []
    assert url[1].startswith("mailto://wirewatch:x@mailpit:1025?")
    # Without the overrides it is TLS submission on 587, as before.
    (url,), _ = analysts.resolve_urls({k: v for k, v in env.items() if k not in ("SMTP_SCHEME", "SMTP_PORT")})
    assert url[1].startswith("mailtos://wirewatch:x@mailpit:587?")


@pytest.fixture
def pg_database_url() -> Iterator[str]:
    """The compose file runs the daemon on PostgreSQL: a fresh database of the test's own."""
    from tests.conftest import _pg_database

    yield from _pg_database()


def test_compose_daemon_command_line_runs_until_healthy(pg_database_url: str, tmp_path: Path) -> None:
    """The service's entrypoint, environment and mounted config folder, run for real."""
    database_url = pg_database_url
    daemon = _compose()["services"]["wirewatch"]
    (mount,) = daemon["volumes"]
    target = mount.rsplit(":", 2)[1]
    port = free_port()
    env: dict[str, str] = {}
    for key, declared in daemon["environment"].items():
        value = str(declared)
        if key == "WIREWATCH_DATABASE_URL":
            value = database_url  # the db service of the file, here the test's own database
        elif key == "WIREWATCH_LISTEN":
            value = f"127.0.0.1:{port}"
        # The mounted folder: this checkout, as WIREWATCH_CONFIG_DIR's default says.
        env[key] = value.replace(target, str(ROOT))
    log = tmp_path / "compose.log"
    proc = _start(daemon["entrypoint"], env, ROOT, log)
    try:
        check = [part.replace("9310", str(port)) for part in daemon["healthcheck"]["test"][1:]]
        check[0] = sys.executable if check[0] == "python" else check[0]

        def healthy() -> bool:
            return subprocess.run(check, capture_output=True, check=False, timeout=10).returncode == 0

        _wait(healthy, proc, "the compose health check to pass")
        code, out = _stop(proc, log)
        assert code == 0, out
        assert "Traceback" not in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------------- systemd

UNIT = ROOT / "deploy" / "wirewatch.service"
MOVED = ("/opt/wirewatch", "/etc/wirewatch", "/var/lib/wirewatch")


def _unit() -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            keys.setdefault(key, []).append(value)
    return keys


def _under(root: Path, text: str) -> str:
    for path in MOVED:
        text = text.replace(path, f"{root}{path}")
    return text


@pytest.fixture
def system_root(tmp_path: Path) -> Path:
    """A root as the README's install steps leave it, and systemd's StateDirectory= makes it."""
    root = tmp_path / "root"
    (root / "opt" / "wirewatch").mkdir(parents=True)
    (root / "opt" / "wirewatch" / ".venv").symlink_to(Path(sys.prefix))
    (root / "etc" / "wirewatch").mkdir(parents=True)
    shutil.copy(ROOT / "config.toml", root / "etc" / "wirewatch" / "config.toml")
    (root / "var" / "lib" / "wirewatch").mkdir(parents=True)
    return root


def test_systemd_unit_keeps_state_where_the_sandbox_allows_writes() -> None:
    unit = _unit()
    assert unit["StateDirectory"] == ["wirewatch"]
    assert unit["User"] == ["wirewatch"]
    assert unit["ProtectSystem"] == ["strict"]
    assert "WIREWATCH_DATABASE_URL=sqlite:////var/lib/wirewatch/wirewatch.db" in unit["Environment"]
    assert unit["ExecStartPre"] == ["/opt/wirewatch/.venv/bin/wirewatch db upgrade"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]


def test_systemd_analyze_verifies_the_unit(system_root: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    moved = system_root / "wirewatch.service"
    moved.write_text(_under(system_root, UNIT.read_text(encoding="utf-8")), encoding="utf-8")
    result = subprocess.run([analyze, "verify", str(moved)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_systemd_exec_lines_run_as_written(system_root: Path) -> None:
    unit = _unit()
    env = dict(value.split("=", 1) for value in unit["Environment"])
    env = {k: _under(system_root, v) for k, v in env.items()}
    cwd = _under(system_root, unit["WorkingDirectory"][0])
    (pre,) = unit["ExecStartPre"]
    upgrade = subprocess.run(
        shlex.split(_under(system_root, pre)), env=_env(env), cwd=cwd, capture_output=True, text=True, check=False
    )
    assert upgrade.returncode == 0, upgrade.stderr
    assert (system_root / "var" / "lib" / "wirewatch" / "wirewatch.db").exists()

    (start,) = unit["ExecStart"]
    log = system_root / "journal.log"
    proc = _start(shlex.split(_under(system_root, start)), env, cwd, log)
    try:
        _wait(lambda: "wirewatch daemon started" in log.read_text(), proc, "the daemon to start")
        code, out = _stop(proc, log, timeout=float(unit["TimeoutStopSec"][0]))
        assert code == 0, out
        assert "Traceback" not in out
        # --log-format json: every line is one JSON object.
        assert all(line.startswith("{") for line in out.splitlines() if line.strip()), out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
