# FastMIM-P: progressive resolution for a high-capacity model (Swin-L).
#
# The schedule is this toolkit's choice (the paper gives none for Swin-L):
# 128 px for epochs 0-299, where most of the learning happens cheaply, then
# 256 px for the last 100 epochs. 256 and not 192 or 224: window 4 must tile
# every stage (input / 4 / 2**stage), so the input must be a multiple of
# 128. The per-GPU batch halves at 256 px to bound memory and gradient
# accumulation 2 keeps the effective batch at 2048 (8 GPUs); the hook
# re-derives lr = 1.5e-4 * effective batch / 256 at every switch.
_base_ = './fastmim_swin-base-w4_8xb256-amp-coslr-400e_in1k-128px.py'

model = dict(
    backbone=dict(arch='large', drop_path_rate=0.2),
    neck=dict(in_channels=1536))

# The lr per 256 images; ProgressiveResolutionHook scales it.
optim_wrapper = dict(optimizer=dict(lr=1.5e-4))
# Iterations per epoch change between phases: step the schedule per epoch.
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=10,
        convert_to_iter_based=False),
    dict(
        type='CosineAnnealingLR',
        T_max=390,
        eta_min=0.,
        by_epoch=True,
        begin=10,
        end=400,
        convert_to_iter_based=False),
]
auto_scale_lr = dict(_delete_=True)

custom_hooks = [
    dict(
        type='ProgressiveResolutionHook',
        # (start epoch, input size, per-GPU batch, gradient accumulation)
        phases=[(0, 128, 256, 1), (300, 256, 128, 2)],
        base_batch_size=256),
]
