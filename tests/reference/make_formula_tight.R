#!/usr/bin/env Rscript
## The glmer cases of make_formula.R again with lme4's tolerances tightened (as make_glmm.R's
## <case>_tight.json): lme4's default PIRLS tolerance (1e-7) leaves cbpp's Laplace deviance
## ~5e-4 above its optimum and its finite-difference Hessian a little off, so its default
## standard errors differ from the same model computed to convergence by about 1 %
## (tests/glmm/test_glmm.py).  The formula tests compare standard errors with these.
##
## Usage:  Rscript tests/reference/make_formula_tight.R [DATA_DIR]
##   DATA_DIR defaults to src/mixedmodels/datasets/data (the package's bundled data).
## Writes: formula_language_tight.json = {"cases": {<id>: {call, fixef_names, fixef, se, theta,
##         logLik, deviance, fit_warnings}}, "control", "versions"}

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f) == 1L) dirname(normalizePath(f)) else normalizePath(".")
})
source(file.path(script_dir, "common.R"))
data_dir <- bundled_data_dir()
versions <- package_versions("lme4", "Matrix", "jsonlite")

cbpp <- read_dataset("cbpp")
Owls <- read_dataset("Owls")
tight <- glmerControl(tolPwrss = 1e-12,
                      optCtrl = list(FtolAbs = 1e-12, FtolRel = 1e-14, XtolRel = 1e-10, maxfun = 1e5))

calls <- c(
  as_numeric_glmer = paste("glmer(cbind(incidence, size - incidence) ~ as.numeric(period) + (1 | herd), cbpp,",
                           "family = binomial, control = tight)"),
  offset_middle_glmer = paste("glmer(SiblingNegotiation ~ FoodTreatment + offset(logBroodSize) + SexParent +",
                              "(1 | Nest), Owls, family = poisson, control = tight)"))

cases <- lapply(names(calls), function(id) {
  f <- eval_capturing(calls[[id]])
  m <- f$value
  list(id = id, call = calls[[id]], fixef_names = names(fixef(m)), fixef = num(fixef(m)),
       se = num(sqrt(diag(as.matrix(vcov(m))))), theta = num(getME(m, "theta")),
       logLik = as.numeric(logLik(m)), deviance = deviance(m), fit_warnings = f$warnings)
})
names(cases) <- names(calls)

write_reference_json(list(cases = cases,
                          control = "glmerControl(tolPwrss = 1e-12, optCtrl = list(FtolAbs = 1e-12, FtolRel = 1e-14, XtolRel = 1e-10, maxfun = 1e5))",
                          versions = versions),
                     file.path(script_dir, "formula_language_tight.json"))
cat("wrote formula_language_tight.json\n")
