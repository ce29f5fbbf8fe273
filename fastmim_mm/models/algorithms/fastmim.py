from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import nn

from ..target_generators import unblockify
from . import checks


@MODELS.register_module()
class FastMIM(BaseSelfSupervisor):
    """FastMIM: masked image modeling at low resolution with a HOG target.

    `FastMIM: Expediting Masked Image Modeling Pre-training for Vision
    <https://arxiv.org/abs/2212.06593>`_.

    Blocks of the normalised low-resolution image are replaced by a learnable
    colour (the mask token), the unmodified backbone encodes the image, a
    light decoder (the neck) predicts the HOG of every block from the last
    feature, and the loss is the MSE on the masked blocks only. Because
    masking happens in pixel space, any backbone whose last feature has one
    token per mask block can be pre-trained.

    The model is checked against ``input_size`` when built (see
    :mod:`.checks`): the mask grid must match the backbone's last feature,
    the neck's output the target size, and window attention must tile every
    stage. A checkpoint of another architecture is refused when loaded.

    Args:
        backbone (dict): Encoder config, e.g. ``FastMIMViT``,
            ``SwinTransformer`` or ``ResNet``.
        neck (dict): Decoder config, ``FastMIMNeck``.
        head (dict): Loss config. Defaults to ``MIMHead`` with
            ``PixelReconstructionLoss(criterion='L2')``: the squared error
            averaged over each block's target values, then over the masked
            blocks (float32 under AMP, as ``mse_loss`` autocasts to it).
        target_generator (dict): Target config. Defaults to
            ``FastMIMHOGGenerator``.
        mask_generator (dict): Masking config. Defaults to
            ``FastMIMMaskGenerator``.
        input_size (int | tuple): Pre-training resolution (H, W).
            Defaults to 128.
        data_preprocessor (dict, optional): Defaults to
            ``SelfSupDataPreprocessor``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict = dict(
                     type='MIMHead',
                     loss=dict(type='PixelReconstructionLoss',
                               criterion='L2')),
                 target_generator: dict = dict(type='FastMIMHOGGenerator'),
                 mask_generator: dict = dict(type='FastMIMMaskGenerator'),
                 input_size: Union[int, Tuple[int, int]] = 128,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            target_generator=target_generator,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if not isinstance(mask_generator, nn.Module):
            mask_generator = MODELS.build(mask_generator)
        self.mask_generator = mask_generator
        self.mask_token = nn.Parameter(torch.zeros(1, 3, 1, 1))
        if isinstance(input_size, int):
            input_size = (input_size, input_size)
        self.input_size = tuple(input_size)
        self.check_input_size(self.input_size)
        self.register_load_state_dict_pre_hook(checks.check_checkpoint_on_load)

    def init_weights(self) -> None:
        super().init_weights()
        if not (isinstance(self.init_cfg, dict)
                and self.init_cfg['type'] == 'Pretrained'):
            trunc_normal_(self.mask_token, std=.02)

    @property
    def mask_patch_size(self) -> int:
        return self.mask_generator.mask_patch_size

    def check_input_size(self, input_size: Sequence[int]) -> None:
        """Raise ValueError unless the model can pre-train at (H, W)."""
        checks.check_input_size(self, input_size)

    def check_checkpoint(self, state_dict: dict) -> None:
        """Raise ValueError if the checkpoint has another architecture."""
        checks.check_checkpoint(self, state_dict)

    def mask_input(self, inputs: torch.Tensor,
                   mask: torch.Tensor) -> torch.Tensor:
        """Replace the pixels of masked blocks by the mask token.

        Args:
            inputs (Tensor): B x 3 x H x W normalised images.
            mask (Tensor): B x h x w bool, True = masked.
        """
        p = self.mask_patch_size
        pixel_mask = mask.repeat_interleave(p, 1).repeat_interleave(p, 2)
        pixel_mask = pixel_mask.unsqueeze(1)  # B x 1 x H x W
        return torch.where(pixel_mask, self.mask_token.to(inputs.dtype),
                           inputs)

    def predict_blocks(self, inputs: torch.Tensor,
                       mask: torch.Tensor) -> torch.Tensor:
        """Encode the masked image and decode one target vector per block.

        Returns:
            Tensor: B x L x D, L = h * w blocks in row-major order.
        """
        feats = self.backbone(self.mask_input(inputs, mask))
        pred = self.neck(feats)  # B x L x D
        checks.check_grid(pred.shape[1], inputs.shape[-2:], mask.shape[1:],
                          self.mask_patch_size)
        return pred

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        B, _, H, W = inputs.shape
        # Looked up here (not cached) so it can be swapped, e.g. in tests.
        mask = self.mask_generator(B, H, W, device=inputs.device)  # B x h x w
        pred = self.predict_blocks(inputs, mask)  # B x L x D
        target = self.target_generator.block_targets(
            inputs, self.mask_patch_size)  # B x L x D, from the unmasked image
        loss = self.head.loss(pred, target, mask.flatten(1))
        return dict(loss=loss)

    @torch.no_grad()
    def reconstruct(
            self,
            inputs: torch.Tensor,
            mask: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Masked input, target and prediction as images, for inspection.

        Returns:
            dict: ``mask`` (B x h x w), ``masked_inputs`` (B x 3 x H x W),
            ``target`` and ``pred`` (B x C x H/s x W/s dense target maps,
            s the target generator's ``pool``).
        """
        B, _, H, W = inputs.shape
        if mask is None:
            mask = self.mask_generator(B, H, W, device=inputs.device)
        grid = tuple(mask.shape[1:])
        channels = self.target_generator.channels
        pred = self.predict_blocks(inputs, mask)
        target = self.target_generator.block_targets(inputs,
                                                     self.mask_patch_size)
        return dict(
            mask=mask,
            masked_inputs=self.mask_input(inputs, mask),
            target=unblockify(target, channels, grid),
            pred=unblockify(pred.float(), channels, grid))
