from typing import Sequence, Union

import torch
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models.backbones.vision_transformer import \
    TransformerEncoderLayer
from mmpretrain.registry import MODELS
from torch import nn


@MODELS.register_module()
class FastMIMNeck(BaseModule):
    """FastMIM decoder: a light transformer over the last encoder feature.

    linear (in_channels -> embed_dims) -> ``num_layers`` transformer blocks
    -> LayerNorm -> linear (embed_dims -> out_channels). It has no position
    embedding. ``num_layers=0`` makes it a linear head.

    Args:
        in_channels (int): Channels of the encoder's last feature.
        out_channels (int): Target values per token, e.g. 27 * (16 / 8)^2 =
            108 for HOG on 16-pixel blocks.
        embed_dims (int): Decoder width. Defaults to 256.
        num_layers (int): Transformer blocks. Defaults to 1.
        num_heads (int): Attention heads. Defaults to 8 (= 256 / 32).
        mlp_ratio (float): MLP hidden size / width. Defaults to 4.
        num_prefix_tokens (int): Tokens before the patch tokens in a
            B x N x C input (1 for a ViT class token). They take part in the
            decoder's attention and are dropped from the output. Defaults to 0.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 embed_dims: int = 256,
                 num_layers: int = 1,
                 num_heads: int = 8,
                 mlp_ratio: float = 4.,
                 num_prefix_tokens: int = 0,
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        self.out_channels = out_channels
        self.num_prefix_tokens = num_prefix_tokens
        self.embed = nn.Linear(in_channels, embed_dims)
        self.blocks = nn.ModuleList([
            TransformerEncoderLayer(
                embed_dims=embed_dims,
                num_heads=num_heads,
                feedforward_channels=int(embed_dims * mlp_ratio),
                qkv_bias=True,
                norm_cfg=dict(type='LN', eps=1e-6)) for _ in range(num_layers)
        ])
        self.norm = nn.LayerNorm(embed_dims, eps=1e-6)
        self.pred = nn.Linear(embed_dims, out_channels)

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is None:
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    trunc_normal_(m.weight, std=.02)
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.LayerNorm):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)

    def forward(
            self, x: Union[torch.Tensor,
                           Sequence[torch.Tensor]]) -> torch.Tensor:
        """Decode the last encoder feature.

        Args:
            x: B x C x h x w feature map, B x N x C tokens, or a tuple of
                them (the last one is used).

        Returns:
            Tensor: B x (h*w) x out_channels, one row per patch token in
            row-major order.
        """
        if isinstance(x, (tuple, list)):
            x = x[-1]
        if x.dim() == 4:
            x = x.flatten(2).transpose(1, 2)  # B x C x h x w -> B x hw x C
        x = self.embed(x)  # B x N x D
        for block in self.blocks:
            x = block(x)
        x = self.pred(self.norm(x))  # B x N x out_channels
        return x[:, self.num_prefix_tokens:]
