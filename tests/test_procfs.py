"""gid.testing.procfs: CPU time of process trees, sampled and added up by group (benchmarks/scaling.py)."""
import subprocess
import sys
import time

from gid.testing import procfs

BUSY = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end: pass\n"


def test_cpu_time_counts_a_process_that_exits_between_samples_by_its_group():
    """A child burns 0.6 CPU-s and exits; an idle one sleeps. Their times are kept by group after the
    busy one is gone (its last sample counts), up to what its final interval used."""
    busy = subprocess.Popen([sys.executable, "-c", BUSY.format(seconds=0.6)])
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        groups = lambda: {busy.pid: "busy", idle.pid: "idle"}  # noqa: E731
        with procfs.CPUTime(groups, interval=0.05) as cpu:
            busy.wait(timeout=30)
            time.sleep(0.2)  # samples after it exited must not lose its time
        totals = cpu.totals()
        assert 0.45 <= totals["busy"] <= 0.8
        assert totals.get("idle", 0.0) < 0.3  # an interpreter's start-up only
    finally:
        idle.kill()
        idle.wait()
