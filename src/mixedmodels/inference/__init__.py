"""Inference after fitting: degrees of freedom, tests, intervals, bootstrap, marginal means."""
