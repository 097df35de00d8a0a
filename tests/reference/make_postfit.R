#!/usr/bin/env Rscript
## Issue #20, what lme4 users reach for after the fit, with lme4 1.1-31: influence
## diagnostics, weights, residual types, conditional covariances, confint row names,
## prediction standard errors and intervals, re.form variants, newparams/simulate, start,
## na.exclude, rank-deficient fits.  The Python tests read the JSON files and never run R.
##
## Usage:  Rscript tests/reference/make_postfit.R [DATA_DIR]
##   DATA_DIR defaults to src/mixedmodels/datasets/data (the package's bundled data).
## Writes: postfit_diagnostics.json, postfit_predict.json, postfit_misc.json
##   (each {"models": {<key>: call}, <sections>..., "notes", "versions"}; the fields of
##   each section are listed where it is built below and in README.md).
##
## Models (lme4 1.1-31, lmer REML by default):
##   ss   lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
##   pen  lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin)
##   cb   glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial)
##   ssw  lmer(Reaction ~ Days + (Days | Subject), sleepstudy, weights = w),  w = 1 + Days %% 3
## Vectors over the data rows are full length, in data order (as the CSV).

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

sleepstudy <- add_sleepstudy_columns(read_dataset("sleepstudy"))   # w, DayF, Phase
Penicillin <- read_dataset("Penicillin")
cbpp <- read_dataset("cbpp")

calls <- list(
  ss  = "lmer(Reaction ~ Days + (Days | Subject), sleepstudy)",
  pen = "lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin)",
  cb  = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial)",
  ssw = "lmer(Reaction ~ Days + (Days | Subject), sleepstudy, weights = w)")
fits <- lapply(calls, eval_capturing)
models <- lapply(fits, `[[`, "value")
fit_warnings <- lapply(fits, `[[`, "warnings")
model_data <- list(ss = "sleepstudy", pen = "Penicillin", cb = "cbpp", ssw = "sleepstudy")
group_of <- list(ss = "Subject", pen = "plate", cb = "herd", ssw = "Subject")

write_ref <- function(name, x) {
  x$versions <- versions
  write_reference_json(x, file.path(script_dir, paste0(name, ".json")))
  cat("wrote", name, "\n")
}

## value of an R call given as text, or {"unsupported": <lme4's error>}; warnings kept
value_or_unsupported <- function(call, f = identity) {
  r <- try_capturing(call)
  if (!is.null(r$error)) return(list(call = call, unsupported = r$error))
  out <- list(call = call, value = f(r$value))
  if (length(r$warnings)) out$warnings <- r$warnings
  out
}

## =========================================================== diagnostics ==
## influence(m, groups = g): lme4 refits with each level of g deleted, starting from the
## fit's theta (and, for glmer, fixef), maxfun = 1000.
influence_json <- function(infl) {
  nm <- names(infl)
  fx <- infl[[grep("^fixed.effects\\[-", nm)]]
  vc <- infl[[grep("^var.cov.comps\\[-", nm)]]
  vv <- infl[[grep("^vcov\\[-", nm)]]
  list(groups = infl$groups, deleted = as.character(infl$deleted),
       fixef_names = colnames(fx), fixed_effects = num(infl$fixed.effects),
       fixed_effects_deleted = num(fx),
       var_cov_names = colnames(vc), var_cov_comps = num(infl$var.cov.comps),
       var_cov_comps_deleted = num(vc),
       vcov = num(infl$vcov),
       vcov_deleted = lapply(vv, num),
       converged = unname(infl$converged), function_evals = unname(infl$function.evals),
       dfbeta = num(dfbeta(infl)), dfbetas = or_error(num(dfbetas(infl))),
       cooks_distance = or_error(num(cooks.distance(infl))))
}
## value, or {"unsupported": lme4's error} (lme4 1.1-31's dfbetas fails with one fixed effect)
or_error <- function(expr) tryCatch(expr, error = function(e) list(unsupported = conditionMessage(e)))

diag_case <- function(key, by_case = FALSE) {
  m <- models[[key]]
  cat("diagnostics", key, "\n"); flush.console()
  g <- group_of[[key]]
  res <- list(call = calls[[key]],
    hatvalues = value_or_unsupported(sprintf("hatvalues(models$%s)", key), num),
    cooks_distance = value_or_unsupported(sprintf("cooks.distance(models$%s)", key), num),
    rstudent = value_or_unsupported(sprintf("rstudent(models$%s)", key), num),   # NaN (null) where h > 1
    influence_group = {
      call <- sprintf('influence(models$%s, groups = "%s")', key, g)
      r <- eval_capturing(call)
      c(list(call = call), influence_json(r$value), list(warnings = r$warnings, seconds = r$seconds))
    },
    weights_prior = value_or_unsupported(sprintf('weights(models$%s, type = "prior")', key), num),
    weights_working = value_or_unsupported(sprintf('weights(models$%s, type = "working")', key), num),
    residuals = lapply(setNames(nm = c("working", "response", "deviance", "pearson")), function(t)
      value_or_unsupported(sprintf('residuals(models$%s, type = "%s")', key, t), num)),
    residuals_pearson_scaled = value_or_unsupported(
      sprintf('residuals(models$%s, type = "pearson", scaled = TRUE)', key), num),
    sigma = sigma(m))
  if (by_case) {
    call <- sprintf("influence(models$%s)", key)
    r <- eval_capturing(call)
    res$influence_case <- c(list(call = call), influence_json(r$value),
                            list(warnings = r$warnings, seconds = r$seconds))
  }
  res
}

diagnostics <- list(
  ss = diag_case("ss", by_case = TRUE),
  pen = diag_case("pen"),
  cb = diag_case("cb"),
  ssw = diag_case("ssw"))
diagnostics$pen$influence_sample <- local({
  r <- eval_capturing('influence(models$pen, groups = "sample")')
  c(list(call = 'influence(models$pen, groups = "sample")'), influence_json(r$value),
    list(warnings = r$warnings))
})

write_ref("postfit_diagnostics", list(
  models = calls, fit_warnings = fit_warnings, data = model_data,
  diagnostics = diagnostics,
  notes = list(
    fields = paste("Per model: hatvalues, cooks_distance, rstudent, weights_prior, weights_working,",
                   "residuals {working, response, deviance, pearson}, residuals_pearson_scaled:",
                   "{call, value} or {call, unsupported: lme4's error}; warnings where R gave some.",
                   "influence_group (and influence_case for ss, influence_sample for pen): groups,",
                   "deleted (levels in data order), fixef_names, fixed_effects, fixed_effects_deleted",
                   "[deleted x p], var_cov_names (sigma^2, then per term v[..] and C[..,..] on the",
                   "variance scale, lower triangle by column), var_cov_comps, var_cov_comps_deleted,",
                   "vcov, vcov_deleted (list of p x p), converged, function_evals, dfbeta",
                   "(fixed_effects_deleted - fixed_effects), dfbetas (dfbeta / sqrt(diag(vcov_deleted))),",
                   "cooks_distance (lme4's cooks.distance(influence): dfbeta' M dfbeta with",
                   "M = (n - p) / (n p) * solve(vcov), n = number of deletions)."),
    hatvalues = paste("lme4's hatvalues.merMod: diagonal of the hat matrix of the penalised least squares",
                      "problem with prior weights only (for glmer it warns 'the hat matrix may not make",
                      "sense for GLMMs' and still uses prior, not working, weights: for cbpp, where the",
                      "prior weights are the herd sizes, h > 1, and rstudent is NaN (null) there)."),
    cooks_rstudent = paste("cooks.distance(m) is the one-step approximation",
                           "(r_pearson / (1 - h))^2 * h / (sigma^2 * p), p = rank(X);",
                           "rstudent(m) = sign(r_dev) * sqrt(r_dev^2 + h r_pearson^2 / (1 - h)) / sigma."),
    residuals = paste("lmer: working = response = y - fitted; deviance = pearson = sqrt(w) * (y - fitted);",
                      "scaled = TRUE divides by sigma. glmer: the GLM residual types at the conditional",
                      "modes; working = (y - mu) / mu.eta(eta)."),
    weights = paste("weights(type = 'working') exists only for GLMMs in lme4 1.1-31 (the lmer ones record",
                    "the error as 'unsupported'); for glmer it is the PIRLS weights at convergence,",
                    "prior * mu.eta^2 / variance."))))

## ============================================================== predict ==
## Standard errors of predictions on new data, computed in R (lme4 1.1-31 has no se.fit).
##
## Fixed-only (re.form = NA):  se = sqrt(diag(X V X')), V = vcov(m) (lme4 1.1-31's vcov;
##   for glmer that is the Hessian-based vcov, use.hessian = TRUE).
## Conditional (re.form = NULL), two definitions:
##   joint: the conditional covariance of (b, beta) given y and the variance parameters,
##     C = blockdiag(Lambda, I) * s^2 * M^-1 * blockdiag(Lambda', I),
##     M = [[Lambda' Z' W Z Lambda + I, Lambda' Z' W X], [X' W Z Lambda, X' W X]],
##     W = prior weights (lmer) or the PIRLS working weights (glmer), s = sigma (lmer) or 1;
##     se = sqrt(diag([Z X] C [Z X]')).  This is what lme4 >= 2.0's predict(se.fit = TRUE)
##     computes (its vcov_full); its beta block is lme4's RX-based vcov (for glmer:
##     vcov(m, use.hessian = FALSE)), the b block includes beta's uncertainty.
##   naive: se = sqrt(diag(X V X') + diag(Z P Z')), P = blockdiag of ranef(m, condVar = TRUE)'s
##     postVar (conditional on beta), ignoring the b-beta covariance.
## glmer response scale: fit = linkinv(eta); se = se_link * |mu.eta(eta)| (delta method, as
##   lme4 >= 2.0); confidence interval = linkinv(eta -/+ q se_link).
## Intervals: q = qnorm(0.975).  Confidence: fit -/+ q se.  Prediction (lmer only):
##   fit -/+ q sqrt(se^2 + sigma^2 / w_new) with w_new = 1; for the fixed-only prediction
##   of a new group also pred_new_group: fit -/+ q sqrt(se^2 + z Sigma z' + sigma^2), Sigma
##   the random-effects covariance of the model (z = the new rows' random-effect columns).
Q975 <- qnorm(0.975)

## X and Z for new rows with the model's columns: the model's formula on rbind(data, newdata)
## (newdata has only known levels, so the factor levels and the Z columns are the model's)
new_design <- function(m, data, newdata, response) {
  d <- data
  nd <- newdata
  for (v in response) nd[[v]] <- if (is.null(nd[[v]])) 1 else nd[[v]]
  for (v in setdiff(names(d), names(nd))) nd[[v]] <- d[[v]][1L]
  both <- rbind(d, nd[names(d)])
  f <- formula(m)
  lf <- if (isGLMM(m)) glFormula(f, both, family = family(m)) else lFormula(f, both)
  rows <- nrow(d) + seq_len(nrow(nd))
  Zt <- lf$reTrms$Zt
  stopifnot(identical(rownames(Zt), rownames(getME(m, "Zt"))),
            identical(colnames(lf$X), colnames(getME(m, "X"))))
  list(X = lf$X[rows, , drop = FALSE], Z = as.matrix(t(Zt))[rows, , drop = FALSE])
}

joint_cov <- function(m) {
  Lam <- as.matrix(t(getME(m, "Lambdat")))
  Z <- as.matrix(getME(m, "Z")); X <- getME(m, "X")
  W <- if (isGLMM(m)) weights(m, type = "working") else weights(m)
  s <- if (isGLMM(m)) 1 else sigma(m)
  ZL <- Z %*% Lam
  M <- rbind(cbind(crossprod(ZL, W * ZL) + diag(ncol(ZL)), crossprod(ZL, W * X)),
             cbind(crossprod(X, W * ZL), crossprod(X, W * X)))
  Tm <- as.matrix(Matrix::bdiag(Lam, diag(ncol(X))))
  Tm %*% (s^2 * solve(M)) %*% t(Tm)
}

postvar_blockdiag <- function(m) {
  re <- ranef(m, condVar = TRUE)
  ## b order: terms as in getME(m, "flist") / cnms; within a term level-major, columns fastest
  blocks <- list()
  for (g in names(re)) {
    pv <- attr(re[[g]], "postVar")
    for (j in seq_len(dim(pv)[3])) blocks[[length(blocks) + 1L]] <- pv[, , j, drop = FALSE][, , 1L]
  }
  as.matrix(Matrix::bdiag(lapply(blocks, as.matrix)))
}

re_cov_blockdiag <- function(m, nlev) {
  vc <- VarCorr(m)
  as.matrix(Matrix::bdiag(unlist(lapply(names(vc), function(g)
    rep(list(as.matrix(vc[[g]])), nlev[[g]])), recursive = FALSE)))
}

predict_case <- function(key, newdata, response) {
  m <- models[[key]]
  data <- get(model_data[[key]])
  cat("predict", key, "\n"); flush.console()
  des <- new_design(m, data, newdata, response)
  X <- des$X; Z <- des$Z
  V <- as.matrix(vcov(m))
  C <- joint_cov(m)
  q <- ncol(Z); p <- ncol(X)
  ## checks of the formulas above against lme4
  vb <- if (isGLMM(m)) as.matrix(vcov(m, use.hessian = FALSE)) else V
  stopifnot(max(abs(C[q + seq_len(p), q + seq_len(p)] - vb)) < 1e-6 * max(abs(vb)))
  P <- postvar_blockdiag(m)
  eta_fixed <- drop(X %*% fixef(m))
  eta_cond <- eta_fixed + drop(Z %*% getME(m, "b"))
  stopifnot(max(abs(eta_fixed - predict(m, newdata, re.form = NA))) < 1e-8,
            max(abs(eta_cond - predict(m, newdata))) < 1e-8)
  se_fixed <- sqrt(rowSums((X %*% V) * X))
  ZX <- cbind(Z, X)
  se_joint <- sqrt(rowSums((ZX %*% C) * ZX))
  se_naive <- sqrt(se_fixed^2 + rowSums((Z %*% P) * Z))
  out <- list(
    newdata = lapply(newdata, function(v) if (is.factor(v)) as.character(v) else v),
    X = num(X), X_colnames = colnames(X), Z_nonzero = lapply(seq_len(nrow(Z)), function(i)
      list(columns = which(Z[i, ] != 0), values = num(Z[i, Z[i, ] != 0]))),
    b_names = rownames(getME(m, "Zt")),
    fit_fixed = num(eta_fixed), se_fixed = num(se_fixed),
    fit_conditional = num(eta_cond), se_conditional_joint = num(se_joint),
    se_conditional_naive = num(se_naive),
    quantile = Q975)
  ci <- function(f, s) list(lower = num(f - Q975 * s), upper = num(f + Q975 * s))
  if (!isGLMM(m)) {
    sg <- sigma(m)
    nlev <- lapply(getME(m, "flist"), nlevels)
    Sig <- re_cov_blockdiag(m, nlev)
    re_var_new <- rowSums((Z %*% Sig) * Z)
    out$sigma <- sg
    out$ci_fixed <- ci(eta_fixed, se_fixed)
    out$ci_conditional_joint <- ci(eta_cond, se_joint)
    out$pi_conditional_joint <- ci(eta_cond, sqrt(se_joint^2 + sg^2))
    out$pi_fixed <- ci(eta_fixed, sqrt(se_fixed^2 + sg^2))
    out$pi_fixed_new_group <- ci(eta_fixed, sqrt(se_fixed^2 + re_var_new + sg^2))
    out$re_var_new_group <- num(re_var_new)
  } else {
    fam <- family(m)
    resp <- function(eta, se) list(fit = num(fam$linkinv(eta)), se = num(se * abs(fam$mu.eta(eta))),
                                   ci_lower = num(fam$linkinv(eta - Q975 * se)),
                                   ci_upper = num(fam$linkinv(eta + Q975 * se)))
    out$link <- list(ci_fixed = ci(eta_fixed, se_fixed), ci_conditional_joint = ci(eta_cond, se_joint))
    out$response_fixed <- resp(eta_fixed, se_fixed)
    out$response_conditional_joint <- resp(eta_cond, se_joint)
    out$response_conditional_naive <- resp(eta_cond, se_naive)
    out$se_fixed_rx <- num(sqrt(rowSums((X %*% vb) * X)))
    out$vcov_hessian_vs_rx <- list(hessian = num(V), rx = num(vb),
      note = paste("lme4 warns that the two differ by > 1e-4 for cbpp; se_fixed uses the Hessian one",
                   "(vcov(m)), se_fixed_rx and the joint se the RX one"))
    out$prediction_interval <- "not defined for a binomial GLMM (no residual variance on the link scale)"
  }
  out
}

nd_ss <- data.frame(Days = c(0, 2.5, 5, 9, 12), Subject = c("308", "309", "330", "372", "308"))
nd_pen <- data.frame(plate = c("a", "b", "k", "x"), sample = c("A", "F", "C", "D"))
nd_cb <- data.frame(period = factor(c("1", "2", "3", "4", "1", "4"), levels = levels(cbpp$period)),
                    herd = c("1", "5", "15", "3", "8", "8"))
nd_ssw <- data.frame(Days = c(0, 4, 9), Subject = c("308", "350", "371"), w = c(1, 2, 1))
for (v in c("Subject")) { nd_ss[[v]] <- factor(nd_ss[[v]], levels(sleepstudy$Subject))
                          nd_ssw[[v]] <- factor(nd_ssw[[v]], levels(sleepstudy$Subject)) }
nd_pen$plate <- factor(nd_pen$plate, levels(Penicillin$plate))
nd_pen$sample <- factor(nd_pen$sample, levels(Penicillin$sample))
nd_cb$herd <- factor(nd_cb$herd, levels(cbpp$herd))

pred_se <- list(
  ss = predict_case("ss", nd_ss, "Reaction"),
  pen = predict_case("pen", nd_pen, "diameter"),
  cb = predict_case("cb", nd_cb, c("incidence", "size")),
  ssw = predict_case("ssw", nd_ssw, "Reaction"))

## re.form variants on new data (lme4 1.1-31's predict)
re_forms <- function(key, nd, forms, type = "link") {
  m <- models[[key]]
  lapply(setNames(forms, forms), function(f) value_or_unsupported(
    sprintf("predict(models$%s, nd, re.form = %s, type = '%s')", key, f, type), num))
}
nd <- nd_ss
re_form_ss <- re_forms("ss", nd, c("NULL", "NA", "~0", "~ (1 | Subject)", "~ 1 | Subject",
                                   "~ (Days | Subject)", "~ (0 + Days | Subject)"))
nd <- nd_pen
re_form_pen <- re_forms("pen", nd, c("NULL", "NA", "~0", "~ (1 | plate)", "~ 1 | plate",
                                     "~ (1 | sample)", "~ (1 | plate) + (1 | sample)"))
nd <- nd_cb
re_form_cb <- c(re_forms("cb", nd, c("NULL", "NA", "~ (1 | herd)", "~ 1 | herd")),
                list(response = re_forms("cb", nd, c("NULL", "NA"), type = "response")))

## newparams: predict() and simulate() with parameters other than the fit's.
## lme4's theta is relative to sigma (Lambda = theta-shaped lower triangle; Sigma = sigma^2 Lambda Lambda').
np <- list(theta = c(1, 0.1, 0.25), beta = c(250, 10), sigma = 30)
nd <- nd_ss
newparams <- list(
  params = np,
  predict_fixed = value_or_unsupported("predict(models$ss, nd, re.form = NA, newparams = np)", num),
  predict_conditional = value_or_unsupported("predict(models$ss, nd, newparams = np)", num),
  note_conditional = paste("with newparams, lme4 1.1-31 keeps the fit's spherical modes u and",
                           "rescales them: b = Lambda(new theta) u, so conditional predictions",
                           "change with theta without refitting the modes."))
sim_moments <- local({
  nsim <- 4000L
  s <- simulate(models$ss, nsim = nsim, seed = 20240601, newparams = np)
  Y <- as.matrix(s)
  X <- getME(models$ss, "X"); Z <- as.matrix(getME(models$ss, "Z"))
  ms <- models$ss
  Lam <- as.matrix(t(getME(setParamsLike <- ms, "Lambdat")))
  ## theoretical moments under np: E y = X beta, Var y = sigma^2 (Z L L' Z' + I)
  L1 <- matrix(c(np$theta[1], np$theta[2], 0, np$theta[3]), 2, 2)
  Lb <- kronecker(diag(nlevels(sleepstudy$Subject)), L1)
  Vy <- np$sigma^2 * (Z %*% Lb %*% t(Lb) %*% t(Z) + diag(nrow(Z)))
  rows <- 1:10
  list(call = "simulate(models$ss, nsim = 4000, seed = 20240601, newparams = np)  # re.form = NA: new random effects",
       nsim = nsim, rows = rows,
       mean = num(rowMeans(Y)[rows]), var = num(apply(Y[rows, ], 1, var)),
       cov_1_2 = cov(Y[1, ], Y[2, ]), cov_1_11 = cov(Y[1, ], Y[11, ]),
       theory_mean = num(drop(X %*% np$beta)[rows]), theory_var = num(diag(Vy)[rows]),
       theory_cov_1_2 = Vy[1, 2], theory_cov_1_11 = Vy[1, 11],
       note = paste("seed-dependent draws cannot be reproduced outside R: compare moments with a",
                    "Monte Carlo tolerance (sd of a mean ~ sqrt(var / nsim)); theory_* are exact."))
})

write_ref("postfit_predict", list(
  models = calls, data = model_data,
  se_fit = pred_se, re_form = list(ss = re_form_ss, pen = re_form_pen, cb = re_form_cb),
  newparams = newparams, simulate_moments = sim_moments,
  notes = list(
    se_fit = paste("See make_postfit.R: fixed-only se = sqrt(diag(X vcov X')); conditional se 'joint' =",
                   "lme4 >= 2.0 predict(se.fit = TRUE) (joint conditional covariance of b and beta,",
                   "Henderson's mixed-model equations), 'naive' = fixed part + condVar part without",
                   "their covariance. Intervals use qnorm(0.975); prediction intervals (lmer) add",
                   "sigma^2, and for a new group also z Sigma z'. glmer response scale: delta-method se",
                   "and linkinv of the link-scale interval. X_colnames/X: fixed design of the new rows;",
                   "Z_nonzero: per new row the 1-based columns of b (b_names) and values."),
    re_form = paste("predict(m, nd, re.form = ...) for each formula as written; '~ 1 | g' (no",
                    "parentheses) is accepted by lme4 1.1-31 and equals '~ (1 | g)'."))))

## ================================================================= misc ==
## ranef(condVar = TRUE) full conditional covariance per level ("postVar": k x k x levels)
postvar_json <- function(m) {
  re <- ranef(m, condVar = TRUE)
  lapply(re, function(r) {
    pv <- attr(r, "postVar")
    list(levels = rownames(r), columns = I(colnames(r)), values = num(as.matrix(r)),
         postvar = lapply(seq_len(dim(pv)[3]), function(j) num(matrix(pv[, , j], dim(pv)[1], dim(pv)[2]))))
  })
}

confint_json <- function(key, method, old) {
  call <- sprintf('confint(models$%s, method = "%s", oldNames = %s)', key, method, old)
  r <- eval_capturing(call)
  ci <- r$value
  list(call = call, names = rownames(ci), lower = num(ci[, 1]), upper = num(ci[, 2]),
       warnings = grep("^Computing profile confidence intervals", r$warnings, value = TRUE, invert = TRUE))
}
confints <- list()
for (key in c("ss", "pen", "cb")) for (method in c("Wald", "profile")) for (old in c("TRUE", "FALSE")) {
  if (key == "cb" && method == "profile") next
  cat("confint", key, method, old, "\n"); flush.console()
  confints[[sprintf("%s_%s_oldNames%s", key, tolower(method), old)]] <- confint_json(key, method, old)
}

## start = list(theta = ...): the same optimum from another start
start_json <- function(call) {
  r <- eval_capturing(call)
  m <- r$value
  list(call = call, theta = num(getME(m, "theta")), fixef = num(fixef(m)),
       logLik = as.numeric(logLik(m)), sigma = sigma(m), feval = m@optinfo$feval,
       warnings = r$warnings)
}
starts <- list(
  default = start_json("lmer(Reaction ~ Days + (Days | Subject), sleepstudy)"),
  theta_list = start_json("lmer(Reaction ~ Days + (Days | Subject), sleepstudy, start = list(theta = c(0.5, 0, 0.5)))"),
  theta_vector = start_json("lmer(Reaction ~ Days + (Days | Subject), sleepstudy, start = c(2, -0.5, 1))"),
  at_optimum = start_json(sprintf("lmer(Reaction ~ Days + (Days | Subject), sleepstudy, start = list(theta = c(%s)))",
                                  paste(format(getME(models$ss, "theta"), digits = 17), collapse = ", "))),
  glmer_theta_fixef = start_json("glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial, start = list(theta = 1, fixef = c(-1, -1, -1, -1)))"),
  glmer_default = start_json("glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial)"))

## rank deficiency: fixef(add.dropped = TRUE) and anova
rank_deficient <- local({
  calls_rd <- c(factor = "lmer(Reaction ~ DayF + Phase + (1 | Subject), sleepstudy)",
                numeric = "lmer(Reaction ~ Days + I(2 * Days) + (1 | Subject), sleepstudy)")
  lapply(calls_rd, function(call) {
    r <- eval_capturing(call)
    m <- r$value
    fa <- fixef(m, add.dropped = TRUE)
    list(call = call, fit_warnings = r$warnings,
         fixef_names = names(fixef(m)), fixef = num(fixef(m)),
         fixef_dropped_names = names(fa), fixef_add_dropped = num(fa),
         col_dropped = as.list(attr(getME(m, "X"), "col.dropped")),
         se = num(sqrt(diag(as.matrix(vcov(m))))), logLik = as.numeric(logLik(m)),
         anova = table_json(anova(m), sprintf("anova(%s)", call)),
         anova_lmerTest = {
           a <- suppressMessages(lmerTest::as_lmerModLmerTest(m))
           table_json(anova(a), "lmerTest: anova(as_lmerModLmerTest(m))  # type III, Satterthwaite")
         })
  })
})

## na.action = na.exclude: fitted / residuals / predict padded with NA in the data's rows
na_json <- local({
  d <- sleepstudy
  na_rows <- c(3L, 50L, 100L)
  d$Reaction[na_rows] <- NA
  d$Days[120L] <- NA
  sleepstudy_na <<- d
  out <- list(data = "sleepstudy with Reaction[c(3, 50, 100)] <- NA and Days[120] <- NA (1-based rows)",
              na_rows = c(na_rows, 120L))
  for (act in c("na.exclude", "na.omit")) {
    call <- sprintf("lmer(Reaction ~ Days + (Days | Subject), sleepstudy_na, na.action = %s)", act)
    r <- eval_capturing(call)
    m <- r$value
    out[[act]] <- list(call = call, nobs = nobs(m), logLik = as.numeric(logLik(m)),
                       fixef = num(fixef(m)), theta = num(getME(m, "theta")),
                       fitted = num(fitted(m)), residuals = num(residuals(m)),
                       residuals_pearson = num(residuals(m, type = "pearson")),
                       predict = num(predict(m)), predict_fixed = num(predict(m, re.form = NA)),
                       hatvalues = num(hatvalues(m)),
                       names_fitted = names(fitted(m)))
  }
  out
})

write_ref("postfit_misc", list(
  models = calls, data = model_data,
  postvar = list(ss = postvar_json(models$ss), pen = postvar_json(models$pen),
                 cb = postvar_json(models$cb), ssw = postvar_json(models$ssw)),
  confint = confints, start = starts, rank_deficient = rank_deficient, na_action = na_json,
  notes = list(
    postvar = paste("ranef(m, condVar = TRUE): per grouping factor levels, columns, values (conditional",
                    "modes) and postvar (one k x k conditional covariance per level, given beta)."),
    confint = paste("names/lower/upper for method Wald and profile, oldNames TRUE (lme4's default:",
                    ".sig01, .sig02, ..., .sigma) and FALSE (sd_(Intercept)|Subject, cor_..., sigma).",
                    "Wald rows for the variance parameters are NA (null). No profile for cb (glmer)."),
    start = "the fits from each start reach the same logLik (compare theta within optimizer tolerance)",
    rank_deficient = paste("lme4 drops the aliased column (message 'fixed-effect model matrix is rank",
                           "deficient so dropping 1 column / coefficient'); fixef(add.dropped = TRUE) puts",
                           "NA (null) in its place. lme4's anova(m) has no row for a term whose columns",
                           "were all dropped (Phase); lmerTest's type III table has an empty (null) row."),
    na_action = paste("na.exclude pads fitted/residuals/predict/hatvalues to the 180 data rows with NA",
                      "(null); na.omit returns the 176 complete rows (names_fitted are the data's row",
                      "names, 1-based)."))))
