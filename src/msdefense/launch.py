"""Run Snakemake so that a killed run resumes by itself: ``python -m msdefense.launch <snakemake args>``.

Snakemake locks its working folder while it runs; a run killed with SIGKILL leaves the lock
behind, and every later run stops with ``LockException`` until someone runs ``--unlock``.
This launcher holds an OS lock (``flock``) on ``.snakemake/msdefense-run.lock`` for the life of
the run: the lock passes to the Snakemake process and dies with it, whatever kills it. When the
next run gets that lock and no other Snakemake process works in the same folder, Snakemake's
leftover locks are stale: it unlocks them, then runs; the profile's ``rerun-incomplete`` redoes
the jobs that were cut off, and finished jobs are kept. A second run while one is alive is
refused with its process id. ``make run`` goes through here.

For a run that executes jobs, the launcher also starts the run's job server
(:mod:`msdefense.jobserver`: torch and the package imported once, every local job a fork of it;
it dies with the launcher)
and stops it when Snakemake exits; ``--no-job-server`` (before the Snakemake arguments) runs
every job in a fresh process instead.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

LOCK_FILE = ".snakemake/msdefense-run.lock"
#: how long to wait for the lock: a run killed a moment ago may still be exiting
LOCK_WAIT_SECONDS = 10.0


def _lock(fd: int, *, wait: float) -> bool:
    """Take the exclusive OS lock on ``fd``, waiting up to ``wait`` seconds; False if still held."""
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)


def _workdir(args: list[str]) -> Path:
    """The folder Snakemake works in: ``--directory``/``-d`` if given, else the current one."""
    for i, arg in enumerate(args):
        if arg in ("--directory", "-d") and i + 1 < len(args):
            return Path(args[i + 1]).resolve()
        if arg.startswith("--directory="):
            return Path(arg.split("=", 1)[1]).resolve()
    return Path.cwd().resolve()


def other_snakemake_processes(workdir: Path) -> list[int]:
    """Process ids of Snakemake runs (not their jobs) working in ``workdir``, other than ours
    (Linux ``/proc``; elsewhere an empty list, and the OS lock alone decides)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if int(proc.name) == os.getpid():
                continue
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            cwd = (proc / "cwd").resolve()
        except (OSError, ValueError):
            continue
        is_snakemake = any(a.endswith(b"/snakemake") or a == b"snakemake" for a in argv[:2])
        is_job = b"--mode" in argv  # a cluster/job-step Snakemake inside a job, not a run
        if is_snakemake and not is_job and (cwd == workdir or str(workdir).encode() in argv):
            found.append(int(proc.name))
    return found


def snakemake_command(args: list[str]) -> list[str]:
    """Snakemake of this interpreter's environment."""
    return [str(Path(sys.executable).parent / "snakemake"), *args]


#: Snakemake arguments of invocations that run no job (no job server for them)
NO_JOBS = frozenset(
    {"-n", "--dry-run", "--dryrun", "--lint", "--unlock", "--report", "--list-rules", "--dag"}
)


def _snakefile_dir(args: list[str], workdir: Path) -> Path:
    """The workflow's folder: that of ``--snakefile``/``-s`` if given, else the working folder."""
    for i, arg in enumerate(args):
        if arg in ("--snakefile", "-s") and i + 1 < len(args):
            return Path(args[i + 1]).resolve().parent
        if arg.startswith("--snakefile="):
            return Path(arg.split("=", 1)[1]).resolve().parent
    return workdir


#: the modules the job server imports before it forks: every stage and what stages import lazily
PRELOAD = (
    "torch",
    "torchvision",
    "pandas",
    "msdefense.stages.answers",
    "msdefense.stages.attacks",
    "msdefense.stages.data",
    "msdefense.stages.defender_models",
    "msdefense.stages.latency",
    "msdefense.stages.tables",
    "msdefense.stages.victims",
    "msdefense.attacks",
    "msdefense.quantization",
    "msdefense.misleader",
    "msdefense.reporting",
)
#: what the server computes once before it forks, as ``module:function`` (cached in the module):
#: the photographs the photo-crop transfer sets are cut from. Nothing here may run a torch
#: operation: a thread pool started before ``fork`` is unusable in the children (a job with two
#: threads hangs), so the server imports torch but never computes with it.
WARM = ("msdefense.data.transfer:_sample_photo_arrays",)


def job_server_command(address: str) -> list[str]:
    """The command that starts the run's job server on ``address``, tied to this process."""
    cmd = [sys.executable, "-m", "msdefense.jobserver", address, "--parent", str(os.getpid())]
    cmd += [f"--preload={m}" for m in PRELOAD] + [f"--warm={w}" for w in WARM]
    return cmd


def start_job_server(args: list[str], workdir: Path) -> tuple[subprocess.Popen | None, dict[str, str]]:
    """Start the run's job server (none for a run without jobs); the environment for Snakemake."""
    from .deployment import job_pythonpath
    from .jobclient import ENV, new_address

    env = dict(os.environ)
    if any(a.split("=", 1)[0] in NO_JOBS for a in args):
        env.pop(ENV, None)
        return None, env
    address = new_address()
    server_env = {**env, "PYTHONPATH": job_pythonpath(_snakefile_dir(args, workdir), env)}
    server = subprocess.Popen(
        job_server_command(address), env=server_env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    env[ENV] = address
    return server, env


def stop_job_server(server: subprocess.Popen | None, env: Mapping[str, str]) -> None:
    """Stop the run's job server and remove its socket's folder."""
    from .jobclient import ENV

    if server is None:
        return
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    if env.get(ENV):
        shutil.rmtree(Path(env[ENV]).parent, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    use_server = "--no-job-server" not in args
    args = [a for a in args if a != "--no-job-server"]
    workdir = _workdir(args)
    lock_path = workdir / LOCK_FILE
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        print(
            f"msdefense: cannot write in {lock_path.parent} ({exc.strerror}): Snakemake keeps its locks and "
            f"records there, so a run needs a writable folder; to read a finished run that you may not "
            f"change, copy the folder (with its .snakemake/ and results/) somewhere writable and run there",
            file=sys.stderr,
        )
        return 1
    if not _lock(fd, wait=LOCK_WAIT_SECONDS):
        holder = Path(lock_path).read_text().strip() or "unknown"
        print(
            f"msdefense: another run of this workflow is working in {workdir} (process {holder}); "
            f"wait for it to finish or stop it, then run again",
            file=sys.stderr,
        )
        return 1
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    others = other_snakemake_processes(workdir)
    if others:
        print(
            f"msdefense: Snakemake is already running in {workdir} (process {', '.join(map(str, others))}); "
            f"wait for it to finish or stop it, then run again",
            file=sys.stderr,
        )
        return 1
    if any((workdir / ".snakemake" / "locks").glob("*.lock")):
        print("msdefense: removing the locks of an interrupted run (no other run is alive)", file=sys.stderr)
        unlock = subprocess.run(snakemake_command([*args, "--unlock"]), pass_fds=(fd,))
        if unlock.returncode != 0:
            return unlock.returncode
    server, env = start_job_server(args, workdir) if use_server else (None, dict(os.environ))
    try:
        # the Snakemake process inherits the locked descriptor: the lock lives as long as the run
        return subprocess.run(snakemake_command(args), pass_fds=(fd,), env=env).returncode
    finally:
        stop_job_server(server, env)


if __name__ == "__main__":
    sys.exit(main())
