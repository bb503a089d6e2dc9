"""The analyst notebook runs top to bottom against a freshly trained store and shows its tables
and figures."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import TrainedStore

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "compare_runs.ipynb"
#: Text that must appear in the tables the notebook displays, one entry per table.
EXPECTED_TABLES = {
    "runs": "primary_metric",
    "model versions": "champion",
    "model vs baseline": "model - baseline",
    "all metrics": "valid_roc_auc",
    "feature importance": "share of gain",
    "calibration": "observed",
    "uplift": "mean uplift",
}


def _outputs(notebook: nbformat.NotebookNode, mime: str) -> list[str]:
    return [
        str(output["data"][mime])
        for cell in notebook.cells if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") in {"display_data", "execute_result"}
        and mime in output.get("data", {})
    ]


@pytest.mark.slow
def test_compare_runs_notebook_executes(
    trained_store: TrainedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kernel is a child process: it reads the store and the data from its environment.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_store.tracking_uri)
    monkeypatch.setenv("NEXTBEST_DATA", str(trained_store.data_dir))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, kernel_name="python3", timeout=300,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError naming the cell if anything fails

    errors = [o for c in notebook.cells for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    tables = _outputs(notebook, "text/html")
    for name, marker in EXPECTED_TABLES.items():
        assert any(marker in table for table in tables), f"no {name} table"
    assert len(_outputs(notebook, "image/png")) >= 5  # metric, importance, calibration, uplift
