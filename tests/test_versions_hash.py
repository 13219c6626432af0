"""Golden vectors for the model version hash (recipe 1), and the parsing of hyperparameters.

The digests below are pinned: any machine, any OS, any Python must compute exactly these. A
change here is a change of recipe, which needs a new recipe number (see versions.py).
"""

from __future__ import annotations

import hashlib
import json

import pytest
from conftest import Shell

from git_model.errors import UsageError
from git_model.hashing import Oid
from git_model.hyperparams import flatten, parse_assignment, parse_params_file, parse_value
from git_model.listing import Entry, format_listing, listing_oid
from git_model.manifest import Artifact, Manifest, Model
from git_model.versions import INPUTS_PREFIX, PREFIX, model_inputs, model_version, version_lines


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


FILES = {"params.yaml": b"train:\n  lr: 0.01\n", "src/prep \u00e9.py": b"print('hi')\n"}
HYPER = {
    "train.lr": 0.001,
    "epochs": 10,
    "layers": [64, 32],
    "name": "\u00fcn\u00ef",
    "opt": {"b": True, "a": 1.5},
}
LISTING = (
    b"ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb\t1\t644\ta.csv\n"
    b"3b64db95cb55c763391c707108489ae18b4112d783300de38e033b4c98c3deaf\t2\t644\tsub/b.csv\n"
)
LINES = (
    "code\tsrc/prep \u00e9.py\tcaf026f25d7140209f98072605307a438914b9ce6f3c14b23d15d9667241de52\n"
    "data\tdata/train\t0caf2c6e42496e7a5145d7f1a2c2b43ed4754350e132728c95a257d6eda81640\n"
    "params\tparams.yaml\t935ea4a61ae7b8c77cef85ac697f5204549c987057ff2717f6c1ee78095f9bb3\n"
    "weights\tmodel.bin\t13e35c44395f6cade670c076230362267c5288989d3498e207877d62b859a6d8\n"
    "hyperparameters\tepochs\t10\n"
    "hyperparameters\tlayers\t[64,32]\n"
    'hyperparameters\tname\t"\u00fcn\u00ef"\n'
    'hyperparameters\topt\t{"a":1.5,"b":true}\n'
    "hyperparameters\ttrain.lr\t0.001\n"
).encode()
GOLDEN = "3af891c90feb0fe012ba361c53ab7a51e3ce45bc4d54fcc0eb2c7e6d9cb84069"


def golden_manifest() -> tuple[Manifest, Model]:
    listing = format_listing(
        [Entry("sub/b.csv", Oid(sha(b"bb")), 2), Entry("a.csv", Oid(sha(b"a")), 1)]
    )
    assert listing == LISTING
    manifest = Manifest()
    manifest.artifacts["model.bin"] = Artifact("model.bin", Oid(sha(b"weights v1")), 10)
    manifest.artifacts["data/train"] = Artifact("data/train", listing_oid(listing), 3, 2)
    model = Model(
        "digits",
        weights=["model.bin"],
        data=["data/train"],
        params=["params.yaml"],
        code=["src/prep \u00e9.py"],
        hyperparameters=HYPER,
    )
    manifest.models["digits"] = model
    return manifest, model


def test_golden_vector_pins_the_recipe() -> None:
    manifest, model = golden_manifest()
    # the recipe, spelled out: component lines sorted by (kind, path), then inline
    # hyperparameters sorted by key with canonical JSON values, all after a versioned prefix
    assert PREFIX == b"git-model version 1\n"
    assert version_lines(model, manifest, FILES.get) == LINES
    assert sha(PREFIX + LINES) == GOLDEN
    assert model_version(model, manifest, FILES.get) == GOLDEN


def test_golden_vector_pins_the_input_recipe() -> None:
    manifest, model = golden_manifest()
    # input recipe 1: the version's lines without the weights, after its own prefix
    assert INPUTS_PREFIX == b"git-model inputs 1\n"
    lines = b"".join(line + b"\n" for line in LINES.splitlines() if not line.startswith(b"weights"))
    golden = "ee42bc2b0eb829e619384a600715ecb98a594ccb964f6450ffe665f1fc10cde0"
    assert sha(INPUTS_PREFIX + lines) == golden
    assert model_inputs(model, manifest, FILES.get) == golden
    retrained = manifest.copy()
    retrained.artifacts["model.bin"] = Artifact("model.bin", Oid(sha(b"weights v2")), 10)
    assert model_inputs(model, retrained, FILES.get) == golden  # weights are outputs
    assert model_version(model, retrained, FILES.get) != GOLDEN


def test_golden_vectors_for_edge_cases() -> None:
    empty = Model("empty")
    assert model_version(empty, Manifest(), FILES.get) == (
        "2d562cdd6469459924b0e063d2088917bda2a9eb37c321598349dffdf76853a5"
    )
    # a component file absent at this revision hashes as "-"
    gone = Model("gone", code=["gone.py"], hyperparameters={"lr": 1})
    assert (
        version_lines(gone, Manifest(), FILES.get) == b"code\tgone.py\t-\nhyperparameters\tlr\t1\n"
    )
    assert model_version(gone, Manifest(), FILES.get) == (
        "a68461cface39a2ec953f033d76cbbf8e1619416d59d1de3408d7f3109a49150"
    )


def test_metrics_and_names_never_enter_the_hash() -> None:
    manifest, model = golden_manifest()
    renamed = Model(
        "other",
        model.weights,
        model.data,
        model.params,
        model.code,
        dict(reversed(list(HYPER.items()))),  # insertion order does not matter either
    )
    assert model_version(renamed, manifest, FILES.get) == GOLDEN
    changed = Model("digits", hyperparameters={**HYPER, "epochs": 10.0})
    assert model_version(changed, manifest, FILES.get) != GOLDEN  # 10 and 10.0 differ


def test_the_cli_computes_the_golden_version(repo: Shell) -> None:
    repo.write("model.bin", b"weights v1")
    repo.write("data/train/a.csv", b"a")
    repo.write("data/train/sub/b.csv", b"bb")
    repo.write("params.yaml", FILES["params.yaml"])
    repo.write("src/prep \u00e9.py", FILES["src/prep \u00e9.py"])
    repo.model("add", "model.bin", "--model", "digits")
    repo.model("add", "data/train", "--model", "digits", "--kind", "data")
    repo.model("add", "params.yaml", "--model", "digits", "--kind", "params")
    repo.model("add", "src/prep \u00e9.py", "--model", "digits", "--kind", "code")
    repo.model(
        "add",
        "--model",
        "digits",
        "--param",
        "train.lr=0.001",
        "--param",
        "epochs=10",
        "--param",
        "layers=[64, 32]",
        "--param",
        "name=\u00fcn\u00ef",
        "--param",
        'opt={"b": true, "a": 1.5}',
    )
    repo.git("commit", "-q", "-m", "golden")
    shown = json.loads(repo.model("show", "--json").stdout)
    assert shown["models"][0]["version"] == GOLDEN
    assert shown["warnings"] == []


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0.01", 0.01),
        ("10", 10),
        ("true", True),
        ("[1, 2]", [1, 2]),
        ('"10"', "10"),
        ("adam", "adam"),
        ("NaN", "NaN"),  # not JSON: kept as text
        ("", ""),
    ],
)
def test_param_values_are_json_when_they_parse(text: str, value: object) -> None:
    assert parse_value(text) == value
    assert type(parse_value(text)) is type(value)


def test_param_assignments_are_checked() -> None:
    assert parse_assignment("train.lr=1e-3") == ("train.lr", 0.001)
    for bad in ("novalue", "=1", "a..b=1", "a.=1"):
        with pytest.raises(UsageError):
            parse_assignment(bad)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("p.yaml", "train:\n  lr: 0.01\n  layers: [1, 2]\nseed: 1\nday: 2024-01-02\n"),
        ("p.json", '{"train": {"lr": 0.01, "layers": [1, 2]}, "seed": 1, "day": "2024-01-02"}'),
        ("p.toml", "seed = 1\nday = 2024-01-02\n[train]\nlr = 0.01\nlayers = [1, 2]\n"),
    ],
)
def test_params_files_flatten_to_the_same_dotted_keys(path: str, text: str) -> None:
    assert parse_params_file(path, text.encode()) == {
        "train.lr": 0.01,
        "train.layers": [1, 2],
        "seed": 1,
        "day": "2024-01-02",
    }


def test_flatten_keeps_empty_tables_and_lists_as_values() -> None:
    assert flatten({"a": {}, "b": {"c": [{"d": 1}]}}) == {"a": {}, "b.c": [{"d": 1}]}
