"""The online kNN evaluation on the tests' 16-image folder."""
from ..conftest import runner_config

PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64)),
    dict(type='PackInputs'),
]
# Indices into the 16 images (class 0: 0-7, class 1: 8-15). 10 + 7 images:
# two processes pad the 17 to 18.
MEMORY = [0, 1, 2, 3, 4, 8, 9, 10, 11, 12]
QUERIES = [5, 6, 7, 13, 14, 15, 3]


def knn_settings(image_folder, memory=MEMORY, queries=QUERIES, **evaluator):
    """``val_dataloader``, ``val_cfg`` and ``val_evaluator`` of a kNN
    evaluation with memory and queries from the image folder."""

    def part(indices):
        return dict(
            type='CustomDataset',
            data_root=image_folder,
            ann_file='meta/train.txt',
            data_prefix='train',
            indices=indices,
            pipeline=PIPELINE)

    return dict(
        val_dataloader=dict(
            batch_size=4,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate'),
            dataset=dict(
                type='KNNEvalDataset',
                memory=part(memory),
                queries=part(queries))),
        val_cfg=dict(type='KNNValLoop'),
        val_evaluator=dict(type='KNNAccuracy', **evaluator))


def knn_run_config(work_dir,
                   image_folder,
                   batch_size=8,
                   max_epochs=2,
                   **overrides):
    """A tiny pre-training (16 images, tiny ViT) evaluated by kNN after
    every epoch, the same in any number of processes: every block is
    masked and a fixed resize replaces the random crop, so the masks and
    crops do not depend on how the batch is split (as in
    tests/test_engine/test_distributed.py)."""
    cfg = runner_config(
        work_dir,
        image_folder,
        batch_size=batch_size,
        max_epochs=max_epochs,
        randomness=dict(seed=0, diff_rank_seed=False),
        custom_hooks=[],
        **knn_settings(image_folder, few_shot=(1, )))
    cfg.merge_from_dict(overrides)
    cfg.model.mask_generator.mask_ratio = 0.95  # keeps int(16 * .05) = 0
    dataset = cfg.train_dataloader.dataset
    while 'dataset' in dataset:  # wrapped, e.g. PerSampleSeedDataset
        dataset = dataset.dataset
    dataset.pipeline = PIPELINE
    cfg.train_cfg.val_interval = 1
    return cfg
