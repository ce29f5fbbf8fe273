"""The study's kNN evaluation of a frozen encoder, with the toolkit's one
implementation (:mod:`fastmim_mm.evaluation`: the feature pooling of
``KNNValLoop`` and ``knn_accuracy``) on both sides:

- offline, of a checkpoint's encoder (:func:`features`,
  :func:`knn_top1`): the study's kNN column;
- online, during pre-training (:class:`StudyKNNValLoop`, switched on by
  :func:`add_online_knn`): the curves of kNN against pre-training time.

Both embed the images at 32 px under bf16 autocast with the 32 px sin-cos
position table (see ``units.encoder_32px``), the first N training images
as neighbours of the first M test images, in file order.
"""
import random
from contextlib import contextmanager

import numpy as np
import torch
from mmengine.model import is_model_wrapper
from mmengine.runner.amp import autocast
from mmpretrain.models.utils import build_2d_sincos_position_embedding
from mmpretrain.registry import LOOPS

from fastmim_mm.engine import FastMIMRunner
from fastmim_mm.evaluation import KNNValLoop, backbone_features, knn_accuracy
from .data import CLASSES

KNN_K = 20
KNN_T = 0.07
# bf16 matrix products: 1.5-1.9x faster on this CPU (AVX512-BF16), features
# within 2% of float32 ones.
KNN_AMP = 'bfloat16'
KNN_DESCRIPTION = (f'k={KNN_K}, cosine, weights exp(sim/{KNN_T}), '
                   'mean-pooled patch tokens after the final norm, frozen '
                   'encoder, 32 px, bf16 autocast')


def knn_dataset(cfg, split: str, limit) -> dict:
    """The dataset of the first ``limit`` images (None: all) of ``split``
    ('train' or 'test'), with the evaluation pipeline of ``cfg`` (the
    fine-tuning config's validation loader)."""
    dataset = dict(
        cfg.val_dataloader.dataset, split=split, test_mode=split == 'test')
    if limit is not None:
        dataset['indices'] = limit
    return dataset


@torch.no_grad()
def features(model, cfg, split: str, limit, device: str) -> tuple:
    """Features (:func:`fastmim_mm.evaluation.backbone_features`) and
    labels of the first ``limit`` images of ``split`` through the config's
    validation loader, as :class:`StudyKNNValLoop` extracts them."""
    loader = FastMIMRunner.build_dataloader(
        dict(cfg.val_dataloader, dataset=knn_dataset(cfg, split, limit)))
    feats, labels = [], []
    for batch in loader:
        data = model.data_preprocessor(batch, False)
        with autocast(device_type=device, dtype=getattr(torch, KNN_AMP)):
            feats.append(backbone_features(model.backbone, data['inputs']))
        labels.append(torch.cat([s.gt_label for s in data['data_samples']]))
    return torch.cat(feats).cpu(), torch.cat(labels)


def knn_top1(train: tuple, test: tuple) -> float:
    """Top-1 (%) of the test features' weighted kNN vote among the
    training features (``(features, labels)`` pairs)."""
    (train_x, train_y), (test_x, test_y) = train, test
    return knn_accuracy(test_x, test_y, train_x, train_y, CLASSES, KNN_K,
                        KNN_T)[0]


def add_online_knn(cfg, eval_cfg, memory, queries, interval: int) -> None:
    """Switch on the online kNN in the pre-training config ``cfg``: every
    ``interval`` iterations and after the last, the first ``memory``
    training images as neighbours of the first ``queries`` test images,
    with the images, loader, autocast and kNN of the offline evaluation
    (``eval_cfg``: the fine-tuning config). Metrics are logged by iteration
    (``knn/top1``, ``knn/top5``), as ``tools/analysis/plot_curves.py``
    reads them."""
    cfg.val_dataloader = dict(
        eval_cfg.val_dataloader,
        dataset=dict(
            type='KNNEvalDataset',
            memory=knn_dataset(eval_cfg, 'train', memory),
            queries=knn_dataset(eval_cfg, 'test', queries)))
    cfg.val_cfg = dict(type='StudyKNNValLoop', amp=KNN_AMP)
    cfg.val_evaluator = dict(
        type='KNNAccuracy',
        k=KNN_K,
        temperature=KNN_T,
        topk=(1, 5),
        num_classes=CLASSES)
    cfg.train_cfg.val_interval = interval
    cfg.default_hooks.logger.log_metric_by_epoch = False


def random_states() -> tuple:
    """The random streams of Python, NumPy and torch (CPU and CUDA)."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() \
        else None
    return (random.getstate(), np.random.get_state(), torch.get_rng_state(),
            cuda)


def set_random_states(states: tuple) -> None:
    python, numpy, cpu, cuda = states
    random.setstate(python)
    np.random.set_state(numpy)
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)


@contextmanager
def sincos_table(backbone, grid: tuple):
    """The ViT ``backbone`` with the sin-cos position table of ``grid``
    patches (its own restored afterwards).

    The study's pre-trainings keep their sin-cos table fixed, so the table
    carries nothing learned, and the offline evaluation gives every encoder
    the table of the 32 px grid (``units.encoder_32px``): a 16 px arm is
    not evaluated with MMPretrain's bicubic resize of its 4x4 table.
    """
    pos_embed = backbone.pos_embed
    if pos_embed.requires_grad:
        raise ValueError(
            f'StudyKNNValLoop: the position table of the '
            f'{type(backbone).__name__} is learned; replacing it by a sin-cos '
            'table is right only for a fixed one.')
    table = build_2d_sincos_position_embedding(
        grid, pos_embed.shape[-1], cls_token=backbone.num_extra_tokens > 0)
    saved = pos_embed.data, backbone.patch_resolution
    pos_embed.data = table.to(pos_embed)
    backbone.patch_resolution = grid
    try:
        yield
    finally:
        pos_embed.data, backbone.patch_resolution = saved


@LOOPS.register_module()
class StudyKNNValLoop(KNNValLoop):
    """:class:`~fastmim_mm.evaluation.KNNValLoop` as the study's offline kNN
    evaluates an encoder: the ViT backbone with the sin-cos position table
    of the evaluation images' grid (see :func:`sincos_table`).

    The random streams are restored after each evaluation, so a
    pre-training trains the same weights with the evaluation as without it
    (MMEngine's loader draws a seed from torch's stream each time it is
    iterated).

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): Loader of a ``KNNEvalDataset``.
        evaluator (Evaluator | dict | list): The evaluator, with a
            ``KNNAccuracy`` metric.
        amp (str, optional): See ``KNNValLoop``. Defaults to 'auto'.
    """

    def run(self) -> dict:
        states = random_states()
        try:
            return super().run()
        finally:
            set_random_states(states)

    def run_iter(self, idx: int, data_batch: dict) -> None:
        model = self.runner.model
        if is_model_wrapper(model):
            model = model.module
        inputs = data_batch['inputs']
        if not isinstance(inputs, torch.Tensor):
            return super().run_iter(idx, data_batch)  # which says why not
        stride = model.backbone.patch_embed.projection.stride
        grid = (inputs.shape[-2] // stride[0], inputs.shape[-1] // stride[1])
        with sincos_table(model.backbone, grid):
            super().run_iter(idx, data_batch)
