"""One experiment seed derives every random number generator."""

from __future__ import annotations

import hashlib
import os
import random

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
