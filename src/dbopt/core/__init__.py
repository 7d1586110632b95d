"""The event pipeline: events, fingerprints, call sites, scopes and the core sinks.

Depends on the standard library and dbopt's base modules only; never on adapters,
``dbopt.postgres`` or web frameworks.
"""
