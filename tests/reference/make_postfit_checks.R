#!/usr/bin/env Rscript
## Issue #20 item 4, with lme4 1.1-31: the order lme4 gives random-effects terms, and what
## lme4 refuses (anova of an nAGQ > 1 glmer against a glm, nAGQ > 100, an all-zero or all-one
## binomial response, new levels in predict).  The Python tests read the JSON and never run R.
##
## Usage:  Rscript tests/reference/make_postfit_checks.R [DATA_DIR]
##   DATA_DIR defaults to src/mixedmodels/datasets/data (the package's bundled data).
## Writes: postfit_checks.json
##
## term_order: made-up data (no random numbers: y is a fixed function of the row, so Python
##   rebuilds the data exactly from `gauge_data`), fitted with lmer (REML) for each formula:
##   theta_names, theta, REMLcrit, and the grouping factors in lme4's order (names(flist) and
##   cnms).  lme4's mkReTrms keeps the formula's order when the numbers of levels never
##   increase along it, and otherwise uses rev(order(nl)): decreasing, equal counts in
##   *reverse* formula order.
## refusals: each call's error message (or its value when lme4 accepts it).
## cbpp_tight_se_fixed: make_postfit.R's fixed-only prediction SEs for cbpp (sqrt(diag(X V X'))
##   with V = vcov(m), the Hessian-based one) with the glmer fitted at make_glmm.R's tight
##   tolerances: lme4's default stops early enough on cbpp to move its Hessian SEs by > 1 %
##   (tests/glmm/test_glmm.py, LME4_DEFAULT_SE_OFF), so these are the model's own SEs.
## cbpp_tight_influence: influence(m, groups = "herd")'s refits done by hand at those tight
##   tolerances (each herd deleted, started at the tight fit's theta and fixef): deleted, fixef,
##   se (Hessian vcov), theta, logLik; what lme4's influence() reports with its default glmer
##   settings is in postfit_diagnostics.json (its SEs are > 1 % off, as the full fit's).
## lm_predict, glm_predict: R's predict.lm (se.fit, interval = "confidence" / "prediction") and
##   predict.glm (se.fit on the link and response scales) for the same interface on lm / glm fits.

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

## ------------------------------------------------------------ term order --
## 10 parts x 10 operators x 2 replicates; 3 machines nested in nothing (crossed with parts)
gauge <- expand.grid(rep = 1:2, Operator = 1:10, Part = 1:10)
gauge$Machine <- (gauge$Part + gauge$Operator) %% 3 + 1
i <- seq_len(nrow(gauge))
gauge$x <- (i %% 7) / 7
gauge$y <- 10 + sin(1.7 * gauge$Part) * 2 + cos(2.3 * gauge$Operator) + 0.5 * sin(0.9 * gauge$Machine) +
  0.7 * sin(1.1 * gauge$Part * gauge$Operator) + 0.8 * sin(3.1 * i) + 0.4 * cos(5.3 * i) +
  gauge$x * (1 + 3 * sin(gauge$Part))
gauge_json <- lapply(gauge, num)
for (v in c("Part", "Operator", "Machine")) gauge[[v]] <- factor(gauge[[v]])

term_order_case <- function(formula) {
  r <- eval_capturing(sprintf("lmer(%s, gauge)", formula))
  m <- r$value
  list(formula = formula, theta_names = names(getME(m, "theta")), theta = num(getME(m, "theta")),
       REMLcrit = as.numeric(REMLcrit(m)), flist = names(getME(m, "flist")),
       cnms_groups = names(getME(m, "cnms")), nlevels = num(sapply(getME(m, "flist"), nlevels)),
       fit_warnings = r$warnings)
}
term_order <- lapply(c(
  equal_two = "y ~ 1 + (1 | Part) + (1 | Operator)",
  equal_two_swapped = "y ~ 1 + (1 | Operator) + (1 | Part)",
  equal_then_more = "y ~ 1 + (1 | Part) + (1 | Operator) + (1 | Part:Operator)",
  fewer_first = "y ~ 1 + (1 | Machine) + (1 | Part)",
  fewer_between_equal = "y ~ 1 + (1 | Part) + (1 | Machine) + (1 | Operator)",
  uncorrelated_then_more = "y ~ x + (x || Part) + (1 | Part:Operator)"), term_order_case)

## -------------------------------------------------------------- refusals --
cbpp <- read_dataset("cbpp")
sleepstudy <- read_dataset("sleepstudy")
cbpp$none <- 0L
cbpp$all <- cbpp$size
cbpp$zero <- 0L
cbpp$one <- 1L
g9 <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial, nAGQ = 9)
g1 <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial)
glm0 <- glm(cbind(incidence, size - incidence) ~ period, cbpp, family = binomial)
ss <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
msg <- function(call) {
  r <- try_capturing(call)
  if (!is.null(r$error)) list(call = call, error = r$error) else
    list(call = call, accepted = TRUE, warnings = r$warnings)
}
new_levels <- data.frame(Days = c(1, 2, 3, 4, 5, 6, 7, 8, 9),
                         Subject = c("308", "9", "10", "1000", "372", "11", "12", "13", "14"))
refusals <- list(
  anova_agq_vs_glm = msg("anova(g9, glm0)"),
  anova_laplace_vs_glm = msg("anova(g1, glm0)"),
  nagq_101 = msg("glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial, nAGQ = 101)"),
  nagq_100 = msg("glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial, nAGQ = 100)"),
  cbind_all_zero = msg("glmer(cbind(none, size - none) ~ period + (1 | herd), cbpp, family = binomial)"),
  cbind_all_one = msg("glmer(cbind(all, size - all) ~ period + (1 | herd), cbpp, family = binomial)"),
  binary_all_zero = msg("glmer(zero ~ period + (1 | herd), cbpp, family = binomial)"),
  binary_all_one = msg("glmer(one ~ period + (1 | herd), cbpp, family = binomial)"),
  new_levels = c(msg("predict(ss, new_levels)"), list(newdata = new_levels)))

## ------------------------------------------------- cbpp fixed SEs, tight --
tight <- glmerControl(tolPwrss = 1e-12,
                      optCtrl = list(FtolAbs = 1e-12, FtolRel = 1e-14, XtolRel = 1e-10, maxfun = 1e5))
cbt <- suppressWarnings(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp,
                              family = binomial, control = tight))
nd_cb <- data.frame(period = factor(c("1", "2", "3", "4", "1", "4"), levels = levels(cbpp$period)))
X_cb <- model.matrix(~ period, nd_cb)
V_cb <- as.matrix(vcov(cbt))
eta_cb <- drop(X_cb %*% fixef(cbt))
se_cb <- sqrt(rowSums((X_cb %*% V_cb) * X_cb))
cbpp_tight <- list(
  call = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial, control = tight)",
  period = as.character(nd_cb$period), vcov = num(V_cb), fit_fixed = num(eta_cb), se_fixed = num(se_cb),
  response_se_fixed = num(se_cb * binomial()$mu.eta(eta_cb)))

herds <- as.character(unique(cbpp$herd))
infl_tight <- lapply(herds, function(h) {
  d <- droplevels(cbpp[cbpp$herd != h, ])
  m <- suppressWarnings(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), d, family = binomial,
                              control = tight, start = list(theta = getME(cbt, "theta"), fixef = fixef(cbt))))
  list(fixef = num(fixef(m)), se = num(sqrt(diag(as.matrix(vcov(m))))), theta = num(getME(m, "theta")),
       logLik = as.numeric(logLik(m)))
})
cbpp_tight_influence <- list(
  call = "for each herd h: glmer(..., droplevels(cbpp[cbpp$herd != h, ]), control = tight, start = list(theta, fixef of the tight fit))",
  deleted = herds,
  fixef = lapply(infl_tight, `[[`, "fixef"), se = lapply(infl_tight, `[[`, "se"),
  theta = sapply(infl_tight, `[[`, "theta"), logLik = sapply(infl_tight, `[[`, "logLik"))

## ----------------------------------------------------------- lm and glm --
lm0 <- lm(Reaction ~ Days, sleepstudy)
nd_lm <- data.frame(Days = c(0, 4.5, 12))
pl <- predict(lm0, nd_lm, se.fit = TRUE)
lm_predict <- list(call = "lm(Reaction ~ Days, sleepstudy)", Days = nd_lm$Days, fit = num(pl$fit),
                   se_fit = num(pl$se.fit), df = pl$df,
                   confidence = ci_json(predict(lm0, nd_lm, interval = "confidence")[, -1, drop = FALSE]),
                   prediction = ci_json(predict(lm0, nd_lm, interval = "prediction")[, -1, drop = FALSE]))
glm_predict <- local({
  rows <- 1:5
  pk <- predict(glm0, cbpp[rows, ], se.fit = TRUE)
  pr <- predict(glm0, cbpp[rows, ], se.fit = TRUE, type = "response")
  list(call = "glm(cbind(incidence, size - incidence) ~ period, cbpp, family = binomial)", rows = rows,
       link = num(pk$fit), se_link = num(pk$se.fit), response = num(pr$fit), se_response = num(pr$se.fit))
})

write_reference_json(list(
  gauge_data = gauge_json, lm_predict = lm_predict, glm_predict = glm_predict, term_order = term_order, refusals = refusals, cbpp_tight_se_fixed = cbpp_tight,
  cbpp_tight_influence = cbpp_tight_influence,
  notes = list(
    gauge_data = paste("rows of expand.grid(rep = 1:2, Operator = 1:10, Part = 1:10) (Operator, Part as",
                       "factors with levels 1..10), Machine = (Part + Operator) %% 3 + 1 (factor, 3 levels),",
                       "x = (i %% 7) / 7, y = 10 + 2 sin(1.7 Part) + cos(2.3 Operator) + 0.5 sin(0.9 Machine) + 0.7 sin(1.1 Part Operator)",
                       "+ 0.8 sin(3.1 i) + 0.4 cos(5.3 i) + x (1 + 3 sin(Part)), i = row number"),
    term_order = paste("lme4 1.1-31 mkReTrms: if any(diff(nl) > 0) the terms are put in rev(order(nl)),",
                       "i.e. by decreasing number of levels with equal counts in reverse formula order;",
                       "otherwise the formula's order is kept.")),
  versions = versions), file.path(script_dir, "postfit_checks.json"))
cat("wrote postfit_checks.json\n")
