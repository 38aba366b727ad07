"""TrustGate: the single Azure Functions app (Python v2 programming model).

Registers one Blueprint per area and nothing else: no I/O and no required setting at import
time, so indexing never fails with "0 functions found".
"""

import azure.functions as func

from functions.accounts import accounts_bp
from functions.audit import audit_bp
from functions.datastore import datastore_bp
from functions.devices import devices_bp
from functions.direct_uploads import direct_uploads_bp
from functions.health import health_bp
from functions.kms import kms_bp
from functions.maintenance import maintenance_bp
from functions.messages import messages_bp
from functions.operator import operator_bp
from functions.tokens import tokens_bp
from functions.uploads import uploads_bp

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

for blueprint in (
    health_bp,
    devices_bp,
    uploads_bp,
    accounts_bp,
    kms_bp,
    datastore_bp,
    tokens_bp,
    maintenance_bp,
    messages_bp,
    audit_bp,
    direct_uploads_bp,  # direct-to-blob uploads
    operator_bp,  # device and account lifecycle (operator API)
):
    app.register_functions(blueprint)
