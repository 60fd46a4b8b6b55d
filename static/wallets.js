// Finding the buyer's browser wallets, with no library: Solana wallets through the Wallet Standard's
// two registration events, EVM wallets through EIP-6963's announcements, and the injected globals
// (window.solana / window.phantom.solana, window.ethereum) only for a wallet that did neither.
// Also the wallet list the pages show (name and icon per wallet, an error line under the button
// that was pressed) and the plain-words reading of wallet errors. Shared by signin.js and
// checkout.js, loaded before them; both standards are two events each, so no bundle is needed.
(() => {
  "use strict";

  const listeners = new Set();
  const standard = []; // Wallet Standard wallets, in the order they registered
  const announced = new Map(); // EIP-6963 uuid -> {info, provider}

  function changed() {
    for (const listener of listeners) {
      try { listener(); } catch (error) { console.error(error); }
    }
  }

  // --- Wallet Standard (Solana) ---------------------------------------------------------------------
  function register(...wallets) {
    const added = wallets.filter((wallet) => wallet && !standard.includes(wallet));
    standard.push(...added);
    if (added.length) changed();
    return () => {
      for (const wallet of added) {
        const at = standard.indexOf(wallet);
        if (at >= 0) standard.splice(at, 1);
      }
      changed();
    };
  }
  const api = Object.freeze({ register });
  // A wallet that loads after this script announces itself; one that loaded before waits for app-ready.
  window.addEventListener("wallet-standard:register-wallet", (event) => {
    try { event.detail(api); } catch (error) { console.error(error); }
  });
  window.dispatchEvent(new CustomEvent("wallet-standard:app-ready", { detail: api }));

  // --- EIP-6963 (EVM) -------------------------------------------------------------------------------
  window.addEventListener("eip6963:announceProvider", (event) => {
    const detail = event.detail;
    if (!detail || !detail.info || !detail.provider || typeof detail.provider.request !== "function") return;
    const uuid = String(detail.info.uuid || detail.info.rdns || detail.info.name);
    if (announced.has(uuid) && announced.get(uuid).provider === detail.provider) return;
    announced.set(uuid, { info: detail.info, provider: detail.provider });
    changed();
  });
  window.dispatchEvent(new Event("eip6963:requestProvider"));

  // --- what the pages list --------------------------------------------------------------------------
  // Only a data:image URI becomes an icon (no request to a wallet's server, nothing parsed as HTML).
  function safeIcon(icon) {
    return typeof icon === "string" && /^data:image\/(png|jpeg|gif|webp|svg\+xml)[;,]/i.test(icon) ? icon : "";
  }

  function cleanName(name, fallback) {
    const text = typeof name === "string" ? name.replace(/\s+/g, " ").trim().slice(0, 40) : "";
    return text || fallback;
  }

  function solanaBrand(provider) {
    if (provider.isPhantom) return "Phantom";
    if (provider.isSolflare) return "Solflare";
    if (provider.isBackpack) return "Backpack";
    return "";
  }

  function evmBrand(provider) {
    if (provider.isRabby) return "Rabby";
    if (provider.isCoinbaseWallet) return "Coinbase Wallet";
    if (provider.isBraveWallet) return "Brave Wallet";
    if (provider.isMetaMask) return "MetaMask";
    return "";
  }

  // The injected global is listed only when no standard wallet is the same one: same brand name, or
  // (for an unnamed global) any standard wallet at all, since the global is then most likely one of them.
  function sameWallet(brand, names) {
    if (!names.length) return false;
    if (!brand) return true;
    const wanted = brand.toLowerCase();
    return names.some((name) => name.toLowerCase().startsWith(wanted));
  }

  /** Solana wallets having every feature in `needs`, and (when given) the chain. */
  function solanaWallets({ needs = [], anyOf = [], chain = "" } = {}) {
    const found = [];
    const names = [];
    for (const wallet of standard) {
      const chains = Array.from(wallet.chains || []);
      if (!chains.some((id) => String(id).startsWith("solana:"))) continue;
      names.push(String(wallet.name || ""));
      const features = wallet.features || {};
      if (!("standard:connect" in features) || !needs.every((need) => need in features)) continue;
      if (anyOf.length && !anyOf.some((need) => need in features)) continue;
      if (chain && !chains.includes(chain)) continue;
      found.push({ kind: "standard", id: "ws:" + wallet.name, name: cleanName(wallet.name, "Solana wallet"), icon: safeIcon(wallet.icon), wallet });
    }
    // Phantom-style globals: request() sends a transaction, signMessage() signs in.
    const injected = (window.phantom && window.phantom.solana) || window.solana;
    const can = (name) => injected && typeof injected[name] === "function";
    const canPay = !needs.includes("solana:signAndSendTransaction") || can("request");
    const canSignIn = !anyOf.length || can("signMessage");
    if (can("connect") && canPay && canSignIn && !sameWallet(solanaBrand(injected), names)) {
      found.push({ kind: "injected", id: "injected:solana", name: solanaBrand(injected) || "Solana wallet", icon: "", provider: injected });
    }
    return found;
  }

  /** EVM wallets: every EIP-6963 announcement, then window.ethereum if it is none of them. */
  function evmWallets() {
    const found = [];
    const names = [];
    for (const [uuid, { info, provider }] of announced) {
      names.push(String(info.name || ""));
      found.push({ kind: "eip6963", id: "eip6963:" + uuid, name: cleanName(info.name, "Ethereum wallet"), icon: safeIcon(info.icon), provider });
    }
    const injected = window.ethereum;
    const alreadyListed = found.some((wallet) => wallet.provider === injected);
    if (injected && typeof injected.request === "function" && !alreadyListed && !sameWallet(evmBrand(injected), names)) {
      found.push({ kind: "injected", id: "injected:ethereum", name: evmBrand(injected) || "Ethereum wallet", icon: "", provider: injected });
    }
    return found;
  }

  // --- errors in plain words --------------------------------------------------------------------------
  class WalletError extends Error {
    /** An error already in plain words (e.g. the server's sentence); `raw` is what to show folded. */
    constructor(message, raw = "") {
      super(message);
      this.plain = message;
      this.raw = raw;
    }
  }

  function rawText(error) {
    if (error == null) return "Unknown error";
    if (typeof error !== "object") return String(error);
    const parts = [];
    if (error.code !== undefined) parts.push(String(error.code));
    if (error.name && error.name !== "Error") parts.push(String(error.name) + ":");
    parts.push(String(error.message || ""));
    let data = error.data;
    if (data && typeof data === "object") {
      try { data = JSON.stringify(data); } catch { data = ""; }
    }
    if (data) parts.push(String(data));
    return parts.join(" ").trim().slice(0, 2000) || "Unknown error";
  }

  function isRejection(error, raw) {
    const code = error && typeof error === "object" ? error.code : undefined;
    if (code === 4001 || code === "ACTION_REJECTED" || code === -32003) return true;
    if (error && /UserRejected|UserDeclined/i.test(String(error.name || ""))) return true;
    return /user (rejected|denied|declined|cancell?ed)|approval denied|rejected (the|by the) (request|user)|request (was )?(rejected|cancell?ed)|denied (message|transaction) signature/i.test(raw);
  }

  /**
   * {plain, raw} for an error from a wallet or from our server: `plain` is a sentence for the buyer,
   * `raw` the wallet's own text (shown folded under it), empty when it adds nothing.
   */
  function describeError(error, { walletName = "your wallet", chain = "solana" } = {}) {
    if (error instanceof WalletError) return { plain: error.plain, raw: error.raw };
    const raw = rawText(error);
    const fee = chain === "solana" ? "SOL" : "ETH on Base";
    let plain;
    if (isRejection(error, raw)) {
      plain = `You rejected the request in ${walletName}. Nothing was signed or sent; press the button again when you are ready.`;
    } else if (/no record of a prior credit|insufficient lamports|insufficient ?funds ?for ?(fee|rent|gas)|InsufficientFundsForFee|InsufficientFundsForRent|Program 11111111111111111111111111111111 failed: custom program error: 0x1\b/i.test(raw)) {
      // (The system program's error 1 is a SOL transfer short of lamports; the token program's is USDC.)
      plain = `This wallet does not hold enough ${fee} to pay the network fee. Add a little ${fee} to it and try again.`;
    } else if (/custom program error: 0x1\b|Error: insufficient funds|transfer amount exceeds balance|ERC20InsufficientBalance|exceeds balance/i.test(raw)) {
      plain = "This wallet does not hold enough USDC for this payment. Add USDC to it, or pay from another wallet.";
    } else if (error && error.code === -32002 && chain !== "solana") {
      plain = `${walletName} already has a request waiting: open it and answer that one first.`;
    } else if (/blockhash not found|BlockhashNotFound|expired/i.test(raw)) {
      plain = "The transaction expired before it was sent. Press the button again for a fresh one.";
    } else if (error && (error.code === 4100 || error.code === 4900 || error.code === 4901)) {
      plain = `${walletName} is locked or not connected to this site. Unlock it and try again.`;
    } else if (error && error.code === 4902) {
      plain = `${walletName} does not know the Base network yet. Add Base to it and try again.`;
    } else {
      plain = `${walletName} could not finish this. Try again; what it said is below.`;
    }
    return { plain, raw };
  }

  // --- the list on the page -------------------------------------------------------------------------
  function option(container, wallet, label, onPress, primary) {
    const item = document.createElement("li");
    item.className = "wallet-option";
    const button = document.createElement("button");
    button.type = "button";
    button.className = primary ? "button primary wallet-button" : "button wallet-button";
    button.dataset.walletId = wallet.id;
    if (wallet.icon) {
      const img = document.createElement("img");
      img.src = wallet.icon;
      img.alt = ""; // the button's text already names the wallet
      img.width = 20;
      img.height = 20;
      img.className = "wallet-icon";
      button.append(img);
    }
    const text = document.createElement("span");
    text.textContent = label(wallet);
    button.append(text);
    const status = document.createElement("p");
    status.className = "wallet-status meta";
    status.setAttribute("role", "status");
    const error = document.createElement("div");
    error.className = "wallet-error error";
    error.setAttribute("role", "alert");
    error.hidden = true;
    item.append(button, status, error);
    button.addEventListener("click", async () => {
      button.disabled = true;
      error.hidden = true;
      error.replaceChildren();
      status.textContent = `Waiting for ${wallet.name}: confirm in its window.`;
      try {
        await onPress(wallet, button);
        status.textContent = "";
      } catch (caught) {
        const chain = container.dataset.walletChain;
        const { plain, raw } = describeError(caught, { walletName: wallet.name, chain });
        status.textContent = "";
        const sentence = document.createElement("p");
        sentence.textContent = plain;
        error.append(sentence);
        if (raw && raw !== plain) {
          const details = document.createElement("details");
          const summary = document.createElement("summary");
          summary.textContent = "What the wallet said";
          const code = document.createElement("code");
          code.textContent = raw;
          details.append(summary, code);
          error.append(details);
        }
        error.hidden = false;
        button.disabled = false;
        button.focus();
      }
    });
    return item;
  }

  /**
   * Keep `container` (a list with data-wallet-chain) showing `find()`'s wallets as buttons, as wallets
   * come and go; a button already shown keeps its element (and any error under it). `primary` when
   * paying is the page's main action.
   */
  function showWallets(container, find, label, onPress, { primary = false } = {}) {
    if (container.dataset.walletsShown) return;
    container.dataset.walletsShown = "1";
    const list = container.querySelector(".wallet-list");
    const none = container.querySelector(".wallet-none");
    const draw = () => {
      if (!container.isConnected) { listeners.delete(draw); return; }
      const wallets = find();
      const keep = new Set(wallets.map((wallet) => wallet.id));
      for (const item of Array.from(list.children)) {
        if (!keep.has(item.querySelector("button").dataset.walletId)) item.remove();
      }
      const shown = new Set(Array.from(list.children, (item) => item.querySelector("button").dataset.walletId));
      for (const wallet of wallets) {
        if (!shown.has(wallet.id)) list.append(option(container, wallet, label, onPress, primary));
      }
      if (none) none.hidden = wallets.length > 0;
    };
    listeners.add(draw);
    draw();
  }

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

  /** The first account of a Wallet Standard wallet after `standard:connect`. */
  async function connectStandard(wallet) {
    const output = await wallet.features["standard:connect"].connect();
    const account = (output && output.accounts && output.accounts[0]) || (wallet.accounts && wallet.accounts[0]);
    if (!account) throw new WalletError(`${cleanName(wallet.name, "The wallet")} shared no account with this site. Unlock it and try again.`);
    return account;
  }

  window.AtelierWallets = Object.freeze({
    solanaWallets, evmWallets, showWallets, describeError, WalletError, base58, connectStandard,
  });
})();
