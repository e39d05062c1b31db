"""Live events of the artifacts app: published after commit (live.publish), with the REST
output's shapes.

* ``run:<id>``: ``artifact.processed`` (the artifact, as in its list, with its run's id)
  when processing made it ready or gave up on it.
"""

from __future__ import annotations

from typing import Any

from artifacts.models import Artifact
from artifacts.presenters import artifact_out
from live.publish import publish_lazy_on_commit
from live.topics import run_topic


def artifact_processed(artifact_id: str) -> None:
    def build() -> dict[str, Any] | None:
        artifact = Artifact.objects.filter(pk=artifact_id).first()
        if artifact is None:
            return None
        out = artifact_out(artifact)
        out["run"] = artifact.run_id
        return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in out.items()}

    run_id = Artifact.objects.filter(pk=artifact_id).values_list("run_id", flat=True).first()
    if run_id is not None:
        publish_lazy_on_commit(topics=[run_topic(run_id)], event="artifact.processed", build=build)
