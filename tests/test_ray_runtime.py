"""gid.stages.ray_runtime: which cluster a stage joins, and that a local Ray spills to the configured folder."""
from __future__ import annotations

import subprocess
import sys

import pytest

from gid.stages.ray_runtime import init_ray, resolve_address


def test_address_comes_from_the_argument_then_ray_address(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert resolve_address("10.0.0.2:6379") == "10.0.0.2:6379"
    assert resolve_address(None) == "10.0.0.1:6379"
    monkeypatch.delenv("RAY_ADDRESS")
    assert resolve_address(None) is None
    with pytest.raises(ValueError, match="--address"):
        resolve_address("   ")


@pytest.mark.ray
def test_a_running_session_is_reused_and_not_owned(ray_local):
    assert init_ray("10.255.255.1:1") is False  # no connection attempt: the test session is kept
    assert ray_local.is_initialized()


@pytest.mark.ray
def test_a_full_object_store_spills_into_the_spill_dir(tmp_path):
    """A local Ray with an 80 MiB store holding 3 × 40 MiB objects must spill into ``spill_dir``."""
    code = f"""
import numpy as np, ray
from gid.stages.ray_runtime import init_ray
assert init_ray(num_cpus=1, object_store_memory=80 * 1024 * 1024, spill_dir={str(tmp_path / 'spill')!r})
refs = [ray.put(np.full(40 * 1024 * 1024, i, dtype=np.uint8)) for i in range(3)]
assert [int(ray.get(r)[-1]) for r in refs] == [0, 1, 2]
import pathlib
print(sum(p.stat().st_size for p in pathlib.Path({str(tmp_path / 'spill')!r}).rglob('*') if p.is_file()))
ray.shutdown()
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=500)
    assert result.returncode == 0, result.stderr[-2000:]
    spilled = int(result.stdout.strip().splitlines()[-1])
    assert spilled >= 40 * 1024 * 1024, f"only {spilled} bytes spilled"


@pytest.mark.ray
def test_gid_train_runs_on_gids_own_local_ray_without_state_api_warnings(tmp_path, synth_small):
    """`gid train` must start Ray through init_ray before Ray Data reads the clips (a reader would start a
    default Ray without the spill folder), and that Ray must not print Ray Train's placement-group
    cleaner warning once a second (it cannot reach the State API without the dashboard)."""
    import os

    from gid.datasets.clip_table import synthetic_to_clips

    data = synthetic_to_clips(synth_small, tmp_path / "clips")
    env = {**os.environ, "GID_SPILL_DIR": str(tmp_path / "spill")}
    env.pop("RAY_ADDRESS", None)
    run = subprocess.run([sys.executable, "-m", "gid.stages.cli", "train", "vae", "--data", str(data), "--out",
                          str(tmp_path / "bundle"), "--max-steps", "20", "--batch-size", "2"], capture_output=True, text=True,
                         timeout=540, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "spill").is_dir(), "gid train did not start its Ray through init_ray"
    output = run.stdout + run.stderr
    assert "Failed to query Ray Train Controller" not in output
    assert (tmp_path / "bundle" / "vae").is_dir()
