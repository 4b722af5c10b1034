"""A job that requests a GPU never runs on the CPU silently (resources.gpu, or SLURM's allocation)."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch

from msdefense import jobclient
from msdefense.seeding import check_gpu_request
from msdefense.stages import context


@dataclass(frozen=True, kw_only=True)
class Request:
    seed: int
    device: str = "auto"


CALLS: list[int] = []


def stage_fn(request: Request) -> int:
    CALLS.append(request.seed)
    return request.seed


def job(tmp_path, *, gpu: int, device: str = "auto") -> SimpleNamespace:
    return SimpleNamespace(
        wildcards={},
        params={"device": device, "seed": 3},
        input={},
        output={},
        log=[str(tmp_path / "job.log")],
        threads=1,
        resources={"gpu": gpu, "mem_mb": 100},
    )


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "SLURM_GPUS_ON_NODE"):
        monkeypatch.delenv(name, raising=False)
    CALLS.clear()


def test_a_job_requesting_a_gpu_without_cuda_fails_before_its_stage(tmp_path, no_cuda) -> None:
    with pytest.raises(
        RuntimeError, match=r"requests a GPU \(resources\.gpu: 1\) but CUDA is not available"
    ) as err:
        context.run_rule(stage_fn, job(tmp_path, gpu=1))
    assert "resources.gpu: 0 to run on the CPU" in str(err.value) and "job stage_fn" in str(err.value)
    assert CALLS == []  # nothing computed
    assert "CUDA is not available" in (tmp_path / "job.log").read_text()  # the job's log says why


def test_slurm_allocation_counts_as_a_request(tmp_path, no_cuda, monkeypatch) -> None:
    monkeypatch.setenv("SLURM_JOB_GPUS", "0")  # GPU index 0: a GPU was given
    with pytest.raises(RuntimeError, match=r"SLURM gave it one \(SLURM_JOB_GPUS\)"):
        context.run_rule(stage_fn, job(tmp_path, gpu=0))
    monkeypatch.delenv("SLURM_JOB_GPUS")
    monkeypatch.setenv("SLURM_GPUS_ON_NODE", "0")  # a count: none given
    assert context.run_rule(stage_fn, job(tmp_path, gpu=0)) == 3
    assert CALLS == [3]


def test_gpu_request_with_device_cpu_is_a_contradiction(tmp_path, no_cuda) -> None:
    with pytest.raises(RuntimeError, match="device: cpu"):
        context.run_rule(stage_fn, job(tmp_path, gpu=2, device="cpu"))


def test_without_a_request_auto_runs_on_the_cpu(tmp_path, no_cuda) -> None:
    assert context.run_rule(stage_fn, job(tmp_path, gpu=0)) == 3
    assert CALLS == [3]


def test_a_cluster_with_fake_gpus_computes_on_the_cpu_knowingly(tmp_path, no_cuda, monkeypatch) -> None:
    monkeypatch.setenv("MSDEFENSE_FAKE_GPUS", "1")  # what tests/test_slurm.py sets
    assert context.run_rule(stage_fn, job(tmp_path, gpu=1, device="cpu")) == 3


def test_a_cpu_only_rule_is_not_checked(tmp_path, no_cuda, monkeypatch) -> None:
    def claims(request: Request) -> int:  # named as the CPU-only rule (msdefense.resources.RULES)
        return request.seed

    monkeypatch.setenv("SLURM_GPUS_ON_NODE", "1")  # e.g. the run itself inside a GPU allocation
    assert context.run_rule(claims, job(tmp_path, gpu=0)) == 3


def test_with_cuda_the_request_passes() -> None:
    check_gpu_request(gpus=1, device="auto", environ={"SLURM_GPUS_ON_NODE": "1"}, cuda_available=True)


def test_the_request_travels_to_the_job_server(tmp_path, no_cuda) -> None:
    """A job run in a fork of the job server is checked the same way: its description carries the request."""
    described = jobclient.job_object(jobclient.job_description(job(tmp_path, gpu=1)))
    assert described.resources == {"gpu": 1}
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        context.run_rule(stage_fn, described)
