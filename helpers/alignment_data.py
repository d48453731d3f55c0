"""Chapter 09's data: dialogue turns cut from tiny Shakespeare, their chat format, and the labeler.

The chat format puts a prompt turn and a response turn into one fixed-width window:

    "\\n\\n\\nWhither goest thou?\\n$To the Capitol, sir.\\n" + padding

- the prompt is left-padded with newlines to ``prompt_chars`` (so a batch of prompts is a
  rectangle and generation needs no attention mask) and ends with the separator ``"\\n$"``:
  ``$`` occurs once in the whole corpus, so it is a character the tokenizer knows but the
  pretrained model has practically never seen, our stand-in for a chat model's special token;
- the response follows, ends with a newline (the end of the turn), and is right-padded to
  ``response_chars``. Its mask is 1 on the response characters (the end-of-turn newline
  included) and 0 on the prompt, the separator and the padding.

The labeler stands in for human raters: it prefers the kinder reply, by a rule anyone can
check by eye (see :func:`kindness`).

Chapter 09 lives in three modules, one job each, read in the chapter's order:
``alignment_data`` (text: dialogue turns, the chat format and its masks, the labeler),
``alignment`` (models and losses: the preset, SFT, the reward model, DPO, KL, the training loop
``fit``) and ``alignment_rl`` (the PPO-style RL loop built on those). One package would only
add an ``__init__`` and longer imports; each module is read in one sitting as it is.
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from helpers.data import CharTokenizer

SEPARATOR = "\n$"  # ends the prompt turn: the response starts right after the "$"
END = "\n"  # ends the response turn
PAD = "\n"  # fills the window; blank lines are what the pretrained model saw between speeches


# --- dialogue turns ---------------------------------------------------------------------------


def dialogue_turns(text: str) -> list[tuple[str, str]]:
    """(prompt, response) pairs in the order of the play: the last line of one speech and the
    first line of the next speech, when a different speaker says it.

    Speeches in tiny Shakespeare are blocks separated by a blank line, each starting with a
    ``NAME:`` line."""
    speeches = []
    for block in text.split("\n\n"):
        lines = block.strip("\n").split("\n")
        if len(lines) >= 2 and lines[0].endswith(":"):
            speeches.append((lines[0][:-1], lines[1:]))
    return [
        (said[-1], reply[0]) for (who, said), (other, reply) in pairwise(speeches) if who != other
    ]


def keep_last_words(line: str, width: int) -> str:
    """The end of ``line`` that fits in ``width`` characters, starting at a word."""
    words, kept = line.split(), ""
    for word in reversed(words):
        if len(word) + bool(kept) + len(kept) > width:
            break
        kept = f"{word} {kept}" if kept else word
    return kept or line[-width:]  # a single word longer than the width is cut


def keep_first_words(line: str, width: int) -> str:
    """The start of ``line`` that fits in ``width`` characters, ending at a word."""
    words, kept = line.split(), ""
    for word in words:
        if len(kept) + bool(kept) + len(word) > width:
            break
        kept = f"{kept} {word}" if kept else word
    return kept or line[:width]


def format_prompt(prompt: str, prompt_chars: int) -> str:
    """The prompt turn: the prompt's last words, the separator, left-padded to ``prompt_chars``."""
    return (keep_last_words(prompt, prompt_chars - len(SEPARATOR)) + SEPARATOR).rjust(
        prompt_chars, PAD
    )


def format_response(response: str, response_chars: int) -> str:
    """The response turn, unpadded: the response's first words and the end-of-turn newline."""
    return keep_first_words(response, response_chars - len(END)) + END


def encode_dialogues(
    tokenizer: CharTokenizer,
    turns: list[tuple[str, str]],
    prompt_chars: int,
    response_chars: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids (N, prompt_chars + response_chars) of the turns in the chat format, and the
    response mask of the same shape (True exactly on the response characters)."""
    ids, mask = [], []
    for prompt, response in turns:
        reply = format_response(response, response_chars)
        text = format_prompt(prompt, prompt_chars) + reply.ljust(response_chars, PAD)
        ids.append(tokenizer.encode(text))
        padding = response_chars - len(reply)
        mask.append([False] * prompt_chars + [True] * len(reply) + [False] * padding)
    return torch.tensor(ids, dtype=torch.long), torch.tensor(mask)


def encode_prompts(tokenizer: CharTokenizer, prompts: list[str], prompt_chars: int) -> torch.Tensor:
    """Prompt turns as token ids (N, prompt_chars), ready for ``generate``."""
    return torch.tensor([tokenizer.encode(format_prompt(p, prompt_chars)) for p in prompts])


def response_mask(ids: torch.Tensor, prompt_chars: int, end_id: int) -> torch.Tensor:
    """For generated ids (B, prompt_chars + R): True on the response up to and including its
    first end-of-turn token; everything sampled after it is not part of the reply."""
    response = ids[:, prompt_chars:]  # (B, R)
    is_end = (response == end_id).long()
    after_end = (torch.cumsum(is_end, dim=1) - is_end) > 0  # (B, R): past the first END
    prompt = torch.zeros(ids.shape[0], prompt_chars, dtype=torch.bool, device=ids.device)
    return torch.cat([prompt, ~after_end], dim=1)  # (B, prompt_chars + R)


def last_response_index(mask: torch.Tensor) -> torch.Tensor:
    """(B,) position of each row's last response token: where a reward model reads its score."""
    positions = torch.arange(mask.shape[1], device=mask.device)  # (L,)
    return torch.where(mask, positions, -1).max(dim=1).values  # (B,)


def response_texts(tokenizer: CharTokenizer, ids: torch.Tensor, mask: torch.Tensor) -> list[str]:
    """The replies as text, without the end-of-turn newline."""
    return [
        tokenizer.decode(row[m].tolist()).removesuffix(END)
        for row, m in zip(ids, mask, strict=True)
    ]


# --- the labeler ------------------------------------------------------------------------------

# Words a reader would call kind or harsh, chosen among the common words of tiny Shakespeare.
KIND_WORDS = frozenset(
    """
    love loves loved loving lovely good sweet gentle fair noble kind kindly kindness thank thanks
    friend friends honour grace gracious joy peace welcome happy merry bless blessed comfort mercy
    worthy dear smile""".split()
)
HARSH_WORDS = frozenset(
    """
    hate hated villain knave fool death die dead kill killed blood bloody curse cursed traitor
    slave devil plague hell foul vile murder damned wretch rogue grief woe poison enemy""".split()
)


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def word_variety(reply: str) -> float:
    """Distinct words per word: 1.0 when no word repeats (and for a reply without words), 0.5
    for "good, good". A policy that collapses onto one word drives it down."""
    found = words(reply)
    return len(set(found)) / len(found) if found else 1.0


def kindness(reply: str) -> int:
    """The labeler's score: distinct kind words minus distinct harsh words in the reply.

    kindness("Good morrow, sweet friend.") = 3 (good, sweet, friend);
    kindness("Thou villain, thou shalt die.") = -2. Repeating a word does not count twice."""
    found = set(words(reply))
    return len(found & KIND_WORDS) - len(found & HARSH_WORDS)


def explain(reply: str) -> str:
    """The reply with the words the labeler counted marked: kind ones +word+, harsh ones -word-."""

    def mark(match):
        word = match.group(0)
        if word.lower() in KIND_WORDS:
            return f"+{word}+"
        return f"-{word}-" if word.lower() in HARSH_WORDS else word

    return re.sub(r"[A-Za-z]+", mark, reply)


def preference_pairs(scores: torch.Tensor) -> list[tuple[int, int]]:
    """The labeler's comparisons. ``scores`` (n_prompts, K) holds the score of each of K replies
    to each prompt; every two replies to the same prompt with different scores make a pair
    (chosen, rejected), as indices into the flattened (n_prompts * K) replies. Ties give no pair,
    as a rater who cannot choose would skip them."""
    n_prompts, k = scores.shape
    return [
        (p * k + i, p * k + j)
        for p in range(n_prompts)
        for i in range(k)
        for j in range(k)
        if scores[p, i] > scores[p, j]
    ]
