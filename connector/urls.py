from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "ml-connector"
admin.site.site_title = "ml-connector"
admin.site.index_title = "Store ↔ Sage sync"

urlpatterns = [
    path("admin/morning/", include("connector.dashboard.urls")),
    path("admin/", admin.site.urls),
    path("agent/", include("agentapi.urls")),
    path("webhooks/", include("connector.webhook_urls")),
]
