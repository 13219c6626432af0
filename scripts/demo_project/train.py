"""Training: fit a logistic-regression classifier and save its weights to model.npz.

evaluate.py scores the weights once they are committed.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import yaml
from sklearn.linear_model import LogisticRegression


def load(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = []
    for shard in sorted(folder.glob("shard-*.csv")):
        with open(shard, newline="") as f:
            rows += [[float(v) for v in row] for row in csv.reader(f)]
    data = np.array(rows)
    return data[:, :-1], data[:, -1].astype(int)


def main() -> None:
    params = yaml.safe_load(Path("params.yaml").read_text())["train"]
    x_train, y_train = load(Path("data/train"))
    model = LogisticRegression(C=params["C"], max_iter=params["max_iter"])
    model.fit(x_train, y_train)
    # weights only, as plain arrays: loading them never runs code (unlike a pickle)
    with open("model.npz", "wb") as f:
        np.savez(f, coef=model.coef_, intercept=model.intercept_, classes=model.classes_)
    print(f"trained a logistic regression with C={params['C']} on {len(x_train)} images")


if __name__ == "__main__":
    main()
