"""Result tables as markdown, shaped like the paper's (no ``tabulate`` needed)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd


def markdown_table(table: pd.DataFrame, digits: int = 2, bold: Literal["min", "max"] | None = None) -> str:
    """``table`` as a GitHub markdown table, its index (named by ``table.index.name``) first.

    Args:
        table: rows and columns as they should appear.
        digits: decimals of floating-point cells (NaN: "—").
        bold: mark the lowest (``"min"``, e.g. FID) or highest (``"max"``, accuracy) value of
            every numeric column in bold, as the paper's tables do (only with two rows or more).
    """
    best = {}
    if bold is not None and len(table) > 1:
        for column in table.columns:
            values = pd.to_numeric(table[column], errors="coerce")
            if values.notna().any():
                best[column] = values.min() if bold == "min" else values.max()

    def cell(column: object, value: object) -> str:
        text = str(value)
        if isinstance(value, float | np.floating):
            text = "—" if np.isnan(value) else f"{value:.{digits}f}"
        return f"**{text}**" if column in best and value == best[column] else text

    rows = [[str(table.index.name or ""), *map(str, table.columns)], ["---"] * (len(table.columns) + 1)]
    rows += [[str(label), *(cell(c, row[c]) for c in table.columns)] for label, row in table.iterrows()]
    return "".join("| " + " | ".join(row) + " |\n" for row in rows)
