"""Result tables as markdown, shaped like the paper's (no ``tabulate`` needed)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd


def markdown_table(
    table: pd.DataFrame, digits: int = 2, bold: Literal["min", "max"] | None = None, index: bool = True
) -> str:
    """``table`` as a GitHub markdown table; numbers with ``digits`` decimals.

    Args:
        table: rows and columns as they should appear.
        digits: decimals of floating-point cells.
        bold: mark the lowest (``"min"``, e.g. FID) or highest (``"max"``, accuracy) value of
            every numeric column in bold, as the paper's tables do (only with two rows or more).
        index: first column = the index (its name as header).
    """

    def cell(value: object, best: bool) -> str:
        if isinstance(value, float | np.floating):
            text = "—" if np.isnan(value) else f"{value:.{digits}f}"
        else:
            text = str(value)
        return f"**{text}**" if best else text

    best: dict[object, object] = {}
    if bold is not None and len(table) > 1:
        for column in table.columns:
            values = pd.to_numeric(table[column], errors="coerce")
            if values.notna().any():
                best[column] = values.min() if bold == "min" else values.max()

    header = ([str(table.index.name or "")] if index else []) + [str(c) for c in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for label, row in table.iterrows():
        cells = [str(label)] if index else []
        cells += [cell(row[c], c in best and row[c] == best[c]) for c in table.columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
