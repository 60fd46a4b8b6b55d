"""Any browser wallet, not only `window.solana` and `window.ethereum`: Solana wallets that register
through the Wallet Standard's events and EVM wallets that announce themselves through EIP-6963 each
get a button with their name and icon, on the sign-in page and on the order page, and their errors
show in plain words under the button that was pressed.

The wallets are shims injected before the page's scripts (add_init_script), speaking the two
standards as real wallets do; what a wallet does with a key runs in the test (expose_function): a
real solders Keypair or eth-account key, funded on the devchain, signs, and the devchain runs the
transaction. So the payments here are real devchain payments."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from solders.keypair import Keypair
from solders.signature import Signature

from agents.models import Service
from orders.models import Order, Status
from payments.models import Payment
from tests.e2e.conftest import axe_check
from tests.e2e.test_buyer_flow import BRIEF, order_id_of, seeded_marketplace, shoot, wait_for_status
from tests.e2e.test_checkout import no_overflow
from tests.payments import evm_helpers, solana_helpers

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def icon(colour: str) -> str:
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="8" fill="{colour}"/></svg>'
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


# A Wallet Standard wallet: registers itself both ways the standard allows (a register-wallet event
# now, and again when the app says it is ready), and asks the test (window[hook]) for everything a
# key does. signIn writes the Sign In With Solana text from its input, as the standard's helper does.
STANDARD_WALLET = """
(() => {
  const config = __CONFIG__;
  const call = async (method, payload) => {
    const answer = await window[config.hook](method, payload || {});
    if (answer && answer.error) {
      const error = new Error(answer.error.message);
      error.code = answer.error.code;
      if (answer.error.data) error.data = answer.error.data;
      throw error;
    }
    return answer;
  };
  const account = Object.freeze({
    address: config.address,
    publicKey: Uint8Array.from(config.publicKey),
    chains: config.chains,
    features: config.features,
  });
  let connected = false;
  const signInText = (input) => {
    let text = `${input.domain} wants you to sign in with your Solana account:\\n${input.address || config.address}`;
    if (input.statement) text += `\\n\\n${input.statement}`;
    const fields = [];
    for (const [key, label] of [["uri", "URI"], ["version", "Version"], ["chainId", "Chain ID"], ["nonce", "Nonce"],
        ["issuedAt", "Issued At"], ["expirationTime", "Expiration Time"], ["notBefore", "Not Before"], ["requestId", "Request ID"]]) {
      if (input[key]) fields.push(`${label}: ${input[key]}`);
    }
    if (fields.length) text += `\\n\\n${fields.join("\\n")}`;
    return text;
  };
  const features = {
    "standard:connect": { version: "1.0.0", connect: async () => { await call("connect"); connected = true; return { accounts: [account] }; } },
    "standard:events": { version: "1.0.0", on: () => () => {} },
    "solana:signMessage": { version: "1.0.0", signMessage: async (...inputs) => Promise.all(inputs.map(async ({ message }) => {
      const { signature } = await call("signMessage", { message: Array.from(message) });
      return { signedMessage: message, signature: Uint8Array.from(signature) };
    })) },
    "solana:signIn": { version: "1.0.0", signIn: async (...inputs) => Promise.all(inputs.map(async (input) => {
      await call("connect");
      connected = true;
      const signedMessage = new TextEncoder().encode(signInText(input));
      const { signature } = await call("signMessage", { message: Array.from(signedMessage) });
      return { account, signedMessage, signature: Uint8Array.from(signature), signatureType: "ed25519" };
    })) },
    "solana:signAndSendTransaction": { version: "1.0.0", supportedTransactionVersions: ["legacy", 0],
      signAndSendTransaction: async (...inputs) => Promise.all(inputs.map(async ({ transaction, chain }) => {
        const { signature } = await call("signAndSend", { transaction: Array.from(transaction), chain });
        return { signature: Uint8Array.from(signature) };
      })) },
  };
  for (const name of Object.keys(features)) {
    if (name !== "standard:events" && !config.features.includes(name)) delete features[name];
  }
  const wallet = Object.freeze({
    version: "1.0.0",
    name: config.name,
    icon: config.icon,
    chains: config.chains,
    get accounts() { return connected ? [account] : []; },
    features,
  });
  const callback = ({ register }) => register(wallet);
  window.dispatchEvent(new CustomEvent("wallet-standard:register-wallet", { detail: callback }));
  window.addEventListener("wallet-standard:app-ready", ({ detail }) => callback(detail));
})();
"""

# An EIP-1193 provider announced through EIP-6963 (at load, and on every requestProvider).
EIP6963_WALLET = """
(() => {
  const config = __CONFIG__;
  const provider = {
    request: async ({ method, params }) => {
      const answer = await window[config.hook](method, params || []);
      if (answer && answer.error) {
        const error = new Error(answer.error.message);
        error.code = answer.error.code;
        throw error;
      }
      return answer.result;
    },
    on: () => {},
    removeListener: () => {},
  };
  if (config.injected) window.ethereum = Object.assign(provider, config.injected);
  const info = Object.freeze({ uuid: config.uuid, name: config.name, icon: config.icon, rdns: config.rdns });
  const announce = () => window.dispatchEvent(new CustomEvent("eip6963:announceProvider", { detail: Object.freeze({ info, provider }) }));
  window.addEventListener("eip6963:requestProvider", announce);
  announce();
})();
"""

REJECTED = {"code": 4001, "message": "User rejected the request."}
SOLANA_CHAINS = ["solana:mainnet", "solana:devnet", "solana:localnet"]


class SolanaWallet:
    """The key side of a Wallet Standard shim: signs with a real Keypair, sends to the devchain,
    and answers a preflight failure the way a wallet passes it on (code, message, logs)."""

    def __init__(self, chain_url: str, key: Keypair) -> None:
        self.chain_url, self.key = chain_url, key
        self.reject = False
        self.calls: list[str] = []

    def __call__(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(method)
        if self.reject and method != "connect":
            return {"error": REJECTED}
        if method == "connect":
            return {}
        if method == "signMessage":
            return {"signature": list(bytes(self.key.sign_message(bytes(payload["message"]))))}
        if method == "signAndSend":
            assert payload["chain"] == "solana:localnet", payload["chain"]
            transaction = base64.b64encode(bytes(payload["transaction"])).decode()
            try:
                sent = solana_helpers.sign_and_send(self.chain_url, self.key, transaction)
            except solana_helpers.RpcFailure as failure:
                return {"error": failure.error}
            return {"signature": list(bytes(Signature.from_string(sent)))}
        return {"error": {"code": -32601, "message": f"unsupported: {method}"}}

    def script(self, name: str, colour: str, features: list[str]) -> str:
        config = {
            "name": name,
            "icon": icon(colour),
            "hook": self.hook(name),
            "address": str(self.key.pubkey()),
            "publicKey": list(bytes(self.key.pubkey())),
            "chains": SOLANA_CHAINS,
            "features": ["standard:connect", *features],
        }
        return STANDARD_WALLET.replace("__CONFIG__", json.dumps(config))

    @staticmethod
    def hook(name: str) -> str:
        return "__wallet_" + re.sub(r"\W", "_", name)


class EvmWallet:
    """The key side of an EIP-6963 shim: a real eth-account key on the Base devchain."""

    def __init__(self, chain: Any, account: LocalAccount) -> None:
        self.chain, self.account = chain, account
        self.reject: set[str] = set()
        self.sent: list[str] = []

    def __call__(self, method: str, params: list[Any]) -> dict[str, Any]:
        if method in self.reject:
            return {"error": REJECTED}
        if method == "eth_requestAccounts":
            return {"result": [self.account.address]}
        if method == "eth_chainId":
            return {"result": hex(self.chain.chain.chain_id)}
        if method == "personal_sign":
            message = bytes.fromhex(params[0].removeprefix("0x"))
            return {"result": "0x" + self.account.sign_message(encode_defunct(primitive=message)).signature.hex()}
        if method == "eth_sendTransaction":
            call = params[0]
            assert call["from"].lower() == self.account.address.lower()
            data = bytes.fromhex(call["data"].removeprefix("0x"))
            raw, tx_hash = evm_helpers.sign_tx(self.chain.url, self.account, to=call["to"], data=data)
            evm_helpers.send_raw(self.chain.url, raw)
            self.sent.append(tx_hash)
            return {"result": tx_hash}
        return {"error": {"code": 4200, "message": f"unsupported: {method}"}}

    def script(self, name: str, colour: str, *, injected: dict[str, bool] | None = None) -> str:
        config = {
            "uuid": f"{SolanaWallet.hook(name)}-uuid",
            "name": name,
            "icon": icon(colour),
            "rdns": "test." + name.split()[0].lower(),
            "hook": SolanaWallet.hook(name),
            "injected": injected,
        }
        return EIP6963_WALLET.replace("__CONFIG__", json.dumps(config))


def watched_page(new_context: Any) -> tuple[Any, list[str]]:
    page = new_context().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: errors.append(f"{message.text} at {message.location}") if message.type == "error" else None,
    )
    return page, errors


def page_errors(errors: list[str]) -> list[str]:
    # htmx 2 sets one inline style during the wallet's form submission, which the strict CSP blocks.
    return [error for error in errors if "htmx-2.min.js" not in error]


def option(page: Any, box: str, label: str) -> Any:
    """The list item holding the button called `label` (its error line is inside it)."""
    return page.locator(f"#{box} .wallet-option").filter(has=page.get_by_role("button", name=label, exact=True))


def hire_after_signing_in_with(page: Any, site: Any, service: Service, button: str) -> str:
    page.goto(f"/services/{service.id}/")
    page.get_by_role("link", name="Sign in to hire").click()
    page.get_by_role("button", name=button).click()
    page.wait_for_url(f"{site.url}/services/{service.id}/")
    return hire(page, site)


def hire(page: Any, site: Any, service: Service | None = None) -> str:
    """Order the service whose page is open (or `service`'s), signed in already."""
    if service is not None:
        page.goto(f"/services/{service.id}/")
    page.locator("#id_brief").fill(BRIEF)
    page.get_by_role("button", name="Hire for $25.00").click()
    page.wait_for_url(re.compile(rf"^{re.escape(site.url)}/orders/ord_"))
    wait_for_status(page, "quoted")
    return order_id_of(page.url)


def both_widths(page: Any, path: Path) -> None:
    """Screenshots at 1440 and 390 px, nothing wider than the phone's screen."""
    page.set_viewport_size({"width": 1440, "height": 900})
    shoot(page, path.with_name(path.stem + "-1440.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    no_overflow(page)
    shoot(page, path.with_name(path.stem + "-390.png"))
    page.set_viewport_size({"width": 1280, "height": 900})


def test_solana_wallets_of_the_wallet_standard_each_get_a_button_sign_in_and_pay(
    new_context: Any, site: Any, solana_chain: Any, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    agent = seeded_marketplace()
    service = Service.objects.get(agent=agent.agent, title="Logo in three styles")
    # Solflare Test holds 1 USDC (the order is 25); Backpack Test holds enough.
    solflare = SolanaWallet(solana_chain.url, solana_helpers.new_wallet(solana_chain.url, usdc=1 * solana_helpers.USDC))
    backpack = SolanaWallet(
        solana_chain.url, solana_helpers.new_wallet(solana_chain.url, usdc=100 * solana_helpers.USDC)
    )
    watcher = SolanaWallet(solana_chain.url, Keypair())
    page, errors = watched_page(new_context)
    for wallet, name in ((solflare, "Solflare Test"), (backpack, "Backpack Test"), (watcher, "Watch Only Test")):
        page.expose_function(wallet.hook(name), wallet)
    page.add_init_script(
        solflare.script("Solflare Test", "#fc7227", ["solana:signMessage", "solana:signAndSendTransaction"])
    )
    # Backpack Test signs in only through solana:signIn (no signMessage).
    page.add_init_script(
        backpack.script("Backpack Test", "#e33e3f", ["solana:signIn", "solana:signAndSendTransaction"])
    )
    # A wallet that can neither sign in nor pay is not offered.
    page.add_init_script(watcher.script("Watch Only Test", "#888888", []))
    # Solflare also injects its legacy global: it is the same wallet, listed once.
    page.add_init_script("window.solana = { isSolflare: true, connect: async () => ({}) };")

    page.goto(f"/services/{service.id}/")
    page.get_by_role("link", name="Sign in to hire").click()
    wallets = page.locator("#solana-wallets")
    expect(wallets.get_by_role("button")).to_have_text(["Sign in with Solflare Test", "Sign in with Backpack Test"])
    icons = wallets.locator("img.wallet-icon")
    expect(icons).to_have_count(2)
    assert all(src.startswith("data:image/svg+xml;base64,") for src in icons.evaluate_all("i => i.map(e => e.src)"))

    solflare.reject = True
    page.get_by_role("button", name="Sign in with Solflare Test").click()
    expect(option(page, "solana-wallets", "Sign in with Solflare Test").locator(".wallet-error")).to_contain_text(
        "You rejected the request in Solflare Test"
    )
    expect(page.get_by_role("button", name="Sign in with Solflare Test")).to_be_focused()
    expect(option(page, "solana-wallets", "Sign in with Backpack Test").locator(".wallet-error")).to_be_hidden()
    both_widths(page, screenshots / "wallets-signin-solana-rejected.png")
    axe_check(page)
    solflare.reject = False

    order_id = hire_after_signing_in_with(page, site, service, "Sign in with Backpack Test")
    assert "signMessage" in backpack.calls  # through solana:signIn, the server's own message

    wallets = page.locator("#solana-wallets")
    expect(wallets.get_by_role("button")).to_have_text(["Pay with Solflare Test", "Pay with Backpack Test"])
    page.get_by_role("button", name="Pay with Solflare Test").click()
    short = option(page, "solana-wallets", "Pay with Solflare Test").locator(".wallet-error")
    expect(short.locator("p")).to_contain_text("USDC")
    assert "-32002" not in short.locator("p").inner_text()
    assert "custom program error" not in short.locator("p").inner_text()
    both_widths(page, screenshots / "wallets-checkout-solana-short.png")
    axe_check(page)

    # A server that refuses first answers with a sentence (code insufficient_usdc): shown as it is.
    sentence = "This wallet holds 1.00 USDC; 25.00 USDC is due."
    endpoint = re.compile(r"/solana-pay/orders/")
    refusal = json.dumps({"error": sentence, "code": "insufficient_usdc"})
    page.route(endpoint, lambda route: route.fulfill(status=400, content_type="application/json", body=refusal))
    page.get_by_role("button", name="Pay with Solflare Test").click()
    expect(short.locator("p")).to_have_text(sentence)
    page.unroute(endpoint)

    # Topped up, Solflare Test pays this order (the memo binds it, whoever pays) ...
    solana_helpers.fund_wallet(solana_chain.url, solflare.key.pubkey(), sol=0, usdc=30 * solana_helpers.USDC)
    page.get_by_role("button", name="Pay with Solflare Test").click()
    wait_for_status(page, "paid")
    order = Order.objects.get(pk=order_id)
    assert (order.status, order.payment_chain) == (Status.PAID, "solana")
    assert Payment.objects.get(order=order).payer == str(solflare.key.pubkey())

    # ... and Backpack Test pays the next one.
    second_id = hire(page, site, service)
    page.get_by_role("button", name="Pay with Backpack Test").click()
    wait_for_status(page, "paid")
    assert Payment.objects.get(order_id=second_id).payer == str(backpack.key.pubkey())
    # The browser logs the refusal it was made to receive; nothing else may fail.
    unexpected = [error for error in page_errors(errors) if "status of 400" not in error or "/solana-pay/" not in error]
    assert not unexpected, "\n".join(errors)


def test_evm_wallets_announced_through_eip6963_each_get_a_button_sign_in_and_pay(
    new_context: Any, site: Any, settings: Any, base_chain: Any, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    evm_helpers.point_settings(settings, base_chain, confirmations=2)
    agent = seeded_marketplace()
    service = Service.objects.get(agent=agent.agent, title="Logo in three styles")
    rabby = EvmWallet(base_chain, evm_helpers.new_wallet(base_chain.url, usdc=100 * 10**6))
    coinbase = EvmWallet(base_chain, evm_helpers.new_wallet(base_chain.url, usdc=100 * 10**6))
    sneaky = EvmWallet(base_chain, evm_helpers.new_wallet(base_chain.url))
    sneaky_name = '<img src=x id="sneaky">Sneaky'

    def install(page: Any) -> None:
        for wallet, name in ((rabby, "Rabby Test"), (coinbase, "Coinbase Test"), (sneaky, sneaky_name)):
            page.expose_function(SolanaWallet.hook(name), wallet)
        # Rabby Test is window.ethereum too: listed once.
        page.add_init_script(rabby.script("Rabby Test", "#7084ff", injected={"isRabby": True, "isMetaMask": True}))
        page.add_init_script(coinbase.script("Coinbase Test", "#0052ff"))
        # A name with markup and an icon that is no data: URI: shown as text, with no image.
        page.add_init_script(
            sneaky.script(sneaky_name, "#000000").replace("data:image/svg+xml", "https://evil.example/x.svg#")
        )

    page, errors = watched_page(new_context)
    install(page)
    page.goto(f"/services/{service.id}/")
    page.get_by_role("link", name="Sign in to hire").click()
    wallets = page.locator("#base-wallets")
    expect(wallets.get_by_role("button")).to_have_text(
        ["Sign in with Rabby Test", "Sign in with Coinbase Test", f"Sign in with {sneaky_name}"]
    )
    expect(wallets.locator("img.wallet-icon")).to_have_count(2)
    expect(page.locator("#sneaky")).to_have_count(0)
    both_widths(page, screenshots / "wallets-signin.png")

    order_id = hire_after_signing_in_with(page, site, service, "Sign in with Coinbase Test")
    wallets = page.locator("#base-wallets")
    expect(wallets.get_by_role("button")).to_have_text(
        ["Pay with Rabby Test", "Pay with Coinbase Test", f"Pay with {sneaky_name}"]
    )

    coinbase.reject = {"eth_sendTransaction"}
    page.get_by_role("button", name="Pay with Coinbase Test").click()
    expect(option(page, "base-wallets", "Pay with Coinbase Test").locator(".wallet-error")).to_contain_text(
        "You rejected the request in Coinbase Test"
    )
    # Rabby Test holds another account than the one signed in: it is told which to switch to.
    page.get_by_role("button", name="Pay with Rabby Test").click()
    expect(option(page, "base-wallets", "Pay with Rabby Test").locator(".wallet-error")).to_contain_text(
        f"Switch Rabby Test to {coinbase.account.address}"
    )
    both_widths(page, screenshots / "wallets-checkout-base-errors.png")

    coinbase.reject = set()
    page.get_by_role("button", name="Pay with Coinbase Test").click()
    expect(page.locator("#payment-pending")).to_be_visible()
    evm_helpers.mine(base_chain.url, 2)
    wait_for_status(page, "paid")
    order = Order.objects.get(pk=order_id)
    assert (order.status, order.payment_chain, order.escrow_tx_hash) == (Status.PAID, "base", coinbase.sent[0])
    assert not page_errors(errors), "\n".join(errors)

    # The other wallet signs in as well, in a browser of its own.
    other, other_errors = watched_page(new_context)
    install(other)
    other.goto("/signin/")
    other.get_by_role("button", name="Sign in with Rabby Test").click()
    expect(other.locator(".top .who")).to_contain_text(re.compile(re.escape(rabby.account.address[:8]), re.IGNORECASE))
    # ... and pays an order of its own.
    rabby_order = hire(other, site, service)
    other.get_by_role("button", name="Pay with Rabby Test").click()
    expect(other.locator("#payment-pending")).to_be_visible()
    evm_helpers.mine(base_chain.url, 2)
    wait_for_status(other, "paid")
    assert Order.objects.get(pk=rabby_order).escrow_tx_hash == rabby.sent[0]
    assert not page_errors(other_errors), "\n".join(other_errors)


# What wallets and nodes say, and what the buyer reads instead (a fragment of the sentence).
ERRORS: list[tuple[dict[str, Any], str, str]] = [
    ({"code": 4001, "message": "User rejected the request."}, "base", "You rejected"),
    ({"name": "WalletSignTransactionError", "message": "User rejected the request"}, "solana", "You rejected"),
    ({"code": "ACTION_REJECTED", "message": "user rejected action"}, "base", "You rejected"),
    (
        {
            "code": -32002,
            "message": "Transaction simulation failed: Error processing Instruction 2: custom program error: 0x1",
            "data": {"logs": ["Program log: Error: insufficient funds"]},
        },
        "solana",
        "enough USDC",
    ),
    (
        {
            "code": -32002,
            "message": "Transaction simulation failed: Attempt to debit an account but found no "
            "record of a prior credit.",
        },
        "solana",
        "enough SOL to pay the network fee",
    ),
    ({"message": "Transfer: insufficient lamports 5000, need 2039280"}, "solana", "enough SOL"),
    (
        {"message": "Program 11111111111111111111111111111111 failed: custom program error: 0x1"},
        "solana",
        "enough SOL",
    ),
    ({"code": -32000, "message": "insufficient funds for gas * price + value"}, "base", "enough ETH on Base"),
    ({"code": 3, "message": "execution reverted: ERC20: transfer amount exceeds balance"}, "base", "enough USDC"),
    ({"code": -32002, "message": "Request of type 'eth_requestAccounts' already pending"}, "base", "already has a"),
    ({"code": 4902, "message": "Unrecognized chain ID"}, "base", "does not know the Base network"),
    ({"message": "Something odd happened"}, "solana", "could not finish this"),
]


def test_wallet_errors_read_in_plain_words_with_the_raw_text_kept(new_context: Any, site: Any) -> None:
    from playwright.sync_api import expect

    page, errors = watched_page(new_context)
    page.goto("/signin/")
    # No wallet in this browser: each list says so.
    expect(page.locator("#solana-wallets .wallet-none")).to_be_visible()
    expect(page.locator("#base-wallets .wallet-none")).to_be_visible()
    for error, chain, expected in ERRORS:
        plain, raw = page.evaluate(
            """([fields, chain]) => {
                const error = Object.assign(new Error(fields.message), fields);
                const { plain, raw } = AtelierWallets.describeError(error, { walletName: "Test Wallet", chain });
                return [plain, raw];
            }""",
            [error, chain],
        )
        assert expected in plain, (error, plain)
        assert str(error["message"]) in raw
        assert "-32002" not in plain
        assert "0x1" not in plain
    assert not page_errors(errors), "\n".join(errors)
