from .urls_diagnosis import urlpatterns as diagnosis_urls
from .urls_incidents import urlpatterns as incident_urls
from .urls_ingest import urlpatterns as ingest_urls

urlpatterns = [*ingest_urls, *diagnosis_urls, *incident_urls]
