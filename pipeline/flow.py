"""Dense optical flow from a clip's first frame to every frame: the trajectories of paper §3.

``F_t(p)`` is the flow from frame 0 to frame t, estimated directly (not by chaining consecutive
flows, which accumulates drift), so ``F_0 = 0``. The paper uses a coarse-to-fine method; both
OpenCV methods here are coarse-to-fine on an image pyramid:

- ``dis`` (default): Dense Inverse Search (Kroeger et al. 2016), preset ``fast`` — 0.73 ms per
  pair at 256×160 on one core;
- ``dis-medium``: DIS preset ``medium``, ~5× slower and more accurate on fine structure;
- ``farneback``: polynomial expansion (Farnebäck 2003), ~10× slower than ``dis``;
- ``torchscript:PATH``: any flow network (RAFT, GMFlow, …) exported with ``torch.jit.save`` to a
  local file, run in batches on the GPU when there is one (nothing is downloaded).

Methods are named in a table read by :func:`make_flow`; another estimator is a :class:`FlowMethod`
subclass implementing :meth:`FlowMethod.pairs`, added to that table under the name ``--flow`` takes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np


class FlowMethod:
    """Dense flow between RGB frames. Subclasses implement :meth:`pairs`."""

    name = "base"

    def pairs(self, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Flow from each source to its target.

        Args:
            sources, targets: ``(N, H, W, 3)`` uint8 RGB.

        Returns:
            ``(N, 2, H, W)`` float32: pixel ``p`` of ``sources[n]`` is at ``p + flow[n, :, p]`` in
            ``targets[n]`` (channel 0 = x, 1 = y, in pixels).
        """
        raise TypeError(f"{type(self).__name__} must implement pairs()")

    def trajectories(self, frames: np.ndarray, progress: bool = False) -> np.ndarray:
        """``frames (T, H, W, 3)`` uint8 → trajectories ``(T, 2, H, W)`` float32 with ``F_0 = 0`` (§3).

        ``progress``: a tqdm bar over chunks of 16 frames (long single clips, `gid loop`).
        """
        num_frames, height, width = frames.shape[:3]
        out = np.zeros((num_frames, 2, height, width), np.float32)
        if num_frames > 1 and not progress:
            out[1:] = self.pairs(np.broadcast_to(frames[0], frames[1:].shape), frames[1:])
        elif num_frames > 1:
            from tqdm import tqdm

            for start in tqdm(range(1, num_frames, 16), desc="flow", unit="chunk"):
                chunk = frames[start:start + 16]
                out[start:start + len(chunk)] = self.pairs(np.broadcast_to(frames[0], chunk.shape), chunk)
        return out


class OpenCVFlow(FlowMethod):
    """An OpenCV dense flow on grey frames, one pair at a time (one thread: parallelism is Ray's)."""

    def __init__(self, name: str, factory: Callable[[], Callable[[np.ndarray, np.ndarray], np.ndarray]]) -> None:
        self.name = name
        self._compute = factory()

    def pairs(self, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
        if sources.shape != targets.shape or sources.ndim != 4 or sources.shape[-1] != 3:
            raise ValueError(f"sources and targets must both be (N, H, W, 3), got {sources.shape} and {targets.shape}")
        out = np.empty((len(sources), 2, *sources.shape[1:3]), np.float32)
        grey_cache: dict[int, np.ndarray] = {}
        for n in range(len(sources)):
            key = sources[n].__array_interface__["data"][0]  # the same frame 0 is converted once
            if key not in grey_cache:
                grey_cache = {key: cv2.cvtColor(np.ascontiguousarray(sources[n]), cv2.COLOR_RGB2GRAY)}
            target = cv2.cvtColor(np.ascontiguousarray(targets[n]), cv2.COLOR_RGB2GRAY)
            out[n] = self._compute(grey_cache[key], target).transpose(2, 0, 1)
        return out


class TorchScriptFlow(FlowMethod):
    """A TorchScript flow network from a local file.

    The module is called as ``net(source, target)`` on ``(N, 3, H, W)`` float32 RGB in [0, 1] and must
    return ``(N, 2, H, W)`` flow in pixels (the RAFT convention). ``device``: default CUDA if available.
    """

    def __init__(self, path: str | Path, device: str | None = None, batch_size: int = 16) -> None:
        import torch

        self.name, path = f"torchscript:{path}", Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"--flow torchscript:{path}: no such file; export the network with torch.jit.save")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self.net = torch.jit.load(str(path), map_location=self.device).eval()
        except RuntimeError as err:
            raise ValueError(f"--flow torchscript:{path}: not a TorchScript file ({str(err).splitlines()[0]})") from None
        self.batch_size = batch_size

    def pairs(self, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
        import torch

        def tensor(x: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(x)).to(self.device).permute(0, 3, 1, 2).float() / 255.0

        out = []
        with torch.inference_mode():
            for i in range(0, len(sources), self.batch_size):
                flow = self.net(tensor(sources[i:i + self.batch_size]), tensor(targets[i:i + self.batch_size]))
                expected = (min(self.batch_size, len(sources) - i), 2, *sources.shape[1:3])
                if tuple(flow.shape) != expected:
                    raise ValueError(f"{self.name} returned flow of shape {tuple(flow.shape)}, expected {expected}")
                out.append(flow.float().cpu().numpy())
        return np.concatenate(out)


def _dis(preset: int) -> Callable[[], Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    def factory():
        dis = cv2.DISOpticalFlow_create(preset)
        return lambda a, b: dis.calc(a, b, None)

    return factory


def _farneback():
    return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, pyr_scale=0.5, levels=5, winsize=15,
                                                     iterations=3, poly_n=5, poly_sigma=1.2, flags=0)


_REGISTRY: dict[str, Callable[..., FlowMethod]] = {
    "dis": lambda: OpenCVFlow("dis", _dis(cv2.DISOPTICAL_FLOW_PRESET_FAST)),
    "dis-medium": lambda: OpenCVFlow("dis-medium", _dis(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)),
    "farneback": lambda: OpenCVFlow("farneback", _farneback),
}


def flow_methods() -> list[str]:
    return sorted(_REGISTRY) + ["torchscript:PATH"]


def make_flow(name: str = "dis", **kwargs) -> FlowMethod:
    """The flow method registered as ``name`` (``dis``, ``dis-medium``, ``farneback``, ``torchscript:PATH``, …)."""
    if name.startswith("torchscript:"):
        return TorchScriptFlow(name.split(":", 1)[1], **kwargs)
    if name not in _REGISTRY:
        raise ValueError(f"--flow {name!r} is not a known flow method; choose one of {', '.join(flow_methods())}")
    cv2.setNumThreads(1)
    return _REGISTRY[name](**kwargs)
