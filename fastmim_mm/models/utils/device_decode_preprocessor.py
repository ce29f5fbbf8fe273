from typing import List, Sequence

import torch
import torch.nn.functional as F
from mmpretrain.models.utils import SelfSupDataPreprocessor
from mmpretrain.registry import MODELS
from torchvision.io import ImageReadMode, decode_jpeg


@MODELS.register_module()
class DeviceDecodeDataPreprocessor(SelfSupDataPreprocessor):
    """Decode JPEGs on the model's device, then crop, resize and flip them
    there, before the usual normalisation of ``SelfSupDataPreprocessor``.

    The other half of :class:`DeviceDecodeRandomResizedCrop`, whose loader
    workers only read the files and draw each crop box and flip. The batch
    (``pseudo_collate``: a list of 1-D byte tensors, or of finished CHW
    crops for images the workers decoded) is decoded in one
    ``torchvision.io.decode_jpeg`` call (batched nvJPEG on a GPU,
    libjpeg-turbo on the CPU); each box is resized to the sample's
    ``img_shape`` with antialiased bicubic (or another) interpolation and
    flipped where drawn. Already stacked inputs pass straight through.

    Args:
        interpolation (str): 'bicubic', 'bilinear' or 'nearest' (see
            ``torch.nn.functional.interpolate``). Defaults to 'bicubic'.
        antialias (bool): Low-pass filter when shrinking (bicubic and
            bilinear), as the CPU path's reduced DCT decoding does.
            Defaults to True.
        **kwargs: ``SelfSupDataPreprocessor``'s arguments (mean, std,
            to_rgb, ...).
    """

    def __init__(self,
                 interpolation: str = 'bicubic',
                 antialias: bool = True,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if interpolation not in ('bicubic', 'bilinear', 'nearest'):
            raise ValueError(
                f'DeviceDecodeDataPreprocessor: interpolation must be '
                f"'bicubic', 'bilinear' or 'nearest', got {interpolation!r}")
        self.interpolation = interpolation
        self.antialias = antialias and interpolation != 'nearest'

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs = data['inputs']
        if not isinstance(inputs, torch.Tensor):
            data = dict(
                data, inputs=self.decode_crop(inputs, data['data_samples']))
        return super().forward(data, training)

    def decode_crop(self, inputs: Sequence[torch.Tensor],
                    data_samples: list) -> torch.Tensor:
        """Decode, crop, resize and flip a batch.

        Args:
            inputs (sequence[Tensor]): Per sample, the JPEG's bytes (1-D
                uint8, on the CPU) or a finished C x H x W BGR crop.
            data_samples (list): Per sample, ``crop_box``, ``img_shape``
                and ``flip`` in its metainfo.

        Returns:
            Tensor: N x 3 x H x W float BGR images in [0, 255] on the
            device.
        """
        device = self._device
        encoded = [x for x in inputs if x.dim() == 1]
        decoded = iter(
            decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device
                        ) if encoded else [])
        # Per sample only what differs in size (crop and resize); channel
        # order, flips and clamping once for the batch.
        images: List[torch.Tensor] = []
        flips: List[bool] = []
        for x, sample in zip(inputs, data_samples):
            if x.dim() != 1:  # cropped and flipped by the worker, BGR
                images.append(
                    x.to(device, non_blocking=True)[[2, 1, 0]].float())
                flips.append(False)
                continue
            top, left, height, width = sample.crop_box
            crop = next(decoded)[None, :, top:top + height,
                                 left:left + width].float()
            images.append(
                F.interpolate(
                    crop,
                    size=tuple(sample.img_shape),
                    mode=self.interpolation,
                    antialias=self.antialias,
                    **({} if self.interpolation == 'nearest' else dict(
                        align_corners=False)))[0])
            flips.append(bool(sample.flip))
        batch = torch.stack(images)
        if any(flips):
            flip = torch.tensor(flips, device=device).view(-1, 1, 1, 1)
            batch = torch.where(flip, batch.flip(-1), batch)
        # BGR, as the CPU path hands images over (to_rgb swaps them back).
        return batch.clamp_(0, 255)[:, [2, 1, 0]]
