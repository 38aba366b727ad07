"""Health endpoint: is the app able to reach its stores?"""

import azure.functions as func

from shared_code.platform.health import check_health
from shared_code.platform.http import handle_errors, json_response

health_bp = func.Blueprint()


@health_bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@handle_errors
def health(req: func.HttpRequest) -> func.HttpResponse:
    """GET /health → 200 ``healthy`` or 503 ``unhealthy`` with the state of Cosmos and Blob Storage."""
    stores = check_health()
    healthy = all(store["status"] == "up" for store in stores.values())
    return json_response(200 if healthy else 503, "healthy" if healthy else "unhealthy", **stores)
