"""gid.kernels: softmax splatting (paper §5) — torch reference, vectorised CPU path, Triton and CuPy kernels."""
from gid.kernels.softsplat import softsplat
from gid.kernels.softsplat_reference import softsplat_reference

__all__ = ["softsplat", "softsplat_reference"]
