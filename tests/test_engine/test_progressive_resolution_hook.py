import os.path as osp

import pytest

from fastmim_mm.engine import FastMIMRunner, ProgressiveResolutionHook
from ..conftest import runner_config
from .fault_hooks import StopAfterEpochHook  # noqa: F401  (registers it)

LR = 1e-3  # per 256 images
PHASES = [(0, 32, 4, 1), (1, 64, 8, 2)]


def progressive_config(work_dir, image_folder, phases=PHASES, **overrides):
    cfg = runner_config(work_dir, image_folder, max_epochs=3, **overrides)
    cfg.optim_wrapper.optimizer.lr = LR
    cfg.auto_scale_lr = dict()
    cfg.custom_hooks.insert(
        0, dict(type='ProgressiveResolutionHook', phases=phases))
    return cfg


def test_switches_crop_batch_accumulation_and_lr(image_folder, tmp_path,
                                                 records):
    cfg = progressive_config(tmp_path, image_folder)
    cfg.custom_hooks.append(dict(type='StopAfterEpochHook', stop_epoch=2))
    FastMIMRunner.from_cfg(cfg).train()

    iters = [r for r in records if r['event'] == 'iter']
    epoch0 = [r for r in iters if r['epoch'] == 0]
    epoch1 = [r for r in iters if r['epoch'] == 1]
    assert len(epoch0) == 4 and len(epoch1) == 2  # 16 images
    for r in epoch0:
        assert r['input_shape'] == (4, 3, 32, 32)
        assert r['accumulative_counts'] == 1
        assert r['lr'] == pytest.approx(LR * 4 / 256)
    for r in epoch1:
        assert r['input_shape'] == (8, 3, 64, 64)
        assert r['accumulative_counts'] == 2
        assert r['lr'] == pytest.approx(LR * 16 / 256)

    # Resume in the middle of phase 1: same crop, batch and lr, not
    # scaled a second time.
    records.clear()
    cfg = progressive_config(tmp_path, image_folder)
    cfg.resume, cfg.load_from = True, osp.join(tmp_path, 'epoch_2.pth')
    runner = FastMIMRunner.from_cfg(cfg)
    runner.train()
    resumed = [r for r in records if r['event'] == 'iter']
    assert len(resumed) == 2 and runner.iter == 8
    for r in resumed:
        assert r['epoch'] == 2
        assert r['input_shape'] == (8, 3, 64, 64)
        assert r['accumulative_counts'] == 2
        assert r['lr'] == pytest.approx(LR * 16 / 256)
    assert runner.train_loop.max_iters == 8


def test_resumes_inside_an_epoch_of_a_later_phase(image_folder, tmp_path,
                                                  records):
    """A checkpoint after 2 of epoch 1's 4 iterations (phase 1, an
    optimiser step every 2): the resumed run trains the 6 iterations left
    and knows that the run ends at iteration 12."""
    phases = [(0, 32, 4, 1), (1, 64, 4, 2)]
    cfg = progressive_config(tmp_path, image_folder, phases)
    cfg.default_hooks.checkpoint.iter_interval = 6
    cfg.custom_hooks.append(dict(type='StopAfterEpochHook', stop_epoch=2))
    FastMIMRunner.from_cfg(cfg).train()
    assert osp.isfile(osp.join(tmp_path, 'iter_6.pth'))

    records.clear()
    cfg = progressive_config(tmp_path, image_folder, phases)
    cfg.resume, cfg.load_from = True, osp.join(tmp_path, 'iter_6.pth')
    runner = FastMIMRunner.from_cfg(cfg)
    runner.train()
    resumed = [r for r in records if r['event'] == 'iter']
    assert [r['epoch'] for r in resumed] == [1, 1, 2, 2, 2, 2]
    assert all(r['accumulative_counts'] == 2 for r in resumed)
    assert runner.iter == 12 and runner.train_loop.max_iters == 12


def test_refuses_iteration_based_schedule(image_folder, tmp_path):
    cfg = progressive_config(
        tmp_path,
        image_folder,
        param_scheduler=[
            dict(
                type='CosineAnnealingLR',
                T_max=3,
                by_epoch=True,
                convert_to_iter_based=True)
        ])
    with pytest.raises(ValueError, match='convert_to_iter_based=False'):
        FastMIMRunner.from_cfg(cfg).train()


def test_refuses_a_phase_the_model_cannot_take(image_folder, tmp_path):
    cfg = progressive_config(tmp_path, image_folder)
    cfg.custom_hooks[0]['phases'] = [(0, 32, 4, 1), (1, 40, 4, 1)]
    with pytest.raises(ValueError, match='phase 1 .*input_size=40'):
        FastMIMRunner.from_cfg(cfg).train()


def test_refuses_a_resize_that_undoes_the_phases(train_module, image_folder,
                                                 tmp_path, capsys):
    """A resize after the crop would feed every phase the same size."""
    cfg = progressive_config(tmp_path, image_folder)
    cfg.train_dataloader.dataset.dataset.pipeline.insert(
        1, dict(type='Resize', scale=(64, 64)))
    cfg.dump(str(tmp_path / 'cfg.py'))
    with pytest.raises(SystemExit):
        train_module.main([str(tmp_path / 'cfg.py')])
    err = capsys.readouterr().err
    assert 'train.py: error: ProgressiveResolutionHook phase 0 crops to 32 ' \
        'px, but the train pipeline then makes 64x64 px images (Resize ' \
        'scale=(64, 64))' in err
    assert 'Traceback' not in err


@pytest.mark.parametrize('phases,match', [
    ([(1, 128, 8, 1)], 'first must be 0'),
    ([(0, 128, 8, 1), (5, 160, 8, 1), (3, 192, 8, 1)], 'strictly increasing'),
    ([(0, 128, 8)], 'give \\(start_epoch'),
    ([(0, 128, 0, 1)], 'positive'),
])
def test_rejects_bad_schedules(phases, match):
    with pytest.raises(ValueError, match=match):
        ProgressiveResolutionHook(phases)
