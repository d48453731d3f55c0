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
``fit``) and ``alignment_rl`` (the PPO-style RL loop built on those, and the whole recipe run
on one seed, for the chapter's comparison over seeds). One package would only add an
``__init__`` and longer imports; each module is read in one sitting as it is.
"""

from __future__ import annotations

import copy
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from itertools import repeat
from typing import TYPE_CHECKING

import torch

from helpers.alignment import (
    HELD_OUT_SEED,
    RewardModel,
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
    token_logprobs,
)
from helpers.alignment_data import END, kindness, response_texts, word_variety
from helpers.model import GPT, GPTConfig
from helpers.progress import progress_bar
from helpers.settings import seed_everything

if TYPE_CHECKING:
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
) -> dict:
    """One PPO round (see the module docstring) on ``prompts`` (B, P), K = cfg.samples_per_prompt
    replies each. Returns the round's mean reward r, mean KL (nats per reply) and loss."""
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
    for _ in range(cfg.ppo_epochs):
        logp = token_logprobs(policy, ids)  # (B*K, L-1), with gradients this time
        loss = ppo_clip_loss(logp, old_logp, advantage, m, cfg.clip_range)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        optimizer.step()
    return {"reward": reward.mean().item(), "kl": kl.mean().item(), "loss": loss.item()}


@torch.no_grad()
def evaluate_policy(
    policy: GPT,
    reference: GPT,
    reward_model: RewardModel,
    prompts: torch.Tensor,
    tokenizer: CharTokenizer,
    response_chars: int,
    seed: int = 0,
) -> dict:
    """Sample one reply per prompt with a fixed seed and measure: the labeler's mean score
    (kindness), the reward model's mean score, the mean KL to the reference (nats per reply) and
    the mean word variety (:func:`word_variety`). ``replies`` holds the texts."""
    end_id = tokenizer.encode(END)[0]
    ids, mask = sample_responses(
        policy, prompts, response_chars, end_id, torch.Generator().manual_seed(seed)
    )
    replies = response_texts(tokenizer, ids, mask)
    return {
        "labeler": sum(map(kindness, replies)) / len(replies),
        "reward": reward_model(ids, mask).mean().item(),
        "kl": kl_to_reference(policy, reference, ids, mask).mean().item(),
        "variety": sum(map(word_variety, replies)) / len(replies),
        "replies": replies,
    }


@dataclass
class RLHistory:
    """One entry per RL round (train_*) and per evaluation on held-out prompts (eval_*)."""

    kl_coef: float
    train_reward: list[float] = field(default_factory=list)
    train_kl: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    eval_labeler: list[float] = field(default_factory=list)
    eval_reward: list[float] = field(default_factory=list)
    eval_kl: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def train_rl(
    policy: GPT,
    reference: GPT,
    reward_model: RewardModel,
    train_prompts: torch.Tensor,
    eval_prompts: torch.Tensor,
    tokenizer: CharTokenizer,
    cfg: AlignmentPreset,
    kl_coef: float,
    seed: int = 0,
) -> RLHistory:
    """``cfg.rl_steps`` rounds of :func:`rl_step` with the given ``kl_coef``, each on
    ``cfg.rl_prompts_per_step`` random training prompts; every ``cfg.eval_every`` rounds (and at
    the end) the policy is measured on the held-out prompts with :func:`evaluate_policy`."""
    cfg = replace(cfg, kl_coef=kl_coef)
    end_id = tokenizer.encode(END)[0]
    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=cfg.rl_lr, weight_decay=0.0)
    history = RLHistory(kl_coef=kl_coef)

    def evaluate(step: int) -> None:
        scores = evaluate_policy(
            policy,
            reference,
            reward_model,
            eval_prompts,
            tokenizer,
            cfg.response_chars,
            seed=seed + 1,
        )
        history.eval_steps.append(step)
        for key in ("labeler", "reward", "kl"):
            getattr(history, f"eval_{key}").append(scores[key])

    with progress_bar(cfg.rl_steps, desc=f"RL, kl_coef={kl_coef}", unit="round") as bar:
        for step in range(cfg.rl_steps):
            if step % cfg.eval_every == 0:
                evaluate(step)
            rows = torch.randint(len(train_prompts), (cfg.rl_prompts_per_step,), generator=gen)
            stats = rl_step(
                policy, reference, reward_model, optimizer, train_prompts[rows], cfg, end_id, gen
            )
            history.train_reward.append(stats["reward"])
            history.train_kl.append(stats["kl"])
            bar.update()
        evaluate(cfg.rl_steps)  # and once more after the last round
    return history


# --- the whole recipe on one seed, and on several at once ---------------------------------------


@dataclass
class RecipeInputs:
    """What every seed starts from: the SFT model (weights and config, so that a worker process
    can rebuild it), the tokenizer, the prompts of each stage and the preset. Only the seed
    differs between runs: the preference replies sampled for training, the reward model's and
    DPO's batches and dropout, and RL's sampling."""

    sft_state: dict[str, torch.Tensor]
    model_config: GPTConfig
    tokenizer: CharTokenizer
    preference_prompts: list[str]  # ranked by the labeler to train the reward model
    held_out_prompts: list[str]  # ranked once (HELD_OUT_SEED): the same test for every seed
    train_prompts: torch.Tensor  # (N, prompt_chars): RL's prompts
    eval_prompts: torch.Tensor  # (M, prompt_chars): held-out prompts, to measure policies
    cfg: AlignmentPreset

    def sft_model(self) -> GPT:
        model = GPT(self.model_config).to(self.cfg.device)
        model.load_state_dict(self.sft_state)
        return model.eval().requires_grad_(False)


@dataclass
class SeedResult:
    """One seed of the recipe: the reward model's held-out accuracy, an RL history per kl_coef,
    and the final scores of each policy (:func:`final_scores`)."""

    seed: int
    reward_model_accuracy: float
    histories: dict[float, RLHistory]
    scores: dict[str, dict[str, float]]


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
    """Each model's :func:`evaluate_policy` scores on ``cfg.samples_per_prompt`` replies to each
    held-out prompt, sampled with one fixed seed (3) for every model and every run."""
    prompts = eval_prompts.repeat_interleave(cfg.samples_per_prompt, dim=0)
    scores = {}
    for name, model in models.items():
        s = evaluate_policy(
            model, reference, reward_model, prompts, tokenizer, cfg.response_chars, 3
        )
        scores[name] = {
            "labeler score": s["labeler"],
            "reward model": s["reward"],
            "KL to SFT": s["kl"],
            "word variety": s["variety"],
        }
    return scores


def train_dpo(reference: GPT, prefs: Preferences, cfg: AlignmentPreset, seed: int = 0) -> GPT:
    """A copy of ``reference`` trained with the DPO loss on ``prefs``, dropout off (see
    :func:`helpers.alignment.fit`), as chapter 09 does it in the open."""
    ref_chosen, ref_rejected = pair_logprobs(reference, prefs)
    policy = copy.deepcopy(reference).requires_grad_(True)

    def batch_loss(rows: torch.Tensor) -> torch.Tensor:
        return dpo_loss(
            sequence_logprob(policy, *prefs.side(0, rows)),
            sequence_logprob(policy, *prefs.side(1, rows)),
            ref_chosen[rows],
            ref_rejected[rows],
            cfg.dpo_beta,
        )

    fit(
        policy,
        batch_loss,
        len(prefs.pairs),
        cfg.dpo_steps,
        cfg.dpo_batch_size,
        cfg.dpo_lr,
        seed=seed,
        dropout=False,
    )
    return policy.requires_grad_(False)


def run_recipe(seed: int, inputs: RecipeInputs) -> SeedResult:
    """Stages 3 and 4 and DPO on one seed, as chapter 09 runs them in the open: preferences on
    the SFT model's replies, a reward model, RL at each of ``cfg.kl_coefs``, DPO; then
    :func:`final_scores` of every policy."""
    cfg, tokenizer = inputs.cfg, inputs.tokenizer
    sft = inputs.sft_model()
    seed_everything(seed)  # the reward model's head and dropout, as in the chapter's cells
    prefs = collect_preferences(sft, tokenizer, inputs.preference_prompts, cfg, seed=seed)
    held = collect_preferences(sft, tokenizer, inputs.held_out_prompts, cfg, seed=HELD_OUT_SEED)
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
    reward_model.requires_grad_(False)
    models, histories = {"SFT": sft}, {}
    for kl_coef in cfg.kl_coefs:
        policy = copy.deepcopy(sft).requires_grad_(True)
        histories[kl_coef] = train_rl(
            policy,
            sft,
            reward_model,
            inputs.train_prompts,
            inputs.eval_prompts,
            tokenizer,
            cfg,
            kl_coef=kl_coef,
            seed=seed,
        )
        models[rl_name(kl_coef)] = policy.requires_grad_(False)
    models[dpo_name(cfg.dpo_beta)] = train_dpo(sft, prefs, cfg, seed)
    return SeedResult(
        seed,
        preference_accuracy(reward_model, held),
        histories,
        final_scores(models, sft, reward_model, inputs.eval_prompts, tokenizer, cfg),
    )


def one_thread_recipe(seed: int, inputs: RecipeInputs) -> SeedResult:
    """:func:`run_recipe` in a worker process that uses one thread: two such workers share two
    cores better than one process with two threads shares them, and the result of a seed does
    not depend on how many cores the machine has."""
    torch.set_num_threads(1)
    return run_recipe(seed, inputs)


def run_seeds(seeds: list[int], inputs: RecipeInputs) -> list[SeedResult]:
    """:func:`run_recipe` on each seed. On a CPU the seeds run side by side, one worker process
    per core (each with one thread); on a GPU one after the other, in this process."""
    if not seeds:
        return []
    if inputs.cfg.device != "cpu":
        return [run_recipe(seed, inputs) for seed in seeds]
    workers = min(
        len(seeds),
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
    )
    # "spawn": a fresh interpreter per worker; forking a process that has run torch's thread
    # pool can hang the child
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(one_thread_recipe, seeds, repeat(inputs)))
