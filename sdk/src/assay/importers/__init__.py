"""``assay import mlflow|wandb|neptune``: bring a team's history into a project.

Each source module (``mlflow``, ``wandb``, ``neptune``) has ``add_arguments(parser)`` for
its own options and ``open_source(args) -> Source`` (raising ``UsageError`` with one line
naming the problem: a missing path, a store of the wrong kind…). The options every
import shares (project, dry run, server) are added here, and ``writer.import_source``
does the rest, the same way for every source.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

# The sources whose reader module exists; each branch adding one adds its name here.
_CLI_SOURCES: tuple[str, ...] = ("mlflow", "wandb", "neptune")


def add_parser(commands: Any) -> None:
    """Add ``assay import <source>`` to the CLI's subcommands."""
    parser = commands.add_parser("import", help="import history from MLflow, W&B or Neptune, exactly once")
    sources = parser.add_subparsers(dest="import_source", required=True)
    for name in _CLI_SOURCES:
        module = importlib.import_module(f"assay.importers.{name}")
        sub = sources.add_parser(name, help=module.HELP)
        module.add_arguments(sub)
        sub.add_argument("--project", "-p", help='"team/project" to import into (default: ASSAY_PROJECT)')
        sub.add_argument("--dry-run", action="store_true", help="read the source and say what would be imported")
        sub.add_argument("--url", help="server URL (default: ASSAY_URL or the stored login)")
        sub.set_defaults(func=run, import_module=module)


def run(args: argparse.Namespace) -> int:
    from assay.importers import writer

    source = args.import_module.open_source(args)
    return writer.import_source(source, args)
