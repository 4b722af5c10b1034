"""Shared fixtures: the repository root and the default config, validated and filled in."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import yaml
from workflow_runs import tiny_run  # noqa: F401  (a session fixture: the tiny run, once)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _few_threads():
    torch.set_num_threads(1)


@pytest.fixture
def default_config() -> dict:
    return copy.deepcopy(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
