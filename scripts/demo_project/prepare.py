"""Preprocessing: split scikit-learn's bundled digits data set into train/test shards.

Writes data/train/shard-N.csv and data/test/shard-0.csv (pixels scaled to 0..1, label last).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import yaml
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def write_shards(rows: np.ndarray, labels: np.ndarray, out: Path, shards: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for i, part in enumerate(np.array_split(np.arange(len(rows)), shards)):
        with open(out / f"shard-{i}.csv", "w", newline="") as f:
            writer = csv.writer(f)
            for j in part:
                writer.writerow([f"{v:.4f}" for v in rows[j]] + [int(labels[j])])


def main() -> None:
    params = yaml.safe_load(Path("params.yaml").read_text())["preprocess"]
    digits = load_digits()
    x = digits.data / 16.0  # pixel values 0..16 -> 0..1
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=params["test_fraction"], random_state=params["seed"]
    )
    write_shards(x_train, y_train, Path("data/train"), shards=4)
    write_shards(x_test, y_test, Path("data/test"), shards=1)
    print(f"prepared {len(x_train)} training and {len(x_test)} test images")


if __name__ == "__main__":
    main()
