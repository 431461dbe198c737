"""Classification figures reported for the emotion model and its baselines."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

# Two coarse readings of the four classes, grouped by the signs of the affect anchors
# (hparams.yaml): arousal sets a call's priority, valence separates an angry caller from a happy one.
AFFECT_GROUPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "arousal": (("angry", "happy"), ("neutral", "sad")),  # high, low
    "valence": (("angry", "sad"), ("happy", "neutral")),  # negative, not negative
}


def affect_uar(confusion: Sequence[Sequence[int]], labels: Sequence[str]) -> dict[str, float]:
    """Return the UAR of the binary arousal and valence groupings read off a confusion matrix.

    A class's recall here is the share of its clips predicted anywhere on its own side (a happy
    clip heard as angry is right on arousal, wrong on valence); the UAR is the mean over the
    classes present, as for the four classes. Empty for a grouping whose classes are not all labels.
    """
    matrix = np.asarray(confusion)
    index = {lab: i for i, lab in enumerate(labels)}
    out: dict[str, float] = {}
    for name, sides in AFFECT_GROUPS.items():
        if not all(lab in index for side in sides for lab in side):
            continue
        recalls = [matrix[index[lab], [index[other] for other in side]].sum() / matrix[index[lab]].sum()
                   for side in sides for lab in side if matrix[index[lab]].sum()]
        if recalls:
            out[f"{name}_uar"] = round(float(np.mean(recalls)), 4)
    return out


def classification_summary(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]
) -> dict[str, object]:
    """Return accuracy, UAR, macro-F1, the confusion matrix (rows = truth), n, arousal/valence UAR."""
    present = [lab for lab in labels if lab in set(y_true)]
    confusion = np.asarray(confusion_matrix(y_true, y_pred, labels=list(labels))).tolist()
    return {
        "n": len(y_true),
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "uar": round(float(balanced_accuracy_score(y_true, y_pred)), 4),
        "macro_f1": round(float(f1_score(y_true, y_pred, labels=present, average="macro")), 4),
        "labels": list(labels),
        "confusion": confusion,
        **affect_uar(confusion, labels),
    }
