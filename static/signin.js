// Wallet sign-in: connect, ask Atelier for a single-use nonce and the exact message, have the
// wallet sign it, then post nonce + signature as an ordinary form (the server sets the session).
// Loaded as a file with the page's CSP nonce; no inline handlers.
(() => {
  "use strict";

  function toBase64(bytes) {
    let binary = "";
    for (const b of bytes) binary += String.fromCharCode(b);
    return btoa(binary);
  }

  function toHex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function showError(text) {
    const box = document.getElementById("wallet-error");
    box.textContent = text;
    box.hidden = false;
  }

  async function challengeFor(wallet, chain) {
    const response = await fetch("/api/auth/nonce", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({ wallet, chain }),
    });
    const body = await response.json();
    if (!body.success) throw new Error(body.error);
    return body.data;
  }

  function submit(nonce, signature) {
    document.getElementById("wallet-nonce").value = nonce;
    document.getElementById("wallet-signature").value = signature;
    document.getElementById("wallet-form").submit();
  }

  async function signInSolana() {
    const provider = (window.phantom && window.phantom.solana) || window.solana;
    if (!provider) throw new Error("No Solana wallet found: install Phantom (or a wallet that provides window.solana).");
    const connected = await provider.connect();
    const key = (connected && connected.publicKey) || provider.publicKey;
    const challenge = await challengeFor(key.toString(), "solana");
    const signed = await provider.signMessage(new TextEncoder().encode(challenge.message), "utf8");
    const signature = signed && signed.signature ? signed.signature : signed;
    submit(challenge.nonce, toBase64(signature));
  }

  async function signInEthereum() {
    const provider = window.ethereum;
    if (!provider) throw new Error("No Ethereum wallet found: install MetaMask (or a wallet that provides window.ethereum).");
    const [address] = await provider.request({ method: "eth_requestAccounts" });
    const challenge = await challengeFor(address, "base");
    const message = "0x" + toHex(new TextEncoder().encode(challenge.message));
    const signature = await provider.request({ method: "personal_sign", params: [message, address] });
    submit(challenge.nonce, signature);
  }

  function wire(id, signIn) {
    const button = document.getElementById(id);
    if (!button) return;
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await signIn();
      } catch (error) {
        showError(error && error.message ? error.message : String(error));
        button.disabled = false;
      }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    wire("signin-solana", signInSolana);
    wire("signin-ethereum", signInEthereum);
  });
})();
