"""The Fashion-MNIST study (projects/fashion_mnist_study): its smoke preset,
run as a user runs it, on IDX files written here in the Debian package's
layout (gzipped), its online kNN against the offline one, and the
committed full study, reported from its cache."""
import gzip
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner.amp import autocast
from mmpretrain.models.utils import build_2d_sincos_position_embedding

from fastmim_mm.engine import FastMIMRunner, read_checkpoint
from fastmim_mm.evaluation import backbone_features
from projects.fashion_mnist_study import run as study
from projects.fashion_mnist_study.arms import ARMS as STUDY_ARMS
from projects.fashion_mnist_study.arms import (FINETUNE_CONFIG, ONLINE_KNN,
                                               PRESETS, unit_settings)
from projects.fashion_mnist_study.data import labelled_subset
from projects.fashion_mnist_study.evaluation import add_online_knn, features
from projects.fashion_mnist_study.report import (aggregate, write_plot,
                                                 write_table)
from projects.fashion_mnist_study.runs import (Recorder, interrupted_at,
                                               load_config)
from projects.fashion_mnist_study.units import (Cache, checkpoint_path,
                                                classifier_config,
                                                frozen_classifier,
                                                load_calibration, run_finetune,
                                                run_pretrain)
from ..conftest import ROOT

STUDY_PY = ROOT / 'projects' / 'fashion_mnist_study' / 'run.py'
COMMITTED = ROOT / 'docs' / 'study'
ARMS = ['scratch', 'hog16', 'hog32-time', 'pixel32', 'mae32-time']


def write_idx(path, array):
    """An IDX file as Fashion-MNIST ships it: magic (ubyte, ndim), sizes."""
    header = bytes([0, 0, 8, array.ndim]) + b''.join(
        int(n).to_bytes(4, 'big') for n in array.shape)
    with gzip.open(path, 'wb') as f:
        f.write(header + array.astype(np.uint8).tobytes())


def make_idx_dir(root, train=600, test=200):
    """Class c: a bright box 2 * (c + 1) px wide on a noisy background, so
    that labels follow from the images and a kNN on the features of any
    encoder, even a random one, beats chance by far."""
    rng = np.random.default_rng(0)
    for split, n in (('train', train), ('t10k', test)):
        labels = np.arange(n) % 10
        rng.shuffle(labels)
        images = rng.integers(0, 40, (n, 28, 28))
        for i, c in enumerate(labels):
            images[i, 4:24, 4:6 + 2 * c] = 255
        write_idx(root / f'{split}-images-idx3-ubyte.gz', images)
        write_idx(root / f'{split}-labels-idx1-ubyte.gz', labels)
    return root


def run_study(*args, code=None):
    """Run the study as a user does (or ``python -c code`` with the
    arguments, to change a module constant first)."""
    command = [str(STUDY_PY)] if code is None else ['-c', code]
    return subprocess.run([sys.executable, *command, *map(str, args)],
                          cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True,
                          text=True,
                          timeout=1800)


@pytest.fixture(scope='module')
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp('study')
    idx = root / 'idx'
    idx.mkdir()
    make_idx_dir(idx)
    args = [
        '--preset', 'smoke', '--idx-dir', idx, '--data-dir', root / 'data',
        '--work-dir', root / 'work'
    ]
    result = run_study(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, args, result


def test_smoke_covers_every_arm(smoke):
    root, _, result = smoke
    work = root / 'work'
    results = json.loads((work / 'results.json').read_text())
    assert list(results['arms']) == ARMS
    for arm, r in results['arms'].items():
        assert len(r['knn']) == 1 and len(r['finetune']) == 1, arm
        assert 0. <= r['finetune'][0] <= 100.
        # 100 test images, 200 training images as neighbours; the classes
        # are boxes of different widths, which a random ViT separates
        # (100% measured), and bars at different heights less (29%).
        assert r['knn'][0] > 80., (arm, r['knn'])
        curve = r['runs']['0']['finetune']['ft0']['curve']
        assert [it for it, _ in curve] == [2, 4]
    arms = results['arms']
    assert arms['scratch']['iters'] == 0
    assert arms['hog16']['iters'] == arms['pixel32']['iters'] == 3
    # Equal wall-clock: a 32 px step costs more than a 16 px one, so the
    # 32 px run gets fewer iterations, in the calibrated ratio.
    step = results['calibration']['step_s']
    hog16, hog32 = (arms[a]['config'] for a in ('hog16', 'hog32-time'))
    assert step[hog32] > step[hog16]
    assert arms['hog32-time']['iters'] == max(
        2, round(3 * step[hog16] / step[hog32]))
    # The scratch arm's long fine-tuning: twice the iterations.
    long = arms['scratch']['long_schedule']
    assert long['iters'] == 8 and [it for it, _ in long['curve']] == [4, 8]
    # Per arm and seed: wall-clock, images/s, one checkpoint outside cache/.
    for arm in ARMS[1:]:
        assert arms[arm]['pretrain_seconds'][0] > 0
        assert arms[arm]['images_per_s'][0] > 0
        ckpt = work / arms[arm]['runs']['0']['pretrain']['checkpoint']
        assert ckpt.is_file() and 'runs' in ckpt.parts
    assert not list((work / 'cache').rglob('*.pth'))
    table = (work / 'results.md').read_text().splitlines()
    assert len([row for row in table if row.startswith('| ')]) == 2 + len(ARMS)
    # The study's cost: every unit, the online kNN's evaluations included.
    unit_seconds = sum(r['pretrain']['seconds'] +
                       r['pretrain'].get('online_knn', {}).get('seconds', 0.) +
                       r['knn']['seconds'] +
                       sum(f['seconds'] for f in r['finetune'].values())
                       for arm in arms.values() for r in arm['runs'].values())
    assert unit_seconds > 0
    assert results['run_seconds'] == pytest.approx(unit_seconds)
    assert f'{unit_seconds / 3600:.2f} h of pre-training, kNN and ' \
        'fine-tuning' in table[-1]
    assert (work / 'results.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert '[study] arm mae32-time' in result.stdout
    # The console: progress, each run's summary and logged iterations; the
    # parameter tables of the models built outside runs stay off it.
    assert 'Initialized by user-defined' not in result.stdout
    assert len(result.stdout.splitlines()) < 400


def test_smoke_logs_the_online_knn_of_every_pre_training(smoke):
    """`points` evaluations per pre-training, the last after its last
    iteration; smoke evaluates its offline kNN sets, so the last online
    value is the offline kNN of the checkpoint; the curve is what the run
    logged (its scalars.json), against training seconds."""
    root, _, _ = smoke
    work = root / 'work'
    arms = json.loads((work / 'results.json').read_text())['arms']
    points = ONLINE_KNN['smoke']['points']
    assert 'online_knn' not in arms['scratch']['runs']['0']['pretrain']
    for arm in ARMS[1:]:
        run = arms[arm]['runs']['0']
        online = run['pretrain']['online_knn']
        iters = arms[arm]['iters']
        interval = -(-iters // points)
        assert online['interval'] == interval
        its, seconds, top1 = zip(*online['curve'])
        assert list(its) == sorted({*range(interval, iters, interval),
                                    iters}), arm
        assert list(seconds) == sorted(seconds)
        assert 0 < seconds[-1] <= run['pretrain']['seconds']
        assert top1[-1] == run['knn']['accuracy'], arm
        (scalars, ) = (work / 'runs' / arm / 'pt0' /
                       'pretrain').glob('*/vis_data/scalars.json')
        logged = [
            json.loads(line) for line in scalars.read_text().splitlines()
        ]
        assert [[r['step'], r['knn/top1']] for r in logged
                if 'knn/top1' in r] == [[i, t] for i, t in zip(its, top1)]


class _Features(Hook):
    """Keeps the features and the batches of a kNN evaluation."""

    def __init__(self):
        self.features, self.batches = [], []

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.features += [s.knn_feature for s in outputs]
        self.batches.append(data_batch)


@pytest.mark.parametrize('arm', ['hog16', 'mae32-time'])
def test_online_features_are_the_offline_ones(smoke, arm):
    """The online kNN (StudyKNNValLoop) embeds the memory and query images
    of a checkpoint as the offline kNN does: same pooling, autocast and
    32 px sin-cos table, the 16 px arm included, where MMPretrain's
    bicubic resize of its 4x4 table would give other features."""
    root, args, _ = smoke
    opts = study.parse_args(list(map(str, args)))
    work = root / 'work'
    pretrain = json.loads(
        (work / 'cache' / arm / 'pt0' / 'pretrain.json').read_text())
    run_dir = str(root / 'features' / arm)
    cfg = load_config(STUDY_ARMS[arm][0], run_dir, opts.data_dir, 0)
    add_online_knn(cfg, load_config(FINETUNE_CONFIG, run_dir, opts.data_dir,
                                    0), 20, 10, 1)
    cfg.load_from = checkpoint_path(opts, pretrain)
    runner = FastMIMRunner.from_cfg(cfg)
    hook = _Features()
    runner.register_hook(hook)
    runner.val()
    online = torch.stack(hook.features)

    eval_cfg = classifier_config(opts, arm, pretrain, run_dir, 0)
    eval_cfg.model.backbone.out_type = 'featmap'
    model = frozen_classifier(eval_cfg, 'cpu')
    offline = torch.cat([
        features(model, eval_cfg, 'train', 20, 'cpu')[0],
        features(model, eval_cfg, 'test', 10, 'cpu')[0]
    ])
    assert online.shape == offline.shape == (30, 192)
    torch.testing.assert_close(online, offline, rtol=0, atol=1e-5)

    # Without the table swap: the backbone's own table, resized if needed.
    model = runner.model
    with torch.no_grad(), autocast(dtype=torch.bfloat16):
        own = torch.cat([
            backbone_features(model.backbone,
                              model.data_preprocessor(batch, False)['inputs'])
            for batch in hook.batches
        ])
    gap = (own - offline).abs().max().item()
    assert (gap > 0.1) == (arm == 'hog16'), gap


def test_the_online_knn_leaves_pre_training_as_it_was(smoke, tmp_path):
    """The weights a pre-training ends with are the same with the online
    kNN as without (the evaluation restores the random streams)."""
    root, args, _ = smoke
    opts = study.parse_args(list(map(str, args)))
    opts.work_dir = str(tmp_path)
    again = run_pretrain(opts, 'hog16', 0, 3, PRESETS['smoke'])
    assert 'online_knn' not in again
    with_knn = read_checkpoint(
        str(root / 'work' / json.loads(
            (root / 'work' / 'cache' / 'hog16' / 'pt0' /
             'pretrain.json').read_text())['checkpoint']))['state_dict']
    without = read_checkpoint(checkpoint_path(opts, again))['state_dict']
    assert with_knn.keys() == without.keys()
    for key, value in with_knn.items():
        assert torch.equal(value, without[key]), key


def test_a_preset_without_fine_tuning_reports_knn_only(smoke, tmp_path):
    """`quick` fine-tunes nothing: no fine-tuning column, two panels."""
    root, _, _ = smoke
    smoke_results = json.loads((root / 'work' / 'results.json').read_text())
    preset = dict(PRESETS['smoke'], ft_seeds=[], long=0)
    assert unit_settings('hog16', 0, preset,
                         None).keys() == {'pretrain', 'knn'}
    records = {
        arm: {
            0: dict(r['runs']['0'], finetune={})
        }
        for arm, r in smoke_results['arms'].items()
    }
    results = aggregate('smoke', preset, records, smoke_results['calibration'],
                        [], 60., smoke_results['machine'])
    assert results['evaluation']['finetune'] is None
    write_table(results, str(tmp_path / 'results.md'))
    table = (tmp_path / 'results.md').read_text().splitlines()
    assert table[0].endswith('| kNN top-1 |')
    assert all(row.count('|') == 6 for row in table if row.startswith('|'))
    assert 'h of pre-training and kNN, summed' in table[-1]
    write_plot(results, str(tmp_path / 'results.png'))
    assert (tmp_path / 'results.png').read_bytes()[:8] == \
        b'\x89PNG\r\n\x1a\n'


def test_every_arm_is_evaluated_with_the_32px_position_table(smoke):
    """The tables are fixed in pre-training; evaluation swaps a 16 px arm's
    4x4 table for the 32 px one, which 32 px arms and the untrained
    encoder of the scratch arm already have, and keeps all else."""
    root, _, _ = smoke
    results = json.loads((root / 'work' / 'results.json').read_text())
    table = build_2d_sincos_position_embedding(8, 192, cls_token=True)
    for arm in ARMS:
        run = results['arms'][arm]['runs']['0']
        ckpt = root / 'work' / run['pretrain']['checkpoint']
        encoder = ckpt.with_name(ckpt.stem + '_encoder-32px.pth')
        pretrained = read_checkpoint(str(ckpt))['state_dict']
        evaluated = read_checkpoint(str(encoder))['state_dict']
        assert set(evaluated) == {
            k
            for k in pretrained if k.startswith('backbone.')
        }, arm
        for key, value in evaluated.items():
            expected = table if key == 'backbone.pos_embed' else \
                pretrained[key]
            assert torch.equal(value, expected), (arm, key)
        own = pretrained['backbone.pos_embed']
        same = own.shape == table.shape and torch.allclose(own, table)
        assert same == (arm != 'hog16'), arm
        for unit in ('knn', 'ft0'):
            settings = run['finetune'][unit]['settings'] \
                if unit != 'knn' else run['knn']['settings']
            assert settings['position_table'] == 'sin-cos 32 px'
    scratch = results['arms']['scratch']['runs']['0']['pretrain']
    assert scratch['settings']['init'] == \
        'fastmim-hog_vit-6x192-p4_fashion-mnist-32px.py'


def test_smoke_resumes_from_its_cache(smoke):
    root, args, _ = smoke
    work = root / 'work'
    before = json.loads((work / 'results.json').read_text())
    (work / 'cache' / 'hog16' / 'pt0' / 'ft0.json').unlink()
    # A cache copied without its checkpoints (e.g. committed JSON only):
    # the arm whose evaluation is missing is pre-trained again.
    (work / 'cache' / 'pixel32' / 'pt0' / 'ft0.json').unlink()
    shutil.rmtree(work / 'runs' / 'pixel32')
    result = run_study(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    # Only what was deleted ran again.
    assert 'pre-training hog16' not in result.stdout
    assert 'pixel32 seed 0: the checkpoint is gone' in result.stdout
    assert 'pre-training pixel32 seed 0' in result.stdout
    assert result.stdout.count('computing kNN') == 1
    assert 'computing kNN for pixel32' in result.stdout
    assert result.stdout.count('  fine-tuning ') == 2
    assert 'fine-tuning hog16 seed 0, fine-tuning seed 0' in result.stdout
    after = json.loads((work / 'results.json').read_text())
    for arm in ARMS:
        if arm != 'pixel32':
            assert after['arms'][arm]['knn'] == before['arms'][arm]['knn']
        if arm not in ('hog16', 'pixel32'):
            assert after['arms'][arm]['finetune'] == \
                before['arms'][arm]['finetune']


def test_an_interrupted_fine_tuning_goes_on_from_its_last_curve_point(
        smoke, monkeypatch, capsys):
    root, args, _ = smoke
    opts = study.parse_args(list(map(str, args)))
    cache = root / 'work' / 'cache' / 'scratch' / 'pt0'
    pretrain = json.loads((cache / 'pretrain.json').read_text())
    settings = json.loads((cache / 'ft0.json').read_text())['settings']
    labelled = labelled_subset(opts.data_dir, settings['labels'])
    runs = root / 'work' / 'runs' / 'scratch' / 'pt0'

    def fine_tune(unit, settings=settings):
        return run_finetune(opts, 'scratch', 0, unit, pretrain, settings,
                            labelled)

    def interrupted(unit):
        """Fine-tune, stopped in the third of four iterations (after the
        accuracy point at 2)."""
        record = Recorder.after_train_iter

        def stop(self, runner, batch_idx, data_batch=None, outputs=None):
            if runner.iter == 2:
                raise KeyboardInterrupt
            record(self, runner, batch_idx, data_batch, outputs)

        monkeypatch.setattr(Recorder, 'after_train_iter', stop)
        with pytest.raises(KeyboardInterrupt):
            fine_tune(unit)
        monkeypatch.undo()
        return runs / unit / 'resume.pth'

    whole = fine_tune('ft-whole')
    assert whole['resumed_at'] == []
    resume_file = interrupted('ft-parts')
    assert interrupted_at(str(resume_file), settings) == 2
    # Mark what the interrupted run kept, to tell it from what the resumed
    # run measures (the smoke accuracy is 0% at iteration 2 either way).
    saved = read_checkpoint(str(resume_file))
    assert saved['meta']['study']['curve'] == whole['curve'][:1]
    saved['meta']['study'].update(curve=[[2, 12.5]], seconds=1000.)
    torch.save(saved, resume_file)
    capsys.readouterr()
    parts = fine_tune('ft-parts')
    assert f'going on from iteration 2 of the interrupted run ' \
        f'({resume_file})' in capsys.readouterr().out
    assert parts['resumed_at'] == [2]
    # The point before the interruption is the interrupted run's; the one
    # after comes from the resumed run; the time adds up over both.
    assert [it for it, _ in parts['curve']] == [2, 4]
    assert parts['curve'][0] == [2, 12.5]
    assert 1000. < parts['seconds'] < 1000. + whole['seconds'] * 10
    assert len(parts['train_loss']) == 1
    assert not resume_file.exists()
    # An interrupted run with other settings is not continued.
    resume_file = interrupted('ft-other')
    other = dict(settings, ft_iters=6)
    assert interrupted_at(str(resume_file), other) is None
    assert not resume_file.exists()


def test_missing_idx_files_are_named(tmp_path):
    (tmp_path / 'train-images-idx3-ubyte.gz').write_bytes(b'')
    result = run_study('--preset', 'smoke', '--idx-dir', tmp_path,
                       '--data-dir', tmp_path / 'data', '--work-dir',
                       tmp_path / 'work')
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f'fashion_mnist_study/run.py: error: --idx-dir {tmp_path}: '
        'train-labels-idx1-ubyte, t10k-images-idx3-ubyte, '
        't10k-labels-idx1-ubyte missing (.gz or not); the folder needs the '
        'four Fashion-MNIST IDX files.'
    ]


def test_without_the_debian_package_the_install_command_is_named(tmp_path):
    """No --idx-dir, no IDX files in --data-dir and none in the Debian
    package's folder (pointed at an empty one here): one line with the
    install command and the alternative, exit status 1, nothing installed
    and nothing written."""
    debian = tmp_path / 'fashion-mnist'
    debian.mkdir()
    code = ('import sys; from projects.fashion_mnist_study import data; '
            'data.DEBIAN_DIR = sys.argv[1]; '
            'from projects.fashion_mnist_study.run import main; '
            'main(sys.argv[2:])')
    result = run_study(
        debian,
        '--preset',
        'smoke',
        '--data-dir',
        tmp_path / 'data',
        '--work-dir',
        tmp_path / 'work',
        code=code)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f'fashion_mnist_study/run.py: error: Fashion-MNIST not found in '
        f'{debian}: install it with `sudo apt-get install '
        'dataset-fashion-mnist`, or pass --idx-dir FOLDER with its four IDX '
        'files.'
    ]
    assert list(debian.iterdir()) == []
    assert not (tmp_path / 'data').exists()


def test_the_committed_study_reports_from_its_cache(tmp_path):
    """docs/study's unit JSONs and calibration, read as a resumed study
    reads them, aggregate into its results.json and results.md again,
    without training."""
    committed = json.loads((COMMITTED / 'results.json').read_text())
    preset = PRESETS['full']
    assert committed['settings'] == preset
    calibration = load_calibration(str(COMMITTED), preset)
    cache = Cache(str(COMMITTED))
    records = {arm: {} for arm in preset['arms']}
    for seed in preset['pt_seeds']:
        for arm in preset['arms']:
            settings = unit_settings(arm, seed, preset, calibration)
            units = {
                unit: cache.get(arm, seed, unit, s)
                for unit, s in settings.items()
            }
            assert None not in units.values(), (arm, seed)
            records[arm][seed] = dict(
                pretrain=units.pop('pretrain'),
                knn=units.pop('knn'),
                finetune=units)
    results = aggregate('full', preset, records, calibration,
                        committed['evaluation']['labelled_indices'],
                        committed['study_seconds'], committed['machine'])
    assert json.loads(json.dumps(results)) == committed
    arms = results['arms']
    assert arms['hog32-time']['iters'] == 482
    assert arms['mae32-time']['iters'] == 1560
    assert round(arms['hog16']['knn_mean_std'][0], 1) == 79.3
    assert round(arms['hog32']['finetune_mean_std'][0], 1) == 83.6
    assert results['run_seconds'] / 3600 == pytest.approx(14.53, abs=0.005)
    write_table(results, str(tmp_path / 'results.md'))
    table = (tmp_path / 'results.md').read_text()
    assert table == (COMMITTED / 'results.md').read_text()
    assert '| FastMIM-HOG 16 px | 2000 (4.27) | 677 | 378 | 79.3 ± 1.1 ' \
        '(n=2) | 81.8 ± 0.3 (n=4) |' in table
    write_plot(results, str(tmp_path / 'results.png'))
    assert (tmp_path / 'results.png').read_bytes()[:8] == \
        b'\x89PNG\r\n\x1a\n'


def test_smoke_console_is_short(smoke):
    """The smoke preset's console: a few lines before the first loss, no
    warning twice across its runs (tools/train.py's run kinds are checked
    in tests/test_transfer/test_small_chain.py)."""
    from ..test_transfer.test_small_chain import check_console
    _, _, result = smoke
    check_console((result.stdout + result.stderr).splitlines())
