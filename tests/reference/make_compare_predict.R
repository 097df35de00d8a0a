#!/usr/bin/env Rscript
## Reference results for model comparison (anova, ranova), lm/glm, and predict
## (mixedmodels: inference/compare.py, linear_models.py, predict.py).
## The Python tests read the JSON files this script writes next to itself and never run R.
##
## Usage:  Rscript tests/reference/make_compare_predict.R [DATA_DIR]
##   DATA_DIR defaults to ../../../shared/data relative to this script.
## Writes: compare_anova.json, compare_ranova.json, linear_models.json, predict_extra.json
## Tables are column-wise {"rownames": [...], "<R column name>": [...]}; R's NA is null;
## length-1 vectors are bare scalars (jsonlite auto_unbox), as in make_references.R.

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(jsonlite)
})

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f) == 1L) dirname(normalizePath(f)) else normalizePath(".")
})
source(file.path(script_dir, "common.R"))   # num, read_dataset, table_json(tab, call), ...
data_dir <- reference_data_dir()

versions <- package_versions("lme4", "lmerTest", "jsonlite")

sleepstudy  <- add_sleepstudy_columns(read_dataset("sleepstudy"))   # w, DayF, Phase
Penicillin  <- read_dataset("Penicillin")
Pastes      <- read_dataset("Pastes")
cbpp        <- read_dataset("cbpp")
grouseticks <- read_dataset("grouseticks")

quiet <- function(expr) suppressMessages(suppressWarnings(expr))
write_ref <- function(name, x) {
  x$versions <- versions
  write_reference_json(x, file.path(script_dir, paste0(name, ".json")))
  cat("wrote", name, "\n")
}

## ---------------------------------------------------------------- ranova --
ranova_case <- function(call) {
  m <- quiet(eval(parse(text = call)[[1L]]))
  table_json(ranova(m), paste0("ranova(", call, ")"))
}
write_ref("compare_ranova", list(
  note = paste("lmerTest::ranova (reduce.terms = TRUE). Rows: <none>, then one per random term in",
               "formula order: '(1 | g)' removes the term, 'x in (lhs | g)' drops x from lhs."),
  intercept = ranova_case("lmer(Reaction ~ Days + (1 | Subject), sleepstudy)"),
  uncorrelated = ranova_case("lmer(Reaction ~ Days + (Days || Subject), sleepstudy)"),
  two_slopes = ranova_case("lmer(Reaction ~ Days + (Days + Phase | Subject), sleepstudy)"),
  nested = ranova_case("lmer(strength ~ 1 + (1 | batch/cask), Pastes)"),
  crossed_ml = ranova_case("lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin, REML = FALSE)")
))

## ----------------------------------------------------------------- anova --
ss1 <- lmer(Reaction ~ Days + (1 | Subject), sleepstudy)
ss2 <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
ss0 <- lm(Reaction ~ Days, sleepstudy)
ssml <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = FALSE)
ss1ml <- lmer(Reaction ~ Days + (1 | Subject), sleepstudy, REML = FALSE)
cb0 <- glm(cbind(incidence, size - incidence) ~ period, cbpp, family = binomial)
cb1 <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial)
cb2 <- glmer(cbind(incidence, size - incidence) ~ 1 + (1 | herd), cbpp, family = binomial)
write_ref("compare_anova", list(
  note = "lme4's anova.merMod: rows ordered by npar; REML fits refitted with ML",
  three_models = table_json(quiet(anova(ss2, ss0, ss1)), "anova(ss2, ss0, ss1)  # (Days|S), lm, (1|S); REML"),
  ml_no_refit = table_json(anova(ss1ml, ssml), "anova(ss1ml, ssml)  # both ML: no refit"),
  glm_vs_glmer = table_json(anova(cb1, cb0), "anova(cb1, cb0)  # cbpp glmer vs glm"),
  glmer_nested = table_json(anova(cb2, cb1), "anova(cb2, cb1)  # cbpp 1 vs period")
))

## ------------------------------------------------------------ lm and glm --
lm_json <- function(f, call) {
  s <- summary(f)
  cf <- coef(s)
  list(call = call, coef_names = rownames(cf), coef = num(cf[, 1]), se = num(cf[, 2]),
       stat = num(cf[, 3]), p = num(cf[, 4]), sigma = s$sigma, df_residual = f$df.residual,
       logLik = as.numeric(logLik(f)), logLik_REML = as.numeric(logLik(f, REML = TRUE)),
       df = attr(logLik(f), "df"), AIC = AIC(f), BIC = BIC(f), deviance = deviance(f),
       r_squared = s$r.squared, adj_r_squared = s$adj.r.squared,
       fstatistic = num(s$fstatistic), nobs = nobs(f),
       fitted_head = num(head(fitted(f), 10)), resid_head = num(head(residuals(f), 10)),
       vcov = num(as.matrix(vcov(f))))
}
glm_json <- function(f, call) {
  s <- summary(f)
  cf <- coef(s)
  list(call = call, family = family(f)$family, link = family(f)$link,
       coef_names = rownames(cf), coef = num(cf[, 1]), se = num(cf[, 2]),
       stat = num(cf[, 3]), stat_name = colnames(cf)[3], p = num(cf[, 4]),
       dispersion = s$dispersion, df_residual = f$df.residual, df_null = f$df.null,
       deviance = deviance(f), null_deviance = f$null.deviance,
       logLik = as.numeric(logLik(f)), df = attr(logLik(f), "df"), AIC = AIC(f), BIC = BIC(f),
       nobs = nobs(f), iter = f$iter,
       fitted_head = num(head(fitted(f), 10)), linpred_head = num(head(predict(f), 10)),
       resid_deviance_head = num(head(residuals(f, "deviance"), 10)),
       resid_pearson_head = num(head(residuals(f, "pearson"), 10)),
       resid_working_head = num(head(residuals(f, "working"), 10)),
       resid_response_head = num(head(residuals(f, "response"), 10)),
       vcov = num(as.matrix(vcov(f))))
}
## printed summaries (plain quotes so the text does not depend on the locale)
options(useFancyQuotes = FALSE, width = 80)
summary_text <- function(f) capture.output(print(summary(f)))
nd_lm <- data.frame(Days = c(0, 4.5, 12))
write_ref("linear_models", list(
  lm_simple = c(lm_json(ss0, "lm(Reaction ~ Days, sleepstudy)"),
                list(predict_newdata = list(Days = nd_lm$Days, fit = num(predict(ss0, nd_lm))),
                     summary_text = summary_text(ss0))),
  lm_weights = c(lm_json(f_w <- lm(Reaction ~ Days + Subject, sleepstudy, weights = w),
                         "lm(Reaction ~ Days + Subject, sleepstudy, weights = w)"),
                 list(summary_text = summary_text(f_w))),
  lm_no_pooling = lm_json(lm(Reaction ~ 0 + Subject, sleepstudy), "lm(Reaction ~ 0 + Subject, sleepstudy)"),
  glm_binomial_cbind = c(glm_json(cb0, "glm(cbind(incidence, size - incidence) ~ period, cbpp, family = binomial)"),
                         list(summary_text = summary_text(cb0))),
  glm_binomial_prop = glm_json(glm(incidence / size ~ period, cbpp, weights = size, family = binomial),
                               "glm(incidence / size ~ period, cbpp, weights = size, family = binomial)"),
  glm_poisson = glm_json(glm(TICKS ~ YEAR + scale(HEIGHT), grouseticks, family = poisson),
                         "glm(TICKS ~ YEAR + scale(HEIGHT), grouseticks, family = poisson)"),
  glm_gamma_log = c(glm_json(f_g <- glm(Reaction ~ Days, sleepstudy, family = Gamma(link = "log")),
                             "glm(Reaction ~ Days, sleepstudy, family = Gamma(link = 'log'))"),
                    list(summary_text = summary_text(f_g))),
  glm_gaussian = glm_json(glm(Reaction ~ Days, sleepstudy, family = gaussian),
                          "glm(Reaction ~ Days, sleepstudy, family = gaussian)"),
  glm_probit_binary = glm_json(glm(Phase ~ Reaction, sleepstudy, family = binomial(link = "probit")),
                               "glm(Phase ~ Reaction, sleepstudy, family = binomial(link = 'probit'))")
))

## --------------------------------------------------------------- predict --
nd <- data.frame(Days = c(0, 5, 9, 3, 2.5, 12), Subject = c("308", "309", "NEW", "372", "330", "NEW2"))
m_scale <- lmer(Reaction ~ scale(Days) + (scale(Days) | Subject), sleepstudy)
m_off <- lmer(Reaction ~ Days + offset(2 * Days) + (Days | Subject), sleepstudy)
nd_f <- data.frame(DayF = factor(c("0", "3", "9"), levels = levels(sleepstudy$DayF)),
                   Subject = c("308", "NEW", "351"))
m_dayf <- lmer(Reaction ~ DayF + (1 | Subject), sleepstudy)
m_unc <- lmer(Reaction ~ Days + (Days || Subject), sleepstudy)
nd_cb <- data.frame(period = factor(c("1", "2", "4", "3"), levels = levels(cbpp$period)),
                    herd = c("1", "5", "NEW", "15"))
write_ref("predict_extra", list(
  newdata_sleepstudy = list(Days = nd$Days, Subject = nd$Subject),
  slope_intercept_only = num(predict(ss2, nd, re.form = ~ (1 | Subject), allow.new.levels = TRUE)),
  slope_full = num(predict(ss2, nd, allow.new.levels = TRUE)),
  uncorrelated_slope_only = num(predict(m_unc, nd, re.form = ~ (0 + Days | Subject), allow.new.levels = TRUE)),
  uncorrelated_full = num(predict(m_unc, nd, allow.new.levels = TRUE)),
  scale_days_full = num(predict(m_scale, nd, allow.new.levels = TRUE)),
  scale_days_fixed = num(predict(m_scale, nd, re.form = NA)),
  offset_full = num(predict(m_off, nd, allow.new.levels = TRUE)),
  offset_fixed = num(predict(m_off, nd, re.form = NA)),
  dayf_newdata = list(DayF = as.character(nd_f$DayF), Subject = nd_f$Subject),
  dayf_full = num(predict(m_dayf, nd_f, allow.new.levels = TRUE)),
  cbpp_newdata = list(period = as.character(nd_cb$period), herd = nd_cb$herd),
  cbpp_link = num(predict(cb1, nd_cb, allow.new.levels = TRUE, type = "link")),
  cbpp_response = num(predict(cb1, nd_cb, allow.new.levels = TRUE, type = "response")),
  cbpp_response_fixed = num(predict(cb1, nd_cb, re.form = NA, type = "response")),
  cbpp_fitted_head = num(head(predict(cb1, type = "response"), 10)),
  note = paste("ss2: lmer(Reaction ~ Days + (Days | Subject)); m_unc: (Days || Subject);",
               "m_scale: scale(Days) + (scale(Days) | Subject); m_off: Days + offset(2 * Days) + (Days | Subject);",
               "m_dayf: DayF + (1 | Subject); cb1: glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), binomial).",
               "All REML (lmer default); allow.new.levels = TRUE where newdata has NEW levels.")
))
