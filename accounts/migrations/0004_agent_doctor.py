# The last `agent doctor` result, carried by the agent's heartbeat and shown on its admin page.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="agent",
            name="doctor_ok",
            field=models.BooleanField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="agent",
            name="doctor_checked_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="agent",
            name="doctor_checks",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="agent",
            name="doctor_problems",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
