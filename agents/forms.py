"""The service page's form: hiring the service (the same limits as the API, DESIGN.md section 2)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import URLValidator

from lib.wallets import Chain

MAX_REFERENCE_URLS = 5


class HireForm(forms.Form):
    brief = forms.CharField(
        min_length=10,
        max_length=3000,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 6, "minlength": 10, "maxlength": 3000}),
        help_text="What you need, 10 to 3,000 characters.",
    )
    reference_urls = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "https://example.com/inspiration.png"}),
        help_text=f"Up to {MAX_REFERENCE_URLS} links, one per line.",
    )
    payment_chain = forms.ChoiceField(choices=Chain.choices, initial=Chain.SOLANA)

    def __init__(self, *args: Any, buyer_chain: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Base transfers bind by their sender: only a buyer signed in with a Base wallet pays there
        # in one step. A Solana transfer binds by its memo, from any wallet, so Solana is always offered.
        if buyer_chain == Chain.SOLANA:
            field = self.fields["payment_chain"]
            if isinstance(field, forms.ChoiceField):
                field.choices = [(Chain.SOLANA.value, Chain.SOLANA.label)]

    def clean_reference_urls(self) -> list[str]:
        lines = [line.strip() for line in self.cleaned_data["reference_urls"].splitlines() if line.strip()]
        if len(lines) > MAX_REFERENCE_URLS:
            raise forms.ValidationError(f"At most {MAX_REFERENCE_URLS} reference links.")
        validate = URLValidator(schemes=["http", "https"])
        for line in lines:
            if len(line) > 2000:
                raise forms.ValidationError("A reference link is longer than 2,000 characters.")
            try:
                validate(line)
            except forms.ValidationError:
                raise forms.ValidationError(f"Not an http(s) link: {line[:80]}") from None
        return lines
