"""One experiment seed derives every random number generator."""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Mapping

import numpy as np
import torch


def derive_seed(seed: int, *names: object) -> int:
    """A stable 31-bit seed for the stream named ``names`` under the experiment ``seed``."""
    text = "/".join([str(seed), *map(str, names)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") & 0x7FFFFFFF


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a torch Generator for data order."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


#: cuBLAS needs a fixed workspace for deterministic results (set before CUDA initialises).
CUBLAS_WORKSPACE = ":4096:8"


def configure_cuda() -> None:
    """The determinism policy on CUDA (docs/architecture.md): deterministic cuDNN algorithms and no
    autotuning (``benchmark`` picks kernels by timing, so runs would differ), a fixed cuBLAS
    workspace, and deterministic implementations wherever PyTorch has them (a warning, not an
    error, where it has none). Same seed, config, thread count and GPU model: same numbers."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


def pick_device(requested: str = "auto") -> torch.device:
    """``auto`` means CUDA when visible, else CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {requested!r} requested but CUDA is not available; use device: auto or cpu"
        )
    return torch.device(requested)


#: variables through which SLURM hands a job its GPUs: the first two list GPU indices (``0`` is a
#: GPU), the last counts them
SLURM_GPU_VARIABLES = ("SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "SLURM_GPUS_ON_NODE")
#: set to 1 on a cluster whose GPUs are fake (a scheduling test, .ci/local-slurm.sh): GPU jobs
#: compute on the CPU knowingly instead of stopping
FAKE_GPUS_VARIABLE = "MSDEFENSE_FAKE_GPUS"


def check_gpu_request(
    *, gpus: int, device: str, environ: Mapping[str, str], cuda_available: bool, rule: str = "this job"
) -> None:
    """Refuse to compute on the CPU while a GPU is requested (``resources.gpu`` > 0) or SLURM
    gave the job one: a cluster would bill a GPU for a CPU run. ``device: auto`` without a
    request runs wherever it can; ``MSDEFENSE_FAKE_GPUS=1`` (a cluster with fake GPUs, for
    scheduling tests) lets a request compute on the CPU."""
    if environ.get(FAKE_GPUS_VARIABLE, "") == "1":
        return
    given = [
        v
        for v in SLURM_GPU_VARIABLES
        if environ.get(v, "").strip() not in ("", "0" if v == "SLURM_GPUS_ON_NODE" else "")
    ]
    if gpus <= 0 and not given:
        return
    source = f"resources.gpu: {gpus}" if gpus > 0 else f"SLURM gave it one ({', '.join(given)})"
    if device == "cpu":
        raise RuntimeError(
            f"{rule} requests a GPU ({source}) but the config says device: cpu; set resources.gpu: 0 "
            f"to run on the CPU, or device: auto to use the GPU"
        )
    if not cuda_available:
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "no CUDA (a CPU-only build)"
        raise RuntimeError(
            f"{rule} requests a GPU ({source}) but CUDA is not available here (torch "
            f"{torch.__version__} with {build}; CUDA_VISIBLE_DEVICES="
            f"{environ.get('CUDA_VISIBLE_DEVICES', '<unset>')!r}): it would run on the CPU while the GPU "
            f"is billed. Install a CUDA build of PyTorch or check the node's GPU driver, or set "
            f"resources.gpu: 0 to run on the CPU"
        )
