// Wallet sign-in: connect, ask Atelier for a single-use nonce and the exact message, have the
// wallet sign it, then post nonce + signature as an ordinary form (the server sets the session).
// Every wallet wallets.js finds gets a button; loaded as a file with the page's CSP nonce.
(() => {
  "use strict";

  const W = window.AtelierWallets;

  function toBase64(bytes) {
    let binary = "";
    for (const b of bytes) binary += String.fromCharCode(b);
    return btoa(binary);
  }

  function toHex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function challengeFor(wallet, chain) {
    const response = await fetch("/api/auth/nonce", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({ wallet, chain }),
    });
    let body = {};
    try { body = await response.json(); } catch { /* not JSON: the status says enough */ }
    if (!body.success) throw new W.WalletError(body.error || `Atelier could not start the sign-in (HTTP ${response.status}). Try again.`);
    return body.data;
  }

  function submit(nonce, signature) {
    document.getElementById("wallet-nonce").value = nonce;
    document.getElementById("wallet-signature").value = signature;
    document.getElementById("wallet-form").submit();
  }

  // The server's Solana message is laid out as Sign In With Solana, so a wallet that offers only
  // `solana:signIn` is given its fields and must write back the very same text.
  function signInInput(message) {
    const lines = message.split("\n");
    const field = (name) => {
      const line = lines.find((text) => text.startsWith(name + ": "));
      return line ? line.slice(name.length + 2) : undefined;
    };
    return {
      domain: lines[0].split(" wants you to sign in")[0],
      address: lines[1],
      statement: lines[3],
      uri: field("URI"),
      version: field("Version"),
      chainId: field("Chain ID"),
      nonce: field("Nonce"),
      issuedAt: field("Issued At"),
      expirationTime: field("Expiration Time"),
    };
  }

  async function signInSolana(wallet) {
    if (wallet.kind === "injected") {
      const provider = wallet.provider;
      const connected = await provider.connect();
      const key = (connected && connected.publicKey) || provider.publicKey;
      const challenge = await challengeFor(key.toString(), "solana");
      const signed = await provider.signMessage(new TextEncoder().encode(challenge.message), "utf8");
      const signature = signed && signed.signature ? signed.signature : signed;
      submit(challenge.nonce, toBase64(signature));
      return;
    }
    const features = wallet.wallet.features;
    const account = await W.connectStandard(wallet.wallet);
    const challenge = await challengeFor(account.address, "solana");
    const message = new TextEncoder().encode(challenge.message);
    if (features["solana:signMessage"]) {
      const [output] = await features["solana:signMessage"].signMessage({ account, message });
      submit(challenge.nonce, toBase64(output.signature));
      return;
    }
    const [output] = await features["solana:signIn"].signIn(signInInput(challenge.message));
    if (new TextDecoder().decode(output.signedMessage) !== challenge.message) {
      throw new W.WalletError(`${wallet.name} wrote the sign-in message differently from Atelier's, so it cannot be checked. Try another wallet.`);
    }
    submit(challenge.nonce, toBase64(output.signature));
  }

  async function signInEthereum(wallet) {
    const provider = wallet.provider;
    const [address] = await provider.request({ method: "eth_requestAccounts" });
    const challenge = await challengeFor(address, "base");
    const message = "0x" + toHex(new TextEncoder().encode(challenge.message));
    const signature = await provider.request({ method: "personal_sign", params: [message, address] });
    submit(challenge.nonce, signature);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const solana = document.getElementById("solana-wallets");
    solana.hidden = false;
    W.showWallets(
      solana,
      () => W.solanaWallets({ anyOf: ["solana:signMessage", "solana:signIn"] }),
      (wallet) => `Sign in with ${wallet.name}`,
      signInSolana,
    );
    const base = document.getElementById("base-wallets");
    base.hidden = false;
    W.showWallets(base, W.evmWallets, (wallet) => `Sign in with ${wallet.name}`, signInEthereum);
  });
})();
