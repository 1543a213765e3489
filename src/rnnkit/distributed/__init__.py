"""Data-parallel training on several processes (torch.distributed), one machine or many.

``rnnkit train RECIPE --nproc N`` starts N local processes through torchrun (``launch.py``); on a cluster
``torchrun --nnodes ... -m rnnkit train RECIPE`` does the same. Each process finds its rank in the environment
torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK), joins the process group (NCCL on CUDA, gloo on CPU), trains on its
own shard of the data (``Task.shard``) and lets DistributedDataParallel average the gradients. Rank 0 alone
writes the run directory; every rank takes part in the few collectives the trainer needs (loss averages for
the log, the stop decision, the carried LM state gathered into checkpoints), at the same points of the loop.
"""

from rnnkit.distributed.context import SINGLE, DistContext, env_world, gather_columns, init_from_env, shutdown

__all__ = ["SINGLE", "DistContext", "env_world", "gather_columns", "init_from_env", "shutdown"]
