"""ImageNet fine-tuning / linear-probing configs start from FastMIM
checkpoints: weights land where they should and a training step runs."""
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmpretrain.models.utils import resize_pos_embed
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from fastmim_mm.compat.scipy_interp2d import \
    resize_relative_position_bias_table
from fastmim_mm.engine import CheckedLoading, read_checkpoint
from .conftest import CONFIG_DIR, TINY_VIT

BENCH = CONFIG_DIR / 'fastmim' / 'benchmarks'
PRETRAIN = {
    'vit':
    CONFIG_DIR / 'fastmim' /
    'fastmim_vit-base-p16_8xb512-amp-coslr-800e_in1k-128px.py',
    'swin':
    CONFIG_DIR / 'fastmim' /
    'fastmim_swin-base-w4_8xb256-amp-coslr-400e_in1k-128px.py',
}


@pytest.mark.parametrize('name,lr,decay', [
    ('vit-base-p16_8xb128-coslr-100e_in1k.py', 6e-4 * 4, 0.70),
    ('swin-base-w7_8xb128-coslr-100e_in1k.py', 1e-3 * 4, 0.80),
])
def test_finetune_recipe(name, lr, decay):
    cfg = Config.fromfile(str(BENCH / name))
    opt = cfg.optim_wrapper
    assert opt.optimizer.lr == pytest.approx(lr)  # blr * 1024 / 256
    assert opt.optimizer.weight_decay == 0.05
    assert opt.paramwise_cfg.layer_decay_rate == decay
    assert cfg.train_dataloader.batch_size * 8 == 1024
    assert cfg.model.backbone.drop_path_rate == 0.1
    assert [a.type for a in cfg.model.train_cfg.augments] == \
        ['Mixup', 'CutMix']
    assert [a.alpha for a in cfg.model.train_cfg.augments] == [0.8, 1.0]
    assert cfg.model.head.loss.label_smooth_val == 0.1
    pipeline = {
        t.type: t
        for t in cfg.train_dataloader.dataset.dataset.pipeline
    }
    assert pipeline['RandomErasing'].erase_prob == 0.25
    assert pipeline['RandAugment'].magnitude_level == 9
    assert pipeline['RandAugment'].magnitude_std == 0.5
    warmup, cosine = cfg.param_scheduler
    assert warmup.end == 5 and cosine.end == 100
    assert cosine.eta_min == 1e-6


def _pretrained_checkpoint(kind, tmp_path):
    model = MODELS.build(Config.fromfile(str(PRETRAIN[kind])).model)
    model.init_weights()
    path = str(tmp_path / f'fastmim_{kind}.pth')
    torch.save(dict(state_dict=model.state_dict()), path)
    return model.state_dict(), path


def _check_layer_decay(optim_wrapper, cfg, decay):
    groups = {
        g['param_name']: g
        for g in optim_wrapper.param_groups if 'param_name' in g
    }
    base = cfg.optim_wrapper.optimizer.lr
    head = groups['head.fc.weight']
    patch = groups['backbone.patch_embed.projection.weight']
    assert head['lr'] == pytest.approx(base)
    depth = head['layer_id']  # the head is the last "layer"
    assert patch['layer_id'] == 0
    assert patch['lr'] == pytest.approx(base * decay**depth)


def _build(cfg):
    # The Runner hands the top-level data_preprocessor to the model.
    cfg.model.data_preprocessor = cfg.data_preprocessor
    model = MODELS.build(cfg.model)
    with CheckedLoading():  # as FastMIMRunner loads
        model.init_weights()
    return model


def _one_step(cfg, model):
    optim_cfg = cfg.optim_wrapper.copy()
    optim_cfg.pop('loss_scale', None)
    optim_cfg.pop('dtype', None)
    optim_cfg.type = 'OptimWrapper'  # fp32 on CPU
    optim_wrapper = build_optim_wrapper(model, optim_cfg)
    data = dict(
        inputs=torch.randint(0, 256, (2, 3, 224, 224), dtype=torch.uint8),
        data_samples=[DataSample().set_gt_label(i) for i in (3, 7)])
    before = model.head.fc.weight.detach().clone() if hasattr(
        model.head, 'fc') else model.head.layers.head.weight.detach().clone()
    log = model.train_step(data, optim_wrapper)
    assert torch.isfinite(log['loss'])
    after = model.head.fc.weight if hasattr(
        model.head, 'fc') else model.head.layers.head.weight
    assert not torch.equal(before, after)
    return optim_wrapper


def test_swin_finetune_interpolates_tables_and_trains(tmp_path):
    source, path = _pretrained_checkpoint('swin', tmp_path)
    cfg = Config.fromfile(
        str(BENCH / 'swin-base-w7_8xb128-coslr-100e_in1k.py'))
    cfg.model.backbone.init_cfg.checkpoint = path
    model = _build(cfg)
    state = model.state_dict()
    for stage, heads in ((0, 4), (2, 16)):
        key = (f'stages.{stage}.blocks.1.attn.w_msa.'
               'relative_position_bias_table')
        src = source['backbone.' + key]
        assert src.shape == (49, heads)  # window 4
        torch.testing.assert_close(
            state['backbone.' + key],
            resize_relative_position_bias_table(7, 13, src, heads))
    torch.testing.assert_close(
        state['backbone.stages.2.blocks.5.ffn.layers.0.0.weight'],
        source['backbone.stages.2.blocks.5.ffn.layers.0.0.weight'])
    optim_wrapper = _one_step(cfg, model)
    _check_layer_decay(optim_wrapper, cfg, decay=0.80)


def test_vit_finetune_resizes_pos_embed_and_trains(tmp_path):
    source, path = _pretrained_checkpoint('vit', tmp_path)
    cfg = Config.fromfile(
        str(BENCH / 'vit-base-p16_8xb128-coslr-100e_in1k.py'))
    cfg.model.backbone.init_cfg.checkpoint = path
    model = _build(cfg)
    state = model.state_dict()
    assert source['backbone.pos_embed'].shape == (1, 65, 768)
    torch.testing.assert_close(
        state['backbone.pos_embed'],
        resize_pos_embed(source['backbone.pos_embed'], (8, 8), (14, 14),
                         'bicubic', 1))
    for key in ('backbone.layers.11.attn.qkv.weight',
                'backbone.patch_embed.projection.weight'):
        torch.testing.assert_close(state[key], source[key])
    assert model.backbone.layers[0].attn.num_heads == 12
    optim_wrapper = _one_step(cfg, model)
    _check_layer_decay(optim_wrapper, cfg, decay=0.70)


def test_linear_probe_freezes_the_encoder(tmp_path):
    source, path = _pretrained_checkpoint('vit', tmp_path)
    cfg = Config.fromfile(
        str(BENCH / 'vit-base-p16_8xb2048-linear-coslr-90e_in1k.py'))
    cfg.model.backbone.init_cfg.checkpoint = path
    model = _build(cfg)
    model.train()
    frozen = model.backbone.layers[11].attn.qkv.weight
    assert not frozen.requires_grad
    torch.testing.assert_close(frozen,
                               source['backbone.layers.11.attn.qkv.weight'])
    # The pre-training final norm is used as it is.
    torch.testing.assert_close(model.backbone.ln1.weight,
                               source['backbone.ln1.weight'])


def tiny_finetune_config(image_folder, checkpoint, name) -> Config:
    """The ViT fine-tuning config, shrunk to the tiny ViT of the tests and
    the 16-image folder, starting from ``checkpoint``."""
    cfg = Config.fromfile(
        str(BENCH / 'vit-base-p16_8xb128-coslr-100e_in1k.py'))
    cfg.model.backbone.update(arch=TINY_VIT['backbone']['arch'], img_size=64)
    cfg.model.backbone.init_cfg.checkpoint = str(checkpoint)
    cfg.model.head.update(num_classes=2, in_channels=64)
    cfg.data_preprocessor.num_classes = 2
    cfg.train_dataloader.dataset.dataset.pipeline[1].scale = 64
    cfg.val_dataloader.dataset.pipeline[1].scale = 72
    cfg.val_dataloader.dataset.pipeline[2].crop_size = 64
    folder = dict(
        type='CustomDataset',
        data_root=image_folder,
        ann_file='meta/train.txt',
        data_prefix='train')
    train, val = cfg.train_dataloader, cfg.val_dataloader
    train.dataset.dataset = dict(
        folder, pipeline=train.dataset.dataset.pipeline)
    val.dataset = dict(folder, pipeline=val.dataset.pipeline)
    for loader in (train, val):
        loader.update(batch_size=4, num_workers=0, persistent_workers=False)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator = cfg.test_evaluator = dict(type='Accuracy', topk=1)
    cfg.optim_wrapper.type = 'OptimWrapper'
    cfg.optim_wrapper.pop('loss_scale')
    cfg.optim_wrapper.pop('dtype')
    cfg.train_cfg.max_epochs = 1
    cfg.log_level = 'WARNING'
    # Unique names: MMEngine reuses a visualizer (and its log folder) of
    # the same name from an earlier runner in this process.
    cfg.experiment_name = cfg.visualizer.name = name
    return cfg


def test_finetune_runs_through_train_py(train_module, image_folder, tmp_path,
                                        records):
    """A tiny pre-training, then the ViT fine-tuning config (shrunk to the
    tiny ViT) trains and validates from its checkpoint via tools/train.py."""
    from mmengine.runner import Runner

    from .conftest import runner_config
    pre = runner_config(tmp_path / 'pre', image_folder, custom_hooks=[])
    Runner.from_cfg(pre).train()
    ckpt = read_checkpoint(tmp_path / 'pre' / 'epoch_1.pth')

    cfg = tiny_finetune_config(image_folder, tmp_path / 'pre' / 'epoch_1.pth',
                               'finetune_' + tmp_path.name)
    cfg.custom_hooks = [dict(type='RecordHook')]
    path = str(tmp_path / 'finetune.py')
    cfg.dump(path)
    train_module.main([path, '--work-dir', str(tmp_path / 'ft')])

    iters = [r for r in records if r['event'] == 'iter']
    assert len(iters) == 4 and all(r['loss'] > 0 for r in iters)
    tuned = read_checkpoint(tmp_path / 'ft' / 'epoch_1.pth')
    # Started from the pre-trained encoder: a block's qkv moved only by
    # one epoch of small (layer-decayed, warm-up) steps.
    key = 'backbone.layers.0.attn.qkv.weight'
    assert torch.allclose(
        tuned['state_dict'][key], ckpt['state_dict'][key], atol=1e-3)
    logs = list((tmp_path / 'ft').rglob('scalars.json'))
    assert any('accuracy/top1' in line for log in logs
               for line in log.read_text().splitlines())
