"""Blocked linear algebra for the penalized least-squares problem."""

from .blocked import BlockedCrossProducts, Factorization, TermLayout

__all__ = ["BlockedCrossProducts", "Factorization", "TermLayout"]
