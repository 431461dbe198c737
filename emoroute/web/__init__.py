"""The web layer: FastAPI routes for Twilio, the read API and the dashboards, and their dependencies."""
