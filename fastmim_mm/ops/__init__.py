from .mmcv_on_torchvision import (TorchvisionKernels, mmcv_has_cuda_ops,
                                  route_mmcv_ops_to_torchvision)

__all__ = [
    'TorchvisionKernels', 'mmcv_has_cuda_ops', 'route_mmcv_ops_to_torchvision'
]
