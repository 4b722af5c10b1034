"""The SLURM profile against a real SLURM: a single-node cluster on localhost (.ci/local-slurm.sh).

The tiny experiment runs through ``--workflow-profile profiles/slurm`` with one GPU per GPU job
(fake GPUs in gres.conf, so the requests are really scheduled; with ``MSDEFENSE_FAKE_GPUS=1`` the
jobs compute on the CPU instead of stopping for want of CUDA).
Checked from ``squeue``: every job that is not a local rule ran as a SLURM job, in the partition
the profile gives its rule, with the GPU count the rule declares; the tables equal a local run's.
Skipped, with the reason, where SLURM is not installed or the test is not root.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_runs import ROOT, TINY_CONFIG, UNTIMED_TABLES, limit, run_tiny, untimed_cells

from msdefense.resources import LOCAL_RULES, RULES

pytestmark = [
    pytest.mark.workflow,
    pytest.mark.skipif(
        shutil.which("slurmctld", path=os.environ["PATH"] + ":/usr/sbin") is None,
        reason="SLURM is not installed: apt-get install -y --no-install-recommends "
        "slurmctld slurmd slurm-client munge (what .ci/run does)",
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="starting slurmctld/slurmd needs root"),
]
SCRIPT = ROOT / ".ci" / "local-slurm.sh"
PROFILE = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())


@pytest.fixture(scope="module")
def cluster():
    start = subprocess.run(
        ["timeout", "-k", "10", "120", str(SCRIPT), "start"], capture_output=True, text=True
    )
    assert start.returncode == 0, start.stdout + start.stderr
    try:
        yield
    finally:
        subprocess.run(["timeout", "-k", "10", "60", str(SCRIPT), "stop"], capture_output=True, text=True)


def _planned_jobs(workdir: Path) -> Counter:
    """Jobs per rule that a run of the tiny config plans (from a dry run in an empty folder)."""
    proc = run_tiny(workdir, "--cores", "2", "--dry-run", "--quiet", "rules", timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = re.findall(r"^([a-z_]+)\s+(\d+)\s*$", proc.stdout + proc.stderr, flags=re.MULTILINE)
    return Counter({rule: int(n) for rule, n in rows if rule not in ("total", "all")})


def _squeue() -> list[dict[str, str]]:
    # `tres-per-job` is the --Format name (SLURM 22.05 and later); it reads `gres:gpu:1` for --gpus=1
    fields = "JobID:30,State:20,Partition:30,Comment:300,tres-per-job:60"
    out = subprocess.run(
        ["squeue", "--states=all", "-h", "--Format", fields, "--noheader"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = ["id", "state", "partition", "comment", "tres"]
    return [dict(zip(names, line.split(), strict=False)) for line in out.splitlines() if line.strip()]


def test_tiny_run_on_slurm_schedules_every_job_as_its_rule_declares(
    cluster, tmp_path: Path, tiny_run: Path
) -> None:
    workdir = tmp_path / "slurm"
    workdir.mkdir()
    # one GPU per GPU-capable job (in the file: --config would pass the nested numbers as strings);
    # the first seed only (every rule still runs; half the jobs: each is a Snakemake inside srun)
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config["resources"] = {**config.get("resources", {}), "gpu": 1}
    config["seeds"] = seeds = config["seeds"][:1]
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    planned = _planned_jobs(workdir)
    before = {job["id"] for job in _squeue()}
    proc = run_tiny(
        workdir,
        "--workflow-profile",
        str(ROOT / "profiles" / "slurm"),
        "--slurm-status-command",
        "squeue",
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--slurm-keep-successful-logs",
        timeout=limit(3600),
        env={"MSDEFENSE_FAKE_GPUS": "1"},  # the jobs inherit it: compute on the CPU knowingly
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    jobs = [job for job in _squeue() if job["id"] not in before]
    ran = Counter()
    for job in jobs:
        rule = re.match(r"rule_([a-z_]+?)(_wildcards_.*)?$", job["comment"]).group(1)
        ran[rule] += 1
        assert job["state"] == "COMPLETED", job
        partition = PROFILE["set-resources"].get(rule, {}).get("slurm_partition")
        assert job["partition"] == (partition or PROFILE["default-resources"]["slurm_partition"]), job
        gpus = re.search(r"gpu[:=](\d+)", job.get("tres", ""))
        assert (int(gpus.group(1)) if gpus else 0) == (1 if RULES[rule].gpu else 0), job
    remote = Counter({r: n for r, n in planned.items() if r not in LOCAL_RULES})
    assert ran == remote  # every non-local job was a SLURM job, and no local rule was
    for name in UNTIMED_TABLES:  # the same numbers as the local run's rows of that seed
        ours = untimed_cells(workdir / "results" / "tiny" / "tables" / f"{name}.csv")
        theirs = untimed_cells(tiny_run / "tables" / f"{name}.csv")
        theirs = theirs[theirs["seed"].isin(map(str, seeds))].reset_index(drop=True)
        pd.testing.assert_frame_equal(ours, theirs)
