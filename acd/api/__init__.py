"""The ACD's REST API (FastAPI): the original demo's routes and the versioned ``/v1`` API.

Run it: ``python -m uvicorn acd.api.app:app --workers 2``; docs at ``/docs``.
"""
