"""The ``nextbest`` command line: thin Typer commands that parse arguments and call pure functions.

Each command lives next to the lifecycle step it drives; this module only wires them up.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from training.cli_options import Bootstrap, TrackingUri
from training.hillstrom_commands import benchmark_app, hillstrom_app

app = typer.Typer(
    name="nextbest",
    help="Next-best-action for customer journeys: simulate, train, evaluate, serve.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Configure logging once for every command."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command()
def validate(
    data: Annotated[Path, typer.Option("--data", help="Folder with the four tables.")],
) -> None:
    """Validate a journey data folder against the contract and report every problem."""
    from features.io import DataValidationError, load_journeys

    try:
        journeys = load_journeys(data)
    except DataValidationError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(
        f"{data}: valid — {len(journeys.events)} events, {len(journeys.customers)} customers, "
        f"{len(journeys.catalog)} messages, {len(journeys.decisions)} decisions"
    )


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write (replaced atomically).")],
    customers: Annotated[int, typer.Option("--customers", help="Number of customers.")] = 10_000,
    days: Annotated[int, typer.Option("--days", help="Simulated days.")] = 90,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same data).")] = 0,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Simulate customer journeys: the four tables plus their ground truth (docs/simulator.md)."""
    from pydantic import ValidationError

    from features.simulator import SimulationConfig, write_simulation
    from features.simulator import simulate as run_simulation

    if fmt not in ("parquet", "csv"):
        typer.secho(f"--format: expected parquet or csv, got {fmt!r}", fg=typer.colors.RED,
                    err=True)
        raise typer.Exit(code=2)
    try:
        config = SimulationConfig(n_customers=customers, days=days, seed=seed)
    except ValidationError as exc:
        for error in exc.errors():
            option = {"n_customers": "--customers"}.get(str(error["loc"][0]),
                                                        f"--{error['loc'][0]}")
            typer.secho(f"{option}: {error['msg']}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from exc
    simulation = run_simulation(config, progress=progress)
    write_simulation(simulation, out, fmt=fmt)
    journeys = simulation.journeys
    typer.echo(
        f"{out}: {len(journeys.events)} events, {len(journeys.customers)} customers, "
        f"{len(journeys.catalog)} messages, {len(journeys.decisions)} decisions "
        f"(+ ground truth in {out / 'truth'})"
    )


@app.command()
def train(
    task: Annotated[
        str, typer.Argument(help="all (the config's tasks), conversion, churn, channel, sendtime.")
    ] = "all",
    data: Annotated[Path, typer.Option("--data", help="Folder with the four tables.")] = Path(
        "data/sim"
    ),
    config: Annotated[
        str | None,
        typer.Option("--config", help="YAML file, or a packaged name: default, fast, hillstrom."),
    ] = None,
    tracking_uri: TrackingUri = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a machine-readable summary on stdout.")
    ] = False,
) -> None:
    """Train, evaluate against baselines, register in MLflow and run the promotion gate."""
    from rich.console import Console

    from training.runner import CommandError, print_summary, run_train, summary_json

    try:
        summary = run_train(task, data, config, tracking_uri, progress=True)
    except CommandError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from exc
    if as_json:
        typer.echo(summary_json(summary))
    else:
        print_summary(summary, Console())


@app.command()
def demo(
    customers: Annotated[int, typer.Option("--customers", help="Simulated customers.")] = 3_000,
    days: Annotated[int, typer.Option("--days", help="Simulated days.")] = 60,
    seed: Annotated[int, typer.Option("--seed", help="Simulation seed.")] = 0,
    port: Annotated[int, typer.Option("--port", help="Port of the demo service.")] = 8000,
    serve: Annotated[
        bool, typer.Option(help="Start the service and send an example request after training.")
    ] = True,
) -> None:
    """Simulate into data/sim, train every model into ./mlflow.db, serve, ask once."""
    from rich.console import Console

    from training.demo import DemoError, DemoOptions, run_demo

    options = DemoOptions(customers=customers, days=days, seed=seed, port=port, serve=serve)
    try:
        code = run_demo(options, Console())
    except DemoError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from exc
    raise typer.Exit(code=code)


@app.command()
def promote(
    task: Annotated[str, typer.Argument(help="conversion, churn, channel or sendtime.")],
    version: Annotated[
        str | None, typer.Option("--version", help="Version to promote (default: challenger).")
    ] = None,
    alias: Annotated[str, typer.Option("--alias", help="Alias to move.")] = "champion",
    registry_prefix: Annotated[
        str, typer.Option("--registry-prefix", help="Registered models are <prefix>-<task>.")
    ] = "nextbest",
    tracking_uri: TrackingUri = None,
) -> None:
    """Move a registry alias by hand (logged on the version and as an audit run)."""
    from training.runner import CommandError, run_promote

    try:
        record = run_promote(task, version, alias, registry_prefix, tracking_uri)
    except CommandError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from exc
    previous = record["previous_version"]
    typer.echo(
        f"{record['model_name']}@{record['alias']}: "
        f"{'v' + str(previous) if previous else 'none'} -> v{record['version']}"
    )


@app.command()
def evaluate(
    data: Annotated[
        Path, typer.Option("--data", help="Folder with the four tables (+ truth/ if simulated).")
    ],
    models_alias: Annotated[
        str, typer.Option("--models-alias", help="Registry alias of the models to evaluate.")
    ] = "champion",
    tracking_uri: TrackingUri = None,
    bootstrap: Bootstrap = 1000,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Evaluate decisions from this ISO-8601 time (default: "
                     "after the models' training window)."),
    ] = None,
    decisions: Annotated[
        Path | None,
        typer.Option("--decisions", help="Decision log to evaluate instead of DIR's decisions: "
                     "JSON lines of the service's decision records, or a CSV/Parquet table."),
    ] = None,
    policy: Annotated[
        list[str] | None,
        typer.Option("--policy", help="Policy to estimate off-policy (repeatable): nextbest, "
                     "no_contact, journeys, random, logging_policy, oracle. Default: all."),
    ] = None,
    log_run: Annotated[
        bool, typer.Option("--log/--no-log", help="Log the report to MLflow (nextbest-evaluation).")
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON on stdout.")
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", min=1, help="Worker processes deciding the rows (default: one "
                     "per CPU; 1: in this process)."),
    ] = None,
) -> None:
    """Value of the policy's decisions: oracle (simulated data), off-policy estimates, lift."""
    import pandas as pd
    from rich.console import Console

    from training.evaluation.command import run_evaluate
    from training.evaluation.report import print_report, report_json
    from training.runner import CommandError

    start = None
    if since is not None:
        try:
            stamp = pd.Timestamp(since)
        except ValueError as exc:
            typer.secho(f"--since: expected an ISO-8601 time such as 2024-03-01T00:00Z, got "
                        f"{since!r}", fg=typer.colors.RED, err=True)
            raise typer.Exit(code=2) from exc
        start = (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).to_pydatetime()
    try:
        report, run_id = run_evaluate(data, models_alias, tracking_uri, bootstrap, start, log_run,
                                      tuple(policy) if policy else None, decisions, jobs)
    except CommandError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from exc
    if as_json:
        typer.echo(report_json(report))
    else:
        print_report(report, Console())
        if run_id is not None:
            typer.echo(f"MLflow run {run_id} (experiment nextbest-evaluation)")


@app.command()
def lift(
    decisions: Annotated[
        Path,
        typer.Option("--decisions", help="Decision log: JSON lines of decision records "
                     "(.jsonl), or CSV/Parquet with customer_id, ts, assignment[, campaign]."),
    ],
    events: Annotated[
        Path, typer.Option("--events", help="Events table (CSV/Parquet) in the journey contract.")
    ],
    attribution_hours: Annotated[
        float, typer.Option("--attribution-hours", help="Outcome window after the last decision.")
    ] = 168.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON records on stdout.")
    ] = False,
) -> None:
    """Lift of the policy over its control groups: conversion rate and revenue per customer."""
    from rich.console import Console

    from features.contract import Table
    from features.io import DataValidationError, load_table
    from models.policy.lift import lift_report, lift_table, read_decision_log

    try:
        report = lift_report(
            read_decision_log(decisions), load_table(events, Table.EVENTS), attribution_hours
        )
    except DataValidationError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from exc
    if as_json:
        typer.echo(report.to_json(orient="records"))
    else:
        Console().print(lift_table(report))



@app.command("features")
def features_command(
    data: Annotated[Path, typer.Option("--data", help="Folder with the four tables.")],
    out: Annotated[Path, typer.Option("--out", help="File to write: .parquet or .csv.")],
    as_of: Annotated[
        list[str] | None,
        typer.Option("--as-of", help="As-of time, ISO 8601 (repeatable). Default: just after "
                     "the last event."),
    ] = None,
) -> None:
    """Point-in-time features of every customer at each as-of time (docs/features.md)."""
    import pandas as pd

    from features.io import DataValidationError, load_journeys
    from features.pointintime import snapshot_features

    times = []
    for text in as_of or []:
        try:
            stamp = pd.Timestamp(text)
        except ValueError as exc:
            typer.secho(f"--as-of: expected an ISO-8601 time such as 2024-05-01T00:00Z, got "
                        f"{text!r}", fg=typer.colors.RED, err=True)
            raise typer.Exit(code=2) from exc
        times.append(stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp)
    if out.suffix not in (".parquet", ".csv"):
        typer.secho(f"--out: expected a .parquet or .csv file, got {out}", fg=typer.colors.RED,
                    err=True)
        raise typer.Exit(code=2)
    try:
        frame = snapshot_features(load_journeys(data), times)
    except DataValidationError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
    typer.echo(f"{out}: {len(frame)} rows, {frame.shape[1] - 2} features")

@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Worker processes (each binds the port).")
    ] = 1,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Journey data folder to seed the store (NEXTBEST_DATA_DIR)."),
    ] = None,
) -> None:
    """Serve the recommend API (settings from NEXTBEST_* variables, see docs/serving.md)."""
    import os

    from pydantic import ValidationError

    from features.io import DataValidationError
    from models.policy import PolicyConfigError
    from serving.server import serve as run_server
    from serving.settings import Settings
    from serving.stores import StoreError

    if data is not None:
        os.environ["NEXTBEST_DATA_DIR"] = str(data.resolve())  # read by every worker process
    try:
        Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        typer.secho(f"invalid NEXTBEST_* settings: {problems}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from exc
    try:
        code = run_server(host, port, workers)
    except (DataValidationError, StoreError, PolicyConfigError) as exc:
        typer.secho(f"cannot start: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from exc
    raise typer.Exit(code=code)


app.add_typer(hillstrom_app, name="hillstrom")
app.add_typer(benchmark_app, name="benchmark")


if __name__ == "__main__":
    app()
