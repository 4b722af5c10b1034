"""The README quotes the config and the default run's tables (docs/results/), it does not copy them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from msdefense.attacks.knockoff import label_kinds, labelled_for
from msdefense.config import datafree_runs, knockoff_runs
from msdefense.reporting import read_table, verdict
from msdefense.reporting.claims import rule_threshold
from msdefense.reporting.findings_blocks import FASHION_FINDINGS_BLOCKS, FINDINGS_BLOCKS
from msdefense.reporting.summary import (
    FASHION_ATTACKERS_SNAPSHOT,
    FASHION_SNAPSHOT,
    SNAPSHOT,
    block,
    config_facts,
    fashion_attackers_section,
    fashion_section,
    load_config,
    results_section,
)
from msdefense.reporting.worst_case import WORST

ROOT = Path(__file__).resolve().parents[1]


def asked_knockoff_rows(config: dict) -> set[tuple]:
    """(victim, transfer, labels, defense, value) of every KnockoffNets row the config asks for: each
    run's label kinds (those of ``knockoff.strongest_only`` at the defense's strongest value only),
    and the worst case where every kind of its victim and transfer set ran at that value and there
    were several (msdefense.reporting.worst_case)."""
    from msdefense.config import format_param
    from msdefense.sweeps import strongest

    runs = list(knockoff_runs(config))
    sweeps: dict[tuple, list[str]] = {}
    for v, t, d, p in runs:
        sweeps.setdefault((v, t, d), []).append(format_param(float(p)))
    only = set(config["knockoff"].get("strongest_only", ()))
    ran: dict[tuple, set[str]] = {}
    for v, t, d, p in runs:
        kinds = label_kinds(
            config["knockoff"], d, labelled_for(config["transfer_sets"][t], config["victims"][v]["dataset"])
        )
        top = strongest(config["defenses"][d]["method"], sweeps[v, t, d])
        ran[v, t, d, float(p)] = {k for k in kinds if k not in only or format_param(float(p)) == top}
    rows = {(v, t, k, d, p) for (v, t, d, p), kinds in ran.items() for k in kinds}
    for (v, t, d, p), kinds in ran.items():
        every = set().union(*(ks for (v2, t2, _, _), ks in ran.items() if (v2, t2) == (v, t)))
        if len(every) > 1 and kinds == every:
            rows.add((v, t, WORST, d, p))
    return rows


README = (ROOT / "README.md").read_text()


@pytest.fixture(scope="module")
def config() -> dict:
    return load_config(ROOT / "config" / "config.yaml", ROOT / "config" / "schema.yaml")


def test_config_block_is_written_from_the_config(config) -> None:
    assert block(README, "config") == config_facts(config), "run `make readme`"


def test_results_block_quotes_the_snapshot(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    assert block(README, "results") == results_section(Path(SNAPSHOT)), "run `make readme`"


def test_findings_blocks_quote_the_snapshot(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    findings = (ROOT / "docs" / "findings.md").read_text()
    for marker, section in FINDINGS_BLOCKS.items():
        assert block(findings, marker) == section(Path(SNAPSHOT)), f"{marker}: run `make readme`"


def test_snapshot_was_made_with_this_config(config) -> None:
    snap = ROOT / SNAPSHOT
    labels = config["knockoff"]["labels"]
    labels = [labels] if isinstance(labels, str) else labels
    knockoff = read_table(snap / "knockoff.csv")
    made = set(zip(knockoff["victim"], knockoff["transfer"], knockoff["labels"], knockoff["defense"],
                   knockoff["param"].astype(float), strict=True))  # fmt: skip
    assert made == asked_knockoff_rows(config)
    assert {k for _, _, k, _, _ in made} <= {*labels, WORST}
    datafree = read_table(snap / "datafree.csv")
    made = set(zip(datafree["attack"], datafree["victim"], datafree["defense"], datafree["param"].astype(float),
                   strict=True))  # fmt: skip
    assert made == {(a, v, d, float(p)) for a, v, d, p in datafree_runs(config)}
    for name in ("knockoff", "datafree", "misleader", "quantization"):
        assert set(read_table(snap / f"{name}.csv")["n_seeds"]) == {len(config["seeds"])}, name
    queries = dict(zip(datafree["attack"], datafree["queries"], strict=False))
    for attack, spec in config["datafree"]["attacks"].items():
        assert queries[attack] <= spec["query_budget"], attack


def test_fashion_block_quotes_its_snapshot(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    assert block(README, "fashion-results") == fashion_section(Path(FASHION_SNAPSHOT)), (
        "run `make readme-fashion`"
    )


def test_fashion_findings_blocks_quote_its_snapshot(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    findings = (ROOT / "docs" / "findings.md").read_text()
    for marker, section in FASHION_FINDINGS_BLOCKS.items():
        assert block(findings, marker) == section(Path(FASHION_SNAPSHOT)), (
            f"{marker}: run `make readme-fashion`"
        )


def test_fashion_snapshot_was_made_with_its_config() -> None:
    """The real-scale snapshot holds every run config/fashion.yaml asks for, over all its seeds."""
    config = load_config(ROOT / "config" / "fashion.yaml", ROOT / "config" / "schema.yaml")
    snap = ROOT / FASHION_SNAPSHOT
    knockoff = read_table(snap / "knockoff.csv")
    made = set(zip(knockoff["victim"], knockoff["transfer"], knockoff["labels"], knockoff["defense"],
                   knockoff["param"].astype(float), strict=True))  # fmt: skip
    assert made == asked_knockoff_rows(config)
    datafree = read_table(snap / "datafree.csv")
    made = set(zip(datafree["attack"], datafree["victim"], datafree["defense"], datafree["param"].astype(float),
                   strict=True))  # fmt: skip
    assert made == {(a, v, d, float(p)) for a, v, d, p in datafree_runs(config)}
    for name in ("knockoff", "datafree", "quantization"):
        assert set(read_table(snap / f"{name}.csv")["n_seeds"]) == {len(config["seeds"])} == {5}, name


def test_fashion_attackers_block_quotes_its_snapshot(monkeypatch) -> None:
    """The block quotes the attacker-axis snapshot, and is empty while there is none (the run has
    not landed: README and docs/findings.md say so)."""
    monkeypatch.chdir(ROOT)
    snapshot = Path(FASHION_ATTACKERS_SNAPSHOT)
    expected = fashion_attackers_section(snapshot) if (snapshot / "claims.csv").exists() else ""
    assert block(README, "fashion-attackers-results") == expected, "run `make readme-fashion-attackers`"


def test_fashion_attackers_snapshot_was_made_with_its_config(tmp_path: Path) -> None:
    """The attacker-axis snapshot holds every KnockoffNets row config/fashion.yaml with
    config/fashion_attackers.yaml on top asks for (soft, label-only, defense-aware and their worst
    case against every output-perturbation defense of the fp32 victim), over all its seeds."""
    from test_paper_configs import _merged

    if not (ROOT / FASHION_ATTACKERS_SNAPSHOT / "knockoff.csv").exists():
        pytest.skip(
            "no attacker-axis snapshot yet: make fashion-attackers, then make readme-fashion-attackers"
        )
    config = _merged(tmp_path, ROOT / "config" / "fashion.yaml", ROOT / "config" / "fashion_attackers.yaml")
    knockoff = read_table(ROOT / FASHION_ATTACKERS_SNAPSHOT / "knockoff.csv")
    made = set(zip(knockoff["victim"], knockoff["transfer"], knockoff["labels"], knockoff["defense"],
                   knockoff["param"].astype(float), strict=True))  # fmt: skip
    assert made == asked_knockoff_rows(config)
    restored = {d for v, t, k, d, _ in made if k == "restored" and v == "fashion_lenet5"}
    assert restored == set(config["defenses"])  # every defense met the defense-aware attacker
    assert set(knockoff["n_seeds"]) == {len(config["seeds"])} == {3}


@pytest.mark.parametrize("snapshot", [SNAPSHOT, FASHION_SNAPSHOT, FASHION_ATTACKERS_SNAPSHOT])
def test_snapshot_claims_follow_their_rules(snapshot: str) -> None:
    if snapshot == FASHION_ATTACKERS_SNAPSHOT and not (ROOT / snapshot / "claims.csv").exists():
        pytest.skip(
            "no attacker-axis snapshot yet: make fashion-attackers, then make readme-fashion-attackers"
        )
    claims = read_table(ROOT / snapshot / "claims.csv")
    assert len(claims) >= 8
    for row in claims.itertuples():
        threshold, above = rule_threshold(row.rule)
        if row.verdict in ("not testable", "identical"):  # set by the data, with the reason in the note
            assert isinstance(row.note, str) and row.note, row
            continue
        assert row.verdict == verdict(row.ci_low, row.ci_high, threshold, above=above), row


def _prose(text: str) -> str:
    """The README without its generated blocks and code blocks."""
    for marker in ("config", "results", "fashion-results", "fashion-attackers-results"):
        text = text.replace(block(text, marker), "")
    return re.sub(r"```.*?```", "", text, flags=re.S)


def test_prose_copies_no_results_or_settings() -> None:
    prose = _prose(README)
    accuracy = r"(?<![\d.])0\.\d{2,}(?![\d.])"  # 0.912, not a version such as 0.29.1
    settings = r"\b\d+k queries|\b\d[\d,]* (?:crops|queries|epochs|minutes)\b"
    ratio = r"\b\d+(?:\.\d+)?×(?!\d)"  # 4.3×, not 32×32
    copied = re.findall(f"{accuracy}|{settings}|{ratio}", prose)
    assert not copied, f"numbers copied into the README prose (quote them from the tables instead): {copied}"
