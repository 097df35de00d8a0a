#!/usr/bin/env Rscript
## Reference results for glmer edge cases (issue 22, item 7): models without fixed effects,
## which lme4 fits, and constant responses, which lme4 refuses.
##
## Usage:  Rscript tests/reference/make_glmer_edge_cases.R [DATA_DIR]
##   DATA_DIR defaults to ../../../shared/data relative to this script.
## Writes: glmer_edge_cases.json.  The Python tests read it and never run R.
##
## Fits (tight tolerances, as make_glmm.R's "tight" fits: tolPwrss 1e-12 and tight optimizer
## tolerances, so the numbers are the model's, not lme4's stopping point):
##   no_fixef_binomial        glmer(cbind(incidence, size - incidence) ~ 0 + (1 | herd), cbpp, binomial)
##   no_fixef_binomial_agq9   the same with nAGQ = 9
##   no_fixef_poisson         glmer(incidence ~ 0 + (1 | herd), cbpp, poisson)
## each with theta, logLik, deviance, AIC, BIC, nobs, df_residual, fitted (all rows), the
## herd modes, and lme4's default fit's logLik (`default_logLik`).
## constant_response: the error message of each glmer call listed (lme4: "Response is constant").

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f) == 1L) dirname(normalizePath(f)) else normalizePath(".")
})
source(file.path(script_dir, "common.R"))   # num, read_dataset, write_reference_json, ...
data_dir <- reference_data_dir()

versions <- package_versions("lme4", "jsonlite")
quiet <- function(expr) suppressMessages(suppressWarnings(expr))
tight <- glmerControl(tolPwrss = 1e-12,
                      optCtrl = list(FtolAbs = 1e-12, FtolRel = 1e-14, XtolRel = 1e-10, maxfun = 1e5))

cbpp <- read_dataset("cbpp")
sleepstudy <- read_dataset("sleepstudy")

fit_case <- function(call_text) {
  m <- quiet(eval(parse(text = sprintf(call_text, ", control = tight"))[[1L]]))
  default <- quiet(eval(parse(text = sprintf(call_text, ""))[[1L]]))
  list(call = sprintf(call_text, ""), theta = num(getME(m, "theta")), logLik = as.numeric(logLik(m)),
       default_logLik = as.numeric(logLik(default)), deviance = deviance(m), AIC = AIC(m), BIC = BIC(m),
       nobs = nobs(m), df_residual = df.residual(m), fixef = num(fixef(m)), fitted = num(fitted(m)),
       ranef = num(ranef(m)$herd[, 1]))
}

error_of <- function(call_text) {
  tryCatch({ quiet(eval(parse(text = call_text)[[1L]])); "no error" },
           error = function(e) conditionMessage(e))
}
zero <- transform(sleepstudy, y = 0, three = 3)
cbpp_none <- transform(cbpp, incidence = 0)

write_reference_json(list(
  no_fixef_binomial = fit_case("glmer(cbind(incidence, size - incidence) ~ 0 + (1 | herd), cbpp, binomial%s)"),
  no_fixef_binomial_agq9 = fit_case(
    "glmer(cbind(incidence, size - incidence) ~ 0 + (1 | herd), cbpp, binomial, nAGQ = 9%s)"),
  no_fixef_poisson = fit_case("glmer(incidence ~ 0 + (1 | herd), cbpp, poisson%s)"),
  constant_response = list(
    poisson_all_zero = error_of("glmer(y ~ Days + (1 | Subject), zero, poisson)"),
    poisson_all_three = error_of("glmer(three ~ Days + (1 | Subject), zero, poisson)"),
    binomial_no_successes = error_of("glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp_none, binomial)")
  ),
  versions = versions
), file.path(script_dir, "glmer_edge_cases.json"))
cat("wrote glmer_edge_cases.json\n")
