from mmengine.dataset import ConcatDataset
from mmpretrain.registry import DATASETS


@DATASETS.register_module()
class KNNEvalDataset(ConcatDataset):
    """A labelled memory set followed by the queries, for
    :class:`~fastmim_mm.evaluation.KNNValLoop`.

    One dataset, so that one sampler shards it over the processes and
    MMEngine drops the padding of the last batch once. Each packed sample
    (the pipelines must end with ``PackInputs``) is tagged in its
    metainfo: ``knn_memory`` (True for the memory set) and ``knn_index``
    (its index in its own set), which
    :class:`~fastmim_mm.evaluation.KNNAccuracy` uses to order the memory
    set the same way in any number of processes.

    Args:
        memory (dict | BaseDataset): The memory set (with labels).
        queries (dict | BaseDataset): The queries (with labels).
        lazy_init (bool): See :class:`mmengine.dataset.ConcatDataset`.
            Defaults to False.
    """

    def __init__(self, memory, queries, lazy_init: bool = False) -> None:
        try:
            super().__init__([memory, queries], lazy_init=lazy_init)
        except FileNotFoundError as e:
            raise FileNotFoundError(
                f'KNNEvalDataset: {e}. tools/misc/make_knn_memory_set.py '
                'writes the annotation file of a memory set (or of a fixed '
                'part of the validation images).') from None

    @property
    def memory(self):
        return self.datasets[0]

    @property
    def queries(self):
        return self.datasets[1]

    def __getitem__(self, idx: int) -> dict:
        if not self._fully_initialized:
            self.full_init()
        part, index = self._get_ori_dataset_idx(idx)
        data = self.datasets[part][index]
        sample = data.get('data_samples') if isinstance(data, dict) else None
        if sample is None or not hasattr(sample, 'set_metainfo'):
            raise TypeError(
                'KNNEvalDataset: the pipelines of the memory set and the '
                "queries must end with dict(type='PackInputs').")
        sample.set_metainfo(dict(knn_memory=part == 0, knn_index=index))
        return data
