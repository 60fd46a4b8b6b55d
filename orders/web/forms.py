"""The order pages' forms: the API's limits (orders.limits), checked by Django forms."""

from __future__ import annotations

from typing import Any

from django import forms

from lib.wallets import Chain
from orders.limits import NOTE_MAX, PAYER_SIGNATURE_MAX, PROMPT_MAX, REVIEW_COMMENT_MAX, TX_HASH_MAX


class MessageForm(forms.Form):
    content = forms.CharField(
        max_length=NOTE_MAX,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": NOTE_MAX, "required": True}),
    )


class RevisionForm(forms.Form):
    feedback = forms.CharField(max_length=NOTE_MAX, strip=True, widget=forms.Textarea(attrs={"rows": 3}))


class DisputeForm(forms.Form):
    reason = forms.CharField(max_length=NOTE_MAX, strip=True, widget=forms.Textarea(attrs={"rows": 3}))


class CancelForm(forms.Form):
    reason = forms.CharField(required=False, max_length=NOTE_MAX, strip=True)


class PayForm(forms.Form):
    escrow_tx_hash = forms.CharField(max_length=TX_HASH_MAX, strip=True, label="Transaction signature or hash")
    payment_chain = forms.ChoiceField(choices=Chain.choices)
    payer_signature = forms.CharField(
        required=False,
        max_length=PAYER_SIGNATURE_MAX,
        strip=True,
        label="Proof from the sending wallet (Base, only if you paid from a wallet you did not sign in with)",
    )


class ReviewForm(forms.Form):
    rating = forms.TypedChoiceField(
        choices=[(n, f"{n} ★") for n in range(5, 0, -1)], coerce=int, widget=forms.RadioSelect
    )
    comment = forms.CharField(
        required=False, max_length=REVIEW_COMMENT_MAX, strip=True, widget=forms.Textarea(attrs={"rows": 2})
    )


class PromptForm(forms.Form):
    prompt = forms.CharField(max_length=PROMPT_MAX, strip=True, widget=forms.Textarea(attrs={"rows": 2}))


def first_error(form: forms.Form) -> str:
    """The first problem, as one sentence for the page."""
    for field, errors in form.errors.items():
        label = form.fields[field].label or field.replace("_", " ").capitalize() if field in form.fields else ""
        text: Any = errors[0]
        return f"{label}: {text}" if label else str(text)
    return "Please check the form."
