"""Chapter 09 (how ChatGPT is trained): a stable Bradley-Terry loss and DPO's implicit accuracy."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from helpers.exercises.verdict import Verdict, as_number, call, describe, exercise, failed, passed

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


@exercise("ex-09-stable-bt", expects="a one-element float tensor: the mean loss over the pairs")
def check_stable_bt_loss(stable_bt_loss: Callable[..., Any]) -> Verdict:
    """``stable_bt_loss(r_chosen, r_rejected)`` should equal the Bradley-Terry loss
    -mean(log sigma(r_c - r_r)) and stay finite for margins of +-1000."""
    cases = [
        (torch.tensor([2.0, 0.5, -1.0]), torch.tensor([1.0, 0.5, 1.0])),
        (torch.tensor([1000.0, 0.0]), torch.tensor([0.0, 1000.0])),
    ]
    for r_chosen, r_rejected in cases:
        want = F.softplus(r_rejected - r_chosen).mean()  # = -log sigma(r_c - r_r), averaged
        answer = call(stable_bt_loss, r_chosen.clone(), r_rejected.clone())
        margins = (r_chosen - r_rejected).tolist()
        if not isinstance(answer, torch.Tensor) or answer.numel() != 1:
            return failed(
                f"loss for margins {margins} returned {describe(answer)}",
                "average the loss over the pairs into one tensor",
            )
        got = as_number(answer)
        if got is None or not torch.isfinite(answer).all():
            return failed(
                f"loss for margins {margins} is {answer.item()}, not finite",
                "for d = -1000, sigma(d) rounds to 0 and its log is -inf: rewrite "
                "-log sigma(d) = log(1 + exp(-d)) so that exp never sees a positive "
                "number (treat d >= 0 and d < 0 apart); torch.log1p keeps the rest "
                "accurate",
            )
        if not abs(got - want.item()) <= 1e-5 * max(1.0, abs(want.item())):
            return failed(
                f"loss for margins {margins}: got {got:.4f}, want {want.item():.4f}",
                "the loss is -log sigma(r_chosen - r_rejected), averaged over pairs",
            )
    return passed("equals the Bradley-Terry loss and stays finite for margins of +-1000")


@exercise("ex-09-dpo-accuracy", expects="one number: the share of pairs ranked right")
def check_implicit_accuracy(implicit_accuracy: Callable[..., Any]) -> Verdict:
    """``implicit_accuracy(policy_chosen, policy_rejected, ref_chosen, ref_rejected)`` should
    return the share of pairs where (log pi(y_c) - log pi_ref(y_c)) - (log pi(y_r) -
    log pi_ref(y_r)) > 0."""
    policy_c = torch.tensor([-3.0, -5.0, -2.0, -6.0])
    policy_r = torch.tensor([-4.0, -2.0, -2.0, -1.0])
    ref_c, ref_r = torch.tensor([-3.5, -4.0, -3.0, -9.0]), torch.tensor([-3.5, -3.0, -2.0, -1.0])
    # margins 1.0, -2.0, 1.0, 3.0: three of four pairs ranked right, though policy_c > policy_r
    # only for the first: the reference's log-probs matter
    answer = call(implicit_accuracy, policy_c, policy_r, ref_c, ref_r)
    got = as_number(answer)
    if got is None:
        return failed(
            f"implicit_accuracy returned {describe(answer)}, not one number",
            "average over the pairs: a float or a one-element tensor",
        )
    if not abs(got - 0.75) < 1e-6:
        return failed(
            f"implicit-reward accuracy on four pairs: got {got}",
            "compare (policy_chosen - ref_chosen) with (policy_rejected - "
            "ref_rejected), not the policy's log-probs alone",
        )
    return passed("implicit-reward accuracy on four pairs is 0.75")
