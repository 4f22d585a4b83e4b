"""The method of Generative Image Dynamics, usable without Ray. ``gid.pipeline.GIDPipeline`` is the
diffusers pipeline at its centre (:mod:`gid.pipeline.motion_pipeline`); it is imported on first use so
that light modules (spectral, normalize) load without torch and diffusers."""


def __getattr__(name: str):
    if name == "GIDPipeline":
        from gid.pipeline.motion_pipeline import GIDPipeline

        return GIDPipeline
    raise AttributeError(f"module 'gid.pipeline' has no attribute {name!r}")
