"""The job server (msdefense.jobserver): jobs run in forks of one preloaded process, with the
client's streams, folder and environment; failures and cancellations reach both sides; without a
server a job runs in its own process."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from msdefense.jobserver import ENV, address_for

ROOT = Path(__file__).resolve().parents[1]
TARGET = "jobserver_stages:where"
CLIENT = """
import json, sys
from types import SimpleNamespace
from msdefense.jobserver import run_job
args = json.loads(sys.argv[1])
sm = SimpleNamespace(wildcards={}, params=args["params"], input={}, output={"report": args["report"]},
                     log=[args["log"]], threads=args["threads"])
run_job(args["target"], sm)
"""


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join([str(ROOT / "tests"), str(ROOT / "src")])
    return {**os.environ, "PYTHONPATH": path, **extra}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    address = address_for(tmp_path_factory.mktemp("jobserver"), os.getpid())
    proc = subprocess.Popen(
        [sys.executable, "-m", "msdefense.jobserver", address], env=_env(), stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    yield address, proc.pid
    proc.terminate()
    proc.wait(timeout=10)


def _client(
    tmp_path: Path,
    address: str | None,
    *,
    wait: bool = True,
    env_extra: dict | None = None,
    threads: int = 1,
    **params,
):
    env = _env(JOBSERVER_TEST_MARKER="from-the-client", **(env_extra or {}))
    env.pop(ENV, None)
    if address is not None:
        env[ENV] = address
    args = {"target": TARGET, "params": params, "report": str(tmp_path / "report.json"),
            "log": str(tmp_path / "job.log"), "threads": threads}  # fmt: skip
    cmd = [sys.executable, "-c", CLIENT, json.dumps(args)]
    if not wait:
        return subprocess.Popen(cmd, cwd=tmp_path, env=env)
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def _report(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "report.json").read_text())


def test_a_job_runs_in_a_fork_of_the_server_with_the_clients_folder_and_environment(server, tmp_path) -> None:
    address, server_pid = server
    done = _client(tmp_path, address)
    assert done.returncode == 0, done.stderr
    report = _report(tmp_path)
    assert report["ppid"] == server_pid
    assert report["cwd"] == str(tmp_path)
    assert report["marker"] == "from-the-client"
    assert "stage ran" in (tmp_path / "job.log").read_text()
    # the job's own peak memory beside its log (Snakemake's benchmark sees only the client)
    assert json.loads((tmp_path / "job.gpu.json").read_text())["peak_host_mib"] > 50


def test_the_server_forks_without_thread_pools_and_jobs_compute_on_several_threads(server, tmp_path) -> None:
    """torch's thread pool started in the server before it forks would hang a child's parallel
    kernels (the server then refuses to serve): a 2-thread job runs in a fork and finishes."""
    address, server_pid = server
    done = _client(tmp_path, address, threads=2, compute=True)
    assert done.returncode == 0, done.stderr
    report = _report(tmp_path)
    assert report["ppid"] == server_pid and report["threads"] == 2 and math.isfinite(report["checksum"])


def test_a_failing_job_fails_the_client_with_its_traceback_in_the_log(server, tmp_path) -> None:
    done = _client(tmp_path, server[0], fail=True)
    assert done.returncode == 1
    assert _report(tmp_path)["ppid"] == server[1]
    assert "this stage fails on purpose" in (tmp_path / "job.log").read_text()


def test_killing_the_client_kills_its_job(server, tmp_path) -> None:
    client = _client(tmp_path, server[0], wait=False, seconds=60)
    deadline = time.monotonic() + 60
    while not (tmp_path / "report.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.2)
    job_pid = _report(tmp_path)["pid"]
    assert job_pid != client.pid
    client.send_signal(signal.SIGKILL)
    client.wait()
    deadline = time.monotonic() + 10
    while _alive(job_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(job_pid), "the job outlived its client"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("address", [None, "@msdefense-jobs-nobody-listens-here"])
def test_without_a_server_the_job_runs_in_its_own_process(tmp_path, address) -> None:
    client = _client(tmp_path, address, wait=False)
    assert client.wait(timeout=120) == 0
    report = _report(tmp_path)
    assert report["pid"] == client.pid
    assert report["marker"] == "from-the-client"
    assert report["cwd"] == str(tmp_path)


def test_a_slurm_job_never_uses_the_server(server, tmp_path) -> None:
    client = _client(tmp_path, server[0], wait=False, env_extra={"SLURM_JOB_ID": "1"})
    assert client.wait(timeout=120) == 0
    assert _report(tmp_path)["pid"] == client.pid
