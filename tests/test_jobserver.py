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

from msdefense.jobclient import ENV, new_address

ROOT = Path(__file__).resolve().parents[1]
TARGET = "jobserver_stages:where"
CLIENT = """
import json, sys
from types import SimpleNamespace
from msdefense.jobclient import run_job
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
    address = new_address()
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
    assert _gone_after_killing(client, job_pid), "the job outlived its client"


def _gone_after_killing(process: subprocess.Popen, pid: int, *, seconds: float = 20) -> bool:
    """Kill ``process`` (SIGKILL) and wait up to ``seconds`` for the process ``pid`` to be gone."""
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("address", [None, "/nonexistent/msdefense-nobody-listens-here/jobs.sock"])
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


# ----------------------------------------------------------------------------------------------
# only the run can use it; it dies with its launcher; a lost handover runs the job here

NOBODY = 65534
RAW_CLIENT = """
import json, socket, sys
from msdefense.jobclient import ACCEPTED, send_message
payload = json.dumps({"target": "jobserver_stages:where", "cwd": sys.argv[2], "env": {},
                      "job": {"wildcards": {}, "params": {}, "input": {}, "log": [], "threads": 1,
                              "output": {"report": sys.argv[3]}}}).encode()
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    sock.connect(sys.argv[1])
    send_message(sock, payload, [0, 1, 2])
    print("accepted" if sock.recv(1) == ACCEPTED else "refused")
except OSError as exc:
    print("refused", type(exc).__name__)
"""


def _as_nobody(cmd: list[str]) -> list[str]:
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *cmd]


@pytest.fixture
def nobody_dir():
    """A folder the other user can read (the checkout and the venv may lie under a private home):
    the stdlib-only modules its processes import, and a world-writable ``shared/``; the base
    interpreter (not the venv's) runs them."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="msdefense-nobody-"))
    os.chmod(folder, 0o755)
    package = folder / "pkg" / "msdefense"
    package.mkdir(parents=True)
    for name in ("__init__.py", "jobclient.py", "launch.py"):
        shutil.copy(ROOT / "src" / "msdefense" / name, package / name)
    for d in (folder / "pkg", package):
        os.chmod(d, 0o755)
    (folder / "shared").mkdir(mode=0o777)
    os.chmod(folder / "shared", 0o777)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(folder / "pkg")}
    python = os.path.realpath(sys.executable)
    probe = subprocess.run(
        _as_nobody([python, "-c", "import msdefense.jobclient"]),
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"the other user cannot run {python} here: {probe.stderr.strip()[-200:]}")
    yield folder, env, python
    shutil.rmtree(folder, ignore_errors=True)


needs_root = pytest.mark.skipif(
    os.getuid() != 0 or not Path("/usr/bin/setpriv").exists(),
    reason="needs root and setpriv to act as another user",
)


@needs_root
@pytest.mark.parametrize("folder_mode", [0o700, 0o755])
def test_another_user_cannot_get_a_job_run_by_the_server(server, nobody_dir, folder_mode) -> None:
    """The socket's folder keeps other users out (0700); opened up (folder 0755, socket 0777), the
    server still closes their connection unread (peer credentials): the job never runs."""
    address, _ = server
    folder = Path(address).parent
    os.chmod(folder, folder_mode)
    os.chmod(address, 0o777 if folder_mode != 0o700 else 0o755)
    folder_of_nobody, env, python = nobody_dir
    shared = folder_of_nobody / "shared"
    report = shared / "report.json"
    try:
        done = subprocess.run(
            _as_nobody([python, "-c", RAW_CLIENT, address, str(shared), str(report)]),
            env=env,
            cwd=folder_of_nobody,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.chmod(folder, 0o700)
    assert done.stdout.startswith("refused"), done.stdout + done.stderr
    # through an open folder the connection is made, and refused by the server, not by the kernel
    assert ("PermissionError" in done.stdout) == (folder_mode == 0o700), done.stdout
    time.sleep(0.5)
    assert not report.exists()


def test_an_idle_connection_stalls_no_other_job(server, tmp_path) -> None:
    import socket

    idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    idle.connect(server[0])  # connected, sends nothing
    try:
        started = time.monotonic()
        done = _client(tmp_path, server[0])
        assert done.returncode == 0, done.stderr
        assert _report(tmp_path)["ppid"] == server[1]
        assert time.monotonic() - started < 25  # well under the handshake limit the idle one gets
    finally:
        idle.close()


def test_the_server_dies_with_the_process_that_started_it(tmp_path) -> None:
    launcher = (
        "import subprocess, sys, time\n"
        "from msdefense.jobclient import new_address\n"
        "from msdefense.launch import job_server_command\n"
        "server = subprocess.Popen(job_server_command(new_address())[:6], stdout=subprocess.PIPE, text=True)\n"
        "assert server.stdout.readline().strip() == 'ready'\n"
        "print(server.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", launcher], env=_env(), stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    server_pid = int(parent.stdout.readline())
    assert _alive(server_pid)
    assert _gone_after_killing(parent, server_pid), "the job server outlived its launcher"


def test_a_job_whose_server_fails_before_taking_it_runs_in_its_own_process(tmp_path) -> None:
    """A server that dies during the handover (here: one that accepts and closes): no
    ConnectionResetError, the job runs in the client's process."""
    import socket
    import threading

    address = new_address()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(4)

    def drop() -> None:
        conn, _ = listener.accept()
        conn.close()

    threading.Thread(target=drop, daemon=True).start()
    try:
        client = _client(tmp_path, address, wait=False)
        assert client.wait(timeout=120) == 0
        assert _report(tmp_path)["pid"] == client.pid
    finally:
        listener.close()


@needs_root
def test_a_run_in_a_folder_the_user_cannot_write_is_refused_with_a_message(nobody_dir) -> None:
    """``make run`` on a finished run of someone else's (read-only to this user): a clear message
    naming the folder, not a traceback."""
    base, env, python = nobody_dir
    folder = base / "finished"
    (folder / ".snakemake").mkdir(parents=True)
    for d in (folder, folder / ".snakemake"):
        os.chmod(d, 0o755)
    done = subprocess.run(
        _as_nobody([python, "-m", "msdefense.launch", "-n"]),
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"cannot write in {folder / '.snakemake'}" in done.stderr and "copy the folder" in done.stderr
