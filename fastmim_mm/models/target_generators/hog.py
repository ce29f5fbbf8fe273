import math

import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS

from .base import DenseTargetGenerator


@MODELS.register_module()
class FastMIMHOGGenerator(DenseTargetGenerator):
    """Histograms of Oriented Gradients, the FastMIM regression target.

    Per colour channel: Sobel gradients (reflect padding), the magnitude of
    each pixel is added to the bin of its orientation, summed over cells of
    ``pool`` x ``pool`` pixels, and each cell's histogram is L2-normalised.

    Args:
        nbins (int): Orientation bins over the full circle. Defaults to 9.
        pool (int): Cell size in pixels. Defaults to 8.
        gaussian_window (int): Side of a Gaussian window (std = side / 2)
            that weights the magnitudes, tiled over the image as in MaskFeat.
            0 disables it, which is FastMIM's choice. Defaults to 0.
    """

    def __init__(self,
                 nbins: int = 9,
                 pool: int = 8,
                 gaussian_window: int = 0) -> None:
        super().__init__()
        self.nbins = nbins
        self.pool = pool
        self.channels = 3 * nbins
        self.gaussian_window = gaussian_window
        kx = torch.tensor([[1., 0., -1.], [2., 0., -2.], [1., 0., -1.]])
        # Depthwise: one kernel per colour channel, 3 x 1 x 3 x 3.
        self.register_buffer(
            'kernel_x', kx.expand(3, 1, 3, 3).clone(), persistent=False)
        self.register_buffer(
            'kernel_y', kx.t().expand(3, 1, 3, 3).clone(), persistent=False)
        if gaussian_window:
            n = torch.arange(gaussian_window, dtype=torch.float32)
            n = (n - n.mean()) / (gaussian_window // 2)
            g = torch.exp(-0.5 * n**2)
            g2d = g[:, None] * g[None, :]
            self.register_buffer('gaussian', g2d / g2d.sum(), persistent=False)

    @torch.no_grad()
    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        # In float32 under mixed precision too: in bf16 the Sobel responses
        # move pixels across orientation bins, and the target would then
        # depend on the precision setting.
        with torch.autocast(imgs.device.type, enabled=False):
            return self._histograms(imgs)

    def _histograms(self, imgs: torch.Tensor) -> torch.Tensor:
        B, C, H, W = imgs.shape
        if C != 3 or H % self.pool or W % self.pool:
            raise ValueError(
                f'FastMIMHOGGenerator needs B x 3 x H x W input with H and W '
                f'divisible by pool={self.pool}, got {tuple(imgs.shape)}.')
        x = F.pad(imgs.float(), (1, 1, 1, 1), mode='reflect')
        gx = F.conv2d(x, self.kernel_x, groups=3)  # B x 3 x H x W
        gy = F.conv2d(x, self.kernel_y, groups=3)
        magnitude = torch.sqrt(gx**2 + gy**2)
        phase = torch.atan2(gx, gy) / math.pi * self.nbins  # [-nbins, nbins]
        bins = torch.floor(phase).long() % self.nbins

        if self.gaussian_window:
            if H % self.gaussian_window or W % self.gaussian_window:
                raise ValueError(f'image size {H}x{W} is not divisible by '
                                 f'gaussian_window={self.gaussian_window}.')
            magnitude = magnitude * self.gaussian.repeat(
                H // self.gaussian_window, W // self.gaussian_window)

        hist = magnitude.new_zeros(B, 3, self.nbins, H, W)
        hist.scatter_(2, bins.unsqueeze(2), magnitude.unsqueeze(2))
        hist = F.avg_pool2d(
            hist.flatten(1, 2),
            self.pool,
            stride=self.pool,
            divisor_override=1)  # sum per cell: B x 3*nbins x H/p x W/p
        hist = hist.unflatten(1, (3, self.nbins))
        hist = F.normalize(hist, p=2, dim=2)
        return hist.flatten(1, 2)
