#!/usr/bin/env Rscript
## Reference results for confidence intervals (lme4's profile, confint and the
## percentile bootstrap interval) used by tests/inference/test_profile.py and
## tests/inference/test_intervals.py.  The tests never run R: they read intervals.json.
##
## Usage:  Rscript tests/reference/make_intervals.R [DATA_DIR]
##   DATA_DIR defaults to ../../../shared/data relative to this script.
##
## intervals.json holds one entry per case (`call`, `formula`, `data`, `REML`):
##   profile      as.data.frame(profile(m, signames = FALSE)) split by parameter:
##                {"<parameter>": {"value": [...], "zeta": [...]}} (the focal
##                parameter's value and zeta at lme4's profile points)
##   profile_95, profile_90
##                confint(profile, level = 0.95 / 0.90): {names, lower, upper}
##   wald         confint(m, method = "Wald", oldNames = FALSE): {names, lower,
##                upper}; R's NA (the variance parameters) is null
## and `boot_perc`: boot::boot.ci(type = "perc") on fixed replicate vectors
## (no random numbers), to check the percentile rule (interpolation on the
## normal quantile scale, Davison & Hinkley 1997, eq. 5.8) exactly.
## Derived data: grouseticks with YEAR and LOCATION as in the bundled schema,
## the model uses log(TICKS + 1) and scale(HEIGHT) (n - 1 SD).
## `cbpp_binomial` holds only `wald` (a glmer fit: no profile references).

suppressPackageStartupMessages({
  library(lme4)
  library(boot)
  library(jsonlite)
})

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f) == 1L) dirname(normalizePath(f)) else normalizePath(".")
})
source(file.path(script_dir, "common.R"))   # num, ci_json, read_dataset, ...
data_dir <- reference_data_dir()

sleepstudy  <- add_sleepstudy_columns(read_dataset("sleepstudy"))   # w (also DayF, Phase)
Dyestuff    <- read_dataset("Dyestuff")
Dyestuff2   <- read_dataset("Dyestuff2")
Pastes      <- read_dataset("Pastes")
grouseticks <- read_dataset("grouseticks")

profile_json <- function(pr) {
  d <- as.data.frame(pr)
  out <- list()
  for (p in levels(d$.par)) {
    s <- d[d$.par == p, ]
    out[[p]] <- list(value = num(s$.focal), zeta = num(s$.zeta))
  }
  out
}

cases <- list(
  sleepstudy_reml = list(f = "Reaction ~ Days + (Days | Subject)", data = "sleepstudy", REML = TRUE),
  sleepstudy_ml = list(f = "Reaction ~ Days + (Days | Subject)", data = "sleepstudy", REML = FALSE),
  sleepstudy_uncorrelated = list(f = "Reaction ~ Days + (Days || Subject)", data = "sleepstudy", REML = TRUE),
  sleepstudy_weights = list(f = "Reaction ~ Days + (Days | Subject)", data = "sleepstudy", REML = TRUE, weights = "w"),
  dyestuff2_singular = list(f = "Yield ~ 1 + (1 | Batch)", data = "Dyestuff2", REML = TRUE),
  pastes_nested = list(f = "strength ~ 1 + (1 | batch/cask)", data = "Pastes", REML = TRUE),
  grouseticks_log = list(f = "log(TICKS + 1) ~ YEAR + scale(HEIGHT) + (1 | LOCATION)", data = "grouseticks", REML = TRUE)
)

out <- list()
for (id in names(cases)) {
  cs <- cases[[id]]
  d <- get(cs$data)
  m <- if (is.null(cs$weights))
    lmer(as.formula(cs$f), d, REML = cs$REML)
  else lmer(as.formula(cs$f), d, REML = cs$REML, weights = d[[cs$weights]])
  t0 <- proc.time()[["elapsed"]]
  pr <- suppressWarnings(profile(m, signames = FALSE))
  secs <- proc.time()[["elapsed"]] - t0
  out[[id]] <- list(
    formula = cs$f, data = cs$data, REML = cs$REML,
    weights = if (is.null(cs$weights)) NULL else "1 + (Days %% 3)",
    call = sprintf("profile(lmer(%s, %s, REML = %s%s), signames = FALSE)", cs$f, cs$data, cs$REML,
                   if (is.null(cs$weights)) "" else ", weights = w"),
    profile_seconds = secs,
    profile = profile_json(pr),
    profile_95 = ci_json(confint(pr, level = 0.95)),
    profile_90 = ci_json(confint(pr, level = 0.90)),
    wald = ci_json(confint(m, method = "Wald", oldNames = FALSE)))
  cat(id, "done in", secs, "s\n")
}

## Wald intervals of a GLMM: NA for the herd SD, no sigma row (binomial)
cbpp <- read_dataset("cbpp")
gm <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial)
out$cbpp_binomial <- list(
  formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)", data = "cbpp", family = "binomial",
  call = "confint(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial), method = \"Wald\", oldNames = FALSE)",
  wald = ci_json(confint(gm, method = "Wald", oldNames = FALSE)))

## lme4's profile of the fixed effects ignores the prior weights (its zeta for
## sleepstudy_weights jumps to 20 within a tenth of a standard error), so the
## weighted fixed-effect profile is checked against explicit ML refits with the
## intercept moved into the offset: zeta(b) = sign(b - b_hat) sqrt(dev(b) - dev_ML).
out$sleepstudy_weights$intercept_refits <- local({
  m_ml <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = FALSE, weights = w)
  b <- c(236, 244, 256, 264)
  dev_b <- sapply(b, function(v) deviance(lmer(Reaction ~ 0 + Days + (Days | Subject), sleepstudy,
                                               REML = FALSE, weights = w, offset = rep(v, nrow(sleepstudy)))))
  list(call = "lmer(Reaction ~ 0 + Days + (Days | Subject), sleepstudy, REML = FALSE, weights = w, offset = rep(b, 180))",
       value = b, zeta = sign(b - fixef(m_ml)[[1]]) * sqrt(dev_b - deviance(m_ml)))
})

## percentile intervals of boot.ci on fixed replicates ---------------------------------
perc_case <- function(t, conf) {
  b <- list(t0 = 0, t = matrix(t, ncol = 1), R = length(t))
  class(b) <- "boot"
  b$call <- quote(boot()); b$sim <- "parametric"; b$stype <- "i"; b$strata <- rep(1, 2)
  b$data <- 1:2; b$statistic <- function(x, i) 0; b$weights <- rep(1 / 2, 2)
  ci <- boot.ci(b, conf = conf, type = "perc")$percent
  list(t = num(t), conf = conf, lower = num(ci[1, 4]), upper = num(ci[1, 5]))
}
out$boot_perc <- list(
  perc_case(qnorm(ppoints(57))^3 + seq_len(57) / 100, 0.95),
  perc_case(exp(sin(1:200)), 0.95),
  perc_case(exp(sin(1:200)), 0.90),
  perc_case(cos(1:999), 0.95))

out$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                     boot = as.character(packageVersion("boot")))
write_reference_json(out, file.path(script_dir, "intervals.json"), pretty = FALSE)
