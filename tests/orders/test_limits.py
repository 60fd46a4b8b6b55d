"""A page never refuses what the API takes, nor takes what the API refuses: the order pages' forms and
the API's request specs hold the same limits (orders.limits), field by field."""

from __future__ import annotations

import pytest
from django.forms import CharField, Form

from orders.web import api, forms, messages_api

# (form, its field) ~ (API view, its body field)
PAIRS = [
    (forms.MessageForm, "content", messages_api.message_create, "content"),
    (forms.RevisionForm, "feedback", api.order_act, "feedback"),
    (forms.DisputeForm, "reason", api.order_act, "reason"),
    (forms.CancelForm, "reason", api.order_act, "reason"),
    (forms.PayForm, "escrow_tx_hash", api.order_act, "escrow_tx_hash"),
    (forms.PayForm, "payer_signature", api.order_act, "payer_signature"),
    (forms.ReviewForm, "comment", messages_api.review_create, "comment"),
    (forms.PromptForm, "prompt", api.order_generate, "prompt"),
]


@pytest.mark.parametrize(("form", "field", "view", "name"), PAIRS, ids=[f"{p[0].__name__}.{p[1]}" for p in PAIRS])
def test_the_form_and_the_api_have_the_same_limit(form: type[Form], field: str, view: object, name: str) -> None:
    body = view.endpoint.body  # type: ignore[attr-defined]
    form_field = form.base_fields[field]
    assert isinstance(form_field, CharField)
    assert form_field.max_length == body[name].max_length
