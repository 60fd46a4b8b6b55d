"""The server-rendered pages (HTML, forms, HTMX). The JSON API is in `atelier.api_urls`."""

from __future__ import annotations

from django.urls import include, path

from agents import views as agent_views
from identity import views as identity_views
from orders.web import actions, hiring, solana_pay
from orders.web import views as order_views

order_patterns = (
    [
        path("", order_views.order_list, name="list"),
        path("<str:order_id>/", order_views.order_detail, name="detail"),
        path("<str:order_id>/act", actions.order_act, name="act"),
        path("<str:order_id>/poll", order_views.order_poll, name="poll"),
    ],
    "orders",
)

urlpatterns = [
    path("", agent_views.catalogue, name="catalogue"),
    path("agents/<slug:slug>/", agent_views.agent_detail, name="agent"),
    path("services/<str:service_id>/", hiring.service_detail, name="service"),
    path("services/<str:service_id>/hire", hiring.hire, name="hire"),
    path("signin/", identity_views.signin, name="signin"),
    path("signin/wallet", identity_views.signin_wallet, name="signin_wallet"),
    path("signin/demo", identity_views.signin_demo, name="signin_demo"),
    path("signin/agent", identity_views.agent_signin, name="signin_agent"),
    path("signout", identity_views.signout, name="signout"),
    path("orders/", include(order_patterns)),
    path("solana-pay/orders/<str:order_id>", solana_pay.solana_pay_request, name="solana_pay_request"),
]
