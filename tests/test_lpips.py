"""LPIPS-VGG from local weights (random here: nothing can be downloaded) against the formula of Zhang et al."""
import numpy as np
import pytest
import torch

from gid.pipeline.lpips import LPIPS, LPIPS_SCALE, LPIPS_SHIFT, LPIPS_TAPS, load_lpips


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = LPIPS()
    for lin in m.lins:  # the released lin weights are non-negative
        lin.weight.data.uniform_(0, 1)
    return m.eval()


def images(seed, n=2, size=32):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g)


def formula(model, x, y):
    """Σ_l mean_hw Σ_c w_lc (f̂_l(x) − f̂_l(y))², computed in numpy from the raw VGG activations."""
    def taps(img):
        shift = np.array(LPIPS_SHIFT).reshape(1, 3, 1, 1)
        scale = np.array(LPIPS_SCALE).reshape(1, 3, 1, 1)
        h, out = torch.from_numpy(((img.numpy() * 2 - 1) - shift) / scale).float(), []
        for i, layer in enumerate(model.vgg.features):
            h = layer(h)
            if i in LPIPS_TAPS:
                out.append(h.detach().numpy().astype(np.float64))
        return out

    total = np.zeros(x.shape[0])
    for lin, fx, fy in zip(model.lins, taps(x), taps(y)):
        nx = fx / (np.sqrt((fx**2).sum(axis=1, keepdims=True)) + 1e-10)
        ny = fy / (np.sqrt((fy**2).sum(axis=1, keepdims=True)) + 1e-10)
        w = lin.weight.detach().numpy().reshape(1, -1, 1, 1)
        total += ((nx - ny) ** 2 * w).sum(axis=1).mean(axis=(1, 2))
    return total


def test_matches_the_formula(model):
    x, y = images(1), images(2)
    with torch.no_grad():
        np.testing.assert_allclose(model(x, y).numpy(), formula(model, x, y), rtol=1e-4)


def test_zero_for_identical_symmetric_and_growing_with_noise(model):
    x = images(3)
    with torch.no_grad():
        assert torch.all(model(x, x) == 0)
        y = images(4)
        torch.testing.assert_close(model(x, y), model(y, x))
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(5))
        d = [float(model(x, (x + s * noise).clamp(0, 1)).mean()) for s in (0.02, 0.1, 0.3)]
    assert 0 < d[0] < d[1] < d[2]


def test_loads_torchvision_vgg_and_release_lin_files(model, tmp_path):
    vgg = {f"features.{k}": v for k, v in model.vgg.features.state_dict().items()}
    vgg["classifier.0.weight"] = torch.zeros(2, 2)  # torchvision's classifier is ignored
    torch.save(vgg, tmp_path / "vgg16.pth")
    torch.save({f"lin{i}.model.1.weight": lin.weight.detach().clone() for i, lin in enumerate(model.lins)},
               tmp_path / "vgg.pth")
    loaded = load_lpips(tmp_path / "vgg16.pth", tmp_path / "vgg.pth")
    x, y = images(6), images(7)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, y), model(x, y))
    model.save_pretrained(tmp_path / "folder")
    assert (tmp_path / "folder" / "diffusion_pytorch_model.safetensors").is_file()
    with torch.no_grad():
        torch.testing.assert_close(load_lpips(tmp_path / "folder")(x, y), model(x, y))


def test_bad_weights_and_inputs(model, tmp_path):
    torch.save({f"features.{k}": v for k, v in model.vgg.features.state_dict().items()}, tmp_path / "vgg16.pth")
    with pytest.raises(ValueError, match="lin weights"):
        load_lpips(tmp_path / "vgg16.pth")
    with pytest.raises(FileNotFoundError, match="lin weights"):
        load_lpips(tmp_path / "vgg16.pth", tmp_path / "missing.pth")
    torch.save({"lin0.model.1.weight": torch.ones(1, 3, 1, 1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="lin0.model.1.weight"):
        load_lpips(tmp_path / "vgg16.pth", tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(images(1), images(1, size=16))


def test_frame_scores_report_lpips_when_given(model):
    from gid.testing.render_eval import frame_scores

    target, source = (images(8) * 255).round() / 255, images(9)  # 8-bit frames, as frame_scores scores
    pred = target.clone()
    valid = torch.ones(2, 1, 32, 32)
    assert "lpips" not in frame_scores(pred, target, source, valid)
    assert frame_scores(pred, target, source, valid, model)["lpips"] == pytest.approx(0.0, abs=1e-6)
