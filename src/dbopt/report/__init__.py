"""Renderers: dbopt's results as text (and, as they land, JSON, SARIF, HTML)."""
