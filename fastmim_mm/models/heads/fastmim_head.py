import torch
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS


@MODELS.register_module()
class FastMIMHead(BaseModule):
    """Mean squared error over the masked blocks only.

    Args:
        loss_weight (float): Multiplies the loss. Defaults to 1.0.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def loss(self, pred: torch.Tensor, target: torch.Tensor,
             mask: torch.Tensor) -> torch.Tensor:
        """Args:
            pred (Tensor): B x L x D predictions.
            target (Tensor): B x L x D targets.
            mask (Tensor): B x L, True (or 1) where the block was masked.
        """
        if pred.shape != target.shape:
            raise ValueError(
                f'prediction {tuple(pred.shape)} and target '
                f'{tuple(target.shape)} differ in shape: the neck\'s '
                f'out_channels must equal the per-block target size '
                f'{target.shape[-1]}.')
        per_block = (pred.float() - target.float()).pow(2).mean(dim=-1)  # B x L
        mask = mask.to(per_block.dtype)
        return self.loss_weight * (per_block * mask).sum() / mask.sum()
