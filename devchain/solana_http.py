"""The Solana devchain over HTTP on loopback: POST / JSON-RPC, the faucet and the devchain's own
routes (see `devchain.solana`), one thread per request, in a daemon thread of its own."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devchain.solana import SolanaDevchain
from devchain.solana_jsonrpc import RpcError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20


class SolanaRpcServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], devchain: SolanaDevchain) -> None:
        self.devchain = devchain
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def server_close(self) -> None:
        super().server_close()
        self.devchain.close()


class _Handler(BaseHTTPRequestHandler):
    server: SolanaRpcServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("devchain %s " + format, self.address_string(), *args)

    def do_OPTIONS(self) -> None:
        self._send(204, b"", "text/plain")

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self._send(200, b"ok", "text/plain")
        elif path == "/devchain":
            self._json(200, self.server.devchain.info())
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._json(413, {"error": "body too large"})
            return
        body = self.rfile.read(length)
        path = self.path.split("?", 1)[0]
        devchain = self.server.devchain
        if path == "/":
            self._json(200, devchain.handle_rpc(body))
            return
        try:
            payload = json.loads(body or b"{}")
            if not isinstance(payload, dict):
                raise ValueError("expected a JSON object")
            if path == "/faucet":
                address = payload.get("address")
                if not isinstance(address, str):
                    raise ValueError("address is required")
                amounts = {"sol": int(payload.get("sol", 0)), "usdc": int(payload.get("usdc", 0))}
                opened = bool(payload.get("token_account", False))
                self._json(200, devchain.faucet(address, **amounts, create_token_account=opened))
            elif path == "/devchain/advance":
                slots = int(payload.get("slots", 1))
                if not 0 <= slots <= 100_000:
                    raise ValueError("slots must be 0..100000")
                self._json(200, devchain.advance(slots))
            elif path == "/devchain/finalize":
                self._json(200, devchain.finalize())
            else:
                self._json(404, {"error": "not found"})
        except RpcError as exc:
            self._json(400, {"error": exc.message, "data": exc.data})
        except (ValueError, TypeError, RecursionError) as exc:  # RecursionError: nesting 100,000 deep
            self._json(400, {"error": str(exc)})

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "*")
        self.end_headers()
        self.wfile.write(body)


def serve_solana(
    host: str = "127.0.0.1", port: int = 8899, **opts: Any
) -> tuple[SolanaRpcServer, threading.Thread, SolanaDevchain]:
    """Start a devchain and its RPC server in a daemon thread (port 0: an ephemeral port, see `server.url`).
    Stop with `server.shutdown(); server.server_close()` (which also stops the slot timer)."""
    devchain = SolanaDevchain(**opts)
    try:
        server = SolanaRpcServer((host, port), devchain)
    except OSError:
        devchain.close()
        raise
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.1},
        name=f"solana-devchain-{server.server_address[1]}",
        daemon=True,
    )
    thread.start()
    return server, thread, devchain
