"""Train small real models from the datasets scikit-learn ships, for tests, benchmarks and rollout scenarios.

    python model-server/examples/train.py OUTPUT_DIR [--datasets iris digits breast_cancer] [--slow-trees 300]

For each dataset it writes:

``<dataset>-good.joblib``   standardised logistic regression: the model a rollout should promote;
``<dataset>-bad.joblib``    the same pipeline fitted on shuffled labels: about chance accuracy, a rollout must roll back
                            on accuracy;
``<dataset>-slow.joblib``   a random forest with many trees: as accurate, much slower per request, a rollout must
                            roll back on latency;
``<dataset>-good.onnx``     the good model exported with skl2onnx (labels and a probability tensor, no ZipMap);
``<dataset>-eval.json``     held-out rows and their true labels, to send realistic traffic and ground truth.

and ``manifest.json`` with each file's sha256, held-out accuracy, feature count and classes. No data is downloaded:
all three datasets are bundled with scikit-learn. Training is seeded, so repeated runs give the same models.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import joblib
import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

DATASETS = {"iris": load_iris, "digits": load_digits, "breast_cancer": load_breast_cancer}
SEED = 7


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _good(x: np.ndarray, y: np.ndarray) -> object:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, y)


def _bad(x: np.ndarray, y: np.ndarray) -> object:
    shuffled = np.random.default_rng(SEED).permutation(y)
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, shuffled)


def _slow(x: np.ndarray, y: np.ndarray, trees: int) -> object:
    return RandomForestClassifier(n_estimators=trees, random_state=SEED, n_jobs=1).fit(x, y)


def _export_onnx(model: object, n_features: int, path: Path) -> None:
    from skl2onnx import to_onnx

    sample = np.zeros((1, n_features), dtype=np.float32)
    onnx_model = to_onnx(model, sample, options={id(model): {"zipmap": False}}, target_opset=17)
    path.write_bytes(onnx_model.SerializeToString())


def train(dataset: str, out: Path, *, slow_trees: int, onnx: bool) -> dict[str, dict]:
    x, y = DATASETS[dataset](return_X_y=True)
    x = x.astype(np.float64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=SEED, stratify=y)
    models = {
        "good": _good(x_train, y_train),
        "bad": _bad(x_train, y_train),
        "slow": _slow(x_train, y_train, slow_trees),
    }
    entries: dict[str, dict] = {}
    for kind, model in models.items():
        path = out / f"{dataset}-{kind}.joblib"
        joblib.dump(model, path)
        entries[path.name] = {
            "dataset": dataset, "kind": kind, "format": "sklearn", "sha256": _sha256(path),
            "accuracy": round(float(model.score(x_test, y_test)), 4),
            "n_features": int(x.shape[1]), "classes": [int(c) for c in np.unique(y)],
        }
    if onnx:
        path = out / f"{dataset}-good.onnx"
        _export_onnx(models["good"], x.shape[1], path)
        entries[path.name] = {**entries[f"{dataset}-good.joblib"], "format": "onnx", "sha256": _sha256(path)}
    evaluation = {"x": x_test.tolist(), "y": [int(v) for v in y_test]}
    (out / f"{dataset}-eval.json").write_text(json.dumps(evaluation))
    return entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="directory to write models into (created if missing)")
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=sorted(DATASETS))
    parser.add_argument("--slow-trees", type=int, default=300, help="trees in the deliberately slow forest")
    parser.add_argument("--no-onnx", dest="onnx", action="store_false", help="skip the ONNX export")
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, dict] = {}
    for dataset in args.datasets:
        manifest.update(train(dataset, args.output, slow_trees=args.slow_trees, onnx=args.onnx))
    (args.output / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    for name, entry in sorted(manifest.items()):
        print(f"{name:32} accuracy {entry['accuracy']:.3f}  sha256 {entry['sha256'][:12]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
