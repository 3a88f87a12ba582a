"""The notebook runs top to bottom on freshly produced sample results."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "enrich_first_look.ipynb"


def test_notebook_executes_on_fresh_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sample_results: Path
) -> None:
    monkeypatch.setenv("ENRICH_RESULTS", str(sample_results))  # produced by this test session
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend turns plots into PNG outputs
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "3 clips" in text and "median 2D residual" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the plots were drawn
