# FastMIM pre-training optimisation: AdamW (0.9, 0.95), weight decay 0.05
# (none on norms, biases, position embeddings and tokens), linear warm-up then
# cosine decay to 0. lr = 1.5e-4 * total_batch / 256; configs set lr for
# their total batch and auto_scale_lr rescales it for another one.
# Mixed precision: dtype None lets tools/train.py choose bfloat16 on GPUs
# that have it (Ampere and newer) and float16 with the dynamic loss scaling
# otherwise; 'bfloat16' or 'float16' forces one. Without a GPU, fp32. The
# non-finite loss stop (default_runtime's check_loss) is on either way.
optim_wrapper = dict(
    type='AmpOptimWrapper',
    dtype=None,
    loss_scale='dynamic',
    optimizer=dict(
        type='AdamW',
        lr=1.5e-4 * 4096 / 256,
        betas=(0.9, 0.95),
        weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'pos_embed': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
            'mask_token': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'absolute_pos_embed': dict(decay_mult=0.),
        }))

warmup_epochs = 20
max_epochs = 800
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - warmup_epochs,
        eta_min=0.,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True),
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=4096)
