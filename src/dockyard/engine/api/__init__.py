"""The Engine API over aiohttp: server.py builds the application (version negotiation, error
bodies); one module per resource adds its routes."""
