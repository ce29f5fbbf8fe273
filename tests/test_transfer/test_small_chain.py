"""docs/en/user_guides/small_chain.md, run as it is written: every command
of its bash block in a process of its own, from a folder where configs/
and tools/ are the repository's and .venv/bin/python is this interpreter
(data/ and work_dirs/ are the test's). Then, from the user's side: every
step exits with 0; each transfer starts from the fine-tuned backbone, not
the pre-trained one nor a random one; the evaluations give their metrics;
each console shows at most 30 lines before its first loss, no warning
twice. The same data serve the runs in two processes and the mistakes a
user makes while downsizing."""
import os
import re
import shlex
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.utils import import_modules_from_strings
from mmpretrain.models.utils import resize_pos_embed

from fastmim_mm.engine import CheckedLoading, read_checkpoint
from ..conftest import ROOT, free_port
from .test_benchmark_configs import _registries

DOC = ROOT / 'docs' / 'en' / 'user_guides' / 'small_chain.md'
SMALL = 'configs/fastmim/small_chain'
MAX_LINES_BEFORE_LOSS = 30
AMP_NOTE = ("No CUDA device: the config's AmpOptimWrapper is replaced by an "
            "fp32 OptimWrapper.")
PIN_MEMORY = ("UserWarning: 'pin_memory' argument is set as true but no "
              "accelerator is found")


def doc_commands(path) -> list:
    """The commands of the page's bash blocks in order, continued lines
    joined, comments and blank lines left out."""
    commands, block, pending = [], False, ''
    for line in path.read_text().splitlines():
        if line.startswith('```'):
            block = line.strip() == '```bash'
            continue
        if not block:
            continue
        line = pending + line.strip()
        if line.endswith('\\'):
            pending = line[:-1] + ' '
            continue
        pending = ''
        if line and not line.startswith('#'):
            commands.append(line)
    return commands


def _environment(work):
    """The repository as the commands see it from ``work``."""
    for name in ('configs', 'tools'):
        (work / name).symlink_to(ROOT / name)
    python = work / '.venv' / 'bin' / 'python'
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    python.chmod(0o755)


def run(work, command, **env):
    return subprocess.run(['bash', '-c', command],
                          cwd=work,
                          env=dict(os.environ, OMP_NUM_THREADS='1', **env),
                          capture_output=True,
                          text=True,
                          timeout=300)


@pytest.fixture(scope='module')
def chain(tmp_path_factory):
    """The page's commands, each run once; (work folder, {command:
    result})."""
    work = tmp_path_factory.mktemp('small_chain')
    _environment(work)
    results = {}
    for command in doc_commands(DOC):
        result = run(work, command)
        assert result.returncode == 0, (command, result.stdout[-3000:],
                                        result.stderr[-3000:])
        results[command] = result
    return work, results


def _result(results, config):
    """The tools/train.py run of ``config``."""
    found = [
        r for c, r in results.items()
        if 'tools/train.py' in c and c.split()[2].endswith(config)
    ]
    assert len(found) == 1, list(results)
    return found[0]


def console_lines(result) -> list:
    return (result.stdout + result.stderr).splitlines()


def _message(line: str) -> str:
    """A console line without the logger's time stamp."""
    return re.sub(r'^\d\d/\d\d \d\d:\d\d:\d\d - \w+ - \w+ - ', '', line)


def check_console(lines, log_file=None, once=()):
    """At most MAX_LINES_BEFORE_LOSS lines before the first loss, no
    warning twice, each of ``once`` exactly once (and in the log file)."""
    first_loss = next(i for i, line in enumerate(lines) if 'loss: ' in line)
    assert first_loss <= MAX_LINES_BEFORE_LOSS, '\n'.join(lines[:first_loss])
    warnings = [
        _message(line) for line in lines
        if ' - WARNING - ' in line or re.search(r'\w+Warning: ', line)
    ]
    assert len(warnings) == len(set(warnings)), warnings
    log = log_file.read_text() if log_file is not None else ''
    for text in once:
        assert sum(text in line for line in lines) == 1, (text, lines)
        assert log_file is None or text in log, text


def _log_file(work, name):
    logs = sorted((work / 'work_dirs' / name).glob('*/*.log'))
    assert logs, name
    return logs[-1]


def test_the_page_lists_the_whole_chain():
    commands = doc_commands(DOC)
    tools = [c.split()[1] for c in commands]
    assert tools == [
        'tools/misc/make_demo_dataset.py',
        'tools/misc/make_downstream_datasets.py'
    ] + ['tools/train.py'] * 7 + ['tools/test.py'] * 2
    assert [c.split()[2].rsplit('/', 1)[1] for c in commands[2:]] == [
        '1_pretrain_swin.py', '1_pretrain_vit.py', '2_finetune_swin.py',
        '2_finetune_vit.py', '2_linear-probe_vit.py', '3_mask-rcnn_coco.py',
        '3_upernet_ade20k.py', '3_mask-rcnn_coco.py', '3_upernet_ade20k.py'
    ]


def test_consoles_are_short_and_show_each_warning_once(chain):
    work, results = chain
    for command, result in results.items():
        if 'tools/train.py' not in command:
            continue
        name = command.split()[2].rsplit('/', 1)[1][:-3]
        once = [AMP_NOTE] if name.startswith(('1_', '2_')) else []
        if name.startswith('2_'):
            # Warned when each loader (train, then val) starts its workers.
            once.append(PIN_MEMORY)
        check_console(console_lines(result), _log_file(work, name), once)


def _backbone(path):
    state = read_checkpoint(str(path))['state_dict']
    return {
        k[len('backbone.'):]: v
        for k, v in state.items() if k.startswith('backbone.')
    }


def _arrived(work, config):
    """The transfer model's backbone as its config initialises it from the
    default checkpoint (the fine-tuned one), loaded as FastMIMRunner
    loads."""
    cfg = Config.fromfile(str(ROOT / SMALL / config))
    init = cfg.model.backbone.init_cfg
    init.checkpoint = str(work / init.checkpoint)
    import_modules_from_strings(**cfg.custom_imports)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = _registries(cfg.default_scope).build(cfg.model)
        with CheckedLoading():
            model.init_weights()
    return model.backbone.state_dict()


def _assert_fine_tuned(arrived, pretrained, finetuned, keys):
    """The backbone started from the fine-tuned tensors, which differ from
    the pre-trained ones."""
    for key in keys:
        assert torch.equal(arrived[key], finetuned[key]), key
        assert not torch.equal(arrived[key], pretrained[key]), key


def test_mask_rcnn_starts_from_the_fine_tuned_swin(chain):
    work, results = chain
    pretrained = _backbone(work / 'work_dirs/1_pretrain_swin/epoch_1.pth')
    finetuned = _backbone(work / 'work_dirs/2_finetune_swin/epoch_1.pth')
    arrived = _arrived(work, '3_mask-rcnn_coco.py')
    assert set(finetuned) <= set(arrived)
    for key, value in finetuned.items():
        assert torch.equal(arrived[key], value), key
    _assert_fine_tuned(arrived, pretrained, finetuned, [
        'patch_embed.projection.weight',
        'stages.0.blocks.0.attn.w_msa.qkv.weight',
        'stages.2.blocks.0.ffn.layers.0.0.weight',
        'stages.2.downsample.reduction.weight',
        'stages.3.blocks.0.norm2.weight',
        'norm3.weight',
    ])
    # Window 4 -> 7 happened at fine-tuning (7^2 -> 13^2 offsets).
    key = 'stages.1.blocks.0.attn.w_msa.relative_position_bias_table'
    assert pretrained[key].shape == (7 * 7, 2)
    assert arrived[key].shape == (13 * 13, 2)
    # The three extra output norms of detection are the only new tensors.
    assert {k.split('.')[0] for k in set(arrived) - set(finetuned)} == \
        {'norm0', 'norm1', 'norm2'}
    # What the run said it loaded.
    console = '\n'.join(console_lines(_result(results, '3_mask-rcnn_coco.py')))
    assert 'Loaded work_dirs/2_finetune_swin/epoch_1.pth into the ' \
        "SwinTransformer it initialises (prefix 'backbone.'): 71 of 77 " \
        'tensors as they are' in console


def test_upernet_starts_from_the_fine_tuned_vit(chain):
    work, results = chain
    pretrained = _backbone(work / 'work_dirs/1_pretrain_vit/epoch_1.pth')
    finetuned = _backbone(work / 'work_dirs/2_finetune_vit/epoch_1.pth')
    arrived = _arrived(work, '3_upernet_ade20k.py')
    # Every tensor of the fine-tuned encoder arrived: as saved, the position
    # embedding resized from 4 x 4 to 8 x 8 patches.
    encoder = {k: v for k, v in finetuned.items() if not k.startswith('ln2')}
    for key, value in encoder.items():
        if key == 'pos_embed':
            value = resize_pos_embed(value, (4, 4), (8, 8), 'bicubic', 1)
        torch.testing.assert_close(arrived[key], value, rtol=0, atol=0)
    _assert_fine_tuned(arrived, pretrained, finetuned, [
        'patch_embed.projection.weight',
        'cls_token',
        'layers.0.attn.qkv.weight',
        'layers.3.attn.qkv.bias',
        'layers.2.ffn.layers.0.0.weight',
        'layers.1.ln2.weight',
    ])
    # Only BEiT's additions are new, and start as the reference starts them.
    new = {k.split('.', 2)[2] for k in set(arrived) - set(encoder)}
    assert new == {
        'attn.relative_position_bias_table', 'attn.relative_position_index',
        'gamma_1', 'gamma_2'
    }
    for i in range(4):
        table = arrived[f'layers.{i}.attn.relative_position_bias_table']
        assert table.shape == ((2 * 8 - 1)**2 + 3, 2)
        assert not table.any()
        assert (arrived[f'layers.{i}.gamma_1'] == 1).all()
        assert (arrived[f'layers.{i}.gamma_2'] == 1).all()
    # The one line the load printed.
    report = [
        line
        for line in console_lines(_result(results, '3_upernet_ade20k.py'))
        if 'FastMIMBEiTViT: new, not in the checkpoint:' in line
    ]
    assert len(report) == 1
    assert 'attn.relative_position_bias_table 228x2 = 0 in 4 blocks' in \
        report[0]


def test_the_evaluations_give_metrics(chain):
    _, results = chain
    tests = {
        c.split()[2].rsplit('/', 1)[1]: r
        for c, r in results.items() if 'tools/test.py' in c
    }
    detection = tests['3_mask-rcnn_coco.py'].stdout
    for metric in ('coco/bbox_mAP', 'coco/segm_mAP'):
        value = float(re.search(metric + r': (-?[\d.]+)', detection)[1])
        assert 0 <= value <= 1, (metric, value)
    segmentation = tests['3_upernet_ade20k.py'].stdout
    for metric in ('aAcc', 'mIoU', 'mAcc'):
        value = float(re.search(metric + r': ([\d.]+)', segmentation)[1])
        assert 0 <= value <= 100, (metric, value)


def test_pretraining_in_two_processes(chain):
    """The ViT pre-training of the chain through tools/dist_train.sh in two
    CPU processes: every warning once, though each process gives it."""
    work, _ = chain
    result = run(
        work, f'bash {ROOT}/tools/dist_train.sh {SMALL}/1_pretrain_vit.py 2 '
        '--work-dir work_dirs/two_processes',
        PORT=str(free_port()))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = console_lines(result)
    assert any('batch 8 x 2 processes' in line for line in lines)
    check_console(
        lines, _log_file(work, 'two_processes'),
        [AMP_NOTE, PIN_MEMORY, 'UserWarning: Setting MKL_NUM_THREADS'])


@pytest.mark.parametrize('config,option,line', [
    ('2_finetune_vit.py', 'model.backbone.init_cfg.checkpoint=work_dirs/x.pth',
     'train.py: error: model.backbone.init_cfg.checkpoint: work_dirs/x.pth '
     'does not exist. Give the checkpoint to start from with --cfg-options '
     'model.backbone.init_cfg.checkpoint=PATH.pth'),
    ('2_finetune_vit.py', 'checkpoint=work_dirs/1_pretrain_swin/epoch_1.pth',
     "train.py: error: --cfg-options checkpoint: 'checkpoint' is a variable "
     'of the config file, copied where it is used when the config was read, '
     'so setting it now changes nothing. Set '
     'model.backbone.init_cfg.checkpoint=work_dirs/1_pretrain_swin/'
     'epoch_1.pth instead (the key holding its value).'),
    ('1_pretrain_vit.py', 'train_dataloader.dataset.dataset.data_root=data/x',
     'train.py: error: train_dataloader.dataset.dataset.data_root: data/x '
     "does not exist. Give the dataset's folder with --cfg-options "
     'train_dataloader.dataset.dataset.data_root=PATH'),
])
def test_a_mistake_ends_in_one_line_naming_the_setting(chain, config, option,
                                                       line):
    work, _ = chain
    result = run(
        work, f'.venv/bin/python tools/train.py {SMALL}/{config} '
        f'--work-dir work_dirs/mistake --cfg-options {option}')
    assert result.returncode == 1
    errors = [e for e in result.stderr.splitlines() if ': error: ' in e]
    assert errors == [line], result.stderr[-3000:]
    assert 'Traceback' not in result.stderr
    assert not (work / 'work_dirs' / 'mistake' / 'last_checkpoint').exists()


def test_a_missing_annotation_file_is_named(chain, train_module, capsys):
    work, _ = chain
    with pytest.raises(SystemExit) as exit_info:
        train_module.main([
            str(ROOT / SMALL / '3_mask-rcnn_coco.py'), '--work-dir',
            str(work / 'work_dirs' / 'mistake'), '--cfg-options',
            f'train_dataloader.dataset.dataset.data_root={work}/data/'
            f'small_chain/coco/', f'val_dataloader.dataset.data_root={work}/'
            f'data/small_chain/coco/', 'val_evaluator.ann_file=data/x.json'
        ])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        'train.py: error: val_evaluator.ann_file: data/x.json does not '
        'exist. Give the annotation file to evaluate against with '
        '--cfg-options val_evaluator.ann_file=PATH')


def test_upernet_with_a_batch_of_one_names_the_setting(chain):
    work, _ = chain
    result = run(
        work, f'.venv/bin/python tools/train.py {SMALL}/3_upernet_ade20k.py '
        '--work-dir work_dirs/batch_1 --cfg-options '
        'train_dataloader.batch_size=1')
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        'train.py: error: a BatchNorm layer got one value per channel in '
        'training (Expected more than 1 value per channel when training, '
        'got input size torch.Size([1, 64, 1, 1])): with '
        'train_dataloader.batch_size=1 per process, a layer that pools to '
        "1 x 1 (as UperNet's pyramid pooling does) has nothing to normalise "
        'over. Set --cfg-options train_dataloader.batch_size=2 or more.')
    assert 'Traceback' not in result.stderr


def test_no_workers_with_persistent_workers_just_works(chain):
    """The transfer configs of the chain set num_workers=0 over configs
    with persistent workers, which torch's DataLoader alone refuses
    ("persistent_workers option needs num_workers > 0"); they ran."""
    work, results = chain
    for config in ('3_mask-rcnn_coco.py', '3_upernet_ade20k.py'):
        cfg = Config.fromfile(str(ROOT / SMALL / config))
        for key in ('train_dataloader', 'val_dataloader'):
            assert cfg[key].num_workers == 0
            assert cfg[key].persistent_workers is True
        assert _result(results, config).returncode == 0
