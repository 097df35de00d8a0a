#!/usr/bin/env Rscript
## Issue #19, negative binomial GLMMs with adaptive quadrature: lme4's glmer.nb(nAGQ = 5) on Owls
## (one scalar term, so quadrature applies), and glmer at lme4's theta with the same nAGQ.
## The Python tests (tests/glmm/test_negbin.py) read negbin_agq.json and never run R.
##
## Usage:  Rscript tests/reference/make_negbin_agq.R
## Writes: negbin_agq.json = {"owls_agq5": {call, nb_theta, logLik, deviance, fixef, se,
##   random_sd, minus2logLik_laplace_same_theta}, "versions"}

suppressPackageStartupMessages({
  library(lme4)
  library(MASS)
  library(jsonlite)
})

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f) == 1L) dirname(normalizePath(f)) else normalizePath(".")
})
source(file.path(script_dir, "common.R"))
data_dir <- bundled_data_dir()
versions <- package_versions("lme4", "MASS", "Matrix", "jsonlite")
Owls <- read_dataset("Owls")

form <- SiblingNegotiation ~ FoodTreatment * SexParent + offset(logBroodSize) + (1 | Nest)
m <- glmer.nb(form, data = Owls, nAGQ = 5)
theta <- getME(m, "glmer.nb.theta")
out <- list(
  owls_agq5 = list(
    call = "glmer.nb(SiblingNegotiation ~ FoodTreatment * SexParent + offset(logBroodSize) + (1 | Nest), Owls, nAGQ = 5)",
    nb_theta = theta,
    logLik = as.numeric(logLik(m)),
    deviance = deviance(m),
    fixef = as.list(fixef(m)),
    se = as.list(sqrt(diag(as.matrix(vcov(m))))),
    random_sd = as.numeric(attr(VarCorr(m)$Nest, "stddev"))
  ),
  versions = versions
)
write_json(out, file.path(script_dir, "negbin_agq.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
