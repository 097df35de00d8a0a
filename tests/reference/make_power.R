#!/usr/bin/env Rscript
## Reference binomial confidence intervals for mixedmodels.power's rejection rates.
##
## Usage:  Rscript tests/reference/make_power.R
## Writes power_binomial_ci.json next to this script: for each (x, n, level) the
## Wilson score interval (prop.test without continuity correction) and the
## Clopper-Pearson exact interval (binom.test), as R computes them.

suppressPackageStartupMessages(library(jsonlite))

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f) == 1L) dirname(normalizePath(f)) else normalizePath(".")
})
source(file.path(script_dir, "common.R"))   # package_versions, write_reference_json

cases <- data.frame(
  x = c(0, 1, 5, 11, 50, 83, 199, 200, 3, 37),
  n = c(200, 200, 100, 200, 100, 200, 200, 200, 10, 60),
  level = c(0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.90, 0.99)
)

rows <- lapply(seq_len(nrow(cases)), function(i) {
  x <- cases$x[i]; n <- cases$n[i]; level <- cases$level[i]
  wilson <- suppressWarnings(prop.test(x, n, conf.level = level, correct = FALSE))$conf.int
  exact <- binom.test(x, n, conf.level = level)$conf.int
  list(x = x, n = n, level = level,
       wilson = as.numeric(wilson), clopper_pearson = as.numeric(exact))
})

out <- list(
  id = "power_binomial_ci",
  call = "prop.test(x, n, conf.level = level, correct = FALSE)$conf.int; binom.test(x, n, conf.level = level)$conf.int",
  cases = rows,
  versions = package_versions("jsonlite")
)
write_reference_json(out, file.path(script_dir, "power_binomial_ci.json"))
