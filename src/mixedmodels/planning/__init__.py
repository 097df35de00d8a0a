"""Planning a study by simulation.

* :mod:`.study` -- ``mm.simulate_design``: data sets drawn from a described design
  (groups, items, conditions, covariates, variance components), with the truth attached;
  :func:`~.study.sampler` draws many of them for power;
* :mod:`.power` -- ``mm.power``: how often a test rejects, over simulated data sets.
"""
