from abc import abstractmethod

import torch
from mmengine.model import BaseModule


def blockify(feat: torch.Tensor, cells: int) -> torch.Tensor:
    """Cut a dense map into per-block target vectors.

    Args:
        feat (Tensor): B x C x H x W map.
        cells (int): Side of one block, in map positions.

    Returns:
        Tensor: B x L x (C * cells * cells) with L = (H / cells) * (W / cells)
        blocks in row-major order; each vector is channel-major
        (index = c * cells * cells + row * cells + col).
    """
    B, C, H, W = feat.shape
    h, w = H // cells, W // cells
    x = feat.reshape(B, C, h, cells, w, cells)
    x = x.permute(0, 2, 4, 1, 3, 5)  # B x h x w x C x cells x cells
    return x.reshape(B, h * w, C * cells * cells)


def unblockify(blocks: torch.Tensor, channels: int, grid: tuple) -> torch.Tensor:
    """Inverse of :func:`blockify`: B x L x (C*u*u) -> B x C x (h*u) x (w*u)."""
    B, L, D = blocks.shape
    h, w = grid
    cells = int(round((D // channels)**0.5))
    x = blocks.reshape(B, h, w, channels, cells, cells)
    x = x.permute(0, 3, 1, 4, 2, 5)  # B x C x h x u x w x u
    return x.reshape(B, channels, h * cells, w * cells)


class DenseTargetGenerator(BaseModule):
    """A target computed densely on the image, then cut into mask blocks.

    Subclasses set ``channels`` and ``stride`` (image pixels per map
    position) and implement :meth:`forward`.
    """

    channels: int
    stride: int

    @abstractmethod
    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        """B x 3 x H x W -> B x channels x H/stride x W/stride."""

    def dims_per_block(self, block_size: int) -> int:
        """Length of one block's target vector."""
        return self.channels * (block_size // self.stride)**2

    def check_block_size(self, block_size: int) -> None:
        if block_size % self.stride:
            raise ValueError(
                f'mask block size {block_size} is not a multiple of the '
                f'target cell size {self.stride} of {type(self).__name__}: '
                f'choose mask_generator.mask_patch_size as a multiple of '
                f'{self.stride}.')

    def block_targets(self, imgs: torch.Tensor,
                      block_size: int) -> torch.Tensor:
        """B x 3 x H x W -> B x L x dims_per_block(block_size)."""
        self.check_block_size(block_size)
        return blockify(self(imgs), block_size // self.stride)
