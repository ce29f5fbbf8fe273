from typing import Optional

import torch
from mmpretrain.registry import MODELS
from torch import nn


@MODELS.register_module()
class FastMIMMaskGenerator(nn.Module):
    """Block-wise random masking in pixel space.

    The image is cut into square blocks of ``mask_patch_size`` pixels. Every
    sample keeps exactly ``int(N * (1 - mask_ratio))`` of its N blocks, drawn
    by an independent random permutation; the others are masked.

    Args:
        mask_ratio (float): Fraction of blocks to mask, in (0, 1).
            Defaults to 0.75.
        mask_patch_size (int): Block side in pixels. Defaults to 16.
    """

    def __init__(self,
                 mask_ratio: float = 0.75,
                 mask_patch_size: int = 16) -> None:
        super().__init__()
        if not 0. < mask_ratio < 1.:
            raise ValueError(
                f'mask_generator.mask_ratio must lie in (0, 1), got '
                f'{mask_ratio}; FastMIM uses 0.75.')
        if mask_patch_size <= 0:
            raise ValueError('mask_generator.mask_patch_size must be '
                             f'positive, got {mask_patch_size}.')
        self.mask_ratio = mask_ratio
        self.mask_patch_size = mask_patch_size

    def grid(self, height: int, width: int) -> tuple:
        """Blocks per column and per row for an image of this size."""
        if height % self.mask_patch_size or width % self.mask_patch_size:
            raise ValueError(
                f'input size {height}x{width} is not divisible by '
                f'mask_generator.mask_patch_size={self.mask_patch_size}: '
                f'crop to a multiple of {self.mask_patch_size}.')
        return height // self.mask_patch_size, width // self.mask_patch_size

    def forward(self,
                batch_size: int,
                height: int,
                width: int,
                device: Optional[torch.device] = None) -> torch.Tensor:
        """Return a B x height/p x width/p bool mask, True = masked."""
        h, w = self.grid(height, width)
        num_blocks = h * w
        num_keep = int(num_blocks * (1 - self.mask_ratio))
        noise = torch.rand(batch_size, num_blocks, device=device)
        rank = noise.argsort(dim=1).argsort(dim=1)  # random permutation
        mask = rank >= num_keep
        return mask.view(batch_size, h, w)
