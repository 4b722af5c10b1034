"""Every paper config executes: each runs through the rehearsal overlay (config/rehearsal.yaml) to
its tables with a real ``snakemake`` (not a dry run), on fabricated data in the real on-disk
formats; and the overlay shrinks a config as msdefense.rehearsal says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_runs import ROOT, limit

from msdefense.config import ConfigError
from msdefense.data.registry import DATASETS
from msdefense.data.samples import SAMPLE_DATASETS, write_sample
from msdefense.plan import job_counts
from msdefense.preflight import load_checked
from msdefense.rehearsal import rehearse

PAPER = sorted((ROOT / "config" / "paper").glob("*.yaml"))
OVERLAY = yaml.safe_load((ROOT / "config" / "rehearsal.yaml").read_text())


def rehearsed(path: Path) -> dict:
    config = load_checked(path, ROOT / "config" / "schema.yaml")
    config["rehearsal"] = dict(OVERLAY["rehearsal"])
    rehearse(config)
    return config


@pytest.mark.parametrize("name", SAMPLE_DATASETS)
def test_fabricated_samples_are_read_by_the_real_loaders(tmp_path: Path, name: str) -> None:
    write_sample(name, tmp_path, images=4)
    spec = DATASETS[name]
    for split in ("train", "test"):
        data = spec.loader(tmp_path, split, split == "train", False)
        x, y = data[len(data) - 1]
        assert len(data) >= 4 and tuple(x.shape) == (spec.in_channels, spec.image_size, spec.image_size)
        assert 0 <= y < spec.num_classes


@pytest.mark.parametrize("path", PAPER, ids=lambda p: p.stem)
def test_the_overlay_shrinks_every_paper_config(path: Path) -> None:
    full = load_checked(path, ROOT / "config" / "schema.yaml")
    small = rehearsed(path)
    assert small["experiment"] == f"{full['experiment']}_rehearsal" and small["seeds"] == full["seeds"][:1]
    assert all(len(d["params"]) <= 2 for d in small["defenses"].values())
    for name, d in small["defenses"].items():  # first and last value of every sweep kept
        assert d["params"][0] == float(full["defenses"][name]["params"][0])
        assert d["params"][-1] == float(full["defenses"][name]["params"][-1])
    assert small["victims"].keys() == full["victims"].keys()  # every victim and architecture kept
    assert [v.get("arch") for v in small["victims"].values()] == [
        v.get("arch") for v in full["victims"].values()
    ]
    assert sum(job_counts(small).values()) < sum(job_counts(full).values())
    assert small["data"]["root"] == OVERLAY["rehearsal"]["data_root"] != full["data"]["root"]


def test_the_rehearsal_refuses_the_real_data_root() -> None:
    config = load_checked(PAPER[0], ROOT / "config" / "schema.yaml")
    config["rehearsal"] = {**OVERLAY["rehearsal"], "data_root": config["data"]["root"]}
    with pytest.raises(ConfigError, match="rehearsal.data_root"):
        rehearse(config)


def test_a_sample_is_never_written_over_real_files(tmp_path: Path) -> None:
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "cifar-10-python.tar.gz").write_bytes(b"real")
    with pytest.raises(FileExistsError, match="not a complete fabricated sample"):
        write_sample("cifar10", tmp_path, images=4)
    assert (tmp_path / "cifar10" / "cifar-10-python.tar.gz").read_bytes() == b"real"


@pytest.mark.workflow
@pytest.mark.parametrize("path", PAPER, ids=lambda p: p.stem)
def test_every_paper_config_runs_to_its_tables(tmp_path: Path, path: Path) -> None:
    # through the job server (msdefense.launch): every job forks from one process that has
    # imported torch, which is most of a rehearsal job's time
    cmd = [sys.executable, "-m", "msdefense.launch", "--snakefile", str(ROOT / "Snakefile")]
    cmd += ["--directory", str(tmp_path), "--cores", "2"]
    cmd += ["--configfile", str(path), str(ROOT / "config" / "rehearsal.yaml")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit(1800))
    assert proc.returncode == 0, proc.stderr[-4000:]
    experiment = rehearsed(path)["experiment"]
    tables = tmp_path / "results" / experiment / "tables"
    claims = pd.read_csv(tables / "claims.csv")
    assert len(claims) and claims["verdict"].notna().all()  # every row has a verdict (or not testable)
    for table in tables.glob("*_seeds.csv"):
        assert len(pd.read_csv(table)), table  # every per-seed table has rows


def test_the_cifar_batches_are_written_without_the_pickle_module() -> None:
    import pickle  # the test reads back bytes it made: the package never imports pickle

    from msdefense.data.samples import _pickle_bytes

    obj = {"data": [[0, 255, 7], [300, 1, 2]], "labels": [1, 9], "names": ["a", "éb"], "empty": []}
    assert pickle.loads(_pickle_bytes(obj)) == obj
