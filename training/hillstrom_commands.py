"""``nextbest hillstrom export`` and ``nextbest benchmark hillstrom``: thin Typer commands.

Only Typer is imported here, so ``nextbest --help`` stays fast; the work is imported inside each
command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from training.cli_options import Bootstrap, TrackingUri

hillstrom_app = typer.Typer(
    help="Kevin Hillstrom's MineThatData e-mail experiment (64,000 customers, vendored).",
    no_args_is_help=True,
)
benchmark_app = typer.Typer(help="Benchmarks of decision quality on real data.",
                            no_args_is_help=True)


@hillstrom_app.command("export")
def export(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the four tables into.")],
    fmt: Annotated[
        str, typer.Option("--format", help="parquet or csv.", case_sensitive=False)
    ] = "parquet",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the outcome event times.")] = 0,
    source: Annotated[
        Path | None,
        typer.Option("--source", help="A Hillstrom CSV in the original format (default: the "
                     "copy shipped with nextbest)."),
    ] = None,
) -> None:
    """Write the experiment as journey data (customers, catalog, decisions, events)."""
    from features.io import DataValidationError
    from training.hillstrom import export_journeys

    if fmt.lower() not in {"parquet", "csv"}:
        typer.secho(f"--format: expected parquet or csv, got {fmt!r}", fg=typer.colors.RED,
                    err=True)
        raise typer.Exit(code=2)
    try:
        journeys = export_journeys(out, fmt=fmt.lower(), source=source, seed=seed)
    except DataValidationError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(
        f"{out}: {len(journeys.customers):,} customers, {len(journeys.decisions):,} decisions, "
        f"{len(journeys.events):,} events, {len(journeys.catalog)} messages ({fmt.lower()})"
    )


@benchmark_app.command("hillstrom")
def benchmark_hillstrom(
    folds: Annotated[int, typer.Option("--folds", min=2, help="Cross-fitting folds.")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of folds, models, bootstrap.")] = 0,
    bootstrap: Bootstrap = 1000,
    source: Annotated[
        Path | None,
        typer.Option("--source", help="A Hillstrom CSV (default: the copy shipped with "
                     "nextbest)."),
    ] = None,
    tracking_uri: TrackingUri = None,
    log_run: Annotated[
        bool, typer.Option("--log/--no-log", help="Log the run to MLflow (nextbest-hillstrom).")
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the results as JSON on stdout.")
    ] = False,
) -> None:
    """Learn a policy over none/Mens/Womens e-mail per outcome with cross-fitting and estimate
    its value off-policy (IPS, SNIPS, DR with bootstrap CIs) against the single arms."""
    import json

    from rich.console import Console

    from features.io import DataValidationError
    from training.evaluation.hillstrom_benchmark import BenchmarkConfig, run_benchmark
    from training.evaluation.hillstrom_report import log_to_mlflow, summary, tables
    from training.hillstrom import read_hillstrom

    try:
        frame = read_hillstrom(source)
    except DataValidationError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from exc
    try:
        result = run_benchmark(
            frame, BenchmarkConfig(folds=folds, seed=seed, n_bootstrap=bootstrap)
        )
    except ValueError as exc:  # too little data for the folds, or no treated/control rows
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from exc
    run_id = log_to_mlflow(result, tracking_uri) if log_run else None
    if as_json:
        typer.echo(json.dumps(summary(result) | {"mlflow_run_id": run_id}, indent=2))
        return
    console = Console()
    for table in tables(result):
        console.print(table)
    if run_id is not None:
        console.print(f"MLflow run {run_id} (experiment nextbest-hillstrom)")
