"""TrustGate shared code: configuration, HTTP helpers, crypto, data access and domain services.

Handlers in ``functions/`` stay thin and call into these modules.
"""
