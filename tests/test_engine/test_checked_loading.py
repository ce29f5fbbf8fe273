"""The checkpoint checks belong to the toolkit's runs: loads outside them
behave as MMEngine's, also in a process that imported the toolkit."""
import os
import pickle
import subprocess
import sys

import pytest
import torch
import torchvision
from mmengine.runner.checkpoint import get_torchvision_models

from ..conftest import ROOT, runner_config

_MASK_RCNN = '''
import torch
{import_toolkit}
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmdet.registry import MODELS
init_default_scope('mmdet')
cfg = Config.fromfile({config!r})
torch.manual_seed(0)
model = MODELS.build(cfg.model)
model.init_weights()
print('weights', float(model.backbone.conv1.weight.double().sum()),
      float(sum(v.double().sum() for v in model.state_dict().values()
                if v.dtype.is_floating_point)))
'''


def test_mmdet_resnet50_from_torchvision_initialises_as_without_the_import(
        tmp_path):
    """MMDetection's Mask R-CNN starts its ResNet-50 from torchvision's
    weights (served here from a local torch hub cache); the checkpoint has
    the classifier's fc.* tensors, which MMEngine skips with a warning."""
    url = get_torchvision_models()['resnet50']
    cache = tmp_path / 'hub' / 'checkpoints'
    cache.mkdir(parents=True)
    torch.manual_seed(1)
    weights = torchvision.models.resnet50().state_dict()
    torch.save(weights, cache / url.rsplit('/', 1)[-1])
    config = tmp_path / 'mask_rcnn.py'
    config.write_text("_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'\n")
    outputs = []
    for import_toolkit in ('', 'import fastmim_mm'):
        code = _MASK_RCNN.format(
            import_toolkit=import_toolkit, config=str(config))
        result = subprocess.run([sys.executable, '-c', code],
                                cwd=ROOT,
                                env=dict(os.environ, TORCH_HOME=str(tmp_path)),
                                capture_output=True,
                                text=True,
                                timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        outputs.append(result.stdout.split('weights')[-1].split())
    assert outputs[0] == outputs[1]
    assert float(outputs[1][0]) == pytest.approx(
        float(weights['conv1.weight'].double().sum()), abs=1e-9)


def test_a_toolkit_run_leaves_torch_load_as_it_was(train_module, image_folder,
                                                   tmp_path):
    """A run resumes MMEngine's checkpoints weights-only; afterwards a user's
    own torch.load(weights_only=True) in the same process refuses them, as
    it did before the toolkit was imported."""
    before = set(torch.serialization.get_safe_globals())
    config = tmp_path / 'cfg.py'
    runner_config(
        tmp_path / 'run', image_folder, max_epochs=1).dump(str(config))
    train_module.main([str(config)])
    train_module.main(
        [str(config), '--resume', '--cfg-options', 'train_cfg.max_epochs=2'])
    checkpoint = tmp_path / 'run' / 'epoch_2.pth'
    assert checkpoint.is_file()
    assert set(torch.serialization.get_safe_globals()) == before
    with pytest.raises(pickle.UnpicklingError, match='Unsupported global'):
        torch.load(checkpoint, weights_only=True)
