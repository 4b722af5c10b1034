"""Process set-up shared by the workflow scripts: log redirection, thread count, allocator."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import resource
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

import torch

# glibc's malloc returns a freed block above its (dynamic) mmap threshold, or the freed top of the
# heap above its trim threshold, to the kernel; the next tensor of that size then pays a page fault
# per 4 KiB page on first touch. Training and answering loops free and reallocate the same few
# megabyte-sized activations every step: a MAZE iteration took about 19,000 page faults and ran
# 1.3x slower for it (benchmarks/bench_workflow.py, "allocator"). Keeping freed memory in the heap
# removes them; the peak resident memory stays that of the largest step.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
KEEP_BYTES = 1 << 30


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed memory (blocks below 1 GiB) for reuse instead of returning
    it to the kernel. True when set; False where the C library is not glibc (nothing changes)."""
    name = ctypes.util.find_library("c")
    if name is None or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, KEEP_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_BYTES))


@contextlib.contextmanager
def job(log_path: str | Path | None, threads: int = 1) -> Iterator[None]:
    """Send stdout/stderr (progress bars included) to ``log_path`` and use ``threads`` CPU threads.

    An exception is written to the log with its traceback and re-raised, so Snakemake marks the
    job failed and removes its outputs. A job that succeeds records its peak GPU memory beside
    the log (``tables/resources.csv``: :mod:`msdefense.reporting.resources`). Freed memory stays
    with the process (:func:`keep_freed_memory`).
    """
    torch.set_num_threads(max(1, int(threads)))
    keep_freed_memory()
    if log_path is None:
        yield
        return
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with (
        open(log_path, "w", buffering=1) as log,
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        try:
            yield
        except BaseException:
            traceback.print_exc(file=log)
            print(f"job failed; see {log_path}", file=sys.__stderr__)
            raise
    _record_gpu_peak(log_path)


def _record_gpu_peak(log_path: str | Path) -> None:
    from .io import save_json
    from .layout import gpu_peak_path

    peak = 0
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        peak = max(torch.cuda.max_memory_allocated(i) for i in range(torch.cuda.device_count()))
    # the job's own host peak too: a job forked by the job server is not in the process tree
    # that Snakemake's benchmark measures (msdefense.jobserver)
    host = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    save_json(
        {"peak_gpu_mib": round(peak / 2**20, 1), "peak_host_mib": round(host, 1)}, gpu_peak_path(log_path)
    )
