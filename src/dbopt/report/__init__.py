"""Renderers: dbopt's results as text, JSON, SARIF and a self-contained HTML report."""
