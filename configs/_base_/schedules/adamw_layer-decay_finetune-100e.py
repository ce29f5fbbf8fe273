# Fine-tuning schedule of the FastMIM recipe: AdamW, weight decay 0.05,
# layer-wise lr decay, 5 warm-up epochs, cosine to 1e-6 over 100 epochs,
# lr = blr * total_batch / 256 (configs set lr for a total batch of 1024).
# Mixed precision as in adamw_coslr_pretrain.py: bfloat16 where the GPU has
# it, else float16 with dynamic loss scaling (dtype None: tools/train.py
# chooses); fp32 without a GPU.
optim_wrapper = dict(
    type='AmpOptimWrapper',
    dtype=None,
    loss_scale='dynamic',
    optimizer=dict(
        type='AdamW', lr=1e-3, weight_decay=0.05, betas=(0.9, 0.999)),
    constructor='LearningRateDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.75,
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            '.cls_token': dict(decay_mult=0.0),
            '.pos_embed': dict(decay_mult=0.0),
            '.absolute_pos_embed': dict(decay_mult=0.0),
            '.relative_position_bias_table': dict(decay_mult=0.0),
        }))

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=5,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=95,
        by_epoch=True,
        begin=5,
        end=100,
        eta_min=1e-6,
        convert_to_iter_based=True),
]

train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=1024)
