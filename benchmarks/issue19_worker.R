# Time the issue #19 reference fits in R: glmmTMB (structured covariances, nbinom2), nlme::lme
# (varIdent, corAR1) and lme4's glmer.nb, in one R process.
#
#   Rscript benchmarks/issue19_worker.R REPEATS CASE[,CASE...]
#
# Run by bench_issue19.py, which names the cases (their R calls are in CALLS below, the same
# models as the Python side's and tests/reference/make_{glmmtmb_covstruct,nlme_residual,negbin}.R).
# Data: the package's bundled CSVs read with their schemas (tests/reference/common.R), with the
# derived columns of those scripts.  Each case: one warm-up fit, then REPEATS timed fits
# (system.time()[["elapsed"]] of the call alone); prints one line "@@BENCH {json}" per case.

suppressPackageStartupMessages({
  library(glmmTMB)
  library(nlme)
  library(lme4)
  library(MASS)
})
args <- commandArgs(trailingOnly = TRUE)
repeats <- as.integer(args[[1]])
wanted <- strsplit(args[[2]], ",")[[1]]

script_dir <- normalizePath(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))),
                                      "..", "tests", "reference"))
source(file.path(script_dir, "common.R"))
data_dir <- normalizePath(file.path(script_dir, "..", "..", "src", "mixedmodels", "datasets", "data"))

sleepstudy <- read_dataset("sleepstudy")
sleepstudy$Phase3 <- factor(ifelse(sleepstudy$Days <= 2, "d0_2", ifelse(sleepstudy$Days <= 5, "d3_5", "d6_9")))
sleepstudy$DayPair <- factor(sleepstudy$Days %/% 2, ordered = TRUE)
Orthodont <- read_dataset("Orthodont")
BodyWeight <- read_dataset("BodyWeight")
BodyWeight$obs <- ave(seq_len(nrow(BodyWeight)), BodyWeight$Rat, FUN = seq_along)
Ovary <- read_dataset("Ovary")
Ovary$obs <- ave(seq_len(nrow(Ovary)), Ovary$Mare, FUN = seq_along)
grouseticks <- read_dataset("grouseticks")
Owls <- read_dataset("Owls")

CALLS <- list(
  diag_ml = "glmmTMB(Reaction ~ Days + diag(Days | Subject), sleepstudy, REML = FALSE)",
  diag_reml = "glmmTMB(Reaction ~ Days + diag(Days | Subject), sleepstudy, REML = TRUE)",
  cs_ml = "glmmTMB(Reaction ~ Days + cs(0 + Phase3 | Subject), sleepstudy, REML = FALSE)",
  cs_reml = "glmmTMB(Reaction ~ Days + cs(0 + Phase3 | Subject), sleepstudy, REML = TRUE)",
  ar1_pairs_ml = "glmmTMB(Reaction ~ Days + ar1(0 + DayPair | Subject), sleepstudy, REML = FALSE)",
  ar1_pairs_reml = "glmmTMB(Reaction ~ Days + ar1(0 + DayPair | Subject), sleepstudy, REML = TRUE)",
  orthodont_varident_reml = 'lme(distance ~ age + Sex, random = ~ 1 | Subject, weights = varIdent(form = ~ 1 | Sex), data = Orthodont, method = "REML")',
  orthodont_varident_ml = 'lme(distance ~ age + Sex, random = ~ 1 | Subject, weights = varIdent(form = ~ 1 | Sex), data = Orthodont, method = "ML")',
  sleepstudy_ar1_reml = 'lme(Reaction ~ Days, random = ~ 1 | Subject, correlation = corAR1(form = ~ Days | Subject), data = sleepstudy, method = "REML")',
  sleepstudy_ar1_ml = 'lme(Reaction ~ Days, random = ~ 1 | Subject, correlation = corAR1(form = ~ Days | Subject), data = sleepstudy, method = "ML")',
  ovary_ar1_reml = 'lme(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), random = ~ 1 | Mare, correlation = corAR1(form = ~ obs | Mare), data = Ovary, method = "REML")',
  ovary_ar1_ml = 'lme(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), random = ~ 1 | Mare, correlation = corAR1(form = ~ obs | Mare), data = Ovary, method = "ML")',
  bodyweight_ar1_reml = 'lme(weight ~ Time * Diet, random = ~ Time | Rat, correlation = corAR1(form = ~ obs | Rat), data = BodyWeight, method = "REML")',
  bodyweight_ar1_ml = 'lme(weight ~ Time * Diet, random = ~ Time | Rat, correlation = corAR1(form = ~ obs | Rat), data = BodyWeight, method = "ML")',
  nb_grouseticks_glmmTMB = "glmmTMB(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION), grouseticks, family = nbinom2)",
  nb_grouseticks_lme4 = "glmer.nb(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION), grouseticks)",
  nb_owls_glmmTMB = "glmmTMB(SiblingNegotiation ~ FoodTreatment * SexParent + offset(logBroodSize) + (1 | Nest), Owls, family = nbinom2)",
  nb_owls_lme4 = "glmer.nb(SiblingNegotiation ~ FoodTreatment * SexParent + offset(logBroodSize) + (1 | Nest), Owls)",
  nb_owls_theta1_lme4 = "glmer(SiblingNegotiation ~ FoodTreatment * SexParent + offset(logBroodSize) + (1 | Nest), Owls, family = MASS::negative.binomial(theta = 1))"
)

minus2ll <- function(m) -2 * as.numeric(logLik(m))

for (id in wanted) {
  call <- parse(text = CALLS[[id]])[[1]]
  m <- suppressWarnings(suppressMessages(eval(call)))   # warm-up
  times <- numeric(0)
  for (i in seq_len(repeats)) {
    t <- system.time(m <- suppressWarnings(suppressMessages(eval(call))))[["elapsed"]]
    times <- c(times, t)
  }
  cat("@@BENCH ", as.character(jsonlite::toJSON(list(case = id, call = CALLS[[id]], seconds = times,
      minus2logLik = minus2ll(m)), auto_unbox = TRUE, digits = NA)), "\n", sep = "")
}
