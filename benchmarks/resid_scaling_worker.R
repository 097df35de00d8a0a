# Fit the simulated data sets of bench_resid_scaling.py with nlme::lme, timing each fit.
#
#   Rscript benchmarks/resid_scaling_worker.R REPEATS FILE.csv KIND [FILE.csv KIND ...]
#
# KIND is "ar1" (lme(y ~ t, random = ~ 1 | subject, correlation = corAR1(form = ~ t | subject)))
# or "varident" (lme(y ~ x, random = ~ 1 | subject, weights = varIdent(form = ~ 1 | stratum))),
# REML (both packages' default).  Each file: REPEATS timed fits (system.time()[["elapsed"]] of the
# call alone, no warm-up beyond the first file's); prints one line "@@BENCH {json}" per file.

suppressPackageStartupMessages(library(nlme))
args <- commandArgs(trailingOnly = TRUE)
repeats <- as.integer(args[[1]])
rest <- args[-1]
warm <- data.frame(subject = factor(rep(1:20, each = 5)), t = rep(1:5, 20), x = rnorm(100),
                   stratum = factor(rep(c("a", "b"), 50)), y = rnorm(100))
invisible(lme(y ~ t, random = ~ 1 | subject, correlation = corAR1(form = ~ t | subject), data = warm))
invisible(lme(y ~ x, random = ~ 1 | subject, weights = varIdent(form = ~ 1 | stratum), data = warm))
for (i in seq(1, length(rest), by = 2)) {
  path <- rest[[i]]
  kind <- rest[[i + 1]]
  d <- read.csv(path)
  d$subject <- factor(d$subject)
  d$stratum <- factor(d$stratum)
  fit <- if (kind == "ar1") {
    function() lme(y ~ t, random = ~ 1 | subject, correlation = corAR1(form = ~ t | subject), data = d)
  } else {
    function() lme(y ~ x, random = ~ 1 | subject, weights = varIdent(form = ~ 1 | stratum), data = d)
  }
  times <- numeric(0)
  for (r in seq_len(repeats)) {
    t <- system.time(m <- fit())[["elapsed"]]
    times <- c(times, t)
  }
  cat("@@BENCH ", as.character(jsonlite::toJSON(list(file = basename(path), kind = kind, seconds = times,
      minus2logLik = -2 * as.numeric(logLik(m))), auto_unbox = TRUE, digits = NA)), "\n", sep = "")
}
