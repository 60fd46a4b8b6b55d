"""Moving money out of escrow: payouts to agents and refunds to buyers.

`send_transfer` is safe to run any number of times, concurrently or after a crash at any line:
1. under the transfer's row lock, sign once and store the signed bytes (nothing has left yet);
2. send those bytes (a re-send of the same bytes cannot pay twice);
3. under the lock again, record what the chain says: confirmed (ledger row, event), failed
   (visible, retryable), expired (never landed: sign anew next time), or still pending.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.tasks import task
from django.tasks.base import DEFAULT_TASK_QUEUE_NAME
from django.utils import timezone

from lib import requestlog
from lib.tasks import enqueue, retry_later
from payments import chains, ledger
from payments.models import HotWalletNonce, OutgoingTransfer, TransferKind, TransferStatus
from payments.signals import transfer_changed
from payments.transfers import transfer_move

log = logging.getLogger("atelier.payments")

RECHECK_DELAY = timedelta(seconds=20)
RECHECK_CAP = timedelta(minutes=10)


def _event(transfer: OutgoingTransfer, action: str, **data: object) -> None:
    transfer_changed.send(
        sender=OutgoingTransfer,
        transfer=transfer,
        action=action,
        data={
            "transfer_id": transfer.pk,
            "kind": transfer.kind,
            "amount_base_units": transfer.amount_base_units,
            "chain": transfer.chain,
            **data,
        },
    )


def _fail(transfer: OutgoingTransfer, reason: str) -> None:
    transfer_move(transfer, "fail", last_error=reason)
    _event(transfer, f"{transfer.kind}_failed", reason=reason)


def hold(transfer: OutgoingTransfer, reason: str) -> None:
    """Keep a locked pending transfer from being signed until someone decides (see TransferStatus.HELD)."""
    transfer_move(transfer, "hold", held_reason=reason)
    _event(transfer, f"{transfer.kind}_held", reason=reason)


def _allocate_nonce(client: chains.ChainClient, address: str) -> int | None:
    """EVM: the next nonce of the hot wallet, under a row lock so two workers never share one."""
    chain_nonce = client.next_nonce()
    if chain_nonce is None:
        return None
    row, _ = HotWalletNonce.objects.select_for_update().get_or_create(address=address)
    nonce = max(row.next_nonce, chain_nonce)
    row.next_nonce = nonce + 1
    row.save(update_fields=["next_nonce"])
    return nonce


def _sign(transfer_id: int) -> OutgoingTransfer | None:
    """Step 1. Returns the transfer with signed bytes, or None when there is nothing to send."""
    with transaction.atomic():
        transfer = OutgoingTransfer.objects.select_for_update().get(pk=transfer_id)
        requestlog.bind(order_id=transfer.order_id)  # on the task's log lines
        if transfer.status in (TransferStatus.CONFIRMED, TransferStatus.FAILED, TransferStatus.HELD):
            return None  # done, or waiting for staff (or, held, for its recipient's account)
        if transfer.raw_tx:
            return transfer  # signed before (maybe sent, maybe not): re-send the same bytes
        if not transfer.to_address:
            whose = "agent has no payout wallet" if transfer.kind == TransferKind.PAYOUT else "no address to send it to"
            _fail(transfer, f"Cannot send: the {whose} on {transfer.chain}.")
            return None
        client = chains.client(transfer.chain)
        try:
            with transaction.atomic():  # a savepoint: signing that fails gives its nonce back
                nonce = _allocate_nonce(client, client.payment_instructions().escrow_address)
                signed = client.sign_transfer(
                    to=transfer.to_address,
                    amount=transfer.amount_base_units,
                    memo=f"atelier:{transfer.kind}:{transfer.order_id or transfer.payment_id}",
                    nonce=nonce,
                    token_account=transfer.to_token_account,
                )
        except chains.NoDestination:
            hold(transfer, no_account_reason(transfer))
            return None
        except chains.ChainUnavailable as exc:
            # Nothing was signed or sent; stay pending and try again later.
            transfer.attempts += 1
            transfer.last_error = f"Chain unreachable while signing: {exc}"
            transfer.save(update_fields=["attempts", "last_error", "updated_at"])
            return None
        except chains.ChainError as exc:
            _fail(transfer, f"Could not sign: {exc}")
            return None
        transfer_move(
            transfer,
            "sign",
            raw_tx=signed.raw,
            tx_hash=signed.tx_hash,
            valid_until=signed.valid_until,
            nonce=signed.nonce,
        )
        return transfer


def _record(transfer_id: int, state: chains.TransferState) -> TransferStatus:
    """Step 3."""
    with transaction.atomic():
        transfer = OutgoingTransfer.objects.select_for_update().get(pk=transfer_id)
        if transfer.status != TransferStatus.SIGNED:
            return TransferStatus(transfer.status)  # another worker recorded it meanwhile
        if state == "confirmed":
            transfer_move(transfer, "confirm", confirmed_at=timezone.now(), last_error="")
            # A database constraint: a return names its payment, a payout or refund its order.
            if transfer.kind == TransferKind.RETURN and transfer.payment is not None:
                ledger.return_out(transfer.payment, transfer.amount_base_units)
            elif transfer.order is not None:
                ledger.transfer_out(
                    transfer.order,
                    payout=transfer.kind == TransferKind.PAYOUT,
                    chain=transfer.chain,
                    amount=transfer.amount_base_units,
                )
            _event(transfer, f"{transfer.kind}_sent", tx_hash=transfer.tx_hash)
        elif state == "expired":
            # Its blockhash expired and it never landed: it never can, so signing anew is safe.
            transfer_move(transfer, "expire", raw_tx=None, tx_hash="")
        elif state == "failed":
            _fail(transfer, f"The transaction {transfer.tx_hash} failed on-chain.")
        return TransferStatus(transfer.status)


def process_transfer(transfer_id: int) -> TransferStatus:
    """One pass of sign, send, record. Returns the transfer's status afterwards."""
    transfer = _sign(transfer_id)
    if transfer is None:
        return TransferStatus(OutgoingTransfer.objects.values_list("status", flat=True).get(pk=transfer_id))
    client = chains.client(transfer.chain)
    signed = chains.SignedTransfer(
        tx_hash=transfer.tx_hash,
        raw=bytes(transfer.raw_tx or b""),
        valid_until=transfer.valid_until,
        nonce=transfer.nonce,
    )
    try:
        client.send_raw(signed.raw)
        state = client.transfer_status(signed)
    except chains.ChainUnavailable as exc:
        OutgoingTransfer.objects.filter(pk=transfer_id).update(
            attempts=transfer.attempts + 1, last_error=f"Chain unreachable: {exc}", updated_at=timezone.now()
        )
        log.warning("transfer %s: chain unreachable, will retry: %s", transfer_id, exc)
        return TransferStatus.SIGNED
    OutgoingTransfer.objects.filter(pk=transfer_id).update(attempts=transfer.attempts + 1)
    return _record(transfer_id, state)


@task(queue_name=DEFAULT_TASK_QUEUE_NAME)
def send_transfer(transfer_id: int) -> str:
    status = process_transfer(transfer_id)
    if status in (TransferStatus.SIGNED, TransferStatus.PENDING):
        # Not final yet (or the chain was down): look again, a little later each time.
        attempts = OutgoingTransfer.objects.values_list("attempts", flat=True).get(pk=transfer_id)
        retry_later(send_transfer, transfer_id, attempt=attempts, base=RECHECK_DELAY, cap=RECHECK_CAP)
    return str(status)


def no_account_reason(transfer: OutgoingTransfer) -> str:
    return (
        f"{transfer.to_address} has no USDC account on {transfer.chain} to receive it (creating one would cost the "
        "escrow rent); it is sent once that wallet has one: any wallet app opens it when it first receives USDC"
    )


def retry_transfer(transfer: OutgoingTransfer) -> bool:
    """Staff retry. A failed transfer either never got signed or landed and failed on-chain; a held
    one was never signed; none of them moved money, so it is signed anew. Others are just looked at
    again. False for a held transfer with nowhere chosen to send it (`send_held_to`)."""
    if transfer.status == TransferStatus.HELD and not transfer.to_address:
        return False
    if transfer.status in (TransferStatus.FAILED, TransferStatus.HELD):
        transfer_move(transfer, "retry", raw_tx=None, tx_hash="", held_reason="")
    enqueue(send_transfer, transfer.pk)
    return True


def send_held_to(transfer: OutgoingTransfer, address: str) -> None:
    """Staff decided where a held transfer goes (one of the candidates: a signer of the paying
    transaction). It is sent only into an existing USDC account of that wallet, like any other."""
    transfer.to_address, transfer.to_token_account = address, ""
    transfer.save(update_fields=["to_address", "to_token_account", "updated_at"])
    retry_transfer(transfer)


def release_held_transfers() -> int:
    """Scheduled: send each transfer held for want of a USDC account once its recipient has one.
    One account read per held transfer; those held for staff's decision (no address) are skipped."""
    released = 0
    clients: dict[str, chains.ChainClient] = {}
    for transfer in OutgoingTransfer.objects.filter(status=TransferStatus.HELD).exclude(to_address="").order_by("pk"):
        try:
            client = clients.get(transfer.chain) or clients.setdefault(transfer.chain, chains.client(transfer.chain))
            if not client.can_receive(transfer.to_address, transfer.to_token_account):
                continue
        except chains.ChainError as exc:
            log.warning("held transfer %s: cannot look at its recipient: %s", transfer.pk, exc)
            continue
        with transaction.atomic():
            locked = OutgoingTransfer.objects.select_for_update().get(pk=transfer.pk)
            if locked.status == TransferStatus.HELD:
                released += retry_transfer(locked)
    return released
