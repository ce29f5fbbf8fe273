import math

import pytest
import torch

from fastmim_mm.models import (FastMIMHOGGenerator, FastMIMPixelGenerator,
                               blockify, unblockify)


def reflect(i, n):
    return -i if i < 0 else (2 * (n - 1) - i if i >= n else i)


def slow_hog(img, nbins=9, pool=8, gaussian_window=0):
    """HOG of one 3 x H x W image with explicit loops (float64)."""
    C, H, W = img.shape
    kx = [[1, 0, -1], [2, 0, -2], [1, 0, -1]]
    px = img.double().tolist()
    if gaussian_window:
        n = [(i - (gaussian_window - 1) / 2) / (gaussian_window // 2)
             for i in range(gaussian_window)]
        g = [math.exp(-0.5 * v * v) for v in n]
        total = sum(g)**2
    hist = [[[[0.0] * (W // pool) for _ in range(H // pool)]
             for _ in range(nbins)] for _ in range(C)]
    for c in range(C):
        for y in range(H):
            for x in range(W):
                gx = gy = 0.0
                for i in range(3):
                    for j in range(3):
                        v = px[c][reflect(y + i - 1, H)][reflect(x + j - 1, W)]
                        gx += kx[i][j] * v
                        gy += kx[j][i] * v
                mag = math.sqrt(gx * gx + gy * gy)
                if gaussian_window:
                    mag *= (
                        g[y % gaussian_window] * g[x % gaussian_window] /
                        total)
                b = math.floor(math.atan2(gx, gy) / math.pi * nbins) % nbins
                hist[c][b][y // pool][x // pool] += mag
    out = torch.tensor(hist, dtype=torch.float64)  # C x nbins x h x w
    norm = out.pow(2).sum(dim=1, keepdim=True).sqrt().clamp(min=1e-12)
    return (out / norm).reshape(C * nbins, H // pool, W // pool)


# pool=2 on 16 px is the Fashion-MNIST study's HOG (cells of 2 px, patch 4).
@pytest.mark.parametrize('size,gaussian_window,pool', [((16, 24), 0, 8),
                                                       ((16, 16), 8, 8),
                                                       ((16, 16), 0, 2)])
def test_hog_matches_slow_reference(size, gaussian_window, pool):
    imgs = torch.randn(2, 3, *size)
    hog = FastMIMHOGGenerator(pool=pool, gaussian_window=gaussian_window)(imgs)
    assert hog.shape == (2, 27, size[0] // pool, size[1] // pool)
    for b in range(2):
        ref = slow_hog(imgs[b], pool=pool, gaussian_window=gaussian_window)
        torch.testing.assert_close(hog[b].double(), ref, atol=1e-5, rtol=1e-4)


def test_hog_channel_is_colour_times_nbins_plus_bin():
    yy, xx = torch.meshgrid(
        torch.arange(16.), torch.arange(16.), indexing='ij')
    imgs = torch.zeros(1, 3, 16, 16)
    imgs[0, 1] = torch.sin(xx * 0.7)  # vertical stripes, green only
    hog = FastMIMHOGGenerator()(imgs)
    assert hog[0, :9].abs().sum() == 0 and hog[0, 18:].abs().sum() == 0
    # Horizontal gradient: atan2(gx, 0) = +-pi/2 -> phase +-4.5 -> bin 4.
    assert (hog[0, 9:18].argmax(dim=0) == 4).all()
    # Each cell histogram is L2-normalised.
    torch.testing.assert_close(
        hog[0, 9:18].norm(dim=0), torch.ones(2, 2), atol=1e-6, rtol=0)


def test_hog_is_float32_under_mixed_precision():
    """bf16 Sobel responses would move pixels across bins (measured here on
    photo-like images: 1% of the target's energy); the target must not
    depend on the precision setting."""
    gen = FastMIMHOGGenerator()
    imgs = torch.randn(2, 3, 32, 32) * 2
    with torch.autocast('cpu', dtype=torch.bfloat16):
        mixed = gen(imgs)
    assert mixed.dtype == torch.float32
    assert torch.equal(mixed, gen(imgs))


def test_hog_no_grad_and_nothing_in_state_dict():
    gen = FastMIMHOGGenerator(gaussian_window=16)
    imgs = torch.randn(1, 3, 16, 16, requires_grad=True)
    assert not gen(imgs).requires_grad
    assert len(gen.state_dict()) == 0


def test_hog_rejects_sizes_not_divisible_by_pool():
    with pytest.raises(ValueError, match='pool=8'):
        FastMIMHOGGenerator()(torch.zeros(1, 3, 20, 16))


def test_blockify_is_channel_major_per_block():
    feat = torch.randn(2, 27, 4, 6)  # 2 x 3 blocks of 2 x 2 cells
    blocks = blockify(feat, 16, 8)
    assert blocks.shape == (2, 6, 108)
    for b in range(2):
        for bi in range(2):
            for bj in range(3):
                for c in range(27):
                    for r in range(2):
                        for s in range(2):
                            assert blocks[b, bi * 3 + bj, c * 4 + r * 2 + s] \
                                == feat[b, c, bi * 2 + r, bj * 2 + s]
    torch.testing.assert_close(unblockify(blocks, 27, (2, 3)), feat)


def test_hog_block_targets_layout():
    gen = FastMIMHOGGenerator()
    imgs = torch.randn(1, 3, 32, 48)
    targets = gen.block_targets(imgs, 16)  # 2 x 3 blocks of 2 x 2 cells
    assert targets.shape == (1, 6, gen.dims_per_block(16)) == (1, 6, 108)
    torch.testing.assert_close(targets, blockify(gen(imgs), 16, 8))
    with pytest.raises(ValueError, match='multiple of 8'):
        gen.block_targets(imgs, 12)


def test_pixel_targets_are_normalised_per_block():
    imgs = torch.randn(2, 3, 32, 32) * 5 + 3
    targets = FastMIMPixelGenerator().block_targets(imgs, 16)
    assert targets.shape == (2, 4, 768)
    # block (0, 1) of sample 1: its 3 x 16 x 16 values, channel-major
    raw = imgs[1, :, 0:16, 16:32].reshape(-1)
    expected = (raw - raw.mean()) / (raw.var() + 1e-6).sqrt()
    torch.testing.assert_close(targets[1, 1], expected)
