"""FastMIMReconstructionHook: panels each epoch, training untouched."""
import numpy as np
import torch
from mmengine.runner import Runner
from PIL import Image

from fastmim_mm.engine import FastMIMRunner
from fastmim_mm.engine.arguments import merge_cfg_options
from ..conftest import runner_config


def _runner(tmp_path, image_folder, name, hooks):
    cfg = runner_config(
        tmp_path / name, image_folder, max_epochs=2, randomness=dict(seed=5))
    cfg.custom_hooks += hooks
    return Runner.from_cfg(cfg)


def _losses(records):
    return [r['loss'] for r in records if r['event'] == 'iter']


def test_panels_leave_training_streams_alone(image_folder, tmp_path, records,
                                             monkeypatch):
    _runner(tmp_path, image_folder, 'plain', []).train()
    plain = _losses(records)
    records.clear()

    runner = _runner(tmp_path, image_folder, 'hooked',
                     [dict(type='FastMIMReconstructionHook', num_images=2)])
    # Reseeding the CUDA generators would replay rank 0's masks after each
    # panel on a GPU; on the CPU that shows as a call to manual_seed_all.
    cuda_seeds = []
    monkeypatch.setattr(torch.cuda, 'manual_seed_all', cuda_seeds.append)
    runner.train()
    assert cuda_seeds == []
    assert _losses(records) == plain  # same masks, crops and losses

    panels = sorted((tmp_path / 'hooked' / 'reconstructions').iterdir())
    assert [p.name for p in panels
            ] == ['reconstruction_epoch_1.png', 'reconstruction_epoch_2.png']
    first, second = (np.asarray(Image.open(p).convert('RGB')) for p in panels)
    # Same images and mask each epoch; the predictions have trained on.
    assert first.shape == second.shape
    assert not np.array_equal(first, second)
    # The masked blocks are framed in red in the prediction column only.
    red = (first[..., 0] == 255) & (first[..., 1] == 0) & (first[..., 2] == 0)
    width = (first.shape[1] - 4) // 4
    assert red[:, 3 * width + 4:].any() and not red[:, :3 * width + 4].any()


def test_panels_switch_off_from_the_command_line(image_folder, tmp_path):
    """`--cfg-options default_hooks.reconstruction=None` (MMEngine's own
    Runner accepts None only for its six default hooks)."""
    cfg = runner_config(tmp_path, image_folder)
    cfg.default_hooks.reconstruction = dict(type='FastMIMReconstructionHook')
    hooks = [type(h).__name__ for h in FastMIMRunner.from_cfg(cfg).hooks]
    assert 'FastMIMReconstructionHook' in hooks
    merge_cfg_options(cfg, {'default_hooks.reconstruction': None})
    cfg.experiment_name += '_off'
    hooks = [type(h).__name__ for h in FastMIMRunner.from_cfg(cfg).hooks]
    assert 'FastMIMReconstructionHook' not in hooks
    assert 'ResumableCheckpointHook' in hooks
