"""Notebooks: committed clean, executed by `make notebooks` under nbmake, all in the nav."""

import nbformat
import pytest

from conftest import ROOT, nav_pages

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXECUTED = ROOT / "docs" / "notebooks"


def code_cells(path):
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_has_no_outputs(notebook):
    for cell in code_cells(notebook):
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:80]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_site_shows_an_executed_run_of_the_committed_notebook(notebook):
    executed = EXECUTED / notebook.name
    assert executed.is_file(), "run `make notebooks` (nbmake executes each notebook there)"
    committed, ran = code_cells(notebook), code_cells(executed)
    assert [c.source for c in ran] == [c.source for c in committed], "executed copy is stale"
    assert all(c.execution_count for c in ran)
    assert not [o for c in ran for o in c.outputs if o.output_type == "error"]


def test_every_notebook_is_in_the_nav():
    in_nav = {page for page in nav_pages() if page.startswith("notebooks/")}
    assert in_nav == {f"notebooks/{p.name}" for p in NOTEBOOKS}
