"""Tables and figures of the papers, built from the per-run metrics records.

:mod:`.tables` builds and writes the tables (CSV and Markdown); :mod:`.figures` draws the figures
from them. The rules of ``rules/tables.smk`` call the names re-exported here.
"""

from .figures import datafree_figure, latency_figure, misleader_figure, save_figure, tradeoff_figure
from .tables import (
    DATAFREE_COLUMNS,
    DEFENDER_ERROR_STEPS,
    EFFECTIVE_EPS,
    KNOCKOFF_COLUMNS,
    LATENCY_COLUMNS,
    MISLEADER_COLUMNS,
    QUANTIZATION_COLUMNS,
    datafree_table,
    first_crossing,
    interpolation_table,
    knockoff_table,
    latency_table,
    misleader_table,
    quantization_table,
    to_markdown,
    write_table,
)

__all__ = [
    "DATAFREE_COLUMNS",
    "DEFENDER_ERROR_STEPS",
    "EFFECTIVE_EPS",
    "KNOCKOFF_COLUMNS",
    "LATENCY_COLUMNS",
    "MISLEADER_COLUMNS",
    "QUANTIZATION_COLUMNS",
    "datafree_figure",
    "datafree_table",
    "first_crossing",
    "interpolation_table",
    "knockoff_table",
    "latency_figure",
    "latency_table",
    "misleader_figure",
    "misleader_table",
    "quantization_table",
    "save_figure",
    "to_markdown",
    "tradeoff_figure",
    "write_table",
]
