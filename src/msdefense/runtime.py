"""Process set-up shared by the workflow scripts: log redirection and thread count."""

from __future__ import annotations

import contextlib
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

import torch


@contextlib.contextmanager
def job(log_path: str | Path | None, threads: int = 1) -> Iterator[None]:
    """Send stdout/stderr (progress bars included) to ``log_path`` and use ``threads`` CPU threads.

    An exception is written to the log with its traceback and re-raised, so Snakemake marks the
    job failed and removes its outputs. A job that succeeds records its peak GPU memory beside
    the log (``tables/resources.csv``: :mod:`msdefense.reporting.resources`).
    """
    torch.set_num_threads(max(1, int(threads)))
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
    save_json({"peak_gpu_mib": round(peak / 2**20, 1)}, gpu_peak_path(log_path))
