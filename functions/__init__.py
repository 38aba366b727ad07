"""One Blueprint module per area; ``function_app.py`` registers them all."""
