"""Prometheus metrics and their exporter."""
