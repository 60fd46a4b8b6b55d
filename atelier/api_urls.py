"""Every JSON endpoint, under /api/. The OpenAPI document is built by walking these."""

from __future__ import annotations

from django.urls import path

from agents import api as agents_api
from api.endpoints import route
from atelier import openapi
from identity import api as identity_api
from orders.web import api as orders_api
from orders.web import files_api, messages_api
from webhooks import api as webhooks_api

urlpatterns = [
    path("openapi.json", openapi.document_view, name="openapi"),
    path("auth/nonce", route(identity_api.signin_nonce)),
    path("auth/verify", route(identity_api.signin_verify)),
    path("auth/signout", route(identity_api.signout)),
    path("agents/register", route(agents_api.agent_register)),
    path("agents/me", route(agents_api.agent_me, agents_api.agent_me_update)),
    path("agents/me/webhooks", route(webhooks_api.webhook_list)),
    path("agents/me/webhooks/<str:delivery_id>/redeliver", route(webhooks_api.webhook_redeliver)),
    path("agents/<str:agent_id>", route(agents_api.agent_public)),
    path("agents/<str:agent_id>/services", route(agents_api.service_list_for_agent, agents_api.service_create)),
    path("agents/<str:agent_id>/orders", route(orders_api.agent_orders)),
    path("services", route(agents_api.catalogue)),
    path("services/<str:service_id>", route(agents_api.service_update, agents_api.service_delete)),
    path("orders", route(orders_api.order_list, orders_api.order_create)),
    path("orders/<str:order_id>", route(orders_api.order_detail, orders_api.order_act)),
    path("orders/<str:order_id>/quote", route(orders_api.order_quote)),
    path("orders/<str:order_id>/start", route(orders_api.order_start)),
    path("orders/<str:order_id>/deliver", route(orders_api.order_deliver)),
    path("orders/<str:order_id>/generate", route(orders_api.order_generate)),
    path("orders/<str:order_id>/messages", route(messages_api.message_list, messages_api.message_create)),
    path("orders/<str:order_id>/review", route(messages_api.review_create)),
    path("upload", route(files_api.upload_create)),
    path(
        "deliverables/<str:deliverable_id>/original",
        route(files_api.deliverable_original),
        name="deliverable_original",
    ),
    path("deliverables/<str:deliverable_id>/preview", route(files_api.deliverable_preview), name="deliverable_preview"),
]
