import numpy as np
import torch

from fastmim_mm.models import FastMIMHOGGenerator
from fastmim_mm.visualization import denormalize, hog_to_image, make_panel


def test_hog_glyphs_follow_edges():
    yy, xx = torch.meshgrid(
        torch.arange(32.), torch.arange(32.), indexing='ij')
    hog = FastMIMHOGGenerator()
    for stripes, edge in ((torch.sin(xx * 0.8), 'vertical'),
                          (torch.sin(yy * 0.8), 'horizontal')):
        img = hog_to_image(
            hog(stripes.expand(1, 3, 32, 32).contiguous())[0].numpy(),
            cell_px=12)
        assert img.shape == (48, 48) and img.dtype == np.uint8
        cell = img[12:24, 12:24].astype(float)
        column, row = cell[:, 5:7].mean(), cell[5:7, :].mean()
        if edge == 'vertical':
            assert column > 3 * row
        else:
            assert row > 3 * column


def test_panel_layout_and_denormalize():
    mean, std = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
    rgb = np.random.RandomState(0).randint(0, 256, (2, 3, 32, 32))
    norm = (rgb - np.reshape(mean,
                             (1, 3, 1, 1))) / np.reshape(std, (1, 3, 1, 1))
    back = denormalize(norm.astype(np.float32), mean, std)
    assert back.shape == (2, 32, 32, 3)
    assert np.abs(back.transpose(0, 3, 1, 2).astype(int) - rgb).max() <= 1
    maps = np.random.rand(2, 27, 4, 4).astype(np.float32)
    panel = make_panel(back, back, maps, maps)
    assert panel.size == (4 * 36 + 4, 16 + 2 * 36)


def test_prediction_column_frames_the_masked_blocks():
    images = np.full((1, 32, 32, 3), 128, np.uint8)
    maps = np.zeros((1, 27, 4, 4), np.float32)
    mask = np.zeros((1, 2, 2), np.uint8)
    mask[0, 1, 0] = 1  # bottom-left 16 x 16 block
    panel = np.asarray(make_panel(images, images, maps, maps, mask=mask))
    red = (panel[..., 0] == 255) & (panel[..., 1] == 0) & (panel[..., 2] == 0)
    # Only the prediction column (x from 4 + 3 * 36) has red, and only on
    # the frame of the masked block: rows 16 + 16..31, columns 112..127.
    ys, xs = np.nonzero(red)
    assert xs.min() == 112 and xs.max() == 127
    assert ys.min() == 32 and ys.max() == 47
    frame = red[32:48, 112:128]
    assert frame[0].all() and frame[-1].all()
    assert frame[:, 0].all() and frame[:, -1].all()
    assert not frame[1:-1, 1:-1].any()
    assert not red[16:32].any()  # the visible blocks stay unmarked
    unmasked = np.asarray(make_panel(images, images, maps, maps))
    assert not ((unmasked[..., 0] == 255) & (unmasked[..., 1] == 0)).any()
