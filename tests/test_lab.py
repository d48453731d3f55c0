"""JupyterLab, as `make lab` starts it: it serves notebooks/, lists every chapter, and refuses
requests that do not carry its token. The server listens on the loopback interface only."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # starts a JupyterLab server

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
JUPYTER = REPO / ".venv" / "bin" / "jupyter"
START_TIMEOUT_S = 60
HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _get(url: str, token: str | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    """GET ``url``; return (status, body), also for error statuses."""
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@contextmanager
def running_lab(root: Path, scratch: Path, env: dict[str, str] | None = None):
    """JupyterLab serving ``root`` on a free loopback port, with its runtime files and
    configuration kept in ``scratch`` and ``env`` added to its (and its kernels') environment;
    yields (base url, token, log file) once the server answers, and stops it afterwards."""
    assert JUPYTER.exists(), f"{JUPYTER} is missing: run `make test`, which installs it"
    port, token = _free_port(), secrets.token_hex(24)
    cmd = [
        str(JUPYTER),
        "lab",
        "--no-browser",
        f"--ServerApp.ip={HOST}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}",
    ]
    if os.geteuid() == 0:  # containers and CI images often run as root; Jupyter refuses by default
        cmd.append("--allow-root")
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        JUPYTER_RUNTIME_DIR=str(scratch / "runtime"),
        JUPYTER_CONFIG_DIR=str(scratch / "config"),
        **(env or {}),
    )
    log_path = scratch / "lab.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"jupyter lab exited with code {server.returncode}:\n{tail(log_path)}")
            try:
                if _get(f"{base}/api/status", token, timeout=2)[0] == 200:
                    break
            except OSError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                pytest.fail(
                    f"jupyter lab did not answer on {base} within {START_TIMEOUT_S} s:\n"
                    f"{tail(log_path)}"
                )
            time.sleep(0.5)
        yield base, token, log_path
    finally:
        _stop(server)


def tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A running JupyterLab server on notebooks/; yields (base url, token)."""
    with running_lab(NOTEBOOKS, tmp_path_factory.mktemp("lab")) as (base, token, _log):
        yield base, token


def _stop(server: subprocess.Popen) -> None:
    """Stop the server we started: SIGTERM, then SIGKILL if it has not exited after 15 s."""
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=15)


def test_lab_lists_every_notebook(lab):
    base, token = lab
    expected = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert expected, f"there are no notebooks in {NOTEBOOKS}"
    status, body = _get(f"{base}/api/contents/", token)
    assert status == 200, f"GET /api/contents/ answered {status}: {body[:500]!r}"
    listed = {item["name"] for item in json.loads(body)["content"] if item["type"] == "notebook"}
    missing = [name for name in expected if name not in listed]
    assert not missing, f"JupyterLab does not list {missing}; it lists {sorted(listed)}"


def test_lab_serves_its_page(lab):
    base, token = lab
    status, body = _get(f"{base}/lab", token)
    assert status == 200 and b"JupyterLab" in body, f"GET /lab answered {status}: {body[:300]!r}"


@pytest.mark.parametrize("token", [None, "not-the-token"], ids=["no-token", "wrong-token"])
def test_lab_refuses_requests_without_its_token(lab, token):
    base, _ = lab
    status, _body = _get(f"{base}/api/contents/", token)
    assert status == 403, f"GET /api/contents/ with token {token!r} answered {status}, not 403"
