from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self) -> None:
        # News from the layers below, written into the order's timeline (and its webhooks).
        from orders.core import events, workspace_timer
        from orders.core.effects import workspace_opened
        from payments.signals import transfer_changed

        transfer_changed.connect(events.record_transfer, dispatch_uid="orders.record_transfer")
        # A workspace that opens queues its close (the timer's task moves orders: above the table).
        workspace_opened.connect(workspace_timer.queue_the_close, dispatch_uid="orders.queue_the_close")
