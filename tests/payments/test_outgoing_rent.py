"""An outgoing transfer never costs the escrow more than a network fee.

The rent farm: an attacker sends 0.01 USDC that cannot pay anything (an unknown memo) from a token
account it closes in the same transaction. A return that re-creates the account pays ~0.00204 SOL of
rent from the escrow hot wallet, which the attacker takes back by closing the account again, every
scan round. Returns and refunds now go only to a token account that exists when the transfer is
built, of an owner who signed the paying transaction; anything else is held for staff.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    approve_checked,
    close_account,
    get_associated_token_address,
)
from spl.token.models import ApproveCheckedParams, CloseAccountParams

from orders.paying import escrow_scan
from payments import chains
from payments.models import OutgoingTransfer, Payment, TransferStatus
from payments.tasks import process_transfer
from tests.payments import solana_helpers
from tests.payments.solana_helpers import LAMPORTS_PER_SOL, USDC

CYCLES = 3
STAKE = 10_000  # 0.01 USDC: at the automatic-return minimum


@pytest.fixture
def fresh_solana(settings: Any, db: None) -> Iterator[Any]:
    with solana_helpers.running_devchain() as solana:
        solana_helpers.use_devchain(settings, solana)
        yield solana


def lamports(url: str, address: Pubkey | str) -> int:
    return int(solana_helpers.rpc(url, "getBalance", str(address), {"commitment": "confirmed"})["value"])


def account_exists(url: str, address: Pubkey) -> bool:
    info = solana_helpers.rpc(url, "getAccountInfo", str(address), {"encoding": "base64"})
    return info["value"] is not None


def farm_once(url: str, attacker: Keypair, memo: str) -> str:
    """Send the whole USDC account's 0.01 to escrow with a memo that pays nothing, and close the
    account in the same transaction (its rent goes back to the attacker)."""
    instructions = chains.client("solana").payment_instructions()
    mint = Pubkey.from_string(instructions.token)
    source = get_associated_token_address(attacker.pubkey(), mint)
    close = close_account(
        CloseAccountParams(
            program_id=TOKEN_PROGRAM_ID, account=source, dest=attacker.pubkey(), owner=attacker.pubkey(), signers=[]
        )
    )
    return solana_helpers.send_instructions(
        url,
        attacker,
        [
            solana_helpers.token_transfer(attacker, mint, Pubkey.from_string(instructions.token_account), STAKE),
            solana_helpers.memo(attacker, memo),
            close,
        ],
    )


def send_everything() -> None:
    for transfer in OutgoingTransfer.objects.exclude(status=TransferStatus.CONFIRMED):
        process_transfer(transfer.pk)
        process_transfer(transfer.pk)


def test_the_rent_farm_costs_the_escrow_nothing_beyond_fees(fresh_solana: Any) -> None:
    url = fresh_solana.url
    escrow = chains.client("solana").payment_instructions().escrow_address
    attacker = solana_helpers.new_wallet(url, sol=LAMPORTS_PER_SOL, usdc=STAKE)
    mint = Pubkey.from_string(chains.client("solana").payment_instructions().token)
    attacker_account = get_associated_token_address(attacker.pubkey(), mint)

    # The attacker's SOL, counting the rent locked in its USDC account (its own to take back).
    def attacker_sol() -> int:
        locked = lamports(url, attacker_account) if account_exists(url, attacker_account) else 0
        return lamports(url, attacker.pubkey()) + locked

    escrow_before, attacker_before = lamports(url, escrow), attacker_sol()

    for cycle in range(CYCLES):
        if not account_exists(url, attacker_account):
            break  # nothing came back to close: the farm has stopped
        farm_once(url, attacker, f"atl-nobody-{cycle}")
        escrow_scan("solana")
        send_everything()

    escrow_spent = escrow_before - lamports(url, escrow)
    attacker_gain = attacker_sol() - attacker_before
    print(f"rent farm over {CYCLES} cycles: escrow spent {escrow_spent} lamports, attacker gained {attacker_gain}")
    assert escrow_spent == 0, f"the escrow paid {escrow_spent} lamports for returns nobody can receive"
    assert attacker_gain < 0, "the attacker paid its own fees and gained nothing"
    held = OutgoingTransfer.objects.get(kind="return")
    assert held.status == TransferStatus.HELD
    assert "no USDC account" in held.held_reason
    assert not account_exists(url, attacker_account)


def test_a_return_goes_to_the_source_account_when_it_is_still_open(fresh_solana: Any) -> None:
    """A plain mistaken transfer (an unknown memo) comes back, and costs only the fee."""
    url = fresh_solana.url
    escrow = chains.client("solana").payment_instructions().escrow_address
    sender = solana_helpers.new_wallet(url, usdc=5 * USDC)
    instructions = chains.client("solana").payment_instructions()
    solana_helpers.pay_order(url, sender, instructions, USDC, "atl-nobodysreference")
    before = lamports(url, escrow)
    escrow_scan("solana")
    send_everything()
    returned = OutgoingTransfer.objects.get(kind="return")
    assert returned.status == TransferStatus.CONFIRMED
    assert chains.client("solana").token_balance(str(sender.pubkey())) == 5 * USDC
    assert before - lamports(url, escrow) == 5000  # one signature's fee, no rent


def test_a_transfer_its_owner_did_not_sign_is_held_with_the_candidates(fresh_solana: Any) -> None:
    """A swap-shaped payment: USDC leaves an account whose owner (a pool) never signed; the signer
    moved it as a delegate. An underpayment is held for staff, never sent to the pool."""
    url = fresh_solana.url
    instructions = chains.client("solana").payment_instructions()
    mint = Pubkey.from_string(instructions.token)
    pool = solana_helpers.new_wallet(url, usdc=50 * USDC)
    buyer = solana_helpers.new_wallet(url, usdc=0)
    pool_account = get_associated_token_address(pool.pubkey(), mint)
    approve = approve_checked(
        ApproveCheckedParams(
            program_id=TOKEN_PROGRAM_ID,
            source=pool_account,
            mint=mint,
            delegate=buyer.pubkey(),
            owner=pool.pubkey(),
            amount=10 * USDC,
            decimals=6,
            signers=[],
        )
    )
    solana_helpers.send_instructions(url, pool, [approve])
    transfer = solana_helpers.token_transfer(buyer, mint, Pubkey.from_string(instructions.token_account), USDC)
    # transferChecked from the pool's account, the buyer signing as its delegate
    accounts = list(transfer.accounts)
    accounts[0] = AccountMeta(pool_account, is_signer=False, is_writable=True)
    routed = Instruction(transfer.program_id, transfer.data, accounts)
    signature = solana_helpers.send_instructions(url, buyer, [routed, solana_helpers.memo(buyer, "atl-nobody")])
    escrow_scan("solana")
    payment = Payment.objects.get(tx_hash=signature)
    assert payment.payer == str(pool.pubkey())
    assert not payment.payer_signed
    assert str(buyer.pubkey()) in payment.signers
    send_everything()
    held = OutgoingTransfer.objects.get(kind="return")
    assert held.status == TransferStatus.HELD
    assert "did not sign" in held.held_reason
    assert chains.client("solana").token_balance(str(pool.pubkey())) == 49 * USDC  # nothing went to the pool
