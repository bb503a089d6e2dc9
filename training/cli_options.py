"""Typer options that several ``nextbest`` commands share, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

TrackingUri = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow store (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db).",
    ),
]
Bootstrap = Annotated[
    int, typer.Option("--bootstrap", min=10, help="Bootstrap resamples of the intervals.")
]
