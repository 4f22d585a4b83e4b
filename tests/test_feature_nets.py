"""Feature nets of the metrics with random weights: shapes, loading, conversion of released layouts."""
import pytest
import torch

from gid.pipeline.feature_nets import I3DFeatures, InceptionV3Features, convert_checkpoint, load_feature_net


def _signal_preserving_init(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """He-normal conv weights so that random features do not vanish through ~50 layers."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Conv3d)):
            fan_in = module.weight[0].numel()
            with torch.no_grad():
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def inception():
    return _signal_preserving_init(InceptionV3Features(input_size=75))


@pytest.fixture(scope="module")
def i3d():
    return _signal_preserving_init(I3DFeatures(num_classes=7, input_size=48))


def test_inception_has_the_fid_graph_parameter_count():
    # torchvision's InceptionV3 has 27,161,264 parameters; without AuxLogits (3,326,696) and the
    # 1000-class fc (2,049,000) that is the FID network's feature extractor
    model = InceptionV3Features()
    assert sum(p.numel() for p in model.parameters()) == 27_161_264 - 3_326_696 - 2_049_000


def test_inception_features_shape_and_batch_independence(inception):
    images = torch.rand(3, 3, 40, 70, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        feats = inception(images)
        single = inception(images[1:2])
    assert feats.shape == (3, 2048) and torch.isfinite(feats).all()
    assert torch.allclose(feats[1:2], single, rtol=1e-4, atol=1e-5)
    assert (feats[0] - feats[1]).abs().max() > 1e-3 * feats.abs().max()  # inputs are told apart
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        inception(torch.rand(3, 40, 70))
    with pytest.raises(ValueError, match="input_size"):
        InceptionV3Features(input_size=40)


def test_i3d_features_shape(i3d):
    video = torch.rand(2, 3, 16, 40, 56, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = i3d(video)
    assert logits.shape == (2, 7) and torch.isfinite(logits).all()
    pool = I3DFeatures(num_classes=7, input_size=48, features="pool").eval()
    pool.load_state_dict(i3d.state_dict())
    with torch.no_grad():
        pooled = pool(video)
        # logits = the 1×1×1 logits conv applied to the pooled features
        again = i3d.logits.conv3d(pooled[:, :, None, None, None]).flatten(1)
    assert pooled.shape == (2, 1024)
    assert torch.allclose(again, logits, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="at least 8 frames"):
        i3d(torch.rand(1, 3, 4, 48, 48))
    with pytest.raises(ValueError, match="features"):
        I3DFeatures(features="softmax")


def test_save_pretrained_and_safetensors_file_round_trip(tmp_path, i3d):
    from safetensors.torch import save_file

    video = torch.rand(1, 3, 8, 48, 48, generator=torch.Generator().manual_seed(3))
    i3d.save_pretrained(tmp_path / "i3d")
    loaded = load_feature_net("i3d", tmp_path / "i3d")
    # a bare .safetensors state dict: the class count comes from the logits weight
    save_file({k: v.contiguous() for k, v in i3d.state_dict().items()}, tmp_path / "i3d.safetensors")
    bare = load_feature_net("i3d", tmp_path / "i3d.safetensors")
    assert bare.config.num_classes == 7
    with torch.no_grad():
        expected = i3d(video)
        torch.testing.assert_close(loaded(video), expected)
        bare_features = I3DFeatures(num_classes=7, input_size=48).eval()
        bare_features.load_state_dict(bare.state_dict())
        torch.testing.assert_close(bare_features(video), expected)


def test_convert_released_layout(tmp_path, inception):
    """A pytorch-fid style checkpoint: DataParallel prefixes, a 1008-class fc, no num_batches_tracked."""
    state = {f"module.{k}": v for k, v in inception.state_dict().items() if not k.endswith("num_batches_tracked")}
    state["module.fc.weight"] = torch.zeros(1008, 2048)
    state["module.fc.bias"] = torch.zeros(1008)
    torch.save(state, tmp_path / "pt_inception.pth")
    out = convert_checkpoint(tmp_path / "pt_inception.pth", tmp_path / "inception", "inception")
    loaded = load_feature_net("inception", out)
    loaded.register_to_config(input_size=75)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), inception(images))


def test_loading_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.safetensors"):
        load_feature_net("inception", tmp_path / "nothing.safetensors")
    (tmp_path / "weights.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="convert-weights"):
        load_feature_net("inception", tmp_path / "weights.pth")
    with pytest.raises(ValueError, match="not a PyTorch state dict"):
        convert_checkpoint(tmp_path / "weights.pth", tmp_path / "out", "inception")
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not an I3D checkpoint"):
        convert_checkpoint(tmp_path / "other.pth", tmp_path / "out", "i3d")
    with pytest.raises(ValueError, match="missing parameters"):
        convert_checkpoint(tmp_path / "other.pth", tmp_path / "out", "inception")
    with pytest.raises(ValueError, match="unknown feature network"):
        load_feature_net("vgg", tmp_path)
    assert not (tmp_path / "out").exists()


def test_convert_weights_command_errors_are_one_line(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "gid.stages.cli", "convert-weights", str(tmp_path / "rgb_imagenet.pt"),
                           str(tmp_path / "out"), "--kind", "i3d"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"gid: error: no such file (SOURCE {tmp_path / 'rgb_imagenet.pt'}); give the path of "
                                   "a PyTorch checkpoint (.pth/.pt)")
