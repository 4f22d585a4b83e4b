"""Does the SpectralVAE reconstruct the moving pixels? A plain single-process torch loop, no Ray.

Trains the `tiny` SpectralVAE on random frequency slices of a clip table (as VAETask does: 4 clips
× 4 slices per step, AdamW, gradient clipping 1.0, no EMA) and every ``--eval-every`` steps
decodes the posterior mode of held-out clips and prints, on the moving pixels (per bin, ground-truth
amplitude A_k > 0.01 px, gid.pipeline.motion_metrics.amplitude_px), the mean amplitude of the truth and of the reconstruction and their
mean absolute difference, and the mean reconstructed amplitude on static pixels.

``--moving-weight w`` is ``vae_loss(..., moving_weight=w)``: the L1 term weighted towards moving
pixels (``gid train vae --moving-weight``); ``w = 0`` is the paper's §7 loss.

    python benchmarks/motion_learning.py --out /tmp/ml --vae-steps 0   # or any run: makes the data
    python benchmarks/vae_reconstruction.py --train /tmp/ml/data_train --test /tmp/ml/data_test --steps 400
"""
from __future__ import annotations

import time

import numpy as np

from motion_learning import load_train_test, train_test_parser


def main() -> None:
    parser = train_test_parser(__doc__)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--moving-weight", type=float, default=0.0)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--eval-clips", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from gid.pipeline.motion_metrics import amplitude_px
    from gid.pipeline.motion_presets import get_preset
    from gid.pipeline.normalize import denormalize, normalize
    from gid.pipeline.vae import SpectralVAE, vae_loss
    from gid.pipeline.motion_training import pick_slices

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    scales, train_clips, test_clips = load_train_test(args.train, args.test)
    train = torch.from_numpy(normalize(train_clips["spectral"], scales).astype(np.float32))
    truth = test_clips["spectral"][:args.eval_clips]
    held_out = torch.from_numpy(normalize(truth, scales).astype(np.float32))
    num_frames = test_clips["num_frames"]
    amp_true = amplitude_px(truth, num_frames)
    moving = amp_true > 0.01
    vae = SpectralVAE(**get_preset("tiny").vae)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=args.lr)
    print(f"moving pixels: {moving.mean():.1%}; mean true amplitude there {amp_true[moving].mean():.3f} px")
    print(f"{'step':>5s} {'wall s':>7s} {'loss':>7s} {'|err| moving':>13s} {'recon moving':>13s} {'recon static':>13s}")
    tic = time.perf_counter()
    for step in range(args.steps + 1):
        x, _ = pick_slices(train[torch.randint(0, len(train), (4,))], 4)
        recon, posterior = vae(x)
        loss, _ = vae_loss(recon, posterior, x, moving_weight=args.moving_weight)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        if step % args.eval_every == 0:
            with torch.no_grad():
                rec = vae.eval()(held_out.flatten(0, 1), sample_posterior=False)[0].reshape(held_out.shape)
            vae.train()
            amp = amplitude_px(denormalize(rec.numpy(), scales), num_frames)
            print(f"{step:5d} {time.perf_counter() - tic:7.0f} {float(loss.detach()):7.4f} "
                  f"{np.abs(amp - amp_true)[moving].mean():13.3f} {amp[moving].mean():13.3f} {amp[~moving].mean():13.3f}",
                  flush=True)


if __name__ == "__main__":
    main()
