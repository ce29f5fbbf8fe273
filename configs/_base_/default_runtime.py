default_scope = 'mmpretrain'
custom_imports = dict(imports=['fastmim_mm'], allow_failed_imports=False)

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Every epoch, the last 3 kept. Saves are atomic: the checkpoint
    # (atomic_local: a temporary file, then renamed) and last_checkpoint;
    # older ones are removed after the new one is written. iter_interval=500
    # also saves every 500 iterations inside epochs (the newest kept); a run
    # resumes at their iteration. From the command line:
    #   --cfg-options default_hooks.checkpoint.iter_interval=500
    checkpoint=dict(
        type='ResumableCheckpointHook',
        interval=1,
        max_keep_ckpts=3,
        iter_interval=None,
        max_keep_iter_ckpts=1,
        backend_args=dict(backend='atomic_local')),
    # On SIGTERM or SIGUSR1 (Slurm: --signal=USR1@120): finish the
    # iteration, save it (all processes agree), exit with status 75.
    preemption=dict(type='PreemptionHook'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # Stop at the first NaN/Inf loss, before a checkpoint could save it.
    check_loss=dict(type='NonFiniteLossHook'),
    # Random streams saved with checkpoints, so a resumed run is exact.
    random_state=dict(type='RandomStateHook'),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='UniversalVisualizer', vis_backends=vis_backends, name='visualizer')

log_processor = dict(window_size=10)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, diff_rank_seed=True)
