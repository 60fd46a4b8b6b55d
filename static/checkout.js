// Paying from a browser wallet on the order page, with no library: the server builds the Solana
// transaction (the Solana Pay transaction request endpoint), the wallet signs and sends it, and the
// signature goes into the pay form as if pasted. On Base the wallet sends the ERC-20 transfer and
// the hash goes the same way. Every wallet wallets.js finds gets its own button. The page also finds Solana payments by their reference without this.
(() => {
  "use strict";

  const W = window.AtelierWallets;

  function fromBase64(text) {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  }

  // A serialized legacy transaction: shortvec count of signatures, the signatures, the message.
  function messageOf(transaction) {
    let count = 0, shift = 0, at = 0;
    for (;;) {
      const byte = transaction[at++];
      count |= (byte & 0x7f) << shift;
      if (!(byte & 0x80)) break;
      shift += 7;
    }
    return transaction.slice(at + 64 * count);
  }

  // While the wallet's payment is being submitted the page's poll holds off: both would open the
  // message box at once (the poll finds the same payment by its reference) and race to replace it.
  let submitting = false;
  document.addEventListener("htmx:beforeRequest", (event) => {
    if (submitting && event.detail.requestConfig && event.detail.requestConfig.verb === "get") event.preventDefault();
  });
  document.addEventListener("htmx:afterRequest", (event) => {
    if (event.detail.requestConfig && event.detail.requestConfig.verb === "post") submitting = false;
  });

  function submitPayment(hash, chain) {
    const form = document.getElementById("pay-form");
    form.querySelector("#escrow_tx_hash").value = hash;
    form.querySelector("#payment_chain").value = chain;
    form.requestSubmit();
  }

  // The server builds the transaction for this account (the Solana Pay transaction request); its
  // refusal (e.g. a balance too short to pay) is already a sentence for the buyer.
  async function transactionFor(box, address) {
    const response = await fetch(box.dataset.requestUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ account: address }),
    });
    let body = {};
    try { body = await response.json(); } catch { /* not JSON: the status says enough */ }
    if (!response.ok) {
      throw new W.WalletError(body.error || `Atelier could not prepare the payment (HTTP ${response.status}). Try again.`);
    }
    return fromBase64(body.transaction);
  }

  async function paySolana(wallet, button) {
    const box = button.closest("[data-wallet-chain]");
    let signature;
    if (wallet.kind === "standard") {
      const account = await W.connectStandard(wallet.wallet);
      const transaction = await transactionFor(box, account.address);
      const feature = wallet.wallet.features["solana:signAndSendTransaction"];
      const [output] = await feature.signAndSendTransaction({ account, transaction, chain: box.dataset.chainId });
      signature = W.base58(output.signature);
    } else {
      // Phantom's injected provider: connect(), then request() with the base58 message.
      const provider = wallet.provider;
      const connected = await provider.connect();
      const address = ((connected && connected.publicKey) || provider.publicKey).toString();
      const message = W.base58(messageOf(await transactionFor(box, address)));
      signature = (await provider.request({ method: "signAndSendTransaction", params: { message } })).signature;
    }
    submitPayment(signature, "solana");
  }

  function word(value) {
    return BigInt(value).toString(16).padStart(64, "0");
  }

  async function payBase(wallet, button) {
    const box = button.closest("[data-wallet-chain]");
    const provider = wallet.provider;
    const [account] = await provider.request({ method: "eth_requestAccounts" });
    if (!account || account.toLowerCase() !== box.dataset.wallet.toLowerCase()) {
      throw new W.WalletError(`Switch ${wallet.name} to ${box.dataset.wallet}, the account you signed in with, and try again.`);
    }
    const chainId = "0x" + Number(box.dataset.chainId).toString(16);
    if ((await provider.request({ method: "eth_chainId" })) !== chainId) {
      await provider.request({ method: "wallet_switchEthereumChain", params: [{ chainId }] });
    }
    // transfer(address,uint256)
    const data = "0xa9059cbb" + word(box.dataset.escrow) + word(box.dataset.amount);
    const hash = await provider.request({
      method: "eth_sendTransaction",
      params: [{ from: account, to: box.dataset.token, data, value: "0x0" }],
    });
    submitPayment(hash, "base");
  }

  // The poll holds off from the press until the pay form is posted (or the wallet says no): a swap
  // meanwhile would replace the button whose line is to show the wallet's answer.
  function holdingPoll(pay) {
    return async (wallet, button) => {
      submitting = true;
      try {
        await pay(wallet, button);
      } catch (error) {
        submitting = false;
        throw error;
      }
    };
  }

  function reveal(root) {
    if (!root.querySelector) return;
    const solana = root.querySelector("#solana-wallets");
    if (solana) {
      solana.hidden = false;
      W.showWallets(
        solana,
        () => W.solanaWallets({ needs: ["solana:signAndSendTransaction"], chain: solana.dataset.chainId }),
        (wallet) => `Pay with ${wallet.name}`,
        holdingPoll(paySolana),
        { primary: true },
      );
    }
    const base = root.querySelector("#base-wallets");
    if (base) {
      base.hidden = false;
      W.showWallets(base, W.evmWallets, (wallet) => `Pay with ${wallet.name}`, holdingPoll(payBase), { primary: true });
    }
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button.copy-button");
    if (!button) return;
    const text = document.getElementById(button.dataset.copy).textContent.trim();
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Select and copy";
    }
    setTimeout(() => { button.textContent = "Copy"; }, 2000);
  });

  // After a swap: say what changed (a live region outside the swapped part, so it is announced),
  // and move focus somewhere sensible when the buyer's own action caused it (never on a poll).
  let lastStatus = "";
  function announce() {
    const status = document.querySelector("#order-panel .status-line");
    const announcer = document.getElementById("order-announcer");
    if (!status || !announcer) return;
    const text = "Order status: " + status.textContent.replace(/\s+/g, " ").trim();
    if (lastStatus && text !== lastStatus) announcer.textContent = text;
    lastStatus = text;
  }

  function focusable(element) {
    if (!element) return null;
    if (!element.matches("a, button, input, textarea, select, [tabindex]")) element.setAttribute("tabindex", "-1");
    return element;
  }

  document.addEventListener("htmx:afterSettle", (event) => {
    announce();
    const config = event.detail.requestConfig;
    if (!config || config.verb !== "post") return;
    const target = event.detail.target;
    let next = null;
    if (target && target.id === "messages") {
      next = document.getElementById("message-error") || document.getElementById("message-content");
    } else if (target && target.id === "order-panel") {
      next = focusable(
        document.getElementById("panel-error") ||
          document.getElementById("state-note") ||
          document.getElementById("payment-state") ||
          document.getElementById("paid-state") ||
          document.querySelector("#order-panel h1"),
      );
    }
    if (next) next.focus({ preventScroll: false });
  });

  // A message that arrives while the conversation is off screen (below the order on a phone) gets a
  // link to it, instead of landing silently at the bottom of the page.
  document.addEventListener("htmx:oobAfterSwap", (event) => {
    const list = document.getElementById("message-list");
    const tip = document.getElementById("new-message-tip");
    if (!list || !tip || event.detail.target !== list) return;
    const box = list.getBoundingClientRect();
    if (box.top < window.innerHeight && box.bottom > 0) return;
    tip.hidden = false;
  });
  document.addEventListener("click", (event) => {
    const tip = document.getElementById("new-message-tip");
    if (tip && event.target instanceof Element && event.target.closest("#new-message-tip")) tip.hidden = true;
  });

  document.addEventListener("DOMContentLoaded", () => { reveal(document); announce(); });
  document.addEventListener("htmx:load", (event) => reveal(event.detail.elt));
})();
