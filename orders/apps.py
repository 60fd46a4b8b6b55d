from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self) -> None:
        # News from the layers below, written into the order's timeline (and its webhooks).
        from orders.core import events
        from payments.signals import transfer_changed

        transfer_changed.connect(events.record_transfer, dispatch_uid="orders.record_transfer")
