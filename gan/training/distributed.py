"""Data parallelism across processes started by `torchrun` (gloo on CPU, NCCL on GPU).

Every process holds a full copy of G and D, trains on its slice of the global batch and, at the
end of each training phase (G main, G reg, D main, D reg), averages its gradients with the other
processes' by hand: ONE all_reduce of all the phase's gradients flattened into a single buffer
(`sync_grads`), before the optimizer step. Starting from weights broadcast from rank 0, all copies
therefore stay identical (the run log's checksums show it).

We do not wrap the networks in torch's DistributedDataParallel, because:
- DDP averages gradients from autograd hooks that fire during backward. The R1, path-length and
  gradient penalties are gradients of gradients (`create_graph=True`, then a second backward), and
  DDP does not support reducing through such a double backward.
- The phases touch different parameter sets: a lazy-regularisation phase runs only every N steps
  and reaches other parameters than the main phase (path length trains G through ws, R1 only the
  parts of D that shape its input gradient), and a phase's module alone requires grad. DDP expects
  the same parameters to receive gradients in every backward (or find_unused_parameters and an
  extra graph traversal), and it would sync once per backward rather than once per phase.
NVIDIA's StyleGAN3 trainer likewise averages each phase's gradients with one all_reduce of a flat buffer.

Without torchrun (no WORLD_SIZE in the environment) everything here is a no-op.
"""
from __future__ import annotations

import os
from contextlib import nullcontext

import torch
import torch.distributed as dist
from torch import nn


class Dist:
    """This process's place in the job: rank, world size, device, and the collectives it needs."""

    def __init__(self, device: str = "auto"):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
        if use_cuda and not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA GPU is visible to PyTorch; use --device cpu")
        if use_cuda:
            torch.cuda.set_device(self.local_rank)
            self.device = torch.device("cuda", self.local_rank)
        else:
            self.device = torch.device("cpu")
        self.initialised_here = False
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if use_cuda else "gloo",
                                    **({"device_id": self.device} if use_cuda else {}))
            self.initialised_here = True

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def close(self) -> None:
        if self.initialised_here and dist.is_initialized():
            dist.destroy_process_group()

    # ---- collectives (identity when single-process) --------------------------------------------
    def _comm(self, t: torch.Tensor) -> torch.Tensor:
        """NCCL needs tensors on the GPU; gloo takes CPU tensors."""
        return t.to(self.device) if self.device.type == "cuda" else t.cpu()

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.world == 1:
            return t
        c = self._comm(t.detach().clone())
        dist.all_reduce(c)
        return c.to(t.device)

    def all_reduce_mean(self, t: torch.Tensor) -> torch.Tensor:
        return t if self.world == 1 else self.all_reduce_sum(t) / self.world

    def sync_grads(self, module: nn.Module) -> None:
        """Average every gradient of `module` across processes, then replace NaN/inf by finite values
        (as the official code does, so one bad batch cannot poison the weights)."""
        params = [p for p in module.parameters() if p.grad is not None]
        if not params:
            return
        if self.world > 1:
            flat = torch.cat([p.grad.flatten() for p in params])
            flat = self._comm(flat)
            dist.all_reduce(flat)
            flat = flat.to(params[0].grad.device) / self.world
            offset = 0
            for p in params:
                n = p.grad.numel()
                p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
                offset += n
        for p in params:
            torch.nan_to_num(p.grad, nan=0.0, posinf=1e5, neginf=-1e5, out=p.grad)

    def sync_buffers(self, module: nn.Module) -> None:
        """Average floating-point buffers (e.g. StyleGAN2's w_avg, tracked from each process's batch)."""
        if self.world == 1:
            return
        for b in module.buffers():
            if b.is_floating_point():
                b.copy_(self.all_reduce_mean(b))

    def broadcast_module(self, module: nn.Module) -> None:
        """Make every process's parameters and buffers equal to rank 0's."""
        if self.world == 1:
            return
        for t in list(module.parameters()) + list(module.buffers()):
            c = self._comm(t.detach().clone())
            dist.broadcast(c, src=0)
            with torch.no_grad():   # not through .data: the write must bump the version counter
                t.copy_(c.to(t.device))

    def broadcast_object(self, obj):
        """Rank 0's object on every process (sent through the process group, never through files)."""
        if self.world == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0, device=self.device if self.device.type == "cuda" else None)
        return box[0]

    def all_gather_object(self, obj) -> list:
        if self.world == 1:
            return [obj]
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def autocast_context(device: torch.device, precision: str):
    """bf16 autocast for --precision bf16 (CPU or CUDA); a no-op context for fp32."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()
