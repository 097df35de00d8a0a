#!/usr/bin/env Rscript
## Reference results for prior weights of zero (issue 22, item 2): what lme4's lmer and glmer
## and R's lm and glm do with rows whose weight is 0.
##
## Usage:  Rscript tests/reference/make_zero_weights.R [DATA_DIR]
##   DATA_DIR defaults to ../../../shared/data relative to this script.
## Writes: zero_weights.json.  The Python tests read it and never run R.
##
## The weights:
##   sleepstudy  wz = 0 on rows 1, 11, 21, ..., 171 and on all ten rows of Subject 372,
##               else w = 1 + Days %% 3 (README's derived column): 27 zero weights, 153 positive,
##               and one subject without a single informative row.
##   cbpp        cw = 0 on rows 1, 5, 9 and 28 (row 28 is herd 8's only row), else 1.
##
## What R does (the semantics mixedmodels follows, see README "Weights"):
##   * estimates: a zero-weight row contributes nothing -- lm, glm and glmer give exactly the
##     fit to the other rows (checked below: `same_as_subset`);
##   * lmer cannot fit at all: its REML criterion has -sum(log(weights)) = Inf, so the optimizer
##     stops at the start (REMLcrit Inf, logLik -Inf, theta = start).  The lmer entry's estimates
##     are therefore lme4's fit to the rows with positive weight (the limit of small weights),
##     and its counts lme4's weighted fit's;
##   * counts: lm and glm leave zero-weight rows out of nobs (and df.residual); lme4's nobs
##     counts every row of the model frame (lmer and glmer), and df.residual = nobs - npar;
##   * fitted values exist for every row; response residuals are y - fitted for every row,
##     pearson (and deviance) residuals are 0 for zero-weight rows;
##   * glmer's dispersion sigma (Gamma) divides by every row (lme4: sqrt(sum(r_pearson^2)/n)),
##     unlike R's glm, which leaves zero-weight rows out ("observations with zero weight not
##     used for calculating dispersion"); both values are stored (`sigma_lme4`, `sigma_subset`).
##
## glmer fits use tight tolerances (tolPwrss 1e-12 and tight optimizer tolerances, as
## make_glmm.R's "tight" fits): lme4's defaults leave the Laplace deviance ~5e-4 too high and
## its standard errors up to a few per cent off the model computed to convergence.

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

sleepstudy <- add_sleepstudy_columns(read_dataset("sleepstudy"))
sleepstudy$wz <- ifelse(seq_len(nrow(sleepstudy)) %% 10 == 1 | sleepstudy$Subject == "372", 0, sleepstudy$w)
cbpp <- read_dataset("cbpp")
cbpp$cw <- ifelse(seq_len(nrow(cbpp)) %in% c(1, 5, 9, 28), 0, 1)
positive_ss <- sleepstudy[sleepstudy$wz > 0, ]
positive_cbpp <- cbpp[cbpp$cw > 0, ]

counts <- function(m) list(nobs = nobs(m), df_residual = df.residual(m))
close <- function(a, b) isTRUE(all.equal(as.numeric(a), as.numeric(b), tolerance = 1e-6))

## ------------------------------------------------------------------ lmer --
lmer_weighted <- quiet(lmer(Reaction ~ Days + (Days | Subject), sleepstudy, weights = wz))
lmer_subset <- quiet(lmer(Reaction ~ Days + (Days | Subject), positive_ss, weights = wz))
lmer_subset_ml <- quiet(lmer(Reaction ~ Days + (Days | Subject), positive_ss, weights = wz, REML = FALSE))
lmer_fitted <- predict(lmer_subset, newdata = sleepstudy, allow.new.levels = TRUE)
lmer_ref <- list(
  call = "lmer(Reaction ~ Days + (Days | Subject), sleepstudy, weights = wz)",
  estimates_call = "lmer(Reaction ~ Days + (Days | Subject), subset(sleepstudy, wz > 0), weights = wz)",
  lme4_weighted = c(counts(lmer_weighted), list(REMLcrit = as.character(REMLcrit(lmer_weighted)),
                                                 theta = num(getME(lmer_weighted, "theta")))),
  subset_nobs = nobs(lmer_subset),
  theta = num(getME(lmer_subset, "theta")),
  fixef = num(fixef(lmer_subset)),
  se = num(sqrt(diag(as.matrix(vcov(lmer_subset))))),
  sigma = sigma(lmer_subset),
  REMLcrit = REMLcrit(lmer_subset),
  logLik = as.numeric(logLik(lmer_subset)),
  npar = attr(logLik(lmer_subset), "df"),
  ml_deviance = deviance(lmer_subset_ml),
  ml_theta = num(getME(lmer_subset_ml, "theta")),
  fitted = num(lmer_fitted),
  resid_response = num(sleepstudy$Reaction - lmer_fitted),
  resid_pearson = num(sqrt(sleepstudy$wz) * (sleepstudy$Reaction - lmer_fitted))
)

## -------------------------------------------------------------- lm / glm --
fixed_json <- function(m, subset_fit, residual_types) {
  out <- c(list(call = deparse1(m$call)), counts(m),
           list(coef = num(coef(m)), se = num(sqrt(diag(vcov(m)))), deviance = deviance(m),
                logLik = as.numeric(logLik(m)), AIC = AIC(m), BIC = BIC(m),
                sigma = sigma(m), fitted = num(fitted(m)),
                same_as_subset = close(coef(m), coef(subset_fit)) && close(logLik(m), logLik(subset_fit))))
  for (type in residual_types) out[[paste0("resid_", type)]] <- num(residuals(m, type = type))
  out
}
lm_w <- lm(Reaction ~ Days, sleepstudy, weights = wz)
glm_binomial <- glm(cbind(incidence, size - incidence) ~ period, binomial, cbpp, weights = cw)
glm_gamma <- quiet(glm(Reaction ~ Days, Gamma(link = "log"), sleepstudy, weights = wz))
lm_ref <- fixed_json(lm_w, lm(Reaction ~ Days, positive_ss, weights = wz), c("response", "pearson"))
glm_types <- c("deviance", "pearson", "working", "response")
glm_binomial_ref <- fixed_json(glm_binomial, glm(cbind(incidence, size - incidence) ~ period, binomial,
                                                 positive_cbpp), glm_types)
glm_gamma_ref <- fixed_json(glm_gamma, glm(Reaction ~ Days, Gamma(link = "log"), positive_ss, weights = wz),
                            glm_types)
glm_gamma_ref$dispersion <- quiet(summary(glm_gamma)$dispersion)

## ----------------------------------------------------------------- glmer --
glmer_json <- function(call_text, m, subset_fit) {
  out <- c(list(call = call_text), counts(m),
           list(theta = num(getME(m, "theta")), fixef = num(fixef(m)), se = num(sqrt(diag(as.matrix(vcov(m))))),
                logLik = as.numeric(logLik(m)), deviance = deviance(m), AIC = AIC(m), BIC = BIC(m),
                sigma_lme4 = sigma(m), sigma_subset = sigma(subset_fit), subset_nobs = nobs(subset_fit),
                fitted = num(fitted(m)),
                same_as_subset = close(fixef(m), fixef(subset_fit)) && close(logLik(m), logLik(subset_fit))))
  for (type in glm_types) out[[paste0("resid_", type)]] <- num(residuals(m, type = type))
  out
}
cbpp_call <- "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial, weights = cw, control = tight)"
gm_binomial <- quiet(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial,
                           weights = cw, control = tight))
gm_binomial_subset <- quiet(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), positive_cbpp,
                                  binomial, control = tight))
gamma_call <- "glmer(Reaction ~ Days + (1 | Subject), sleepstudy, Gamma(link = 'log'), weights = wz, control = tight)"
gm_gamma <- quiet(glmer(Reaction ~ Days + (1 | Subject), sleepstudy, Gamma(link = "log"), weights = wz,
                        control = tight))
gm_gamma_subset <- quiet(glmer(Reaction ~ Days + (1 | Subject), positive_ss, Gamma(link = "log"), weights = wz,
                               control = tight))

## all weights zero: what each function says
all_zero <- function(expr) tryCatch({ quiet(expr); "no error" }, error = function(e) conditionMessage(e))
errors <- list(
  lm = all_zero(lm(Reaction ~ Days, sleepstudy, weights = rep(0, 180))),
  lmer = all_zero(lmer(Reaction ~ Days + (1 | Subject), sleepstudy, weights = rep(0, 180))),
  glmer = all_zero(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial,
                         weights = rep(0, 56)))
)

write_reference_json(list(
  note = paste("Zero prior weights; see the header of make_zero_weights.R. sleepstudy wz = 0 on rows",
               "1, 11, ..., 171 and Subject 372, else 1 + Days %% 3; cbpp cw = 0 on rows 1, 5, 9, 28."),
  zero_rows_sleepstudy = which(sleepstudy$wz == 0),
  zero_rows_cbpp = which(cbpp$cw == 0),
  lmer = lmer_ref,
  lm = lm_ref,
  glm_binomial = glm_binomial_ref,
  glm_gamma = glm_gamma_ref,
  glmer_binomial = glmer_json(cbpp_call, gm_binomial, gm_binomial_subset),
  glmer_gamma = glmer_json(gamma_call, gm_gamma, gm_gamma_subset),
  all_weights_zero = errors,
  versions = versions
), file.path(script_dir, "zero_weights.json"))
cat("wrote zero_weights.json\n")
