"""The benchmark's outside tools: nginx (the static server), wrk (the ceiling) and lemon24/reader.

Responsible for installing what is missing (nginx and wrk from Debian's packages with
apt-get; reader, and py-spy for profiles, with pip into a separate venv under
``benchmarks/work/`` so that reader's pins never touch the project's venv), and for running
nginx on loopback with a generated configuration and an access log that records each
request's time (ms), status, size and path.  It must not know what is being measured.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "work"
READER_VENV = WORK / "reader-venv"
READER_PYTHON = READER_VENV / "bin" / "python"
PY_SPY = READER_VENV / "bin" / "py-spy"
PROJECT_PYTHON = ROOT / ".venv" / "bin" / "python"


def snapshot_tree(ref: str = "HEAD") -> tuple[Path, str]:
    """A read-only copy of wirewatch at ``ref`` (``git archive``), and its commit.

    Others edit the working tree while benchmarks run; measuring a commit keeps a run
    consistent and citable.  The git repository itself is only read.
    """
    sha = subprocess.run(["git", "rev-parse", ref], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    dest = WORK / f"tree-{sha[:12]}"
    if not (dest / "monitor").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.Popen(["git", "archive", sha], cwd=ROOT, stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
        archive.wait()
        compile_tree(dest)
    return dest, sha


def compile_tree(tree: Path) -> None:
    """Write the ``.pyc`` files of ``tree``'s code, as ``pip install`` does.

    Otherwise, where ``PYTHONDONTWRITEBYTECODE`` is set (as on the dev machines), every
    measured run compiles wirewatch's modules again: 0.1-0.3 s of each ``run --once``.
    """
    dirs = [str(tree / d) for d in ("monitor", "crawler") if (tree / d).is_dir()]
    subprocess.run([str(PROJECT_PYTHON), "-m", "compileall", "-q", *dirs], check=False, capture_output=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _apt_install(*packages: str) -> None:
    if os.geteuid() != 0:
        raise SystemExit(
            f"missing {', '.join(packages)}: install them (apt-get install {' '.join(packages)}) or run as root"
        )
    print(f"installing {' '.join(packages)} from Debian's packages ...", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, env=env, stdout=subprocess.DEVNULL)


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        _apt_install("nginx-light")
        found = shutil.which("nginx") or "/usr/sbin/nginx"
    return found


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        _apt_install("wrk")
        found = shutil.which("wrk") or "/usr/bin/wrk"
    return found


def ensure_reader() -> Path:
    """A venv with lemon24/reader and py-spy, separate from the project's."""
    if not READER_PYTHON.exists():
        print("creating benchmarks/work/reader-venv with reader and py-spy ...", file=sys.stderr)
        WORK.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(READER_VENV)], check=True)
    # reader vendors a feedparser that imports ``sgmllib``; reader does not declare it.
    probe = subprocess.run([str(READER_PYTHON), "-c", "import reader, sgmllib"], capture_output=True, check=False)
    if probe.returncode != 0 or not PY_SPY.exists():
        subprocess.run([str(READER_PYTHON), "-m", "pip", "install", "-q", "reader", "sgmllib3k", "py-spy"], check=True)
    return READER_PYTHON


def tool_versions() -> dict[str, str]:
    """Versions of everything a figure depends on, for RESULTS.md."""
    out: dict[str, str] = {}
    nginx = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True, check=False)
    out["nginx"] = (nginx.stderr or nginx.stdout).strip().split("/")[-1]
    wrk = subprocess.run([wrk_binary(), "-v"], capture_output=True, text=True, check=False)
    out["wrk"] = (wrk.stdout or wrk.stderr).strip().split()[1] if (wrk.stdout or wrk.stderr).strip() else "?"
    code = "import importlib.metadata as m; print(m.version('reader'), m.version('feedparser'), m.version('requests'))"
    rv = subprocess.run([str(READER_PYTHON), "-c", code], capture_output=True, text=True, check=False).stdout.split()
    if len(rv) == 3:
        out["reader"], out["feedparser (reader venv)"], out["requests"] = rv
    code = (
        "import importlib.metadata as m; print(*(m.version(p) for p in ('scrapy','twisted','feedparser','sqlalchemy')))"
    )
    pv = subprocess.run([str(PROJECT_PYTHON), "-c", code], capture_output=True, text=True, check=False).stdout.split()
    if len(pv) == 4:
        out["scrapy"], out["twisted"], out["feedparser"], out["sqlalchemy"] = pv
    out["python"] = sys.version.split()[0]
    return out


NGINX_CONF = """\
# Generated by benchmarks/tools.py; loopback only.
worker_processes {workers};
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
{user}
events {{ worker_connections 4096; }}
http {{
    include {mime};
    default_type application/octet-stream;
    log_format bench '$msec $status $body_bytes_sent $request_uri';
    access_log {log} bench buffer=256k flush=1s;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    # No open_file_cache: a feed rewritten by the benchmark must be seen at once.
    client_body_temp_path {work}/tmp/body;
    proxy_temp_path {work}/tmp/proxy;
    fastcgi_temp_path {work}/tmp/fastcgi;
    uwsgi_temp_path {work}/tmp/uwsgi;
    scgi_temp_path {work}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        server_name localhost;
        root {root};
        location /f/ {{
            types {{ application/rss+xml xml; application/atom+xml atom; application/feed+json json; }}
        }}
        location /a/ {{
            types {{ text/html html; }}
            charset utf-8;
        }}
    }}
}}
"""


@dataclass
class Nginx:
    """nginx serving ``root`` on 127.0.0.1:``port``; ``access_log`` has one line per request."""

    root: Path
    port: int
    workdir: Path
    workers: int = 1
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.workdir / "access.log"

    def start(self) -> None:
        binary = nginx_binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.workdir / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                workers=self.workers,
                work=self.workdir,
                user="user root;" if os.geteuid() == 0 else "",
                mime="/etc/nginx/mime.types",
                log=self.access_log,
                port=self.port,
                root=self.root,
            ),
            encoding="utf-8",
        )
        self.process = subprocess.Popen(
            [binary, "-c", str(conf), "-p", str(self.workdir), "-g", "daemon off;"], stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"nginx exited: {err}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start listening within 10 s")

    def flush_log(self) -> None:
        """Make nginx write its buffered access log now (USR1 reopens the log files)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGUSR1)
            time.sleep(0.3)

    def rotate_log(self) -> None:
        """Start a fresh, empty access log."""
        self.flush_log()
        if self.access_log.exists():
            self.access_log.unlink()
        self.flush_log()

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGQUIT)  # graceful
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def __enter__(self) -> Nginx:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True, slots=True)
class LogLine:
    time: float
    status: int
    size: int
    path: str


def read_access_log(path: Path) -> list[LogLine]:
    out: list[LogLine] = []
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4:
            out.append(LogLine(float(parts[0]), int(parts[1]), int(parts[2]), parts[3]))
    return out
