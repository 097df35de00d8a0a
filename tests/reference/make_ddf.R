#!/usr/bin/env Rscript
## Reference results for degrees of freedom, F tests and marginal means
## (lmerTest / pbkrtest / emmeans) beyond make_references.R.  The Python
## tests (inference/test_ddf.py, test_ftests.py, test_emmeans.py) read the JSON files
## and never run R.
##
## Usage:  Rscript tests/reference/make_ddf.R [DATA_DIR]
##   DATA_DIR defaults to ../../../shared/data relative to this script.
## Writes ddf_<case>.json next to this script (about 8 s).
##
## Derived columns (tests/conftest_ddf.py rebuilds them):
##   sleepstudy$Phase = factor(ifelse(Days < 5, "early", "late"))
##   sleepstudy$Half  = factor(ifelse(Days %% 2 == 0, "even", "odd"))
##   sleepstudy$DayF  = factor(Days);  sleepstudy$w = 1 + Days %% 3
##   sleepstudy$Third = factor(Days %/% 4)   (levels "0", "1", "2")
##   sleep_unbal      = rows of sleepstudy with (as.integer(Subject) + Days) %% 7 != 0 (156 rows)
##
## Cases (fields as in make_references.R: theta, sigma, fixef, vcov; tables
## column-wise with R's column names; hypotheses_type3 are lmerTest's L matrices):
##   ddf_phase_days     lmer(Reaction ~ Phase * Days + (Days | Subject)): coef tables
##                      (Satterthwaite, KR), vcovAdj, anova III (both) and I, emmeans(~Phase)
##                      KR/Satterthwaite and at Days = 0, printed summaries
##   ddf_phase_half     lmer(Reaction ~ Phase * Half + (1 | Subject)): as above plus emmeans by
##                      groups and cells, pairs with tukey/bonferroni/holm/none
##   ddf_phase_half_sum the same with contr.sum for both factors (type III mapping path)
##   ddf_slope_text     printed lmerTest summaries of the sleepstudy slope model; format.pval cases
##   ddf_cbpp_emmeans   glmer cbpp binomial: emmeans(~period) and pairs (asymptotic)
##   ddf_unbalanced     sleep_unbal: slope model and DayF model, KR adjustment non-trivial
##   ddf_slope_ml       ML fit: Satterthwaite coef table
##   ddf_weights        weights = w: Satterthwaite and KR (pbkrtest ignores prior weights)
##   ddf_lm_phase_half  lm(Reaction ~ Phase * Half): emmeans with the residual df
##   ddf_terms          type III hypotheses and F tests for more formulas: scale(), a 3-level
##                      factor interaction (multi-df), no intercept, I(Days^2), helmert x numeric

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(pbkrtest)
  library(emmeans)
  library(jsonlite)
})

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f) == 1L) dirname(normalizePath(f)) else normalizePath(".")
})
source(file.path(script_dir, "common.R"))   # read_dataset, table_json, ...
data_dir <- reference_data_dir()

versions <- package_versions("lme4", "lmerTest", "pbkrtest", "emmeans")

sleepstudy <- read_dataset("sleepstudy")
## Derived columns (Python rebuilds them the same way)
sleepstudy <- add_sleepstudy_columns(sleepstudy)            # w, DayF, Phase
sleepstudy$Half  <- factor(ifelse(sleepstudy$Days %% 2 == 0, "even", "odd"))
sleepstudy$Third <- factor(sleepstudy$Days %/% 4)           # levels "0", "1", "2"
## unbalanced: drop the rows with (subject number + Days) %% 7 == 0 (subject number = factor code, 1..18)
sleep_unbal <- subset(sleepstudy, (as.integer(Subject) + Days) %% 7 != 0)

safely <- function(expr) tryCatch(expr, error = function(e) list(error = conditionMessage(e)))

fit_json <- function(m) {
  list(
    class = class(m)[1], REML = isREML(m), nobs = nobs(m),
    REMLcrit = if (isREML(m)) unname(REMLcrit(m)) else NULL,
    deviance = if (!isREML(m)) unname(deviance(m)) else NULL,
    theta = unname(getME(m, "theta")), sigma = sigma(m),
    fixef_names = names(fixef(m)), fixef = unname(fixef(m)),
    vcov = unname(as.matrix(vcov(m)))
  )
}

coef_json <- function(m, ddf) table_json(coef(summary(m, ddf = ddf)))

emm_json <- function(m, specs, ...) {
  e <- emmeans(m, specs, ...)
  list(emmeans = table_json(summary(e)), pairs = table_json(summary(pairs(e))))
}

cases <- list(
  ddf_phase_days = function() {
    m <- lmer(Reaction ~ Phase * Days + (Days | Subject), sleepstudy)
    c(list(call = "lmer(Reaction ~ Phase * Days + (Days | Subject), sleepstudy)"), fit_json(m), list(
      coef_satterthwaite = coef_json(m, "Satterthwaite"),
      coef_kenward_roger = coef_json(m, "Kenward-Roger"),
      vcov_kenward_roger = unname(as.matrix(vcovAdj(m))),
      anova_satterthwaite = safely(table_json(anova(m))),
      anova_kenward_roger = safely(table_json(anova(m, ddf = "Kenward-Roger"))),
      anova_type1_satterthwaite = safely(table_json(anova(m, type = 1))),
      hypotheses_type3 = lapply(attr(anova(m), "hypotheses"), function(L) unname(as.matrix(L))),
      emmeans_phase_kr = safely(emm_json(m, ~ Phase)),
      emmeans_phase_satterthwaite = safely(emm_json(m, ~ Phase, lmer.df = "satterthwaite")),
      emmeans_phase_at_day0 = safely(table_json(summary(emmeans(m, ~ Phase, at = list(Days = 0))))),
      summary_satterthwaite_text = capture.output(print(summary(m))),
      summary_kenward_roger_text = capture.output(print(summary(m, ddf = "Kenward-Roger")))
    ))
  },
  ddf_phase_half = function() {
    m <- lmer(Reaction ~ Phase * Half + (1 | Subject), sleepstudy)
    c(list(call = "lmer(Reaction ~ Phase * Half + (1 | Subject), sleepstudy)"), fit_json(m), list(
      coef_satterthwaite = coef_json(m, "Satterthwaite"),
      coef_kenward_roger = coef_json(m, "Kenward-Roger"),
      anova_satterthwaite = safely(table_json(anova(m))),
      anova_kenward_roger = safely(table_json(anova(m, ddf = "Kenward-Roger"))),
      anova_type1_satterthwaite = safely(table_json(anova(m, type = 1))),
      hypotheses_type3 = lapply(attr(anova(m), "hypotheses"), function(L) unname(as.matrix(L))),
      emmeans_phase_kr = safely(emm_json(m, ~ Phase)),
      emmeans_half_by_phase_kr = safely(emm_json(m, ~ Half | Phase)),
      emmeans_cells_kr = safely(emm_json(m, ~ Phase * Half)),
      emmeans_cells_satterthwaite = safely(emm_json(m, ~ Phase * Half, lmer.df = "satterthwaite")),
      emmeans_cells_bonferroni = safely(table_json(summary(pairs(emmeans(m, ~ Phase * Half)), adjust = "bonferroni"))),
      emmeans_cells_holm = safely(table_json(summary(pairs(emmeans(m, ~ Phase * Half)), adjust = "holm"))),
      emmeans_cells_none = safely(table_json(summary(pairs(emmeans(m, ~ Phase * Half)), adjust = "none")))
    ))
  },
  ddf_phase_half_sum = function() {
    m <- lmer(Reaction ~ Phase * Half + (1 | Subject), sleepstudy,
              contrasts = list(Phase = "contr.sum", Half = "contr.sum"))
    c(list(call = "lmer(Reaction ~ Phase * Half + (1 | Subject), sleepstudy, contrasts = list(Phase = contr.sum, Half = contr.sum))"),
      fit_json(m), list(
      coef_satterthwaite = coef_json(m, "Satterthwaite"),
      anova_satterthwaite = safely(table_json(anova(m))),
      anova_kenward_roger = safely(table_json(anova(m, ddf = "Kenward-Roger"))),
      hypotheses_type3 = lapply(attr(anova(m), "hypotheses"), function(L) unname(as.matrix(L))),
      emmeans_phase_kr = safely(emm_json(m, ~ Phase))
    ))
  },
  ddf_slope_text = function() {
    m <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
    list(call = "lmer(Reaction ~ Days + (Days | Subject), sleepstudy)",
         summary_satterthwaite_text = capture.output(print(summary(m))),
         summary_kenward_roger_text = capture.output(print(summary(m, ddf = "Kenward-Roger"))),
         format_pval_inputs = list(c(0.671597857578817, 0.000812307063968406, 4.47e-22, 0.326),
                                   c(0.5, 0.04, 0.0001234), c(1e-5, 2.5e-7), c(0.9, 0.0123),
                                   c(1e-300, 0.5), 3e-17, c(0.05, 1), c(0.00099, 0.2)),
         format_pval_outputs = lapply(list(c(0.671597857578817, 0.000812307063968406, 4.47e-22, 0.326),
                                   c(0.5, 0.04, 0.0001234), c(1e-5, 2.5e-7), c(0.9, 0.0123),
                                   c(1e-300, 0.5), 3e-17, c(0.05, 1), c(0.00099, 0.2)),
                                   function(p) format.pval(p, digits = 3)))
  },
  ddf_cbpp_emmeans = function() {
    cbpp <- read_dataset("cbpp")
    m <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial)
    c(list(call = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial)"),
      list(theta = unname(getME(m, "theta")), fixef = unname(fixef(m)), fixef_names = names(fixef(m)),
           emmeans_period = safely(emm_json(m, ~ period))))
  },
  ddf_unbalanced = function() {
    m1 <- lmer(Reaction ~ Days + (Days | Subject), sleep_unbal)
    m2 <- lmer(Reaction ~ DayF + (1 | Subject), sleep_unbal)
    list(call = "lmer(Reaction ~ Days + (Days | Subject), sleep_unbal); lmer(Reaction ~ DayF + (1 | Subject), sleep_unbal)",
         nobs = nobs(m1),
         slope = c(fit_json(m1), list(
           coef_satterthwaite = coef_json(m1, "Satterthwaite"),
           coef_kenward_roger = coef_json(m1, "Kenward-Roger"),
           vcov_kenward_roger = unname(as.matrix(vcovAdj(m1))))),
         dayf = c(fit_json(m2), list(
           coef_satterthwaite = coef_json(m2, "Satterthwaite"),
           coef_kenward_roger = coef_json(m2, "Kenward-Roger"),
           vcov_kenward_roger = unname(as.matrix(vcovAdj(m2))),
           anova_satterthwaite = safely(table_json(anova(m2))),
           anova_kenward_roger = safely(table_json(anova(m2, ddf = "Kenward-Roger"))),
           emmeans_dayf_kr = safely(emm_json(m2, ~ DayF)),
           emmeans_dayf_satterthwaite = safely(emm_json(m2, ~ DayF, lmer.df = "satterthwaite")))))
  },
  ddf_terms = function() {
    anova_case <- function(formula, emm = NULL, kr = TRUE, type1 = FALSE, ...) {
      m <- lmer(formula, sleepstudy, ...)
      out <- c(fit_json(m), list(
        formula = deparse(formula),
        anova_satterthwaite = safely(table_json(anova(m))),
        hypotheses_type3 = lapply(attr(anova(m), "hypotheses"), function(L) unname(as.matrix(L)))))
      if (kr) out$anova_kenward_roger <- safely(table_json(anova(m, ddf = "Kenward-Roger")))
      if (type1) out$anova_type1_satterthwaite <- safely(table_json(anova(m, type = 1)))
      if (!is.null(emm)) out$emmeans_kr <- safely(emm_json(m, emm))
      out
    }
    list(call = "see each model's formula",
         phase_scale = anova_case(Reaction ~ Phase * scale(Days) + (1 | Subject), emm = ~ Phase),
         third_half = c(anova_case(Reaction ~ Third * Half + (1 | Subject), emm = ~ Third, type1 = TRUE),
                        list(emmeans_third_by_half = safely(emm_json(
                          lmer(Reaction ~ Third * Half + (1 | Subject), sleepstudy), ~ Third | Half)))),
         no_intercept = anova_case(Reaction ~ 0 + Phase + Days + (1 | Subject)),
         quadratic = anova_case(Reaction ~ Phase + Days + I(Days^2) + (1 | Subject), emm = ~ Phase),
         helmert_days = anova_case(Reaction ~ Third * Days + (Days | Subject),
                                   contrasts = list(Third = "contr.helmert")))
  },
  ddf_slope_ml = function() {
    m <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = FALSE)
    c(list(call = "lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = FALSE)"), fit_json(m), list(
      coef_satterthwaite = coef_json(m, "Satterthwaite"),
      anova_satterthwaite = safely(table_json(anova(m)))
    ))
  },
  ddf_weights = function() {
    m <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy, weights = w)
    c(list(call = "lmer(Reaction ~ Days + (Days | Subject), sleepstudy, weights = w)"), fit_json(m), list(
      coef_satterthwaite = coef_json(m, "Satterthwaite"),
      coef_kenward_roger = safely(coef_json(m, "Kenward-Roger")),
      note = "pbkrtest builds Sigma with an identity residual block, i.e. it ignores prior weights"
    ))
  },
  ddf_lm_phase_half = function() {
    m <- lm(Reaction ~ Phase * Half, sleepstudy)
    list(call = "lm(Reaction ~ Phase * Half, sleepstudy)", coef = unname(coef(m)), coef_names = names(coef(m)),
         sigma = sigma(m), df_residual = df.residual(m),
         emmeans_phase = safely(emm_json(m, ~ Phase)),
         emmeans_cells = safely(emm_json(m, ~ Phase * Half)))
  }
)

for (id in names(cases)) {
  res <- tryCatch(cases[[id]](), error = function(e) list(error = conditionMessage(e)))
  res$id <- id
  res$versions <- versions
  write_reference_json(res, file.path(script_dir, paste0(id, ".json")), pretty = FALSE)
  cat(id, if (!is.null(res$error)) paste("ERROR:", res$error) else "ok", "\n")
}
