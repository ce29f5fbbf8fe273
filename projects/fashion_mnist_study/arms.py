"""The study's arms and presets, and the settings each unit is computed
with (what its cache entry is checked against)."""
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(ROOT, 'configs', 'fastmim', 'study')
FINETUNE_CONFIG = 'vit-6x192-p4_fashion-mnist-1k-labels-32px.py'

# name: (config or None, budget, label). Budget 'epochs': the preset's
# iteration count; 'time': the iterations that cost what FastMIM-HOG at 16 px
# costs, from the calibration.
ARMS = {
    'scratch': (None, None, 'no pre-training (untrained encoder)'),
    'hog16': ('fastmim-hog_vit-6x192-p4_fashion-mnist-16px.py', 'epochs',
              'FastMIM-HOG 16 px'),
    'hog32': ('fastmim-hog_vit-6x192-p4_fashion-mnist-32px.py', 'epochs',
              'FastMIM-HOG 32 px, equal epochs'),
    'hog32-time': ('fastmim-hog_vit-6x192-p4_fashion-mnist-32px.py', 'time',
                   'FastMIM-HOG 32 px, equal wall-clock'),
    'pixel16': ('fastmim-pixel_vit-6x192-p4_fashion-mnist-16px.py', 'epochs',
                'FastMIM-pixel 16 px'),
    'pixel32': ('fastmim-pixel_vit-6x192-p4_fashion-mnist-32px.py', 'epochs',
                'FastMIM-pixel 32 px, equal epochs'),
    'mae32-time': ('mae_vit-6x192-p4_fashion-mnist-32px.py', 'time',
                   'MAE 32 px, equal wall-clock'),
}
TIME_REFERENCE = 'hog16'
# The pre-training config whose untrained encoder the scratch arm starts from.
SCRATCH_INIT = ARMS['hog32'][0]

# iters: FastMIM-HOG 16 px pre-training iterations (batch `batch`);
# rounds: calibration rounds; knn_train/knn_test: images (None = all);
# labels: labelled images per class; ft_batch: fine-tuning batch (None: the
# config's 50); ft_iters/ft_val: fine-tuning iterations and the
# interval of the test-accuracy curve, measured on the first `curve_test`
# test images; ft_test: test images for the final accuracy (None = all);
# long: the scratch arm is also fine-tuned `long` times longer (pre-training
# and fine-tuning seed 0), to show how far from converged scratch is.
# `quick` is the full study's pre-training and kNN of the equal-time arms at
# seed 0, and the online curves, without fine-tuning (see README.md).
PRESETS = {
    'smoke':
    dict(
        arms=['scratch', 'hog16', 'hog32-time', 'pixel32', 'mae32-time'],
        pt_seeds=[0],
        ft_seeds=[0],
        iters=3,
        batch=16,
        rounds=1,
        knn_train=200,
        knn_test=100,
        labels=2,
        ft_batch=10,
        ft_iters=4,
        ft_val=2,
        curve_test=50,
        ft_test=100,
        long=2),
    'quick':
    dict(
        arms=['scratch', 'hog16', 'hog32-time', 'mae32-time'],
        pt_seeds=[0],
        ft_seeds=[],
        iters=2000,
        batch=128,
        rounds=3,
        knn_train=None,
        knn_test=None,
        labels=None,
        ft_batch=None,
        ft_iters=None,
        ft_val=None,
        curve_test=None,
        ft_test=None,
        long=0),
    'full':
    dict(
        arms=list(ARMS),
        pt_seeds=[0, 1],
        ft_seeds=[0, 1],
        iters=2000,
        batch=128,
        rounds=5,
        knn_train=None,
        knn_test=None,
        labels=100,
        ft_batch=None,
        ft_iters=2400,
        ft_val=300,
        curve_test=1000,
        ft_test=None,
        long=2),
}

# The online kNN during pre-training (evaluation.StudyKNNValLoop): `points`
# evaluations at equal fractions of each arm's iterations, the last after
# its last iteration (full: every 500 iterations, 1.07 epochs, of the
# 2,000-iteration arms; every 121 of FastMIM-HOG 32 px's 482 at equal
# wall-clock), the first `memory` training images as neighbours of the
# first `queries` test images: 2,000 images, about 5 s per evaluation on 2
# cores, 3 % of a full arm's time. Smoke evaluates its offline kNN sets, so
# that its last online value is its offline one.
ONLINE_KNN = {
    'smoke': dict(points=2, memory=200, queries=100),
    'quick': dict(points=4, memory=1000, queries=1000),
    'full': dict(points=4, memory=1000, queries=1000),
}


def online_interval(iters: int, points: int) -> int:
    """Iterations between online kNN evaluations of a pre-training."""
    return -(-iters // points)


def pretrain_iters(arm: str, preset: dict, calibration: dict) -> int:
    """Pre-training iterations of ``arm``: the preset's, or for an
    equal-time arm those that cost what the reference arm's do."""
    config, budget, _ = ARMS[arm]
    if budget == 'epochs':
        return preset['iters']
    step = calibration['step_s']
    ratio = step[ARMS[TIME_REFERENCE][0]] / step[config]
    return max(2, round(preset['iters'] * ratio))


def unit_settings(arm, seed, preset, calibration):
    """What each unit of an arm and pre-training seed is computed with;
    None for an equal-time arm before the calibration exists."""
    if ARMS[arm][1] == 'time' and calibration is None:
        return None
    iters = 0 if ARMS[arm][0] is None else \
        pretrain_iters(arm, preset, calibration)
    pt = dict(
        config=ARMS[arm][0], iters=iters, batch=preset['batch'], seed=seed)
    if ARMS[arm][0] is None:
        pt['init'] = SCRATCH_INIT
    evaluation = dict(pt, position_table='sin-cos 32 px')
    settings = dict(
        pretrain=pt,
        knn=dict(
            evaluation,
            knn_train=preset['knn_train'],
            knn_test=preset['knn_test']))
    for f in preset['ft_seeds']:
        settings[f'ft{f}'] = dict(
            evaluation,
            ft_seed=f,
            labels=preset['labels'],
            ft_batch=preset['ft_batch'],
            ft_iters=preset['ft_iters'],
            ft_val=preset['ft_val'],
            curve_test=preset['curve_test'],
            ft_test=preset['ft_test'])
    if arm == 'scratch' and seed == preset['pt_seeds'][0] and \
            preset['long']:
        first = settings[f'ft{preset["ft_seeds"][0]}']
        settings['ft-long'] = dict(
            first,
            ft_iters=first['ft_iters'] * preset['long'],
            ft_val=first['ft_val'] * preset['long'])
    return settings
