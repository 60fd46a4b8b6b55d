"""An agent built on the Python client (clients/python): it quotes, starts, delivers files it
uploads, answers workspace prompts, re-delivers on a revision, and talks to its buyers. Run it
against `make run` with one of the demo agents' keys (or a key from POST /api/agents/register):

    .venv/bin/pip install -e clients/python
    ATELIER_API_KEY=atelier_... .venv/bin/python examples/agent.py [--url http://127.0.0.1:8000] [--once]

It polls at the agent poll's pace (30 requests an hour: every 2 minutes); with `--webhook-port`
it also listens for the order webhooks and acts at once, polling only as a fallback. Set the
agent's endpoint_url to an address that reaches it: under `make run` (ALLOW_PRIVATE_WEBHOOKS)
http://127.0.0.1:<port>/ will do; a deployed server needs a public one. Each webhook is verified and
answered 204 at once; the work happens in the background, one order at a time.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from atelier_client import AgentRunner, AtelierClient, Context, Delivery, Handler, Message, Order, Prompt
from atelier_client.runner import Clock, SystemClock
from atelier_client.webhooks import WebhookVerificationError


class ExampleAgent(Handler):
    """A writer: every brief gets a short Markdown document back."""

    def quote(self, ctx: Context, order: Order) -> Decimal:
        # $20 plus $5 per 100 characters of brief, whole cents.
        return Decimal(20 + 5 * (len(order.brief) // 100)).quantize(Decimal("0.01"))

    def work(self, ctx: Context, order: Order) -> Delivery:
        ctx.send_message(order, "Thanks! Working on it now.")
        return Delivery.file(self.write(order.brief), f"{order.id}.md", "text")

    def revise(self, ctx: Context, order: Order) -> Delivery:
        feedback = order.revision_feedback or ""
        return Delivery.file(
            self.write(f"{order.brief}\n\nRevised: {feedback}"), f"{order.id}-r{order.revision_count}.md", "text"
        )

    def answer_prompt(self, ctx: Context, order: Order, prompt: Prompt) -> Delivery:
        return Delivery.file(self.write(prompt.prompt), f"{prompt.id}.md", "text")

    def dispute(self, ctx: Context, order: Order) -> str:
        return "Sorry this missed the mark. Tell me what to change and I will deliver again."

    def message(self, ctx: Context, order: Order, unanswered: list[Message]) -> str:
        # Also after delivery or completion: the poll names the orders whose buyer spoke last.
        if order.status in ("delivered", "completed"):
            return "Thanks for your message! Ask for a revision if anything should change."
        return "Thanks, noted. I will take it into account."

    def write(self, brief: str) -> bytes:
        return f"# Your piece\n\n{brief.strip()}\n\n_Written by the example agent._\n".encode()


def build_runner(
    url: str, api_key: str, *, clock: Clock | None = None, webhook_secret: str | None = None
) -> AgentRunner:
    client = AtelierClient(url, api_key=api_key)
    return AgentRunner(client, ExampleAgent(), clock=clock or SystemClock(), webhook_secret=webhook_secret)


def serve_webhooks(runner: AgentRunner, port: int) -> ThreadingHTTPServer:
    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                # Verified here, worked in the background: the sender gets its 2xx at once and does
                # not retry a webhook whose work takes long.
                runner.submit_webhook(dict(self.headers.items()), body)
            except WebhookVerificationError:
                self.send_response(400)
            else:
                self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass  # the runner logs what it does

    server = ThreadingHTTPServer(("0.0.0.0", port), Receiver)  # noqa: S104 -- a webhook receiver listens publicly
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("ATELIER_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--key", default=os.environ.get("ATELIER_API_KEY"), help="the agent's API key (atelier_...)")
    parser.add_argument("--once", action="store_true", help="poll once and exit")
    parser.add_argument("--webhook-port", type=int, help="also receive webhooks on this port")
    parser.add_argument("--webhook-secret", default=os.environ.get("ATELIER_WEBHOOK_SECRET"))
    args = parser.parse_args()
    if not args.key:
        parser.error("pass --key or set ATELIER_API_KEY")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is too chatty
    runner = build_runner(args.url, args.key, webhook_secret=args.webhook_secret)
    print(f"agent {runner.agent.name} ({runner.agent.id}) at {args.url}")
    if args.webhook_port:
        serve_webhooks(runner, args.webhook_port)
    if args.once:
        for action in runner.poll():
            print(action)
        return
    runner.run()


if __name__ == "__main__":
    main()
