"""Chapter 09: the losses and models that turn a pretrained GPT into a (tiny) chat model.

Notation: x is a prompt, y a response of tokens y_1..y_n, pi the policy being trained (a GPT),
pi_ref the frozen supervised fine-tuned (SFT) model, r(x, y) a reward model's scalar score,
sigma the logistic function. ``ids`` (B, L) hold prompt and response in the chat format of
``helpers.alignment_data``; ``mask`` (B, L) is True on the response tokens.

Chapter 09 lives in three modules, one job each, read in the chapter's order:
``alignment_data`` (text: dialogue turns, the chat format and its masks, the labeler),
``alignment`` (models and losses: the preset, SFT, the reward model, DPO, KL, the training loop
``fit``) and ``alignment_rl`` (the PPO-style RL loop built on those). One package would only
add an ``__init__`` and longer imports; each module is read in one sitting as it is.
"""

from __future__ import annotations

import copy
import json
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from helpers.alignment_data import (
    END,
    encode_dialogues,
    encode_prompts,
    kindness,
    last_response_index,
    preference_pairs,
    response_mask,
    response_texts,
)
from helpers.atomic_io import atomic_path, atomic_write_text
from helpers.describe import Describable
from helpers.model import GPT, GPTConfig
from helpers.precision import Precision, choose_precision
from helpers.progress import progress_bar
from helpers.settings import pick_device, smoke_mode

if TYPE_CHECKING:
    from collections.abc import Callable

    from helpers.data import CharTokenizer

# --- the chapter's hyperparameters ---------------------------------------------------------------


@dataclass(frozen=True)
class AlignmentPreset(Describable):
    """Hyperparameters for chapter 09 and its companions: SFT, reward model, RL and DPO on the
    chapter-07 GPT. The defaults were tuned on the chapter-07 CPU checkpoint: reward model >= 75 %
    on held-out pairs, RL and DPO well above the SFT model's labeler score, and RL without a KL
    penalty pushed far enough (``rl_lr``) for over-optimisation to show within ``rl_steps``
    rounds. The chapter runs one seed; the companions' fields say what they repeat."""

    device: str
    smoke: bool
    # the chat window: prompt turn + response turn must fit the model's context
    prompt_chars: int = 28
    response_chars: int = 36
    # supervised fine-tuning on dialogue turns
    sft_steps: int = 300
    sft_batch_size: int = 32
    sft_lr: float = 5e-4
    # preferences: K replies to each of preference_prompts training prompts (and of
    # held_out_preference_prompts held-out ones, to test the reward model), ranked by the labeler
    preference_prompts: int = 2048
    held_out_preference_prompts: int = 512
    samples_per_prompt: int = 4
    # smoke mode only: the first planted_pairs prompts get one kind and one harsh reply in place
    # of two sampled ones, so that a model too small to write words still gives the labeler
    # something to rank and every later stage (reward model, RL, DPO) runs on real pairs
    planted_pairs: int = 0
    rm_steps: int = 300
    rm_batch_size: int = 32
    rm_lr: float = 3e-4
    # RL (PPO-style, KL penalty to the SFT model)
    rl_steps: int = 150
    rl_prompts_per_step: int = 16
    rl_lr: float = 1.2e-4  # high enough for beta = 0 to overshoot the labeler within rl_steps
    kl_coef: float = 0.3
    clip_range: float = 0.2
    ppo_epochs: int = 2
    # DPO on the same preference pairs
    dpo_steps: int = 250
    dpo_batch_size: int = 32
    dpo_beta: float = 0.5
    dpo_lr: float = 5e-5
    # evaluation on held-out prompts: the RL curves (eval_prompts x 1 reply, every eval_every
    # rounds) and the final scores (eval_prompts x samples_per_prompt replies)
    eval_prompts: int = 128
    eval_every: int = 10
    seed: int = 0  # the chapter's one seed: preference replies, batches, dropout, RL's samples
    # companion 09a (over-optimisation): RL without a KL penalty on each of overopt_seeds, every
    # seed with its own preference replies and reward model; each evaluation draws
    # overopt_samples replies to every prompt of two disjoint halves of the held-out prompts
    overopt_seeds: tuple[int, ...] = (0, 1, 2, 3)
    overopt_samples: int = 2
    # companion 09b (RL against DPO): one reward model, RL at each of sweep_kl_coefs and DPO at
    # each of sweep_dpo_betas; DPO's policy is measured every dpo_eval_every steps
    sweep_kl_coefs: tuple[float, ...] = (1.0, 0.3, 0.1, 0.03)
    sweep_dpo_betas: tuple[float, ...] = (2.0, 0.5, 0.1, 0.03)
    dpo_eval_every: int = 50


# Smoke mode: a few steps of each stage, in the smoke GPT's 32-character context.
_ALIGNMENT_SMOKE = dict(
    prompt_chars=14,
    response_chars=18,
    sft_steps=10,
    sft_batch_size=8,
    preference_prompts=32,
    held_out_preference_prompts=16,
    rm_steps=10,
    rm_batch_size=8,
    rl_steps=4,
    rl_prompts_per_step=4,
    dpo_steps=4,
    dpo_batch_size=8,
    eval_prompts=16,
    planted_pairs=4,
    eval_every=2,
    overopt_seeds=(0, 1),
    overopt_samples=1,
    sweep_kl_coefs=(0.3, 0.0),
    sweep_dpo_betas=(0.5,),
    dpo_eval_every=2,
)


def alignment_preset(device: str | None = None) -> AlignmentPreset:
    """The chapter 09 hyperparameters on ``device`` (default: the best one found), shrunk in smoke
    mode. The models are tiny, so one recipe serves every device; a GPU only finishes sooner."""
    device = device or pick_device()
    values = _ALIGNMENT_SMOKE if smoke_mode() else {}
    return AlignmentPreset(device=device, smoke=smoke_mode(), **values)


# --- log-probabilities and supervised fine-tuning ------------------------------------------------


def next_token_logits(model: GPT, ids: torch.Tensor) -> torch.Tensor:
    """Logits (B, L-1, V) that predict ids[:, 1:] from the tokens before each."""
    return model(ids[:, :-1])[0]


def token_logprobs(model: GPT, ids: torch.Tensor) -> torch.Tensor:
    """log pi(ids[t+1] | ids[:t+1]) for every position: (B, L-1)."""
    return logprobs_of_next(next_token_logits(model, ids), ids)


def logprobs_of_next(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """The log-probability that ``logits`` (B, L-1, V) give each actual next token ids[:, 1:]:
    (B, L-1)."""
    logp = F.log_softmax(logits.float(), dim=-1)  # (B, L-1, V)
    return logp.gather(-1, ids[:, 1:, None]).squeeze(-1)  # (B, L-1)


def sequence_logprob(model: GPT, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log pi(y | x) = sum over response tokens t of log pi(y_t | x, y_<t): (B,)."""
    return (token_logprobs(model, ids) * mask[:, 1:]).sum(dim=1)


def sft_loss(model: GPT, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Supervised fine-tuning loss: cross-entropy on the response tokens only,
    L = -(1 / N) * sum over response tokens t of log pi(y_t | x, y_<t), N = number of them.
    The prompt is context, not something the model should learn to write."""
    logits = next_token_logits(model, ids)  # (B, L-1, V)
    nll = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")  # (B, L-1)
    target_mask = mask[:, 1:].float()  # target t+1 is scored when it is a response token
    return (nll * target_mask).sum() / target_mask.sum()


# --- sampling replies, and the labeler's preferences -------------------------------------------


@torch.no_grad()
def sample_responses(
    model: GPT,
    prompts: torch.Tensor,
    response_chars: int,
    end_id: int,
    generator: torch.Generator | None = None,
    chunk: int = 512,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample one reply per prompt row (B, P) at temperature 1, ``chunk`` rows at a time: ids
    (B, P + response_chars) and the response mask (True up to and including the first
    end-of-turn token)."""
    ids = torch.cat(
        [model.generate(part, response_chars, generator=generator) for part in prompts.split(chunk)]
    )  # (B, P + R)
    return ids, response_mask(ids, prompts.shape[1], end_id)


@dataclass
class Preferences:
    """K replies to each of N prompts (rows p*K .. p*K + K-1 answer prompt p), the labeler's
    scores (N, K), and the pairs it ranked: ``pairs[i] = (chosen row, rejected row)``."""

    ids: torch.Tensor  # (N*K, L)
    mask: torch.Tensor  # (N*K, L)
    replies: list[str]
    scores: torch.Tensor  # (N, K)
    pairs: torch.Tensor  # (n_pairs, 2)

    def side(self, which: int, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ids and mask of the chosen (which=0) or rejected (which=1) reply of pairs ``rows``."""
        picked = self.pairs[rows, which]
        return self.ids[picked], self.mask[picked]


HELD_OUT_SEED = 2  # the held-out preference pairs are sampled once, the same test for every seed

PLANTED_REPLIES = ("Good, sweet love.", "Thou foul fool!")  # the labeler: +3 and -2


def plant_replies(
    tokenizer: CharTokenizer,
    prompts: list[str],
    cfg: AlignmentPreset,
    ids: torch.Tensor,
    mask: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``ids`` and ``mask`` (N*K, L) with replies 0 and 1 of the first ``cfg.planted_pairs``
    prompts replaced by ``PLANTED_REPLIES`` (see ``AlignmentPreset.planted_pairs``)."""
    k, n = cfg.samples_per_prompt, min(cfg.planted_pairs, len(prompts))
    turns = [(prompts[i], reply) for i in range(n) for reply in PLANTED_REPLIES]
    planted_ids, planted_mask = encode_dialogues(
        tokenizer, turns, cfg.prompt_chars, cfg.response_chars
    )
    rows = torch.tensor([i * k + j for i in range(n) for j in range(len(PLANTED_REPLIES))])
    ids, mask = ids.clone(), mask.clone()
    ids[rows], mask[rows] = planted_ids.to(ids.device), planted_mask.to(mask.device)
    return ids, mask


def collect_preferences(
    model: GPT, tokenizer: CharTokenizer, prompts: list[str], cfg: AlignmentPreset, seed: int = 0
) -> Preferences:
    """Sample ``cfg.samples_per_prompt`` replies to each prompt from ``model`` and let the labeler
    (``kindness``) rank every two replies to the same prompt (ties give no pair)."""
    k = cfg.samples_per_prompt
    prompt_ids = encode_prompts(tokenizer, prompts, cfg.prompt_chars).repeat_interleave(k, dim=0)
    prompt_ids = prompt_ids.to(next(model.parameters()).device)
    ids, mask = sample_responses(
        model,
        prompt_ids,
        cfg.response_chars,
        tokenizer.encode(END)[0],
        torch.Generator().manual_seed(seed),
    )
    if cfg.planted_pairs:
        ids, mask = plant_replies(tokenizer, prompts, cfg, ids, mask)
    replies = response_texts(tokenizer, ids, mask)
    scores = torch.tensor([kindness(r) for r in replies]).view(len(prompts), k)  # (N, K)
    pairs = torch.tensor(preference_pairs(scores), dtype=torch.long).view(-1, 2)
    return Preferences(ids, mask, replies, scores, pairs)


# --- the reward model --------------------------------------------------------------------------


class RewardModel(nn.Module):
    """r(x, y): a GPT body (a copy of the given model's ``transformer``, the GPT without its output
    layer) reads prompt and response; a linear head turns the hidden state at the response's last
    token into one number.
    Only differences of rewards mean anything (see :func:`bradley_terry_loss`)."""

    def __init__(self, gpt: GPT):
        super().__init__()
        self.config = gpt.config
        self.transformer = copy.deepcopy(gpt.transformer).requires_grad_(True)
        self.head = nn.Linear(gpt.config.n_embd, 1)
        nn.init.zeros_(self.head.weight)  # every reply starts with reward 0
        nn.init.zeros_(self.head.bias)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.transformer(ids)  # (B, L, C)
        last = h[torch.arange(ids.shape[0], device=ids.device), last_response_index(mask)]  # (B, C)
        return self.head(last).squeeze(-1)  # (B,)


def save_reward_model(directory: str | Path, model: RewardModel) -> None:
    """``reward_model.safetensors`` (weights) and ``reward_model.json`` (the GPT config of its
    body) in ``directory``, each written atomically."""
    weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(Path(directory) / "reward_model.safetensors") as tmp:
        save_file(weights, tmp)
    atomic_write_text(
        Path(directory) / "reward_model.json",
        json.dumps({"model_config": model.config.to_dict()}, indent=2),
    )


def load_reward_model(directory: str | Path, device: str = "cpu") -> RewardModel:
    """The reward model that :func:`save_reward_model` wrote into ``directory``."""
    meta = json.loads((Path(directory) / "reward_model.json").read_text(encoding="utf-8"))
    model = RewardModel(GPT(GPTConfig(**meta["model_config"])))
    model.load_state_dict(load_file(Path(directory) / "reward_model.safetensors"))
    return model.to(device)


@torch.no_grad()
def preference_accuracy(reward_model: RewardModel, prefs: Preferences, chunk: int = 512) -> float:
    """The share of pairs where the reward model scores the chosen reply higher (nan: no pairs)."""
    rows = torch.arange(len(prefs.pairs))
    wins = [
        reward_model(*prefs.side(0, part)) > reward_model(*prefs.side(1, part))
        for part in rows.split(chunk)
    ]
    return torch.cat(wins).float().mean().item() if wins else float("nan")


def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """The Bradley-Terry model says P(chosen preferred over rejected) = sigma(r_c - r_r);
    the loss is its negative log-likelihood, mean over pairs: -log sigma(r_c - r_r)."""
    return -F.logsigmoid(r_chosen - r_rejected).mean()


# --- direct preference optimisation ---------------------------------------------------------------


@torch.no_grad()
def pair_logprobs(
    model: GPT, prefs: Preferences, chunk: int = 512
) -> tuple[torch.Tensor, torch.Tensor]:
    """log pi(y_c | x) and log pi(y_r | x) for every pair, (n_pairs,) each. DPO needs them once
    for the frozen reference."""
    rows = torch.arange(len(prefs.pairs)).split(chunk)
    empty = [torch.zeros(0, device=prefs.ids.device)]
    chosen = torch.cat([sequence_logprob(model, *prefs.side(0, r)) for r in rows] or empty)
    rejected = torch.cat([sequence_logprob(model, *prefs.side(1, r)) for r in rows] or empty)
    return chosen, rejected


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """DPO: -log sigma(beta * [(log pi(y_c|x) - log pi_ref(y_c|x))
                                - (log pi(y_r|x) - log pi_ref(y_r|x))]), mean over pairs.
    Arguments are sequence log-probs (B,). It is the Bradley-Terry loss with the implicit reward
    r(x, y) = beta * log(pi(y|x) / pi_ref(y|x)): the policy is its own reward model."""
    margin = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)  # (B,)
    return -F.logsigmoid(beta * margin).mean()


# --- KL to the reference -------------------------------------------------------------------------


def token_kl(policy_logits: torch.Tensor, ref_logits: torch.Tensor) -> torch.Tensor:
    """KL(pi || pi_ref) of the next-token distributions at each position:
    sum over the vocabulary v of pi(v) * (log pi(v) - log pi_ref(v)). (..., V) -> (...)."""
    logp = F.log_softmax(policy_logits.float(), dim=-1)
    logq = F.log_softmax(ref_logits.float(), dim=-1)
    return (logp.exp() * (logp - logq)).sum(dim=-1)


@torch.no_grad()
def kl_to_reference(
    policy: GPT, reference: GPT, ids: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """KL of the policy's reply from the reference's, in nats per reply, for replies sampled from
    the policy: the sum of :func:`token_kl` over the response tokens, (B,). Its mean over replies
    sampled from pi estimates KL(pi(.|x) || pi_ref(.|x)) of whole replies; it is exactly 0 when
    the two models are the same."""
    return reply_kl(next_token_logits(policy, ids), next_token_logits(reference, ids), mask)


def reply_kl(
    policy_logits: torch.Tensor, ref_logits: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """:func:`token_kl` summed over each reply's response tokens: (B,) from logits (B, L-1, V)."""
    return (token_kl(policy_logits, ref_logits) * mask[:, 1:]).sum(dim=1)


# --- a generic training loop ----------------------------------------------------------------------


class TrainingPrecision:
    """How chapter 09's loops run their forward passes and steps on a device, from
    :func:`helpers.precision.choose_precision`: bf16 autocast on CUDA capability >= 8.0, fp16
    autocast with a GradScaler on 7.x, plain fp32 on a CPU or MPS (so CPU runs are unchanged)."""

    def __init__(self, device: str | torch.device, choice: Precision | None = None):
        self.device = torch.device(device).type
        self.choice = choice or choose_precision(self.device)
        use_scaler = self.choice.grad_scaler and self.device == "cuda"
        self.scaler = torch.amp.GradScaler("cuda") if use_scaler else None

    def autocast(self):
        """The forward passes' context: autocast to the chosen dtype, or nothing for fp32."""
        if self.choice.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device, dtype=self.choice.dtype)

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, params: list) -> None:
        """Backward, clip the gradient norm at 1, step (through the GradScaler in fp16)."""
        optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        self.scaler.step(optimizer)  # skipped when the scaled gradients overflowed
        self.scaler.update()


def fit(
    model: nn.Module,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    n_examples: int,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int = 0,
    desc: str = "",
    dropout: bool = True,
    after_step: Callable[[int], None] | None = None,
) -> list[float]:
    """AdamW on ``batch_loss(indices)`` for ``steps`` batches of random example indices, with
    gradient clipping at norm 1, in the device's :class:`TrainingPrecision` (fp32 on a CPU);
    returns the loss of each step. SFT, the reward model and DPO
    differ only in their ``batch_loss``. With no examples (say, a labeler that found no pair to
    rank) it says so and leaves the model as it is.

    ``dropout=False`` trains in eval mode. DPO needs it: its loss compares the policy's
    log-probabilities with the reference's, computed without dropout, so at step 0 (policy ==
    reference) the implicit reward must be exactly 0, not dropout noise.

    ``after_step(step)``, if given, is called after each step (1, 2, ...), to measure the model
    on the way."""
    if n_examples == 0:
        print(f"{desc or 'fit'}: no examples to train on; the model is left as it is")
        return []
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    precision = TrainingPrecision(params[0].device)
    model.train(dropout)
    losses = []
    with progress_bar(steps, desc=desc, unit="step") as bar:
        for _ in range(steps):
            idx = torch.randint(n_examples, (batch_size,), generator=gen)  # (batch_size,)
            with precision.autocast():
                loss = batch_loss(idx)
            precision.step(loss, optimizer, params)
            losses.append(loss.item())
            bar.update()
            if after_step is not None:
                after_step(len(losses))
    model.eval()
    return losses
