"""MotionUNet: the denoiser of the motion latent diffusion model (paper §4.2, frequency-coordinated).

Input per slice: the noisy latent ``z_k (N, C, h, w)`` concatenated with the conditioning image
``I_0`` brought to latent resolution by space-to-depth (``pixel_unshuffle`` by the VAE factor f:
``(N, 3, h·f, w·f) → (N, 3f², h, w)``, no information lost). The diffusion timestep and the
frequency index k are embedded and summed (k through diffusers' class embedding), then a diffusers
``UNet2DModel`` body (down blocks, mid block, up blocks) predicts the noise ε.

Stage 2 (§4.2): a :class:`FrequencyAttention` layer after every spatial block reshapes
``(B·K, C, H, W) → (B·H·W, K, C)``, adds a learned frequency position embedding and runs
self-attention across the K axis; its output projection starts at zero, so inserting it into a
trained stage-1 model changes nothing until it is fine-tuned. ``freq_attention`` in the config
creates the layers; ``use_freq_attention=False`` in :meth:`MotionUNet.forward` switches them off.
With the layers on, a batch holds all K slices of each sample, ordered ``(B, K)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.unets.unet_2d import UNet2DModel


class FrequencyAttention(torch.nn.Module):
    """Self-attention across the K frequency slices of each pixel; residual, zero-initialised output.

    ``(B·K, C, H, W) → (B·H·W, K, C)`` → LayerNorm + frequency position embedding → attention →
    back to ``(B·K, C, H, W)`` and added to the input.
    """

    def __init__(self, channels: int, num_freqs: int, heads: int) -> None:
        super().__init__()
        self.num_freqs = num_freqs
        self.norm = torch.nn.LayerNorm(channels)
        self.position = torch.nn.Parameter(torch.randn(num_freqs, channels) * 0.02)
        self.attention = torch.nn.MultiheadAttention(channels, heads, batch_first=True)
        torch.nn.init.zeros_(self.attention.out_proj.weight)
        torch.nn.init.zeros_(self.attention.out_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.num_freqs
        n, c, h, w = x.shape
        if n % k:
            raise ValueError(f"frequency attention needs all {k} slices of each sample, got a batch of {n}")
        tokens = x.reshape(n // k, k, c, h, w).permute(0, 3, 4, 1, 2).reshape(-1, k, c)
        q = self.norm(tokens) + self.position
        out, _ = self.attention(q, q, q, need_weights=False)
        return x + out.reshape(n // k, h, w, k, c).permute(0, 3, 4, 1, 2).reshape(n, c, h, w)


def image_size(config) -> tuple[int, int]:
    """``(H, W)`` of the spectral volumes a U-Net of this config (its ``config.json`` or ``.config``) works
    at: its latent ``sample_size`` times the VAE factor."""
    h, w = config["sample_size"]
    return h * config["latent_factor"], w * config["latent_factor"]


class MotionUNet(ModelMixin, ConfigMixin):
    """Noise predictor ``ε(z_t; t, k, I_0)`` for latent frequency slices.

    Args:
        sample_size: ``(h, w)`` of the latent.
        latent_channels: C of the VAE latent.
        latent_factor: f of the VAE (the image is ``(h·f, w·f)``).
        num_freqs: K.
        block_out_channels, layers_per_block, down_block_types, up_block_types, attention_head_dim,
            norm_num_groups: the diffusers ``UNet2DModel`` body.
        freq_attention: create the stage-2 frequency attention layers.
        freq_attention_heads: heads of those layers.
    """

    config_name = "config.json"

    @register_to_config
    def __init__(self, sample_size: tuple[int, int] = (12, 16), latent_channels: int = 4, latent_factor: int = 4,
                 num_freqs: int = 16, block_out_channels: tuple[int, ...] = (64, 128), layers_per_block: int = 1,
                 down_block_types: tuple[str, ...] = ("DownBlock2D", "AttnDownBlock2D"),
                 up_block_types: tuple[str, ...] = ("AttnUpBlock2D", "UpBlock2D"), attention_head_dim: int = 32,
                 norm_num_groups: int = 16, freq_attention: bool = False, freq_attention_heads: int = 4):
        super().__init__()
        self.unet = UNet2DModel(
            sample_size=tuple(sample_size), in_channels=latent_channels + 3 * latent_factor**2,
            out_channels=latent_channels, down_block_types=tuple(down_block_types),
            up_block_types=tuple(up_block_types), block_out_channels=tuple(block_out_channels),
            layers_per_block=layers_per_block, attention_head_dim=attention_head_dim,
            norm_num_groups=norm_num_groups, num_class_embeds=num_freqs,
        )
        if freq_attention:
            channels = list(block_out_channels)
            make = lambda c: FrequencyAttention(c, num_freqs, freq_attention_heads)  # noqa: E731
            self.freq_attn_down = torch.nn.ModuleList(make(c) for c in channels)
            self.freq_attn_mid = make(channels[-1])
            self.freq_attn_up = torch.nn.ModuleList(make(c) for c in reversed(channels))

    def condition(self, image: torch.Tensor) -> torch.Tensor:
        """``(N, 3, h·f, w·f)`` image in [−1, 1] → ``(N, 3f², h, w)`` at latent resolution."""
        return F.pixel_unshuffle(image, self.config.latent_factor)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, freq_index: torch.Tensor,
                image: torch.Tensor, use_freq_attention: bool = True) -> torch.Tensor:
        """Predicted noise ``(N, C, h, w)``.

        Args:
            sample: noisy latents ``(N, C, h, w)``.
            timestep: ``(N,)`` or scalar diffusion step.
            freq_index: ``(N,)`` int frequency k of each slice.
            image: ``(N, 3, h·f, w·f)`` conditioning image in [−1, 1] (zeros = no condition, for CFG).
            use_freq_attention: run the stage-2 layers if the model has them (batch ordered ``(B, K)``).
        """
        unet = self.unet
        expected = (sample.shape[2] * self.config.latent_factor, sample.shape[3] * self.config.latent_factor)
        if tuple(image.shape[-2:]) != expected:
            raise ValueError(f"image must be {expected} for latents {tuple(sample.shape[-2:])}, got {tuple(image.shape[-2:])}")
        timestep = torch.as_tensor(timestep, device=sample.device)
        timestep = timestep.expand(sample.shape[0]) if timestep.ndim == 0 else timestep
        emb = unet.time_embedding(unet.time_proj(timestep).to(sample.dtype))
        emb = emb + unet.class_embedding(freq_index).to(sample.dtype)
        attend = use_freq_attention and self.config.freq_attention
        h = unet.conv_in(torch.cat([sample, self.condition(image).to(sample.dtype)], dim=1))
        skips = (h,)
        for i, block in enumerate(unet.down_blocks):
            h, res = block(hidden_states=h, temb=emb)
            h = self.freq_attn_down[i](h) if attend else h
            skips += res
        h = unet.mid_block(h, emb)
        h = self.freq_attn_mid(h) if attend else h
        for i, block in enumerate(unet.up_blocks):
            res, skips = skips[-len(block.resnets):], skips[:-len(block.resnets)]
            h = block(h, res, emb)
            h = self.freq_attn_up[i](h) if attend else h
        return unet.conv_out(unet.conv_act(unet.conv_norm_out(h)))

    def frequency_attention_parameters(self) -> list[torch.nn.Parameter]:
        """The stage-2 parameters (empty without frequency attention)."""
        if not self.config.freq_attention:
            return []
        modules = [*self.freq_attn_down, self.freq_attn_mid, *self.freq_attn_up]
        return [p for m in modules for p in m.parameters()]

    def load_stage1(self, stage1: "MotionUNet") -> None:
        """Copy a trained stage-1 model's weights; only the frequency attention layers stay new."""
        own, theirs = self.state_dict(), stage1.state_dict()
        missing = [k for k in own if k not in theirs]
        mismatched = [k for k in theirs if k not in own or own[k].shape != theirs[k].shape]
        if mismatched or any(not k.startswith("freq_attn") for k in missing):
            raise ValueError(f"stage-1 model does not match this config (e.g. {(mismatched or missing)[:2]}); "
                             "train stage 2 with the same preset and data size as stage 1")
        self.load_state_dict(theirs, strict=False)
