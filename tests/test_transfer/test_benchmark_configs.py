"""Every MMDetection / MMSegmentation transfer config parses, builds its
model in its own registry scope, and carries the published recipe."""
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS, DefaultScope
from mmengine.utils import import_modules_from_strings
from mmpretrain.models.backbones.base_backbone import BaseBackbone

from ..conftest import CONFIG_DIR

BENCH = CONFIG_DIR / 'fastmim' / 'benchmarks'
DET_CONFIGS = sorted((BENCH / 'mmdetection').glob('*.py'))
SEG_CONFIGS = sorted((BENCH / 'mmsegmentation').glob('*.py'))
DET = BENCH / 'mmdetection' / ('mask-rcnn_fastmim-swin-base-w7_fpn_rpn-2conv_'
                               '4conv1fc_syncbn-all_8xb4-lsj-scp-3x_coco.py')
SEG = BENCH / 'mmsegmentation' / \
    'upernet_fastmim-vit-base-p16_8xb2-160k_ade20k-512x512.py'


def _registries(scope):
    if scope == 'mmdet':
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
    else:
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    return MODELS


def _build(cfg):
    import_modules_from_strings(**cfg.custom_imports)
    models = _registries(cfg.default_scope)
    cfg.model.backbone.init_cfg = None  # no checkpoint in the tests
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = models.build(cfg.model)
        model.init_weights()
    return model


def test_configs_found():
    assert DET in DET_CONFIGS and SEG in SEG_CONFIGS


@pytest.mark.parametrize(
    'path', DET_CONFIGS + SEG_CONFIGS, ids=lambda p: p.name)
def test_config_loads_and_model_builds(path):
    cfg = Config.fromfile(str(path))
    scope = 'mmdet' if path in DET_CONFIGS else 'mmseg'
    assert cfg.default_scope == scope
    assert {'mmpretrain.models',
            'fastmim_mm'} <= set(cfg.custom_imports.imports)
    backbone = cfg.model.backbone
    assert backbone.type.startswith('mmpretrain.')
    assert backbone.init_cfg.type == 'Pretrained'
    assert backbone.init_cfg.prefix == 'backbone.'
    assert backbone.init_cfg.checkpoint == cfg.checkpoint
    model = _build(cfg)
    assert isinstance(model.backbone, BaseBackbone)  # MMPretrain's
    # The dumped config reads back (what tools/test.py and work dirs use).
    text = cfg.pretty_text
    assert 'mmpretrain.' in text


def _types(pipeline):
    return {t['type']: t for t in pipeline}


def test_transfers_start_from_the_fine_tuned_checkpoints():
    """The default checkpoints are what the ImageNet fine-tuning configs
    write (tools/train.py's work dir, the last of 100 epochs)."""
    for config, finetune in ((DET, 'swin-base-w7_8xb128-coslr-100e_in1k'),
                             (SEG, 'vit-base-p16_8xb128-coslr-100e_in1k')):
        cfg = Config.fromfile(str(config))
        assert cfg.checkpoint == f'work_dirs/{finetune}/epoch_100.pth'
        assert Config.fromfile(str(BENCH / f'{finetune}.py')).train_cfg \
            .max_epochs == 100
        assert cfg.model.backbone.init_cfg == dict(
            type='Pretrained', checkpoint=cfg.checkpoint, prefix='backbone.')


def test_mask_rcnn_recipe():
    """The reference repository's COCO Mask R-CNN config (FastMIM paper,
    Swin-B), value by value."""
    assert "_base_ = 'mmdet::" in DET.read_text()
    cfg = Config.fromfile(str(DET))
    model = cfg.model
    assert model.type == 'MaskRCNN'
    bb = model.backbone
    assert bb.type == 'mmpretrain.SwinTransformer' and bb.arch == 'base'
    assert bb.window_size == 7 and bb.out_indices == (0, 1, 2, 3)
    assert bb.drop_path_rate == 0.2 and bb.with_cp
    syncbn = dict(type='SyncBN', requires_grad=True)
    assert model.neck.type == 'FPN' and model.neck.out_channels == 256
    assert model.neck.in_channels == [128, 256, 512, 1024]
    assert model.neck.norm_cfg == syncbn
    assert model.rpn_head.num_convs == 2
    box, mask = model.roi_head.bbox_head, model.roi_head.mask_head
    assert box.type == 'Shared4Conv1FCBBoxHead' and box.norm_cfg == syncbn
    assert mask.type == 'FCNMaskHead' and mask.num_convs == 4
    assert mask.norm_cfg == syncbn
    assert model.roi_head.bbox_roi_extractor.roi_layer.output_size == 7
    assert model.roi_head.mask_roi_extractor.roi_layer.output_size == 14
    # Large-scale jitter to 1024 x 1024, flip, simple copy-paste; 4 / GPU.
    train = cfg.train_dataloader
    assert train.batch_size == 4
    assert train.dataset.type == 'MultiImageMixDataset'
    assert [t['type'] for t in train.dataset.pipeline] == \
        ['CopyPaste', 'PackDetInputs']
    assert train.dataset.pipeline[0].max_num_pasted == 100
    load = _types(train.dataset.dataset.pipeline)
    assert load['RandomResize'].scale == (1024, 1024)
    assert load['RandomResize'].ratio_range == (0.1, 2.0)
    assert load['RandomCrop'].crop_type == 'absolute_range'
    assert load['RandomCrop'].crop_size == (1024, 1024)
    assert load['RandomFlip'].prob == 0.5
    assert load['Pad'].size == (1024, 1024)
    assert train.dataset.dataset.data_root == 'data/coco/'
    # Single scale (1666, 1024), padded to a multiple of 32.
    test = _types(cfg.test_dataloader.dataset.pipeline)
    assert test['Resize'].scale == (1666, 1024) and test['Resize'].keep_ratio
    assert cfg.val_dataloader.dataset.pipeline == \
        cfg.test_dataloader.dataset.pipeline
    assert model.data_preprocessor.pad_size_divisor == 32
    assert cfg.val_evaluator.metric == ['bbox', 'segm']
    # AdamW 6e-5; steps at 27 and 33 of 36 epochs after 1000 warm-up iters.
    opt = cfg.optim_wrapper
    assert opt.optimizer == dict(
        type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.05)
    assert opt.get('clip_grad') is None
    assert cfg.train_cfg == dict(
        type='EpochBasedTrainLoop', max_epochs=36, val_interval=1)
    warmup, steps = cfg.param_scheduler
    assert warmup == dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000)
    assert steps == dict(
        type='MultiStepLR',
        begin=0,
        end=36,
        by_epoch=True,
        milestones=[27, 33],
        gamma=0.1)
    assert cfg.auto_scale_lr.base_batch_size == 32


def _groups(model, optim_wrapper):
    names = {id(p): n for n, p in model.named_parameters()}
    groups = {}
    for group in optim_wrapper.param_groups:
        for p in group['params']:
            if id(p) in names:
                groups[names[id(p)]] = (group['lr'], group['weight_decay'])
    assert set(groups) == {
        n
        for n, p in model.named_parameters() if p.requires_grad
    }
    return groups


def test_mask_rcnn_weight_decay_keys_match_swin():
    """No weight decay on the Swin norms and relative-position tables,
    by MMPretrain's parameter names; everything else decays."""
    cfg = Config.fromfile(str(DET))
    model = _build(cfg)
    with DefaultScope.overwrite_default_scope('mmdet'):
        groups = _groups(model, build_optim_wrapper(model, cfg.optim_wrapper))
    no_decay = {n for n, (_, wd) in groups.items() if wd == 0}
    assert all(lr == 6e-5 for lr, _ in groups.values())
    assert 'backbone.stages.2.blocks.17.attn.w_msa.' \
        'relative_position_bias_table' in no_decay
    assert {
        'backbone.patch_embed.norm.weight', 'backbone.norm0.bias',
        'backbone.stages.1.downsample.norm.weight',
        'backbone.stages.3.blocks.1.norm2.weight'
    } <= no_decay
    assert all('norm' in n or 'relative_position_bias_table' in n
               for n in no_decay)
    assert groups['backbone.stages.2.blocks.0.attn.w_msa.qkv.weight'][1] \
        == 0.05
    assert groups['neck.fpn_convs.0.bn.weight'][1] == 0.05  # as mmdet 2.23


def test_upernet_recipe():
    """The reference repository's ADE20K UperNet config (FastMIM paper,
    ViT-B), value by value."""
    assert "'mmseg::_base_/models/upernet_beit.py'" in SEG.read_text()
    cfg = Config.fromfile(str(SEG))
    model = cfg.model
    bb = model.backbone
    assert bb.type == 'mmpretrain.FastMIMBEiTViT' and bb.arch == 'base'
    assert bb.img_size == (512, 512) and bb.patch_size == 16
    assert bb.use_abs_pos_emb and bb.use_rel_pos_bias and bb.bias is True
    assert bb.layer_scale_init_value == 1.0
    assert bb.out_type == 'featmap' and bb.out_indices == [1, 3, 9, 11]
    assert bb.drop_path_rate == 0.1 and not bb.final_norm
    syncbn = dict(type='SyncBN', requires_grad=True)
    assert model.neck.type == 'Feature2Pyramid'
    assert model.neck.rescales == [4, 2, 1, 0.5]
    head = model.decode_head
    assert head.type == 'UPerHead' and head.pool_scales == (1, 2, 3, 6)
    assert head.in_channels == [768] * 4 and head.channels == 768
    assert head.dropout_ratio == 0.1 and head.norm_cfg == syncbn
    assert head.num_classes == 150
    aux = model.auxiliary_head
    assert aux.type == 'FCNHead' and aux.in_index == 3  # block 11
    assert aux.channels == 256 and aux.loss_decode.loss_weight == 0.4
    assert aux.norm_cfg == syncbn
    # Resize (2048, 512) x 0.5-2.0, crop 512 (cat max 0.75), flip,
    # photometric distortion; 2 / GPU. Test: slide 512, stride 341.
    train = cfg.train_dataloader
    assert train.batch_size == 2
    assert train.dataset.data_root == 'data/ade/ADEChallengeData2016'
    steps = _types(train.dataset.pipeline)
    assert steps['RandomResize'].scale == (2048, 512)
    assert steps['RandomResize'].ratio_range == (0.5, 2.0)
    assert steps['RandomCrop'].crop_size == (512, 512)
    assert steps['RandomCrop'].cat_max_ratio == 0.75
    assert steps['RandomFlip'].prob == 0.5
    assert 'PhotoMetricDistortion' in steps
    assert steps['LoadAnnotations'].reduce_zero_label
    assert model.data_preprocessor.size == (512, 512)
    test = _types(cfg.test_dataloader.dataset.pipeline)
    assert test['Resize'].scale == (2048, 512)
    assert model.test_cfg == dict(
        mode='slide', crop_size=(512, 512), stride=(341, 341))
    assert cfg.val_evaluator.type == 'IoUMetric'
    assert cfg.val_evaluator.iou_metrics == ['mIoU']
    # AdamW 3e-4, layer decay 0.75 over 12 layers; 160k iterations.
    opt = cfg.optim_wrapper
    assert opt.optimizer == dict(
        type='AdamW', lr=3e-4, betas=(0.9, 0.999), weight_decay=0.05)
    assert opt.paramwise_cfg == dict(num_layers=12, decay_rate=0.75)
    assert cfg.train_cfg.max_iters == 160000


def test_upernet_layer_decay_is_applied():
    """The optimizer built from the config gives each ViT block its BEiT
    layer-decay lr: 0.75^13 for the embeddings, 0.75^(12 - i) for block i,
    1 for the neck and heads; no weight decay on 1-D parameters and biases,
    as the reference's constructor (which also decays pos_embed)."""
    cfg = Config.fromfile(str(SEG))
    model = _build(cfg)
    with DefaultScope.overwrite_default_scope('mmseg'):
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = _groups(model, optim_wrapper)
    lr, rate = 3e-4, 0.75

    def check(name, scale, wd):
        assert groups[name][0] == pytest.approx(lr * scale, rel=1e-6), name
        assert groups[name][1] == pytest.approx(wd), name

    check('backbone.cls_token', rate**13, 0.05)
    check('backbone.pos_embed', rate**13, 0.05)
    check('backbone.patch_embed.projection.weight', rate**13, 0.05)
    check('backbone.patch_embed.projection.bias', rate**13, 0.)
    for i in range(12):
        check(f'backbone.layers.{i}.attn.qkv.weight', rate**(12 - i), 0.05)
        check(f'backbone.layers.{i}.attn.qkv.bias', rate**(12 - i), 0.)
        check(f'backbone.layers.{i}.attn.relative_position_bias_table',
              rate**(12 - i), 0.05)
        check(f'backbone.layers.{i}.gamma_1', rate**(12 - i), 0.)
        check(f'backbone.layers.{i}.ffn.layers.1.weight', rate**(12 - i), 0.05)
        check(f'backbone.layers.{i}.ln1.weight', rate**(12 - i), 0.)
    check('neck.upsample_4x.0.weight', 1., 0.05)
    check('decode_head.fpn_bottleneck.conv.weight', 1., 0.05)
    check('decode_head.fpn_bottleneck.bn.weight', 1., 0.)
    check('auxiliary_head.conv_seg.weight', 1., 0.05)
    assert isinstance(optim_wrapper.optimizer, torch.optim.AdamW)


def test_upernet_lr_is_poly_times_warmup():
    """lr(i) = 3e-4 * poly(i) * warm-up(i), both schedules running from
    iteration 0 as MMCV 1.x's poly policy with linear warm-up did; MMEngine
    counts each to its last iteration (poly 0 at 159999, warm-up 1 at
    1499), one iteration earlier than MMCV 1.x."""
    cfg = Config.fromfile(str(SEG))
    optim_wrapper = build_optim_wrapper(
        torch.nn.Linear(1, 1),
        dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=3e-4)))
    schedulers = [
        PARAM_SCHEDULERS.build(dict(s, optimizer=optim_wrapper))
        for s in cfg.param_scheduler
    ]
    for i in range(4001):
        warmup = 1e-6 + (1 - 1e-6) * min(i, 1499) / 1499
        expected = 3e-4 * (1 - i / 159999) * warmup
        if i in (0, 1, 750, 1498, 1499, 1500, 4000):
            assert optim_wrapper.get_lr()['lr'][0] == \
                pytest.approx(expected, rel=1e-6), i
        for scheduler in schedulers:
            scheduler.step()


# Every config under configs/fastmim/ that starts from a checkpoint: the
# fine-tuning, linear-probing and transfer configs and the small chain's.
STARTING_CONFIGS = sorted(
    p for p in (CONFIG_DIR / 'fastmim').rglob('*.py')
    if 'benchmarks' in p.parts or 'small_chain' in p.parts)


@pytest.mark.parametrize(
    'path', STARTING_CONFIGS, ids=lambda p: f'{p.parent.name}/{p.name}')
def test_header_names_the_option_for_another_checkpoint(path):
    """Each checkpoint a config reads by default can be replaced by the
    --cfg-options key its header names (a missing one ends in one line
    naming the same key: test_small_chain.py)."""
    from fastmim_mm.engine.launch import _pretrained_inits
    cfg = Config.fromfile(str(path))
    header = path.read_text().split('_base_ =')[0]
    keys = [key for key, _ in _pretrained_inits(cfg.model, 'model')]
    if cfg.get('load_from'):
        keys.append('load_from')
    if 'small_chain' in path.parts and path.name.startswith('1_'):
        assert not keys  # pre-training starts from random weights
        return
    assert keys == ['model.backbone.init_cfg.checkpoint']
    assert '--cfg-options model.backbone.init_cfg.checkpoint=' in header
