"""Every figure the workflow draws, from the snapshot's tables (docs/results): wrapped into a
grid no wider than a page (about 11 inches at 150 dpi), not a strip, and every panel drawn."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from workflow_runs import ROOT

from msdefense.reporting import figures, read_table
from msdefense.reporting.leaderboard import leaderboard

SNAPSHOT = ROOT / "docs" / "results"
MAX_WIDTH_PX = int(figures.PAGE_WIDTH * 150) + 200  # the page, and the tight bounding box's margin


def _table(name: str) -> pd.DataFrame:
    return read_table(SNAPSHOT / f"{name}.csv")


DRAW = {
    "knockoff_tradeoff": lambda png, pdf: figures.tradeoff_figure(_table("knockoff"), png, pdf),
    "datafree_tradeoff": lambda png, pdf: figures.datafree_figure(_table("datafree"), png, pdf),
    "misleader": lambda png, pdf: figures.misleader_figure(_table("misleader"), png, pdf),
    "latency": lambda png, pdf: figures.latency_figure(_table("latency"), png, pdf),
    "budget": lambda png, pdf: figures.budget_figure(_table("budget_curves"), "digits_lenet5", png, pdf),
    "leaderboard": lambda png, pdf: figures.leaderboard_figure(
        leaderboard(_table("interpolation_seeds"), _table("knockoff_seeds"), _table("latency")), png, pdf
    ),
}


@pytest.mark.parametrize("name", sorted(DRAW))
def test_a_figure_fits_a_page_and_is_no_strip(name: str, tmp_path: Path) -> None:
    png, pdf = tmp_path / f"{name}.png", tmp_path / f"{name}.pdf"
    DRAW[name](png, pdf)
    width, height = Image.open(png).size
    assert width <= MAX_WIDTH_PX, (name, width)
    assert 0.25 <= width / height <= 4.0, (name, width, height)  # 6,719 × 977 (6.9) was the strip
    assert pdf.stat().st_size > 0


def test_panels_wrap_into_rows_of_at_most_three() -> None:
    fig, groups = figures.panel_grid(7, width=3.6, height=3.0, rows_each=2)
    assert len(groups) == 7 and all(len(g) == 2 for g in groups)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 14 and fig.get_size_inches()[0] <= figures.PAGE_WIDTH
    columns = {round(ax.get_position().x0, 3) for ax in visible}
    assert len(columns) <= figures.MAX_COLUMNS
