"""The study's kNN evaluation of a frozen encoder: mean-pooled patch tokens
of the training images as neighbours of the test images'."""
import torch
import torch.nn.functional as F

from fastmim_mm.engine import FastMIMRunner
from .data import CLASSES

KNN_K = 20
KNN_T = 0.07
KNN_DESCRIPTION = (f'k={KNN_K}, cosine, weights exp(sim/{KNN_T}), '
                   'mean-pooled patch tokens after the final norm, frozen '
                   'encoder, 32 px, bf16 autocast')


@torch.no_grad()
def features(model, cfg, split: str, limit, device) -> tuple:
    """Mean-pooled final feature maps and labels of ``split`` ('train' or
    'test'; the first ``limit`` images, or all with None), through the
    config's validation loader."""
    dataset = dict(
        cfg.val_dataloader.dataset, split=split, test_mode=split == 'test')
    if limit is not None:
        dataset['indices'] = limit
    loader = FastMIMRunner.build_dataloader(
        dict(cfg.val_dataloader, dataset=dataset))
    feats, labels = [], []
    for batch in loader:
        data = model.data_preprocessor(batch, False)
        # bf16 matrix products: 1.5-1.9x faster on this CPU (AVX512-BF16),
        # features within 2% of float32 ones.
        with torch.autocast(device, dtype=torch.bfloat16):
            fmap = model.backbone(data['inputs'].to(device))[-1]
        feats.append(fmap.float().flatten(2).mean(2).cpu())
        labels.append(torch.cat([s.gt_label for s in data['data_samples']]))
    return torch.cat(feats), torch.cat(labels)


def knn_accuracy(train_x, train_y, test_x, test_y) -> float:
    """Top-1 (%) of the test features' weighted kNN vote among the
    training features."""
    train_x = F.normalize(train_x, dim=1)
    test_x = F.normalize(test_x, dim=1)
    correct = 0
    for start in range(0, len(test_x), 500):
        sim = test_x[start:start + 500] @ train_x.t()
        top, idx = sim.topk(min(KNN_K, len(train_x)), dim=1)
        votes = torch.zeros(len(top), CLASSES)
        votes.scatter_add_(1, train_y[idx], (top / KNN_T).exp())
        correct += (votes.argmax(1) == test_y[start:start + 500]).sum()
    return 100. * float(correct) / len(test_x)
