"""Resources belong to profiles: every rule declares portable needs, the SLURM profile maps them."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml
from workflow_runs import ROOT, SNAKEMAKE

from msdefense.config import ConfigError, check_renamed_keys
from msdefense.resources import LOCAL_RULES, RULES, gpu_rules, rule_resources

SLURM = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
GPU_PARTITION = "gpu"


def _workflow_rules() -> set[str]:
    cmd = [SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(ROOT), "--list-rules"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    return {m[1] for m in re.finditer(r"^([a-z_]+)(\s|$)", out, flags=re.MULTILINE)} - {"all"}


def test_every_rule_has_portable_needs() -> None:
    rules = _workflow_rules()
    assert rules == set(RULES)
    assert set(LOCAL_RULES) <= set(RULES)
    assert not set(LOCAL_RULES) & set(gpu_rules())
    # the rules an artifact error tells the user to rerun exist (msdefense.layout.WRITERS)
    from msdefense.layout import WRITERS

    named = {rule for writers in WRITERS.values() for rule in writers}
    assert named <= rules, f"layout.WRITERS names rules the workflow does not have: {sorted(named - rules)}"


def test_gpu_count_comes_from_the_experiment_only_for_gpu_capable_rules() -> None:
    assert rule_resources("train_victim", gpus=2)["gpu"] == 2
    assert rule_resources("build_ensemble", gpus=2)["gpu"] == 0
    assert rule_resources("train_victim", gpus=0)["gpu"] == 0
    with pytest.raises(KeyError, match="no_such_rule"):
        rule_resources("no_such_rule", gpus=1)


def test_slurm_profile_sends_every_gpu_rule_to_the_gpu_partition() -> None:
    sets = SLURM["set-resources"]
    for rule in gpu_rules():
        assert sets[rule]["slurm_partition"] == GPU_PARTITION, rule
        assert sets[rule]["cpus_per_gpu"] >= 1, rule
    for rule, values in sets.items():
        assert rule in RULES, rule  # no stale entry
        if values.get("slurm_partition") == GPU_PARTITION:
            assert RULES[rule].gpu, rule
    defaults = SLURM["default-resources"]
    assert defaults["slurm_partition"] != GPU_PARTITION
    assert "cpus_per_task" not in defaults  # it would override cpus_per_gpu
    text = (ROOT / "profiles" / "slurm" / "config.yaml").read_text()
    assert "slurm_account" in text and "SITE" in text  # the site settings are marked


def test_experiment_configs_carry_no_site_resources() -> None:
    configs = [ROOT / "config" / "config.yaml", *sorted((ROOT / "config" / "paper").glob("*.yaml"))]
    configs.append(ROOT / "tests" / "data" / "tiny.yaml")
    for path in configs:
        resources = yaml.safe_load(path.read_text()).get("resources", {})
        assert set(resources) <= {"gpu", "threads"}, path


@pytest.mark.parametrize("key", ["mem_mb", "runtime"])
def test_moved_resource_keys_are_refused_naming_the_profile(key: str) -> None:
    with pytest.raises(ConfigError, match=rf"resources\.{key} .*set-resources"):
        check_renamed_keys({"resources": {"gpu": 1, key: 100}})
    check_renamed_keys({"resources": {"gpu": 1}})  # no error


def test_local_profile_serialises_gpu_jobs() -> None:
    local = yaml.safe_load((ROOT / "profiles" / "default" / "config.yaml").read_text())
    assert "gpu=1" in local["resources"]
