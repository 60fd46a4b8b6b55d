# pragma version ~=0.4.3
# ERC-6492 check, never deployed: its creation code runs inside an `eth_call` without `to`
# (compiled with vyper 0.4.3 into Erc6492Check.json). The constructor deploys the counterfactual
# account through its factory when it has no code yet, asks the account EIP-1271's
# isValidSignature, and keeps the answer in an immutable: Vyper appends immutables to the runtime
# code a constructor returns, so the call's result ends with the answer (1 valid, 0 not). Nothing
# persists: an eth_call commits no state.

MAGIC_1271: constant(bytes4) = 0x1626ba7e

VALID: public(immutable(uint256))


@deploy
def __init__(signer: address, digest: bytes32, factory: address, factory_calldata: Bytes[4096], signature: Bytes[2048]):
    if signer.codesize == 0 and factory != empty(address):
        deployed: bool = raw_call(factory, factory_calldata, revert_on_failure=False)
    ok: bool = False
    answer: Bytes[32] = b""
    if signer.codesize > 0:
        ok, answer = raw_call(
            signer,
            abi_encode(digest, signature, method_id=method_id("isValidSignature(bytes32,bytes)")),
            max_outsize=32,
            is_static_call=True,
            revert_on_failure=False,
        )
    valid: uint256 = 0
    if ok and len(answer) == 32 and convert(slice(answer, 0, 4), bytes4) == MAGIC_1271:
        valid = 1
    VALID = valid
