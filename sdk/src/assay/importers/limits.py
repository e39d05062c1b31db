"""What Assay holds at most where a source holds more: one place for the readers to fit a run."""

from __future__ import annotations

from assay.importers.model import SourceRun

MAX_NAME = 128  # a run's name and an experiment's name (experiments.models)


def fit_names(run: SourceRun) -> SourceRun:
    """Cut a run's name and experiment name to Assay's length, saying so with the full text (a
    Neptune 2.x ``sys/name`` is free text, used as the experiment name)."""
    for label, attribute in (("name", "name"), ("experiment name", "experiment")):
        value = getattr(run, attribute)
        if len(value) > MAX_NAME:
            setattr(run, attribute, value[: MAX_NAME - 1] + "…")
            run.remarks.append(f"{label} cut to {MAX_NAME} characters; in full: {value}")
    return run
