"""SpectralVAE: the autoencoder of the motion latent diffusion model (paper §4.2, §7).

It encodes ONE normalized frequency slice ``S'_k`` ``(N, 4, H, W)`` (Eq. 4 applied first) into a
continuous latent ``(N, C, H/f, W/f)`` with a diagonal Gaussian posterior, built from diffusers'
``Encoder``/``Decoder`` blocks (as ``AutoencoderKL``). The latent factor ``f = 2^(levels−1)`` is part
of the config (:attr:`latent_factor`); ``scaling_factor`` (set after training to 1/std of the
latents) brings latents to unit variance for the diffusion model.

Training loss (§7): ``L = L1(x̂, x) + 0.2·L_grad + 1e-6·KL`` with the multi-scale gradient term
``L_grad = mean_s L1(∇ pool_s(x̂), ∇ pool_s(x))`` over average-pooling scales ``s ∈ {1, 2, 4}`` and
``∇`` the forward differences along x and y.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import Decoder, DiagonalGaussianDistribution, Encoder
from diffusers.models.modeling_utils import ModelMixin

L1_WEIGHT, GRAD_WEIGHT, KL_WEIGHT = 1.0, 0.2, 1e-6
GRAD_SCALES = (1, 2, 4)
MOVING_THRESHOLD = 0.1  # normalized units: |S_k| above 1 % of s_k (Eq. 4 takes a square root)


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences of ``x (N, C, H, W)``: ``(N, C, H, W−1)`` along x, ``(N, C, H−1, W)`` along y."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def multiscale_gradient_loss(pred: torch.Tensor, target: torch.Tensor, scales=GRAD_SCALES) -> torch.Tensor:
    """Mean over scales of the L1 distance between spatial gradients of ``pred`` and ``target``."""
    total = pred.new_zeros(())
    for s in scales:
        p, t = (F.avg_pool2d(pred, s), F.avg_pool2d(target, s)) if s > 1 else (pred, target)
        (pgx, pgy), (tgx, tgy) = image_gradients(p), image_gradients(t)
        total = total + (pgx - tgx).abs().mean() + (pgy - tgy).abs().mean()
    return total / len(scales)


class SpectralVAE(ModelMixin, ConfigMixin):
    """KL autoencoder for one frequency slice ``(N, 4, H, W)`` → latent ``(N, latent_channels, H/f, W/f)``.

    Args:
        in_channels: 4, the channels ``(Re Sx, Im Sx, Re Sy, Im Sy)`` of a slice.
        latent_channels: C of the latent.
        block_out_channels: channels per resolution level; ``f = 2^(len − 1)``.
        layers_per_block: resnet layers per level.
        norm_num_groups: GroupNorm groups (must divide every channel count).
        mid_block_add_attention: spatial self-attention in the bottleneck.
        scaling_factor: multiplies latents for the diffusion model (1/std of the training latents).
    """

    config_name = "config.json"

    @register_to_config
    def __init__(self, in_channels: int = 4, latent_channels: int = 4,
                 block_out_channels: tuple[int, ...] = (32, 64, 64), layers_per_block: int = 1,
                 norm_num_groups: int = 8, mid_block_add_attention: bool = False, scaling_factor: float = 1.0):
        super().__init__()
        levels = len(block_out_channels)
        self.encoder = Encoder(in_channels=in_channels, out_channels=latent_channels,
                               down_block_types=("DownEncoderBlock2D",) * levels,
                               block_out_channels=tuple(block_out_channels), layers_per_block=layers_per_block,
                               norm_num_groups=norm_num_groups, double_z=True,
                               mid_block_add_attention=mid_block_add_attention)
        self.decoder = Decoder(in_channels=latent_channels, out_channels=in_channels,
                               up_block_types=("UpDecoderBlock2D",) * levels,
                               block_out_channels=tuple(block_out_channels), layers_per_block=layers_per_block,
                               norm_num_groups=norm_num_groups, mid_block_add_attention=mid_block_add_attention)
        self.quant_conv = torch.nn.Conv2d(2 * latent_channels, 2 * latent_channels, 1)
        self.post_quant_conv = torch.nn.Conv2d(latent_channels, latent_channels, 1)

    @property
    def latent_factor(self) -> int:
        """f: the spatial downsampling from a slice to its latent."""
        return 2 ** (len(self.config.block_out_channels) - 1)

    def encode(self, x: torch.Tensor) -> DiagonalGaussianDistribution:
        """Posterior over latents of normalized slices ``x (N, 4, H, W)``; H, W divisible by f."""
        f = self.latent_factor
        if x.ndim != 4 or x.shape[1] != self.config.in_channels or x.shape[2] % f or x.shape[3] % f:
            raise ValueError(f"SpectralVAE.encode needs (N, {self.config.in_channels}, H, W) with H, W divisible "
                             f"by {f}, got {tuple(x.shape)}")
        return DiagonalGaussianDistribution(self.quant_conv(self.encoder(x)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Slices ``(N, 4, H, W)`` from (unscaled) latents ``z (N, C, H/f, W/f)``."""
        return self.decoder(self.post_quant_conv(z))

    def encode_latents(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Scaled latent samples for the diffusion model: ``scaling_factor · z``, ``z ~ q(z|x)``."""
        return self.encode(x).sample(generator) * self.config.scaling_factor

    def decode_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`encode_latents` (up to reconstruction error)."""
        return self.decode(z / self.config.scaling_factor)

    def forward(self, x: torch.Tensor, sample_posterior: bool = True,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, DiagonalGaussianDistribution]:
        """``(reconstruction (N, 4, H, W), posterior)``."""
        posterior = self.encode(x)
        z = posterior.sample(generator) if sample_posterior else posterior.mode()
        return self.decode(z), posterior



def moving_weights(x: torch.Tensor, moving_weight: float) -> torch.Tensor:
    """Per-pixel L1 weights ``(N, 1, H, W)`` that favour moving pixels, with mean 1.

    ``w(p) ∝ 1 + moving_weight·[max_c |x_c(p)| > MOVING_THRESHOLD]`` on normalized slices
    ``x (N, 4, H, W)``, divided by its mean over the batch so that the L1 term keeps its scale
    (and a batch where every pixel moves, or none does, gets the plain L1).
    """
    moving = (x.detach().abs().amax(dim=1, keepdim=True) > MOVING_THRESHOLD).to(x.dtype)
    weight = 1 + moving_weight * moving
    return weight / weight.mean()


def vae_loss(recon: torch.Tensor, posterior: DiagonalGaussianDistribution,
             x: torch.Tensor, moving_weight: float = 0.0) -> tuple[torch.Tensor, dict[str, float]]:
    """§7 loss on normalized slices ``x (N, 4, H, W)``: L1 ×1 + multi-scale gradient ×0.2 + KL ×1e-6.

    ``recon, posterior = vae(x)``; kept outside the model so a DistributedDataParallel wrapper
    sees the forward call. ``moving_weight > 0`` weights the L1 term per pixel with
    :func:`moving_weights` (not in the paper): where most pixels are static, as in the synthetic
    scenes, plain L1 is minimised early by decoding every slice as zero and training stays in
    that basin (docs/motion.md). The ``l1`` part reported is the plain, unweighted L1.
    """
    error = (recon - x).abs()
    l1 = error.mean()
    fit = (error * moving_weights(x, moving_weight)).mean() if moving_weight else l1
    grad = multiscale_gradient_loss(recon, x)
    kl = posterior.kl().mean()
    total = L1_WEIGHT * fit + GRAD_WEIGHT * grad + KL_WEIGHT * kl
    return total, {"l1": float(l1.detach()), "grad": float(grad.detach()), "kl": float(kl.detach())}
