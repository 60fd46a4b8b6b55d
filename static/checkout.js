// Paying from a browser wallet on the order page, with no library: the server builds the Solana
// transaction (the Solana Pay transaction request endpoint), the wallet signs and sends it, and the
// signature goes into the pay form as if pasted. On Base the wallet sends the ERC-20 transfer and
// the hash goes the same way. The page also finds Solana payments by their reference without this.
(() => {
  "use strict";

  const ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

  function base58(bytes) {
    const digits = [];
    for (const byte of bytes) {
      let carry = byte;
      for (let i = 0; i < digits.length; i++) {
        carry += digits[i] * 256;
        digits[i] = carry % 58;
        carry = Math.floor(carry / 58);
      }
      while (carry) { digits.push(carry % 58); carry = Math.floor(carry / 58); }
    }
    let out = "";
    for (const byte of bytes) { if (byte !== 0) break; out += "1"; }
    for (let i = digits.length - 1; i >= 0; i--) out += ALPHABET[digits[i]];
    return out;
  }

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

  function showError(text) {
    const box = document.getElementById("wallet-pay-error");
    if (!box) return;
    box.textContent = text;
    box.hidden = false;
    box.focus();
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

  async function paySolana(button) {
    const provider = (window.phantom && window.phantom.solana) || window.solana;
    if (!provider) throw new Error("No Solana wallet found in this browser: scan the QR code with your phone instead.");
    const connected = await provider.connect();
    const key = ((connected && connected.publicKey) || provider.publicKey).toString();
    const response = await fetch(button.dataset.requestUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ account: key }),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || `The server could not build the transaction (HTTP ${response.status}).`);
    const message = base58(messageOf(fromBase64(body.transaction)));
    const sent = await provider.request({ method: "signAndSendTransaction", params: { message } });
    submitPayment(sent.signature, "solana");
  }

  function word(value) {
    return BigInt(value).toString(16).padStart(64, "0");
  }

  async function payBase(button) {
    const provider = window.ethereum;
    if (!provider) throw new Error("No Ethereum wallet found in this browser: scan the QR code with your phone instead.");
    const [account] = await provider.request({ method: "eth_requestAccounts" });
    if (account.toLowerCase() !== button.dataset.wallet.toLowerCase()) {
      throw new Error(`Switch your wallet to ${button.dataset.wallet}, the one you signed in with, and try again.`);
    }
    const chainId = "0x" + Number(button.dataset.chainId).toString(16);
    if ((await provider.request({ method: "eth_chainId" })) !== chainId) {
      await provider.request({ method: "wallet_switchEthereumChain", params: [{ chainId }] });
    }
    // transfer(address,uint256)
    const data = "0xa9059cbb" + word(button.dataset.escrow) + word(button.dataset.amount);
    const hash = await provider.request({
      method: "eth_sendTransaction",
      params: [{ from: account, to: button.dataset.token, data, value: "0x0" }],
    });
    submitPayment(hash, "base");
  }

  function reveal(root) {
    const solana = root.querySelector ? root.querySelector("#pay-solana-wallet") : null;
    if (solana && ((window.phantom && window.phantom.solana) || window.solana)) solana.hidden = false;
    const base = root.querySelector ? root.querySelector("#pay-base-wallet") : null;
    if (base && window.ethereum) base.hidden = false;
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("#pay-solana-wallet, #pay-base-wallet");
    if (!button) return;
    button.disabled = true;
    submitting = true;
    try {
      await (button.id === "pay-solana-wallet" ? paySolana(button) : payBase(button));
    } catch (error) {
      showError((error && error.message) || String(error));
      button.disabled = false;
      submitting = false;
    }
  });

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
          document.getElementById("payment-state") ||
          document.getElementById("paid-state") ||
          document.querySelector("#order-panel h1"),
      );
    }
    if (next) next.focus({ preventScroll: false });
  });

  document.addEventListener("DOMContentLoaded", () => { reveal(document); announce(); });
  document.addEventListener("htmx:load", (event) => reveal(event.detail.elt));
})();
