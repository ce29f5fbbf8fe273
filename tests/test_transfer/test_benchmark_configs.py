"""Every MMDetection / MMSegmentation transfer config parses, builds its
model in its own registry scope, and carries the published recipe."""
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmengine.utils import import_modules_from_strings

from ..conftest import CONFIG_DIR

BENCH = CONFIG_DIR / 'fastmim' / 'benchmarks'
DET_CONFIGS = sorted((BENCH / 'mmdetection').glob('*.py'))
SEG_CONFIGS = sorted((BENCH / 'mmsegmentation').glob('*.py'))
DET = BENCH / 'mmdetection' / \
    'mask-rcnn_fastmim-swin-base-w7_fpn_4conv1fc-syncbn_8xb2-lsj-scp-3x_coco.py'
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
    assert {'mmpretrain.models', 'fastmim_mm'} <= set(
        cfg.custom_imports.imports)
    backbone = cfg.model.backbone
    assert backbone.type.startswith('mmpretrain.')
    assert backbone.init_cfg.type == 'Pretrained'
    assert backbone.init_cfg.prefix == 'backbone.'
    assert backbone.init_cfg.checkpoint == cfg.checkpoint
    model = _build(cfg)
    assert type(model.backbone).__module__.startswith('mmpretrain.')
    # The dumped config reads back (what tools/test.py and work dirs use).
    text = cfg.pretty_text
    assert 'mmpretrain.' in text


def test_mask_rcnn_recipe():
    cfg = Config.fromfile(str(DET))
    model = cfg.model
    assert model.type == 'MaskRCNN'
    bb = model.backbone
    assert bb.type == 'mmpretrain.SwinTransformer' and bb.arch == 'base'
    assert bb.window_size == 7 and bb.out_indices == (0, 1, 2, 3)
    assert bb.drop_path_rate == 0.3 and bb.pad_small_map
    assert model.neck.type == 'FPN'
    assert model.neck.in_channels == [128, 256, 512, 1024]
    syncbn = dict(type='SyncBN', requires_grad=True)
    assert model.neck.norm_cfg == syncbn
    assert model.roi_head.bbox_head.type == 'Shared4Conv1FCBBoxHead'
    assert model.roi_head.bbox_head.norm_cfg == syncbn
    assert model.roi_head.mask_head.norm_cfg == syncbn
    # Simple copy-paste on large-scale-jittered 1024 x 1024 images.
    train = cfg.train_dataloader
    assert train.batch_size == 2
    assert train.dataset.type == 'MultiImageMixDataset'
    assert [t['type'] for t in train.dataset.pipeline] == \
        ['CopyPaste', 'PackDetInputs']
    load = {t['type']: t for t in train.dataset.dataset.pipeline}
    assert load['RandomResize']['ratio_range'] == (0.1, 2.0)
    assert load['RandomCrop']['crop_size'] == (1024, 1024)
    assert train.dataset.dataset.data_root == 'data/coco/'
    assert cfg.val_evaluator.type == 'CocoMetric'
    assert cfg.val_evaluator.metric == ['bbox', 'segm']
    assert cfg.val_evaluator.ann_file == \
        'data/coco/annotations/instances_val2017.json'
    # 3x schedule, AdamW as the Swin recipes.
    assert cfg.train_cfg.max_epochs == 36
    steps = [s for s in cfg.param_scheduler if s.type == 'MultiStepLR'][0]
    assert steps.milestones == [27, 33] and steps.gamma == 0.1
    opt = cfg.optim_wrapper.optimizer
    assert opt.type == 'AdamW' and opt.lr == 1e-4
    assert opt.weight_decay == 0.05
    assert cfg.auto_scale_lr.base_batch_size == 16


def test_upernet_recipe():
    cfg = Config.fromfile(str(SEG))
    model = cfg.model
    bb = model.backbone
    assert bb.type == 'mmpretrain.VisionTransformer' and bb.arch == 'base'
    assert bb.img_size == (512, 512) and bb.patch_size == 16
    assert bb.out_type == 'featmap' and bb.out_indices == (1, 3, 9, 11)
    assert bb.drop_path_rate == 0.1
    assert model.neck.type == 'MultiLevelNeck'
    assert model.neck.scales == [4, 2, 1, 0.5]
    assert model.decode_head.type == 'UPerHead'
    assert model.decode_head.num_classes == 150
    assert model.auxiliary_head.type == 'FCNHead'
    assert model.auxiliary_head.loss_decode.loss_weight == 0.4
    assert model.test_cfg == dict(
        mode='slide', crop_size=(512, 512), stride=(341, 341))
    assert cfg.crop_size == (512, 512)
    assert model.data_preprocessor.size == (512, 512)
    crop = [t for t in cfg.train_pipeline if t['type'] == 'RandomCrop'][0]
    assert crop['crop_size'] == (512, 512)
    assert cfg.train_dataloader.dataset.data_root == \
        'data/ade/ADEChallengeData2016'
    assert cfg.train_dataloader.dataset.reduce_zero_label
    assert cfg.train_dataloader.batch_size == 2  # x 8 GPUs = 16
    assert cfg.val_evaluator == dict(type='IoUMetric', iou_metrics=['mIoU'])
    assert cfg.train_cfg.max_iters == 160000
    opt = cfg.optim_wrapper.optimizer
    assert opt.type == 'AdamW' and opt.lr == 3e-4
    assert opt.weight_decay == 0.05
    warmup, poly = cfg.param_scheduler
    assert warmup.type == 'LinearLR' and warmup.end == 1500
    assert not warmup.by_epoch
    assert poly.type == 'PolyLR' and poly.begin == 1500
    assert poly.end == 160000 and poly.eta_min == 0
    assert cfg.layer_decay_rate == 0.75


def test_upernet_layer_decay_is_applied():
    """The optimizer built from the config gives each ViT block its BEiT
    layer-decay lr: 0.75^13 for the embeddings, 0.75^(12 - i) for block i,
    1 for the neck and heads; no weight decay on norms and 1-D params."""
    cfg = Config.fromfile(str(SEG))
    model = _build(cfg)
    with DefaultScope.overwrite_default_scope('mmseg'):
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    groups = {}
    for group in optim_wrapper.param_groups:
        for p in group['params']:
            if id(p) in names:
                groups[names[id(p)]] = (group['lr'], group['weight_decay'])
    assert set(groups) == {
        n for n, p in model.named_parameters() if p.requires_grad}
    lr, rate = 3e-4, 0.75

    def check(name, scale, wd):
        assert groups[name][0] == pytest.approx(lr * scale, rel=1e-6), name
        assert groups[name][1] == pytest.approx(wd), name

    check('backbone.cls_token', rate**13, 0.)
    check('backbone.pos_embed', rate**13, 0.)
    check('backbone.patch_embed.projection.weight', rate**13, 0.05)
    for i in range(12):
        check(f'backbone.layers.{i}.attn.qkv.weight', rate**(12 - i), 0.05)
        check(f'backbone.layers.{i}.ffn.layers.1.weight', rate**(12 - i),
              0.05)
        check(f'backbone.layers.{i}.ln1.weight', rate**(12 - i), 0.)
        check(f'backbone.layers.{i}.ln2.bias', rate**(12 - i), 0.)
    check('neck.lateral_convs.0.conv.weight', 1., 0.05)
    check('decode_head.fpn_bottleneck.conv.weight', 1., 0.05)
    check('decode_head.fpn_bottleneck.bn.weight', 1., 0.)
    check('decode_head.conv_seg.bias', 1., 0.)
    check('auxiliary_head.conv_seg.weight', 1., 0.05)
    assert isinstance(optim_wrapper.optimizer, torch.optim.AdamW)
