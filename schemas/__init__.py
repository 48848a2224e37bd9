"""Marshmallow schemas: one per resource, loading writes and dumping replies."""
