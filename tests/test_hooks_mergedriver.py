"""The manifest merge, entry by entry (the driver's logic on its own; git runs it in
test_hooks_branches.py)."""

from __future__ import annotations

from git_model.hashing import hash_bytes
from git_model.hooks.mergedriver import ListingFinder, merge_manifests, merge_sets
from git_model.manifest import Artifact, Manifest, Model


def art(path: str, data: bytes) -> Artifact:
    return Artifact(path, hash_bytes(data), len(data))


def model(**kw: object) -> Model:
    m = Model("m", weights=["w.bin"], params=["p.yaml"])
    for key, value in kw.items():
        setattr(m, key, value)
    return m


def test_sets_merge_three_ways() -> None:
    assert merge_sets(["a", "b"], ["a", "b", "c"], ["b"]) == ["b", "c"]


def test_models_merge_by_component_and_hyperparameter() -> None:
    base = Manifest(
        {"w.bin": art("w.bin", b"0")},
        {"m": model(hyperparameters={"lr": 1, "bs": 8}, version=hash_bytes(b"base"))},
    )
    ours = Manifest(
        {"w.bin": art("w.bin", b"1")},
        {"m": model(hyperparameters={"lr": 2, "bs": 8}, version=hash_bytes(b"ours"))},
    )
    theirs = Manifest(
        {"w.bin": art("w.bin", b"0")},
        {
            "m": model(
                hyperparameters={"lr": 1, "bs": 16}, code=["train.py"], version=hash_bytes(b"t")
            )
        },
    )
    merged = merge_manifests(base, ours, theirs, ListingFinder(None))
    assert merged.sides is None and not merged.messages
    m = merged.result.models["m"]
    assert m.hyperparameters == {"lr": 2, "bs": 16} and m.code == ["train.py"]
    assert m.version is None  # both sides changed it: computed again later, never guessed
    assert merged.result.artifacts["w.bin"] == art("w.bin", b"1")


def test_one_side_untouched_keeps_the_other_sides_version() -> None:
    v0, v1 = hash_bytes(b"v0"), hash_bytes(b"v1")
    base = Manifest({}, {"m": model(version=v0)})
    ours = Manifest({"x.bin": art("x.bin", b"x")}, {"m": model(version=v0)})
    theirs = Manifest({}, {"m": model(version=v1)})
    merged = merge_manifests(base, ours, theirs, ListingFinder(None))
    assert merged.result.models["m"].version == v1
    assert "x.bin" in merged.result.artifacts


def test_conflicts_are_named_with_both_sides() -> None:
    base = Manifest({"w.bin": art("w.bin", b"0")}, {"m": model(hyperparameters={"lr": 1})})
    ours = Manifest({"w.bin": art("w.bin", b"1")}, {"m": model(hyperparameters={"lr": 2})})
    theirs = Manifest({}, {"m": model(hyperparameters={"lr": 3})})
    merged = merge_manifests(base, ours, theirs, ListingFinder(None))
    assert merged.sides is not None
    text = "\n".join(merged.messages)
    assert f"artifact w.bin changed on both sides: ours {hash_bytes(b'1')}" in text
    assert "theirs deleted" in text
    assert "model m: hyperparameter lr set differently on both sides" in text
    _, ours_side, theirs_side = merged.sides
    assert "w.bin" in ours_side.artifacts and "w.bin" not in theirs_side.artifacts
