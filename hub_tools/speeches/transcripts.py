"""The client's words in a chat transcript: the first human turn, and whether an answer is left in it.

Fine-tuning datasets such as phi2Mental store whole prompt + answer strings. Formats recognised:
'### Human: .. ### Assistant: ..', '<HUMAN>: .. <ASSISTANT>: ..', 'User: .. Assistant: ..' (marker at the
start of a line), Llama's '[INST] .. [/INST]', Phi-2's 'Instruct: .. Output: ..' and Alpaca's
'### Instruction(:) .. [### Input(:) ..] ### Response(:) ..'. For Alpaca the client's words are the
Input section when it has text (the Instruction is then the task), else the Instruction.

A row whose extracted turn still holds an answer marker ('Output:', '### Response', 'Assistant:',
'<ASSISTANT>', '[/INST]', ...) was not split and would put the answer into the speech: loaders reject
it (`holds_answer`) rather than keep it.
"""

from __future__ import annotations

import re

_FLAGS = re.IGNORECASE | re.MULTILINE


def _marker(names: str) -> re.Pattern:
    """A turn marker: '### Name' (colon optional), '<NAME>' (colon optional) or 'Name:' at a line start."""
    return re.compile(rf"###[ \t]*(?:{names})\b[ \t]*:?|<[ \t]*(?:{names})[ \t]*>[ \t]*:?|^[ \t]*(?:{names})[ \t]*:", _FLAGS)


_HUMAN = _marker("human|user|patient|client|instruction|instruct")
_BOT = _marker("assistant|bot|therapist|counsell?or|gpt|response|output")
_ALPACA_INPUT = re.compile(r"###[ \t]*input\b[ \t]*:?", _FLAGS)
_INST = re.compile(r"\[INST\](.*?)\[/INST\]", re.DOTALL)
_ANSWER = re.compile(
    r"###[ \t]*(?:assistant|bot|response|output|therapist|counsell?or|gpt)\b"
    r"|<[ \t]*/?[ \t]*(?:assistant|bot|gpt|therapist|counsell?or)[ \t]*>"
    r"|\[/INST\]"
    r"|^[ \t]*(?:assistant|output|bot|gpt|therapist|counsell?or|response)[ \t]*:",
    _FLAGS,
)
_ANSWER_INLINE = re.compile(r"\b(?:Assistant|ASSISTANT|Output|OUTPUT)[ \t]*:")  # mid-line, capitalised as a marker


def _turn(text: str, start: int) -> str:
    """The text from `start` up to the next turn marker of any kind."""
    ends = [m.start() for pattern in (_HUMAN, _BOT, _ALPACA_INPUT) if (m := pattern.search(text, start))]
    return text[start:min(ends, default=len(text))].strip()


def human_turn(text: str) -> str:
    """The first human turn of a chat transcript; text without turn markers is returned unchanged."""
    inst = _INST.search(text)
    if inst:
        return inst.group(1).strip()
    alpaca_input = _ALPACA_INPUT.search(text)
    if alpaca_input and (words := _turn(text, alpaca_input.end())):
        return words
    human = _HUMAN.search(text)
    if human:
        return _turn(text, human.end())
    bot = _BOT.search(text)
    return text[:bot.start()].strip() if bot else text


def holds_answer(text: str) -> bool:
    """Whether `text` still holds an answer turn's marker (so an answer may follow it)."""
    return _ANSWER.search(text) is not None or _ANSWER_INLINE.search(text) is not None
