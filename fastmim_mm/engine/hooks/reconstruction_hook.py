import os
import os.path as osp
from contextlib import nullcontext
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS
from torch.distributed.fsdp import FullyShardedDataParallel

from ...visualization import denormalize, make_panel


@HOOKS.register_module()
class FastMIMReconstructionHook(Hook):
    """Save a PNG panel (input, masked input, HOG target, predicted HOG,
    the masked blocks framed in red).

    The images are the first ``num_images`` of the first training batch,
    masked with a fixed seed, so panels of successive epochs compare like
    with like. Training random streams are left untouched.

    Args:
        interval (int): Save every ``interval`` epochs; the last epoch is
            always saved. Defaults to 1.
        num_images (int): Rows of the panel. Defaults to 4.
        out_dir (str, optional): Folder for the PNGs. Defaults to
            ``{work_dir}/reconstructions``.
        seed (int): Seed of the mask drawn for the panel. Defaults to 0.
    """

    priority = 'LOW'

    def __init__(self,
                 interval: int = 1,
                 num_images: int = 4,
                 out_dir: Optional[str] = None,
                 seed: int = 0) -> None:
        self.interval = interval
        self.num_images = num_images
        self.out_dir = out_dir
        self.seed = seed
        self._batch = None

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        if self._batch is None and data_batch is not None:
            n = self.num_images
            # A tensor batch, or a list of encoded images when decoding
            # happens in the data preprocessor (DeviceDecodeDataPreprocessor).
            inputs = data_batch['inputs'][:n]
            self._batch = dict(
                inputs=inputs.clone() if torch.is_tensor(inputs) else inputs,
                data_samples=data_batch['data_samples'][:n])

    def after_train_epoch(self, runner) -> None:
        if (self.every_n_epochs(runner, self.interval)
                or self.is_last_train_epoch(runner)):
            self.save(runner, f'epoch_{runner.epoch + 1}')

    def save(self, runner, tag: str) -> Optional[str]:
        if self._batch is None:
            return None
        # FSDP: every process gathers the whole model, rank 0 draws.
        whole = FullyShardedDataParallel.summon_full_params(
            runner.model, writeback=False) if isinstance(
                runner.model, FullyShardedDataParallel) else nullcontext()
        with whole:
            return self._draw(runner, tag) if runner.rank == 0 else None

    def _draw(self, runner, tag: str) -> str:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        data = model.data_preprocessor(self._batch, False)
        inputs = data['inputs']
        # The panel's mask is drawn on the CPU, whose generator alone is
        # seeded and then restored: torch.manual_seed would reseed the CUDA
        # generators too and so replay rank 0's training masks after every
        # panel.
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(self.seed)
            mask = model.mask_generator(inputs.shape[0], *inputs.shape[2:])
        mask = mask.to(inputs.device)
        was_training = model.training
        model.eval()
        out = model.reconstruct(inputs, mask)
        model.train(was_training)

        pre = model.data_preprocessor
        mean = pre.mean.flatten().tolist()
        std = pre.std.flatten().tolist()
        panel = make_panel(
            denormalize(inputs.float().cpu().numpy(), mean, std),
            denormalize(out['masked_inputs'].float().cpu().numpy(), mean, std),
            out['target'].cpu().numpy(),
            out['pred'].cpu().numpy(),
            nbins=getattr(model.target_generator, 'nbins', 9),
            mask=out['mask'].cpu().numpy())
        out_dir = self.out_dir or osp.join(runner.work_dir, 'reconstructions')
        os.makedirs(out_dir, exist_ok=True)
        path = osp.abspath(osp.join(out_dir, f'reconstruction_{tag}.png'))
        panel.save(path)
        runner.logger.info(f'Saved reconstruction panel: {path}')
        return path
