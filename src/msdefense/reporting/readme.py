"""``make readme`` / ``make readme-fashion``: snapshot a finished run's tables into ``docs/results/``
and write the README's and docs/findings.md's generated blocks from the config and the snapshot
(the blocks themselves: :mod:`msdefense.reporting.summary`, :mod:`msdefense.reporting.findings_blocks`)."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from .findings_blocks import FASHION_FINDINGS_BLOCKS, FINDINGS_BLOCKS
from .summary import (
    FASHION_ATTACKERS_SNAPSHOT,
    FASHION_SNAPSHOT,
    SNAPSHOT,
    config_facts,
    fashion_attackers_section,
    fashion_section,
    load_config,
    results_section,
    splice,
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("readme", type=Path)
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    parser.add_argument("--schema", type=Path, default=Path("config/schema.yaml"))
    parser.add_argument(
        "--tables", type=Path, help="a finished run's tables/ to snapshot (default: keep the snapshot)"
    )
    parser.add_argument("--snapshot", type=Path, default=Path(SNAPSHOT))
    parser.add_argument(
        "--fashion-tables",
        type=Path,
        help="the real-scale run's tables/ to snapshot into " + FASHION_SNAPSHOT,
    )
    parser.add_argument(
        "--fashion-attackers-tables",
        type=Path,
        help="the Fashion-MNIST attacker-axis run's tables/ to snapshot into " + FASHION_ATTACKERS_SNAPSHOT,
    )
    args = parser.parse_args(argv)
    if args.tables:
        snapshot(args.tables, args.snapshot)
    if args.fashion_tables:
        snapshot(args.fashion_tables, Path(FASHION_SNAPSHOT))
    if args.fashion_attackers_tables:
        snapshot(args.fashion_attackers_tables, Path(FASHION_ATTACKERS_SNAPSHOT))
    text = splice(args.readme.read_text(), "config", config_facts(load_config(args.config, args.schema)))
    text = splice(text, "results", results_section(args.snapshot))
    if (Path(FASHION_SNAPSHOT) / "claims.csv").exists():
        text = splice(text, "fashion-results", fashion_section(Path(FASHION_SNAPSHOT)))
    if (Path(FASHION_ATTACKERS_SNAPSHOT) / "claims.csv").exists():
        text = splice(
            text, "fashion-attackers-results", fashion_attackers_section(Path(FASHION_ATTACKERS_SNAPSHOT))
        )
    args.readme.write_text(text)
    findings = args.readme.parent / "docs" / "findings.md"
    if findings.exists():
        text = findings.read_text()
        for marker, section in FINDINGS_BLOCKS.items():
            text = splice(text, marker, section(args.snapshot))
        if (Path(FASHION_SNAPSHOT) / "claims.csv").exists():
            for marker, section in FASHION_FINDINGS_BLOCKS.items():
                text = splice(text, marker, section(Path(FASHION_SNAPSHOT)))
        findings.write_text(text)


def snapshot(tables: Path, to: Path) -> None:
    """Copy a run's tables (CSV and Markdown) into ``to``, replacing what was there."""
    if not (tables / "claims.csv").exists():
        raise FileNotFoundError(f"{tables}/claims.csv not found: run the default experiment (make run) first")
    to.mkdir(parents=True, exist_ok=True)
    for old in [*to.glob("*.csv"), *to.glob("*.md")]:
        old.unlink()
    for f in [*tables.glob("*.csv"), *tables.glob("*.md")]:
        shutil.copyfile(f, to / f.name)


if __name__ == "__main__":
    main()
