#!/usr/bin/env Rscript
## Reference results for issue #21 (the classroom): R's global contrasts option, the lecture's
## sleepstudy with two incomplete subjects, R's lowess(), and no pooling for GLMMs.
## The Python tests read classroom.json (next to this script) and never run R.
##
## Usage:  Rscript tests/reference/make_classroom.R [DATA_DIR]
##   DATA_DIR defaults to the package's bundled data (src/mixedmodels/datasets/data).
## Writes: classroom.json with
##   contrasts.<case>: options(contrasts = ...) set, then one fit: `options`, `call`, `fixef_names`,
##       `fixef`, `se`, and for mixed models `varcorr_names` (the random-term columns), `sdcor`
##       (lme4's as.data.frame(VarCorr(m))$sdcor), `logLik`;
##   incomplete_sleepstudy: sleepstudy plus subject 374 (Days 0, 1; Reaction 286, 288) and 373
##       (Days 0; Reaction 245), bound as in the lecture (Subject becomes text, so levels sort);
##       `no_pooling` (lm(Reaction ~ Days) per subject: intercept, days; NA for 373's slope) and
##       `coef_intercept`, `coef_slope`, `coef_both`: coef() of lmer with (1 | Subject),
##       (0 + Days | Subject), (1 + Days | Subject) ([level x (Intercept), Days]); `*_tight`: the same
##       with nloptwrap's tolerances at 1e-15 (the criterion is flat: lme4's default stops ~1e-8
##       from the optimum, which moves the coef() of 374 by 2.7e-4);
##   lowess.<case>: `x`, `y`, `f`, `iter`, `delta` and R's lowess() output (`fit_x`, `fit_y`);
##   glmm_pooling.<case>: complete pooling glm, shared no pooling glm(y ~ 0 + g + x), per-level
##       glms (lmList's fits: `separate` of y ~ 1, `separate_period` of y ~ period), the glmer
##       coef(), and the glm warnings; where a level is separated R's glm stops at a large
##       coefficient (|b| > 15) with a huge SE instead of warning.
## R's NA is null; length-1 vectors are bare scalars.

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

sleepstudy  <- add_sleepstudy_columns(read_dataset("sleepstudy"))   # w, DayF, Phase
sleepstudy_d4 <- subset(sleepstudy, Days <= 4)
sleepstudy_d4$DayO <- factor(sleepstudy_d4$Days, ordered = TRUE)
cbpp        <- read_dataset("cbpp")
grouseticks <- read_dataset("grouseticks")

## ---------------------------------------------------------------- contrasts --
fit_json <- function(m) {
  out <- list(fixef_names = names(fixef_of(m)), fixef = num(fixef_of(m)), se = num(sqrt(diag(as.matrix(vcov(m))))),
              logLik = as.numeric(logLik(m)))
  if (inherits(m, "merMod")) {
    vc <- as.data.frame(VarCorr(m))
    out$varcorr_names <- ifelse(is.na(vc$var2), vc$var1, paste(vc$var1, vc$var2, sep = "."))
    out$varcorr_group <- vc$grp
    out$sdcor <- num(vc$sdcor)
  }
  out
}
fixef_of <- function(m) if (inherits(m, "merMod")) fixef(m) else coef(m)

contrast_case <- function(opts, call) {
  old <- options(contrasts = opts)
  on.exit(options(old))
  m <- suppressMessages(eval(parse(text = call)[[1L]]))
  c(list(options = opts, call = call), fit_json(m))
}

sum_poly <- c("contr.sum", "contr.poly")
contrasts <- list(
  lm_sum = contrast_case(sum_poly, "lm(Reaction ~ DayF, sleepstudy)"),
  lm_helmert = contrast_case(c("contr.helmert", "contr.poly"), "lm(Reaction ~ DayF, sleepstudy)"),
  lm_ordered_poly = contrast_case(sum_poly, "lm(Reaction ~ DayO, sleepstudy_d4)"),
  lm_ordered_sum = contrast_case(c("contr.sum", "contr.sum"), "lm(Reaction ~ DayO, sleepstudy_d4)"),
  lm_ordered_treatment = contrast_case(c("contr.sum", "contr.treatment"), "lm(Reaction ~ DayO + Subject, sleepstudy_d4)"),
  lm_override = contrast_case(sum_poly, "lm(Reaction ~ DayF + Subject, sleepstudy, contrasts = list(DayF = 'contr.treatment'))"),
  glm_sum = contrast_case(sum_poly, "glm(cbind(incidence, size - incidence) ~ period, cbpp, family = binomial)"),
  lmer_sum_random = contrast_case(sum_poly, "lmer(Reaction ~ Phase + (Phase | Subject), sleepstudy)"),
  lmer_ordered = contrast_case(sum_poly, "lmer(Reaction ~ DayO + (1 | Subject), sleepstudy_d4)"),
  lmer_helmert = contrast_case(c("contr.helmert", "contr.poly"), "lmer(Reaction ~ DayF + (1 | Subject), sleepstudy)"),
  glmer_sum = contrast_case(sum_poly, "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial)")
)

## ---------------------------------------------------- incomplete sleepstudy --
## As the lecture (after Tristan Mahr's post): bind_rows of sleepstudy and the two made-up subjects.
df_sleep <- rbind(
  transform(sleepstudy[, c("Reaction", "Days", "Subject")], Subject = as.character(Subject)),
  data.frame(Reaction = c(286, 288), Days = 0:1, Subject = "374"),
  data.frame(Reaction = 245, Days = 0, Subject = "373"))
subjects <- sort(unique(df_sleep$Subject))
no_pooling <- t(sapply(subjects, function(s) coef(lm(Reaction ~ Days, df_sleep[df_sleep$Subject == s, ]))))
tight <- lmerControl(optimizer = "nloptwrap",
                     optCtrl = list(xtol_rel = 1e-15, xtol_abs = 1e-15, ftol_rel = 1e-16, ftol_abs = 1e-16, maxeval = 1e5))
coef_table <- function(formula, control = lmerControl()) {
  m <- lmer(formula, df_sleep, control = control)
  cf <- coef(m)$Subject
  list(formula = deparse(formula), levels = rownames(cf), intercept = num(cf[["(Intercept)"]]), days = num(cf[["Days"]]),
       fixef = num(fixef(m)), sdcor = num(as.data.frame(VarCorr(m))$sdcor))
}
incomplete <- list(
  levels = subjects,
  nobs = nrow(df_sleep),
  no_pooling = list(intercept = num(no_pooling[, 1]), days = num(no_pooling[, 2])),
  complete_pooling = num(coef(lm(Reaction ~ Days, df_sleep))),
  coef_intercept = coef_table(Reaction ~ 1 + Days + (1 | Subject)),
  coef_slope = coef_table(Reaction ~ 1 + Days + (0 + Days | Subject)),
  coef_both = coef_table(Reaction ~ 1 + Days + (1 + Days | Subject)),
  coef_slope_tight = coef_table(Reaction ~ 1 + Days + (0 + Days | Subject), tight),
  coef_both_tight = coef_table(Reaction ~ 1 + Days + (1 + Days | Subject), tight)
)

## ------------------------------------------------------------------ lowess --
lowess_case <- function(x, y, f = 2/3, iter = 3L, delta = 0.01 * diff(range(x))) {
  fit <- lowess(x, y, f = f, iter = iter, delta = delta)
  list(x = num(x), y = num(y), f = f, iter = iter, delta = delta, fit_x = num(fit$x), fit_y = num(fit$y))
}
s308 <- sleepstudy[sleepstudy$Subject == "308", ]
set.seed(21)
xr <- round(runif(60, 0, 10), 1)                       # ties (one decimal)
yr <- sin(xr) + rnorm(60, sd = 0.3)
yr[c(7, 31)] <- yr[c(7, 31)] + 4                      # outliers, for the robustness iterations
xu <- sort(runif(200, 0, 100))
lowess_cases <- list(
  sleepstudy_308 = lowess_case(s308$Days, s308$Reaction),
  ties_outliers = lowess_case(xr, yr),
  ties_outliers_f03_iter0 = lowess_case(xr, yr, f = 0.3, iter = 0L),
  delta_interpolation = lowess_case(xu, log1p(xu) + rnorm(200, sd = 0.2), f = 0.2, delta = 3),
  two_points = lowess_case(c(0, 1), c(286, 288)),
  unsorted = lowess_case(c(3, 1, 2, 5, 4, 0), c(1.5, 0.2, 1.1, 3.9, 2.2, 0.1))
)

## ------------------------------------------------------------ glmm pooling --
capture_warnings <- function(expr) {
  warns <- character(0)
  value <- withCallingHandlers(expr, warning = function(w) {
    warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") })
  list(value = value, warnings = unique(warns))
}
glm_json <- function(fit) {
  cf <- coef(summary(fit$value))
  list(names = names(coef(fit$value)), coef = num(coef(fit$value)),
       se = num(ifelse(is.na(coef(fit$value)), NA, sqrt(diag(vcov(fit$value, complete = TRUE))))),
       warnings = fit$warnings, converged = fit$value$converged)
}
per_level <- function(formula, data, group, family) {
  out <- lapply(levels(data[[group]]), function(l) {
    tryCatch({
      fit <- capture_warnings(glm(formula, data = data[data[[group]] == l, ], family = family))
      c(list(level = l), glm_json(fit))
    }, error = function(e) list(level = l, error = conditionMessage(e)))  # as lmList: that level's fit fails
  })
  out
}
glmm_coef <- function(m, group) {
  cf <- coef(m)[[group]]
  list(levels = rownames(cf), names = colnames(cf), values = unname(lapply(seq_len(nrow(cf)), function(i) num(unlist(cf[i, ])))),
       fixef = num(fixef(m)), sdcor = num(as.data.frame(VarCorr(m))$sdcor))
}
cbpp$herd <- factor(cbpp$herd, levels = levels(cbpp$herd))
cbpp_glmer <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial)
grouse_glmer <- suppressWarnings(glmer(TICKS ~ YEAR + (1 | LOCATION), grouseticks, family = poisson))
glmm_pooling <- list(
  cbpp = list(
    call = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial)",
    totals = list(herd = levels(cbpp$herd), incidence = num(tapply(cbpp$incidence, cbpp$herd, sum))),
    complete = glm_json(capture_warnings(glm(cbind(incidence, size - incidence) ~ period, cbpp, family = binomial))),
    shared = glm_json(capture_warnings(glm(cbind(incidence, size - incidence) ~ 0 + herd + period, cbpp, family = binomial))),
    separate = per_level(cbind(incidence, size - incidence) ~ 1, cbpp, "herd", binomial),
    separate_period = per_level(cbind(incidence, size - incidence) ~ period, cbpp, "herd", binomial),
    partial = glmm_coef(cbpp_glmer, "herd")),
  grouseticks = list(
    call = "glmer(TICKS ~ YEAR + (1 | LOCATION), grouseticks, family = poisson)",
    totals = list(location = levels(grouseticks$LOCATION), ticks = num(tapply(grouseticks$TICKS, grouseticks$LOCATION, sum))),
    complete = glm_json(capture_warnings(glm(TICKS ~ YEAR, grouseticks, family = poisson))),
    shared = glm_json(capture_warnings(glm(TICKS ~ 0 + LOCATION + YEAR, grouseticks, family = poisson))),
    partial = glmm_coef(grouse_glmer, "LOCATION"))
)

write_reference_json(list(
  notes = c(
    "contrasts: options(contrasts = ...) set just for the one call (on.exit restores it); the first element codes unordered factors, the second ordered ones; a contrasts= argument overrides the option.",
    "incomplete_sleepstudy: the lecture prints no-pooling 373 days as NA in the nested fits and 0 after complete(fill = 0); here NA.",
    "glmm_pooling: the shared no-pooling glm warns 'fitted probabilities numerically 0 or 1' where a level's responses are all 0; its estimate then is a large negative number with a huge SE (the MLE is -Inf)."),
  contrasts = contrasts,
  incomplete_sleepstudy = incomplete,
  lowess = lowess_cases,
  glmm_pooling = glmm_pooling,
  versions = versions), file.path(script_dir, "classroom.json"))
cat("wrote classroom.json\n")
