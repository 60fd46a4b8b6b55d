"""The Solana verifier on real mainnet `getTransaction` payloads (jsonParsed), collected from public
repositories' test fixtures: fixtures/solana/SOURCES.md names each one's repository, path, commit
and signature. Each test points the escrow at the payload's recipient (the escrow of that
transaction, as far as the verifier is concerned) and reads the payload as the chain gave it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from payments.chains import PaymentRejected
from payments.chains import solana_transactions as transactions
from payments.chains.solana_transactions import Escrow

FIXTURES = Path(__file__).with_name("fixtures") / "solana"
MAINNET_USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"


def payload(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def receiving(owner: str, account: str) -> Escrow:
    """An escrow that is `owner`, with `account` as its USDC account."""
    return Escrow(mint=MAINNET_USDC, owner=owner, token_account=account)


def check(escrow: Escrow, tx: dict[str, Any], **kwargs: Any) -> Any:
    options = {"payer": None, "min_amount": 1, "reference": "", "not_before": 0, "is_final": True} | kwargs
    return transactions.checked_payment(tx, escrow, signature=tx["transaction"]["signatures"][0], **options)


def test_a_wallet_transfer_with_a_top_level_memo_pays_and_goes_back_to_its_signing_owner() -> None:
    tx = payload("mainnet-usdc-transferchecked-toplevel-memo-p2p")
    escrow = receiving("3i476kTBBTy7pBGx4CXwJpJ6phuwLQgcwLTdHhU3c7ui", "H51DXRt3ubThhdhNeDMScfkbC5X4AWzYfHaZS3JKEfPh")
    paid = check(
        escrow, tx, reference="transfer", min_amount=1000, payer="8fusVwhgo4oS1fGpZKeRaXrJXQk9auKnAgcj9A97wR3t"
    )
    assert (paid.amount, paid.payer, paid.payer_signed) == (1000, "8fusVwhgo4oS1fGpZKeRaXrJXQk9auKnAgcj9A97wR3t", True)
    assert paid.source_account == "9rB2Poc468mPpY9WMUmaqEPsvJah8SpPB8bKqAjjXp5H"
    with pytest.raises(PaymentRejected) as refused:
        check(escrow, tx, reference="atl-someoneelse")
    assert refused.value.code == "memo_mismatch"


def test_a_transfer_without_a_memo_binds_no_order() -> None:
    tx = payload("mainnet-usdc-transferchecked-nonce-nomemo-explorer")
    escrow = receiving("B2v68t8MXb9zUms1VQKuCcvjrjKDK6fLd8ZngqmBGy1M", "Efc6bp3wVC2iQpewxRmKdZM8vzt9DCFFhL7EiHYNGunv")
    assert transactions.inflow(tx, escrow).memos == []
    assert transactions.inflow(tx, escrow).received == 3_800_000


@pytest.mark.parametrize(
    ("name", "owner", "account", "vault_authority", "signers"),
    [
        pytest.param(
            "mainnet-orca-2hop-sol-usdc-token-pda-vault-closeaccount-p2p",
            "D7XYERWodEGaoN2X855T2qLvse28BSjfkvfCyW2EDBWy",
            "375DTPnEBUjCnvQpGQtg5nRQudwa6oXWEYB15X6MmJs6",
            "B52XRdfTsh8iUGbGEBJLHyDMjhaTW8cAFCmpASGJtnNK",
            4,
            id="orca two-hop swap",
        ),
        pytest.param(
            "derived-mainnet-jupiter-v4-orca-sol-to-usdc-portal",
            "5FHwkrdxntdK24hgQU8qgBjn35Y1zwhz1GZwCkP2UJnM",
            "Tig6ugKWyQqyRgs8CeDCuC3AaenQzRJ5eVpmT5bboDc",
            "7qbRF6YsyGuLUVs6Y1q64bdVrfe4ZcUUz1JRdoVNUJnm",
            1,
            id="jupiter v4 route",
        ),
        pytest.param(
            "derived-mainnet-squadsv3-inner-usdc-transfer-portal",
            "5FHwkrdxntdK24hgQU8qgBjn35Y1zwhz1GZwCkP2UJnM",
            "Tig6ugKWyQqyRgs8CeDCuC3AaenQzRJ5eVpmT5bboDc",
            "45xu19B21vnDMWGWb4M57Yu9D4xZfx5KYroVGhb5RnAF",
            1,
            id="squads v3 vault",
        ),
    ],
)
def test_usdc_out_of_a_program_owned_account_names_its_owner_but_not_as_a_signer(
    name: str, owner: str, account: str, vault_authority: str, signers: int
) -> None:
    """A swap's pool vault or a multisig's vault pays: the account that lost the USDC belongs to a
    program-derived authority that never signed, so a return there would go to the pool, not the
    buyer. The verifier says so, and names who did sign (the candidates staff choose from)."""
    inflow = transactions.inflow(payload(name), receiving(owner, account))
    assert inflow.received > 0
    assert (inflow.sender, inflow.sender_signed) == (vault_authority, False)
    assert len(inflow.signers) == signers
    assert vault_authority not in inflow.signers
