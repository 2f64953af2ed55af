"""Server-rendered pages for engineers: the incident list and an incident's detail."""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from django.views.generic import DetailView, ListView

from . import permissions, workflow
from .api.incident_filters import IncidentFilterSet
from .choices import IncidentState, ResolutionMethod
from .models import Incident, InvalidTransition

ACTION_DONE = {
    "acknowledge": gettext_lazy("Incident #%(id)s acknowledged."),
    "resolve": gettext_lazy("Incident #%(id)s resolved."),
    "escalate": gettext_lazy("Incident #%(id)s escalated."),
    "close": gettext_lazy("Incident #%(id)s closed."),
}

ACTIONS = {
    "acknowledge": workflow.acknowledge,
    "resolve": workflow.resolve,
    "escalate": workflow.escalate,
    "close": workflow.close,
}


class IncidentListView(LoginRequiredMixin, ListView):
    template_name = "incidents/incident_list.html"
    paginate_by = 50
    context_object_name = "incidents"

    def get_queryset(self):
        base = Incident.objects.select_related("customer", "server", "status_code", "assignee")
        base = permissions.restrict(base, self.request.user)
        params = self.request.GET.copy()
        if "active" not in params and "state" not in params:
            params["active"] = "true"
        self.filterset = IncidentFilterSet(params, queryset=base)
        return self.filterset.qs.order_by("-last_seen", "-id")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        query = self.request.GET.copy()
        query.pop("page", None)
        context.update(
            filterset=self.filterset,
            customers=permissions.customers_for(self.request.user).order_by("code"),
            states=IncidentState.choices,
            now=timezone.now(),
            querystring=query.urlencode(),
        )
        return context


class IncidentDetailView(LoginRequiredMixin, DetailView):
    template_name = "incidents/incident_detail.html"
    context_object_name = "incident"

    def get_queryset(self):
        base = Incident.objects.select_related("customer", "server", "status_code", "assignee").prefetch_related(
            "events__actor", "events__origin"
        )
        return permissions.restrict(base, self.request.user)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        incident = self.object
        context.update(
            can_work=permissions.can(self.request.user, permissions.WORK, incident.customer),
            jobs=incident.jobs.order_by("-ended_at", "-job_id")[:20],
            resolution_methods=ResolutionMethod.choices,
            now=timezone.now(),
            diagnosis=incident.diagnosis if isinstance(incident.diagnosis, dict) else {},
        )
        return context


@require_POST
def incident_action(request, pk, action):
    if not request.user.is_authenticated:
        return redirect_to_login(reverse("incidents:detail", args=[pk]))
    incident = get_object_or_404(permissions.restrict(Incident.objects.select_related("customer"), request.user), pk=pk)
    if action not in ACTIONS:
        raise PermissionDenied
    if not permissions.can(request.user, permissions.WORK, incident.customer):
        raise PermissionDenied
    reason = (request.POST.get("reason") or "").strip()
    if not reason:
        messages.error(request, _("A reason is required."))
        return redirect("incidents:detail", pk=pk)
    kwargs = {"user": request.user, "reason": reason}
    if action == "resolve":
        kwargs["resolution"] = request.POST.get("resolution", "")
        method = request.POST.get("method", "")
        kwargs["method"] = method if method in ResolutionMethod.values else ResolutionMethod.MANUAL
    try:
        ACTIONS[action](incident, **kwargs)
    except InvalidTransition as exc:
        messages.error(request, exc.message())
    else:
        messages.success(request, ACTION_DONE[action] % {"id": pk})
    return redirect("incidents:detail", pk=pk)
