"""Money records are append-only below the application too: on PostgreSQL, triggers refuse UPDATE and
DELETE of ledger lines, and DELETE of payments (pending claims excepted: they hold no money),
outgoing transfers and reconciliations. A correction is a new journal. TRUNCATE (the test suite's
teardown) fires no row triggers. SQLite: the models refuse the same (payments.models.AppendOnlyError)."""

from typing import Any

from django.db import migrations

REFUSE = """
CREATE OR REPLACE FUNCTION atelier_refuse_money_edit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% of % refused: money records are append-only; a correction is a new journal', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON payments_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION atelier_refuse_money_edit();
CREATE TRIGGER payment_kept BEFORE DELETE ON payments_payment
    FOR EACH ROW WHEN (OLD.status <> 'pending') EXECUTE FUNCTION atelier_refuse_money_edit();
CREATE TRIGGER transfer_kept BEFORE DELETE ON payments_outgoingtransfer
    FOR EACH ROW EXECUTE FUNCTION atelier_refuse_money_edit();
CREATE TRIGGER reconciliation_kept BEFORE DELETE ON payments_reconciliation
    FOR EACH ROW EXECUTE FUNCTION atelier_refuse_money_edit();
"""

ALLOW = """
DROP TRIGGER IF EXISTS ledger_append_only ON payments_ledgerentry;
DROP TRIGGER IF EXISTS payment_kept ON payments_payment;
DROP TRIGGER IF EXISTS transfer_kept ON payments_outgoingtransfer;
DROP TRIGGER IF EXISTS reconciliation_kept ON payments_reconciliation;
DROP FUNCTION IF EXISTS atelier_refuse_money_edit();
"""


def refuse(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:  # no parameters: the % in the message stays
            cursor.execute(REFUSE)


def allow(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(ALLOW)


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0004_payment_log_index"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="ledgerentry",
            options={"verbose_name_plural": "ledger entries"},
        ),
        migrations.RunPython(refuse, allow),
    ]
