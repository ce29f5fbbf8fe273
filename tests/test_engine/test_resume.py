"""--resume through tools/train.py on torch >= 2.6 (weights-only loading),
and inside an epoch, after a stop signal."""
import os
import os.path as osp
import signal

import pytest
import torch

from fastmim_mm.datasets import PerSampleSeedDataset, PerSampleSeedSampler
from fastmim_mm.engine import FastMIMRunner, read_checkpoint
from fastmim_mm.engine.hooks import PREEMPTED_EXIT_CODE
from ..conftest import runner_config
from .fault_hooks import StopAfterEpochHook  # noqa: F401  (registers them)


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
    assert not osp.exists(osp.join(work_dir, 'epoch_2.pth'))
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
    # The resumed run starts after the checkpoint's iteration 4.
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


def _mid_epoch_config(tmp_path, image_folder, name, resume=False, **hooks):
    cfg = runner_config(
        tmp_path / name,
        image_folder,
        max_epochs=2,
        resume=resume,
        randomness=dict(seed=3, deterministic=True),
        param_scheduler=[
            dict(
                type='CosineAnnealingLR',
                T_max=2,
                by_epoch=True,
                convert_to_iter_based=True,
                eta_min=1e-5)
        ])
    cfg.default_hooks.checkpoint.max_keep_ckpts = 2
    cfg.default_hooks.update(hooks)
    cfg.optim_wrapper.accumulative_counts = 2
    return cfg


def _iterations(records):
    return {r['iter']: r for r in records if r['event'] == 'iter'}


def test_stop_signal_inside_an_epoch_resumes_there(image_folder, tmp_path,
                                                   records):
    """SIGUSR1 during iteration 5 (the first of epoch 2) of a run that
    steps every 2 iterations: the run trains to the end of the window,
    saves iter_6.pth and stops with status 75; resumed, it trains
    iterations 7 and 8 with the uninterrupted run's losses and learning
    rates."""
    cfg = _mid_epoch_config(
        tmp_path, image_folder, 'full', checkpoint=dict(iter_interval=3))
    FastMIMRunner.from_cfg(cfg).train()
    full = _iterations(records)
    assert sorted(full) == list(range(8))
    # Per epoch; inside epochs every 3 iterations, at the end of the
    # accumulation window (iteration 3's ends with epoch 1, saved as
    # epoch_1.pth), the newest kept.
    assert sorted(
        f for f in os.listdir(tmp_path / 'full')
        if f.endswith('.pth')) == ['epoch_1.pth', 'epoch_2.pth', 'iter_6.pth']
    records.clear()

    cfg = _mid_epoch_config(
        tmp_path,
        image_folder,
        'cut',
        preemption=dict(type='InProcessPreemptionHook'))
    cfg.custom_hooks.append(
        dict(type='SignalHook', at_iter=4, signal='SIGUSR1'))
    before = signal.getsignal(signal.SIGUSR1)
    with pytest.raises(SystemExit) as stop:
        FastMIMRunner.from_cfg(cfg).train()
    assert stop.value.code == PREEMPTED_EXIT_CODE == 75
    assert signal.getsignal(signal.SIGUSR1) is before  # handlers restored
    assert sorted(_iterations(records)) == list(range(6))
    work = tmp_path / 'cut'
    assert sorted(f for f in os.listdir(work)
                  if f.endswith('.pth')) == ['epoch_1.pth', 'iter_6.pth']
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_6.pth')
    meta = read_checkpoint(work / 'iter_6.pth')['meta']
    assert (meta['epoch'], meta['iter']) == (1, 6)
    assert meta['epoch_progress'] == dict(samples=8, world_size=1)
    records.clear()

    cfg = _mid_epoch_config(tmp_path, image_folder, 'cut', resume=True)
    FastMIMRunner.from_cfg(cfg).train()
    assert records[0]['event'] == 'before_train'
    assert (records[0]['iter'], records[0]['epoch']) == (6, 1)
    resumed = _iterations(records)
    assert sorted(resumed) == list(range(6, 8))  # epoch 2's last 2 batches
    for it in range(6, 8):
        assert resumed[it]['loss'] == pytest.approx(
            full[it]['loss'], abs=1e-6, rel=0), it
        assert resumed[it]['lr'] == pytest.approx(full[it]['lr'], rel=1e-9)
        assert resumed[it]['epoch'] == full[it]['epoch']


def test_sampler_leaves_out_what_was_trained_on(image_folder):
    dataset = PerSampleSeedDataset(
        dict(
            type='CustomDataset',
            data_root=image_folder,
            ann_file='meta/train.txt',
            data_prefix='train',
            pipeline=[]))
    sampler = PerSampleSeedSampler(dataset, seed=1)
    sampler.set_epoch(1)
    order = list(sampler)
    sampler.resume_at(epoch=1, consumed=12)
    assert list(sampler) == order[12:] and len(sampler) == 4
    sampler.set_epoch(2)
    assert len(list(sampler)) == len(sampler) == 16
    with pytest.raises(
            ValueError,
            match='17 samples consumed, but each '
            'process has 16 per epoch'):
        sampler.resume_at(epoch=2, consumed=17)


def test_checkpoint_settings_that_cannot_work_are_refused(
        image_folder, tmp_path):
    cfg = runner_config(tmp_path / 'a', image_folder)
    cfg.default_hooks.checkpoint.type = 'CheckpointHook'
    cfg.default_hooks.checkpoint.pop('iter_interval')
    cfg.default_hooks.checkpoint.pop('max_keep_iter_ckpts')
    with pytest.raises(
            ValueError,
            match="default_hooks.preemption saves "
            "through a ResumableCheckpointHook: set default_hooks"
            ".checkpoint.type='ResumableCheckpointHook'"):
        FastMIMRunner.from_cfg(cfg).train()
    cfg = runner_config(tmp_path / 'b', image_folder)
    cfg.default_hooks.checkpoint.iter_interval = 2
    cfg.train_dataloader.sampler = dict(type='DefaultSampler', shuffle=True)
    with pytest.raises(
            ValueError,
            match='the train sampler DefaultSampler '
            'cannot continue an epoch where it stopped'):
        FastMIMRunner.from_cfg(cfg).train()
