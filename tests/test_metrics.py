"""Image metrics: PSNR against analytic values, SSIM against scikit-image, LPIPS on random
weights written in the real file formats (torchvision's AlexNet state dict, the lpips package's
v0.1 linear-layer file), checked by hand in numpy for one layer, and against the real lpips
package when it, torchvision and the ImageNet AlexNet checkpoint are all on the machine."""

from __future__ import annotations

import importlib.util
import math
import shutil
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from being_kernel.errors import InputError
from being_kernel.metrics import LPIPS, MissingWeights, load_lpips, lpips_available, psnr, ssim
from being_kernel.metrics import lpips as lpips_mod
from being_kernel.testing.lpips_weights import ALEX_FILE, ALEX_TAP_WIDTHS, write_alex_weights


def rand_images(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def noisy(img: torch.Tensor, std: float, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (img + std * torch.randn(img.shape, generator=g, dtype=img.dtype)).clamp(0, 1)


# --------------------------------------------------------------------------------------------
# PSNR
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("d", [0.1, 0.03])
def test_psnr_constant_offset_is_analytic(d: float) -> None:
    img = 0.2 + 0.5 * rand_images(2, 16, 12, 3, dtype=torch.float64)
    expected = 10 * math.log10(1 / d**2)
    assert torch.allclose(psnr(img + d, img), torch.full((2,), expected, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(psnr(255 * (img + d), 255 * img, max_val=255.0),
                          torch.full((2,), expected, dtype=torch.float64), atol=1e-9)


def test_psnr_batch_shapes_and_identical_images() -> None:
    img = rand_images(2, 3, 8, 10, 3)
    ref = noisy(img, 0.1)
    out = psnr(img, ref)
    assert out.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            assert torch.allclose(out[i, j], psnr(img[i, j], ref[i, j]))
    assert torch.isinf(psnr(img, img)).all() and (psnr(img, img) > 0).all()


def test_psnr_mask_uses_only_masked_pixels() -> None:
    img = 0.2 + 0.5 * rand_images(2, 8, 8, 3, dtype=torch.float64)
    ref = img.clone()
    ref[:, :4] += 0.1  # top half off by 0.1
    ref[:, 4:] += 0.3  # bottom half off by 0.3
    top = torch.zeros(8, 8, 1, dtype=torch.float64)
    top[:4] = 1  # one [H, W, 1] mask broadcast over the batch
    assert torch.allclose(psnr(img, ref, mask=top), torch.full((2,), 20.0, dtype=torch.float64))
    # Soft weights: MSE = sum(w * err) / (C * sum(w)); here (0.01 + 3 * 0.09) / 4 per pixel.
    soft = torch.where(top > 0, 1.0, 1 / 3).to(torch.float64).expand(2, 8, 8, 1)
    mse = (1.0 * 0.01 + (1 / 3) * 0.09) / (1 + 1 / 3)
    assert torch.allclose(psnr(img, ref, mask=soft), torch.full((2,), -10 * math.log10(mse), dtype=torch.float64))
    same_on_top = img.clone()
    same_on_top[:, 4:] += 0.3
    assert torch.isinf(psnr(same_on_top, img, mask=top)).all()


def test_psnr_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="shape"):
        psnr(rand_images(8, 8, 3), rand_images(8, 9, 3))
    with pytest.raises(ValueError, match="mask"):
        psnr(rand_images(8, 8, 3), rand_images(8, 8, 3), mask=torch.ones(8, 8, 3))


# --------------------------------------------------------------------------------------------
# SSIM
# --------------------------------------------------------------------------------------------


def skimage_ssim(img: torch.Tensor, ref: torch.Tensor) -> float:
    from skimage.metrics import structural_similarity

    return structural_similarity(img.numpy(), ref.numpy(), gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=1, channel_axis=-1)


@pytest.mark.parametrize(("h", "w", "c", "std"), [(24, 31, 3, 0.1), (11, 40, 3, 0.3), (32, 20, 1, 0.02)])
def test_ssim_matches_scikit_image(h: int, w: int, c: int, std: float) -> None:
    img = rand_images(2, h, w, c, seed=h, dtype=torch.float64)
    # Smooth one image a little so the local statistics are not pure noise.
    img[1] = (img[1] + img[1].roll(1, 0) + img[1].roll(1, 1)) / 3
    ref = noisy(img, std, seed=w)
    ours = ssim(img, ref)
    oracle = torch.tensor([skimage_ssim(img[i], ref[i]) for i in range(2)], dtype=torch.float64)
    assert torch.allclose(ours, oracle, atol=1e-10, rtol=0)
    assert torch.allclose(ssim(img.float(), ref.float()), oracle.float(), atol=1e-5, rtol=0)


def test_ssim_identity_batch_and_window_checks() -> None:
    img = rand_images(2, 3, 16, 14, 3)
    ref = noisy(img, 0.2)
    assert torch.allclose(ssim(img, img), torch.ones(2, 3), atol=1e-6)
    out = ssim(img, ref)
    assert out.shape == (2, 3) and (out < 0.99).all()
    assert torch.allclose(out[1, 2], ssim(img[1, 2], ref[1, 2]), atol=1e-6)
    with pytest.raises(ValueError, match="smaller than"):
        ssim(img[..., :10, :, :], ref[..., :10, :, :])
    with pytest.raises(ValueError, match="odd"):
        ssim(img, ref, window=10)


def test_ssim_is_differentiable() -> None:
    ref = rand_images(12, 13, 2, seed=3, dtype=torch.float64)
    img = noisy(ref, 0.1).requires_grad_(True)
    torch.autograd.gradcheck(lambda x: ssim(x, ref, window=5, sigma=1.0), (img,))
    # The training loss: gradients reach the rendered image and point towards the reference.
    rendered = noisy(rand_images(1, 20, 20, 3), 0.2).requires_grad_(True)
    target = rand_images(1, 20, 20, 3)
    loss = 0.8 * (rendered - target).abs().mean() + 0.2 * (1 - ssim(rendered, target)).mean()
    loss.backward()
    assert torch.isfinite(rendered.grad).all() and rendered.grad.abs().sum() > 0
    with torch.no_grad():
        stepped = rendered - 0.5 * rendered.grad / rendered.grad.abs().max()
    assert ssim(stepped, target) > ssim(rendered.detach(), target)


# --------------------------------------------------------------------------------------------
# LPIPS: random weights in the real file formats
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alex_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_alex_weights(tmp_path_factory.mktemp("lpips_alex"))


@pytest.fixture(scope="module")
def alex(alex_dir: Path) -> LPIPS:
    return load_lpips("alex", weights_dir=alex_dir)


@pytest.fixture
def no_default_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Empty torch hub cache, no $BEING_LPIPS_DIR, no lpips package: nothing to find by default."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(lpips_mod.ENV_LPIPS_DIR, raising=False)
    monkeypatch.setattr(lpips_mod, "_lpips_package_dir", lambda: None)
    return tmp_path


def test_lpips_loads_file_weights(alex: LPIPS, alex_dir: Path) -> None:
    trunk = torch.load(alex_dir / ALEX_FILE, weights_only=True)
    heads = torch.load(alex_dir / "alex.pth", weights_only=True)
    assert torch.equal(alex.features[3].weight, trunk["features.3.weight"])
    assert torch.equal(alex.lins[4].weight, heads["lin4.model.1.weight"])
    assert not any(p.requires_grad for p in alex.parameters()) and not alex.training


def test_lpips_distance_properties(alex: LPIPS) -> None:
    a = rand_images(3, 40, 36, 3, seed=5)
    b = noisy(a, 0.15)
    c = noisy(a, 0.4, seed=2)
    assert torch.equal(alex(a, a), torch.zeros(3))
    d_ab = alex(a, b)
    assert d_ab.shape == (3,) and (d_ab > 0).all()
    assert torch.allclose(d_ab, alex(b, a), rtol=1e-6, atol=0)
    assert (alex(a, c) > d_ab).all()  # more noise, further away
    per_image = torch.cat([alex(a[i : i + 1], b[i : i + 1]) for i in range(3)])
    assert torch.allclose(d_ab, per_image, rtol=1e-5, atol=0)


def test_lpips_gradient_reaches_the_image(alex: LPIPS) -> None:
    ref = rand_images(1, 33, 33, 3, seed=7)
    img = noisy(ref, 0.2).requires_grad_(True)
    alex(img, ref).sum().backward()
    assert torch.isfinite(img.grad).all() and img.grad.abs().sum() > 0


def test_lpips_rejects_bad_inputs(alex: LPIPS) -> None:
    with pytest.raises(ValueError, match="at least 31x31"):
        alex(rand_images(1, 30, 40, 3), rand_images(1, 30, 40, 3))
    with pytest.raises(ValueError, match=r"\[B, H, W, 3\]"):
        alex(rand_images(1, 40, 40, 4), rand_images(1, 40, 40, 4))


def test_lpips_first_layer_by_hand_in_numpy(tmp_path: Path) -> None:
    """Only lin0 non-zero, so the distance is layer 1's alone: conv 11x11 stride 4 pad 2 on the
    v0.1-scaled input, ReLU, unit-normalise over channels (eps 1e-10), squared difference,
    weighted channel sum, spatial mean. Written out with numpy loops, not with our network."""
    g = torch.Generator().manual_seed(11)
    heads = [torch.rand(1, c, 1, 1, generator=g) * (n == 0) for n, c in enumerate(ALEX_TAP_WIDTHS)]
    folder = write_alex_weights(tmp_path / "w", seed=4, heads=heads)
    model = load_lpips("alex", weights_dir=folder)
    trunk = torch.load(folder / ALEX_FILE, weights_only=True)
    w0, b0 = trunk["features.0.weight"].double().numpy(), trunk["features.0.bias"].double().numpy()
    lin0 = heads[0].double().numpy().reshape(-1)
    a, b = rand_images(1, 31, 35, 3, seed=8), rand_images(1, 31, 35, 3, seed=9)

    def layer1_unit_features(img: np.ndarray) -> np.ndarray:
        x = (2 * img - 1 - np.array([-0.030, -0.088, -0.188])) / np.array([0.458, 0.448, 0.450])
        x = np.pad(x, ((2, 2), (2, 2), (0, 0)))
        oh, ow = (x.shape[0] - 11) // 4 + 1, (x.shape[1] - 11) // 4 + 1
        out = np.zeros((oh, ow, 64))
        for i in range(oh):
            for j in range(ow):
                patch = x[4 * i : 4 * i + 11, 4 * j : 4 * j + 11, :]  # [11, 11, 3]
                for ch in range(64):
                    out[i, j, ch] = max(0.0, float(np.sum(w0[ch].transpose(1, 2, 0) * patch)) + b0[ch])
        return out / (np.sqrt((out**2).sum(axis=-1, keepdims=True)) + 1e-10)

    fa, fb = layer1_unit_features(a[0].double().numpy()), layer1_unit_features(b[0].double().numpy())
    expected = float((((fa - fb) ** 2) * lin0).sum(axis=-1).mean())
    assert expected > 0
    assert model(a, b).item() == pytest.approx(expected, rel=1e-4)


def test_lpips_all_layers_against_a_plain_rewrite(alex: LPIPS, alex_dir: Path) -> None:
    """The five AlexNet taps (after the ReLUs of conv1..conv5, pools between 1-2 and 2-3),
    rewritten with functional torch calls straight from the files, one image at a time."""
    trunk = torch.load(alex_dir / ALEX_FILE, weights_only=True)
    heads = torch.load(alex_dir / "alex.pth", weights_only=True)
    geometry = {0: (4, 2), 3: (1, 2), 6: (1, 1), 8: (1, 1), 10: (1, 1)}  # conv index: (stride, padding)
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(3, 1, 1)

    def features(img: torch.Tensor) -> list[torch.Tensor]:
        x, taps = ((2 * img.permute(2, 0, 1) - 1 - shift) / scale)[None], []
        for idx, (stride, pad) in geometry.items():
            if idx in (3, 6):
                x = torch.nn.functional.max_pool2d(x, 3, 2)
            x = torch.relu(torch.nn.functional.conv2d(x, trunk[f"features.{idx}.weight"],
                                                      trunk[f"features.{idx}.bias"], stride=stride, padding=pad))
            taps.append(x[0])
        return taps

    a, b = rand_images(2, 47, 39, 3, seed=12), rand_images(2, 47, 39, 3, seed=13)
    for i in range(2):
        total = 0.0
        for n, (fa, fb) in enumerate(zip(features(a[i]), features(b[i]))):
            ua = fa / (fa.pow(2).sum(0).sqrt() + 1e-10)
            ub = fb / (fb.pow(2).sum(0).sqrt() + 1e-10)
            total += float(((ua - ub) ** 2 * heads[f"lin{n}.model.1.weight"][0]).sum(0).mean())
        assert alex(a[i : i + 1], b[i : i + 1]).item() == pytest.approx(total, rel=1e-5)


def test_lpips_vgg_loads_torchvision_layout(tmp_path: Path) -> None:
    """VGG-16: torchvision's conv indices and LPIPS' tap widths; loads and measures."""
    convs = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    g = torch.Generator().manual_seed(0)
    trunk, cin = OrderedDict(), 3
    for idx, out in zip(convs, widths):
        trunk[f"features.{idx}.weight"] = torch.randn(out, cin, 3, 3, generator=g) * math.sqrt(2 / (9 * cin))
        trunk[f"features.{idx}.bias"] = torch.zeros(out)
        cin = out
    torch.save(trunk, tmp_path / "vgg16-397923af.pth")
    heads = OrderedDict((f"lin{n}.model.1.weight", torch.rand(1, c, 1, 1, generator=g))
                        for n, c in enumerate((64, 128, 256, 512, 512)))
    torch.save(heads, tmp_path / "vgg.pth")
    model = load_lpips("vgg", weights_dir=tmp_path)
    a = rand_images(2, 16, 20, 3)
    assert torch.equal(model(a, a), torch.zeros(2))
    assert (model(a, noisy(a, 0.1)) > 0).all()


# --------------------------------------------------------------------------------------------
# LPIPS: finding and checking the weight files
# --------------------------------------------------------------------------------------------


def test_lpips_wrong_keys_and_shapes_are_named(tmp_path: Path, alex_dir: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(alex_dir, bad)
    trunk = torch.load(alex_dir / ALEX_FILE, weights_only=True)
    trunk["features.3.weights"] = trunk.pop("features.3.weight")
    torch.save(trunk, bad / ALEX_FILE)
    with pytest.raises(InputError, match=r"missing features\.3\.weight; unexpected features\.3\.weights"):
        load_lpips("alex", weights_dir=bad)

    trunk = torch.load(alex_dir / ALEX_FILE, weights_only=True)
    trunk["features.6.bias"] = torch.zeros(383)
    torch.save(trunk, bad / ALEX_FILE)
    with pytest.raises(InputError, match=r"wrong shape features\.6\.bias \(383,\) \(expected \(384,\)\)"):
        load_lpips("alex", weights_dir=bad)

    shutil.copy(alex_dir / ALEX_FILE, bad / ALEX_FILE)
    heads = torch.load(alex_dir / "alex.pth", weights_only=True)
    del heads["lin2.model.1.weight"]
    torch.save(heads, bad / "alex.pth")
    with pytest.raises(InputError, match=r"missing lin2\.model\.1\.weight"):
        load_lpips("alex", weights_dir=bad)

    (bad / "alex.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a readable"):
        load_lpips("alex", weights_dir=bad)


def test_lpips_missing_weights_say_what_to_do(no_default_weights: Path) -> None:
    reason = lpips_available("alex")
    assert reason is not None and "\n" not in reason
    for needed in (ALEX_FILE, "alex.pth", "pip install lpips", "download.pytorch.org/models/" + ALEX_FILE,
                   lpips_mod.ENV_LPIPS_DIR, str(no_default_weights / "torch_home" / "hub" / "checkpoints")):
        assert needed in reason
    with pytest.raises(MissingWeights, match=ALEX_FILE) as info:
        load_lpips("alex")
    assert isinstance(info.value, InputError) and "pip install lpips" in info.value.hint
    with pytest.raises(ValueError, match="unknown LPIPS network"):
        lpips_available("squeeze")


def test_lpips_explicit_folder_never_falls_back(no_default_weights: Path, alex_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(lpips_mod.ENV_LPIPS_DIR, str(alex_dir))
    partial = no_default_weights / "partial"
    partial.mkdir()
    shutil.copy(alex_dir / "alex.pth", partial)
    with pytest.raises(MissingWeights, match=f"no {ALEX_FILE}"):
        load_lpips("alex", weights_dir=partial)


def test_lpips_found_through_env_var(no_default_weights: Path, alex_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                     alex: LPIPS) -> None:
    monkeypatch.setenv(lpips_mod.ENV_LPIPS_DIR, str(alex_dir))
    assert lpips_available("alex") is None
    a = rand_images(1, 32, 32, 3)
    assert torch.equal(load_lpips("alex")(a, noisy(a, 0.1)), alex(a, noisy(a, 0.1)))


def test_lpips_found_in_hub_cache_and_lpips_package(tmp_path: Path, alex_dir: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The backbone in $TORCH_HOME/hub/checkpoints, the heads in an installed lpips package,
    found by its spec without importing it."""
    monkeypatch.delenv(lpips_mod.ENV_LPIPS_DIR, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    shutil.copy(alex_dir / ALEX_FILE, hub)
    package = tmp_path / "site" / "lpips"
    (package / "weights" / "v0.1").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('lpips must not be imported')\n")
    monkeypatch.delitem(sys.modules, "lpips", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert "alex.pth" in (lpips_available("alex") or "")
    shutil.copy(alex_dir / "alex.pth", package / "weights" / "v0.1")
    assert lpips_available("alex") is None
    assert isinstance(load_lpips("alex"), LPIPS)
    assert "lpips" not in sys.modules


def test_lpips_matches_the_lpips_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our network against the reference implementation, with the real weights. Runs only where
    the lpips package, torchvision and the ImageNet AlexNet checkpoint are all installed."""
    monkeypatch.delenv(lpips_mod.ENV_LPIPS_DIR, raising=False)  # the same files for both networks
    if importlib.util.find_spec("lpips") is None or importlib.util.find_spec("torchvision") is None:
        pytest.skip("needs the lpips and torchvision packages")
    # torchvision looks only in the hub cache; anything missing there it would download.
    if not (Path(torch.hub.get_dir()) / "checkpoints" / ALEX_FILE).is_file() or lpips_available("alex"):
        pytest.skip(f"needs {ALEX_FILE} in the torch hub cache")
    import lpips

    reference = lpips.LPIPS(net="alex", version="0.1", verbose=False).eval()
    ours = load_lpips("alex")
    a = rand_images(3, 64, 48, 3)
    b = noisy(a, 0.2)
    with torch.no_grad():
        want = reference(a.permute(0, 3, 1, 2), b.permute(0, 3, 1, 2), normalize=True).flatten()
    assert torch.allclose(ours(a, b), want, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------------------------
# CUDA
# --------------------------------------------------------------------------------------------


@pytest.mark.gpu
def test_metrics_on_cuda_match_cpu(alex: LPIPS, alex_dir: Path) -> None:
    a = rand_images(2, 40, 40, 3)
    b = noisy(a, 0.1)
    ac, bc = a.cuda(), b.cuda()
    assert torch.allclose(psnr(ac, bc).cpu(), psnr(a, b), atol=1e-4)
    assert torch.allclose(ssim(ac, bc).cpu(), ssim(a, b), atol=1e-5)
    gpu = load_lpips("alex", weights_dir=alex_dir, device="cuda")
    assert torch.allclose(gpu(ac, bc).cpu(), alex(a, b), rtol=1e-3)


def test_masked_ssim_matches_scikit_image_full_map_inside_the_mask() -> None:
    """The mask averages the SSIM map (valid region) at window centres: scikit-image's full map,
    read at the masked pixels away from the border, is the oracle."""
    import numpy as np
    from skimage.metrics import structural_similarity

    g = torch.Generator().manual_seed(3)
    a = torch.rand(2, 40, 50, 3, generator=g)
    b = (a + 0.1 * torch.randn(2, 40, 50, 3, generator=g)).clamp(0, 1)
    mask = torch.zeros(2, 40, 50, 1)
    mask[0, 10:30, 5:45] = 1
    mask[1, 6:20, 20:44] = 1
    got = ssim(a, b, mask=mask)
    for i in range(2):
        _, full = structural_similarity(a[i].double().numpy(), b[i].double().numpy(), channel_axis=2, data_range=1,
                                        gaussian_weights=True, sigma=1.5, use_sample_covariance=False, full=True)
        expect = full.mean(axis=2)[mask[i, ..., 0].numpy() > 0].mean()
        assert float(got[i]) == pytest.approx(expect, abs=1e-6)
    torch.testing.assert_close(ssim(a, b, mask=torch.ones(2, 40, 50, 1)), ssim(a, b))
