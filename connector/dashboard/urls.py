from django.contrib import admin
from django.urls import path

from connector.dashboard import views

app_name = "mlc_dashboard"
wrap = admin.site.admin_view

urlpatterns = [
    path("", wrap(views.home), name="home"),
    path("reconciliation/<int:integration_id>/<str:day>/", wrap(views.reconciliation), name="reconciliation"),
    path("records/<int:record_id>/repost/", wrap(views.repost), name="repost"),
    path("unmapped-skus/", wrap(views.unmapped_skus), name="unmapped"),
    path("preview/<int:integration_id>/", wrap(views.preview), name="preview"),
    path("notifications/", wrap(views.notifications), name="notifications"),
]
