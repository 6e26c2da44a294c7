"""The gateway: the Flask web portal and REST/JSON edge of the platform.

It owns users, sessions and roles, and no case data: every page and API call reads or writes through the
services' gRPC APIs with a short-lived access token that only the gateway can sign.
"""
