"""Chapter 09: reinforcement learning from a reward model, with a KL penalty to the SFT model.

The algorithm is PPO's clipped objective with two simplifications that keep it small and that
GRPO and RLOO also make: no learned value function (the baseline of a reply is the mean of the
K replies sampled for the same prompt), and one reward per reply (not per token).

Per round: sample K replies y for each prompt x from pi_old (the policy as it is now), then

    R(x, y) = r(x, y) - kl_coef * sum_t [log pi_old(y_t | .) - log pi_ref(y_t | .)]
    A(x, y) = (R(x, y) - mean of R over the K replies to x) / std of those differences
    loss    = -mean over response tokens of min(ratio_t * A, clip(ratio_t, 1 - eps, 1 + eps) * A)

with ratio_t = pi(y_t | .) / pi_old(y_t | .), for ``ppo_epochs`` gradient steps on the same
replies. The KL term sits inside the reward, as in InstructGPT: the sampled log-ratio's mean is
an unbiased estimate of KL(pi || pi_ref), so maximising R trades reward against drift.

Chapter 09 lives in three modules, one job each, read in the chapter's order:
``alignment_data`` (text: dialogue turns, the chat format and its masks, the labeler),
``alignment`` (models and losses: the preset, SFT, the reward model, DPO, KL, the training loop
``fit``) and ``alignment_rl`` (the PPO-style RL loop built on those, measurement with
intervals, and the stages as functions that the companion notebooks run on several seeds and
several betas side by side). One package would only add an
``__init__`` and longer imports; each module is read in one sitting as it is.
"""

from __future__ import annotations

import copy
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import repeat
from typing import TYPE_CHECKING, Any

import torch

from helpers.alignment import (
    HELD_OUT_SEED,
    RewardModel,
    TrainingPrecision,
    bradley_terry_loss,
    collect_preferences,
    dpo_loss,
    fit,
    kl_to_reference,
    logprobs_of_next,
    next_token_logits,
    pair_logprobs,
    preference_accuracy,
    reply_kl,
    sample_responses,
    sequence_logprob,
    sft_loss,
    token_logprobs,
)
from helpers.alignment_data import (
    END,
    dialogue_turns,
    encode_dialogues,
    kindness,
    response_texts,
    word_variety,
)
from helpers.model import GPT, GPTConfig
from helpers.progress import progress_bar
from helpers.settings import seed_everything

if TYPE_CHECKING:
    from collections.abc import Callable

    from helpers.alignment import AlignmentPreset, Preferences
    from helpers.data import CharTokenizer


def group_advantages(total: torch.Tensor, k: int) -> torch.Tensor:
    """A(x, y) for rewards ``total`` (B*K,) of K consecutive replies per prompt: each reply's
    reward minus the mean of its prompt's K replies (the baseline), then scaled to unit standard
    deviation over the batch so the step size does not depend on the reward's scale."""
    grouped = total.view(-1, k)  # (B, K)
    advantage = (grouped - grouped.mean(dim=1, keepdim=True)).view(-1)  # (B*K,)
    return advantage / (advantage.std() + 1e-8)


def ppo_clip_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantage: torch.Tensor,
    mask: torch.Tensor,
    clip_range: float,
) -> torch.Tensor:
    """PPO's clipped surrogate, as a loss to minimise: with ratio_t = exp(logp_t - old_logp_t),
    -mean over response tokens of min(ratio_t * A, clip(ratio_t, 1 - eps, 1 + eps) * A).
    logp, old_logp, mask: (N, T); advantage: (N,). Once a token's probability has moved more
    than eps away from where it was when sampled, in the direction A asks for, its gradient is 0."""
    ratio = torch.exp(logp - old_logp)  # (N, T)
    a = advantage[:, None]  # (N, 1)
    surrogate = torch.minimum(ratio * a, ratio.clamp(1 - clip_range, 1 + clip_range) * a)
    return -(surrogate * mask).sum() / mask.sum()


def rl_step(
    policy: GPT,
    reference: GPT,
    reward_model: RewardModel,
    optimizer: torch.optim.Optimizer,
    prompts: torch.Tensor,
    cfg: AlignmentPreset,
    end_id: int,
    generator: torch.Generator | None = None,
    precision: TrainingPrecision | None = None,
) -> dict:
    """One PPO round (see the module docstring) on ``prompts`` (B, P), K = cfg.samples_per_prompt
    replies each. Returns the round's mean reward r, mean KL (nats per reply) and loss. The update
    runs in ``precision`` (default: fp32, as chapter 09 writes the round out)."""
    precision = precision or TrainingPrecision("cpu")
    k = cfg.samples_per_prompt
    ids, mask = sample_responses(
        policy, prompts.repeat_interleave(k, dim=0), cfg.response_chars, end_id, generator
    )  # (B*K, L)
    m = mask[:, 1:].float()  # (B*K, L-1): which next-token predictions are response tokens
    with torch.no_grad():
        reward = reward_model(ids, mask)  # (B*K,)
        old_logits, ref_logits = next_token_logits(policy, ids), next_token_logits(reference, ids)
        old_logp = logprobs_of_next(old_logits, ids)  # (B*K, L-1)
        ref_logp = logprobs_of_next(ref_logits, ids)
        log_ratio = ((old_logp - ref_logp) * m).sum(dim=1)  # (B*K,): sampled KL estimate
        advantage = group_advantages(reward - cfg.kl_coef * log_ratio, k)  # (B*K,)
        kl = reply_kl(old_logits, ref_logits, mask)  # (B*K,): exact per-token KL, summed
    # the policy stays in eval mode: with dropout on, pi and pi_old would differ by noise alone
    params = [p for p in policy.parameters() if p.requires_grad]
    for _ in range(cfg.ppo_epochs):
        with precision.autocast():
            logp = token_logprobs(policy, ids)  # (B*K, L-1), with gradients this time
        loss = ppo_clip_loss(logp, old_logp, advantage, m, cfg.clip_range)
        precision.step(loss, optimizer, params)
    return {"reward": reward.mean().item(), "kl": kl.mean().item(), "loss": loss.item()}


# --- measuring a policy on held-out prompts, with intervals ------------------------------------


@torch.no_grad()
def score_replies(
    policy: GPT,
    reference: GPT,
    reward_model: RewardModel | None,
    prompts: torch.Tensor,
    tokenizer: CharTokenizer,
    response_chars: int,
    samples: int = 1,
    seed: int = 0,
    chunk: int = 512,
) -> dict:
    """Sample ``samples`` replies to each of the N prompts (N, P) with a fixed seed and score each
    reply: the labeler's score (kindness), word variety, and (unless ``reward_model`` is None)
    the reward model's score and the KL to the reference in nats per reply, each a tensor
    (N, samples); ``replies`` holds the texts."""
    end_id = tokenizer.encode(END)[0]
    ids, mask = sample_responses(
        policy,
        prompts.repeat_interleave(samples, dim=0),
        response_chars,
        end_id,
        torch.Generator().manual_seed(seed),
    )  # (N*samples, L)
    replies = response_texts(tokenizer, ids, mask)
    rows = list(zip(ids.split(chunk), mask.split(chunk), strict=True))
    shape = (len(prompts), samples)
    scores = {
        "labeler": torch.tensor([kindness(r) for r in replies], dtype=torch.float).view(shape),
        "variety": torch.tensor([word_variety(r) for r in replies]).view(shape),
        "replies": replies,
    }
    if reward_model is None:
        return scores
    return scores | {
        "reward": torch.cat([reward_model(i, m) for i, m in rows]).cpu().view(shape),
        "kl": torch.cat([kl_to_reference(policy, reference, i, m) for i, m in rows])
        .cpu()
        .view(shape),
    }


def mean_interval(per_reply: torch.Tensor) -> tuple[float, float]:
    """The mean of ``per_reply`` (N prompts, K replies each) and the half-width of its 95%
    interval, 1.96 standard errors. The prompts are the independent draws (two replies to one
    prompt are not), so the standard error is that of the N per-prompt means."""
    per_prompt = per_reply.float().mean(dim=1)  # (N,)
    half = 1.96 * per_prompt.std() / len(per_prompt) ** 0.5 if len(per_prompt) > 1 else 0.0
    return per_prompt.mean().item(), float(half)


@dataclass
class RLHistory:
    """One entry per RL round (train_*) and per evaluation on held-out prompts (eval_*: the mean,
    and the half-width of its 95% interval in eval_*_half). ``snapshots`` holds the policy's
    weights at each evaluation round when :func:`train_rl` is asked to keep them."""

    kl_coef: float
    train_reward: list[float] = field(default_factory=list)
    train_kl: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    eval_labeler: list[float] = field(default_factory=list)
    eval_labeler_half: list[float] = field(default_factory=list)
    eval_reward: list[float] = field(default_factory=list)
    eval_reward_half: list[float] = field(default_factory=list)
    eval_kl: list[float] = field(default_factory=list)
    eval_kl_half: list[float] = field(default_factory=list)
    snapshots: list[dict[str, torch.Tensor]] = field(default_factory=list, repr=False)


def train_rl(
    policy: GPT,
    reference: GPT,
    reward_model: RewardModel,
    train_prompts: torch.Tensor,
    eval_prompts: torch.Tensor | None,
    tokenizer: CharTokenizer,
    cfg: AlignmentPreset,
    kl_coef: float,
    seed: int = 0,
    keep_snapshots: bool = False,
) -> RLHistory:
    """``cfg.rl_steps`` rounds of :func:`rl_step` with the given ``kl_coef``, each on
    ``cfg.rl_prompts_per_step`` random training prompts. Every ``cfg.eval_every`` rounds (and at
    the end) the policy is measured on one reply to each of ``eval_prompts`` (None: not measured)
    with :func:`score_replies`, and its weights are kept if ``keep_snapshots``."""
    cfg = replace(cfg, kl_coef=kl_coef)
    end_id = tokenizer.encode(END)[0]
    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=cfg.rl_lr, weight_decay=0.0)
    precision = TrainingPrecision(next(policy.parameters()).device)  # fp32 on a CPU
    history = RLHistory(kl_coef=kl_coef)

    def evaluate(step: int) -> None:
        history.eval_steps.append(step)
        if keep_snapshots:
            history.snapshots.append(
                {k: v.detach().cpu().clone() for k, v in policy.state_dict().items()}
            )
        if eval_prompts is None:
            return
        scores = score_replies(
            policy,
            reference,
            reward_model,
            eval_prompts,
            tokenizer,
            cfg.response_chars,
            1,
            seed + 1,
        )
        for key in ("labeler", "reward", "kl"):
            mean, half = mean_interval(scores[key])
            getattr(history, f"eval_{key}").append(mean)
            getattr(history, f"eval_{key}_half").append(half)

    with progress_bar(cfg.rl_steps, desc=f"RL, kl_coef={kl_coef}", unit="round") as bar:
        for step in range(cfg.rl_steps):
            if step % cfg.eval_every == 0:
                evaluate(step)
            rows = torch.randint(len(train_prompts), (cfg.rl_prompts_per_step,), generator=gen)
            stats = rl_step(
                policy,
                reference,
                reward_model,
                optimizer,
                train_prompts[rows],
                cfg,
                end_id,
                gen,
                precision,
            )
            history.train_reward.append(stats["reward"])
            history.train_kl.append(stats["kl"])
            bar.update()
        evaluate(cfg.rl_steps)  # and once more after the last round
    return history


def rl_name(kl_coef: float) -> str:
    return f"RL (β = {kl_coef:g})"


def dpo_name(beta: float) -> str:
    return f"DPO (β = {beta:g})"


@torch.no_grad()
def final_scores(
    models: dict[str, GPT],
    reference: GPT,
    reward_model: RewardModel,
    eval_prompts: torch.Tensor,
    tokenizer: CharTokenizer,
    cfg: AlignmentPreset,
) -> dict[str, dict[str, float]]:
    """Each model's :func:`score_replies` on ``cfg.samples_per_prompt`` replies to each held-out
    prompt, sampled with one fixed seed (3) for every model: the mean of each measure, and the
    half-width of the 95% interval (``±``) of the labeler's score and of the KL."""
    table = {}
    for name, model in models.items():
        s = score_replies(
            model,
            reference,
            reward_model,
            eval_prompts,
            tokenizer,
            cfg.response_chars,
            cfg.samples_per_prompt,
            seed=3,
        )
        (labeler, labeler_half), (kl, kl_half) = mean_interval(s["labeler"]), mean_interval(s["kl"])
        table[name] = {
            "labeler score": labeler,
            "labeler ±": labeler_half,
            "reward model": mean_interval(s["reward"])[0],
            "KL to SFT": kl,
            "KL ±": kl_half,
            "word variety": mean_interval(s["variety"])[0],
        }
    return table


# --- the stages as functions, for the companions that repeat them ------------------------------


def train_reward_model(
    sft: GPT, prefs: Preferences, cfg: AlignmentPreset, seed: int = 0
) -> RewardModel:
    """A :class:`RewardModel` on ``sft``'s body, trained with the Bradley-Terry loss on
    ``prefs``, as chapter 09 trains it in the open; returned frozen."""
    seed_everything(seed)  # the head's dropout, as in the chapter's cells
    reward_model = RewardModel(sft).to(cfg.device)
    fit(
        reward_model,
        lambda rows: bradley_terry_loss(
            reward_model(*prefs.side(0, rows)), reward_model(*prefs.side(1, rows))
        ),
        len(prefs.pairs),
        cfg.rm_steps,
        cfg.rm_batch_size,
        cfg.rm_lr,
        seed=seed,
    )
    return reward_model.requires_grad_(False)


def train_dpo(
    reference: GPT,
    prefs: Preferences,
    cfg: AlignmentPreset,
    seed: int = 0,
    beta: float | None = None,
    snapshot_every: int | None = None,
) -> tuple[GPT, dict[int, dict[str, torch.Tensor]]]:
    """A copy of ``reference`` trained with the DPO loss (``beta``, default ``cfg.dpo_beta``) on
    ``prefs``, dropout off, as chapter 09 does it in the open; and its weights at step 0 and every
    ``snapshot_every`` steps ({} if None), keyed by step."""
    beta = cfg.dpo_beta if beta is None else beta
    ref_chosen, ref_rejected = pair_logprobs(reference, prefs)
    policy = copy.deepcopy(reference).requires_grad_(True)
    snapshots = {}

    def keep(step: int) -> None:
        if snapshot_every and (step % snapshot_every == 0 or step == cfg.dpo_steps):
            snapshots[step] = {k: v.detach().cpu().clone() for k, v in policy.state_dict().items()}

    def batch_loss(rows: torch.Tensor) -> torch.Tensor:
        return dpo_loss(
            sequence_logprob(policy, *prefs.side(0, rows)),
            sequence_logprob(policy, *prefs.side(1, rows)),
            ref_chosen[rows],
            ref_rejected[rows],
            beta,
        )

    keep(0)
    fit(
        policy,
        batch_loss,
        len(prefs.pairs),
        cfg.dpo_steps,
        cfg.dpo_batch_size,
        cfg.dpo_lr,
        seed=seed,
        desc=f"DPO, beta={beta:g}",
        dropout=False,
        after_step=keep,
    )
    return policy.requires_grad_(False), snapshots


def sft_for_companions(cfg: AlignmentPreset) -> tuple[GPT, CharTokenizer, list, list]:
    """Chapter 09's stages 1 and 2 as the chapter runs them: chapter 07's checkpoint (trained
    now with the ``gpt`` preset if it is missing) fine-tuned on the training dialogue turns.
    Returns the SFT model, the tokenizer, and the training and held-out turns."""
    from helpers.data import CharTokenizer, load_tiny_shakespeare, train_val_split
    from helpers.settings import runs_dir
    from helpers.train import load_checkpoint, preset, train

    text = load_tiny_shakespeare()
    pretrained_dir = runs_dir() / "07_gpt"
    if not (pretrained_dir / "model.safetensors").exists():
        gpt_cfg = preset("gpt")
        tokenizer = CharTokenizer.from_text(text)
        train_data, val_data = train_val_split(torch.tensor(tokenizer.encode(text)))
        model = GPT(replace(gpt_cfg.model, vocab_size=tokenizer.vocab_size))
        data = {"train": train_data, "val": val_data}
        train(model, data, gpt_cfg, checkpoint_dir=pretrained_dir, tokenizer=tokenizer)
    pretrained, tokenizer = load_checkpoint(pretrained_dir, device=cfg.device)
    turns = dialogue_turns(text)
    split = int(0.9 * len(turns))
    ids, mask = encode_dialogues(tokenizer, turns[:split], cfg.prompt_chars, cfg.response_chars)
    ids, mask = ids.to(cfg.device), mask.to(cfg.device)
    sft = copy.deepcopy(pretrained).requires_grad_(True)
    seed_everything(1337)
    fit(
        sft,
        lambda rows: sft_loss(sft, ids[rows], mask[rows]),
        len(ids),
        cfg.sft_steps,
        cfg.sft_batch_size,
        cfg.sft_lr,
        desc="SFT",
    )
    return sft.eval().requires_grad_(False), tokenizer, turns[:split], turns[split:]


@dataclass
class RecipeInputs:
    """What every run of a companion starts from: the SFT model (weights and config, so that a
    worker process can rebuild it), the tokenizer, the prompts of each stage, named sets of
    held-out prompts to measure policies on (``eval_sets``) and the preset; for runs that share
    one reward model, its weights and the pairs it was trained on."""

    sft_state: dict[str, torch.Tensor]
    model_config: GPTConfig
    tokenizer: CharTokenizer
    preference_prompts: list[str]  # ranked by the labeler to train a reward model
    held_out_prompts: list[str]  # ranked once (HELD_OUT_SEED): the same test for every seed
    train_prompts: torch.Tensor  # (N, prompt_chars): RL's prompts
    eval_sets: dict[str, torch.Tensor]  # name -> (M, prompt_chars) held-out prompts
    cfg: AlignmentPreset
    reward_state: dict[str, torch.Tensor] | None = None
    prefs: Preferences | None = None

    def sft_model(self) -> GPT:
        model = GPT(self.model_config).to(self.cfg.device)
        model.load_state_dict(self.sft_state)
        return model.eval().requires_grad_(False)

    def reward_model(self) -> RewardModel:
        model = RewardModel(self.sft_model()).to(self.cfg.device)
        model.load_state_dict(self.reward_state)
        return model.eval().requires_grad_(False)


def score_snapshots(
    snapshots: list[dict[str, torch.Tensor]],
    inputs: RecipeInputs,
    reward_model: RewardModel,
    eval_set: str,
    samples: int,
    seed: int,
) -> dict[str, torch.Tensor]:
    """:func:`score_replies` of each snapshot on ``inputs.eval_sets[eval_set]``, one sampling seed
    for all of them: each measure stacked, (snapshots, prompts, samples), and ``replies`` (a list
    per snapshot). With ``reward_model`` None, the labeler's score and word variety only."""
    sft, policy = inputs.sft_model(), inputs.sft_model()
    scored = []
    for weights in snapshots:
        policy.load_state_dict(weights)
        scored.append(
            score_replies(
                policy,
                sft,
                reward_model,
                inputs.eval_sets[eval_set],
                inputs.tokenizer,
                inputs.cfg.response_chars,
                samples,
                seed,
            )
        )
    stacked = {key: torch.stack([s[key] for s in scored]) for key in scored[0] if key != "replies"}
    return stacked | {"replies": [s["replies"] for s in scored]}


@dataclass
class OverOptimisationRun:
    """Companion 09a, one seed: the reward model's held-out accuracy, the RL rounds at which the
    policy was measured, and its scores there on each evaluation set (name -> measure ->
    (rounds, prompts, replies))."""

    seed: int
    reward_model_accuracy: float
    steps: list[int]
    scores: dict[str, dict[str, torch.Tensor]]


def overoptimisation_run(seed: int, inputs: RecipeInputs) -> OverOptimisationRun:
    """Stages 3 and 4 on one seed with no KL penalty: preference replies and a reward model of
    the seed's own, RL with ``kl_coef = 0``, and the policy of every evaluation round scored on
    each of ``inputs.eval_sets`` (one sampling seed per set): on the first set the labeler's
    score only, on the others the reward model's score and the KL too."""
    cfg, tokenizer = inputs.cfg, inputs.tokenizer
    sft = inputs.sft_model()
    prefs = collect_preferences(sft, tokenizer, inputs.preference_prompts, cfg, seed=seed)
    held = collect_preferences(sft, tokenizer, inputs.held_out_prompts, cfg, seed=HELD_OUT_SEED)
    reward_model = train_reward_model(sft, prefs, cfg, seed)
    policy = copy.deepcopy(sft).requires_grad_(True)
    history = train_rl(
        policy,
        sft,
        reward_model,
        inputs.train_prompts,
        None,
        tokenizer,
        cfg,
        0.0,
        seed,
        keep_snapshots=True,
    )
    # the first set (the selection set) is only read for the labeler's score
    scores = {
        name: score_snapshots(
            history.snapshots,
            inputs,
            reward_model if i else None,
            name,
            cfg.overopt_samples,
            1000 * seed + i,
        )
        for i, name in enumerate(inputs.eval_sets)
    }
    return OverOptimisationRun(
        seed, preference_accuracy(reward_model, held), history.eval_steps, scores
    )


@dataclass
class SweepRun:
    """Companion 09b, one method at one beta: the steps (RL rounds or DPO steps) at which the
    policy was measured and its scores there (measure -> (steps, prompts, 1))."""

    method: str  # "RL" or "DPO"
    beta: float
    steps: list[int]
    scores: dict[str, torch.Tensor]


def sweep_run(job: tuple[str, float], inputs: RecipeInputs) -> SweepRun:
    """RL at ``kl_coef = beta`` or DPO at ``beta`` (``job = (method, beta)``), from the SFT model
    with the shared reward model and pairs of ``inputs``, seed ``cfg.seed``; the policy measured
    on one reply to each prompt of the first of ``inputs.eval_sets`` as it trains."""
    method, beta = job
    cfg = inputs.cfg
    sft, reward_model = inputs.sft_model(), inputs.reward_model()
    if method == "RL":
        policy = copy.deepcopy(sft).requires_grad_(True)
        history = train_rl(
            policy,
            sft,
            reward_model,
            inputs.train_prompts,
            None,
            inputs.tokenizer,
            cfg,
            beta,
            cfg.seed,
            keep_snapshots=True,
        )
        steps, snapshots = history.eval_steps, history.snapshots
    else:
        _, kept = train_dpo(sft, inputs.prefs, cfg, cfg.seed, beta, cfg.dpo_eval_every)
        steps, snapshots = list(kept), list(kept.values())
    name = next(iter(inputs.eval_sets))
    return SweepRun(
        method, beta, steps, score_snapshots(snapshots, inputs, reward_model, name, 1, 7)
    )


# --- several runs side by side ------------------------------------------------------------------


def _one_thread(function: Callable, job: Any, inputs: RecipeInputs) -> Any:
    torch.set_num_threads(1)
    return function(job, inputs)


def run_jobs(function: Callable, jobs: list, inputs: RecipeInputs) -> list:
    """``function(job, inputs)`` for each job, results in the order of ``jobs``. On a CPU the jobs
    run side by side, one worker process per core with one thread each: two one-thread processes
    get more done on two cores than one two-thread process on these small matrices, and a job's
    result does not depend on how many cores the machine has. On a GPU, one after the other."""
    if not jobs:
        return []
    if inputs.cfg.device != "cpu":
        return [function(job, inputs) for job in jobs]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    # "spawn": a fresh interpreter per worker; forking a process that has run torch's thread
    # pool can hang the child
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(len(jobs), cores or 1), mp_context=context) as pool:
        return list(pool.map(_one_thread, repeat(function), jobs, repeat(inputs)))
