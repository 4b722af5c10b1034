"""One process imports torch and the package once; every local job of a run is a fork of it.

A workflow job is a fresh Python process, and importing torch, torchvision, pandas and the
package costs it 2–4 s of one core before any work (``benchmarks/bench_workflow.py --only
startup``); the default experiment runs about a hundred such jobs. :func:`serve` imports all of
that once (what ``msdefense.launch`` asks it to preload) and then waits on a Unix socket; a job
(:func:`msdefense.jobclient.run_job`) hands itself over, the server forks, and the child takes
the job's standard streams, working folder and environment, runs the stage through
:func:`msdefense.stages.context.run_rule` exactly as the job would have, and reports its exit
status. Results do not depend on the route: every stage seeds its own random streams, and the
server touches none before forking.

Only the run can use it:

- the socket lies in a folder of mode 0700 (:func:`msdefense.jobclient.new_address`), and a
  connection from any other user id is closed unread (``SO_PEERCRED``);
- the server forks before it reads a job, and the child gives the client
  :data:`HANDSHAKE_SECONDS` to send it: an idle connection stalls nothing;
- the server dies with the process that started it (``PR_SET_PDEATHSIG``, and a check of its
  parent at start), and removes its socket and folder when it stops;
- a job whose server is gone or fails before taking it runs in its own process.

The child kills itself when its client is gone (a cancelled or killed job leaves no orphan), and
writes its own peak resident memory beside the job's log, since Snakemake's benchmark sees only
the client's.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib
import json
import os
import signal
import socket
import struct
import sys
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .jobclient import ACCEPTED, SOCKET_NAME, job_object, receive_message, run_local

#: seconds a connected client has to send its job before the child closes the connection
HANDSHAKE_SECONDS = 30.0
_PR_SET_PDEATHSIG = 1


def peer_uid(conn: socket.socket) -> int:
    """The user id of the process at the other end of the Unix socket ``conn``."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def _die_with_parent(parent: int) -> None:
    """Have the kernel send this process SIGTERM when ``parent`` dies (Linux); exit if it already has."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        sys.exit(0)


def _watch(conn: socket.socket) -> None:
    """Kill this job when its client is gone (Snakemake cancelled or killed the job)."""
    with contextlib.suppress(OSError):
        conn.recv(1)
    os.kill(os.getpid(), signal.SIGKILL)


def _child(conn: socket.socket) -> None:
    """Receive one job on ``conn``, take it, run it and report its exit status; never returns."""
    rc = 1
    try:
        conn.settimeout(HANDSHAKE_SECONDS)
        try:
            message, fds = receive_message(conn)
            conn.sendall(ACCEPTED)
        except (OSError, ValueError):
            os._exit(1)
        conn.settimeout(None)
        for target, fd in zip((0, 1, 2), fds, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(message["cwd"])
        os.environ.clear()
        os.environ.update(message["env"])
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        threading.Thread(target=_watch, args=(conn,), daemon=True).start()
        run_local(message["target"], job_object(message["job"]))
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


def _remove(address: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(address)
    if Path(address).name == SOCKET_NAME:
        with contextlib.suppress(OSError):
            os.rmdir(Path(address).parent)


def serve(
    address: str, *, preload: Sequence[str] = (), warm: Sequence[str] = (), parent: int | None = None
) -> None:
    """Import ``preload``, call ``warm`` (``module:function`` each), listen on the socket path
    ``address`` and fork a child per connection of this user until terminated (or ``parent`` dies)."""
    if parent is not None:
        _die_with_parent(parent)
    for name in preload:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    imported = _os_threads()  # BLAS pools started by imports re-create themselves after fork
    for target in warm:
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
    folder = Path(address).parent
    if folder.stat().st_uid != os.getuid() or folder.stat().st_mode & 0o077:
        print(
            f"msdefense: job server not started ({folder} is not a private folder of this user)",
            file=sys.stderr,
        )
        return
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel

    def stop(*_: Any) -> None:
        _remove(address)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    while True:
        conn, _ = listener.accept()
        try:
            allowed = peer_uid(conn) == os.getuid()
        except OSError:
            allowed = False
        if allowed and os.fork() == 0:
            listener.close()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            _child(conn)
        conn.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m msdefense.jobserver")
    parser.add_argument("address", help="the socket path (in a folder of mode 0700)")
    parser.add_argument("--parent", type=int, help="stop when this process dies")
    parser.add_argument("--preload", action="append", default=[], help="a module to import first")
    parser.add_argument("--warm", action="append", default=[], help="module:function to call first")
    args = parser.parse_args(argv)
    serve(args.address, preload=args.preload, warm=args.warm, parent=args.parent)


if __name__ == "__main__":
    main()
