"""One small interface over the two chains we settle on, always spoken as JSON-RPC over HTTP.

`payments.chains.client(chain)` returns the client for "solana" or "base", configured from settings
(`SOLANA_RPC_URL`, `BASE_RPC_URL`, escrow keys, token addresses); the same code runs against
`manage.py devchain` on loopback and against public RPC nodes. There is no "accept any hash" mode.

Errors:
- `ChainUnavailable`: the RPC could not be reached or answered garbage. Nothing was decided: 503.
- `PaymentPending`: the transaction is not final yet (or not visible yet). Re-check later.
- `PaymentRejected`: the transaction can never pay this order; `code` says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

TransferState = Literal["confirmed", "pending", "failed", "expired"]


class ChainError(Exception):
    pass


class ChainUnavailable(ChainError):
    """The chain's RPC is unreachable, timed out, or answered with an error."""


class NoDestination(ChainError):
    """An outgoing transfer has nowhere to land without creating an account at the escrow's cost
    (Solana: the recipient has no USDC token account). Nothing was signed."""


class ChainNotConfigured(ChainUnavailable):
    """This server has no escrow (or no token) configured for the chain: nothing can be asked of it."""


class PaymentPending(ChainError):
    """Seen but not final (or not seen yet): never a rejection."""


class PaymentRejected(ChainError):
    """The transaction can never pay this order. `transfer` is set when USDC did arrive in escrow
    bound to the order (its memo, or its proven payer) but cannot pay it (underpaid, too old): that
    money is the order's to account for and return, not to ignore."""

    def __init__(self, code: str, message: str, *, transfer: VerifiedTransfer | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.transfer = transfer


@dataclass(frozen=True)
class PaymentInstructions:
    """What a buyer needs to pay an order on this chain."""

    chain: str
    escrow_address: str  # Solana: the escrow wallet (owner); Base: the escrow address
    token_account: str  # Solana: the escrow's own USDC associated token account; Base: = escrow_address
    token: str  # Solana: the USDC mint; Base: the USDC ERC-20 contract
    decimals: int = 6
    chain_id: int | None = None  # Base: the EVM chain id (EIP-681 names it); Solana: None


@dataclass(frozen=True)
class VerifiedTransfer:
    tx_hash: str  # normalized: Solana base58 as given, EVM 0x + lowercase hex
    payer: str  # the buyer wallet that signed (Solana) or sent (Base) the transfer
    amount: int  # base units that arrived in the escrow's own token account
    block_time: int  # unix seconds of the block
    final: bool = True  # False: seen at `confirmed` (Solana) or under the confirmation depth (Base)
    # Solana: the token account the USDC left, whether its owner (`payer`) signed, and who did sign.
    source_account: str = ""
    payer_signed: bool = True
    signers: tuple[str, ...] = ()
    # Base: the Transfer log's index in its block (a transfer is one log); Solana: 0, a transaction
    # is one transfer (its escrow deltas summed, bound by its one memo).
    log_index: int = 0


@dataclass(frozen=True)
class InboundTransfer:
    """A final transfer of USDC into the escrow's own token account, as the escrow scan finds it."""

    tx_hash: str
    sender: str  # the wallet the USDC came from (Solana: the source token account's owner; Base: the log's `from`)
    amount: int
    memos: tuple[str, ...]  # Solana: the transaction's memos; Base: none
    block_time: int
    position: str  # the scan cursor once this transfer (and all before it) is decided
    log_index: int = 0  # Base: each Transfer log into escrow is its own transfer; Solana: 0
    source_account: str = ""  # Solana: as VerifiedTransfer
    sender_signed: bool = True
    signers: tuple[str, ...] = ()

    def verified(self) -> VerifiedTransfer:
        return VerifiedTransfer(
            self.tx_hash,
            self.sender,
            self.amount,
            self.block_time,
            source_account=self.source_account,
            payer_signed=self.sender_signed,
            signers=self.signers,
            log_index=self.log_index,
        )


@dataclass(frozen=True)
class SignedTransfer:
    tx_hash: str
    raw: bytes  # exactly what is sent, persisted before the first send
    valid_until: int | None  # Solana: last valid block height of its blockhash; Base: None (nonce-bound)
    nonce: int | None = None  # Base: the hot wallet nonce it consumes


class ChainClient(Protocol):
    chain: str

    def normalize_tx_hash(self, value: str) -> str:
        """The canonical form of a transaction hash; PaymentRejected("malformed_tx_hash") if it cannot be one."""
        ...

    def payment_instructions(self) -> PaymentInstructions: ...

    def verify_payment(
        self,
        tx_hash: str,
        *,
        payer: str | None,
        min_amount: int,
        reference: str,
        not_before: int,
        final: bool = True,
        accounted_logs: frozenset[int] = frozenset(),
    ) -> VerifiedTransfer:
        """Check a successful transfer of the right token into the escrow's own token account, bound
        to the order (Solana: exactly one memo, `reference`; Base: a USDC Transfer log from `payer`,
        the proven payer, which is required there, whoever sent the transaction), of at least
        `min_amount`, in a block not older than `not_before` (unix s). Base passes over the logs in
        `accounted_logs` (they pay something already; "tx_hash_used" when the payer has no other);
        Solana's one transfer per transaction is checked for use before this is called. With
        `final`, only at finality; otherwise a transfer seen but not final yet is checked all the
        same and returned with `final=False`. Raises PaymentPending (not seen) / PaymentRejected /
        ChainUnavailable."""
        ...

    def inbound_transfers(self, after: str) -> tuple[list[InboundTransfer], str]:
        """Final transfers into the escrow's token account after the cursor `after`, oldest first,
        and the cursor at the end of what was scanned."""
        ...

    def token_balance(self, owner: str) -> int:
        """USDC base units held by `owner` (its associated token account on Solana); 0 if none."""
        ...

    def next_nonce(self) -> int | None:
        """Base: the escrow hot wallet's pending nonce. Solana: None."""
        ...

    def sign_transfer(
        self, *, to: str, amount: int, memo: str, nonce: int | None = None, token_account: str = ""
    ) -> SignedTransfer:
        """Sign (do not send) a USDC transfer from the escrow hot wallet to the wallet `to`.
        Solana: into `token_account` if it is open and `to`'s, else into `to`'s existing associated
        token account; NoDestination when neither exists (never creates one: that costs rent)."""
        ...

    def can_receive(self, to: str, token_account: str = "") -> bool:
        """Whether `sign_transfer` would find somewhere to land (Solana: an open USDC account of `to`)."""
        ...

    def fee_balance(self) -> int:
        """The hot wallet's balance of the chain's own coin (lamports, wei): what pays every fee."""
        ...

    def opening_point(self) -> tuple[str, int]:
        """For a ledger that begins now: the scan cursor at the newest final point, and the escrow's
        USDC at exactly that point (Solana: after the newest transaction on its account; Base: at
        the newest final block), so nothing before is scanned and nothing after is in the balance."""
        ...

    def send_raw(self, raw: bytes) -> None:
        """Broadcast signed bytes. Sending the same bytes again is harmless (already known / processed)."""
        ...

    def transfer_status(self, signed: SignedTransfer) -> TransferState:
        """confirmed: final and succeeded. failed: landed and failed. expired: can never land (Solana
        blockhash expired and not seen), safe to sign anew. pending: anything else."""
        ...
