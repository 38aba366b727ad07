"""TrustGate: the single Azure Functions app (Python v2 programming model).

Registers one Blueprint per area and nothing else: no I/O and no required setting at import
time, so indexing never fails with "0 functions found".
"""

import azure.functions as func

from functions.devices import devices_bp
from functions.health import health_bp
from functions.messages import messages_bp
from functions.uploads import uploads_bp

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

for blueprint in (health_bp, devices_bp, uploads_bp):
    app.register_functions(blueprint)
app.register_functions(messages_bp)
