"""Train a linear classifier on scikit-learn's digits and log it to Assay.

    pip install ./sdk[examples]
    export ASSAY_URL=http://127.0.0.1:8000 ASSAY_TOKEN=<your token>
    python examples/sklearn_train.py --project <team>/digits --epochs 20

Logs the config, per-epoch train/validation loss and accuracy, a confusion matrix of the
test set, the test accuracy as a summary, and the fitted model (scaler + classifier, saved
with joblib) as a model artifact, which the server's workers scan for unsafe pickle globals. Add ``--offline`` to log without a server,
then ``assay sync``.

With ``--register NAME`` the model also becomes the next version of model NAME in the
registry (``--alias staging`` points an alias at it), with the dataset's fingerprint::

    python examples/sklearn_train.py --project <team>/digits --register digits-sgd --alias staging
    python examples/sklearn_train.py --project <team>/digits --register digits-sgd --eta0 0.02
    assay models diff <team>/digits/digits-sgd@staging <team>/digits/digits-sgd@latest
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
from pathlib import Path

import assay
import joblib
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", default=os.environ.get("ASSAY_PROJECT", ""), help='"team/project"')
    parser.add_argument("--experiment", default="sgd-digits")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--alpha", type=float, default=1e-4, help="L2 regularisation")
    parser.add_argument("--eta0", type=float, default=0.01, help="initial learning rate")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--offline", action="store_true", help="log to the local spool; upload with `assay sync`")
    parser.add_argument("--register", metavar="NAME", help="register the model as the next version of model NAME")
    parser.add_argument("--alias", help="with --register: point this alias (e.g. staging) at the new version")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.25, random_state=args.seed, stratify=digits.target
    )
    x_train, x_val, y_train, y_val = train_test_split(x_train, y_train, test_size=0.2, random_state=args.seed)
    scaler = StandardScaler().fit(x_train)
    x_train, x_val, x_test = scaler.transform(x_train), scaler.transform(x_val), scaler.transform(x_test)
    classes = np.unique(digits.target)

    # The argparse namespace is the run's config, as is.
    with assay.init(
        project=args.project or None,
        experiment=args.experiment,
        config=args,
        tags={"dataset": "sklearn-digits", "model": "SGDClassifier"},
        mode="offline" if args.offline else None,
    ) as run:
        run.log_params(
            {"n_train": len(x_train), "n_val": len(x_val), "n_test": len(x_test), "n_features": x_train.shape[1]}
        )
        # The data's fingerprint: a version registered from this run records it (and a
        # reproduction can check it).
        data_digest = "sha256:" + hashlib.sha256(digits.data.tobytes() + digits.target.tobytes()).hexdigest()
        run.log_dataset("sklearn-digits", uri="sklearn.datasets.load_digits", digest=data_digest, rows=len(digits.data))
        model = SGDClassifier(
            loss="log_loss", alpha=args.alpha, learning_rate="constant", eta0=args.eta0, random_state=args.seed
        )
        rng = np.random.default_rng(args.seed)
        for epoch in range(args.epochs):
            order = rng.permutation(len(x_train))
            for start in range(0, len(order), args.batch_size):
                batch = order[start : start + args.batch_size]
                model.partial_fit(x_train[batch], y_train[batch], classes=classes)
            run.log(
                {
                    "train/loss": log_loss(y_train, model.predict_proba(x_train), labels=classes),
                    "train/acc": accuracy_score(y_train, model.predict(x_train)),
                    "val/loss": log_loss(y_val, model.predict_proba(x_val), labels=classes),
                    "val/acc": accuracy_score(y_val, model.predict(x_val)),
                },
                step=epoch,
            )
        predicted = model.predict(x_test)
        run.summary["test/acc"] = accuracy_score(y_test, predicted)
        run.log_confusion_matrix(y_test, predicted, labels=[str(c) for c in classes], name="test")
        with tempfile.TemporaryDirectory() as folder:
            model_file = Path(folder) / "model.joblib"
            joblib.dump({"scaler": scaler, "classifier": model}, model_file)
            run.log_model(model_file)
            run.wait_for_artifacts()  # the file is deleted when the folder closes
        print(f"test accuracy {run.summary['test/acc']:.3f} — {run.url or run.id}")
        if args.register:
            version = run.register_model(
                args.register, artifact="model.joblib", aliases=[args.alias] if args.alias else None
            )
            if version is not None:
                print(f"registered {args.register} v{version.number} ({version.content_hash[:12]}) — {version.url}")


if __name__ == "__main__":
    main()
