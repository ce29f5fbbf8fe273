from contextlib import contextmanager
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.models.utils.attention import ShiftWindowMSA
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import nn

from ..target_generators import unblockify


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
        input_size (int | tuple): Pre-training resolution (H, W). The model is
            checked against it when built: the mask grid must match the
            backbone's last feature, the neck's output the target size, and
            window attention must tile every stage. Defaults to 128.
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

    def init_weights(self) -> None:
        super().init_weights()
        if not (isinstance(self.init_cfg, dict)
                and self.init_cfg['type'] == 'Pretrained'):
            trunc_normal_(self.mask_token, std=.02)

    @property
    def block_size(self) -> int:
        return self.mask_generator.mask_patch_size

    def mask_input(self, inputs: torch.Tensor,
                   mask: torch.Tensor) -> torch.Tensor:
        """Replace the pixels of masked blocks by the mask token.

        Args:
            inputs (Tensor): B x 3 x H x W normalised images.
            mask (Tensor): B x h x w bool, True = masked.
        """
        p = self.block_size
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
        num_blocks = mask.shape[1] * mask.shape[2]
        if pred.shape[1] != num_blocks:
            raise ValueError(self._grid_mismatch_message(
                inputs.shape[-2:], pred.shape[1], tuple(mask.shape[1:])))
        return pred

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        B, _, H, W = inputs.shape
        # Looked up here (not cached) so it can be swapped, e.g. in tests.
        mask = self.mask_generator(B, H, W, device=inputs.device)  # B x h x w
        pred = self.predict_blocks(inputs, mask)  # B x L x D
        target = self.target_generator.block_targets(
            inputs, self.block_size)  # B x L x D, from the unmasked image
        loss = self.head.loss(pred, target, mask.flatten(1))
        return dict(loss=loss)

    @torch.no_grad()
    def reconstruct(self, inputs: torch.Tensor,
                    mask: Optional[torch.Tensor] = None
                    ) -> Dict[str, torch.Tensor]:
        """Masked input, target and prediction as images, for inspection.

        Returns:
            dict: ``mask`` (B x h x w), ``masked_inputs`` (B x 3 x H x W),
            ``target`` and ``pred`` (B x C x H/s x W/s dense target maps,
            s the target's cell size).
        """
        B, _, H, W = inputs.shape
        if mask is None:
            mask = self.mask_generator(B, H, W, device=inputs.device)
        grid = tuple(mask.shape[1:])
        channels = self.target_generator.channels
        pred = self.predict_blocks(inputs, mask)
        target = self.target_generator.block_targets(inputs, self.block_size)
        return dict(
            mask=mask,
            masked_inputs=self.mask_input(inputs, mask),
            target=unblockify(target, channels, grid),
            pred=unblockify(pred.float(), channels, grid))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if prefix == '':  # the whole checkpoint, before any child loads it
            self.check_checkpoint(state_dict)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def check_checkpoint(self, state_dict: dict) -> None:
        """Raise ValueError if a FastMIM checkpoint has another architecture.

        Position embeddings may differ in size (they are resized on load);
        every other tensor must exist on both sides with the same shape.
        """
        own = {k: tuple(v.shape) for k, v in self.state_dict().items()}
        theirs = {
            k: tuple(v.shape)
            for k, v in state_dict.items() if hasattr(v, 'shape')
        }
        shapes = [
            f'{k}: checkpoint {theirs[k]} vs model {own[k]}'
            for k in own if k in theirs and own[k] != theirs[k]
            and not k.endswith('pos_embed')
        ]
        missing = [k for k in own if k not in theirs]
        unexpected = [k for k in theirs if k not in own]
        if not (shapes or missing or unexpected):
            return
        parts = []
        for what, items in (('differ in shape', shapes),
                            ('are missing from the checkpoint', missing),
                            ('are in the checkpoint only', unexpected)):
            if items:
                parts.append(f'{len(items)} tensors {what} (first: '
                             f'{items[0]})')
        raise ValueError(
            'the checkpoint does not fit the FastMIM model built from the '
            'config: ' + '; '.join(parts) + '. It was pre-trained with '
            'another architecture: set model.backbone and model.neck as in '
            'the config it was trained with (saved in the checkpoint under '
            "meta['cfg']). To reuse only its encoder, load it with "
            "init_cfg=dict(type='Pretrained', checkpoint=..., "
            "prefix='backbone.') on the backbone.")

    def check_input_size(self, input_size: Sequence[int]) -> None:
        """Raise ValueError unless the model can pre-train at this size.

        Runs one dry forward pass of a 1 x 3 x H x W zero image through the
        backbone and the neck.
        """
        H, W = input_size
        self.target_generator.check_block_size(self.block_size)
        grid = self.mask_generator.grid(H, W)
        with torch.no_grad(), _eval_mode(self), _check_windows():
            param = next(self.parameters())
            x = torch.zeros(1, 3, H, W, device=param.device)
            pred = self.neck(self.backbone(x))
        if pred.dim() != 3 or pred.shape[1] != grid[0] * grid[1]:
            raise ValueError(self._grid_mismatch_message(
                (H, W), pred.shape[1] if pred.dim() == 3 else None, grid))
        expected = self.target_generator.dims_per_block(self.block_size)
        if pred.shape[2] != expected:
            raise ValueError(
                f'neck.out_channels={pred.shape[2]} does not match the '
                f'{type(self.target_generator).__name__} target of '
                f'{expected} values per {self.block_size}-pixel block: set '
                f'neck.out_channels={expected}.')

    def _grid_mismatch_message(self, size, num_tokens, grid) -> str:
        stride = (f' (the backbone\'s output stride is '
                  f'{(size[0] * size[1] / num_tokens)**0.5:g} px)'
                  if num_tokens else '')
        return (f'at input {size[0]}x{size[1]} the neck produced '
                f'{num_tokens} tokens, but the mask grid of '
                f'mask_generator.mask_patch_size={self.block_size} has '
                f'{grid[0]}x{grid[1]} blocks{stride}. Set mask_patch_size to '
                f'the backbone\'s output stride (16 for ViT-B/16, 32 for Swin '
                f'and ResNet), or set the neck\'s num_prefix_tokens to the '
                f'number of class tokens.')


@contextmanager
def _eval_mode(module: nn.Module):
    """Run without touching BatchNorm statistics, then restore the mode."""
    training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(training)


@contextmanager
def _check_windows():
    """Refuse feature maps that window attention cannot tile exactly."""

    def check(module, args):
        H, W = args[1]
        ws = module.window_size
        if H % ws or W % ws:
            raise ValueError(
                f'a Swin stage sees a {H}x{W} token map, which window size '
                f'{ws} does not tile: choose an input size whose stage maps '
                f'(input / patch size / 2**stage) are multiples of the '
                f'window (e.g. a multiple of {ws * 32} px for window {ws}), '
                f'or change backbone.stage_cfgs.block_cfgs.window_size.')

    handle = nn.modules.module.register_module_forward_pre_hook(
        lambda module, args: check(module, args)
        if isinstance(module, ShiftWindowMSA) else None)
    try:
        yield
    finally:
        handle.remove()
