"""Stages for tests/test_jobserver.py: they report where they ran (the job server imports them)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class WhereRequest:
    seconds: float = 0.0
    fail: bool = False
    compute: bool = False
    out_report: str


def where(request: WhereRequest) -> None:
    """Write this process's id, parent, working folder and the test's variable; then sleep or fail."""
    report = {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "cwd": os.getcwd(),
        "marker": os.environ.get("JOBSERVER_TEST_MARKER"),
    }
    with open(request.out_report, "w") as handle:
        json.dump(report, handle)
    if request.compute:  # parallel kernels on the job's threads (msdefense.runtime.job set them)
        import torch

        a = torch.randn(512, 512)
        report["threads"] = torch.get_num_threads()
        report["checksum"] = float(
            (a @ a).sum()
            + torch.nn.functional.conv2d(a.view(1, 1, 512, 512), a[:3, :3].view(1, 1, 3, 3)).sum()
        )
        with open(request.out_report, "w") as handle:
            json.dump(report, handle)
    print("stage ran", flush=True)
    time.sleep(request.seconds)
    if request.fail:
        raise RuntimeError("this stage fails on purpose")
