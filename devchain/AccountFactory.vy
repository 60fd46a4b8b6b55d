# pragma version ~=0.4.3
# Deploys SmartAccount at a deterministic address (CREATE2 from a blueprint of SmartAccount), for
# the devchain and tests only; compiled with vyper 0.4.3 into AccountFactory.json. A wallet can
# sign before its account exists (ERC-6492): the signature names this factory and the calldata of
# `createAccount`, which a verifier simulates before asking the account.

blueprint: public(address)


@deploy
def __init__(_blueprint: address):
    self.blueprint = _blueprint


@external
def createAccount(owner: address, salt: bytes32) -> address:
    return create_from_blueprint(self.blueprint, owner, salt=salt, code_offset=3)
