import torch
from mmpretrain.registry import MODELS

from .base import DenseTargetGenerator


@MODELS.register_module()
class FastMIMPixelGenerator(DenseTargetGenerator):
    """Raw RGB target (the paper's pixel ablation).

    Each block's 3 x p x p values are normalised by their own mean and
    variance, as in MAE's ``norm_pix_loss``.

    Args:
        eps (float): Added to the variance. Defaults to 1e-6.
    """

    def __init__(self, eps: float = 1e-6) -> None:
        super().__init__()
        self.pool = 1
        self.channels = 3
        self.eps = eps

    @torch.no_grad()
    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        return imgs.float()

    @torch.no_grad()
    def block_targets(self, imgs: torch.Tensor,
                      mask_patch_size: int) -> torch.Tensor:
        target = super().block_targets(imgs, mask_patch_size)  # B x L x 3*p*p
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)  # unbiased, as in MAE
        return (target - mean) / (var + self.eps).sqrt()
