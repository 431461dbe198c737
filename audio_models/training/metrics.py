"""Classification figures reported for the emotion model and its baselines."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score


def classification_summary(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]
) -> dict[str, object]:
    """Return accuracy, UAR, macro-F1, the confusion matrix (rows = truth) and n."""
    present = [lab for lab in labels if lab in set(y_true)]
    return {
        "n": len(y_true),
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "uar": round(float(balanced_accuracy_score(y_true, y_pred)), 4),
        "macro_f1": round(float(f1_score(y_true, y_pred, labels=present, average="macro")), 4),
        "labels": list(labels),
        "confusion": np.asarray(confusion_matrix(y_true, y_pred, labels=list(labels))).tolist(),
    }
