"""The LLM conversation of a trace, in order: system / user / assistant messages and tools.

Messages come from llm span inputs (OpenAI-style ``[{role, content}]`` lists, or
``{"messages": [...]}``) and outputs (a message, a string, or ``choices``); each llm call
re-sends the history, so a message already shown is not shown again. Tool spans appear as
tool calls with their arguments and result. Scorers' own LLM calls are not the task's
conversation and are left out (the count is noted).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from evaltui.tui.widgets.json_text import STYLE_NOTE, full_text
from evaltui.tui.widgets.text_safety import safe_text
from evaltui.tui.widgets.trace_data import TraceData, format_duration

MESSAGE_LIMIT = 20_000  # characters painted per message
ENTRY_LIMIT = 500  # messages mounted per trace (each is a widget)
ROLE_STYLES = {
    "system": "bold #e5c07b",
    "developer": "bold #e5c07b",
    "user": "bold #61afef",
    "assistant": "bold #c678dd",
    "tool": "bold #98c379",
    "function": "bold #98c379",
}


@dataclass
class ThreadEntry:
    role: str  # system | user | assistant | tool | tool call | note
    text: str
    detail: str = ""  # e.g. the llm span's name and duration, a tool's name
    span_id: str | None = None


def _content_text(content: Any) -> str:
    """A message's content as text: strings as they are, parts joined, images named."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, dict):
                kind = p.get("type")
                if kind in ("text", "input_text", "output_text") and isinstance(p.get("text"), str):
                    parts.append(p["text"])
                elif kind in ("image_url", "input_image", "image"):
                    parts.append("[image]")
                else:
                    parts.append(full_text(p))
            else:
                parts.append(str(p))
        return "\n".join(parts)
    return full_text(content)


def _tool_calls_text(calls: Any) -> str:
    out = []
    for c in calls if isinstance(calls, list) else []:
        if not isinstance(c, dict):
            continue
        fn = c.get("function") if isinstance(c.get("function"), dict) else c
        name = fn.get("name") or "?"
        args = fn.get("arguments", fn.get("input", ""))
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except ValueError:
                pass
        out.append(f"→ {name}({full_text(args) if not isinstance(args, str) else args})")
    return "\n".join(out)


def _tool_names(calls: Any) -> list[str]:
    names = []
    for c in calls if isinstance(calls, list) else []:
        if isinstance(c, dict):
            fn = c.get("function") if isinstance(c.get("function"), dict) else c
            if isinstance(fn.get("name"), str):
                names.append(fn["name"])
    return names


def _messages_in(value: Any) -> list[dict[str, Any]] | None:
    """The chat messages an llm span input holds, or None when it is not a chat."""
    if isinstance(value, dict):
        for key in ("messages", "prompt", "input"):
            if isinstance(value.get(key), list):
                return _messages_in(value[key])
        if "role" in value:
            return [value]
        return None
    if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value):
        return value
    return None


def _messages_out(value: Any) -> list[dict[str, Any]]:
    """The assistant message(s) of an llm span output."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"role": "assistant", "content": value}]
    if isinstance(value, dict):
        if isinstance(value.get("choices"), list):
            return _messages_out(value["choices"])
        if isinstance(value.get("message"), dict):
            return [value["message"]]
        if "role" in value or "content" in value or "tool_calls" in value:
            return [{"role": value.get("role", "assistant"), **value}]
        return [{"role": "assistant", "content": full_text(value)}]
    if isinstance(value, list):
        out: list[dict[str, Any]] = []
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("message"), dict):
                out.append(item["message"])
                break  # the first choice is the one the task used
            if isinstance(item, dict) and "role" in item:
                out.append(item)
        return out or [{"role": "assistant", "content": full_text(value)}]
    return [{"role": "assistant", "content": str(value)}]


def _message_key(m: dict[str, Any]) -> str:
    return json.dumps([m.get("role"), _content_text(m.get("content")).strip(), _tool_calls_text(m.get("tool_calls"))],
                      ensure_ascii=False)


def thread_entries(trace: TraceData) -> list[ThreadEntry]:
    """The conversation of a trace, oldest first."""
    entries: list[ThreadEntry] = []
    seen: dict[str, int] = {}
    tool_results: set[str] = set()
    announced: list[str] = []  # tool names the assistant asked for, not yet run
    skipped_scorer_calls = 0
    spans = sorted(
        (s for s in trace.spans if s.type in ("llm", "tool")),
        key=lambda s: (s.start is None, s.start or 0.0),
    )
    for span in spans:
        if span.in_scorer:
            if span.type == "llm":
                skipped_scorer_calls += 1
            continue
        rec = span.record
        if span.type == "tool":
            args = rec.get("input")
            result = rec.get("output")
            detail = " · ".join(b for b in (span.name, format_duration(span.duration)) if b)
            if span.name in announced:
                announced.remove(span.name)  # the assistant's message already shows the call
            else:
                text = f"{span.name}({'' if args is None else args if isinstance(args, str) else full_text(args)})"
                entries.append(ThreadEntry("tool call", text, format_duration(span.duration), span.span_id))
            if result is not None:
                rtext = result if isinstance(result, str) else full_text(result)
                tool_results.add(rtext.strip())
                entries.append(ThreadEntry("tool", rtext, detail, span.span_id))
            if rec.get("error") is not None:
                entries.append(ThreadEntry("error", _content_text(rec["error"]), span.name, span.span_id))
            continue
        msgs = _messages_in(rec.get("input"))
        if msgs is None and rec.get("input") is not None:
            msgs = [{"role": "user", "content": rec["input"]}]
        used: dict[str, int] = {}
        for m in msgs or []:
            key = _message_key(m)
            used[key] = used.get(key, 0) + 1
            if used[key] <= seen.get(key, 0):
                continue  # history re-sent with this call
            seen[key] = seen.get(key, 0) + 1
            role = str(m.get("role") or "user")
            content = _content_text(m.get("content"))
            if role == "tool" and content.strip() in tool_results:
                continue  # already shown as the tool span's result
            calls = _tool_calls_text(m.get("tool_calls"))
            entries.append(ThreadEntry(role, content + (("\n" if content else "") + calls if calls else ""),
                                       _role_detail(m), span.span_id))
        detail = " · ".join(b for b in (span.name, format_duration(span.duration)) if b)
        for m in _messages_out(rec.get("output")):
            key = _message_key(m)
            seen[key] = seen.get(key, 0) + 1
            content = _content_text(m.get("content"))
            calls = _tool_calls_text(m.get("tool_calls"))
            announced.extend(_tool_names(m.get("tool_calls")))
            entries.append(ThreadEntry(str(m.get("role") or "assistant"),
                                       content + (("\n" if content else "") + calls if calls else ""),
                                       detail, span.span_id))
        if rec.get("error") is not None:
            entries.append(ThreadEntry("error", _content_text(rec["error"]), span.name, span.span_id))
    if skipped_scorer_calls:
        entries.append(ThreadEntry("note", f"{skipped_scorer_calls} LLM call(s) made by scorers are not shown "
                                           "(see the tree view)"))
    return entries


def _role_detail(m: dict[str, Any]) -> str:
    bits = [m.get("name"), m.get("tool_call_id")]
    return " · ".join(str(b) for b in bits if b)


def entry_text(entry: ThreadEntry) -> Text:
    t = Text(no_wrap=False, end="")
    style = ROLE_STYLES.get(entry.role, "bold #e06c75" if entry.role == "error" else "bold")
    if entry.role == "tool call":
        style = "bold #e5c07b"
    if entry.role == "note":
        t.append(safe_text(entry.text, 400), STYLE_NOTE)
        return t
    t.append(entry.role, style)
    if entry.detail:
        t.append("  " + safe_text(entry.detail, 60), "dim")
    t.append("\n")
    body = entry.text
    t.append(safe_text(body[:MESSAGE_LIMIT], newlines=True))
    if len(body) > MESSAGE_LIMIT:
        t.append(f"\n… showing {MESSAGE_LIMIT:,} of {len(body):,} characters (tree view, e opens all)", STYLE_NOTE)
    return t


class ThreadView(VerticalScroll, can_focus=True):
    """The conversation as a scrollable list of messages."""

    HELP_GROUP = "Thread"
    BINDINGS = [
        Binding("j,down", "scroll_down", "Scroll down", show=False, id="thread.scroll-down"),
        Binding("k,up", "scroll_up", "Scroll up", show=False, id="thread.scroll-up"),
        Binding("g,home", "scroll_home", "Top", show=False, id="thread.top"),
        Binding("G,end", "scroll_end", "Bottom", show=False, id="thread.bottom"),
        Binding("ctrl+d,pagedown", "page_down", "Page down", show=False, id="thread.page-down"),
        Binding("ctrl+u,pageup", "page_up", "Page up", show=False, id="thread.page-up"),
    ]

    def compose(self) -> ComposeResult:
        return iter(())

    def show_trace(self, trace: TraceData) -> None:
        self.remove_children()
        entries = thread_entries(trace)
        if not entries:
            self.mount(Static(Text("No LLM calls in this trace (the tree view shows every span).", "dim"),
                              classes="thread-empty"))
            return
        shown = entries[:ENTRY_LIMIT]
        widgets = [Static(entry_text(e), classes=f"thread-msg role-{e.role.replace(' ', '-')}") for e in shown]
        if len(entries) > len(shown):
            widgets.append(Static(Text(f"… {len(entries) - len(shown):,} more messages not shown "
                                       f"(showing {len(shown):,} of {len(entries):,}; the tree view has every span)",
                                       STYLE_NOTE)))
        self.mount_all(widgets)
        self.scroll_home(animate=False)
