"""Adapters turn one driver's or ORM's execution into :class:`~dbopt.QueryEvent`s."""
