"""Process set-up of a workflow job: the allocator keeps freed memory (msdefense.runtime)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

CHURN = """
import json, resource, sys
import torch
from msdefense.runtime import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
def churn():
    for _ in range(10):
        a = torch.ones(10 << 20)  # 40 MiB: above glibc's largest dynamic mmap threshold (32 MiB)
        b = torch.ones(1 << 20)
        del a, b
churn()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
churn()
print(json.dumps({"kept": kept, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def _churn(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHURN, mode], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_kept_memory_is_reused_without_page_faults() -> None:
    default, kept = _churn("default"), _churn("keep")
    assert kept["kept"] is True
    # glibc's defaults map and unmap every 40 MiB block: ~10,000 faults per allocation
    assert default["faults"] > 10 * 5_000
    assert kept["faults"] < 1_000
