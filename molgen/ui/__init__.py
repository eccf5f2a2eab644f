"""The web UI's helpers (app.py builds the page): drawing molecules, result tables and files, form parsing,
and the service that calls the design API."""
