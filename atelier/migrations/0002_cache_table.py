"""Django's cache table (CACHE_URL's default, the database cache) comes from `migrate` too, so a
database set up with `migrate` alone has every table the app uses. `createcachetable` skips a table
that exists, and creates none when no cache is a database cache."""

from django.core.management import call_command
from django.db import migrations


def create_cache_tables(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("atelier", "0001_rate_limit_counters")]

    operations = [migrations.RunPython(create_cache_tables, migrations.RunPython.noop, elidable=True)]
