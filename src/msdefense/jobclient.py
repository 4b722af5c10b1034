"""What a workflow script runs: its stage, in a fork of the run's job server when there is one.

The server (:mod:`msdefense.jobserver`, started by ``msdefense.launch``) listens on a Unix socket
in a folder only the run's user can enter (:func:`new_address`) and serves only that user. A job
hands it a description of itself (plain JSON data) and its three standard streams; the server
forks, the child answers :data:`ACCEPTED` and runs the stage exactly as the job would have, then
reports the exit status. A job that cannot reach the server, or whose server fails before it
accepted the job (gone, killed, refusing), runs in its own process instead. The client stays
alive for the job's whole life, so Snakemake's timing, cancellation and failure handling see it
as the job; the child kills itself when the client is gone.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import struct
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

#: the environment variable naming the server's socket (set by msdefense.launch for its run)
ENV = "MSDEFENSE_JOB_SERVER"
#: the byte a server's child sends once it has the job (before it, a failure means "run it here")
ACCEPTED = b"A"
HEADER = struct.Struct("!Q")
MAX_MESSAGE = 64 << 20
SOCKET_NAME = "jobs.sock"
#: a file to which every job run here appends its target, wildcards and the package modules it
#: imported (one JSON line; tests/test_fingerprint.py checks them against the code fingerprint)
MODULES_LOG = "MSDEFENSE_MODULES_LOG"


def new_address() -> str:
    """A socket path in a new folder that only this user can enter (mode 0700)."""
    return str(Path(tempfile.mkdtemp(prefix="msdefense-")) / SOCKET_NAME)


# ----------------------------------------------------------------------------------------------
# the job as plain data


def _plain(value: Any) -> Any:
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
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
        "resources": {"gpu": int(_named(getattr(sm, "resources", None)).get("gpu", 0))},
    }


def job_object(description: Mapping[str, Any]) -> SimpleNamespace:
    return SimpleNamespace(**description)


def run_local(target: str, sm: Any) -> Any:
    """Run stage ``target`` (``module:function``) for job ``sm`` in this process."""
    module, name = target.split(":")
    from .stages.context import run_rule

    try:
        return run_rule(getattr(importlib.import_module(module), name), sm)
    finally:
        if os.environ.get(MODULES_LOG):
            loaded = sorted(m for m in sys.modules if m == "msdefense" or m.startswith("msdefense."))
            line = json.dumps({"target": target, "wildcards": _named(sm.wildcards), "modules": loaded})
            with open(os.environ[MODULES_LOG], "a", encoding="utf-8") as log:
                log.write(line + "\n")


# ----------------------------------------------------------------------------------------------
# the wire


def send_message(sock: socket.socket, payload: bytes, fds: list[int]) -> None:
    data = HEADER.pack(len(payload)) + payload
    sent = socket.send_fds(sock, [data[:65536]], fds)
    sock.sendall(data[sent:])


def receive_message(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """A job description and the descriptors sent with it (ConnectionError on anything else)."""
    data, fds, _flags, _addr = socket.recv_fds(conn, 65536, 3)
    fds = list(fds)
    try:
        if len(data) < HEADER.size:
            raise ConnectionError("short header")
        (size,) = HEADER.unpack_from(data)
        if size > MAX_MESSAGE:
            raise ConnectionError(f"job description of {size} bytes")
        body = data[HEADER.size :]
        while len(body) < size:
            chunk = conn.recv(min(1 << 20, size - len(body)))
            if not chunk:
                raise ConnectionError("connection closed mid-message")
            body += chunk
        if len(fds) != 3:
            raise ConnectionError(f"{len(fds)} descriptors instead of the 3 standard streams")
        return json.loads(body), fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def _remote(address: str, target: str, sm: Any) -> int | None:
    """Run the job in a fork of the server: its exit status, or None when no server took it."""
    try:
        payload = json.dumps(
            {"target": target, "cwd": os.getcwd(), "env": dict(os.environ), "job": job_description(sm)}
        ).encode()
    except (TypeError, ValueError):
        return None  # something in the job is not plain data: run it here
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with sock:
        try:
            sock.connect(address)
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            send_message(sock, payload, [0, 1, 2])
            accepted = sock.recv(1)
        except OSError:
            accepted = b""
        if accepted != ACCEPTED:
            if os.path.exists(address):
                print(f"msdefense: the job server did not take {target}; running it here", file=sys.stderr)
            return None
        reply = b""
        try:
            while chunk := sock.recv(4096):
                reply += chunk
        except OSError:
            reply = b""
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
    return run_local(target, sm)
