from django.db import migrations, models


class AddIndexConcurrentlyOnPostgreSQL(migrations.AddIndex):
    """CREATE INDEX CONCURRENTLY on PostgreSQL: the events table of a live deployment holds every
    delivery and order version of its retention period, and a plain CREATE INDEX would hold back
    every webhook insert while it reads the whole table. A plain CREATE INDEX elsewhere."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            concurrently = {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}
            schema_editor.add_index(model, self.index, **concurrently)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            concurrently = {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}
            schema_editor.remove_index(model, self.index, **concurrently)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ('accounts', '0010_tenants2k_next_poll_at'),
        ('connector', '0016_adobeflow_waiting_order'),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgreSQL(
            model_name='inboundevent',
            index=models.Index(condition=models.Q(('processed_at__isnull', True)), fields=['received_at'],
                               name='inbound_event_unprocessed'),
        ),
    ]
