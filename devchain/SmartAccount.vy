# pragma version ~=0.4.3
# A minimal smart account for the devchain and tests only (compiled with vyper 0.4.3 into
# SmartAccount.json; the app and the tests read the JSON and need no compiler).
#
# One owner key. The owner may call `execute` itself, or sign a call that anyone (a relayer, a
# bundler) submits with `executeSigned` and pays the gas for: the USDC then leaves this account in a
# transaction whose `from` is the relayer. `executeBatch` lets an account owned by a relayer carry
# several accounts' signed calls in one transaction, as an ERC-4337 bundler does.
# `isValidSignature` answers EIP-1271 for the owner's signatures over a hash (for a personal_sign
# message: the EIP-191 hash of the message).

MAGIC_1271: constant(bytes4) = 0x1626ba7e
INVALID_1271: constant(bytes4) = 0xffffffff

owner: public(address)
nonce: public(uint256)


@deploy
def __init__(_owner: address):
    self.owner = _owner


@internal
@view
def _signer(digest: bytes32, signature: Bytes[256]) -> address:
    if len(signature) != 65:
        return empty(address)
    r: bytes32 = extract32(signature, 0)
    s: bytes32 = extract32(signature, 32)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    if v < 27:
        v += 27
    return ecrecover(digest, v, r, s)


@external
@payable
def execute(target: address, amount: uint256, data: Bytes[1024]) -> Bytes[256]:
    assert msg.sender == self.owner, "not the owner"
    return raw_call(target, data, max_outsize=256, value=amount)


@external
def executeBatch(targets: DynArray[address, 8], calls: DynArray[Bytes[1024], 8]):
    """Several calls in one transaction, as a bundler does with several users' operations."""
    assert msg.sender == self.owner, "not the owner"
    assert len(targets) == len(calls), "one call per target"
    for i: uint256 in range(len(targets), bound=8):
        raw_call(targets[i], calls[i])


@view
@external
def executeDigest(target: address, data: Bytes[1024], call_nonce: uint256) -> bytes32:
    """What the owner signs (raw, no prefix) for `executeSigned`: EIP-191 version 0x00, bound to
    this account, the chain and the nonce."""
    return keccak256(concat(b"\x19\x00", abi_encode(self, chain.id, call_nonce, target, keccak256(data))))


@external
def executeSigned(target: address, data: Bytes[1024], signature: Bytes[256]) -> Bytes[256]:
    digest: bytes32 = keccak256(concat(b"\x19\x00", abi_encode(self, chain.id, self.nonce, target, keccak256(data))))
    signer: address = self._signer(digest, signature)
    assert signer != empty(address) and signer == self.owner, "not signed by the owner"
    self.nonce += 1
    return raw_call(target, data, max_outsize=256)


@view
@external
def isValidSignature(digest: bytes32, signature: Bytes[256]) -> bytes4:
    signer: address = self._signer(digest, signature)
    if signer != empty(address) and signer == self.owner:
        return MAGIC_1271
    return INVALID_1271
