"""Seconds per LeNet-5 epoch over Fashion-MNIST's 60,000 training images on one thread, and the test
accuracy after each epoch: what sizes the real-scale experiment (docs/findings.md, "Fashion-MNIST
offline"). Needs the prepared dataset: ``prepare_dataset`` for fashionmnist, or

    python -c "from msdefense.data.download import prepare; prepare('fashionmnist', 'resources')"

(offline where Debian's dataset-fashion-mnist is installed). Usage:
``python benchmarks/fashion_epoch.py [--root resources] [--epochs 3]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from msdefense.data.paper import load_paper_dataset
from msdefense.models import build_model
from msdefense.training import SGDRecipe, train_classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("resources"))
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    train = load_paper_dataset("fashionmnist", args.root, "train", False, False)
    test = load_paper_dataset("fashionmnist", args.root, "test", False, False)
    model = build_model("lenet5", 10, 1)
    recipe = SGDRecipe(epochs=args.epochs, lr=0.01, batch_size=128)
    start = time.perf_counter()
    history = train_classifier(model, train, {"test": test}, recipe, device=torch.device("cpu"), seed=0)
    seconds = time.perf_counter() - start
    print(f"{args.epochs} epochs, 1 thread: {seconds:.1f} s ({seconds / args.epochs:.1f} s per epoch)")
    print("test accuracy after each epoch:", [round(h["test_acc"], 4) for h in history])


if __name__ == "__main__":
    main()
