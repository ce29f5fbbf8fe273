"""Train several configs one after another in the same torch.distributed
processes (started by torchrun): one start-up for several small runs, as
tools/train.py runs each (``build_runner``, the CPU launcher set-up)."""
import sys

from mmengine.config import Config

import fastmim_mm  # noqa: F401
from fastmim_mm.engine.launch import (build_runner, distributed_session,
                                      setup_launcher)

if __name__ == '__main__':
    with distributed_session():
        for path in sys.argv[1:]:
            cfg = Config.fromfile(path)
            setup_launcher(cfg, 'pytorch', 'train_in_sequence.py')
            build_runner(cfg).train()
