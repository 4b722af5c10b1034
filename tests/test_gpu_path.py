"""The GPU path's settings, checked without a GPU: loader workers and the CUDA determinism policy."""

from __future__ import annotations

import os

import torch

from msdefense.seeding import CUBLAS_WORKSPACE, configure_cuda
from msdefense.training import SGDRecipe, loader_workers


def test_loader_workers_come_from_the_jobs_threads_on_cuda_only() -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        assert loader_workers(None, torch.device("cuda")) == 3
        assert loader_workers(None, torch.device("cpu")) == 0
        assert loader_workers(2, torch.device("cuda")) == 2 and loader_workers(2, torch.device("cpu")) == 2
        torch.set_num_threads(1)
        assert loader_workers(None, torch.device("cuda")) == 0
    finally:
        torch.set_num_threads(before)
    assert SGDRecipe.from_config({"epochs": 1, "batch_size": 8, "lr": 0.1}).num_workers is None


def test_configure_cuda_sets_the_determinism_policy(monkeypatch) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    enabled = torch.are_deterministic_algorithms_enabled()
    try:
        torch.backends.cudnn.benchmark = True
        configure_cuda()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == CUBLAS_WORKSPACE
        assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.deterministic
        assert (
            torch.are_deterministic_algorithms_enabled()
            and torch.is_deterministic_algorithms_warn_only_enabled()
        )
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
