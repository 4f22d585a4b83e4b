"""Untrusted files cannot run code or reach outside their folder.

- No source file loads pickles from files: ``torch.load`` only with ``weights_only=True``, no
  ``pickle.load``/``Unpickler``/``cloudpickle``/``dill``/``joblib``/``marshal``/``shelve``, ``numpy.load``
  never with ``allow_pickle=True``, ``yaml.load`` never (``safe_load`` only). Checked on the syntax tree,
  so comments and docstrings do not count. (``pickle.loads`` of bytes that Ray passes between gid's
  own pipeline stages is allowed: those bytes never come from a file.)
- A model folder whose weights are a pickle with a payload is refused, and the payload never runs.
- Manifest entries that point outside their folder are refused.
"""
from __future__ import annotations

import ast
import os
import pickle
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gid.datasets.safe_paths import inside

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("pipeline", "kernels", "stages", "datasets", "benchmarks", "infra")
PICKLE_MODULES = {"pickle", "cloudpickle", "dill", "joblib", "marshal", "shelve", "_pickle"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def _keyword_is(call: ast.Call, name: str, value: object) -> bool:
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is value for k in call.keywords)


def unsafe_loads(source: str, filename: str) -> list[str]:
    """Every call in ``source`` that could unpickle a file, as ``file:line: call``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            imported = {a.name for a in node.names} if isinstance(node, ast.ImportFrom) else set()
            if isinstance(node, ast.ImportFrom) and names[0] in PICKLE_MODULES and imported & {"load", "Unpickler"}:
                found.append(f"{filename}:{node.lineno}: from {names[0]} import {', '.join(sorted(imported))}")
            continue
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        module, _, attr = name.rpartition(".")
        bad = (
            (attr == "load" and module.split(".")[-1] == "torch" and not _keyword_is(node, "weights_only", True))
            or (module in PICKLE_MODULES and attr in {"load", "Unpickler"})
            or (module == "shelve" and attr == "open")
            or (attr == "load" and module in {"np", "numpy"} and _keyword_is(node, "allow_pickle", True))
            or (module == "yaml" and attr in {"load", "unsafe_load", "full_load", "load_all"})
        )
        if bad:
            found.append(f"{filename}:{node.lineno}: {ast.unparse(node)[:100]}")
    return found


def test_the_scanner_finds_every_unsafe_form():
    bad = "\n".join([
        "torch.load(p)", "torch.load(p, weights_only=False)", "pickle.load(f)", "pickle.Unpickler(f).load()",
        "cloudpickle.load(f)", "joblib.load(p)", "np.load(p, allow_pickle=True)", "yaml.load(s)",
        "shelve.open(p)", "from pickle import load",
    ])
    safe = "torch.load(p, weights_only=True)\nnp.load(p)\nnp.load(p, allow_pickle=False)\npickle.loads(b)\nyaml.safe_load(s)"
    assert len(unsafe_loads(bad, "bad.py")) == 10
    assert unsafe_loads(safe, "safe.py") == []


def test_no_source_file_unpickles_files():
    files = [p for d in SOURCE_DIRS for p in (ROOT / d).rglob("*.py") if ".venv" not in p.parts]
    assert len(files) > 20
    found = [hit for p in files for hit in unsafe_loads(p.read_text(), str(p.relative_to(ROOT)))]
    assert found == [], "loads that can run code from a file:\n" + "\n".join(found)


class _Payload:
    """Unpickling this object creates a file: proof that code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # the crafted pickle is the point
def test_a_model_folder_with_pickled_weights_is_refused_without_running_them(tmp_path):
    from gid.pipeline.vae import SpectralVAE

    folder = tmp_path / "vae"
    SpectralVAE(block_out_channels=(8, 8), norm_num_groups=4).save_pretrained(folder)
    (folder / "diffusion_pytorch_model.safetensors").unlink()
    marker = tmp_path / "payload-ran"
    with open(folder / "diffusion_pytorch_model.bin", "wb") as f:
        pickle.dump({"encoder.conv_in.weight": _Payload(marker)}, f)
    with pytest.raises(Exception):
        SpectralVAE.from_pretrained(folder)
    assert not marker.exists(), "loading the model ran code from its weights file"


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # the crafted pickle is the point
def test_a_checkpoint_with_a_pickled_optimizer_state_is_refused_without_running_it(tmp_path):
    import torch

    marker = tmp_path / "payload-ran"
    with open(tmp_path / "optimizer.pt", "wb") as f:
        pickle.dump({"state": _Payload(marker)}, f)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / "optimizer.pt", map_location="cpu", weights_only=True)  # as gid.stages.training does
    assert not marker.exists()


@pytest.mark.parametrize("entry", ["../secret.npz", "../../etc/passwd", "/etc/passwd", "gt/../../x.npz", "", "a\0b"])
def test_manifest_entries_outside_the_folder_are_refused(tmp_path, entry):
    with pytest.raises(ValueError, match="manifest"):
        inside(tmp_path / "data", entry)


def test_a_symlink_out_of_the_folder_is_refused(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "link").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="outside"):
        inside(tmp_path / "data", "link/secret.npz")
    assert inside(tmp_path / "data", "gt/./v0.npz") == (tmp_path / "data" / "gt" / "v0.npz").resolve()


@given(st.lists(st.sampled_from(["a", "b", "..", ".", "gt"]), min_size=1, max_size=6))
def test_resolved_entries_are_inside_or_refused(parts):
    root = Path("/srv/data")
    try:
        path = inside(root, "/".join(parts))
    except ValueError:
        depth = 0
        for part in parts:
            depth += {"..": -1, ".": 0}.get(part, 1)
            if depth < 0:
                return  # it did climb out
        pytest.fail(f"{parts} stays inside but was refused")
    assert path == root or root in path.parents


def test_a_tampered_synth_manifest_cannot_read_outside(synth_small, tmp_path):
    from gid.datasets.clip_table import synthetic_to_clips

    data = tmp_path / "synth"
    data.mkdir()
    for sub in ("videos", "gt"):
        (data / sub).symlink_to(synth_small / sub)
    rows = pq.read_table(synth_small / "manifest.parquet").to_pylist()
    rows[0]["gt"] = "../../outside.npz"
    pq.write_table(pa.Table.from_pylist(rows), data / "manifest.parquet")
    with pytest.raises(ValueError, match="outside the folder"):
        synthetic_to_clips(data, tmp_path / "clips")
