"""`gid preview`: look at a synthetic data set: first frames, a motion GIF and the amplitude spectrum."""
from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def preview(
        data: Path = typer.Argument(..., help="A folder written by `gid synth`."),
        out: Path = typer.Option(..., help="Folder for frames.png, motion.gif and spectrum.png."),
        max_videos: int = typer.Option(8, help="Videos shown in the contact sheet."),
    ) -> None:
        """Contact sheet of first frames, a GIF of video 0 beside its ground-truth motion, and the
        mean amplitude of each frequency bin over the data set."""
        import numpy as np
        import pyarrow.parquet as pq
        from PIL import Image

        from gid.datasets.safe_paths import inside
        from gid.datasets.synthetic import load_ground_truth
        from gid.datasets.video_io import read_video, write_gif
        from gid.pipeline.spectral import frequencies_hz
        from gid.pipeline.visualize import contact_sheet, flow_to_color, mean_amplitude, plot_spectra

        from gid.datasets.validate import output_dir
        from gid.stages.options import at_least

        manifest_path = data / "manifest.parquet"
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{manifest_path}: not a `gid synth` folder (no manifest.parquet) (DATA {data}); "
                                    "give a folder written by `gid synth`")
        at_least("--max-videos", max_videos, 1)
        output_dir(out, "--out")
        rows = pq.read_table(manifest_path).to_pylist()
        out.mkdir(parents=True, exist_ok=True)
        truths = [load_ground_truth(inside(data, row["gt"])) for row in rows[:max_videos]]
        Image.fromarray(contact_sheet([gt["frame0"] for gt in truths])).save(out / "frames.png")

        frames, fps = read_video(inside(data, rows[0]["video"]))
        traj = truths[0]["trajectories"]
        peak = float(np.abs(traj).max())
        motion = np.stack([flow_to_color(traj[t], peak) for t in range(len(traj))])
        write_gif(out / "motion.gif", np.concatenate([frames, motion], axis=2)[::2], fps=fps / 2)

        amplitude = mean_amplitude(np.stack([gt["spectral"] for gt in truths]), rows[0]["num_frames"])
        row = rows[0]
        freqs = frequencies_hz(len(amplitude), row["num_frames"], row["fps"])
        plot_spectra(out / "spectrum.png", {"synthetic ground truth": amplitude}, freqs,
                     f"Mean spectral amplitude, {len(truths)} videos")
        typer.echo(f"wrote {out}/frames.png, motion.gif, spectrum.png")
