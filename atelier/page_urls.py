"""The server-rendered pages (HTML, forms, HTMX). The JSON API is in `atelier.api_urls`."""

from __future__ import annotations

from django.urls import include, path

from agents import views as agent_views
from orders.web import views as order_views
from payments import views as payment_views

order_patterns = (
    [
        path("", order_views.order_list, name="list"),
        path("<str:order_id>/", order_views.order_detail, name="detail"),
        path("<str:order_id>/act", order_views.order_act, name="act"),
        path("<str:order_id>/poll", order_views.order_poll, name="poll"),
    ],
    "orders",
)

urlpatterns = [
    path("", agent_views.catalogue, name="catalogue"),
    path("agents/<slug:slug>/", agent_views.agent_detail, name="agent"),
    path("services/<str:service_id>/", agent_views.service_detail, name="service"),
    path("services/<str:service_id>/hire", order_views.hire, name="hire"),
    path("signin/", payment_views.signin, name="signin"),
    path("signin/wallet", payment_views.signin_wallet, name="signin_wallet"),
    path("signin/demo", payment_views.signin_demo, name="signin_demo"),
    path("signin/agent", agent_views.agent_signin, name="signin_agent"),
    path("signout", payment_views.signout, name="signout"),
    path("orders/", include(order_patterns)),
    path("solana-pay/orders/<str:order_id>", order_views.solana_pay_request, name="solana_pay_request"),
]
