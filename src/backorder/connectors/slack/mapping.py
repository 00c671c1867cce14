"""A staff message as Slack Block Kit.

Limits from Slack's Block Kit reference (https://api.slack.com/reference/block-kit/blocks):
header ``plain_text`` at most 150 characters; section ``text`` at most 3000; section ``fields``
at most 10 items of at most 2000 characters; context at most 10 elements; at most 50 blocks per
message. ``text`` is the notification fallback and is always sent
(https://api.slack.com/messaging/webhooks)."""

from __future__ import annotations

from typing import Any

from backorder.connectors.base import StaffMessage

HEADER_MAX = 150
SECTION_MAX = 3000
FIELDS_MAX = 10
FIELD_MAX = 2000


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def payload(message: StaffMessage) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(message.title or "backorder", HEADER_MAX), "emoji": True},
        }
    ]
    if message.text:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(message.text, SECTION_MAX)}})
    items = list(message.fields.items())[:FIELDS_MAX]
    if items:
        blocks.append(
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": _cut(f"*{k}*\n{v}", FIELD_MAX)} for k, v in items],
            }
        )
    context = [{"type": "mrkdwn", "text": f"backorder · {message.template or 'message'} · {message.message_id}"}]
    if message.link:
        context.append({"type": "mrkdwn", "text": f"<{message.link}|open>"})
    blocks.append({"type": "context", "elements": context})
    fallback = f"{message.title}\n{message.text}".strip()
    return {"text": _cut(fallback, SECTION_MAX), "blocks": blocks}
