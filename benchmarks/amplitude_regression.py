"""How much of the motion does the image reveal? A direct amplitude regressor as a reference point.

The motion model is judged by the amplitude error of its samples (benchmarks/motion_learning.py).
This script asks a simpler question on the same data: if a network regresses the amplitudes
``A_k(p)`` (a point estimate, no sampling, no VAE) straight from the image, how low does the
held-out error on moving pixels get at a similar CPU budget? It bounds what the image at this
resolution tells about the motion: in the synthetic scenes a plant's frequency follows its
thickness, which at 64×48 is 0.7–1.9 px.

A diffusers ``UNet2DModel`` (3 levels, 32/64/128 channels, image → K amplitude maps at full
resolution), L1 on ``sqrt(A_k / s_k)`` (Eq. 4's compression, so every k counts), AdamW 1e-3,
8 clips per step, one process.

    python benchmarks/motion_learning.py --out /tmp/ml        # makes /tmp/ml/data_train, data_test
    python benchmarks/amplitude_regression.py --train /tmp/ml/data_train --test /tmp/ml/data_test
"""
from __future__ import annotations

import time

import numpy as np

from motion_learning import load_train_test, per_image_summary, train_test_parser


def main() -> None:
    parser = train_test_parser(__doc__)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    from diffusers import UNet2DModel

    from gid.pipeline.motion_metrics import amplitude_error, amplitude_px, moving_mask

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    scales, train, test = load_train_test(args.train, args.test)
    scale = torch.tensor(scales, dtype=torch.float32)[None, :, None, None]
    train_amp = amplitude_px(train["spectral"], train["num_frames"])  # (N, K, H, W)
    mean_amp = train_amp.mean(axis=0, keepdims=True)
    target = (torch.from_numpy(train_amp.astype(np.float32)) / scale).sqrt()
    truth = amplitude_px(test["spectral"], test["num_frames"])
    moving = moving_mask(truth)
    images, held_out = (torch.from_numpy(d["image"]) * 2 - 1 for d in (train, test))
    mean_error = amplitude_error(mean_amp, truth, moving).mean()
    net = UNet2DModel(sample_size=tuple(images.shape[-2:]), in_channels=3, out_channels=target.shape[1],
                      block_out_channels=(32, 64, 128), layers_per_block=1, norm_num_groups=16, attention_head_dim=32,
                      down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                      up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"))
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    print(f"training-set mean: {mean_error:.3f} px amplitude error on moving pixels of the held-out images")
    print(f"{'step':>5s} {'wall s':>7s} {'loss':>7s} {'moving px':>10s} {'all px':>7s}")
    tic = time.perf_counter()
    for step in range(1, args.steps + 1):
        pick = torch.randint(0, len(images), (8,))
        loss = (net(images[pick], 0).sample - target[pick]).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % args.eval_every == 0 or step == args.steps:
            with torch.no_grad():
                predicted = (net(held_out, 0).sample.clamp(min=0) ** 2 * scale).numpy()
            print(f"{step:5d} {time.perf_counter() - tic:7.0f} {float(loss.detach()):7.4f} "
                  f"{amplitude_error(predicted, truth, moving).mean():10.3f} {amplitude_error(predicted, truth).mean():7.3f}",
                  flush=True)
    summary = per_image_summary(predicted, truth, moving, {"training-set mean": mean_amp})
    wins = summary["images_beating"]["training-set mean"]
    print(f"held-out images beating the training-set mean (moving px, all k; k ≥ 1): {wins[0]} / {len(truth)}; "
          f"{wins[1]} / {len(truth)}; whole-image amount of motion against the truth's: log-log slope "
          f"{summary['amount_slope']:.2f}, correlation {summary['amount_correlation']:.2f}")


if __name__ == "__main__":
    main()
