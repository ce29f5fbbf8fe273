import pytest
import torch

from fastmim_mm.models import FastMIMMaskGenerator


@pytest.mark.parametrize('ratio', [0.75, 0.5, 0.6, 0.9])
def test_every_sample_masks_exact_count(ratio):
    gen = FastMIMMaskGenerator(mask_ratio=ratio, mask_patch_size=16)
    mask = gen(32, 128, 128)
    assert mask.dtype == torch.bool and mask.shape == (32, 8, 8)
    expected = 64 - int(64 * (1 - ratio))
    assert (mask.flatten(1).sum(1) == expected).all()


def test_non_square_shape():
    mask = FastMIMMaskGenerator(mask_patch_size=16)(3, 96, 160)
    assert mask.shape == (3, 6, 10)
    assert (mask.flatten(1).sum(1) == 60 - int(60 * 0.25)).all()


def test_samples_are_independent_and_uniform():
    gen = FastMIMMaskGenerator(mask_ratio=0.75, mask_patch_size=16)
    mask = gen(4000, 64, 64).flatten(1).float()  # 16 blocks each
    # Distinct patterns per sample (C(16, 12) = 1820 possible).
    assert len({tuple(m.tolist()) for m in mask[:64]}) > 55
    # Every block is masked with probability 12 / 16.
    torch.testing.assert_close(
        mask.mean(0), torch.full((16, ), 0.75), atol=0.03, rtol=0)
    # Two different samples are uncorrelated.
    corr = torch.corrcoef(torch.stack([mask[0::2, 0], mask[1::2, 0]]))[0, 1]
    assert abs(corr) < 0.1


def test_bad_settings_raise():
    with pytest.raises(ValueError, match='mask_ratio'):
        FastMIMMaskGenerator(mask_ratio=1.0)
    with pytest.raises(ValueError, match='mask_ratio'):
        FastMIMMaskGenerator(mask_ratio=0.)
    with pytest.raises(ValueError, match='mask_patch_size=16'):
        FastMIMMaskGenerator()(1, 100, 128)
