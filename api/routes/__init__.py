"""The API's routers, one module per resource; :func:`api.app.create_app` includes them all."""
