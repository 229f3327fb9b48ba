"""Typed settings and network presets."""
