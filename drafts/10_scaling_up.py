# %% [markdown]
# # 10 · Scaling up
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gpt-from-scratch/gpt-course/blob/main/notebooks/10_scaling_up.ipynb)
#
# Real GPTs are this course's model with more layers, more width, more data and more hardware.
# This chapter keeps the model and the training loop of chapter 07 and switches on, one at a
# time, what makes training faster or bigger, measuring each on the hardware at hand.
#
# **Learning goals**
# - measure tokens per second and memory for each speed-up: fused attention, mixed precision,
#   `torch.compile`, a fused optimizer, data parallelism;
# - know the number formats of mixed precision (fp16, bf16) and why fp16 needs loss scaling;
# - use gradient accumulation and DistributedDataParallel, and what each does to the batch;
# - see a scaling law appear from a handful of small models trained on the same token budget;
# - launch the same training on a GPU and on several GPUs with `torchrun`.
#
# **Prerequisites:** chapter 07.
#
# **Runtime:** about 10 minutes on 2 CPU cores in full mode (mostly the benchmark table and the
# scaling-law models), under a minute in smoke mode. On a GPU the table uses the 6-layer
# GPU preset, where the speed-ups are much larger.

# %%
# Setup: in Colab, fetch the course and install its `helpers` package; locally
# (after `make lab`) helpers is already installed and this cell does nothing.
import importlib.util, subprocess, sys
if importlib.util.find_spec("helpers") is None:
    REPO = "https://github.com/gpt-from-scratch/gpt-course"
    subprocess.run(["git", "clone", "--depth", "1", REPO, "/content/gpt-course"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "/content/gpt-course[colab]"], check=True)
    sys.path.insert(0, "/content/gpt-course")

# %%
import json
import math
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from helpers.data import CharTokenizer, load_tiny_shakespeare, train_val_split
from helpers.model import GPT
from helpers.settings import REPO_ROOT, hardware, pick_device, preset, runs_dir, seed_everything, smoke_mode
from helpers.train import gpt_config_for, load_checkpoint, train

seed_everything(1337)
text = load_tiny_shakespeare()
tokenizer = CharTokenizer.from_text(text)
train_data, val_data = train_val_split(torch.tensor(tokenizer.encode(text), dtype=torch.long))
data = {"train": train_data, "val": val_data}
device = pick_device()
print(hardware(), "| device:", device)

# %% [markdown]
# ## One switch at a time
#
# `bench/scaling.py` trains the chapter-07 model for a fixed number of steps, each row adding
# one switch to the row before, each in a fresh process so nothing carries over. It prints
# tokens per second, the peak memory, the ratio to the first row, and the time of the first
# step (which includes compiling, when `torch.compile` is on).

# %%
steps = 3 if smoke_mode() else 40
command = [sys.executable, str(REPO_ROOT / "bench" / "scaling.py"), "--device", device, "--steps", str(steps)]
if smoke_mode():
    command.append("--no-compile")  # compiling alone takes about a minute on 2 cores
start = time.perf_counter()
table = subprocess.run(command, capture_output=True, text=True, check=True).stdout
print(table)
print(f"(measured in {time.perf_counter() - start:.0f} s)")

# %% [markdown]
# What each row does, and why it helps or not on a CPU:
#
# - **Fused attention** (`F.scaled_dot_product_attention`) computes softmax(QKᵀ/√d)V in one
#   kernel without storing the T × T matrix. On a GPU this is flash attention: memory drops from
#   O(T²) to O(T) and the speed-up grows with T. With a 64-character context on a CPU, the
#   attention matrix is small, so the gain is modest.
# - **bf16 autocast** runs matrix multiplications in bfloat16. GPUs (tensor cores) and CPUs with
#   AVX-512-BF16 or AMX do them 2–16 × faster than fp32; a CPU without those instructions (check
#   the hardware line above) has to convert back and forth, and can get *slower*.
# - **`torch.compile`** traces the model and generates fused kernels (LayerNorm, GELU, residual
#   adds in one pass over memory). It costs compile time up front, visible in the first-step
#   column, and pays off over long runs; that is why the course turns it on by default on GPUs
#   only.
# - **Fused AdamW** updates all parameters in one kernel instead of one per tensor: a big win on
#   GPUs, where launching thousands of tiny kernels dominates; a small one on CPUs.
# - **DDP on 2 CPU processes** splits the same two cores between two processes, each with half
#   the threads: there is no new hardware, so expect no speed-up; on N GPUs it is close to N ×.
#
# ## Mixed precision: the number formats
#
# Both 16-bit formats halve memory and bandwidth. They spend their 16 bits differently:
# fp16 has more mantissa bits (precision), bf16 keeps fp32's 8 exponent bits (range).

# %%
# NBVAL_CHECK_OUTPUT
import pandas as pd

formats = {name: torch.finfo(dtype) for name, dtype in
           (("float32", torch.float32), ("float16", torch.float16), ("bfloat16", torch.bfloat16))}
pd.DataFrame({name: {"bits": f.bits, "largest": f"{f.max:.3g}", "smallest normal": f"{f.tiny:.3g}",
                     "epsilon (precision)": f"{f.eps:.3g}"} for name, f in formats.items()}).T

# %% [markdown]
# fp16's largest number is 65,504 and its smallest normal number is about 6 × 10⁻⁵. Small
# gradients, common deep in a network, fall below that and flush to zero; bf16 reaches 10⁻³⁸
# like fp32, but with only 2–3 significant digits:

# %%
# NBVAL_CHECK_OUTPUT
grad = torch.tensor([1e-8, 3e-6, 70000.0])
print("fp32:", grad.tolist())
print("fp16:", grad.half().tolist(), "<- underflow to 0, overflow to inf")
print("bf16:", grad.bfloat16().tolist(), "<- in range, but coarse")
print("fp16 after scaling the loss by 2**16:", (grad[:2] * 2**16).half().float().div(2**16).tolist())

# %% [markdown]
# **Loss scaling** is the fix for fp16: multiply the loss by a large factor S before
# `backward()`, so every gradient is S times larger and stays representable, then divide the
# gradients by S before the optimizer step. `torch.amp.GradScaler` picks S on the fly: it
# halves S and skips the step when a gradient overflows to inf, and doubles it after a run of
# good steps. `helpers.train` uses it automatically when the preset says
# `autocast_dtype="float16"`; bf16 needs no scaler.

# %%
cfg16 = replace(preset("gpt", "cpu"), autocast_dtype="float16", max_iters=6, eval_interval=6,
                eval_iters=1, time_budget=None)
scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
model16 = GPT(gpt_config_for(cfg16, tokenizer.vocab_size))
opt16 = torch.optim.AdamW(model16.parameters(), lr=1e-3)
from helpers.data import get_batch
from helpers.train import accumulate_gradients, optimizer_step

for step in range(cfg16.max_iters):
    batch = get_batch(train_data, cfg16.block_size, cfg16.batch_size, generator=torch.Generator().manual_seed(step))
    loss = accumulate_gradients(model16, [batch], "cpu", "float16", scaler)
    optimizer_step(model16, opt16, scaler, grad_clip=1.0)
    print(f"step {step}: loss {loss:.3f}, loss scale {scaler.get_scale():.0f}")

# %% [markdown]
# ## Gradient accumulation: a big batch in small pieces
#
# When a batch does not fit in memory, split it into k micro-batches, backpropagate each loss
# divided by k, and step once: the gradients add up to exactly those of the big batch.

# %%
# NBVAL_CHECK_OUTPUT
small = replace(preset("gpt", "cpu"), n_layer=2, n_embd=32, block_size=16)
x, y = get_batch(train_data, 16, 8, generator=torch.Generator().manual_seed(0))
grads = []
for micro_batches in ([(x, y)], [(x[i:i + 2], y[i:i + 2]) for i in range(0, 8, 2)]):
    torch.manual_seed(0)
    m = GPT(gpt_config_for(small, tokenizer.vocab_size))
    accumulate_gradients(m, micro_batches, "cpu")
    grads.append(torch.cat([p.grad.flatten() for p in m.parameters()]))
print("1 batch of 8 and 4 micro-batches of 2 give the same gradients:", torch.allclose(*grads, atol=1e-6))

# %% [markdown]
# ## Data parallelism with torchrun
#
# `torchrun --nproc_per_node N` starts N copies of the program. Each copy holds the whole model
# and draws its own batches; `DistributedDataParallel` averages the gradients across copies
# inside `backward()`, so all copies take the same step. One step of N processes with batch B is
# one step with batch N·B: the **effective batch** is N·B (times the accumulation steps).
#
# The check: 2 processes with batch B should follow the same loss curve as 1 process with batch 2B.
# `helpers.train` is DDP-aware (rank 0 alone writes the checkpoint and prints) so the same CLI
# runs both ways:

# %%
cfg = preset("gpt", "cpu")
steps = 4 if smoke_mode() else 300
out = runs_dir() / "10_ddp"
common = ["--preset", "gpt", "--device", "cpu", "--max-iters", str(steps)]
runs = {
    "2 processes x batch B (DDP, gloo)": [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                          "--nproc_per_node", "2", "-m", "helpers.train", *common,
                                          "--out", str(out / "ddp")],
    "1 process x batch 2B": [sys.executable, "-m", "helpers.train", *common,
                             "--batch-size", str(2 * cfg.batch_size), "--out", str(out / "single")],
}
histories = {}
for label, command in runs.items():
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    folder = Path(command[command.index("--out") + 1])
    histories[label] = json.loads((folder / "config.json").read_text())["history"]
    print(f"{label}: final val loss {histories[label]['val_loss'][-1]:.4f} "
          f"in {time.perf_counter() - start:.0f} s")

# %%
fig, ax = plt.subplots(figsize=(7, 4))
for label, h in histories.items():
    ax.plot(h["steps"], h["val_loss"], "o-", label=label)
ax.set(xlabel="step", ylabel="validation loss", title=f"DDP vs one process, same effective batch ({2 * cfg.batch_size})")
ax.grid(alpha=0.3)
ax.legend()
plt.show()

# %% [markdown]
# The checkpoint written under DDP comes from the unwrapped model, so it loads in a single
# process with no `module.` prefix on its parameter names:

# %%
# NBVAL_CHECK_OUTPUT
ddp_model, _ = load_checkpoint(out / "ddp")
print("loads in one process:", isinstance(ddp_model, GPT),
      "| 'module.' prefixes:", sum(k.startswith("module.") for k in ddp_model.state_dict()))

# %% [markdown]
# ## A scaling law in ten minutes
#
# Kaplan et al. (2020) and Hoffmann et al. (2022) found that a language model's loss falls as a
# power law in its size when data is plentiful: a straight line on log-log axes. We train a few
# small models of growing width on the *same token budget* and plot validation loss against
# parameter count (embeddings excluded, as in those papers).

# %%
base = replace(preset("gpt"), time_budget=None, eval_iters=20 if not smoke_mode() else 2)
widths = [16, 32] if smoke_mode() else [16, 32, 48, 64, 96, 128]
token_budget = base.max_iters * base.batch_size * base.block_size // (1 if smoke_mode() else 4)
results = []
for width in widths:
    shape = replace(base, n_embd=width, n_head=4 if width % 4 == 0 else 2,
                    max_iters=token_budget // (base.batch_size * base.block_size),
                    eval_interval=10**9)
    seed_everything(0)
    model = GPT(gpt_config_for(shape, tokenizer.vocab_size))
    h = train(model, data, shape, progress=False)
    results.append((model.num_parameters(exclude_positions=True) - model.transformer.wte.weight.numel(),
                    h.val_loss[-1]))
    print(f"width {width:>3}: {results[-1][0]:>9,} non-embedding parameters, val loss {h.val_loss[-1]:.3f}")

# %%
params, losses = zip(*results)
slope, intercept = torch.tensor([[math.log(p), 1.0] for p in params]).pinverse() @ torch.tensor(
    [math.log(l) for l in losses])
fig, ax = plt.subplots(figsize=(6, 4))
ax.loglog(params, losses, "o", label="trained models")
fit = [math.exp(intercept) * p ** slope for p in params]
ax.loglog(params, fit, "--", label=f"power law: loss ∝ N^{slope:.3f}")
ax.set(xlabel="non-embedding parameters N", ylabel="validation loss",
       title=f"same budget of {token_budget:,} tokens per model")
ax.grid(alpha=0.3, which="both")
ax.legend()
plt.show()

# %% [markdown]
# On a fixed token budget the line bends at the large end: a bigger model needs more data to
# show its advantage, which is the compute-optimal trade-off Chinchilla quantified (about 20
# training tokens per parameter). At the scale of this course the smallest models are
# data-rich and the largest data-starved.
#
# ## Running on GPUs
#
# On a machine with one GPU the same command picks the GPU preset (6 layers, 6 heads, 384 wide,
# context 256, dropout 0.2, bf16 autocast, `torch.compile`, fused AdamW):
#
# ```bash
# python -m helpers.train --preset gpt --out runs/gpt-gpu
# ```
#
# On one machine with 8 GPUs, `torchrun` starts one process per GPU (NCCL between them); each
# takes the GPU of its local rank and the effective batch is 8 × 64:
#
# ```bash
# torchrun --standalone --nproc_per_node 8 -m helpers.train --preset gpt --out runs/gpt-8gpu
# ```
#
# And the benchmark table on a GPU: `python bench/scaling.py --device cuda`. The chapter-07 GPU
# preset is expected to reach a validation loss of about 1.47 (the published figure for this
# shape is 1.4697 after about 3 minutes on one A100).
#
# GPU_FIGURES
#
# ## Exercises

# %% [markdown]
# ```{exercise} The effective batch
# :label: ex-10-batch
# Write `effective_batch(batch_size, grad_accum_steps, n_processes)` returning how many sequences
# contribute to one optimizer step.
# ```

# %%
from helpers import checks

def effective_batch(batch_size, grad_accum_steps, n_processes):
    return batch_size  # your code here

checks.check_effective_batch(effective_batch)

# %% [markdown]
# ```{solution-start} ex-10-batch
# :class: dropdown
# ```

# %% jupyter={"source_hidden": true}
def effective_batch(batch_size, grad_accum_steps, n_processes):
    return batch_size * grad_accum_steps * n_processes

checks.check_effective_batch(effective_batch)

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise} Which format keeps it?
# :label: ex-10-formats
# Write `survives(value, dtype)` that says whether `value` keeps at least one significant digit
# (relative error below 10%) when stored in `dtype`. Try gradients of 1e-7 and activations of
# 1e5 in fp16 and bf16.
# ```

# %%
def survives(value, dtype):
    return True  # your code here

checks.check_survives(survives)

# %% [markdown]
# ```{solution-start} ex-10-formats
# :class: dropdown
# ```

# %% jupyter={"source_hidden": true}
def survives(value, dtype):
    stored = torch.tensor(value, dtype=torch.float32).to(dtype).float().item()
    return math.isfinite(stored) and abs(stored - value) <= 0.1 * abs(value)

checks.check_survives(survives)
for value in (1e-7, 1e5):
    print(value, {str(d): survives(value, d) for d in (torch.float16, torch.bfloat16)})

# %% [markdown]
# ```{solution-end}
# ```

# %% [markdown]
# ## Summary
#
# - Measure before you switch: each speed-up's gain depends on the hardware; the table above
#   is this machine's answer, and a GPU's is very different.
# - bf16 has fp32's range and needs no loss scaling; fp16 has more precision but needs a
#   GradScaler to keep small gradients from flushing to zero.
# - Gradient accumulation and DDP both grow the effective batch: accumulation in time, DDP in
#   space; with the same effective batch, the loss curve is the same.
# - Loss falls as a power law in model size, until the data runs out.

# %%
from helpers.settings import run_report
print(run_report())
