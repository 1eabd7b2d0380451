"""Reference computations the tests compare mlpipe's (and TFMA's) numbers with."""

from __future__ import annotations

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
