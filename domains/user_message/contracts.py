"""What user_message publishes and the task it sends itself: the only module other domains
may import.

The facts say that a message was sent or read, between whom and when; never its text, which
is private to the two people in the conversation.
"""

from __future__ import annotations

from bus.messages import Event, Task


class MessageSent(Event):
    """`sender_id` sent `recipient_id` a message in their conversation."""

    type = "MESSAGE_SENT"

    message_id: str
    conversation_id: str
    sender_id: str
    recipient_id: str
    sent_at: str


class MessageRead(Event):
    """`reader_id` read their conversation up to and including `message_id`."""

    type = "MESSAGE_READ"

    conversation_id: str
    reader_id: str
    message_id: str
    read_at: str


class DeliverMessage(Task):
    """Push one message to every live connection of its recipient; consumed from
    user_message's task queue."""

    type = "DELIVER_MESSAGE"
    domain = "user_message"

    conversation_id: str
    message_id: str
