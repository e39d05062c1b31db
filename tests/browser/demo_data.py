"""Realistic demo data for the browser tests and the docs screenshots, made through the services."""

from __future__ import annotations

import math
import random
from datetime import timedelta
from typing import Any

import rest_framework.views  # noqa: F401  (first: importing core.api before it is an import cycle)
from django.utils import timezone

from accounts.models import User
from experiments import services
from experiments.models import Run

DIGITS = [str(d) for d in range(10)]


def _curve(rng: random.Random, steps: int, start: float, end: float, noise: float) -> list[float]:
    out = []
    for step in range(steps):
        t = step / max(steps - 1, 1)
        base = end + (start - end) * math.exp(-4.5 * t)
        out.append(round(base + rng.gauss(0, noise) * (1 - 0.6 * t), 6))
    return out


def log_training(run: Run, *, rng: random.Random, steps: int = 200, lr: float = 0.001, with_nan: bool = False) -> None:
    """Params, a few metric histories and run info, as a training script would log them."""
    quality = 1.0 - min(abs(math.log10(lr) + 3) / 3, 0.6)
    train_loss = _curve(rng, steps, 2.3, 0.35 - 0.25 * quality, 0.05)
    val_loss = _curve(rng, steps, 2.3, 0.45 - 0.25 * quality, 0.07)
    val_acc = [round(min(0.999, 1 - v / 2.4 + rng.gauss(0, 0.004)), 6) for v in val_loss]
    lr_curve = [lr * 0.5 * (1 + math.cos(math.pi * s / steps)) for s in range(steps)]
    values: list[Any] = list(train_loss)
    if with_nan:
        for s in range(steps // 2, steps // 2 + 8):
            values[s] = "NaN"
        values[steps // 3] = "Infinity"
    step_list = list(range(steps))
    services.run_log(
        run=run,
        batch_id=None,
        params={
            "lr": lr,
            "batch_size": rng.choice([32, 64, 128]),
            "optimizer": rng.choice(["adam", "sgd", "adamw"]),
            "epochs": 20,
            "dropout": rng.choice([0.1, 0.2, 0.3]),
            "model": "cnn-small",
        },
        metric_columns=[
            {"key": "train/loss", "steps": step_list, "values": values},
            {"key": "val/loss", "steps": step_list, "values": val_loss},
            {"key": "val/accuracy", "steps": step_list, "values": val_acc},
            {"key": "lr", "steps": step_list, "values": lr_curve},
            {"key": "gpu/util", "steps": step_list[::4], "values": [rng.uniform(70, 98) for _ in step_list[::4]]},
        ],
    )


def confusion(rng: random.Random, labels: list[str], accuracy: float = 0.9, per_class: int = 100) -> list[list[int]]:
    matrix = []
    for i in range(len(labels)):
        row = [0] * len(labels)
        correct = int(per_class * accuracy + rng.randint(-5, 5))
        row[i] = correct
        for _ in range(per_class - correct):
            row[rng.choice([j for j in range(len(labels)) if j != i])] += 1
        matrix.append(row)
    return matrix


def demo_project(user: User, *, project: str = "mnist-cnn", runs: int = 24, seed: int = 7) -> Run:
    """A project of ``runs`` runs in two experiments; returns the best-looking finished run."""
    rng = random.Random(seed)
    now = timezone.now()
    path = f"{user.username}/{project}"
    featured: Run | None = None
    for index in range(runs):
        experiment = "baseline" if index % 3 else "augmentation"
        start = now - timedelta(hours=runs - index, minutes=rng.randint(0, 50))
        run = services.run_create(
            user=user,
            project_path=path,
            experiment=experiment,
            name=f"{experiment[:3]}-{index:03d}-lr{rng.choice(['1e-3', '3e-4', '1e-2'])}",
            start_time=start,
            tags={"dataset": "mnist-v2", "gpu": rng.choice(["a100", "t4"])},
            # Nested, as assay.init(config=…) logs it (derived from the index: the rng's sequence stays).
            config={
                "model": {"arch": "cnn-small", "width": [32, 64, 128][index % 3]},
                "schedule": {"name": "cosine", "warmup_steps": 100 * (1 + index % 4)},
                "augment": experiment == "augmentation",
            },
            notes="Cosine schedule, 20 epochs.\nCompare with the augmentation sweep." if index == runs - 2 else "",
            info={
                "code": {
                    "remote": "https://github.com/example/mnist-cnn.git",
                    "branch": "main",
                    "commit": f"{rng.getrandbits(160):040x}",
                    "dirty": index % 5 == 0,
                    "command": "python train.py --epochs 20",
                },
                "environment": {
                    "python": "3.11.9",
                    "os": "Linux-6.1-x86_64",
                    "accelerator": "NVIDIA A100 80GB",
                    "packages": {"torch": "2.4.1", "numpy": "2.1.0", "assay": "0.1.0"},
                },
                "system": {"cpu_count": 32, "memory_gb": 256, "peak_memory_mb": 3120 + index},
            },
        )
        lr = rng.choice([1e-3, 3e-4, 1e-2, 3e-3])
        log_training(run, rng=rng, steps=120 + 4 * index, lr=lr, with_nan=index == runs - 3)
        if index < runs - 1:
            status = "failed" if index % 7 == 3 else ("killed" if index % 11 == 5 else "finished")
            services.run_update(run=run, status=status, end_time=start + timedelta(minutes=rng.randint(8, 95)))
        if index == runs - 2:
            services.figure_confusion_matrix_add(
                run=run, name="val/confusion", labels=DIGITS, matrix=confusion(rng, DIGITS, 0.93), step=19
            )
            services.figure_confusion_matrix_add(
                run=run,
                name="test/confusion-coarse",
                labels=["cat", "dog", "bird"],
                matrix=confusion(rng, ["cat", "dog", "bird"], 0.8, 300),
            )
            featured = run
    assert featured is not None
    return featured
