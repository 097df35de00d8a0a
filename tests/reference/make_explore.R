#!/usr/bin/env Rscript
## Reference fits for the shrinkage explorer (mixedmodels.explore).
##
## Usage:  Rscript tests/reference/make_explore.R
## Reads explore_<case>_data.csv next to this script (columns cluster, y: data sets
## the explorer simulated, stored so the reference does not depend on the
## simulator) and writes explore_<case>.json: lme4's REML fit of
## y ~ 1 + (1 | cluster) -- coef(), fixef, sigma, the cluster variance, isSingular,
## the REML criterion -- and each cluster's n and mean.

suppressPackageStartupMessages({ library(lme4); library(jsonlite) })

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f) == 1L) dirname(normalizePath(f)) else normalizePath(".")
})
source(file.path(script_dir, "common.R"))   # num, package_versions, write_reference_json

cases <- c(default = "J=16, nbar=8, sigma_u=1.5, sigma_e=2, seed=48",
           singular = "J=16, nbar=8, sigma_u=0.2, sigma_e=2, seed=48",
           nbar3 = "J=16, nbar=3, sigma_u=1.5, sigma_e=2, seed=48")

for (case in names(cases)) {
  d <- read.csv(file.path(script_dir, paste0("explore_", case, "_data.csv")),
                colClasses = c("character", "numeric"))
  d$cluster <- factor(d$cluster, levels = unique(d$cluster))
  warnings_seen <- character()
  m <- withCallingHandlers(
    lmer(y ~ 1 + (1 | cluster), data = d, REML = TRUE),
    message = function(w) { warnings_seen <<- c(warnings_seen, conditionMessage(w)); invokeRestart("muffleMessage") },
    warning = function(w) { warnings_seen <<- c(warnings_seen, conditionMessage(w)); invokeRestart("muffleWarning") })
  vc <- as.data.frame(VarCorr(m))
  out <- list(
    id = paste0("explore_", case),
    settings = unname(cases[[case]]),
    call = "lmer(y ~ 1 + (1 | cluster), data = d, REML = TRUE)",
    cluster = levels(d$cluster),
    n = num(tabulate(d$cluster)),
    ybar = num(tapply(d$y, d$cluster, mean)),
    grand_mean = mean(d$y),
    coef = num(coef(m)$cluster[levels(d$cluster), "(Intercept)"]),
    fixef = num(fixef(m)),
    sigma = sigma(m),
    var_cluster = vc$vcov[vc$grp == "cluster"],
    singular = isSingular(m),
    reml_criterion = num(REMLcrit(m)),
    fit_warnings = warnings_seen,
    versions = package_versions(c("lme4", "Matrix", "jsonlite"))
  )
  write_reference_json(out, file.path(script_dir, paste0("explore_", case, ".json")))
}
