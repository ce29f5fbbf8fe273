"""mmcv's nms and RoIAlign routed to torchvision's kernels (what CUDA
tensors get when mmcv was built without CUDA ops) compute what mmcv's own
kernels compute. Routing 'cpu' here compares both on this machine."""
import copy
import sys
from collections import Counter
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from mmcv.ops import RoIAlign, batched_nms, nms, roi_align
from mmengine.registry import DefaultScope, init_default_scope
from mmengine.runner import Runner
from synthetic_downstream import make_coco_instances
from torch.utils._python_dispatch import TorchDispatchMode

import fastmim_mm.compat.mmcv_ops as routing
from fastmim_mm.compat.mmcv_ops import (mmcv_has_cuda_ops,
                                        route_mmcv_ops_to_torchvision)


class TorchvisionOpCounter(TorchDispatchMode):
    """Counts the torchvision kernels that run."""

    def __init__(self):
        super().__init__()
        self.counts = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func.overloadpacket)
        if name.startswith('torchvision.'):
            self.counts[name.split('.')[-1]] += 1
        return func(*args, **(kwargs or {}))


@contextmanager
def routed(devices):
    """Route ``devices`` to torchvision, then restore what was routed."""
    before = route_mmcv_ops_to_torchvision(devices)
    try:
        yield
    finally:
        route_mmcv_ops_to_torchvision(before)


@pytest.fixture
def route_cpu():
    """Route CPU tensors to torchvision for one test, then restore."""
    with routed(('cpu', )):
        yield


def _boxes(n, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=dtype) * 200
    wh = torch.rand(n, 2, generator=g, dtype=dtype) * 60 + 0.5
    return torch.cat([xy, xy + wh], 1), torch.rand(n, generator=g, dtype=dtype)


def _roi_align_both(feats, rois, **kwargs):
    """(output, grad) from mmcv's kernels and from the routed ones."""
    results = []
    for devices in ((), ('cpu', )):
        with routed(devices):
            x = feats.clone().requires_grad_()
            out = roi_align(x, rois, **kwargs)
            out.backward(
                torch.arange(out.numel(), dtype=out.dtype).view_as(out).cos())
        results.append((out.detach(), x.grad))
    return results


def test_routes_cuda_only_on_gpu_machines_without_mmcv_cuda_kernels(
        monkeypatch):
    """What FastMIMRunner applies when it is built: nothing on this machine
    (no CUDA device); with a CUDA device and this mmcv (no CUDA kernels),
    CUDA tensors go to torchvision and CPU tensors stay with mmcv."""
    assert mmcv_has_cuda_ops() is False
    assert not routing.needed() and not routing.apply()
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert routing.needed()
    try:
        assert routing.apply()
        for name in ('mmcv.ops.nms', 'mmcv.ops.roi_align'):
            module = sys.modules[name]
            assert isinstance(module.ext_module, routing.TorchvisionKernels)
            assert module.ext_module.device_types == ('cuda', )
        assert not routing.apply()  # applied once
    finally:
        routing.route_mmcv_ops_to_torchvision(())


@pytest.mark.parametrize('aligned', [True, False])
@pytest.mark.parametrize('sampling_ratio', [0, 2])
@pytest.mark.parametrize('spatial_scale', [1.0, 0.25])
def test_roi_align_equals_mmcv_float64(aligned, sampling_ratio, spatial_scale):
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(2, 3, 40, 50, generator=g, dtype=torch.float64)
    boxes, _ = _boxes(60)
    # Boxes partly outside the map and degenerate ones included.
    boxes[:5] -= 30
    boxes[5:8, 2:] = boxes[5:8, :2]
    rois = torch.cat(
        [torch.randint(0, 2, (60, 1), generator=g).double(), boxes], 1)
    (out_m, grad_m), (out_t, grad_t) = _roi_align_both(
        feats,
        rois,
        output_size=(7, 5),
        spatial_scale=spatial_scale,
        sampling_ratio=sampling_ratio,
        pool_mode='avg',
        aligned=aligned)
    assert out_m.abs().sum() > 0 and grad_m.abs().sum() > 0
    torch.testing.assert_close(out_t, out_m, rtol=0, atol=1e-12)
    torch.testing.assert_close(grad_t, grad_m, rtol=0, atol=1e-12)


def test_roi_align_module_and_max_pooling(route_cpu):
    feats = torch.randn(1, 4, 16, 16, dtype=torch.float64)
    rois = torch.tensor([[0, 1.5, 2.0, 12.0, 9.5]], dtype=torch.float64)
    counter = TorchvisionOpCounter()
    with counter:
        avg = RoIAlign((3, 3), 1.0, 0, pool_mode='avg')(feats, rois)
        # torchvision has no max pooling: mmcv's kernel keeps it.
        mx = RoIAlign((3, 3), 1.0, 0, pool_mode='max')(feats, rois)
    assert counter.counts == {'roi_align': 1}
    assert avg.shape == mx.shape == (1, 4, 3, 3)
    assert (mx >= avg - 1e-12).all() and not torch.allclose(mx, avg)


def test_roi_align_half_features_float_rois(route_cpu):
    """Under autocast the features are half and the RoIs float32: the
    routed kernel computes in float32 and returns the features' dtype."""
    feats = torch.randn(1, 8, 32, 32)
    rois = torch.tensor([[0, 3.3, 4.1, 27.9, 20.2], [0, 0, 0, 31, 31]])
    want = roi_align(feats, rois, (7, 7), 1.0, 0, 'avg', True)
    x = feats.to(torch.bfloat16).requires_grad_()
    got = roi_align(x, rois, (7, 7), 1.0, 0, 'avg', True)
    got.sum().backward()
    assert got.dtype == x.grad.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), want, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize('offset', [0, 1])
def test_nms_equals_mmcv(offset):
    # float32: mmcv's CPU nms takes nothing else.
    boxes, scores = _boxes(500, seed=2, dtype=torch.float32)
    results = []
    for devices in ((), ('cpu', )):
        with routed(devices):
            dets, keep = nms(boxes, scores, 0.5, offset=offset)
            _, bkeep = batched_nms(boxes, scores,
                                   torch.arange(500) % 3,
                                   dict(iou_threshold=0.3, offset=offset))
        results.append((dets, keep, bkeep))
    (dets_m, keep_m, bkeep_m), (dets_t, keep_t, bkeep_t) = results
    assert 50 < len(keep_m) < 500
    assert torch.equal(keep_t, keep_m) and torch.equal(bkeep_t, bkeep_m)
    assert torch.equal(dets_t, dets_m)


def test_offset_changes_the_result():
    """offset=1 widens every box by one pixel: two boxes with IoU 0.5 at
    offset 0 overlap more at offset 1, and the routed kernel sees it."""
    boxes = torch.tensor([[0., 0., 2., 2.], [1., 0., 3., 2.]])
    scores = torch.tensor([0.9, 0.8])
    with routed(('cpu', )):
        # IoU 1/3 at offset 0, 1/2 (2x3 of 3x3 + 3x3 - 2x3) at offset 1.
        assert len(nms(boxes, scores, 0.4, offset=0)[1]) == 2
        assert len(nms(boxes, scores, 0.4, offset=1)[1]) == 1


def test_mask_targets_crop_and_resize():
    """mmdet's mask targets call mmcv's roi_align directly."""
    from mmdet.structures.mask import BitmapMasks
    masks = BitmapMasks((np.random.RandomState(0).rand(3, 40, 50)
                         > 0.5).astype(np.uint8), 40, 50)
    boxes = np.array([[2, 3, 30, 20], [0, 0, 49, 39], [10.5, 5, 20, 33]],
                     np.float32)
    counter = TorchvisionOpCounter()
    with routed(('cpu', )), counter:
        through_tv = masks.crop_and_resize(boxes, (14, 14), np.arange(3))
    direct = masks.crop_and_resize(boxes, (14, 14), np.arange(3))
    assert counter.counts == {'roi_align': 1}
    np.testing.assert_array_equal(through_tv.masks, direct.masks)
    assert 0 < through_tv.masks.mean() < 1


@pytest.fixture
def _restore_scope():
    before = DefaultScope.get_current_instance()
    yield
    if before is not None:
        init_default_scope(before.scope_name)


def _total(loss):
    """A loss term's sum (RPN terms are lists over FPN levels)."""
    return sum(v.sum() for v in (loss if isinstance(loss, list) else [loss]))


def test_mask_rcnn_step_through_routed_ops(tmp_path, _restore_scope):
    """One Mask R-CNN training step (the COCO benchmark config, tiny Swin)
    gives the same losses and gradients through torchvision's kernels as
    through mmcv's, and every nms / RoIAlign of it ran in torchvision."""
    from ..test_transfer.test_transfer import detection_config
    coco = make_coco_instances(
        str(tmp_path / 'coco'),
        num_images=2,
        image_size=(128, 96),
        num_classes=2)
    cfg = detection_config(tmp_path / 'work', coco, None)
    cfg.model.backbone.init_cfg = None
    cfg.custom_hooks = []
    runner = Runner.from_cfg(cfg)
    model = runner.model
    batch = next(iter(runner.train_dataloader))
    data = model.data_preprocessor(copy.deepcopy(batch), True)

    def step(devices):
        model.zero_grad()
        torch.manual_seed(0)  # the RoI samplers draw
        counter = TorchvisionOpCounter()
        with routed(devices), counter:
            losses = model(**copy.deepcopy(data), mode='loss')
            loss, _ = model.parse_losses(losses)
            loss.backward()
        grads = {
            n: p.grad.clone()
            for n, p in model.named_parameters() if p.grad is not None
        }
        return losses, grads, counter.counts

    losses_m, grads_m, counts_m = step(())
    losses_t, grads_t, counts_t = step(('cpu', ))
    assert not counts_m
    # RPN nms per image; bbox and mask RoI features per FPN level, mask
    # targets per image (BitmapMasks.crop_and_resize); backward of the
    # features. Measured on this config: 2, 5 and 3.
    assert counts_t['nms'] >= 2
    assert counts_t['roi_align'] >= 5
    assert counts_t['_roi_align_backward'] >= 3
    for key in ('loss_rpn_cls', 'loss_cls', 'loss_bbox', 'loss_mask'):
        m, t = _total(losses_m[key]), _total(losses_t[key])
        assert torch.isfinite(m)
        torch.testing.assert_close(t, m, rtol=1e-5, atol=1e-6)
    assert grads_t.keys() == grads_m.keys()
    for name in ('roi_head.mask_head.convs.0.conv.weight',
                 'roi_head.bbox_head.shared_fcs.0.weight',
                 'neck.lateral_convs.0.conv.weight'):
        torch.testing.assert_close(
            grads_t[name], grads_m[name], rtol=1e-4, atol=1e-6)
