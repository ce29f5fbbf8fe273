"""KNNValLoop, KNNEvalDataset and backbone_features in one process."""
import copy

import pytest
import torch
from mmengine.runner import Runner
from mmpretrain.registry import MODELS

from fastmim_mm.evaluation import backbone_features
from ..conftest import TINY_RESNET, TINY_SWIN, TINY_VIT, runner_config
from .knn_configs import MEMORY, QUERIES, knn_settings


@pytest.mark.parametrize(
    'model,channels', [(TINY_VIT, 64), (TINY_SWIN, 256), (TINY_RESNET, 512)],
    ids=['vit', 'swin', 'resnet'])
def test_backbone_features_pool_the_last_output(model, channels):
    backbone = MODELS.build(model['backbone'])
    backbone.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = backbone_features(backbone, x)
        last = backbone(x)[-1]
    assert feats.shape == (2, channels) and feats.dtype == torch.float32
    if last.dim() == 3:  # ViT tokens: class token left out
        torch.testing.assert_close(feats, last[:, 1:].mean(1))
    else:
        torch.testing.assert_close(feats, last.mean((2, 3)))


def test_vit_features_are_the_study_ones():
    """FastMIMViT's raw tokens and VisionTransformer's featmap (what the
    study pools) give the same features from the same weights; MAE's
    backbone runs unmasked."""
    cfg = copy.deepcopy(TINY_VIT['backbone'])
    raw = MODELS.build(cfg)
    featmap = MODELS.build(
        dict(cfg, type='VisionTransformer', out_type='featmap'))
    featmap.load_state_dict(raw.state_dict())
    mae = MODELS.build(dict(cfg, type='MAEViT', mask_ratio=0.75))
    mae.load_state_dict(raw.state_dict())
    for backbone in (raw, featmap, mae):
        backbone.eval()  # (VisionTransformer.train returns None)
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        expected = featmap(x)[-1].float().flatten(2).mean(2)
        torch.testing.assert_close(backbone_features(raw, x), expected)
        torch.testing.assert_close(backbone_features(mae, x), expected)


def test_loop_evaluates_frozen_and_restores_training_modes(
        tmp_path, image_folder):
    cfg = runner_config(
        tmp_path, image_folder,
        **knn_settings(image_folder, MEMORY, QUERIES, few_shot=(1, 5)))
    runner = Runner.from_cfg(cfg)
    runner._val_loop = runner.build_val_loop(runner._val_loop)
    model = runner.model
    model.train()
    model.backbone.ln1.eval()  # a module deliberately kept in eval mode
    modes = {name: m.training for name, m in model.named_modules()}
    seen = []
    model.backbone.register_forward_hook(lambda m, i, o: seen.append(
        (m.training, torch.is_grad_enabled(), i[0].shape[0])))
    metrics = runner.val_loop.run()

    assert {name: m.training for name, m in model.named_modules()} == modes
    assert all(not training and not grad for training, grad, _ in seen)
    assert sum(n for _, _, n in seen) == len(MEMORY) + len(QUERIES)
    assert set(metrics) == {
        'knn/top1', 'knn/top5', 'knn/1shot_top1', 'knn/1shot_top5',
        'knn/5shot_top1', 'knn/5shot_top5'
    }
    # 7 queries: every accuracy is a multiple of 100 / 7.
    for value in metrics.values():
        assert value * 7 / 100 == pytest.approx(round(value * 7 / 100))
    # 2 classes: each query's class is in the top 5 if it got a vote.
    assert metrics['knn/5shot_top5'] == 100


@pytest.mark.parametrize('amp,dtype', [(None, torch.float32),
                                       ('bfloat16', torch.bfloat16)])
def test_loop_autocast(tmp_path, image_folder, amp, dtype):
    cfg = runner_config(tmp_path, image_folder,
                        **knn_settings(image_folder, MEMORY, QUERIES))
    cfg.val_cfg.amp = amp
    runner = Runner.from_cfg(cfg)
    runner._val_loop = runner.build_val_loop(runner._val_loop)
    dtypes = set()
    runner.model.backbone.patch_embed.projection.register_forward_hook(
        lambda m, i, o: dtypes.add(o.dtype))
    runner.val_loop.run()
    assert dtypes == {dtype}


def test_auto_autocast_follows_the_amp_optim_wrapper(tmp_path, image_folder):
    from mmengine.optim import AmpOptimWrapper
    cfg = runner_config(tmp_path, image_folder,
                        **knn_settings(image_folder, MEMORY, QUERIES))
    runner = Runner.from_cfg(cfg)
    loop = runner.build_val_loop(runner._val_loop)
    runner.optim_wrapper = object.__new__(AmpOptimWrapper)
    runner.optim_wrapper.cast_dtype = torch.bfloat16
    with loop._autocast():
        assert torch.is_autocast_enabled('cpu')
        assert torch.get_autocast_dtype('cpu') == torch.bfloat16
    runner.optim_wrapper = None
    with loop._autocast():
        assert not torch.is_autocast_enabled('cpu')


def test_misconfigurations_are_named(tmp_path, image_folder):
    settings = knn_settings(image_folder, MEMORY, QUERIES, few_shot=(6, ))
    runner = Runner.from_cfg(runner_config(tmp_path, image_folder, **settings))
    with pytest.raises(
            ValueError,
            match=r'6-shot kNN needs 6 memory images '
            r'of every class; class 0 has 5'):
        runner.build_val_loop(runner._val_loop)

    settings = knn_settings(image_folder, MEMORY, QUERIES)
    settings['val_dataloader']['dataset'] = settings['val_dataloader'][
        'dataset']['queries']
    runner = Runner.from_cfg(runner_config(tmp_path, image_folder, **settings))
    with pytest.raises(
            ValueError,
            match="needs val_dataloader.dataset = "
            "dict\\(type='KNNEvalDataset'"):
        runner.build_val_loop(runner._val_loop)

    settings = knn_settings(image_folder, MEMORY, QUERIES)
    settings['val_cfg']['amp'] = 'fp16'
    runner = Runner.from_cfg(runner_config(tmp_path, image_folder, **settings))
    with pytest.raises(ValueError, match="val_cfg.amp must be one of"):
        runner.build_val_loop(runner._val_loop)
