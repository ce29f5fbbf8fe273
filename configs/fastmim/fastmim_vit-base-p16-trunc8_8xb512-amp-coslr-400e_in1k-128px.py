# Encoder truncation: pre-train only the first 8 of ViT-B's 12 blocks (paper:
# shallow layers matter most in pre-training, so dropping the last ones
# speeds it up without hurting fine-tuning). The checkpoint loads into the
# full 12-block ViT-B; blocks 8-11 start from scratch when fine-tuning.
_base_ = './fastmim_vit-base-p16_8xb512-amp-coslr-400e_in1k-128px.py'

model = dict(backbone=dict(arch=dict(num_layers=8)))
