"""``consilium import PATH... [--data-dir D] [--type T] [--batch N] [--fail-fast]``.

Kept out of ``server/cli.py`` (which only registers it) so the import's options and output live
with the import. Output: a progress bar on stderr (``seed.progress``, handed in by ``server.cli``), one line per failed line
(``path:line: status diagnostics``) on stderr, a summary on stdout. Exit code 0 when every line
was imported (or skipped by ``--type``), 1 when any line failed, 2 when the inputs are unusable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from server.bulk.load import DEFAULT_BATCH, Failure, Importer
from server.bulk.ndjson import count_lines, expand, read_lines


def add_parser(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    common: Callable[[argparse.ArgumentParser], None],
    progress_bar: Callable[[str], Callable[[int, int], None]],
) -> None:
    """Register ``import``; ``progress_bar(label)`` makes the bar (``seed.progress.ProgressBar``,
    handed in by the CLI, the composition root: the server does not import ``seed``)."""
    p = sub.add_parser(
        "import",
        help="load FHIR NDJSON files (.ndjson, .ndjson.gz, directories) as PUTs, in batches",
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.add_argument(
        "--type",
        action="append",
        metavar="T",
        help="import only resources of this type (repeatable); other lines are skipped",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=DEFAULT_BATCH,
        metavar="N",
        help=f"resources per transaction (default {DEFAULT_BATCH})",
    )
    p.add_argument("--fail-fast", action="store_true", help="stop at the first line that fails")
    common(p)
    p.set_defaults(func=cmd_import, progress_bar=progress_bar)


def _report(failure: Failure) -> None:
    sys.stderr.write(f"{failure.source}:{failure.line}: {failure.status} {failure.text}\n")


def cmd_import(args: argparse.Namespace) -> int:
    from server.app import create_app
    from server.cli import _settings, database
    from server.repository import Repository
    from server.search.registry_state import check

    if args.batch < 1:
        sys.stderr.write("--batch must be at least 1\n")
        return 2
    try:
        files = expand(args.paths)
        total = count_lines(files)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    settings = _settings(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with database(settings) as uri:
        app = create_app(settings, mongodb_uri=uri)
        state = app.state.consilium
        check(state.store)
        writer = state.audit_writer
        importer = Importer(
            Repository(state.store, state.hooks),
            settings,
            batch=args.batch,
            types=args.type,
            fail_fast=args.fail_fast,
            on_failure=_report,
            progress=args.progress_bar("import"),
            audit=writer.submit if writer is not None else None,
        )
        try:
            result = importer.run(read_lines(files), total)
        finally:
            for hook in state.shutdown_hooks:  # the audit queue, as the server's shutdown does
                hook()
            state.store.close()
    rate = result.imported / result.seconds if result.seconds else 0.0
    print(
        f"imported {result.imported} ({result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged), skipped {result.skipped}, failed "
        f"{len(result.failures)}, in {result.seconds:.1f}s ({rate:.0f} resources/s, "
        f"{result.batches} transactions)"
        + (" - stopped at the first failure" if result.stopped else "")
    )
    return 0 if result.ok else 1
