"""Pictures of what FastMIM sees and predicts: input, masked input, HOG."""
import math
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

MASK_COLOUR = (255, 0, 0)


def denormalize(imgs: np.ndarray, mean: Sequence[float],
                std: Sequence[float]) -> np.ndarray:
    """B x 3 x H x W normalised (0-255 scale stats) -> B x H x W x 3 uint8."""
    mean = np.asarray(mean, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(std, dtype=np.float32).reshape(1, 3, 1, 1)
    out = np.clip(imgs * std + mean, 0, 255).astype(np.uint8)
    return out.transpose(0, 2, 3, 1)


def _glyphs(nbins: int, size: int) -> np.ndarray:
    """nbins x size x size line stamps, one per orientation bin.

    Bin b holds gradients at angle (b + 0.5) * pi / nbins (as
    FastMIMHOGGenerator measures it); the edge runs across the gradient, so
    the stamp draws direction -angle in y-down image coordinates.
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) - (size - 1) / 2
    glyphs = np.zeros((nbins, size, size), np.float32)
    for b in range(nbins):
        phi = -(b + 0.5) * math.pi / nbins
        dx, dy = math.cos(phi), math.sin(phi)
        dist = np.abs(xx * dy - yy * dx)  # distance to the line
        along = np.abs(xx * dx + yy * dy)
        glyphs[b] = np.clip(1.0 - dist, 0, 1) * (along <= size / 2 - 1)
    return glyphs


def hog_to_image(hog: np.ndarray,
                 nbins: int = 9,
                 cell_px: int = 12) -> np.ndarray:
    """Draw a HOG map as oriented strokes per cell.

    Args:
        hog (ndarray): (3 * nbins) x h x w, channel = colour * nbins + bin.
        cell_px (int): Pixels per drawn cell.

    Returns:
        ndarray: (h * cell_px) x (w * cell_px) uint8 grey image.
    """
    C, h, w = hog.shape
    strength = np.clip(hog, 0, None).reshape(C // nbins, nbins, h, w).sum(0)
    img = np.einsum('bhw,byx->hywx', strength, _glyphs(nbins, cell_px))
    img = img.reshape(h * cell_px, w * cell_px)
    img = img / max(float(img.max()), 1e-6)
    return (img * 255).astype(np.uint8)


def make_panel(images: np.ndarray,
               masked: np.ndarray,
               target: np.ndarray,
               pred: np.ndarray,
               nbins: int = 9,
               mask: Optional[np.ndarray] = None) -> Image.Image:
    """One row per image: input | masked input | HOG target | predicted HOG.

    Args:
        images, masked: B x H x W x 3 uint8.
        target, pred: B x (3 * nbins) x h x w HOG maps.
        mask (ndarray, optional): B x h' x w', non-zero for the masked
            blocks (the loss's blocks); they are framed in red in the
            prediction column.
    """
    B, H, W, _ = images.shape
    title_h, pad = 16, 4
    titles = ['input', 'masked input', 'HOG target', 'predicted HOG']
    panel = Image.new('RGB', (4 * (W + pad) + pad, title_h + B * (H + pad)),
                      'white')
    draw = ImageDraw.Draw(panel)
    for col, title in enumerate(titles):
        draw.text((pad + col * (W + pad), 2), title, fill='black')
    for row in range(B):
        y = title_h + row * (H + pad)
        cells = [images[row], masked[row]] + [
            np.repeat(hog_to_image(m[row], nbins)[..., None], 3, axis=2)
            for m in (target, pred)
        ]
        for col, cell in enumerate(cells):
            tile = Image.fromarray(cell).resize((W, H), Image.BILINEAR)
            if col == 3 and mask is not None:
                _frame_blocks(tile, mask[row])
            panel.paste(tile, (pad + col * (W + pad), y))
    return panel


def _frame_blocks(tile: Image.Image, mask: np.ndarray) -> None:
    """Draw a red frame around every masked block of ``tile``."""
    h, w = mask.shape
    bh, bw = tile.height / h, tile.width / w
    draw = ImageDraw.Draw(tile)
    for i, j in zip(*np.nonzero(mask)):
        draw.rectangle((round(j * bw), round(i * bh), round(
            (j + 1) * bw) - 1, round((i + 1) * bh) - 1),
                       outline=MASK_COLOUR)
