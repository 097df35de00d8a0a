# Fit one case with lme4: one warm-up plus `repeats` timed fits, in this R process.
#
#   Rscript benchmarks/lme4_worker.R SPEC.json
#
# Run by run.py, which writes the case's data to CSV and a spec with the
# formula, family, repeats and the factor levels (so R gets exactly the rows and
# levels the Python tools get).  Times are system.time()[["elapsed"]] of the
# lmer()/glmer() call alone (R start-up, package loading and reading the data
# are excluded).  Memory: the process's peak resident set during each fit
# (Linux VmHWM, reset through /proc/self/clear_refs before every fit) and R's
# own gc() "max used".  Each fit prints one line "@@BENCH {json}", as
# worker.py does.

args <- commandArgs(trailingOnly = TRUE)
spec <- jsonlite::fromJSON(args[[1]], simplifyVector = TRUE)
suppressPackageStartupMessages(library(lme4))

emit <- function(...) {
  cat("@@BENCH ", as.character(jsonlite::toJSON(list(...), auto_unbox = TRUE, digits = NA, null = "null")), "\n", sep = "")
  flush(stdout())
}
status_mb <- function(field) {
  line <- grep(paste0("^", field, ":"), readLines("/proc/self/status"), value = TRUE)
  as.numeric(strsplit(trimws(sub(paste0(field, ":"), "", line)), "\\s+")[[1]][1]) / 1024
}
reset_peak <- function() try(writeLines("5", "/proc/self/clear_refs"), silent = TRUE)

df <- data.table::fread(spec$csv, data.table = FALSE, showProgress = FALSE)
for (col in names(spec$levels)) {
  df[[col]] <- factor(as.character(df[[col]]), levels = spec$levels[[col]], ordered = col %in% spec$ordered)
}
form <- as.formula(spec$formula)
fit <- if (spec$family == "gaussian") {
  function() lmer(form, data = df)
} else {
  fam <- get(spec$family, mode = "function")()
  function() glmer(form, data = df, family = fam)
}

emit(event = "ready", rss_mb = status_mb("VmRSS"), nrows = nrow(df),
     version = as.character(packageVersion("lme4")), R = R.version.string,
     blas = if (!is.null(extSoftVersion()["BLAS"])) unname(extSoftVersion()["BLAS"]) else "",
     blas_lib = La_library())

for (i in 0:spec$repeats) {
  invisible(gc())
  before <- status_mb("VmRSS")
  reset_peak()
  invisible(gc(reset = TRUE))
  caught <- character(0)
  timing <- tryCatch(
    system.time(m <- withCallingHandlers(fit(),
      warning = function(w) { caught <<- c(caught, conditionMessage(w)); invokeRestart("muffleWarning") },
      message = function(msg) { caught <<- c(caught, conditionMessage(msg)); invokeRestart("muffleMessage") }),
      gcFirst = FALSE),
    error = function(e) e)
  if (inherits(timing, "error")) {
    emit(event = "error", reason = conditionMessage(timing))
    quit(status = 0)
  }
  peak <- status_mb("VmHWM")
  g <- gc()
  emit(event = "fit", i = i, seconds = timing[["elapsed"]], rss_before_mb = before, peak_mb = peak,
       gc_max_mb = sum(g[, ncol(g)]), feval = m@optinfo$feval,
       m2ll = -2 * as.numeric(logLik(m)), converged = length(m@optinfo$conv$lme4$messages) == 0,
       warnings = head(unique(substr(trimws(caught), 1, 160)), 5))
  rm(m)
}
