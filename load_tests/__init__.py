"""Locust load tests: realistic traffic against the service, with the SLO from params.yaml."""
