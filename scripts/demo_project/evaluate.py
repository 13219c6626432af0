"""Evaluation: score the committed weights on the test shards and record the metrics.

One line ties the numbers to the commit: git_model.log_metrics({...}).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from train import load

import git_model


def main() -> None:
    weights = np.load("model.npz")
    x_test, y_test = load(Path("data/test"))
    scores = x_test @ weights["coef"].T + weights["intercept"]
    predicted = weights["classes"][scores.argmax(axis=1)]
    accuracy = float((predicted == y_test).mean())
    git_model.log_metrics({"accuracy": round(accuracy, 4)}, model="digits")
    print(f"recorded accuracy {accuracy:.4f} on the current commit")


if __name__ == "__main__":
    main()
