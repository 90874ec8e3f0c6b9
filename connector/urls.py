from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "ml-connector"
admin.site.site_title = "ml-connector"
admin.site.index_title = "Store ↔ Sage sync"
# The list of tables beside every page cost a list 280 px of its 1366: the header's links (Morning
# check, SKUs to map) and the breadcrumbs lead everywhere an accountant goes.
admin.site.enable_nav_sidebar = False

urlpatterns = [
    path("admin/morning/", include("connector.dashboard.urls")),
    path("admin/", admin.site.urls),
    path("agent/", include("agentapi.urls")),
    path("webhooks/", include("connector.webhook_urls")),
]
