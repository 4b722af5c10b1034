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
    print("stage ran", flush=True)
    time.sleep(request.seconds)
    if request.fail:
        raise RuntimeError("this stage fails on purpose")
