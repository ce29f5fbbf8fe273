"""configs/fastmim/metafile.yml: MMPretrain's model index of the FastMIM
configs. It loads as MMPretrain's ModelHub loads model indexes, lists every
config (but the demo, the study's and the small chain's), each config loads,
and every pre-training links to its fine-tuning and transfer configs."""
from fnmatch import fnmatch

import pytest
from modelindex.load_model_index import load

from .docs_check import ROOT, load_config

METAFILE = ROOT / 'configs' / 'fastmim' / 'metafile.yml'
# Configs under configs/fastmim/ that are not models of the index.
NOT_LISTED = ('configs/fastmim/fastmim_vit-tiny-p16_1xb16-coslr-14e_demo-'
              '128px.py', 'configs/fastmim/study/*',
              'configs/fastmim/small_chain/*')
# Pre-trainings without a fine-tuning or transfer config of their own.
WITHOUT_DOWNSTREAM = {
    'fastmim-p_swin-large-w4_8xb256-amp-coslr-400e_in1k-128to256px',
    'fastmim-p_swin-large-w4_8xb256-amp-fsdp-coslr-400e_in1k-128to256px',
    'fastmim_vit-large-p16_8xb512-amp-fsdp-coslr-400e_in1k-128px',
    'fastmim_resnet50_8xb256-amp-coslr-400e_in1k-128px'
}
TASKS = {
    'Image Classification': ('ImageNet-1k', 'Top 1 Accuracy'),
    'Object Detection': ('COCO', 'box AP'),
    'Instance Segmentation': ('COCO', 'mask AP'),
    'Semantic Segmentation': ('ADE20K', 'mIoU'),
}


@pytest.fixture
def models():
    """The models as MMPretrain's ModelHub reads them (modelindex's load,
    then the collection's fields merged into each model)."""
    index = load(str(METAFILE))
    index.build_models_with_collections()
    return {m.name: m for m in index.models}


def is_pretraining(model) -> bool:
    return model.config.count('/') == 2  # configs/fastmim/NAME.py


def test_every_config_is_listed(models):
    listed = {m.config for m in models.values()}
    on_disk = {
        str(p.relative_to(ROOT))
        for p in (ROOT / 'configs' / 'fastmim').rglob('*.py')
    }
    expected = {
        c
        for c in on_disk if not any(fnmatch(c, n) for n in NOT_LISTED)
    }
    assert listed == expected


def test_collection_and_models_are_complete(models):
    assert len(models) == 25
    for name, model in models.items():
        assert model.in_collection == 'FastMIM'
        full = model.full_model
        assert full.paper['URL'] == 'https://arxiv.org/abs/2212.06593'
        # Paths are relative to the repository root, as in MMPretrain.
        assert full.readme == 'configs/fastmim/README.md'
        assert (ROOT / full.readme).is_file()
        assert (ROOT / model.config).is_file()
        assert model.metadata.training_data in ('ImageNet-1k', 'COCO',
                                                'ADE20K')
        assert model.metadata.batch_size > 0
        assert model.weights is None  # none are released
        if is_pretraining(model):
            stem = model.config.rsplit('/', 1)[1][:-3]
            assert name == stem  # named after the config, as in MMPretrain


def test_results_are_the_papers_and_marked_so(models):
    papers = {}
    for name, model in models.items():
        source = model.metadata.data.get('Results Source')
        if not model.results:
            assert source is None, name
            continue
        assert source == 'paper', name
        for result in model.results:
            dataset, metric = TASKS[result.task]
            assert result.dataset == dataset
            papers[(name, metric)] = result.metrics[metric]
    assert papers == {
        ('vit-base-p16_fastmim-800e-pre_8xb128-coslr-100e_in1k', 'Top 1 Accuracy'):  # noqa: E501
        83.8,
        ('vit-base-p16_fastmim-400e-pre_8xb128-coslr-100e_in1k', 'Top 1 Accuracy'):  # noqa: E501
        83.6,
        ('swin-base-w7_fastmim-400e-pre_8xb128-coslr-100e_in1k', 'Top 1 Accuracy'):  # noqa: E501
        84.1,
        ('mask-rcnn_swin-base-w7_fastmim-400e-pre-in1k-ft_fpn_rpn-2conv_4conv1fc_syncbn-all_8xb4-lsj-scp-3x_coco', 'box AP'):  # noqa: E501
        52.0,
        ('mask-rcnn_swin-base-w7_fastmim-400e-pre-in1k-ft_fpn_rpn-2conv_4conv1fc_syncbn-all_8xb4-lsj-scp-3x_coco', 'mask AP'):  # noqa: E501
        46.0,
        ('upernet_vit-base-p16_fastmim-800e-pre-in1k-ft_8xb2-160k_ade20k-512x512', 'mIoU'):  # noqa: E501
        49.5,
    }


def test_downstream_links(models):
    """Every pre-training links to models of the index, every other model
    is linked from a pre-training, and transfer models name the
    fine-tuning they start from, whose work dir their config reads."""
    linked = set()
    for name, model in models.items():
        downstream = model.data.get('Downstream') or []
        if not is_pretraining(model):
            assert not downstream, name
            continue
        assert bool(downstream) != (name in WITHOUT_DOWNSTREAM), name
        assert set(downstream) <= set(models), name
        linked.update(downstream)
    assert linked == {n for n, m in models.items() if not is_pretraining(m)}
    transfer = [
        m for m in models.values()
        if m.metadata.training_data in ('COCO', 'ADE20K')
    ]
    assert len(transfer) == 2
    for model in transfer:
        finetune = models[model.metadata.data['Initialised From']]
        cfg, _ = load_config(str(ROOT / model.config))
        stem = finetune.config.rsplit('/', 1)[1][:-3]
        assert cfg.model.backbone.init_cfg.checkpoint.startswith(
            f'work_dirs/{stem}/')
        # ... and the fine-tuning and the transfer hang off one
        # pre-training.
        assert any(
            {finetune.name, model.name} <= set(m.data.get('Downstream') or [])
            for m in models.values())


@pytest.mark.parametrize(
    'config',
    sorted({
        line.split('Config: ', 1)[1].strip()
        for line in METAFILE.read_text().splitlines()
        if line.strip().startswith('Config: ')
    }))
def test_every_config_loads(config):
    cfg, error = load_config(str(ROOT / config))
    assert cfg is not None, error
    assert 'model' in cfg
