from mmengine.logging import MMLogger
from mmpretrain.models import BEiTViT
from mmpretrain.registry import MODELS

# Tensors a BEiT block has and a plain ViT block lacks.
BEIT_ONLY = ('attn.relative_position_bias_table',
             'attn.relative_position_index', 'gamma_1', 'gamma_2')


@MODELS.register_module()
class FastMIMBEiTViT(BEiTViT):
    """MMPretrain's BEiTViT that starts from a plain ViT checkpoint, as the
    FastMIM reference starts its ADE20K backbone (BEiT's segmentation ViT:
    absolute position embedding plus a new relative position bias and layer
    scales in every block).

    A FastMIM ViT checkpoint in MMPretrain names (``FastMIMViT``
    pre-training, an ImageNet-fine-tuned ``VisionTransformer``, or an
    official one converted by ``tools/model_converters/
    fastmim_official_to_mm.py``) holds every tensor of this backbone but the
    ones BEiT adds to a block. When one is loaded, those start as the
    reference starts them: each relative position bias table at zero, the
    layer scales ``gamma_1``/``gamma_2`` at ``layer_scale_init_value``; the
    index buffers are this model's. With ``layer_scale_init_value=1`` the
    loaded backbone then computes exactly what the ViT computed. The load
    logs one line naming what was new.

    With ``bias=True`` (the reference's ``qkv_bias=True``) the checkpoint's
    ``attn.qkv.bias`` loads as it is. With ``bias='qv_bias'`` (BEiT's
    default) it is split into ``q_bias`` and ``v_bias``; its key part is
    dropped, which changes no output: it adds the same ``q . b_k`` to every
    score of a query, and softmax over the keys cancels it.

    Args:
        bias (bool | str): ``True``, ``'qv_bias'`` or ``False``, as in
            :class:`mmpretrain.models.BEiTViT`. Defaults to True.
        use_abs_pos_emb (bool): Keep the ViT's absolute position embedding.
            Defaults to True.
        layer_scale_init_value (float): Initial layer scale. Defaults to 1.
        **kwargs: The other arguments of
            :class:`mmpretrain.models.BEiTViT`.
    """

    def __init__(self,
                 bias=True,
                 use_abs_pos_emb: bool = True,
                 layer_scale_init_value: float = 1.,
                 **kwargs) -> None:
        super().__init__(
            bias=bias,
            use_abs_pos_emb=use_abs_pos_emb,
            layer_scale_init_value=layer_scale_init_value,
            **kwargs)
        self._register_load_state_dict_pre_hook(self._start_from_vit)

    def _start_from_vit(self, state_dict, prefix, *args, **kwargs):
        own = self.state_dict()
        new, split = {}, 0
        for i, layer in enumerate(self.layers):
            block = f'{prefix}layers.{i}.'
            if block + 'attn.qkv.weight' not in state_dict:
                continue  # the checkpoint does not have this block
            qkv_bias = block + 'attn.qkv.bias'
            if layer.attn.bias == 'qv_bias' and qkv_bias in state_dict:
                q, _, v = state_dict.pop(qkv_bias).chunk(3)
                state_dict[block + 'attn.q_bias'] = q
                state_dict[block + 'attn.v_bias'] = v
                split += 1
            for name in BEIT_ONLY:
                key = f'layers.{i}.{name}'
                if key not in own or prefix + key in state_dict:
                    continue
                value = own[key].clone()
                if name.endswith('bias_table'):
                    value.zero_()
                state_dict[prefix + key] = value
                if not name.endswith('index'):
                    new.setdefault(name, []).append(value)
        if not (new or split):
            return
        message = f'{type(self).__name__}: new, not in the checkpoint: ' + \
            ', '.join(
                f'{name} {"x".join(map(str, values[0].shape))} = '
                f'{values[0].flatten()[0].item():g} in {len(values)} blocks'
                for name, values in new.items())
        if split:
            message += (f'; qkv.bias split into q_bias, v_bias in {split} '
                        'blocks (k bias dropped: no output depends on it)')
        MMLogger.get_current_instance().info(message)
