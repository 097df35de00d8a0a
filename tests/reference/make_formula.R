#!/usr/bin/env Rscript
## Issue #20, R's formula language: names with dots and backticks, poly() (raw and
## orthogonal), scale() with center/scale = FALSE, factor(), as.numeric(), splines ns()/bs()
## (stateful knots on new data), `.` for all other columns, offset() anywhere, and re.form
## written with or without parentheses; lm and lme4 1.1-31 fits.
## The Python tests read formula_language.json and never run R.
##
## Usage:  Rscript tests/reference/make_formula.R [DATA_DIR]
##   DATA_DIR defaults to src/mixedmodels/datasets/data (the package's bundled data).
## Writes: formula_language.json = {"cases": {<id>: <case>}, "re_form": ..., "notes", "versions"}
##
## Derived data (Python rebuilds it the same way):
##   iris_sp   iris with "." replaced by " " in the column names ("Sepal Length", ...)
##
## Fields of a case: id, call, data, class, nobs, fixef_names, fixef (lm: coef), se, sigma,
## logLik, REMLcrit (REML lmer) / deviance (ML or glmer; lm: residual sum of squares),
## model_matrix_colnames (colnames(model.matrix(m))), model_matrix_rows (1-based data rows),
## model_matrix (those rows), newdata + predict_newdata (lm: predict(m, newdata); lmer/glmer:
## predict(m, newdata, re.form = NA), link scale) where the case has new data (lm cases also
## newdata_model_matrix: the fixed design at the new data through the fit's predvars), basis (the
## stateful attributes of the term's columns: poly coefs alpha/norm2, ns/bs knots,
## Boundary.knots, degree, intercept; scale's scaled:center / scaled:scale), fit_warnings.

suppressPackageStartupMessages({
  library(lme4)
  library(splines)
  library(jsonlite)
})

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f) == 1L) dirname(normalizePath(f)) else normalizePath(".")
})
source(file.path(script_dir, "common.R"))
data_dir <- bundled_data_dir()
versions <- package_versions("lme4", "Matrix", "jsonlite")

sleepstudy <- read_dataset("sleepstudy")
iris <- read_dataset("iris")
cbpp <- read_dataset("cbpp")
Owls <- read_dataset("Owls")
iris_sp <- iris
names(iris_sp) <- gsub(".", " ", names(iris), fixed = TRUE)

nd_days <- data.frame(Days = c(0, 0.5, 4.5, 9, 12))
nd_iris <- data.frame(Sepal.Width = c(3, 3.5), Petal.Length = c(1.5, 5), Petal.Width = c(0.2, 1.8),
                      Species = factor(c("setosa", "virginica"), levels(iris$Species)))

## the stateful attributes of each model-frame column (basis functions, scale)
basis_json <- function(m) {
  mf <- model.frame(m)
  out <- list()
  for (nm in names(mf)) {
    a <- attributes(mf[[nm]])
    keep <- intersect(names(a), c("coefs", "knots", "Boundary.knots", "degree", "intercept",
                                  "scaled:center", "scaled:scale"))
    if (length(keep)) out[[nm]] <- lapply(a[keep], function(v) if (is.list(v)) lapply(v, num) else num(v))
  }
  if (length(out)) out else NULL
}

case <- function(id, call, data, newdata = NULL) {
  cat(sprintf("%-24s ", id)); flush.console()
  f <- eval_capturing(call)
  m <- f$value
  is_lm <- inherits(m, "lm")
  X <- model.matrix(m)
  n <- nrow(X)
  rows <- unique(c(1:12, n - 2:0))
  ll <- logLik(m)
  cf <- if (is_lm) coef(summary(m)) else coef(summary(m))
  res <- list(id = id, call = call, data = data, class = class(m)[1L], nobs = nobs(m),
              fixef_names = if (is_lm) names(coef(m)) else names(fixef(m)),
              fixef = num(if (is_lm) coef(m) else fixef(m)),
              se = num(cf[, 2]), sigma = sigma(m), logLik = as.numeric(ll), df = attr(ll, "df"))
  if (is_lm) res$deviance <- deviance(m)
  else if (isREML(m)) res$REMLcrit <- unname(getME(m, "devcomp")$cmp[["REML"]])
  else res$deviance <- deviance(m)
  res$model_matrix_colnames <- colnames(X)
  res$model_matrix_rows <- rows
  res$model_matrix <- num(X[rows, , drop = FALSE])
  if (!is.null(newdata)) {
    res$newdata <- lapply(newdata, function(v) if (is.factor(v)) as.character(v) else v)
    pw <- eval_capturing(if (is_lm) "predict(m, newdata)" else "predict(m, newdata, re.form = NA)",
                         environment())
    res$predict_newdata <- num(pw$value)
    if (is_lm) {   # the fixed design at the new data, through the fit's predvars (stateful bases)
      tt <- delete.response(terms(m))
      Xn <- suppressWarnings(model.matrix(tt, model.frame(tt, newdata), contrasts.arg = m$contrasts))
      res$newdata_model_matrix <- num(Xn)
    }
    if (length(pw$warnings)) res$predict_warnings <- pw$warnings
  }
  res$basis <- basis_json(m)
  res$fit_warnings <- f$warnings
  cat("ok\n")
  res
}

cases <- list()
add <- function(...) { x <- case(...); cases[[x$id]] <<- x }

## names with dots, backticks, `.`
add("dots_lm", "lm(Sepal.Length ~ Sepal.Width + Petal.Length, iris)", "iris", nd_iris)
add("dots_lmer", "lmer(Sepal.Length ~ Sepal.Width + Petal.Length + (1 | Species), iris)", "iris", nd_iris)
add("backticks_lm", "lm(`Sepal Length` ~ `Sepal Width` + `Petal Length`, iris_sp)", "iris_sp")
add("backticks_lmer", "lmer(`Sepal Length` ~ `Sepal Width` + `Petal Length` + (1 | Species), iris_sp)", "iris_sp")
add("dot_all_lm", "lm(Sepal.Length ~ ., iris)", "iris", nd_iris)
add("dot_all_lmer", "lmer(Sepal.Length ~ . - Species + (1 | Species), iris)", "iris", nd_iris)
add("dot_all_lmer_with_group", "lmer(Sepal.Length ~ . + (1 | Species), iris)", "iris", nd_iris)

## poly, scale, factor, as.numeric
add("poly_raw_lm", "lm(Reaction ~ poly(Days, 2, raw = TRUE), sleepstudy)", "sleepstudy", nd_days)
add("poly_raw_lmer", "lmer(Reaction ~ poly(Days, 2, raw = TRUE) + (1 | Subject), sleepstudy)", "sleepstudy", nd_days)
add("poly_orth_lm", "lm(Reaction ~ poly(Days, 2), sleepstudy)", "sleepstudy", nd_days)
add("poly_orth_lmer", "lmer(Reaction ~ poly(Days, 2) + (1 | Subject), sleepstudy)", "sleepstudy", nd_days)
add("scale_nocenter_lm", "lm(Reaction ~ scale(Days, center = FALSE), sleepstudy)", "sleepstudy", nd_days)
add("scale_nocenter_lmer", "lmer(Reaction ~ scale(Days, center = FALSE) + (1 | Subject), sleepstudy)", "sleepstudy", nd_days)
add("scale_noscale_lm", "lm(Reaction ~ scale(Days, scale = FALSE), sleepstudy)", "sleepstudy", nd_days)
add("scale_noscale_lmer", "lmer(Reaction ~ scale(Days, scale = FALSE) + (scale(Days, scale = FALSE) | Subject), sleepstudy)",
    "sleepstudy", nd_days)
add("factor_lmer", "lmer(Reaction ~ factor(Days) + (1 | Subject), sleepstudy)", "sleepstudy")
add("as_numeric_lm", "lm(Sepal.Length ~ as.numeric(Species), iris)", "iris", nd_iris)
add("as_numeric_glmer", "glmer(cbind(incidence, size - incidence) ~ as.numeric(period) + (1 | herd), cbpp, family = binomial)",
    "cbpp", data.frame(period = factor(c("1", "3", "4"), levels(cbpp$period))))

## splines (stateful: knots from the fitting data are reused for new data)
add("ns3_lm", "lm(Reaction ~ ns(Days, df = 3), sleepstudy)", "sleepstudy", nd_days)
add("ns3_lmer", "lmer(Reaction ~ ns(Days, df = 3) + (1 | Subject), sleepstudy)", "sleepstudy", nd_days)
add("bs3_lm", "lm(Reaction ~ bs(Days, df = 3), sleepstudy)", "sleepstudy", nd_days)
add("bs3_lmer", "lmer(Reaction ~ bs(Days, df = 3) + (1 | Subject), sleepstudy)", "sleepstudy", nd_days)
add("ns4_lmer", "lmer(Reaction ~ ns(Days, df = 4) + (1 | Subject), sleepstudy)", "sleepstudy", nd_days)
add("bs5_lmer", "lmer(Reaction ~ bs(Days, df = 5) + (1 | Subject), sleepstudy)", "sleepstudy", nd_days)

## offset() anywhere in the formula
add("offset_first_lmer", "lmer(Reaction ~ offset(2 * Days) + Days + (Days | Subject), sleepstudy)", "sleepstudy",
    data.frame(Days = c(0, 4.5, 12)))
add("offset_middle_glmer",
    "glmer(SiblingNegotiation ~ FoodTreatment + offset(logBroodSize) + SexParent + (1 | Nest), Owls, family = poisson)",
    "Owls", data.frame(FoodTreatment = factor(c("Deprived", "Satiated"), levels(Owls$FoodTreatment)),
                       SexParent = factor(c("Female", "Male"), levels(Owls$SexParent)),
                       logBroodSize = log(c(2, 5))))

## re.form with and without parentheses around the bar
re_form <- local({
  m <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
  nd <- data.frame(Days = c(0, 3, 9), Subject = factor(c("308", "335", "372"), levels(sleepstudy$Subject)))
  forms <- c("~ (1 | Subject)", "~ 1 | Subject", "~ (Days | Subject)", "~ Days | Subject", "NULL", "NA", "~0")
  list(model = "lmer(Reaction ~ Days + (Days | Subject), sleepstudy)",
       newdata = list(Days = nd$Days, Subject = as.character(nd$Subject)),
       predictions = lapply(setNames(forms, forms), function(f) {
         r <- try_capturing(sprintf("predict(m, nd, re.form = %s)", f), environment())
         if (!is.null(r$error)) list(unsupported = r$error) else num(r$value)
       }))
})

notes <- list(
  predict = paste("lm: predict(m, newdata) (R's predvars: poly/ns/bs/scale keep the fitting data's",
                  "coefficients, knots, centre and scale); lmer/glmer: predict(m, newdata, re.form = NA)",
                  "on the link scale. bs() at Days = 12 (outside the boundary knots 0, 9) warns; the",
                  "warning is in predict_warnings."),
  scale = paste("scale(x, center = FALSE) divides by sqrt(sum(x^2) / (n - 1)); scale(x, scale = FALSE)",
                "subtracts the mean. basis holds R's scaled:center / scaled:scale."),
  dot = paste("lme4 1.1-31 accepts '.' with random terms: '. - Species + (1 | Species)' uses the other",
              "columns as fixed effects; '. + (1 | Species)' keeps Species as a fixed effect too."),
  re_form = "lme4 1.1-31 accepts re.form = ~ 1 | g (no parentheses) and gives the same as ~ (1 | g).",
  as_numeric = "as.numeric(f) is the level index (1, 2, ...) in the factor's level order.",
  backticks = paste("R keeps the backticks in the names of non-syntactic columns: the coefficient and",
                    "model-matrix column names are '`Sepal Width`' (with backticks), while syntactic",
                    "names with dots stay bare ('Sepal.Width')."),
  lme4_predict_warnings = paste("lme4's predict() evaluates the new model frame under suppressWarnings,",
                                "so bs() beyond the boundary knots warns only in the lm case."))

write_reference_json(list(cases = cases, re_form = re_form, notes = notes, versions = versions),
                     file.path(script_dir, "formula_language.json"))
cat("wrote formula_language.json\n")
