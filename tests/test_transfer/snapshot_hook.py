"""A hook for the processes the transfer tests start
(``custom_imports=['tests.test_transfer.snapshot_hook']`` with the
repository root on PYTHONPATH): it saves the backbone as training starts,
i.e. after the Runner initialised the model and loaded the checkpoint."""
import os.path as osp

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module(force=True)
class BackboneSnapshotHook(Hook):
    """Writes ``backbone_at_start.pth`` (the backbone's state dict) to the
    work dir before the first iteration."""

    def before_train(self, runner):
        model = getattr(runner.model, 'module', runner.model)
        torch.save(model.backbone.state_dict(),
                   osp.join(runner.work_dir, 'backbone_at_start.pth'))
