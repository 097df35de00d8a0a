#!/usr/bin/env Rscript
## Issue #19, residual structures: nlme::lme fits with weights = varIdent() (a residual SD
## ratio per level of a factor) and correlation = corAR1() (AR(1) residuals within groups),
## REML and ML, each with the same model without the structure and nlme's LRT between them.
## The Python tests read nlme_residual.json and never run R.
##
## Usage:  Rscript tests/reference/make_nlme_residual.R [DATA_DIR]
##   DATA_DIR defaults to src/mixedmodels/datasets/data (the package's bundled data).
## Writes: nlme_residual.json = {"cases": {<id>: <fit>}, "anova": {<id>: <table>}, "notes", "versions"}
##
## Data are read from CSV with the schema (plain data frames, not nlme's groupedData), so
## every grouping and covariate is given explicitly in the calls.  Derived columns:
##   BodyWeight$obs  ave(seq_len(nrow(BodyWeight)), Rat, FUN = seq_along): 1..11 within Rat in
##                   row order (rows are sorted by Time within Rat).  Time is 1, 8, ..., 43, 44,
##                   50, 57, 64 (not equally spaced), so the AR(1) is over the measurement
##                   index, as nlme's corAR1(form = ~ 1 | Rat) would do.
##   Ovary$obs       the same within Mare (1..n_mare; Time is equally spaced within each mare).
##                   corAR1(form = ~ obs | Mare) gives the same fit as corAR1(form = ~ 1 | Mare).
##
## Fields of a fit: id, call, data, method, nobs, ngrps, logLik, df, AIC, BIC, fixef_names,
## fixef, se, stat (t value), df_nlme (nlme's denominator df), p, vcov, sigma,
## random ({<group>: {columns, stddev, correlation [k x k], covariance [k x k]}}),
## phi (corAR1 only: coef(corStruct, unconstrained = FALSE)), var_ratios (varIdent only:
## {levels: strata in nlme's order, ratio: residual SD of each stratum / SD of the first,
## the first being 1}), sigma_by_level (sigma * ratio), model_struct_unconstrained
## (coef(m$modelStruct): nlme's internal parameters), ranef ({<group>: {levels, columns,
## values [level x column]}}, levels in nlme's row order), fitted_head (level 1),
## fitted_fixed_head (level 0), resid_head (response, level 1), resid_pearson_head
## (response / (sigma * ratio)), resid_normalized_head (pearson residuals decorrelated
## with the inverse Cholesky factor of the AR(1) correlation), lme4 (the same model in lme4
## where lme4 1.1-31 can fit it: logLik, fixef, se, sigma), fit_warnings, nlme_seconds.

suppressPackageStartupMessages({
  library(nlme)
  library(lme4)
  library(jsonlite)
})

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f) == 1L) dirname(normalizePath(f)) else normalizePath(".")
})
source(file.path(script_dir, "common.R"))
data_dir <- bundled_data_dir()
versions <- package_versions("nlme", "lme4", "Matrix", "jsonlite")

NHEAD <- 12L
sleepstudy <- read_dataset("sleepstudy")
Orthodont  <- read_dataset("Orthodont")
BodyWeight <- read_dataset("BodyWeight")
Ovary      <- read_dataset("Ovary")
BodyWeight$obs <- ave(seq_len(nrow(BodyWeight)), BodyWeight$Rat, FUN = seq_along)
Ovary$obs      <- ave(seq_len(nrow(Ovary)), Ovary$Mare, FUN = seq_along)

random_json <- function(m) {
  out <- list()
  re <- m$modelStruct$reStruct
  for (g in names(re)) {
    v <- as.matrix(re[[g]]) * m$sigma^2            # pdMatrix is relative to sigma^2
    sd <- sqrt(diag(v))
    out[[g]] <- list(columns = I(colnames(v)), stddev = I(num(sd)),
                     correlation = num(v / outer(sd, sd)), covariance = num(v))
  }
  out
}

ranef_json <- function(m) {
  r <- ranef(m)
  if (is.data.frame(r)) r <- setNames(list(r), names(m$modelStruct$reStruct))
  lapply(r, function(x) list(levels = rownames(x), columns = I(colnames(x)), values = num(as.matrix(x))))
}

var_ratios <- function(m) {
  vs <- m$modelStruct$varStruct
  if (is.null(vs)) return(NULL)
  levs <- attr(vs, "groupNames")
  r <- coef(vs, unconstrained = FALSE, allCoef = TRUE)
  list(levels = levs, ratio = num(r[levs]))
}

lme4_json <- function(call) {
  if (is.null(call)) return(NULL)
  f <- eval_capturing(call)
  l <- f$value
  list(call = call, logLik = as.numeric(logLik(l)), fixef = num(fixef(l)),
       se = num(coef(summary(l))[, 2]), sigma = sigma(l), fit_warnings = f$warnings)
}

fit_json <- function(id, call, data, lme4_call = NULL) {
  cat(sprintf("%-28s ", id)); flush.console()
  f <- eval_capturing(call)
  m <- f$value
  tt <- summary(m)$tTable
  ll <- logLik(m)
  vr <- var_ratios(m)
  cs <- m$modelStruct$corStruct
  res <- list(
    id = id, call = call, data = data, method = m$method,
    nobs = nobs(m), ngrps = as.list(m$dims$ngrps[seq_len(m$dims$Q)]),
    logLik = as.numeric(ll), df = attr(ll, "df"), AIC = AIC(m), BIC = BIC(m),
    fixef_names = names(fixef(m)), fixef = num(fixef(m)),
    se = num(tt[, "Std.Error"]), stat = num(tt[, "t-value"]), stat_name = "t value",
    df_nlme = num(tt[, "DF"]), p = num(tt[, "p-value"]),
    vcov = num(vcov(m)), sigma = m$sigma,
    random = random_json(m),
    phi = if (is.null(cs)) NULL else unname(coef(cs, unconstrained = FALSE)),
    var_ratios = vr,
    sigma_by_level = if (is.null(vr)) NULL else list(levels = vr$levels, sigma = num(m$sigma * vr$ratio)),
    model_struct_unconstrained = as.list(coef(m$modelStruct)),
    ranef = ranef_json(m),
    fitted_head = num(head(fitted(m, level = 1), NHEAD)),
    fitted_fixed_head = num(head(fitted(m, level = 0), NHEAD)),
    resid_head = num(head(residuals(m, type = "response", level = 1), NHEAD)),
    resid_pearson_head = num(head(residuals(m, type = "pearson", level = 1), NHEAD)),
    resid_normalized_head = num(head(residuals(m, type = "normalized", level = 1), NHEAD)),
    lme4 = lme4_json(lme4_call),
    fit_warnings = f$warnings, nlme_seconds = f$seconds)
  cat(sprintf("logLik %.6f %s\n", res$logLik, if (length(f$warnings)) "WARNINGS" else "ok"))
  list(json = res, model = m)
}

anova_json <- function(m0, m1, call) {
  a <- anova(m0, m1)
  a$call <- NULL
  table_json(a, call)
}

cases <- list()
anovas <- list()
theme <- function(id, data, with_call, without_call, lme4_without = NULL) {
  for (method in c("REML", "ML")) {
    sfx <- tolower(method)
    w <- fit_json(paste0(id, "_", sfx), sprintf(with_call, method), data)
    o <- fit_json(paste0(id, "_null_", sfx), sprintf(without_call, method), data,
                  if (is.null(lme4_without)) NULL else sprintf(lme4_without, method == "REML"))
    cases[[w$json$id]] <<- w$json
    cases[[o$json$id]] <<- o$json
    anovas[[paste0(id, "_", sfx)]] <<- anova_json(o$model, w$model,
      sprintf("anova(%s, %s)  # without, with the structure; method = %s", o$json$id, w$json$id, method))
  }
}

theme("orthodont_varident", "Orthodont",
      'lme(distance ~ age + Sex, random = ~ 1 | Subject, weights = varIdent(form = ~ 1 | Sex), data = Orthodont, method = "%s")',
      'lme(distance ~ age + Sex, random = ~ 1 | Subject, data = Orthodont, method = "%s")',
      "lmer(distance ~ age + Sex + (1 | Subject), Orthodont, REML = %s)")
theme("sleepstudy_ar1", "sleepstudy",
      'lme(Reaction ~ Days, random = ~ 1 | Subject, correlation = corAR1(form = ~ Days | Subject), data = sleepstudy, method = "%s")',
      'lme(Reaction ~ Days, random = ~ 1 | Subject, data = sleepstudy, method = "%s")',
      "lmer(Reaction ~ Days + (1 | Subject), sleepstudy, REML = %s)")
theme("ovary_ar1", "Ovary",
      'lme(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), random = ~ 1 | Mare, correlation = corAR1(form = ~ obs | Mare), data = Ovary, method = "%s")',
      'lme(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), random = ~ 1 | Mare, data = Ovary, method = "%s")',
      "lmer(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time) + (1 | Mare), Ovary, REML = %s)")
theme("bodyweight_ar1", "BodyWeight",
      'lme(weight ~ Time * Diet, random = ~ Time | Rat, correlation = corAR1(form = ~ obs | Rat), data = BodyWeight, method = "%s")',
      'lme(weight ~ Time * Diet, random = ~ Time | Rat, data = BodyWeight, method = "%s")',
      "lmer(weight ~ Time * Diet + (Time | Rat), BodyWeight, REML = %s)")

## nlme's own order-based form gives the same fit as the explicit index (checked here)
chk <- eval_capturing('lme(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), random = ~ 1 | Mare, correlation = corAR1(form = ~ 1 | Mare), data = Ovary, method = "REML")')$value
stopifnot(abs(as.numeric(logLik(chk)) - cases$ovary_ar1_reml$logLik) < 1e-8)

## calibration: nlme's REML log-likelihood is lme4's (same model, no structure)
calib <- fit_json("sleepstudy_slope_calibration_reml",
                  'lme(Reaction ~ Days, random = ~ Days | Subject, data = sleepstudy, method = "REML")',
                  "sleepstudy", "lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = TRUE)")
cases[[calib$json$id]] <- calib$json

## failures worth knowing (not targets)
unsupported <- list()
for (call in c('lme(weight ~ Time * Diet, random = ~ 1 | Rat, correlation = corAR1(form = ~ obs | Rat), data = BodyWeight, method = "REML")')) {
  f <- try_capturing(call)
  unsupported[[length(unsupported) + 1L]] <- list(call = call, error = f$error,
    logLik = if (is.null(f$error)) as.numeric(logLik(f$value)) else NULL)
}

notes <- list(
  reml_loglik = paste("nlme's REML log-likelihood equals lme4's for the same model",
                      "(sleepstudy_slope_calibration_reml and every *_null_reml case's lme4 block)."),
  anova = paste("anova.lme columns: Model, df, AIC, BIC, logLik, Test, L.Ratio, p-value; rows: the model",
                "without the structure, then with. REML comparisons have the same fixed effects, which",
                "nlme requires for REML LRTs."),
  varIdent = paste("varIdent(form = ~ 1 | Sex): Var(e_ij) = (sigma * delta_s)^2 with delta = 1 for the",
                   "first stratum in var_ratios$levels; var_ratios$ratio are the deltas."),
  corAR1 = paste("corAR1(form = ~ t | g): cor(e_ij, e_ik) = phi^|t_ij - t_ik| within g, t integer;",
                 "sleepstudy uses Days (0..9), Ovary and BodyWeight the index obs."),
  bodyweight = paste("BodyWeight uses random = ~ Time | Rat (Pinheiro and Bates' model):",
                     "with random = ~ 1 | Rat the REML fit with corAR1 fails in nlme (see failures)."))

write_reference_json(list(cases = cases, anova = anovas, failures = unsupported, notes = notes,
                          versions = versions),
                     file.path(script_dir, "nlme_residual.json"))
cat("wrote nlme_residual.json\n")
