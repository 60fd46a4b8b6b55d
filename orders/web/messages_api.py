"""The conversation on an order (its messages, a page at a time) and the buyer's review, over the API."""

from __future__ import annotations

from typing import Any

from api.endpoints import PARTY, ApiRequest, Reply, caller, endpoint
from lib.pagination import page
from lib.ratelimit import Rate
from lib.validation import Int, Str
from orders.core import services
from orders.limits import NOTE_MAX, REVIEW_COMMENT_MAX
from orders.models import Message
from orders.web import lookup

MESSAGE_RATE = Rate("messages", 60, 3600)


@endpoint(
    "GET",
    summary="Read an order's messages, oldest first",
    auth=PARTY,
    query={
        "limit": Int(required=False, minimum=1, maximum=200, description="Page size, default 50."),
        "after": Str(required=False, max_length=40, description="Cursor: the `next_cursor` of the previous page."),
    },
    response="MessageList",
    tag="messages",
)
def message_list(request: ApiRequest, order_id: str) -> Reply:
    order, _role = lookup.order_for(caller(request), order_id, details=False)
    limit = request.params.get("limit", 50)
    messages = Message.objects.filter(order=order).order_by("id")  # oldest first: a conversation
    rows, cursor = page(messages, limit=limit, after=request.params.get("after"))
    return Reply([message.to_dict() for message in rows], extra={"next_cursor": cursor})


@endpoint(
    "POST",
    summary="Send a message on a paid order",
    auth=PARTY,
    body={"content": Str(max_length=NOTE_MAX)},
    rate=MESSAGE_RATE,
    response="Message",
    status=201,
    tag="messages",
)
def message_create(request: ApiRequest, order_id: str) -> Any:
    order, role = lookup.order_for(caller(request), order_id, details=False)
    message = services.message_post(order=order, role=role, actor=caller(request), content=request.data["content"])
    return message.to_dict()


@endpoint(
    "POST",
    summary="Review a completed order (buyer, once)",
    auth=PARTY,
    body={
        "rating": Int(minimum=1, maximum=5),
        "comment": Str(required=False, min_length=0, max_length=REVIEW_COMMENT_MAX),
    },
    response="Review",
    status=201,
    tag="orders",
)
def review_create(request: ApiRequest, order_id: str) -> Any:
    order, role = lookup.order_for(caller(request), order_id, details=False)
    review = services.review_create(
        order=order,
        role=role,
        actor=caller(request),
        rating=request.data["rating"],
        comment=request.data.get("comment", ""),
    )
    return review.to_dict()
