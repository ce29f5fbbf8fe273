import inspect
from contextlib import nullcontext
from typing import Optional

import torch
from mmengine.model import is_model_wrapper
from mmengine.optim import AmpOptimWrapper, OptimWrapperDict
from mmengine.runner import ValLoop
from mmengine.runner.amp import autocast
from mmpretrain.registry import LOOPS
from torch import nn

from .knn_dataset import KNNEvalDataset
from .metrics import KNNAccuracy

_AMP = ('auto', None, 'float16', 'bfloat16')


def backbone_features(backbone: nn.Module,
                      inputs: torch.Tensor) -> torch.Tensor:
    """One float32 feature vector per image from a backbone's last output.

    - B x C x H x W (ResNet, Swin, a ViT with ``out_type='featmap'``): the
      mean over positions, i.e. the pooled last stage;
    - B x L x C tokens (a ViT with ``out_type='raw'``, as FastMIM's and
      MAE's pre-training use it): the mean of the patch tokens, the
      backbone's ``num_extra_tokens`` leading ones (class token) left out;
    - B x C (``cls_token``, ``avg_featmap``): as it is.

    For a ViT with the default ``final_norm`` all of these come after the
    final norm. A backbone whose ``forward`` takes a ``mask`` (MMPretrain's
    MAE, SimMIM, BEiT backbones) is called with ``mask=None``: unmasked.

    Args:
        backbone (nn.Module): The backbone.
        inputs (Tensor): B x 3 x H x W preprocessed images.

    Returns:
        Tensor: B x C features, float32.
    """
    if 'mask' in inspect.signature(backbone.forward).parameters:
        out = backbone(inputs, mask=None)
    else:
        out = backbone(inputs)
    if isinstance(out, (tuple, list)):
        out = out[-1]
    out = out.float()
    if out.dim() == 4:
        return out.flatten(2).mean(2)
    if out.dim() == 3:
        return out[:, getattr(backbone, 'num_extra_tokens', 0):].mean(1)
    if out.dim() == 2:
        return out
    raise ValueError(f'{type(backbone).__name__}: cannot pool a last output '
                     f'of shape {tuple(out.shape)} into features.')


@LOOPS.register_module()
class KNNValLoop(ValLoop):
    """Validation by weighted kNN on the frozen backbone's features.

    Each run embeds every image of the validation dataset, a
    :class:`~fastmim_mm.evaluation.KNNEvalDataset` (labelled memory set and
    queries), with the backbone of the model being trained (see
    :func:`backbone_features`), in eval mode, without gradients and under
    the autocast of training, and hands the features to the evaluator,
    :class:`~fastmim_mm.evaluation.KNNAccuracy`. Every module's training
    mode is restored afterwards. With ``train_cfg.val_interval=N`` it runs
    every N epochs (iterations for iteration-based training) and after the
    last; the metrics go to the log, the visualiser's backends (scalars
    file, TensorBoard) and the checkpoint hook's ``save_best``.

    Example::

        val_dataloader = dict(
            batch_size=256, num_workers=8,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(type='KNNEvalDataset', memory=..., queries=...))
        val_cfg = dict(type='KNNValLoop')
        val_evaluator = dict(type='KNNAccuracy', few_shot=(1, 5, 10))
        train_cfg = dict(val_interval=10)

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): Loader of a ``KNNEvalDataset``.
        evaluator (Evaluator | dict | list): The evaluator, with a
            ``KNNAccuracy`` metric.
        amp (str, optional): Autocast of the forward pass: 'auto' (that of
            training: an ``AmpOptimWrapper``'s dtype, none otherwise),
            'float16', 'bfloat16' or None (float32). Defaults to 'auto'.
    """

    def __init__(self,
                 runner,
                 dataloader,
                 evaluator,
                 amp: Optional[str] = 'auto') -> None:
        super().__init__(runner, dataloader, evaluator)
        if amp not in _AMP:
            raise ValueError(f'val_cfg.amp must be one of {_AMP}, got '
                             f'{amp!r}.')
        self.amp = amp
        dataset = self.dataloader.dataset
        if not isinstance(dataset, KNNEvalDataset):
            raise ValueError(
                "val_cfg type='KNNValLoop' needs val_dataloader.dataset = "
                "dict(type='KNNEvalDataset', memory=..., queries=...), got "
                f'{type(dataset).__name__}.')
        metrics = [
            m for m in self.evaluator.metrics if isinstance(m, KNNAccuracy)
        ]
        if not metrics:
            raise ValueError("val_cfg type='KNNValLoop' needs val_evaluator "
                             "= dict(type='KNNAccuracy').")
        memory = dataset.memory
        if any(m.few_shot
               for m in metrics) and hasattr(memory, 'get_gt_labels'):
            for metric in metrics:
                metric.check_memory_labels(memory.get_gt_labels())

    def _autocast(self):
        if self.amp is None:
            return nullcontext()
        if self.amp != 'auto':
            return autocast(dtype=getattr(torch, self.amp))
        wrapper = getattr(self.runner, 'optim_wrapper', None)
        wrappers = wrapper.values() if isinstance(
            wrapper, OptimWrapperDict) else [wrapper]
        for w in wrappers:
            if isinstance(w, AmpOptimWrapper):
                # The same call as AmpOptimWrapper.optim_context's.
                return autocast(dtype=w.cast_dtype)
        return nullcontext()

    def run(self) -> dict:
        """Embed the memory set and the queries, then evaluate."""
        self.runner.call_hook('before_val')
        self.runner.call_hook('before_val_epoch')
        model = self.runner.model
        modes = [(m, m.training) for m in model.modules()]
        model.eval()
        try:
            for idx, data_batch in enumerate(self.dataloader):
                self.run_iter(idx, data_batch)
        finally:
            for module, mode in modes:
                module.training = mode
        metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        self.runner.call_hook('after_val_epoch', metrics=metrics)
        self.runner.call_hook('after_val')
        return metrics

    @torch.no_grad()
    def run_iter(self, idx: int, data_batch: dict) -> None:
        """Embed one batch and hand the features to the evaluator."""
        self.runner.call_hook(
            'before_val_iter', batch_idx=idx, data_batch=data_batch)
        model = self.runner.model
        if is_model_wrapper(model):
            model = model.module
        data = model.data_preprocessor(data_batch, False)
        if not isinstance(data['inputs'], torch.Tensor):
            raise ValueError(
                'KNNValLoop: the images of a batch must be one tensor; set '
                "val_dataloader.collate_fn=dict(type='default_collate').")
        with self._autocast():
            feats = backbone_features(model.backbone, data['inputs'])
        samples = data['data_samples']
        for sample, feat in zip(samples, feats):
            sample.set_field(feat, 'knn_feature')
        self.evaluator.process(data_samples=samples, data_batch=data_batch)
        self.runner.call_hook(
            'after_val_iter',
            batch_idx=idx,
            data_batch=data_batch,
            outputs=samples)
