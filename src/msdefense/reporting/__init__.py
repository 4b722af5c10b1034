"""Tables and figures of the papers, built from the per-run metrics records.

:mod:`.tables` builds the per-seed tables and their summaries over seeds (:mod:`.replicates`:
mean, ``n_seeds``, 95% t-interval; :mod:`.matching`: operating points matched along a curve) and
writes them (CSV and Markdown); :mod:`.figures` draws the figures from them. The rules of
``rules/tables.smk`` call the names re-exported here.
"""

from .claims import CLAIMS_COLUMNS, VERDICTS, Claim, claims_table, verdict
from .figures import datafree_figure, latency_figure, misleader_figure, save_figure, tradeoff_figure
from .matching import MATCHES, Point, strongest_within
from .replicates import CI_LEVEL, INTERVAL_METRICS, summarise, t_interval
from .tables import (
    DATAFREE_COLUMNS,
    DATAFREE_KEYS,
    DEFENDER_ERROR_STEPS,
    EFFECTIVE_EPS,
    INTERPOLATION_KEYS,
    KNOCKOFF_COLUMNS,
    KNOCKOFF_KEYS,
    LATENCY_COLUMNS,
    MISLEADER_COLUMNS,
    MISLEADER_KEYS,
    QUANTIZATION_COLUMNS,
    QUANTIZATION_KEYS,
    datafree_seeds,
    datafree_table,
    interpolation_seeds,
    interpolation_table,
    knockoff_seeds,
    knockoff_table,
    latency_table,
    misleader_seeds,
    misleader_table,
    quantization_seeds,
    quantization_table,
    read_table,
    to_markdown,
    write_csv,
    write_table,
)

__all__ = [
    "CLAIMS_COLUMNS",
    "VERDICTS",
    "CI_LEVEL",
    "Claim",
    "claims_table",
    "read_table",
    "verdict",
    "DATAFREE_COLUMNS",
    "DATAFREE_KEYS",
    "DEFENDER_ERROR_STEPS",
    "EFFECTIVE_EPS",
    "INTERPOLATION_KEYS",
    "INTERVAL_METRICS",
    "KNOCKOFF_COLUMNS",
    "KNOCKOFF_KEYS",
    "LATENCY_COLUMNS",
    "MATCHES",
    "MISLEADER_COLUMNS",
    "MISLEADER_KEYS",
    "QUANTIZATION_COLUMNS",
    "QUANTIZATION_KEYS",
    "Point",
    "datafree_figure",
    "datafree_seeds",
    "datafree_table",
    "interpolation_seeds",
    "interpolation_table",
    "knockoff_seeds",
    "knockoff_table",
    "latency_figure",
    "latency_table",
    "misleader_figure",
    "misleader_seeds",
    "misleader_table",
    "quantization_seeds",
    "quantization_table",
    "save_figure",
    "strongest_within",
    "summarise",
    "t_interval",
    "to_markdown",
    "tradeoff_figure",
    "write_csv",
    "write_table",
]
