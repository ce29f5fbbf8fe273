from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models import VisionTransformer
from mmpretrain.models.utils import build_2d_sincos_position_embedding
from mmpretrain.registry import MODELS
from torch import nn


@MODELS.register_module()
class FastMIMViT(VisionTransformer):
    """MMPretrain's VisionTransformer with a fixed 2-D sin-cos position
    embedding (class-token position zero), as FastMIM pre-trains it.

    The forward pass is MMPretrain's, unchanged. ``pos_embed`` stays a
    (frozen) parameter so that checkpoints carry it as ``backbone.pos_embed``
    and fine-tuning starts its learnable embedding from it. Without a
    pretrained checkpoint, weights start as in MAE-style pre-training: Xavier
    uniform linear layers and patch projection (as a flattened matrix),
    class token normal(0.02). All arguments are
    those of :class:`mmpretrain.models.VisionTransformer`; the default
    ``out_type`` is ``'raw'`` (class token + patch tokens), which
    :class:`FastMIMNeck` decodes with ``num_prefix_tokens=1``.
    """

    def __init__(self, *args, out_type: str = 'raw', **kwargs) -> None:
        super().__init__(*args, out_type=out_type, **kwargs)
        self.pos_embed.requires_grad = False

    def init_weights(self) -> None:
        super().init_weights()
        if not (isinstance(self.init_cfg, dict)
                and self.init_cfg['type'] == 'Pretrained'):
            pos = build_2d_sincos_position_embedding(
                self.patch_resolution,
                self.embed_dims,
                cls_token=self.num_extra_tokens > 0)  # 1 x (1 + hw) x C
            self.pos_embed.data.copy_(pos)
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    nn.init.xavier_uniform_(m.weight)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, nn.LayerNorm):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
            w = self.patch_embed.projection.weight
            nn.init.xavier_uniform_(w.view(w.shape[0], -1))
            if self.cls_token is not None:
                trunc_normal_(self.cls_token, std=.02)
