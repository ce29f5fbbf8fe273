"""ViT, Swin and a CNN pre-train through MMEngine's Runner, unchanged."""
import math
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner

from ..conftest import TINY_RESNET, TINY_SWIN, TINY_VIT, runner_config


@pytest.mark.parametrize(
    'model', [TINY_VIT, TINY_SWIN, TINY_RESNET], ids=['vit', 'swin', 'resnet'])
def test_backbone_trains_through_runner(model, image_folder, tmp_path,
                                        records):
    cfg = runner_config(tmp_path, image_folder, model=model, max_epochs=1)
    runner = Runner.from_cfg(cfg)
    before = {k: v.clone() for k, v in runner.model.state_dict().items()}
    runner.train()

    iters = [r for r in records if r['event'] == 'iter']
    assert len(iters) == 4  # 16 images / batch 4
    assert all(math.isfinite(r['loss']) and r['loss'] > 0 for r in iters)
    assert all(r['input_shape'] == (4, 3, 64, 64) for r in iters)
    after = runner.model.state_dict()
    assert not torch.equal(before['mask_token'], after['mask_token'])
    assert not torch.equal(before['neck.pred.weight'],
                           after['neck.pred.weight'])
    changed = [
        k for k in before
        if k.startswith('backbone.') and before[k].is_floating_point()
        and not torch.equal(before[k], after[k])
    ]
    assert changed, 'the backbone did not learn'
    assert osp.isfile(osp.join(tmp_path, 'epoch_1.pth'))
