# Runtime of the pre-training configs: the shared one plus reconstruction
# panels (input, masked input, HOG target, prediction with the masked blocks
# framed in red; four images, one forward pass) every 20 epochs and after
# the last, in {work_dir}/reconstructions. From the command line:
#   --cfg-options default_hooks.reconstruction.interval=5
#   --cfg-options default_hooks.reconstruction=None   (no panels)
_base_ = './default_runtime.py'

default_hooks = dict(
    reconstruction=dict(type='FastMIMReconstructionHook', interval=20))
