from abc import abstractmethod

import torch
from mmengine.model import BaseModule


def blockify(feat: torch.Tensor,
             mask_patch_size: int,
             pool: int = 1) -> torch.Tensor:
    """Cut a dense map into per-block target vectors.

    Args:
        feat (Tensor): B x C x H x W map of ``pool`` x ``pool`` pixel cells.
        mask_patch_size (int): Side of one mask block, in image pixels.
        pool (int): Side of one cell of the map, in image pixels.
            Defaults to 1.

    Returns:
        Tensor: B x L x (C * n * n), n = mask_patch_size / pool cells per
        block side, with L = (H / n) * (W / n) blocks in row-major order;
        each vector is channel-major (index = c * n * n + row * n + col).
    """
    n = mask_patch_size // pool
    B, C, H, W = feat.shape
    h, w = H // n, W // n
    x = feat.reshape(B, C, h, n, w, n)
    x = x.permute(0, 2, 4, 1, 3, 5)  # B x h x w x C x n x n
    return x.reshape(B, h * w, C * n * n)


def unblockify(blocks: torch.Tensor, channels: int,
               grid: tuple) -> torch.Tensor:
    """Inverse of :func:`blockify`: B x L x (C*n*n) -> B x C x (h*n) x (w*n)
    for a grid of h x w blocks."""
    B, L, D = blocks.shape
    h, w = grid
    n = int(round((D // channels)**0.5))
    x = blocks.reshape(B, h, w, channels, n, n)
    x = x.permute(0, 3, 1, 4, 2, 5)  # B x C x h x n x w x n
    return x.reshape(B, channels, h * n, w * n)


class DenseTargetGenerator(BaseModule):
    """A target computed densely on the image, then cut into mask blocks.

    Subclasses set ``channels`` and ``pool`` (the side of one cell of the
    target map, in image pixels) and implement :meth:`forward`.
    """

    channels: int
    pool: int

    @abstractmethod
    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        """B x 3 x H x W -> B x channels x H/pool x W/pool."""

    def dims_per_block(self, mask_patch_size: int) -> int:
        """Length of one block's target vector."""
        return self.channels * (mask_patch_size // self.pool)**2

    def check_mask_patch_size(self, mask_patch_size: int) -> None:
        if mask_patch_size % self.pool:
            raise ValueError(
                f'mask block size {mask_patch_size} is not a multiple of the '
                f'target cell size {self.pool} of {type(self).__name__}: '
                f'choose mask_generator.mask_patch_size as a multiple of '
                f'{self.pool}.')

    def block_targets(self, imgs: torch.Tensor,
                      mask_patch_size: int) -> torch.Tensor:
        """B x 3 x H x W -> B x L x dims_per_block(mask_patch_size)."""
        self.check_mask_patch_size(mask_patch_size)
        return blockify(self(imgs), mask_patch_size, self.pool)
