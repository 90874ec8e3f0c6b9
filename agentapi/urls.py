"""The agent API (see PROTOCOL.md), mounted at /agent/ by connector/urls.py."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView

from agentapi import views

# drf-spectacular documents DRF views only; the async lease view borrows a stub's schema.
views.lease_view.cls = views.LeaseSchema
views.lease_view.initkwargs = {}

urlpatterns = [
    path("v1/heartbeat", views.HeartbeatView.as_view(), name="agent-heartbeat"),
    path("v1/jobs/lease", views.lease_view, name="agent-jobs-lease"),
    path("v1/jobs/complete", views.BatchCompleteView.as_view(), name="agent-jobs-complete-batch"),
    path("v1/jobs/<int:job_id>/complete", views.CompleteView.as_view(), name="agent-job-complete"),
    path("v1/jobs/<int:job_id>/fail", views.FailView.as_view(), name="agent-job-fail"),
    path("v1/changes", views.ChangesView.as_view(), name="agent-changes"),
    path("v1/schema/", SpectacularAPIView.as_view(
        custom_settings={"PREPROCESSING_HOOKS": ["agentapi.schema.only_agent_api"]}), name="agent-schema"),
    re_path(r"^v1/", views.unknown_endpoint),  # last: a JSON 404 for everything unmatched
]
