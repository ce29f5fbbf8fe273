"""--resume through tools/train.py on torch >= 2.6 (weights-only loading)."""
import os.path as osp

import pytest
import torch

from fastmim_mm.engine import read_checkpoint
from ..conftest import runner_config
from .fault_hooks import StopAfterEpochHook  # noqa: F401  (registers it)


def test_resume_restores_iteration_lr_and_optimizer(train_module, image_folder,
                                                    tmp_path, records):
    train_main = train_module.main
    cfg = runner_config(
        tmp_path,
        image_folder,
        max_epochs=3,
        param_scheduler=[
            dict(
                type='CosineAnnealingLR',
                T_max=3,
                by_epoch=True,
                convert_to_iter_based=True,
                eta_min=1e-5)
        ])
    cfg.custom_hooks.append(dict(type='StopAfterEpochHook', stop_epoch=1))
    cfg_path = osp.join(tmp_path, 'cfg.py')
    cfg.dump(cfg_path)
    work_dir = str(tmp_path / 'work')

    train_main([cfg_path, '--work-dir', work_dir])  # stops after epoch 1
    ckpt_path = osp.join(work_dir, 'epoch_1.pth')
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read().strip() == ckpt_path
    # Loads weights-only, with MMEngine's own types allowed.
    ckpt = read_checkpoint(ckpt_path)
    first_run = [r for r in records if r['event'] == 'iter']
    assert len(first_run) == 4 and ckpt['meta']['iter'] == 4
    records.clear()

    train_main([
        cfg_path, '--work-dir', work_dir, '--resume', '--cfg-options',
        'custom_hooks.1.stop_epoch=100'
    ])
    start = records[0]
    assert start['event'] == 'before_train'
    assert start['iter'] == 4 and start['epoch'] == 1
    assert start['lr'] == ckpt['optimizer']['param_groups'][0]['lr']
    assert start['lr'] == pytest.approx(first_run[-1]['lr'], rel=0.3)
    iters = [r['iter'] for r in records if r['event'] == 'iter']
    # runner.iter counts finished iterations: it goes on from 4, not 0.
    assert iters == list(range(4, 12))

    # The optimiser state and weights of the resumed run started from the
    # checkpoint: resuming again from epoch_1 without training shows it.
    from fastmim_mm.engine import FastMIMRunner
    cfg.work_dir = work_dir
    cfg.resume, cfg.load_from = True, ckpt_path
    runner = FastMIMRunner.from_cfg(cfg)
    runner._train_loop = runner.build_train_loop(runner._train_loop)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.load_or_resume()
    state = runner.optim_wrapper.state_dict()['state']
    for idx, saved in ckpt['optimizer']['state'].items():
        torch.testing.assert_close(state[idx]['exp_avg'], saved['exp_avg'])
        torch.testing.assert_close(state[idx]['exp_avg_sq'],
                                   saved['exp_avg_sq'])
    model_state = runner.model.state_dict()
    for key, value in ckpt['state_dict'].items():
        torch.testing.assert_close(model_state[key], value)
    assert runner.iter == 4 and runner.epoch == 1
