"""Loading, validating and writing journey data (CSV or Parquet) in the contract's four tables.

Every problem is reported with the file, the row(s) (1-based data rows, the header not counted),
the column and what was expected; all problems of a file are collected before raising, so one
run shows everything to fix. Writing is atomic: tables go to a temporary folder that replaces
the target only once everything is written.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from features.contract import (
    CONSENT_COLUMNS,
    COST_COLUMNS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    Col,
    Table,
)
from features.schemas import TS_DTYPE, schema_for

logger = logging.getLogger(__name__)

_TS_COLUMNS = {Col.TS, Col.SIGNUP_TS, Col.SEND_AT}
_FLOAT_COLUMNS = {Col.VALUE, Col.PROPENSITY, *COST_COLUMNS}
_INT_COLUMNS = {Col.COOLDOWN_HOURS}
_BOOL_COLUMNS = {Col.REQUIRES_CART, *CONSENT_COLUMNS}
_NULLABLE = {
    Table.EVENTS: {Col.CHANNEL, Col.MESSAGE_ID, Col.DECISION_ID, Col.VALUE, Col.PROPERTIES},
    Table.DECISIONS: {Col.MESSAGE_ID, Col.CHANNEL, Col.SEND_AT, Col.CAMPAIGN},
}
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}
_MAX_ROWS_SHOWN = 5


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where it is and what was expected."""

    file: str
    column: str | None
    expected: str
    rows: tuple[int, ...] = ()
    found: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = self.file
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows[:_MAX_ROWS_SHOWN])
            more = f" and {len(self.rows) - _MAX_ROWS_SHOWN} more" if len(self.rows) > 5 else ""
            where += f", row{'s' if len(self.rows) > 1 else ''} {shown}{more}"
        if self.column:
            where += f", column '{self.column}'"
        found = ""
        if self.found:
            found = " (found " + ", ".join(repr(f) for f in self.found[:_MAX_ROWS_SHOWN]) + ")"
        return f"{where}: expected {self.expected}{found}"


class DataValidationError(ValueError):
    """Input data broke the contract; ``problems`` says where and how."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the journey data:\n{lines}")


@dataclass
class Journeys:
    """The four validated tables of a journey data set."""

    events: pd.DataFrame
    customers: pd.DataFrame
    catalog: pd.DataFrame
    decisions: pd.DataFrame

    def table(self, table: Table) -> pd.DataFrame:
        frame: pd.DataFrame = getattr(self, table.value)
        return frame


def find_table_file(directory: Path, table: Table) -> Path:
    """The file holding ``table`` in ``directory``: ``<table>.parquet`` or ``<table>.csv``."""
    for suffix in (".parquet", ".csv", ".csv.gz"):
        candidate = directory / f"{table.value}{suffix}"
        if candidate.exists():
            return candidate
    raise DataValidationError(
        [Problem(str(directory), None, f"a file {table.value}.parquet or {table.value}.csv")]
    )


def read_raw(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file as-is (CSV cells as strings, so nothing is silently cast)."""
    if not path.exists():
        raise DataValidationError([Problem(str(path), None, "an existing file")])
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except Exception as exc:  # pyarrow and the csv parser raise many types; all mean "unreadable"
        raise DataValidationError(
            [Problem(str(path), None, f"a readable CSV or Parquet file ({exc})")]
        ) from exc


def _rows(mask: np.ndarray | pd.Series) -> tuple[int, ...]:
    return tuple(int(i) + 1 for i in np.flatnonzero(np.asarray(mask)))


def _coerce_column(
    frame: pd.DataFrame, column: str, nullable: bool, file: str
) -> tuple[pd.Series, list[Problem]]:
    raw = frame[column]
    missing = raw.isna().to_numpy()
    problems: list[Problem] = []
    if missing.any() and not nullable:
        problems.append(Problem(file, column, "a value (cell is empty)", _rows(missing)))
    if column in _TS_COLUMNS:
        if pd.api.types.is_datetime64_any_dtype(raw):
            series = raw.dt.tz_localize("UTC") if raw.dt.tz is None else raw.dt.tz_convert("UTC")
            return series.astype(TS_DTYPE), problems
        parsed = pd.to_datetime(raw, utc=True, errors="coerce", format="mixed")
        bad = parsed.isna().to_numpy() & ~missing
        if bad.any():
            problems.append(
                Problem(
                    file, column, "an ISO-8601 timestamp such as 2024-05-01T09:30:00Z",
                    _rows(bad), tuple(str(v) for v in raw[bad].head(_MAX_ROWS_SHOWN)),
                )
            )
        return parsed.astype(TS_DTYPE), problems
    if column in _FLOAT_COLUMNS or column in _INT_COLUMNS:
        numeric = pd.to_numeric(raw, errors="coerce")
        bad = numeric.isna().to_numpy() & ~missing
        kind = "an integer" if column in _INT_COLUMNS else "a number"
        if column in _INT_COLUMNS:
            bad |= (numeric.notna() & (numeric != numeric.round())).to_numpy()
        if bad.any():
            problems.append(
                Problem(file, column, kind, _rows(bad),
                        tuple(str(v) for v in raw[bad].head(_MAX_ROWS_SHOWN)))
            )
        if column in _INT_COLUMNS:
            return numeric.fillna(0).round().astype("int64"), problems
        return numeric.astype("float64"), problems
    if column in _BOOL_COLUMNS:
        if pd.api.types.is_bool_dtype(raw):
            return raw.astype(bool), problems
        text = raw.astype(str).str.strip().str.lower()
        is_true, is_false = text.isin(_TRUE), text.isin(_FALSE)
        bad = (~is_true & ~is_false).to_numpy() & ~missing
        if bad.any():
            problems.append(
                Problem(file, column, "true or false", _rows(bad),
                        tuple(str(v) for v in raw[bad].head(_MAX_ROWS_SHOWN)))
            )
        return is_true.astype(bool), problems
    series = raw.astype("object").where(~missing, None)
    if not pd.api.types.is_string_dtype(raw.dropna()):
        # Only non-text input (numbers in an id column, say) pays for a per-cell conversion.
        series = series.map(lambda v: v if v is None else str(v))
    return series.astype("object"), problems


def parse_table(raw: pd.DataFrame, table: Table, file: str) -> pd.DataFrame:
    """Check columns, coerce types and validate one table; raise with every problem found."""
    required = REQUIRED_COLUMNS[table]
    missing_cols = [c for c in required if c not in raw.columns]
    if missing_cols:
        raise DataValidationError(
            [Problem(file, c, f"a column '{c}' (required in {table.value})") for c in missing_cols]
        )
    frame = raw.reset_index(drop=True).copy()
    problems: list[Problem] = []
    nullable = _NULLABLE.get(table, set())
    for column in (*required, *OPTIONAL_COLUMNS[table]):
        if column in frame.columns:
            frame[column], found = _coerce_column(frame, column, column in nullable, file)
            problems.extend(found)
    if table is Table.EVENTS:
        frame[Col.VALUE] = frame[Col.VALUE].fillna(0.0)
    if problems:
        raise DataValidationError(problems)
    problems.extend(_schema_problems(frame, table, file))
    problems.extend(_order_problems(frame, table, file))
    if problems:
        raise DataValidationError(problems)
    return frame


def _schema_problems(frame: pd.DataFrame, table: Table, file: str) -> list[Problem]:
    try:
        schema_for(table).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        problems = []
        for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
            index = pd.to_numeric(group["index"], errors="coerce").dropna().astype(int)
            expected = str(check)
            if expected.startswith("field_uniqueness"):
                expected = "a unique value (it repeats)"
            problems.append(
                Problem(
                    file,
                    None if pd.isna(column) else str(column),
                    expected,
                    tuple(int(i) + 1 for i in index),
                    tuple(str(v) for v in group["failure_case"].head(_MAX_ROWS_SHOWN)),
                )
            )
        return problems
    return []


def _order_problems(frame: pd.DataFrame, table: Table, file: str) -> list[Problem]:
    if table is Table.DECISIONS:
        early = (frame[Col.SEND_AT] < frame[Col.TS]).fillna(False).to_numpy()
        no_send = frame[Col.MESSAGE_ID].isna() != frame[Col.CHANNEL].isna()
        problems = []
        if early.any():
            problems.append(Problem(file, Col.SEND_AT, "a send time at or after ts", _rows(early)))
        if no_send.any():
            problems.append(
                Problem(
                    file, Col.CHANNEL,
                    "message_id and channel both set (a send) or both empty (no_action)",
                    _rows(no_send),
                )
            )
        return problems
    return []


def load_table(path: Path | str, table: Table) -> pd.DataFrame:
    """Read and validate one table file."""
    path = Path(path)
    frame = parse_table(read_raw(path), table, path.name)
    logger.info("loaded %s: %d rows from %s", table.value, len(frame), path)
    return frame


def _unknown(
    frame: pd.DataFrame, column: str, known: Iterable[str], file: str, what: str
) -> list[Problem]:
    values = frame[column]
    bad = (values.notna() & ~values.isin(set(known))).to_numpy()
    if not bad.any():
        return []
    return [
        Problem(file, column, f"a {what} that exists", _rows(bad),
                tuple(str(v) for v in values[bad].unique()[:_MAX_ROWS_SHOWN]))
    ]


def check_references(journeys: Journeys, files: dict[Table, str]) -> None:
    """Cross-table rules: every customer and message referenced must exist."""
    customers = journeys.customers[Col.CUSTOMER_ID]
    messages = journeys.catalog[Col.MESSAGE_ID]
    problems = [
        *_unknown(journeys.decisions, Col.CUSTOMER_ID, customers, files[Table.DECISIONS],
                  "customer_id in customers"),
        *_unknown(journeys.events, Col.CUSTOMER_ID, customers, files[Table.EVENTS],
                  "customer_id in customers"),
        *_unknown(journeys.decisions, Col.MESSAGE_ID, messages, files[Table.DECISIONS],
                  "message_id in the catalog"),
        *_unknown(journeys.events, Col.MESSAGE_ID, messages, files[Table.EVENTS],
                  "message_id in the catalog"),
    ]
    if problems:
        raise DataValidationError(problems)


def load_journeys(directory: Path | str) -> Journeys:
    """Load and validate the four tables of a directory, then the rules between them."""
    directory = Path(directory)
    paths = {table: find_table_file(directory, table) for table in Table}
    frames: dict[Table, pd.DataFrame] = {}
    problems: list[Problem] = []
    for table, path in paths.items():
        try:
            frames[table] = load_table(path, table)
        except DataValidationError as exc:
            problems.extend(exc.problems)
    if problems:
        raise DataValidationError(problems)
    journeys = Journeys(
        events=frames[Table.EVENTS],
        customers=frames[Table.CUSTOMERS],
        catalog=frames[Table.CATALOG],
        decisions=frames[Table.DECISIONS],
    )
    check_references(journeys, {t: p.name for t, p in paths.items()})
    return journeys


def write_journeys(
    journeys: Journeys, directory: Path | str, fmt: str = "parquet",
    extra: dict[str, pd.DataFrame] | None = None,
) -> Path:
    """Write the tables (and ``extra`` frames, e.g. ground truth) atomically into ``directory``.

    Everything is written into a sibling temporary folder first; only when every file is
    complete does it replace ``directory``. A failure leaves any previous content untouched.
    """
    if fmt not in {"parquet", "csv"}:
        raise ValueError(f"format must be 'parquet' or 'csv', not {fmt!r}")
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        named = {t.value: journeys.table(t) for t in Table} | (extra or {})
        for name, frame in named.items():
            target = staging / f"{name}.{fmt}"
            target.parent.mkdir(parents=True, exist_ok=True)
            if fmt == "parquet":
                frame.to_parquet(target, index=False)
            else:
                frame.to_csv(target, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
        if directory.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old.", dir=directory.parent))
            os.replace(directory, backup / "data")
            os.replace(staging, directory)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("wrote journeys to %s (%s)", directory, fmt)
    return directory
