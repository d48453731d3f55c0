"""Chapter 09's helpers: the chat format and its mask, the labeler, the losses against hand-computed
values, the reward model on a separable toy set, the KL estimate, one RL round, the whole recipe
on several seeds in worker processes, intervals."""

import copy
import math
from dataclasses import replace

import pytest
import torch

from helpers.alignment import (
    AlignmentPreset,
    Preferences,
    RewardModel,
    TrainingPrecision,
    alignment_preset,
    bradley_terry_loss,
    collect_preferences,
    dpo_loss,
    fit,
    kl_to_reference,
    load_reward_model,
    preference_accuracy,
    sample_responses,
    save_reward_model,
    sequence_logprob,
    sft_loss,
    token_kl,
)
from helpers.alignment_data import (
    END,
    PAD,
    SEPARATOR,
    dialogue_turns,
    encode_dialogues,
    encode_prompts,
    explain,
    format_prompt,
    kindness,
    last_response_index,
    preference_pairs,
    response_mask,
    word_variety,
)
from helpers.alignment_rl import (
    RecipeInputs,
    RLHistory,
    group_advantages,
    mean_interval,
    overoptimisation_run,
    ppo_clip_loss,
    rl_step,
    run_jobs,
    sweep_run,
    train_rl,
)
from helpers.precision import Precision
from helpers.train import preset

TEXT = """ROMEO:
What light through yonder window breaks?

JULIET:
Good morrow, sweet Romeo.
Come hither.

ROMEO:
Thou villain!

ROMEO:
I speak again.
"""


@pytest.fixture
def gpt(tiny_gpt, char_tokenizer):
    """The tiny GPT over the Shakespeare characters, with room for a 10 + 14 character chat."""
    return tiny_gpt(vocab_size=char_tokenizer.vocab_size, block_size=24).eval()


def test_dialogue_turns_pair_a_last_line_with_the_next_speakers_first_line():
    # the last speech is by the same speaker as the one before it: no turn
    assert dialogue_turns(TEXT) == [
        ("What light through yonder window breaks?", "Good morrow, sweet Romeo."),
        ("Come hither.", "Thou villain!"),
    ]


def test_the_prompt_is_cropped_at_a_word_padded_left_and_ends_with_the_separator():
    prompt = format_prompt("What light through yonder window breaks?", 20)
    assert len(prompt) == 20 and prompt.endswith(SEPARATOR)
    assert prompt.lstrip(PAD) == "window breaks?" + SEPARATOR


def test_sft_mask_covers_exactly_the_response_tokens(char_tokenizer):
    turns = [
        ("What light through yonder window breaks?", "Good morrow, sweet Romeo, good morrow."),
        ("Hi", "Oh"),
    ]
    ids, mask = encode_dialogues(char_tokenizer, turns, 12, 20)
    assert ids.shape == mask.shape == (2, 32)
    masked = [char_tokenizer.decode(row[m]) for row, m in zip(ids, mask, strict=True)]
    assert masked == ["Good morrow, sweet" + END, "Oh" + END]
    assert not mask[:, :12].any()  # prompt and separator are never trained on
    for m in mask:  # the mask is one run starting right after the separator
        on = m.nonzero().flatten()
        assert on[0] == 12 and torch.equal(on, torch.arange(12, 12 + len(on)))


def test_sft_loss_is_the_mean_cross_entropy_over_response_targets(gpt, char_tokenizer):
    ids, mask = encode_dialogues(char_tokenizer, [("Who is there?", "Nay, answer me.")], 10, 14)
    logits = gpt(ids[:, :-1])[0][0]  # (L-1, V)
    targets = [t for t in range(1, ids.shape[1]) if mask[0, t]]
    want = -torch.stack([logits[t - 1].log_softmax(-1)[ids[0, t]] for t in targets]).mean()
    assert torch.allclose(sft_loss(gpt, ids, mask), want, atol=1e-6)
    changed = ids.clone()
    changed[0, :5] = char_tokenizer.encode("Q")[0]  # the prompt changes the context...
    assert not torch.allclose(sft_loss(gpt, changed, mask), want)  # ...so the loss moves


def test_response_mask_stops_after_the_first_end_of_turn():
    end = 0
    ids = torch.tensor([[5, 5, 1, 2, end, 3, end], [5, 5, 1, 2, 3, 4, 6], [5, 5, end, 1, 1, 1, 1]])
    mask = response_mask(ids, 2, end)
    assert mask.tolist() == [
        [False, False, True, True, True, False, False],
        [False, False, True, True, True, True, True],
        [False, False, True, False, False, False, False],
    ]
    assert last_response_index(mask).tolist() == [4, 6, 2]


def test_the_labeler_counts_distinct_kind_words_minus_distinct_harsh_words():
    assert kindness("Good morrow, sweet friend.") == 3
    assert kindness("Thou villain, thou shalt die.") == -2
    assert kindness("Love, love, love!") == 1  # repeating a word does not count twice
    assert kindness("Good villain") == 0
    assert explain("Good villain") == "+Good+ -villain-"


def test_preference_pairs_skip_ties():
    scores = torch.tensor([[1, 0, 0], [2, 2, 2]])
    assert preference_pairs(scores) == [(0, 1), (0, 2)]


def test_bradley_terry_loss_equals_hand_computed_values():
    # -log sigma(d) = log(1 + e^-d); margins d = 1 and -1
    got = bradley_terry_loss(torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0]))
    want = (math.log(1 + math.exp(-1)) + math.log(1 + math.exp(1))) / 2
    assert math.isclose(got.item(), want, rel_tol=1e-6)
    ties = bradley_terry_loss(torch.zeros(3), torch.zeros(3))  # no preference: log 2
    assert math.isclose(ties.item(), math.log(2), rel_tol=1e-6)


def test_dpo_loss_equals_hand_computed_values():
    policy_c, policy_r = torch.tensor([-3.0, -5.0]), torch.tensor([-4.0, -2.0])
    ref_c, ref_r = torch.tensor([-3.5, -4.0]), torch.tensor([-3.5, -3.0])
    # margins: (-3 + 3.5) - (-4 + 3.5) = 1.0 and (-5 + 4) - (-2 + 3) = -2.0; beta = 0.5
    want = (math.log(1 + math.exp(-0.5)) + math.log(1 + math.exp(1.0))) / 2
    got = dpo_loss(policy_c, policy_r, ref_c, ref_r, beta=0.5)
    assert math.isclose(got.item(), want, rel_tol=1e-6)
    same = dpo_loss(ref_c, ref_r, ref_c, ref_r, beta=0.5)  # policy == reference: log 2
    assert math.isclose(same.item(), math.log(2), rel_tol=1e-6)


def test_kl_estimate_is_zero_for_identical_policies_and_positive_otherwise(gpt, char_tokenizer):
    ids, mask = encode_dialogues(char_tokenizer, [("Who is there?", "Nay, answer me.")] * 2, 10, 14)
    twin = copy.deepcopy(gpt)
    assert torch.equal(kl_to_reference(gpt, twin, ids, mask), torch.zeros(2))
    with torch.no_grad():
        twin.lm_head.weight.add_(0.5 * torch.randn_like(twin.lm_head.weight))
    assert (kl_to_reference(twin, gpt, ids, mask) > 0).all()
    p, q = (
        torch.tensor([[0.0, 0.0]]),
        torch.tensor([[0.0, math.log(3)]]),
    )  # (1/2, 1/2) vs (1/4, 3/4)
    want = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert math.isclose(token_kl(p, q).item(), want, rel_tol=1e-6)


def toy_preferences(tokenizer, n: int, seed: int) -> Preferences:
    """Separable pairs: the chosen reply says 'good', the rejected one 'vile'; the prompts vary."""
    gen = torch.Generator().manual_seed(seed)
    letters = torch.randint(13, 65, (n, 6), generator=gen)  # ids 13..64 are letters
    prompts = [tokenizer.decode(row) for row in letters]
    replies = [("Thou art good", "Thou art vile")[j % 2] for j in range(2 * n)]
    turns = [(prompts[j // 2], replies[j]) for j in range(2 * n)]
    ids, mask = encode_dialogues(tokenizer, turns, 10, 14)
    scores = torch.tensor([kindness(r) for r in replies]).view(n, 2)
    return Preferences(ids, mask, replies, scores, torch.tensor(preference_pairs(scores)))


def test_reward_model_prefers_the_chosen_reply_after_training(gpt, char_tokenizer):
    train, held_out = toy_preferences(char_tokenizer, 32, 0), toy_preferences(char_tokenizer, 16, 1)
    rm = RewardModel(gpt)
    assert preference_accuracy(rm, held_out) == 0.0  # zero-initialised head: all ties
    losses = fit(
        rm,
        lambda i: bradley_terry_loss(rm(*train.side(0, i)), rm(*train.side(1, i))),
        len(train.pairs),
        steps=40,
        batch_size=16,
        lr=3e-3,
        desc="",
    )
    assert losses[-1] < 0.1 < losses[0]
    assert preference_accuracy(rm, held_out) == 1.0


def test_reward_model_body_is_a_copy_and_saves_and_loads(gpt, char_tokenizer, tmp_path):
    rm = RewardModel(gpt)
    assert rm.transformer is not gpt.transformer
    with torch.no_grad():
        rm.head.bias.fill_(0.25)
    ids, mask = encode_dialogues(char_tokenizer, [("Who?", "Me.")], 10, 14)
    save_reward_model(tmp_path, rm)
    assert torch.allclose(load_reward_model(tmp_path)(ids, mask), rm(ids, mask))


def test_one_rl_round_moves_the_policy_and_measures_kl(gpt, char_tokenizer):
    cfg = AlignmentPreset(
        device="cpu",
        smoke=True,
        prompt_chars=10,
        response_chars=14,
        samples_per_prompt=4,
        rl_lr=1e-2,
        rl_steps=2,
        rl_prompts_per_step=2,
        eval_every=1,
    )
    policy, reference = copy.deepcopy(gpt), gpt.requires_grad_(False)
    with torch.no_grad():  # a policy that has already drifted, so its KL to the reference is > 0
        policy.lm_head.weight.add_(0.5 * torch.randn_like(policy.lm_head.weight))
    before = copy.deepcopy(policy)
    rm = RewardModel(gpt)
    with torch.no_grad():
        rm.head.weight.normal_()  # any non-constant reward
    prompts = encode_prompts(char_tokenizer, ["Who is there?", "Speak!"], 10)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=cfg.rl_lr)
    end_id = char_tokenizer.encode(END)[0]
    stats = rl_step(
        policy, reference, rm, optimizer, prompts, cfg, end_id, torch.Generator().manual_seed(0)
    )
    # the same replies, sampled from the policy as it was before the update, measured apart
    ids, mask = sample_responses(
        before, prompts.repeat_interleave(4, dim=0), 14, end_id, torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        want = kl_to_reference(before, reference, ids, mask).mean().item()
    assert want > 0.01 and stats["kl"] == pytest.approx(want, rel=1e-4)
    assert all(math.isfinite(v) for v in stats.values())
    assert any(
        not torch.equal(a, b)
        for a, b in zip(policy.parameters(), reference.parameters(), strict=True)
    )
    history = train_rl(policy, reference, rm, prompts, prompts, char_tokenizer, cfg, kl_coef=0.1)
    assert isinstance(history, RLHistory) and history.eval_steps == [0, 1, 2]
    assert len(history.train_reward) == 2 and history.eval_kl[-1] > 0


def test_sequence_logprob_sums_the_response_tokens(gpt, char_tokenizer):
    ids, mask = encode_dialogues(char_tokenizer, [("Who is there?", "Nay, answer me.")], 10, 14)
    n = int(mask[:, 1:].sum())
    want = -sft_loss(gpt, ids, mask) * n  # the loss is the mean over the n response tokens
    assert torch.allclose(sequence_logprob(gpt, ids, mask), want, atol=1e-5)


@pytest.mark.parametrize("smoke", ["0", "1"])
def test_the_chat_window_fits_the_pretrained_context(monkeypatch, smoke):
    monkeypatch.setenv("GPT_COURSE_SMOKE", smoke)
    cfg = alignment_preset("cpu")
    assert cfg.prompt_chars + cfg.response_chars <= preset("gpt", "cpu").block_size
    assert cfg.prompt_chars > len(SEPARATOR)


def test_group_advantages_subtract_each_prompts_mean():
    total = torch.tensor([1.0, 3.0, 10.0, 10.0])  # two prompts, K = 2
    centred = torch.tensor([-1.0, 1.0, 0.0, 0.0])  # each minus its prompt's mean (2 and 10)
    assert torch.allclose(group_advantages(total, 2), centred / centred.std())


def test_ppo_clip_loss_is_minus_the_mean_advantage_at_ratio_one_and_clips_beyond_eps():
    old = torch.log(torch.tensor([[0.5, 0.5]]))
    mask = torch.ones(1, 2)
    unmoved = ppo_clip_loss(old.clone(), old, torch.tensor([2.0]), mask, 0.2)
    assert torch.allclose(unmoved, torch.tensor(-2.0))
    moved = (old + math.log(1.5)).requires_grad_()  # ratio 1.5 > 1 + eps with A > 0: clipped
    loss = ppo_clip_loss(moved, old, torch.tensor([1.0]), mask, 0.2)
    loss.backward()
    assert math.isclose(loss.item(), -1.2, rel_tol=1e-6) and torch.equal(
        moved.grad, torch.zeros(1, 2)
    )


@pytest.mark.parametrize("dropout", [False, True])
def test_dpo_without_dropout_starts_from_an_implicit_reward_of_exactly_zero(
    char_tokenizer, dropout, tiny_gpt
):
    """DPO's reference log-probs come from eval mode; a policy trained with dropout on would
    differ from it by noise at step 0, before learning anything."""
    policy = tiny_gpt(vocab_size=char_tokenizer.vocab_size, block_size=24, dropout=0.5)
    reference = copy.deepcopy(policy).eval()
    ids, mask = encode_dialogues(char_tokenizer, [("Who is there?", "Nay, answer me.")] * 4, 10, 14)
    ref_logp = sequence_logprob(reference, ids, mask).detach()
    margins = []

    def batch_loss(rows):
        logp = sequence_logprob(policy, ids[rows], mask[rows])
        margins.append((logp - ref_logp[rows]).detach())
        return -logp.mean()

    fit(policy, batch_loss, len(ids), steps=1, batch_size=4, lr=1e-3, dropout=dropout)
    assert torch.equal(margins[0], torch.zeros(4)) != dropout


def test_planted_replies_give_an_untrained_model_pairs_to_rank(tiny_gpt, char_tokenizer):
    """Smoke mode's model writes no words, so the labeler would rank nothing: planted replies
    make sure the reward model, RL and DPO still run on real pairs there."""
    prompts = ["Who is there?", "Speak!", "Stay, I say."]
    cfg = AlignmentPreset(
        device="cpu", smoke=True, prompt_chars=14, response_chars=18, samples_per_prompt=3
    )
    gpt = tiny_gpt(block_size=32, vocab_size=char_tokenizer.vocab_size)
    assert len(collect_preferences(gpt, char_tokenizer, prompts, cfg).pairs) == 0
    planted = collect_preferences(gpt, char_tokenizer, prompts, replace(cfg, planted_pairs=2))
    assert planted.replies[0] == "Good, sweet love." and planted.replies[4] == "Thou foul fool!"
    assert [0, 1] in planted.pairs.tolist() and [3, 4] in planted.pairs.tolist()


def test_word_variety_counts_distinct_words_per_word():
    assert word_variety("Good, good, sweet love.") == 0.75
    assert word_variety("...") == 1.0


@pytest.fixture
def one_thread(monkeypatch):
    """This process on one thread, as chapter 09's seeds run on a CPU; restored afterwards."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the workers' environment, as on the CI machine
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small_inputs(tiny_gpt, char_tokenizer, **changes):
    """A tiny recipe: a few planted pairs, two rounds or steps of each stage, two eval sets."""
    cfg = AlignmentPreset(
        device="cpu",
        smoke=True,
        prompt_chars=14,
        response_chars=18,
        samples_per_prompt=2,
        planted_pairs=3,
        rm_steps=2,
        rm_batch_size=2,
        rl_steps=2,
        rl_prompts_per_step=2,
        dpo_steps=2,
        dpo_batch_size=2,
        eval_every=1,
        overopt_samples=2,
        dpo_eval_every=1,
        **changes,
    )
    gpt = tiny_gpt(block_size=32, vocab_size=char_tokenizer.vocab_size).eval()
    prompts = ["Who is there?", "Speak!", "Stay, I say."]
    encoded = encode_prompts(char_tokenizer, prompts, cfg.prompt_chars)
    return RecipeInputs(
        gpt.state_dict(),
        gpt.config,
        char_tokenizer,
        prompts,
        prompts,
        encoded,
        {"selection": encoded[:2], "measurement": encoded[1:]},
        cfg,
    )


@pytest.mark.slow
def test_runs_give_the_same_figures_in_worker_processes_as_here(
    tiny_gpt, char_tokenizer, one_thread
):
    """The companions run seeds side by side in one-thread worker processes: a seed must give the
    same figures there as in this process, and two seeds must differ."""
    inputs = small_inputs(tiny_gpt, char_tokenizer)
    here = overoptimisation_run(1, inputs)
    workers = run_jobs(overoptimisation_run, [0, 1], inputs)
    assert [r.seed for r in workers] == [0, 1] and here.steps == [0, 1, 2]
    assert set(here.scores) == {"selection", "measurement"}
    assert here.scores["measurement"]["labeler"].shape == (3, 2, 2)  # rounds, prompts, replies
    assert here.scores["measurement"]["kl"][0].abs().max() == 0  # round 0 is the SFT model
    assert set(here.scores["selection"]) == {"labeler", "variety", "replies"}
    assert 0.0 <= here.reward_model_accuracy <= 1.0
    for key in ("labeler", "reward", "kl"):
        assert torch.allclose(
            workers[1].scores["measurement"][key], here.scores["measurement"][key]
        )
    assert not torch.equal(
        workers[0].scores["measurement"]["kl"], workers[1].scores["measurement"]["kl"]
    )


@pytest.mark.slow
def test_a_sweep_measures_rl_and_dpo_from_the_start(tiny_gpt, char_tokenizer, one_thread):
    inputs = small_inputs(tiny_gpt, char_tokenizer)
    sft = inputs.sft_model()
    prefs = collect_preferences(sft, char_tokenizer, inputs.preference_prompts, inputs.cfg)
    reward_model = RewardModel(sft)
    inputs = replace(inputs, reward_state=reward_model.state_dict(), prefs=prefs)
    rl, dpo = run_jobs(sweep_run, [("RL", 0.1), ("DPO", 0.5)], inputs)
    assert (rl.method, rl.beta, rl.steps) == ("RL", 0.1, [0, 1, 2])
    assert (dpo.method, dpo.beta, dpo.steps) == ("DPO", 0.5, [0, 1, 2])
    for run in (rl, dpo):
        assert run.scores["kl"].shape == (3, 2, 1) and run.scores["kl"][0].abs().max() == 0


def test_an_interval_comes_from_the_per_prompt_means():
    per_reply = torch.tensor(
        [[0.0, 2.0], [1.0, 1.0], [2.0, 2.0], [3.0, 1.0]]
    )  # prompt means 1,1,2,2
    mean, half = mean_interval(per_reply)
    assert mean == 1.5 and half == pytest.approx(1.96 * (1 / 3) ** 0.5 / 2)


@pytest.mark.parametrize("smoke", ["0", "1"])
def test_the_companions_repeat_seeds_and_betas(monkeypatch, smoke):
    monkeypatch.setenv("GPT_COURSE_SMOKE", smoke)
    cfg = alignment_preset("cpu")
    assert len(set(cfg.overopt_seeds)) >= 2 and cfg.seed in cfg.overopt_seeds
    assert len(set(cfg.sweep_kl_coefs)) >= 2 and cfg.kl_coef in cfg.sweep_kl_coefs
    assert cfg.dpo_beta in cfg.sweep_dpo_betas


def test_training_precision_is_fp32_on_a_cpu_and_autocasts_where_chosen(gpt, char_tokenizer):
    """Chapter 09's loops take the device's precision (bf16 on CUDA >= 8.0, fp16 + GradScaler on
    7.x); on a CPU it is plain fp32, so CPU runs do not change. A bf16 choice autocasts the
    forward pass (checked here on the CPU, which autocasts to bf16 too)."""
    fp32 = TrainingPrecision("cpu")
    assert fp32.choice.autocast_dtype is None and fp32.scaler is None
    bf16 = TrainingPrecision("cpu", Precision("bfloat16", False, False, "a test"))
    ids, _ = encode_dialogues(char_tokenizer, [("Who is there?", "Nay, answer me.")] * 2, 10, 14)
    with bf16.autocast():
        logits, _ = gpt(ids)
    assert logits.dtype == torch.bfloat16
    params = [p for p in gpt.parameters()]
    before = [p.detach().clone() for p in params]
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    with bf16.autocast():
        loss = gpt(ids[:, :-1], ids[:, 1:])[1]
    bf16.step(loss, optimizer, params)
    assert any(not torch.equal(a, b) for a, b in zip(before, params, strict=True))
