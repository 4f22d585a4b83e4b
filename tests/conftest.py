"""Shared test setup: one thread per library (CI has 2 cores), no network, headless plotting."""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory):
    """A tiny `gid synth` folder (4 videos, 48 frames, 64x48) shared by tests that only read it."""
    from gid.datasets.synthetic import SynthConfig, write_dataset

    out = tmp_path_factory.mktemp("synth_small")
    write_dataset(out, 4, SynthConfig(num_frames=48, width=64, height=48), seed=7, progress=False)
    return out


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray session (2 CPUs) shared by every test that needs Ray: `ray.init` costs ~4 s."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


class CliResult:
    """What one in-process `gid` call gave: its exit code and what it printed."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def gid(capsys):
    """Run the `gid` entry point in-process (saves the ~5 s interpreter start of a subprocess)."""
    import sys
    from unittest import mock

    from gid.stages.cli import main

    def run(*args):
        capsys.readouterr()
        with mock.patch.object(sys, "argv", ["gid", *map(str, args)]):
            try:
                main()
                code = 0
            except SystemExit as exit_:
                code = exit_.code or 0
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run

