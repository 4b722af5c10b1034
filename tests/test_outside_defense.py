"""A defense defined outside the package (tests/data/outside_defense.py), named by its import
path: in library use, in a config's checks before any job, and through a workflow run into the
tables (docs/api.md, "A defense of your own")."""

from __future__ import annotations

import os
import shutil

import pandas as pd
import pytest
import torch
import yaml
from workflow_runs import ROOT, run_tiny

import msdefense
from msdefense.config import ConfigError
from msdefense.defenses import DEFENSES
from msdefense.preflight import load_checked

DATA = ROOT / "tests" / "data"
PATH = "outside_defense:SMOOTH"


@pytest.fixture
def importable(monkeypatch):
    monkeypatch.syspath_prepend(str(DATA))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(DATA), os.environ.get("PYTHONPATH")])))


def test_library_use_by_import_path(importable) -> None:
    model = msdefense.build_model("lenet5", num_classes=10, in_channels=1)
    x = torch.randn(6, 1, 32, 32)
    clean = msdefense.defend(model)(x)
    answers = msdefense.defend(model, PATH, 1.0)(x)  # ε = 1: the uniform answer
    torch.testing.assert_close(answers, torch.full((6, 10), 0.1))
    half = msdefense.defend(model, PATH, 0.5, power=2.0)(x)
    assert torch.equal(half.argmax(1), clean.argmax(1))
    with pytest.raises(ValueError, match="power"):
        msdefense.defend(model, PATH, 0.5, power=-1.0)
    with pytest.raises(ValueError, match=r"values must be <= 1"):
        msdefense.defend(model, PATH, 1.5)


def test_bad_import_paths_are_refused_by_name(importable) -> None:
    for path, why in (
        ("outside_defense:NOT_A_METHOD", "not a msdefense.defenses.DefenseMethod"),
        ("outside_defense:MISSING", "has no 'MISSING'"),
        ("no_such_package.defenses:Clip", "cannot import 'no_such_package.defenses'"),
    ):
        with pytest.raises(ValueError, match=why):
            _ = path in DEFENSES


def _config(tmp_path, **smooth) -> dict:
    """tiny.yaml with the outside defense added in front of digits_tiny (read and checked as the
    Snakefile does)."""
    cfg = yaml.safe_load((DATA / "tiny.yaml").read_text())
    cfg["defenses"]["smooth"] = {"method": PATH, "params": [0.5], **smooth}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return cfg


def test_a_bad_option_of_an_outside_defense_is_refused_before_any_job(importable, tmp_path) -> None:
    _config(tmp_path, power=0.0)
    with pytest.raises(ConfigError, match=r"defenses\.smooth\.power"):
        load_checked(tmp_path / "tiny.yaml", ROOT / "config" / "schema.yaml")
    proc = run_tiny(tmp_path, "-n", "--cores", "1")
    assert proc.returncode != 0 and "defenses.smooth.power" in proc.stderr + proc.stdout
    assert not (tmp_path / "results").exists()  # refused before any job ran


def test_an_outside_defense_runs_through_the_workflow_into_the_tables(importable, tmp_path) -> None:
    cfg = _config(tmp_path, power=2.0)
    # only what the KnockoffNets table needs: the LeNet victim and the outside defense
    cfg["victims"] = {"digits_tiny": cfg["victims"]["digits_tiny"]}
    cfg["defenses"] = {k: v for k, v in cfg["defenses"].items() if k in ("undefended", "smooth")}
    cfg["latency"]["victims"] = ["digits_tiny"]
    del cfg["datafree"]  # no data-free attack, no budget curves: minutes of CI for nothing here
    cfg["knockoff"].pop("budgets")
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    proc = run_tiny(tmp_path, "--cores", "2", timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    table = pd.read_csv(tmp_path / "results" / "tiny" / "tables" / "knockoff.csv")
    smooth = table[table["defense"] == "smooth"]
    assert set(smooth["method"]) == {PATH} and set(smooth["labels"]) >= {"soft", "argmax"}
    assert smooth["l1_distance"].gt(0).all() and smooth["clone_acc"].between(0, 1).all()
    shutil.rmtree(tmp_path / "results", ignore_errors=True)
