"""POST /api/v1/diagnose/: diagnose a pasted log or e-mail without opening an incident."""

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from errorcodes.api.serializers import FamilyField

from ..diagnosis import diagnose
from ..permissions import customers_for

MAX_TEXT_LENGTH = 200_000  # a whole try-log fits; beyond that the caller should send the failing part


class DiagnoseSerializer(serializers.Serializer):
    text = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=MAX_TEXT_LENGTH,
        help_text=_("Job details, a try-log or an e-mail, in English or Korean. Required unless code is given."),
    )
    family = FamilyField(
        help_text=_("Status-code family, e.g. netbackup or media_manager; read from the text when absent"),
    )
    code = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=2**31 - 1, help_text=_("The job's status code")
    )
    customer = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text=_("Customer code: that customer's past incidents come first among the similar ones"),
    )

    def validate_customer(self, value):
        if value in (None, ""):
            return None
        user = self.context["request"].user
        # Unknown and invisible customers get the same answer: nothing is revealed about others.
        customer = customers_for(user).filter(code=value.strip()).first()
        if customer is None:
            raise serializers.ValidationError(
                gettext("No customer {code!r} that you may see.").format(code=value), code="does_not_exist"
            )
        return customer

    def validate(self, attrs):
        if not (attrs.get("text") or "").strip() and attrs.get("code") is None:
            raise serializers.ValidationError(
                {"text": [gettext("Give the text to diagnose (a log or an e-mail), or a code.")]}, code="required"
            )
        return attrs


class DiagnosisStatusCodeSerializer(serializers.Serializer):
    family = serializers.CharField()
    code = serializers.IntegerField()
    message = serializers.CharField()
    category = serializers.CharField()
    level = serializers.IntegerField()
    level_source = serializers.CharField()
    explanation = serializers.CharField()
    recommended_action = serializers.CharField()


class DiagnosisCandidateSerializer(serializers.Serializer):
    family = serializers.CharField()
    code = serializers.IntegerField()
    message = serializers.CharField(allow_null=True)
    score = serializers.IntegerField(help_text=_("0-100"))
    how = serializers.ChoiceField(
        choices=["exact code", "exact message", "embedded message", "partial message", "fuzzy"]
    )


class DiagnosisConfidencePartSerializer(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.FloatField()
    weight = serializers.FloatField()
    note = serializers.CharField()


class DiagnosisSimilarIncidentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    customer = serializers.CharField()
    client = serializers.CharField()
    policy = serializers.CharField()
    family = serializers.CharField()
    code = serializers.IntegerField()
    state = serializers.CharField()
    occurrences = serializers.IntegerField()
    last_seen = serializers.DateTimeField()
    score = serializers.IntegerField()
    why = serializers.ChoiceField(choices=["same code", "similar text"])
    resolution = serializers.CharField()
    resolution_method = serializers.CharField()


class DiagnosisSerializer(serializers.Serializer):
    """Documents the answer; the view returns the diagnosis as diagnose() builds it."""

    family = serializers.CharField(allow_null=True)
    code = serializers.IntegerField(allow_null=True)
    identified_by = serializers.CharField(allow_null=True)
    status_code = DiagnosisStatusCodeSerializer(allow_null=True)
    candidates = DiagnosisCandidateSerializer(many=True)
    level = serializers.IntegerField()
    confidence = serializers.FloatField()
    confidence_parts = DiagnosisConfidencePartSerializer(many=True)
    evidence = serializers.ListField(child=serializers.CharField())
    reasons = serializers.ListField(child=serializers.CharField())
    recommended_actions = serializers.ListField(child=serializers.CharField())
    similar_incidents = DiagnosisSimilarIncidentSerializer(many=True)


class DiagnoseView(GenericAPIView):
    """Find the status code in a log or e-mail and say what to do; nothing is saved."""

    serializer_class = DiagnoseSerializer
    # A calculation: read-only tokens may use it (see TokenScopePermission).
    writes_nothing = True
    filter_backends = []
    pagination_class = None

    @extend_schema(
        summary="Diagnose a log or e-mail",
        description=(
            "Reads the status code from the text (or matches the text against the knowledge base), "
            "gives the level with a transparent confidence, the evidence, recommended actions and "
            "similar past incidents of the customers you may see."
        ),
        request=DiagnoseSerializer,
        responses=DiagnosisSerializer,
    )
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = diagnose(
            data.get("text") or "",
            family=data.get("family"),
            code=data.get("code"),
            customer=data.get("customer"),
            user=request.user,
        )
        return Response(result)
