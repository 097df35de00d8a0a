#!/usr/bin/env Rscript
## Reference results from R (lme4 / lmerTest / pbkrtest / emmeans) for the
## Python package's tests.  The Python tests never run R: they read the JSON
## files this script writes next to itself.
##
## Usage:  Rscript tests/reference/make_references.R [DATA_DIR]
##   DATA_DIR defaults to ../../../shared/data relative to this script
##   (i.e. the project's shared/ beside the repository).
##
## Every case is fitted inside tryCatch(): a case that fails in R writes a
## JSON with an "error" field instead of stopping the script.
## See README.md in this folder for the list of cases and derived columns.

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)   # masks lme4::lmer; fits get class lmerModLmerTest
  library(pbkrtest)
  library(emmeans)
  library(jsonlite)
})

## ------------------------------------------------------------------ paths --
script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f) == 1L) dirname(normalizePath(f)) else normalizePath(".")
})
source(file.path(script_dir, "common.R"))   # num, read_dataset, table_json, ...
args <- commandArgs(trailingOnly = TRUE)
data_dir <- reference_data_dir(args)
out_dir <- script_dir
only <- if (length(args) >= 2L) strsplit(args[[2L]], ",")[[1L]] else NULL

versions <- package_versions("lme4", "lmerTest", "pbkrtest", "emmeans", "Matrix", "jsonlite")

## ------------------------------------------------------------------- data --
sleepstudy  <- read_dataset("sleepstudy")
Dyestuff    <- read_dataset("Dyestuff")
Penicillin  <- read_dataset("Penicillin")
Pastes      <- read_dataset("Pastes")
cbpp        <- read_dataset("cbpp")
grouseticks <- read_dataset("grouseticks")
VerbAgg     <- read_dataset("VerbAgg")

## Derived columns (documented in README.md; Python rebuilds them the same way)
sleepstudy <- add_sleepstudy_columns(sleepstudy)            # w, DayF, Phase
sleepstudy_d4      <- subset(sleepstudy, Days <= 4)          # 90 rows
sleepstudy_d4$DayO <- factor(sleepstudy_d4$Days, ordered = TRUE)  # levels "0".."4"

## --------------------------------------------------------------- helpers --
NHEAD <- 10L
MAX_RANEF_LEVELS <- 400L

ranef_json <- function(m) {
  re <- ranef(m, condVar = TRUE)
  ng <- ngrps(m)
  dd <- as.data.frame(re)
  out <- list()
  for (g in names(re)) {
    if (ng[[g]] > MAX_RANEF_LEVELS) next
    levs <- rownames(re[[g]])
    cols <- colnames(re[[g]])
    sub <- dd[dd$grpvar == g, ]
    vals <- sds <- matrix(NA_real_, length(levs), length(cols))
    vals[] <- as.matrix(re[[g]])
    ri <- match(as.character(sub$grp), levs)
    ci <- match(as.character(sub$term), cols)
    sds[cbind(ri, ci)] <- sub$condsd
    out[[g]] <- list(levels = levs, columns = cols, values = vals, condsd = sds)
  }
  out
}

model_json <- function(m, seconds = NA_real_) {
  glmm <- isGLMM(m)
  s <- summary(m)
  cf <- coef(s)
  ll <- logLik(m)
  reml <- isREML(m)
  th <- getME(m, "theta")
  vc <- as.data.frame(VarCorr(m))
  res <- list(
    lme4_seconds = seconds,
    class = class(m)[1L],
    nobs = nobs(m),
    ngrps = as.list(ngrps(m)),
    REML = reml,
    deviance = if (reml) NULL else deviance(m),
    REMLcrit = if (reml) unname(getME(m, "devcomp")$cmp[["REML"]]) else NULL,
    logLik = as.numeric(ll),
    df = attr(ll, "df"),
    AIC = AIC(m),
    BIC = BIC(m),
    theta = num(th),
    theta_names = names(th),
    sigma = sigma(m),
    singular = isSingular(m),
    fixef_names = names(fixef(m)),
    fixef = num(fixef(m)),
    se = num(cf[, "Std. Error"]),
    ## by name: lmerTest's coefficient table has "df" as its third column
    stat = num(cf[, grep(" value$", colnames(cf))[1L]]),
    stat_name = grep(" value$", colnames(cf), value = TRUE)[1L],
    vcov = num(as.matrix(vcov(m))),
    varcorr = lapply(seq_len(nrow(vc)), function(i) list(
      grp = vc$grp[i],
      var1 = if (is.na(vc$var1[i])) NULL else vc$var1[i],
      var2 = if (is.na(vc$var2[i])) NULL else vc$var2[i],
      vcov = vc$vcov[i], sdcor = vc$sdcor[i])),
    ranef = ranef_json(m),
    fitted_head = num(head(fitted(m), NHEAD)),
    resid_head = num(head(residuals(m), NHEAD))
  )
  if (glmm) {
    pcol <- grep("^Pr\\(", colnames(cf), value = TRUE)
    ## families with an estimated scale (Gamma) get t values and no p-values in lme4
    res$p <- if (length(pcol)) num(cf[, pcol[1L]]) else NULL
    res$p_normal <- num(2 * pnorm(-abs(cf[, grep(" value$", colnames(cf))[1L]])))
    res$deviance <- deviance(m)
    res$deviance_glmm <- deviance(m)
    res$minus2logLik <- -2 * as.numeric(ll)
    res$nAGQ <- unname(m@devcomp$dims[["nAGQ"]])
    res$family <- family(m)$family
    res$link <- family(m)$link
    res$resid_pearson_head <- num(head(residuals(m, type = "pearson"), NHEAD))
    res$resid_response_head <- num(head(residuals(m, type = "response"), NHEAD))
    res$linpred_head <- num(head(predict(m, type = "link"), NHEAD))
  } else if (inherits(m, "lmerModLmerTest")) {
    res$satterthwaite_df <- num(cf[, "df"])
    res$satterthwaite_p <- num(cf[, "Pr(>|t|)"])
  }
  conv <- m@optinfo$conv$lme4$messages
  res$convergence_messages <- if (is.null(conv)) character(0) else conv
  res
}

timed_eval <- function(call_str) {
  expr <- parse(text = call_str)[[1L]]
  t0 <- proc.time()[["elapsed"]]
  m <- eval(expr, envir = globalenv())
  list(model = m, seconds = proc.time()[["elapsed"]] - t0)
}

## Evaluate expr, collecting warnings and messages instead of printing them.
## An error inside an extra is returned as list(error = msg).
capture <- function(expr) {
  warns <- character(0)
  val <- withCallingHandlers(
    tryCatch(expr, error = function(e) list(error = conditionMessage(e))),
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(mm) {
      msg <- trimws(conditionMessage(mm))
      if (!grepl("^Computing profile confidence intervals", msg)) warns <<- c(warns, msg)
      invokeRestart("muffleMessage")
    })
  if (length(warns) && is.list(val)) val$warnings <- unique(warns)
  val
}

written <- character(0)
failed <- list()

write_case <- function(id, x) {
  path <- file.path(out_dir, paste0(id, ".json"))
  write_reference_json(x, path)
  written <<- c(written, basename(path))
}

## run_case(id, data, call, extras): fit `call`, write the standard fields plus
## extras(m) (a named list, each element computed under capture()).
run_case <- function(id, data, call, extras = NULL, model_fields = TRUE,
                     header = list()) {
  if (!is.null(only) && !(id %in% only)) return(invisible())
  cat(sprintf("%-34s ", id)); flush.console()
  t0 <- proc.time()[["elapsed"]]
  base <- c(list(id = id, data = data, call = call), header)
  warns <- character(0)
  out <- tryCatch(withCallingHandlers({
    f <- timed_eval(call)
    m <- f$model
    res <- base
    if (model_fields) res <- c(res, model_json(m, f$seconds))
    else res$lme4_seconds <- f$seconds
    fit_warns <- warns
    if (!is.null(extras)) {
      ex <- extras(m)
      for (nm in names(ex)) res[[nm]] <- ex[[nm]]
    }
    res$fit_warnings <- unique(fit_warns)
    res
  }, warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
     message = function(mm) { warns <<- c(warns, trimws(conditionMessage(mm))); invokeRestart("muffleMessage") }),
  error = function(e) {
    failed[[id]] <<- conditionMessage(e)
    c(base, list(error = conditionMessage(e), fit_warnings = unique(warns)))
  })
  out$versions <- versions
  write_case(id, out)
  cat(sprintf("%6.1fs %s\n", proc.time()[["elapsed"]] - t0,
              if (!is.null(out$error)) paste("ERROR:", out$error) else "ok"))
  invisible(out)
}

## extras helpers ------------------------------------------------------------
anova_tables <- function(m) list(
  anova_satterthwaite = capture(table_json(anova(m, type = 3, ddf = "Satterthwaite"))),
  anova_kenward_roger = capture(table_json(anova(m, type = 3, ddf = "Kenward-Roger")))
)

emm_json <- function(e) {
  d <- as.data.frame(summary(e))
  table_json(d)
}

confint_profile_json <- function(m) ci_json(confint(m, method = "profile", oldNames = FALSE))
confint_wald_json <- function(m) {
  ci <- confint(m, method = "Wald", oldNames = FALSE)
  fe <- names(fixef(m))
  num(ci[fe, , drop = FALSE])
}

## ================================================================= cases ==

## a. weights and offset -------------------------------------------------------
run_case("sleepstudy_weights", "sleepstudy",
  "lmer(Reaction ~ Days + (Days | Subject), sleepstudy, weights = w)",
  extras = function(m) list(
    derived = list(w = "1 + (Days %% 3)"),
    weights_head = num(head(weights(m), NHEAD)),
    resid_pearson_head = num(head(residuals(m, type = "pearson"), NHEAD)),
    resid_note = "resid_head is residuals(m) (type 'response': y - fitted); resid_pearson_head is residuals(m, type = 'pearson') = sqrt(w) * (y - fitted) (not divided by sigma)"))

run_case("sleepstudy_offset", "sleepstudy",
  "lmer(Reaction ~ Days + offset(2 * Days) + (Days | Subject), sleepstudy)",
  extras = function(m) list(
    offset_head = num(head(getME(m, "offset"), NHEAD)),
    fitted_note = "fitted_head includes the offset",
    predict_fixed_head = num(head(predict(m, re.form = NA), NHEAD))))

## b. formula features ---------------------------------------------------------
run_case("sleepstudy_log_quadratic", "sleepstudy",
  "lmer(log(Reaction) ~ Days + I(Days^2) + (1 | Subject), sleepstudy)")

run_case("sleepstudy_scale_days", "sleepstudy",
  "lmer(Reaction ~ scale(Days) + (scale(Days) | Subject), sleepstudy)",
  extras = function(m) list(
    scale_center = mean(sleepstudy$Days),
    scale_scale = sd(sleepstudy$Days),
    scale_note = "scale(Days) = (Days - mean(Days)) / sd(Days), sd with n - 1"))

run_case("sleepstudy_dayf", "sleepstudy",
  "lmer(Reaction ~ DayF + (1 | Subject), sleepstudy)",
  extras = function(m) {
    e_kr <- capture(emmeans(m, ~ DayF))
    e_sw <- capture(emmeans(m, ~ DayF, lmer.df = "satterthwaite"))
    c(list(derived = list(DayF = "factor(Days), levels 0..9")),
      anova_tables(m),
      list(
        emmeans_kr = capture(emm_json(e_kr)),
        emmeans_satterthwaite = capture(emm_json(e_sw)),
        pairs_kr_head = capture(table_json(head(as.data.frame(summary(pairs(e_kr))), 10L))),
        pairs_satterthwaite_head = capture(table_json(head(as.data.frame(summary(pairs(e_sw))), 10L))),
        emmeans_note = paste("emmeans(m, ~ DayF) (default lmer.df = 'kenward-roger') and",
                             "emmeans(m, ~ DayF, lmer.df = 'satterthwaite'); 95% CIs;",
                             "pairs(): first 10 of 45 rows, p.value Tukey-adjusted")))
  })

run_case("sleepstudy_dayo_poly", "sleepstudy (Days <= 4)",
  "lmer(Reaction ~ DayO + (1 | Subject), sleepstudy_d4)",
  extras = function(m) list(
    derived = list(subset = "Days <= 4 (90 rows)", DayO = "factor(Days, ordered = TRUE), levels 0..4"),
    contrasts_matrix = num(contr.poly(5))))

run_case("sleepstudy_dayf_sum", "sleepstudy",
  "lmer(Reaction ~ DayF + (1 | Subject), sleepstudy, contrasts = list(DayF = contr.sum))",
  extras = function(m) list(
    derived = list(DayF = "factor(Days), levels 0..9"),
    contrasts_matrix = num(contr.sum(10))))

run_case("sleepstudy_phase", "sleepstudy",
  "lmer(Reaction ~ Phase + (Phase | Subject), sleepstudy)",
  extras = function(m) list(
    derived = list(Phase = "factor(ifelse(Days < 5, 'early', 'late')), levels early, late")))

run_case("pastes_interaction_grouping", "Pastes",
  "lmer(strength ~ 1 + (1 | batch) + (1 | batch:cask), Pastes)")

run_case("sleepstudy_no_intercept", "sleepstudy",
  "lmer(Reaction ~ 0 + Days + (1 | Subject), sleepstudy)")

run_case("penicillin_ml", "Penicillin",
  "lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin, REML = FALSE)")

## c. lmerTest on the random-slope model (the DayF model's tables are above) -----
run_case("sleepstudy_slope_lmertest", "sleepstudy",
  "lmer(Reaction ~ Days + (Days | Subject), sleepstudy)",
  extras = function(m) {
    c(anova_tables(m), list(
      ranova = capture(table_json(ranova(m))),
      anova_lm_vs_lmer = capture({
        m0 <- lm(Reaction ~ Days, sleepstudy)
        c(list(call = "anova(m, lm(Reaction ~ Days, sleepstudy))",
               lm_logLik = as.numeric(logLik(m0))),
          table_json(anova(m, m0)))
      }),
      anova_nested_lmer = capture({
        m0 <- lmer(Reaction ~ Days + (1 | Subject), sleepstudy)
        c(list(call = "anova(lmer(Reaction ~ Days + (1 | Subject), sleepstudy), m)"),
          table_json(anova(m0, m)))
      }),
      anova_note = paste("anova(m): type III, Satterthwaite; anova(m, ddf = 'Kenward-Roger');",
                         "ranova(m) reduces (Days | Subject) to (1 | Subject);",
                         "anova(m0, m1) refits REML fits with ML; null entries are R's NA")))
  })

## d. emmeans on a no-pooling lm -----------------------------------------------
run_case("emmeans_no_pooling", "sleepstudy",
  "lm(Reaction ~ 0 + Subject, sleepstudy)", model_fields = FALSE,
  extras = function(fit) list(
    coef = num(coef(fit)), coef_names = names(coef(fit)),
    sigma = summary(fit)$sigma, df_residual = fit$df.residual,
    emmeans_grand_mean = capture(emm_json(emmeans(fit, ~ 1))),
    emmeans_note = "emmeans(fit, ~ 1): equally weighted mean of the 18 subject means, 95% CI"))

## e. confint and predict --------------------------------------------------------
run_case("dyestuff_confint", "Dyestuff",
  "lmer(Yield ~ 1 + (1 | Batch), Dyestuff)",
  extras = function(m) list(
    confint_profile = capture(confint_profile_json(m)),
    confint_wald = capture(confint_wald_json(m))))

run_case("penicillin_confint_predict", "Penicillin",
  "lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin)",
  extras = function(m) list(
    confint_profile = capture(confint_profile_json(m)),
    confint_wald = capture(confint_wald_json(m)),
    predict_first5 = capture({
      nd <- Penicillin[1:5, ]
      list(plate = as.character(nd$plate), sample = as.character(nd$sample),
           full = num(predict(m, newdata = nd)),
           plate_only = num(predict(m, newdata = nd, re.form = ~ (1 | plate))),
           fixed_only = num(predict(m, newdata = nd, re.form = NA)))
    }),
    predict_note = "predict(m, newdata = Penicillin[1:5, ], re.form = NULL / ~ (1 | plate) / NA)"))

## f. GLMMs ----------------------------------------------------------------------
run_case("verbagg_probit", "VerbAgg",
  "glmer(r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item), VerbAgg, family = binomial(link = \"probit\"))")

run_case("cbpp_nagq0", "cbpp",
  "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial, nAGQ = 0)")

run_case("cbpp_cloglog", "cbpp",
  "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial(link = \"cloglog\"))")

run_case("grouseticks_poisson_sqrt", "grouseticks",
  "glmer(TICKS ~ YEAR + scale(HEIGHT) + (1 | LOCATION), grouseticks, family = poisson(link = \"sqrt\"))")

run_case("sleepstudy_gamma_log", "sleepstudy",
  "glmer(Reaction ~ Days + (1 | Subject), sleepstudy, family = Gamma(link = \"log\"))")

run_case("cbpp_proportion_weights", "cbpp",
  "glmer(incidence / size ~ period + (1 | herd), cbpp, weights = size, family = binomial)",
  extras = function(m) list(
    weights_note = "same model as cbpp_binomial; fitted_head are proportions"))

## g. parametric bootstrap -------------------------------------------------------
run_case("sleepstudy_bootmer", "sleepstudy",
  "lme4::lmer(Reaction ~ Days + (Days | Subject), sleepstudy)", model_fields = FALSE,
  extras = function(m) {
    t0 <- proc.time()[["elapsed"]]
    b <- bootMer(m, function(m) c(fixef(m), sigma = sigma(m)), nsim = 2000, seed = 101)
    secs <- proc.time()[["elapsed"]] - t0
    tt <- b$t
    ok <- stats::complete.cases(tt)
    q <- apply(tt[ok, , drop = FALSE], 2, quantile, probs = c(0.025, 0.5, 0.975), names = FALSE)
    list(
      bootmer_call = "bootMer(m, function(m) c(fixef(m), sigma = sigma(m)), nsim = 2000, seed = 101)",
      stat_names = colnames(tt),
      t0 = num(b$t0),
      nsim = nrow(tt), n_ok = sum(ok),
      mean = num(colMeans(tt[ok, , drop = FALSE])),
      sd = num(apply(tt[ok, , drop = FALSE], 2, sd)),
      quantile_probs = c(0.025, 0.5, 0.975),
      quantiles = num(t(q)),   # [statistic x prob]
      bootmer_seconds = secs,
      boot_note = paste("type = 'parametric', use.u = FALSE (defaults). Simulation noise:",
                        "compare with a tolerance of a few Monte Carlo SEs (sd / sqrt(2000) for means;",
                        "quantiles are noisier), never exactly"))
  })

## ----------------------------------------------------------------- summary --
cat("\nwritten:", length(written), "files\n")
if (length(failed)) {
  cat("FAILED cases:\n")
  for (nm in names(failed)) cat("  ", nm, ": ", failed[[nm]], "\n", sep = "")
}
print(versions)
