"""The turn layout cut out of a Jinja chat template by rendering sentinel messages.

Why: a family's well-known layout still needs the BOS text and any built-in default system prompt of
this model's template, and a variant or unknown family needs its whole layout; both are read off the
Jinja template itself rather than guessed.
"""

from __future__ import annotations

from dataclasses import replace

from ftwiz.core.deploy.chat_families import TurnParts
from ftwiz.core.deploy.probes import Renderer


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    prefix = a[:n]
    # never end inside a special token such as "<|im_"
    if prefix.rfind("<") > prefix.rfind(">"):
        prefix = prefix[:prefix.rfind("<")]
    return prefix


def _common_suffix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[len(a) - 1 - n] == b[len(b) - 1 - n]:
        n += 1
    suffix = a[len(a) - n:] if n else ""
    # never start inside a special token such as "|><|start_header_id|>"
    close, open_ = suffix.find(">"), suffix.find("<")
    if close != -1 and (open_ == -1 or close < open_):
        suffix = suffix[close + 1:]
    return suffix


_S, _U1, _A1, _U2 = "ftwizSYSTEMx", "ftwizUSER1x", "ftwizANSWER1x", "ftwizUSER2x"


def _cut(text: str, *marks: str) -> list[str] | None:
    """The pieces of ``text`` between the marks, in order, or None when a mark is missing."""
    pieces, pos = [], 0
    for mark in marks:
        found = text.find(mark, pos)
        if found == -1:
            return None
        pieces.append(text[pos:found])
        pos = found + len(mark)
    pieces.append(text[pos:])
    return pieces


def _system_then_user(renderer: Renderer) -> list[str] | None:
    """A system + user conversation rendered and cut at both sentinels: [before, between, after]."""
    return _cut(renderer.expected([{"role": "system", "content": _S}, {"role": "user", "content": _U1}]), _S, _U1)


def head_and_default(renderer: Renderer, parts: TurnParts, system_ok: bool) -> TurnParts | None:
    """Fill in the BOS head and any built-in default system prompt by rendering the Jinja template."""
    one = _cut(renderer.expected([{"role": "user", "content": _U1}]), _U1)
    if one is None:
        return None
    before_user = one[0]
    head = ""
    if system_ok:
        with_sys = _system_then_user(renderer)
        if with_sys is None:
            return None
        if with_sys[0].endswith(parts.sys_pre):
            head = with_sys[0][:len(with_sys[0]) - len(parts.sys_pre)]
    elif before_user.endswith(parts.user_pre):
        head = before_user[:len(before_user) - len(parts.user_pre)]
    if not before_user.startswith(head) or not before_user.endswith(parts.user_pre):
        return None
    block = before_user[len(head):len(before_user) - len(parts.user_pre)]
    default = None
    if block:
        if not (system_ok and block.startswith(parts.sys_pre) and block.endswith(parts.sys_post)
                and len(block) >= len(parts.sys_pre) + len(parts.sys_post)):
            return None
        default = block[len(parts.sys_pre):len(block) - len(parts.sys_post)]
    return replace(parts, head=head, default_system=default)


def derive_parts(renderer: Renderer, system_ok: bool) -> TurnParts | None:
    """Cut the turn layout out of the Jinja template by rendering sentinel messages; None if it won't cut."""
    two = _cut(renderer.expected([{"role": "user", "content": _U1}, {"role": "assistant", "content": _A1},
                                  {"role": "user", "content": _U2}]), _U1, _A1, _U2)
    if two is None:
        return None
    x0, x1, x2, x3 = two
    user_post = _common_prefix(x1, x3)
    user_pre = _common_suffix(x0, x2)
    parts = TurnParts(sys_pre="", sys_post="", user_pre=user_pre, user_post=user_post,
                      asst_pre=x1[len(user_post):], asst_post=x2[:len(x2) - len(user_pre)],
                      gen=x3[len(user_post):])
    if system_ok:
        with_sys = _system_then_user(renderer)
        if with_sys is None:
            return None
        bos = renderer.bos_token or ""
        lead = with_sys[0]
        sys_pre = lead[len(bos):] if bos and lead.startswith(bos) else lead
        between = with_sys[1]
        shared = _common_suffix(user_pre, between)
        if shared and not between.endswith(user_pre):
            # a turn's end and a default system text can share a tail (alpaca's "\n\n"): the user turn's
            # own opening is the part that also follows a system block
            user_pre = shared
            parts = replace(parts, user_pre=shared, asst_post=x2[:len(x2) - len(shared)])
        if user_pre and between.endswith(user_pre):
            parts = replace(parts, sys_pre=sys_pre, sys_post=between[:len(between) - len(user_pre)])
        else:
            parts = replace(parts, sys_pre=sys_pre, sys_post=between, user_pre_after_system="")
    return head_and_default(renderer, parts, system_ok)


def last_user_system(renderer: Renderer, plain: TurnParts) -> TurnParts | None:
    """The layout of a template that writes the system text inside the *last* user turn (Mistral v3).

    ``plain`` is the layout without system messages. The system prompt is found by rendering a 2-turn
    conversation with and without it: it must sit right after the last turn's ``user_pre``, with nothing
    else changed; None when the template places it anywhere else.
    """
    turns = [{"role": "user", "content": _U1}, {"role": "assistant", "content": _A1},
             {"role": "user", "content": _U2}]
    with_sys = _cut(renderer.expected([{"role": "system", "content": _S}, *turns]), _U1, _A1, _S, _U2)
    without = _cut(renderer.expected(turns), _U1, _A1, _U2)
    if with_sys is None or without is None:
        return None
    p0, p1, p2, p3, p4 = with_sys
    q0, q1, q2, q3 = without
    if (p0, p1, p4) != (q0, q1, q3) or not p2.startswith(q2) or not q2.endswith(plain.user_pre):
        return None
    return replace(plain, sys_pre=p2[len(q2):], sys_post=p3, user_pre_after_system=None, system_last_user=True,
                   default_system=None)
