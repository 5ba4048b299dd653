"""Evaluation of Sec. IV: recognition metrics and figures, FID and per-expression FID, result tables."""
