"""gid.testing.procfs: process trees read from /proc, and pinning a whole tree to cores."""
import os
import subprocess
import sys

from gid.testing import procfs

# A parent that starts a child and a second thread, then waits: a small process tree with threads.
TREE = """
import subprocess, sys, threading, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
print(child.pid, flush=True)
time.sleep(60)
"""


def test_pin_restricts_every_thread_of_the_tree():
    parent = subprocess.Popen([sys.executable, "-c", TREE], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert procfs.children(parent.pid) == [child]
        core = min(os.sched_getaffinity(0))
        pinned = procfs.pin(parent.pid, {core})
        assert pinned >= 3  # the parent's two threads and the child's main thread at least
        threads = [(pid, int(tid)) for pid in (parent.pid, child) for tid in os.listdir(f"/proc/{pid}/task")]
        assert all(os.sched_getaffinity(tid) == {core} for _, tid in threads)
    finally:
        for pid in procfs.children(parent.pid):
            os.kill(pid, 9)
        parent.kill()
        parent.wait()
