"""Topic names: the publishers' side. A client subscribes with the same strings (``user``
stands for ``user:<its own id>``); ``live.access.access_topic`` parses and checks them."""

from __future__ import annotations


def run_topic(run_id: str) -> str:
    return f"run:{run_id}"


def project_topic(team: str, project: str) -> str:
    return f"project:{team}/{project}"


def review_topic(team: str, project: str, number: int) -> str:
    return f"review:{team}/{project}/{number}"


def user_topic(user_id: int) -> str:
    return f"user:{user_id}"
