"""The process heap of CPU rendering: freed frame buffers kept for the next frame."""
from __future__ import annotations


def keep_freed_memory(limit: int) -> None:
    """Keep freed blocks up to ``limit`` bytes in the process heap instead of returning them to the kernel.

    glibc serves every allocation over its mmap threshold (at most 32 MB) with a fresh mapping and
    unmaps it on free, so each batch of full-resolution frames faults all its pages in again: the
    learned renderer at 752×600 spent more time in those page faults (system time) than computing.
    With the threshold and the trim threshold at ``limit`` the next batch reuses the same pages. One
    arena for all threads: a thread's own arena grows in heaps of at most 64 MB, so the frame
    buffers of the render's worker threads were mapped and unmapped every frame anyway
    (752×600, ``tiny``, 60 frames: 1.0 M → 0.27 M minor faults, peak RSS 1.57 → 1.33 GB).
    :func:`~gid.pipeline.warping.render_video` passes the working set of its threads' frames when it
    exceeds 1 GiB (a ``tiny`` frame at 1920×1080: ≈ 1.8 GB): with a fixed 1 GiB glibc trimmed the heap
    above it after every frame and faulted it in again in most processes (2 frames on one thread after
    a warm-up: 0.38–0.65 M minor faults in 5 processes of 7, 0.07 M in 2; with the limit 0–0.06 M in 6). The
    count varies from process to process too much for a test; `benchmarks/animate.py` shows it.
    Sampling does not use it: for the ``paper`` U-Net (752×600, 4 DDIM steps) it saved 8 % of the time
    (9.3 M → 1.8 M minor faults) but raised peak RSS from 3.70 to 5.78 GiB, the heap holding freed
    activations it could not reuse.
    A no-op where the C library has no ``mallopt`` (not glibc).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is None or not hasattr(libc, "mallopt"):
        return
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8
    libc.mallopt(m_arena_max, 1)
    libc.mallopt(m_mmap_threshold, limit)
    libc.mallopt(m_trim_threshold, limit)
