"""One process imports torch and the package once; every local job of a run is a fork of it.

A workflow job is a fresh Python process, and importing torch, torchvision, pandas and the
package costs it 2–4 s of one core before any work (``benchmarks/bench_workflow.py --only
startup``); the default experiment runs about a hundred such jobs. :func:`serve` imports all of
that once and then waits on a Unix socket (Linux abstract namespace, nothing on disk);
:func:`run_job`, what the workflow scripts call, hands the job to it when the run was started by
``msdefense.launch`` (which starts the server and exports :data:`ENV`): the server forks, the child
takes the job's standard streams, working folder and environment, runs the stage through
:func:`msdefense.stages.context.run_rule` exactly as the job would have, and reports its exit
status. Without a server (plain ``snakemake``, a SLURM job, a server that is gone) the job runs in
its own process as before. Results do not depend on the route: every stage seeds its own random
streams, and the server touches none before forking.

The client stays alive for the job's whole life, so Snakemake's timing, cancellation and
failure handling see it as the job; the child watches the connection and kills itself when the
client is gone (a cancelled or killed job leaves no orphan). The child writes its own peak
resident memory beside the job's log, since Snakemake's benchmark sees only the client's.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import signal
import socket
import struct
import sys
import threading
import traceback
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

#: the environment variable naming the server's socket (set by msdefense.launch for its run)
ENV = "MSDEFENSE_JOB_SERVER"
#: the modules the server imports before it forks: every stage and what stages import lazily
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
_HEADER = struct.Struct("!Q")
_MAX_HEADER = 64 << 20


def address_for(workdir: str | Path, pid: int) -> str:
    """The server address of the run in ``workdir`` started by ``pid``: ``@name``, an abstract
    Unix socket (the ``@`` stands for the leading NUL, which no environment variable can hold)."""
    digest = hashlib.sha1(str(Path(workdir).resolve()).encode()).hexdigest()[:16]
    return f"@msdefense-jobs-{digest}-{pid}"


def _sockaddr(address: str) -> str:
    return "\0" + address[1:] if address.startswith("@") else address


# ----------------------------------------------------------------------------------------------
# the job as plain data


def _plain(value: Any) -> Any:
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _named(entries: Any) -> dict[str, Any]:
    if entries is None:
        return {}
    if isinstance(entries, Mapping):
        return _plain(dict(entries))
    return {k: _plain(entries[k]) for k in entries.keys()}  # noqa: SIM118 (Snakemake's Namedlist)


def job_description(sm: Any) -> dict[str, Any]:
    """What :func:`msdefense.stages.context.run_rule` reads of a Snakemake job, as JSON data."""
    return {
        "wildcards": _named(sm.wildcards),
        "params": _named(sm.params),
        "input": _named(sm.input),
        "output": _named(sm.output),
        "log": [str(p) for p in (sm.log or [])],
        "threads": int(sm.threads),
    }


def _job_object(description: Mapping[str, Any]) -> SimpleNamespace:
    return SimpleNamespace(**description)


def _run_local(target: str, sm: Any) -> Any:
    module, name = target.split(":")
    from .stages.context import run_rule

    return run_rule(getattr(importlib.import_module(module), name), sm)


# ----------------------------------------------------------------------------------------------
# client


def _send(sock: socket.socket, payload: bytes, fds: list[int]) -> None:
    data = _HEADER.pack(len(payload)) + payload
    sent = socket.send_fds(sock, [data[:65536]], fds)
    if sent < min(len(data), 65536):
        sock.sendall(data[sent:65536])
    if len(data) > 65536:
        sock.sendall(data[65536:])


def _remote(address: str, target: str, sm: Any) -> int | None:
    """Run the job in a fork of the server; its exit status, or None when no server answers."""
    try:
        payload = json.dumps(
            {"target": target, "cwd": os.getcwd(), "env": dict(os.environ), "job": job_description(sm)}
        ).encode()
    except (TypeError, ValueError):
        return None  # something in the job is not plain data: run it here
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(_sockaddr(address))
    except OSError:
        sock.close()
        return None
    with sock:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        _send(sock, payload, [0, 1, 2])
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    if not reply:
        print(f"msdefense: the job server lost this job ({target}); see its log", file=sys.stderr)
        return 1
    return int(json.loads(reply)["rc"])


def run_job(target: str, sm: Any) -> Any:
    """Run stage ``target`` (``module:function``) for the Snakemake job ``sm``: in a fork of the
    run's job server when there is one, else in this process. A failed job exits non-zero."""
    address = os.environ.get(ENV)
    if address and "SLURM_JOB_ID" not in os.environ:
        rc = _remote(address, target, sm)
        if rc is not None:
            if rc:
                sys.exit(rc)
            return None
    return _run_local(target, sm)


# ----------------------------------------------------------------------------------------------
# server


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    data, fds, _flags, _addr = socket.recv_fds(conn, 65536, 3)
    if len(data) < _HEADER.size:
        raise ConnectionError("short header")
    (size,) = _HEADER.unpack_from(data)
    if size > _MAX_HEADER:
        raise ConnectionError(f"job description of {size} bytes")
    body = data[_HEADER.size :]
    while len(body) < size:
        chunk = conn.recv(min(1 << 20, size - len(body)))
        if not chunk:
            raise ConnectionError("connection closed mid-message")
        body += chunk
    return json.loads(body), list(fds)


def _watch(conn: socket.socket) -> None:
    """Kill this job when its client is gone (Snakemake cancelled or killed the job)."""
    with contextlib.suppress(OSError):
        conn.recv(1)
    os.kill(os.getpid(), signal.SIGKILL)


def _child(conn: socket.socket, message: dict[str, Any], fds: list[int]) -> None:
    rc = 1
    try:
        for target, fd in zip((0, 1, 2), fds, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(message["cwd"])
        os.environ.clear()
        os.environ.update(message["env"])
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        threading.Thread(target=_watch, args=(conn,), daemon=True).start()
        _run_local(message["target"], _job_object(message["job"]))
        rc = 0
    except SystemExit as stop:
        rc = stop.code if isinstance(stop.code, int) else 1
    except BaseException:  # the job's log already holds the traceback (msdefense.runtime.job)
        traceback.print_exc()
        rc = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        try:
            conn.sendall(json.dumps({"rc": rc}).encode())
        finally:
            os._exit(rc)


def _os_threads() -> int:
    """Threads of this process (Linux ``/proc``; 1 where it cannot be read)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def serve(address: str) -> None:
    """Import :data:`PRELOAD`, compute :data:`WARM`, listen on ``address`` and fork a child per
    job until terminated."""
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    imported = _os_threads()  # BLAS pools started by imports re-create themselves after fork
    for target in WARM:
        module, function = target.split(":")
        with contextlib.suppress(Exception):  # a job that needs it computes it itself
            getattr(importlib.import_module(module), function)()
    warmed = _os_threads()
    if warmed > imported:  # e.g. torch's OpenMP pool: the children's parallel kernels would hang
        print(
            f"msdefense: job server not started (the warm-up started {warmed - imported} threads)",
            file=sys.stderr,
        )
        return
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(_sockaddr(address))
    listener.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print("ready", flush=True)
    while True:
        conn, _ = listener.accept()
        try:
            message, fds = _receive(conn)
        except (ConnectionError, OSError, ValueError):
            conn.close()
            continue
        if os.fork() == 0:
            listener.close()
            _child(conn, message, fds)
        for fd in fds:
            os.close(fd)
        conn.close()


if __name__ == "__main__":
    serve(sys.argv[1])
