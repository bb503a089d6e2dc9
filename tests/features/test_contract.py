"""The README documents the same contract the code enforces."""

from __future__ import annotations

from pathlib import Path

from features.contract import (
    CHANNELS,
    EVENT_TYPES,
    OBJECTIVES,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    STAGES,
)

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_contract_column_is_documented() -> None:
    for table, columns in (REQUIRED_COLUMNS | OPTIONAL_COLUMNS).items():
        assert f"### {table.value}" in README
        for column in columns:
            assert f"`{column}`" in README, f"{table.value}.{column} missing from README"


def test_every_vocabulary_value_is_documented() -> None:
    for value in (*EVENT_TYPES, *CHANNELS, *OBJECTIVES, *STAGES):
        assert f"`{value.value}`" in README, value


def test_readme_opens_with_the_two_commands_ci_runs() -> None:
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert "make test" in ci.splitlines()[-1]
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == [
        "make run",
        "make test",
    ]
