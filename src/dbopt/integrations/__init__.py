"""Framework integrations: a scope per request or test, and what to do with findings.

* :mod:`dbopt.integrations.pytest_plugin`: query budgets and N+1 checks in tests.
* :mod:`dbopt.integrations.flask`: ``DboptFlask`` (extra ``flask``).
* :mod:`dbopt.integrations.asgi`: ``DboptMiddleware`` for Starlette/FastAPI (extra ``asgi``).
* :mod:`dbopt.integrations.django`: adapter and middleware (extra ``django``).

Each framework is imported only by its own module; a missing one raises
:class:`dbopt.MissingDependencyError` naming the extra to install.
"""
