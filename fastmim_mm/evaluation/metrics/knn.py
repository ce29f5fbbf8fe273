from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmpretrain.registry import METRICS


def knn_accuracy(query: torch.Tensor,
                 query_labels: torch.Tensor,
                 memory: torch.Tensor,
                 memory_labels: torch.Tensor,
                 num_classes: int,
                 k: int = 20,
                 temperature: float = 0.07,
                 topk: Sequence[int] = (1, ),
                 chunk_size: int = 4096) -> List[float]:
    """Weighted kNN accuracy of queries against a labelled memory set.

    Features are compared by cosine similarity. Each query's ``k`` most
    similar memory features (all of them if the memory holds fewer) vote
    for their labels with weight ``exp(similarity / temperature)``. Top-1
    is the class with the most votes (the first one on a tie, as
    ``torch.argmax``); top-n counts a query as right when its class got a
    vote and fewer than n classes got more. Similarities are computed in
    blocks of ``chunk_size`` queries x ``chunk_size`` memory features, so
    memory stays bounded whatever the sizes; ``chunk_size`` changes the
    memory used, not the neighbours found (barring exactly equal
    similarities at the k-th place).

    Args:
        query (Tensor): N x D query features.
        query_labels (Tensor): N class indices.
        memory (Tensor): M x D memory features.
        memory_labels (Tensor): M class indices.
        num_classes (int): Number of classes.
        k (int): Neighbours that vote. Defaults to 20.
        temperature (float): Temperature of the vote weights. Defaults to
            0.07.
        topk (Sequence[int]): The n of each top-n accuracy. Defaults to
            (1, ).
        chunk_size (int): Block size of the similarity computation.
            Defaults to 4096.

    Returns:
        list[float]: Top-n accuracy in percent, one per ``topk`` entry.
    """
    device = query.device
    memory = F.normalize(memory.float().to(device), dim=1)
    query = F.normalize(query.float(), dim=1)
    memory_labels = memory_labels.to(device)
    query_labels = query_labels.to(device)
    k = min(k, len(memory))
    correct = torch.zeros(len(topk), dtype=torch.long, device=device)
    for start in range(0, len(query), chunk_size):
        q = query[start:start + chunk_size]
        top = idx = None
        for m_start in range(0, len(memory), chunk_size):
            sim = q @ memory[m_start:m_start + chunk_size].t()
            s, i = sim.topk(min(k, sim.shape[1]), dim=1)
            i = i + m_start
            if top is not None:  # merge with the best of earlier blocks
                s, i = torch.cat([top, s], 1), torch.cat([idx, i], 1)
                s, j = s.topk(min(k, s.shape[1]), dim=1)
                i = i.gather(1, j)
            top, idx = s, i
        votes = torch.zeros(len(q), num_classes, device=device)
        votes.scatter_add_(1, memory_labels[idx], (top / temperature).exp())
        labels = query_labels[start:start + chunk_size]
        true_votes = votes.gather(1, labels[:, None])
        rank = (votes > true_votes).sum(1)
        for n, t in enumerate(topk):
            if t == 1:
                correct[n] += (votes.argmax(1) == labels).sum()
            else:
                correct[n] += ((rank < t) & (true_votes[:, 0] > 0)).sum()
    return [100. * c / len(query) for c in correct.tolist()]


def first_per_class(labels: torch.Tensor, n: int) -> torch.Tensor:
    """Indices of the first ``n`` entries of each class present in
    ``labels``, in their order.

    Raises:
        ValueError: If a present class has fewer than ``n`` entries.
    """
    chosen = []
    for c in labels.unique().tolist():
        idx = torch.nonzero(labels == c)[:, 0]
        if len(idx) < n:
            raise ValueError(f'{n}-shot kNN needs {n} memory images of every '
                             f'class; class {c} has {len(idx)}.')
        chosen.append(idx[:n])
    return torch.cat(chosen).sort().values


@METRICS.register_module()
class KNNAccuracy(BaseMetric):
    """Weighted kNN accuracy of frozen features, for MMEngine's validation
    during pre-training.

    :class:`~fastmim_mm.evaluation.KNNValLoop` extracts one feature per
    image of a :class:`~fastmim_mm.evaluation.KNNEvalDataset` (a labelled
    memory set and the queries); this metric gathers them from every
    process (each image once: the padding of the last batch is dropped),
    and classifies each query by its neighbours in the memory set with
    :func:`knn_accuracy` (cosine similarity, the ``k`` nearest vote with
    weight ``exp(sim / temperature)``). With ``few_shot=(1, 5)``, the same
    classification is repeated with only the first 1 and 5 memory images of
    each class (the memory set's order, i.e. its annotation file's: nested
    subsets, the same in every evaluation).

    Reported in percent, under the prefix ``knn``: ``knn/top1``,
    ``knn/top5`` (one per ``topk``), and ``knn/{n}shot_top1``, ... for each
    few-shot ``n``. ``default_hooks.checkpoint.save_best='knn/top1'``
    keeps the best checkpoint by kNN.

    Args:
        k (int): Neighbours that vote. Defaults to 20.
        temperature (float): Temperature of the vote weights. Defaults to
            0.07.
        topk (Sequence[int]): The n of each top-n accuracy reported.
            Defaults to (1, 5).
        few_shot (Sequence[int]): Memory images per class of the few-shot
            evaluations; empty for none. Defaults to ().
        num_classes (int, optional): Number of classes. Defaults to the
            length of the dataset's ``classes``, else the largest label + 1.
        chunk_size (int): Block size of the similarity computation (see
            :func:`knn_accuracy`). Defaults to 4096.
        device (str, optional): Where the similarities are computed, in the
            main process. Defaults to the current CUDA device if there is
            one, else the CPU.
        collect_device (str): Device used to gather the features from the
            processes, 'cpu' or 'gpu'. Defaults to 'cpu'.
        prefix (str, optional): Prefix of the metric names. Defaults to
            'knn'.
    """
    default_prefix = 'knn'

    def __init__(self,
                 k: int = 20,
                 temperature: float = 0.07,
                 topk: Sequence[int] = (1, 5),
                 few_shot: Sequence[int] = (),
                 num_classes: Optional[int] = None,
                 chunk_size: int = 4096,
                 device: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        for name, values in (('topk', topk), ('few_shot', few_shot)):
            if any(int(v) != v or v < 1 for v in values):
                raise ValueError(f'KNNAccuracy: {name} must hold positive '
                                 f'integers, got {values!r}.')
        if k < 1 or temperature <= 0:
            raise ValueError('KNNAccuracy: k must be at least 1 and '
                             f'temperature positive, got k={k}, '
                             f'temperature={temperature}.')
        self.k = k
        self.temperature = temperature
        self.topk = tuple(topk)
        self.few_shot = tuple(few_shot)
        self.num_classes = num_classes
        self.chunk_size = chunk_size
        self.device = device

    def check_memory_labels(self, labels: Sequence[int]) -> None:
        """Raise ValueError, naming the setting, if the memory set cannot
        serve the few-shot evaluations."""
        try:
            for n in self.few_shot:
                first_per_class(torch.as_tensor(labels), n)
        except ValueError as e:
            raise ValueError(
                f'KNNAccuracy(few_shot={self.few_shot}): {e} Lower few_shot '
                'or use a memory set with more images per class.') from None

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if 'knn_feature' not in sample:
                raise ValueError(
                    'KNNAccuracy: the data samples carry no features; it '
                    "needs val_cfg=dict(type='KNNValLoop').")
            if 'gt_label' not in sample:
                raise ValueError(
                    f'KNNAccuracy: {sample.get("img_path", "an image")} has '
                    'no label; the memory set and the queries must both be '
                    'labelled.')
            self.results.append(
                dict(
                    feature=sample['knn_feature'].float().cpu().clone(),
                    label=int(sample['gt_label'][0]),
                    memory=bool(sample['knn_memory']),
                    index=int(sample['knn_index'])))

    def compute_metrics(self, results: list) -> dict:
        memory = sorted((r for r in results if r['memory']),
                        key=lambda r: r['index'])
        queries = [r for r in results if not r['memory']]
        if not memory or not queries:
            raise ValueError(
                f'KNNAccuracy: got {len(memory)} memory and {len(queries)} '
                'query images; both sets must be non-empty.')
        device = self.device or ('cuda'
                                 if torch.cuda.is_available() else 'cpu')
        mem_x = torch.stack([r['feature'] for r in memory]).to(device)
        mem_y = torch.tensor([r['label'] for r in memory])
        query_x = torch.stack([r['feature'] for r in queries]).to(device)
        query_y = torch.tensor([r['label'] for r in queries])
        num_classes = self.num_classes
        if num_classes is None:
            classes = (self.dataset_meta or {}).get('classes')
            num_classes = len(classes) if classes else int(
                max(mem_y.max(), query_y.max())) + 1

        metrics = {}
        subsets = [('', None)] + [(f'{n}shot_', first_per_class(mem_y, n))
                                  for n in self.few_shot]
        for name, idx in subsets:
            x, y = (mem_x, mem_y) if idx is None else (mem_x[idx.to(device)],
                                                       mem_y[idx])
            accuracies = knn_accuracy(query_x, query_y, x, y, num_classes,
                                      self.k, self.temperature, self.topk,
                                      self.chunk_size)
            for t, acc in zip(self.topk, accuracies):
                metrics[f'{name}top{t}'] = acc
        return metrics
