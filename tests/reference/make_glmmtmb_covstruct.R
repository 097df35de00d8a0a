#!/usr/bin/env Rscript
## Issue #19, structured random-effects covariances: glmmTMB fits with diag(), cs(), ar1()
## and us() terms, ML and REML, for mixedmodels' covariance structures.
## The Python tests read glmmtmb_covstruct.json and never run R.
##
## Usage:  Rscript tests/reference/make_glmmtmb_covstruct.R [DATA_DIR]
##   DATA_DIR defaults to src/mixedmodels/datasets/data (the package's bundled data).
## Writes: glmmtmb_covstruct.json, {"cases": {<id>: <case>}, "notes": ..., "versions": ...}
##
## Derived columns (Python rebuilds them with the same formulas):
##   sleepstudy$Phase3  factor(ifelse(Days <= 2, "d0_2", ifelse(Days <= 5, "d3_5", "d6_9")))
##                      unordered, levels d0_2, d3_5, d6_9 (3, 3 and 4 days per subject)
##   sleepstudy$DayPair factor(Days %/% 2, ordered = TRUE): levels "0".."4" (days 0-1, 2-3, ...)
##   sleepstudy$DayO    factor(Days, ordered = TRUE): levels "0".."9"
##
## Each case holds: id, call, data, REML, nobs, ngrps, logLik, df, AIC, BIC, objective
## (glmmTMB's minimised -logLik), minus2logLik, fixef_names, fixef, se, stat (z), vcov,
## se_given_varpar / vcov_given_varpar (see notes), sigma, varcorr, ranef, tmb, lme4 (the
## same model in lme4 where lme4 1.1-31 can fit it), fit_warnings, glmmtmb_seconds.
##
## varcorr: {<group>: {structure, columns, stddev, correlation [k x k], covariance [k x k],
##   rho (cs, ar1 only: the common / lag-1 correlation)}}
## ranef: {<group>: {levels, columns, values [level x column] (conditional modes),
##   condvar [level][k][k] (conditional covariance of the group's random effects given the
##   estimated parameters: inverse of the Hessian of the joint negative log-density in b,
##   lme4's ranef(condVar = TRUE) definition), condsd [level x column] (its sqrt diagonal),
##   condvar_tmb [level][k][k], condsd_tmb (glmmTMB's own ranef(condVar = TRUE); it adds the
##   uncertainty of the estimated parameters, TMB's sdreport default, so it is larger;
##   for diag() terms glmmTMB leaves the off-diagonals NA -> null)}}
## tmb: par_names, par (m$fit$par: beta, betad = log(sigma^2)... see notes), theta
##   (getME(m, "theta")), objective, convergence, message, pdHess, theta_transform.

suppressPackageStartupMessages({
  library(glmmTMB)
  library(lme4)
  library(jsonlite)
})

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f) == 1L) dirname(normalizePath(f)) else normalizePath(".")
})
source(file.path(script_dir, "common.R"))
data_dir <- bundled_data_dir()
versions <- package_versions("glmmTMB", "TMB", "lme4", "Matrix", "jsonlite")

sleepstudy <- read_dataset("sleepstudy")
sleepstudy$Phase3 <- factor(ifelse(sleepstudy$Days <= 2, "d0_2",
                                   ifelse(sleepstudy$Days <= 5, "d3_5", "d6_9")))
sleepstudy$DayPair <- factor(sleepstudy$Days %/% 2, ordered = TRUE)
sleepstudy$DayO <- factor(sleepstudy$Days, ordered = TRUE)

structure_name <- function(code) c("diag", "us", "cs", "ar1", "ou", "exp", "gau", "mat", "toep")[code + 1L]

varcorr_json <- function(m) {
  vc <- VarCorr(m)$cond
  out <- list()
  for (g in names(vc)) {
    v <- vc[[g]]
    st <- names(attr(v, "blockCode"))
    corr <- attr(v, "correlation")
    k <- ncol(v)
    x <- list(structure = st, columns = I(colnames(v)), stddev = I(num(attr(v, "stddev"))),
              correlation = num(as.matrix(corr)), covariance = num(as.matrix(v)))
    if (st %in% c("cs", "ar1") && k > 1L) x$rho <- corr[1L, 2L]
    out[[g]] <- x
  }
  out
}

## conditional covariance of b given the estimates: inverse Hessian of the joint negative
## log-density in b (for REML, beta is also "random" in TMB: keep it fixed, use the b block)
cond_cov_b <- function(m) {
  e <- m$obj$env
  par <- e$last.par.best
  H <- e$spHess(par, random = TRUE)
  rn <- names(par)[e$random]
  ib <- which(rn == "b")
  solve(as.matrix(H[ib, ib]))
}

ranef_json <- function(m) {
  re <- ranef(m, condVar = TRUE)$cond
  C <- cond_cov_b(m)
  reStruc <- m$modelInfo$reStruc$condReStruc
  off <- 0L
  out <- list()
  for (i in seq_along(re)) {
    g <- names(re)[i]
    r <- re[[i]]
    k <- reStruc[[i]]$blockSize
    nl <- reStruc[[i]]$blockReps
    stopifnot(k == ncol(r), nl == nrow(r))
    cv_tmb <- attr(r, "condVar")
    if (is.null(dim(cv_tmb)) || length(dim(cv_tmb)) == 1L) cv_tmb <- array(cv_tmb, c(1L, 1L, nl))
    cv <- lapply(seq_len(nl), function(j) {
      idx <- off + (j - 1L) * k + seq_len(k)     # b is k x nlevels, column-major, per term
      num(C[idx, idx, drop = FALSE])
    })
    cvt <- lapply(seq_len(nl), function(j) num(cv_tmb[, , j, drop = FALSE][, , 1L]))
    if (k == 1L) cvt <- lapply(cvt, function(x) matrix(x, 1L, 1L))
    out[[g]] <- list(levels = rownames(r), columns = I(colnames(r)), values = num(as.matrix(r)),
                     condvar = cv, condsd = num(t(sapply(cv, function(x) sqrt(diag(x)), simplify = "array"))),
                     condvar_tmb = cvt,
                     condsd_tmb = num(t(sapply(cvt, function(x) sqrt(diag(x)), simplify = "array"))))
    if (k == 1L) {
      out[[g]]$condsd <- matrix(out[[g]]$condsd, ncol = 1L)
      out[[g]]$condsd_tmb <- matrix(out[[g]]$condsd_tmb, ncol = 1L)
    }
    off <- off + k * nl
  }
  out
}

## vcov of beta given the variance parameters (lme4's definition, sigma^2 (X'V^-1 X)^-1):
## ML: inverse of the beta block of the Hessian of the Laplace objective in (beta, theta);
## REML: beta is integrated in TMB, so take the beta block of the inverse joint Hessian in (b, beta).
vcov_given_varpar <- function(m) {
  e <- m$obj$env
  p <- length(fixef(m)$cond)
  if (isTRUE(m$modelInfo$REML)) {
    par <- e$last.par.best
    H <- as.matrix(e$spHess(par, random = TRUE))
    rn <- names(par)[e$random]
    solve(H)[rn == "beta", rn == "beta", drop = FALSE]
  } else {
    H <- optimHess(m$fit$par, m$obj$fn, m$obj$gr)
    ib <- which(names(m$fit$par) == "beta")
    solve(H[ib, ib, drop = FALSE])
  }
}

theta_transform <- function(m) {
  st <- vapply(m$modelInfo$reStruc$condReStruc, function(s) structure_name(s$blockCode), "")
  notes <- c(
    diag = "theta = log(sd_1..k)",
    us = "theta = log(sd_1..k), then k(k-1)/2 correlation parameters (TMB UNSTRUCTURED_CORR)",
    cs = "theta = log(sd_1..k), x; rho = plogis(x) * (1 + a) - a with a = 1 / (k - 1)",
    ar1 = "theta = log(sd), x; rho = x / sqrt(1 + x^2) (unit spacing between consecutive levels)")
  as.list(setNames(notes[st], names(st)))
}

lme4_json <- function(call) {
  f <- eval_capturing(call)
  l <- f$value
  s <- summary(l)
  dd <- as.data.frame(ranef(l, condVar = TRUE))
  list(call = call, logLik = as.numeric(logLik(l)), fixef = num(fixef(l)), se = num(coef(s)[, 2]),
       sigma = sigma(l), theta = num(getME(l, "theta")), theta_names = names(getME(l, "theta")),
       varcorr_sdcor = num(as.data.frame(VarCorr(l))$sdcor),
       varcorr_names = paste(as.data.frame(VarCorr(l))$var1, as.data.frame(VarCorr(l))$var2),
       ranef_condsd = num(dd$condsd), ranef_condval = num(dd$condval),
       ranef_order = "as.data.frame(ranef(m, condVar = TRUE)): all levels of term 1, then term 2",
       fit_warnings = f$warnings)
}

case <- function(id, call, lme4_call = NULL, note = NULL) {
  cat(sprintf("%-22s ", id)); flush.console()
  f <- eval_capturing(call)
  m <- f$value
  cf <- summary(m)$coefficients$cond
  ll <- logLik(m)
  vg <- vcov_given_varpar(m)
  res <- list(
    id = id, call = call, data = "sleepstudy", note = note,
    REML = isTRUE(m$modelInfo$REML), nobs = nobs(m),
    ngrps = as.list(vapply(m$modelInfo$reTrms$cond$flist, nlevels, 1L)),
    logLik = as.numeric(ll), df = attr(ll, "df"), AIC = AIC(m), BIC = BIC(m),
    objective = m$fit$objective, minus2logLik = -2 * as.numeric(ll),
    fixef_names = names(fixef(m)$cond), fixef = num(fixef(m)$cond),
    se = num(cf[, "Std. Error"]), stat = num(cf[, "z value"]), stat_name = "z value",
    vcov = num(as.matrix(vcov(m)$cond)),
    se_given_varpar = num(sqrt(diag(vg))), vcov_given_varpar = num(vg),
    sigma = sigma(m),
    varcorr = varcorr_json(m),
    ranef = ranef_json(m),
    tmb = list(par_names = names(m$fit$par), par = num(m$fit$par),
               theta = num(getME(m, "theta")), objective = m$fit$objective,
               convergence = m$fit$convergence, message = m$fit$message,
               pdHess = m$sdr$pdHess, theta_transform = theta_transform(m)),
    lme4 = if (is.null(lme4_call)) NULL else lme4_json(lme4_call),
    fit_warnings = f$warnings, glmmtmb_seconds = f$seconds)
  cat(sprintf("logLik %.6f  %s\n", res$logLik, if (length(f$warnings)) "WARNINGS" else "ok"))
  res
}

cases <- list()
for (reml in c(FALSE, TRUE)) {
  sfx <- if (reml) "reml" else "ml"
  R <- if (reml) "TRUE" else "FALSE"
  add <- function(id, call, ...) cases[[paste0(id, "_", sfx)]] <<- case(paste0(id, "_", sfx), call, ...)
  add("diag", sprintf("glmmTMB(Reaction ~ Days + diag(Days | Subject), sleepstudy, REML = %s)", R),
      lme4_call = sprintf("lmer(Reaction ~ Days + (Days || Subject), sleepstudy, REML = %s)", R))
  add("us", sprintf("glmmTMB(Reaction ~ Days + (Days | Subject), sleepstudy, REML = %s)", R),
      lme4_call = sprintf("lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = %s)", R),
      note = "calibration: the unstructured default, the same model as lme4's")
  add("cs", sprintf("glmmTMB(Reaction ~ Days + cs(0 + Phase3 | Subject), sleepstudy, REML = %s)", R))
  add("ar1_pairs", sprintf("glmmTMB(Reaction ~ Days + ar1(0 + DayPair | Subject), sleepstudy, REML = %s)", R),
      note = "two observations per subject and level: the AR(1) variance and the residual are separately identified")
  add("ar1_days", sprintf("glmmTMB(Reaction ~ Days + ar1(0 + DayO | Subject), sleepstudy, REML = %s)", R),
      note = paste("DEGENERATE: one observation per subject and level, so the residual and the AR(1)",
                   "variance compete; the optimum is at sigma -> 0 (ML: glmmTMB stops with false",
                   "convergence and logLik NA; REML: sigma ~ 0.009). Not a target to match; a fit",
                   "with a profiled sigma cannot reach it. Recorded because issue #19 names it."))
}

notes <- list(
  lme4_equivalence = paste("diag(Days | Subject) is lme4's (Days || Subject) and us() is (Days | Subject):",
                           "the lme4 block of those cases shows the same logLik (REML and ML) to ~1e-6."),
  condvar = paste("ranef condvar/condsd are conditional on the estimated parameters (lme4's definition,",
                  "checked against lme4 for diag and us); condvar_tmb/condsd_tmb are glmmTMB's",
                  "ranef(condVar = TRUE), which adds the parameters' estimation uncertainty."),
  se = paste("se/vcov are glmmTMB's (ML: inverse Hessian of the Laplace objective in beta and theta,",
             "so they include the covariance of beta with the variance parameters; REML: from TMB's",
             "sdreport with beta integrated). se_given_varpar/vcov_given_varpar are",
             "sigma^2 (X'V^-1 X)^-1 at the estimates, lme4's vcov; compare with those."),
  tmb_par = paste("tmb$par: beta (fixed effects; absent under REML, where beta is integrated),",
                  "betad = log(sigma^2) for the gaussian family, theta (per term, see theta_transform)."),
  lme4_1_1_31 = "lme4 1.1-31 has no cs() or ar1() structures; those cases have lme4 = null.")

write_reference_json(list(cases = cases, notes = notes, versions = versions),
                     file.path(script_dir, "glmmtmb_covstruct.json"))
cat("wrote glmmtmb_covstruct.json\n")
