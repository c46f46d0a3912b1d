"""Every notebook under notebooks/ runs top to bottom in small mode without a cell error.

Each notebook is executed by nbclient in a fresh kernel of this interpreter (a kernel spec written
to a temporary ``JUPYTER_PATH``, so no kernel registered on the machine is used), with
``PADDLE_HSOFTMAX_NOTEBOOK_SMALL=1``, inside a temporary copy of ``notebooks/``: what the notebooks
train lands in that copy's ``runs/``, never in the repository. A few minutes in all on 2 CPU cores.
"""

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = ["01_hierarchical_softmax", "02_word_vectors", "03_text_classifier", "04_sequence_tagger",
             "05_output_layers"]
KERNEL = "paddle-hsoftmax-notebook-test"


def test_each_notebook_opens_with_the_same_aistudio_setup_cell():
    assert sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb")) == NOTEBOOKS
    setup_cells = set()
    for name in NOTEBOOKS:
        nb = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
        nbformat.validate(nb)
        first = nb.cells[0]
        assert first.cell_type == "code"
        for needle in ('Path("/home/aistudio")', "/home/aistudio/external-libraries", '"--target"',
                       "sys.path.append(EXTERNAL)", "/home/aistudio/data", "PADDLE_HSOFTMAX_NOTEBOOK_SMALL"):
            assert needle in first.source, (name, needle)
        setup_cells.add(first.source)
    assert len(setup_cells) == 1, "the setup cell differs between notebooks"


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory):
    """A kernel spec for this interpreter, in small mode, with the repository importable."""
    root = tmp_path_factory.mktemp("jupyter")
    spec_dir = root / "data" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "paddle_hsoftmax notebook test",
        "language": "python",
        "env": {
            "PADDLE_HSOFTMAX_NOTEBOOK_SMALL": "1",
            "PYTHONPATH": pythonpath,
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",  # figures become outputs
        },
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(root / "data"))
        mp.setenv("JUPYTER_RUNTIME_DIR", str(root / "runtime"))
        mp.setenv("IPYTHONDIR", str(root / "ipython"))
        yield KERNEL


@pytest.mark.slow  # measured in the quick suite run of 2026-12-01: 48 s for the 5 notebooks
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_small_mode(name, kernel_name, tmp_path):
    work = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOK_DIR, work, ignore=shutil.ignore_patterns("runs", ".ipynb_checkpoints"))
    nb = nbformat.read(work / f"{name}.ipynb", as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name=kernel_name, timeout=600, startup_timeout=120,
                                     resources={"metadata": {"path": str(work)}})
    client.execute()  # raises CellExecutionError, naming the cell, on any error

    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "small mode: True" in printed
    assert str(REPO / "paddle_hsoftmax") in printed  # this checkout, in this interpreter
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure was drawn"
