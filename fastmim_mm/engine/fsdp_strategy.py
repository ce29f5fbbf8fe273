"""FSDP for the toolkit's runs: MMEngine's ``FSDPStrategy`` with checked,
atomic checkpoints, and the activation-checkpointing choice of blocks."""
import copy
import os
import os.path as osp
import re
import shutil
from typing import Optional

import torch
from mmengine.dist import barrier, is_main_process
from mmengine.logging import print_log
from mmengine.registry import FUNCTIONS, STRATEGIES
from mmpretrain.models.backbones.swin_transformer import SwinBlock
from mmpretrain.models.backbones.vision_transformer import \
    TransformerEncoderLayer
from torch import nn
from torch.distributed.fsdp import FullOptimStateDictConfig
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.distributed.fsdp import StateDictType

from ..compat import private_api
from .checkpoint_fit import CheckedLoading, check_fit

_SHARD = re.compile(r'rank(\d+)\.pth')


@FUNCTIONS.register_module()
def fastmim_transformer_block(module: torch.nn.Module) -> bool:
    """``check_fn`` for ``FSDPStrategy(activation_checkpointing=...)``:
    ViT and Swin blocks (the backbone's and the decoder's) recompute their
    activations in the backward pass instead of keeping them."""
    return isinstance(module, (TransformerEncoderLayer, SwinBlock))


@FUNCTIONS.register_module()
def fastmim_block_wrap_policy(module: torch.nn.Module, recurse: bool,
                              nonwrapped_numel: int) -> bool:
    """``auto_wrap_policy`` for ``MMFullyShardedDataParallel``: each ViT or
    Swin block (the backbone's and the decoder's) is an FSDP unit of its
    own, gathered whole only while it runs; the rest of the model (patch
    embedding, norms, prediction layer) is the root unit's.

    A size-based policy would put blocks below its size together with
    their stage: the 18 blocks of Swin-L's third stage (132M parameters)
    in one unit.
    """
    return recurse or fastmim_transformer_block(module)


def sharded_checkpoint_ranks(path: str) -> Optional[int]:
    """How many processes saved the sharded checkpoint ``path`` (a folder
    of ``rank{i}.pth``, as ``state_dict_cfg='local'`` saves), or None if
    it is not one."""
    if not osp.isdir(path):
        return None
    return sum(1 for name in os.listdir(path) if _SHARD.fullmatch(name))


@STRATEGIES.register_module()
class FastMIMFSDPStrategy(private_api.fsdp_strategy()):
    """MMEngine's ``FSDPStrategy`` for the toolkit's runs
    (:class:`~fastmim_mm.engine.FastMIMFlexibleRunner`).

    - The model is built, initialised (a backbone's ``Pretrained``
      ``init_cfg``) and wrapped inside a :class:`CheckedLoading` block.
    - A full checkpoint (``state_dict_cfg='full'``: one file, as a DDP run
      saves, loadable by fine-tuning and by any number of processes) is
      checked against the model before it loads, exactly when resumed
      (:func:`check_fit`, on a copy of the unsharded model whose tensors
      are on the meta device, which holds no memory); a checkpoint that
      does not fit stops the run with one line.
    - A sharded checkpoint (``state_dict_cfg='local'``: a folder of
      ``rank{i}.pth``, each process's shard of the weights and optimiser
      state) loads only into as many processes as saved it; any other
      count stops with one line. Its files are read weights-only too, with
      torch's ``ShardedTensor`` classes allowed for that load only.
    - Saves are atomic: the checkpoint (file or folder) is written under a
      temporary name in its folder and renamed when complete.
    - Without a CUDA device the wrapper runs on the CPU
      (``device_id=torch.device('cpu')``), with gloo.

    Args:
        model_wrapper (dict, optional): ``MMFullyShardedDataParallel``
            arguments, e.g. ``auto_wrap_policy``. Defaults to None.
        state_dict_cfg (str or dict): 'full' or 'local' (see above), or
            ``FSDPStrategy``'s dict form. Defaults to 'full'.
        activation_checkpointing (bool or dict): True recomputes the
            activations of each ViT or Swin block in the backward pass
            (:func:`fastmim_transformer_block`); a dict is
            ``FSDPStrategy``'s form. Defaults to False.
        **kwargs: The other arguments of ``FSDPStrategy``
            (``skip_init_weights``, ...).
    """

    def __init__(self,
                 *,
                 model_wrapper: Optional[dict] = None,
                 state_dict_cfg='full',
                 activation_checkpointing=False,
                 **kwargs) -> None:
        if isinstance(activation_checkpointing, bool):
            activation_checkpointing = dict(
                check_fn='fastmim_transformer_block'
            ) if activation_checkpointing else None
        if not torch.cuda.is_available():
            model_wrapper = dict(
                model_wrapper or dict(type='MMFullyShardedDataParallel'))
            model_wrapper.setdefault('device_id', torch.device('cpu'))
        super().__init__(
            model_wrapper=model_wrapper,
            state_dict_cfg=state_dict_cfg,
            activation_checkpointing=activation_checkpointing,
            **kwargs)
        if self.full_state_dict and not torch.cuda.is_available():
            # torch gathers each optimiser state (exp_avg, exp_avg_sq) into
            # one buffer and "offloads" views of it to the CPU, which on a
            # CPU are the buffer itself: every state would be the last one
            # gathered. Without offloading it copies them.
            self.optim_state_dict_config = FullOptimStateDictConfig(
                offload_to_cpu=False,
                rank0_only=self.optim_state_dict_config.rank0_only)
        self._unsharded = None
        self._loading = dict(file=None, resume=False)

    @property
    def full_state_dict(self) -> bool:
        """Whether checkpoints hold the whole model (one file, rank 0's)."""
        return self.state_dict_type == StateDictType.FULL_STATE_DICT

    def prepare(self, model, **kwargs):
        with CheckedLoading():
            return super().prepare(model, **kwargs)

    def build_model(self, model):
        model = super().build_model(model)
        # What checkpoints are checked against: the model before FSDP
        # shards it, its tensors on the meta device (no memory).
        memo = {
            id(p):
            nn.Parameter(torch.empty_like(p, device='meta'), p.requires_grad)
            for p in model.parameters()
        }
        memo.update({
            id(b): torch.empty_like(b, device='meta')
            for b in model.buffers()
        })
        self._unsharded = copy.deepcopy(model, memo)
        return model

    def resume(self, filename: str, **kwargs) -> dict:
        self._loading['resume'] = True
        try:
            return super().resume(filename, **kwargs)
        finally:
            self._loading['resume'] = False

    def load_checkpoint(self, filename: str, **kwargs) -> dict:
        ranks = sharded_checkpoint_ranks(filename)
        if self.full_state_dict and ranks is not None:
            raise ValueError(
                f'{filename} is a sharded FSDP checkpoint ({ranks} '
                f'rank*.pth files) and this run loads full ones: set '
                f"--cfg-options strategy.state_dict_cfg=local and resume "
                f'with {ranks} processes.')
        if not self.full_state_dict and ranks != self.world_size:
            saved = ('is one file, a full checkpoint' if ranks is None else
                     f'holds the shards of {ranks} processes')
            raise ValueError(
                f'{filename} {saved}; this run (strategy.state_dict_cfg='
                f'local) loads the shards of its {self.world_size} '
                f'processes. Resume with {ranks} processes' +
                (', or ' if ranks else ' ') +
                'load full checkpoints (strategy.state_dict_cfg=full, '
                'which any number of processes loads).')
        self._loading['file'] = filename
        if self.full_state_dict:
            return super().load_checkpoint(filename, **kwargs)
        # Each shard file holds ShardedTensor objects, which weights-only
        # loading refuses: allow those classes for this load only. (Only
        # the ones not allowed yet: leaving the block removes all it adds.)
        allowed = set(torch.serialization.get_safe_globals())
        with torch.serialization.safe_globals([
                t for t in private_api.sharded_tensor_types()
                if t not in allowed
        ]):
            return super().load_checkpoint(filename, **kwargs)

    def load_model_state_dict(self, state_dict: dict, **kwargs) -> None:
        if self.full_state_dict:
            print_log(
                check_fit(
                    self._unsharded,
                    state_dict,
                    file=self._loading['file'],
                    resume=self._loading['resume']),
                logger='current')
        super().load_model_state_dict(state_dict, **kwargs)

    def load_optim_state_dict(self, state_dict: dict) -> None:
        # FSDPStrategy passes (state_dict, model, optimizer), the order of
        # torch < 2.1; torch's is (model, optimizer, state_dict).
        self.optim_wrapper.load_state_dict(
            FSDP.optim_state_dict_to_load(self.model,
                                          self.optim_wrapper.optimizer,
                                          state_dict))

    def save_checkpoint(self, filename: str, **kwargs) -> None:
        folder, name = osp.split(filename)
        partial = osp.join(folder, f'.{name}.partial')
        if is_main_process() and osp.isdir(partial):
            shutil.rmtree(partial)  # left by a run killed while saving
        barrier()
        super().save_checkpoint(partial, **kwargs)
        barrier()  # every process's shard is written
        if is_main_process():
            if osp.isdir(filename):
                shutil.rmtree(filename)
            os.replace(partial, filename)
