"""Memos at any depth: multisig vaults and smart wallets on Solana (Squads and others) run the USDC
transfer and the memo as inner instructions of a program call. The binding memo is the one memo in
the whole transaction, top-level and inner together; two anywhere still refuse.

The program call is real: programs/cpi_memo_vault (C, built with Debian's clang; its README says how)
runs on the devchain's LiteSVM and, signing as its vault PDA, invokes SPL Token transferChecked and
SPL Memo, as Squads' vault_transaction_execute does. No real multisig payload with an inner memo could
be found among public fixtures (tests/payments/fixtures/solana/SOURCES.md lists where we looked).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import get_associated_token_address

from orders.checkout.escrow_scan import escrow_scan
from payments import chains
from payments.models import OutgoingTransfer, Payment, TransferStatus
from tests.payments import solana_helpers
from tests.payments.solana_helpers import USDC
from tests.payments.test_escrow_scan import reconcile_output
from tests.payments.test_order_payments import PRICE_UNITS, Solana, order_for, pay

VAULT_PROGRAM = Pubkey.from_string("CPiMemoVau1t1111111111111111111111111111111")
PROGRAM_FILE = Path(__file__).with_name("programs") / "cpi_memo_vault" / "cpi_memo_vault.so"


@pytest.fixture
def vault_chain(settings: Any, db: None) -> Iterator[Any]:
    with solana_helpers.running_devchain() as devchain:
        devchain.chain.svm.add_program_from_file(VAULT_PROGRAM, PROGRAM_FILE)
        solana_helpers.use_devchain(settings, devchain)
        yield devchain


def vault_call(amount: int, memo: str) -> Instruction:
    """A vault member's call: the program's transfer and memo run inside it (stackHeight 2), signed
    by the vault PDA's seeds."""
    instructions = chains.client("solana").payment_instructions()
    mint = Pubkey.from_string(instructions.token)
    vault, bump = Pubkey.find_program_address([b"vault"], VAULT_PROGRAM)
    data = bytes([bump]) + amount.to_bytes(8, "little") + bytes([6]) + memo.encode()
    return Instruction(
        VAULT_PROGRAM,
        data,
        [
            AccountMeta(vault, is_signer=False, is_writable=False),
            AccountMeta(get_associated_token_address(vault, mint), is_signer=False, is_writable=True),
            AccountMeta(mint, is_signer=False, is_writable=False),
            AccountMeta(Pubkey.from_string(instructions.token_account), is_signer=False, is_writable=True),
            AccountMeta(TOKEN_PROGRAM_ID, is_signer=False, is_writable=False),
            AccountMeta(MEMO_PROGRAM_ID, is_signer=False, is_writable=False),
        ],
    )


def vault_pays(url: str, executor: Keypair, amount: int, memo: str) -> str:
    """A vault member executes the vault's transaction: one top-level instruction, the program call."""
    return solana_helpers.send_instructions(url, executor, [vault_call(amount, memo)])


def fund_vault(url: str, usdc: int) -> str:
    vault, _ = Pubkey.find_program_address([b"vault"], VAULT_PROGRAM)
    solana_helpers.fund_wallet(url, vault, sol=0, usdc=usdc)
    return str(vault)


def test_a_payment_with_its_memo_inside_a_program_call_pays(vault_chain: Any, buyer: Any, agent: Any) -> None:
    chain = Solana(type("Chains", (), {"solana": vault_chain})(), buyer, agent)
    order = order_for(chain, agent)
    vault = fund_vault(vault_chain.url, 100 * USDC)
    tx = vault_pays(vault_chain.url, buyer.secret, PRICE_UNITS, order["payment_reference"])
    seen = solana_helpers.rpc(
        vault_chain.url, "getTransaction", tx, {"encoding": "jsonParsed", "maxSupportedTransactionVersion": 0}
    )
    inner = [ix for group in seen["meta"]["innerInstructions"] for ix in group["instructions"]]
    assert [(ix["program"], ix["stackHeight"]) for ix in inner] == [("spl-token", 2), ("spl-memo", 2)]
    assert all(ix.get("program") != "spl-memo" for ix in seen["transaction"]["message"]["instructions"])

    paid = pay(chain, order, tx)
    assert paid.status_code == 200, paid.body
    assert paid.body["data"]["status"] == "paid"
    payment = Payment.objects.get(tx_hash=tx)
    # The vault paid; it never signs a transaction itself, so money never goes back there by itself.
    assert (payment.payer, payment.payer_signed, payment.signers) == (vault, False, [buyer.wallet])

    # Cancelled, its refund waits for staff: the vault is a program's account, not a wallet.
    assert chain.buyer.api.patch(f"/api/orders/{order['id']}", {"action": "cancel"}).status_code == 200
    refund = OutgoingTransfer.objects.get(order_id=order["id"], kind="refund")
    assert (refund.status, refund.to_address) == (TransferStatus.HELD, "")
    assert "did not sign" in refund.held_reason
    assert "clean" in reconcile_output("solana")


def test_the_escrow_scan_finds_an_inner_memo_too(vault_chain: Any, buyer: Any, agent: Any) -> None:
    chain = Solana(type("Chains", (), {"solana": vault_chain})(), buyer, agent)
    order = order_for(chain, agent)
    fund_vault(vault_chain.url, 100 * USDC)
    vault_pays(vault_chain.url, buyer.secret, PRICE_UNITS, order["payment_reference"])
    escrow_scan("solana")
    assert chain.buyer.api.get(f"/api/orders/{order['id']}").body["data"]["status"] == "paid"


def test_an_inner_memo_and_a_top_level_memo_are_two_memos_and_refuse(vault_chain: Any, buyer: Any, agent: Any) -> None:
    chain = Solana(type("Chains", (), {"solana": vault_chain})(), buyer, agent)
    order = order_for(chain, agent)
    other = order_for(chain, agent)
    fund_vault(vault_chain.url, 100 * USDC)
    call = vault_call(PRICE_UNITS, order["payment_reference"])
    both = solana_helpers.send_instructions(
        vault_chain.url, buyer.secret, [call, solana_helpers.memo(buyer.secret, other["payment_reference"])]
    )
    for target in (order, other):
        refused = pay(chain, target, both)
        assert (refused.status_code, refused.body["code"]) == (400, "memo_mismatch")
