"""Reference computations the tests compare mlpipe's (and TFMA's) numbers with."""

from __future__ import annotations

import math

import numpy as np


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic: the chance that a random positive outscores a random
    negative, ties counting half (average ranks). Exact, where TFMA's AUC is a 10,000-threshold sum."""
    import pandas as pd

    ranks = pd.Series(scores).rank(method="average").to_numpy()
    positives = int(labels.sum())
    negatives = len(labels) - positives
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def majority_class_rate(labels: np.ndarray) -> float:
    """Accuracy of always answering the more frequent of two classes."""
    mean = float(np.mean(labels))
    return max(mean, 1.0 - mean)


def differences(a, b, where: str = "") -> list[str]:
    """Where two protobuf-as-dict trees differ: numbers beyond 1e-9 relative, anything else at all."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{where}.{k}: only one side" for k in a.keys() ^ b.keys()]
        for key in a.keys() & b.keys():
            out += differences(a[key], b[key], f"{where}.{key}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} vs {len(b)} items"]
        return [
            d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{where}[{i}]")
        ]
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        if math.isnan(a) and math.isnan(b) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9):
            return []
    elif a == b:
        return []
    return [f"{where}: {a!r} vs {b!r}"]
