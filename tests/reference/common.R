## Helpers shared by the make_*.R scripts in this folder: where the data are,
## reading a dataset with its schema, the derived sleepstudy columns, package
## versions, and writing JSON the way every reference file is written.
##
## Each script finds its own folder and sources this file from there:
##
##   script_dir <- local({
##     f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
##     if (length(f) == 1L) dirname(normalizePath(f)) else normalizePath(".")
##   })
##   source(file.path(script_dir, "common.R"))
##
## The functions below that need it use that `script_dir`.  Nothing here
## attaches a package (jsonlite is called as jsonlite::), so each script's own
## library() calls, and the order in which they mask each other, stay as they are.

## x without names, stored as double (an integer matrix stays a matrix)
num <- function(x) { x <- unname(x); storage.mode(x) <- "double"; x }

## DATA_DIR: the first command-line argument, else the project's shared/data
## beside the repository (../../../shared/data from this folder).
reference_data_dir <- function(args = commandArgs(trailingOnly = TRUE)) {
  d <- if (length(args) >= 1L) args[[1L]] else
    file.path(script_dir, "..", "..", "..", "shared", "data")
  normalizePath(d, mustWork = TRUE)
}

## Read <name>.csv with every column as text, then apply <name>.schema.json:
## factors get the schema's levels in the schema's order (ordered factors become
## ordered), numeric / integer / logical columns are converted.  A factor value
## outside the schema's levels is an error, not a silent NA.
read_dataset <- function(name, dir = data_dir) {
  schema <- jsonlite::fromJSON(file.path(dir, paste0(name, ".schema.json")),
                               simplifyVector = TRUE)
  d <- read.csv(file.path(dir, paste0(name, ".csv")),
                colClasses = "character", check.names = FALSE,
                na.strings = c("NA", ""))
  for (col in names(schema)) {
    s <- schema[[col]]
    x <- d[[col]]
    d[[col]] <- switch(s$type,
      factor = factor(x, levels = s$levels, ordered = isTRUE(s$ordered)),
      numeric = as.numeric(x),
      integer = as.integer(x),
      logical = as.logical(x),
      character = x,
      stop("unknown column type ", s$type))
    if (s$type == "factor" && anyNA(d[[col]]) && !anyNA(x))
      stop(name, "$", col, ": values outside the schema's levels")
  }
  d
}

## The derived sleepstudy columns documented in README.md (Python rebuilds them
## with the same formulas).
add_sleepstudy_columns <- function(d) {
  d$w     <- 1 + (d$Days %% 3)
  d$DayF  <- factor(d$Days)                                 # levels "0".."9"
  d$Phase <- factor(ifelse(d$Days < 5, "early", "late"))    # levels early, late
  d
}

## list(R = <R version string>, <package> = <version as in DESCRIPTION>, ...)
package_versions <- function(...) {
  pkgs <- c(...)
  c(list(R = R.version.string),
    setNames(lapply(pkgs, function(p) packageDescription(p)$Version), pkgs))
}

## A data.frame / anova table -> {"call": call (if given), "rownames": [...],
## "<R column name>": [...], ...}: factors as their labels, numbers as doubles.
table_json <- function(tab, call = NULL) {
  df <- as.data.frame(tab, check.names = FALSE, stringsAsFactors = FALSE)
  out <- c(if (!is.null(call)) list(call = call), list(rownames = rownames(df)))
  for (cn in names(df)) {
    v <- df[[cn]]
    out[[cn]] <- if (is.factor(v)) as.character(v) else if (is.numeric(v)) unname(as.numeric(v)) else unname(v)
  }
  out
}

## A confint() matrix -> {names, lower, upper}
ci_json <- function(ci) list(names = rownames(ci), lower = num(ci[, 1L]), upper = num(ci[, 2L]))

## Write x as the reference files are written: length-1 vectors as bare scalars,
## full double precision, R's NA and NULL as null.
write_reference_json <- function(x, path, pretty = TRUE) {
  writeLines(jsonlite::toJSON(x, auto_unbox = TRUE, digits = NA, pretty = pretty,
                              na = "null", null = "null"),
             path, useBytes = TRUE)
}

## The package's bundled data (src/mixedmodels/datasets/data): the shared/data sets plus
## the ones make_datasets.R exports (Orthodont, BodyWeight, Ovary, Owls, iris).  The
## scripts for issues #19 and #20 read from here unless given a DATA_DIR argument.
bundled_data_dir <- function(args = commandArgs(trailingOnly = TRUE)) {
  d <- if (length(args) >= 1L) args[[1L]] else
    file.path(script_dir, "..", "..", "src", "mixedmodels", "datasets", "data")
  normalizePath(d, mustWork = TRUE)
}

## Evaluate the R call given as text in `env`, collecting warnings and messages
## instead of printing them: list(value, warnings, seconds).  Errors propagate.
eval_capturing <- function(call, env = globalenv()) {
  warns <- character(0)
  t0 <- proc.time()[["elapsed"]]
  value <- withCallingHandlers(eval(parse(text = call)[[1L]], envir = env),
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(m) { warns <<- c(warns, trimws(conditionMessage(m))); invokeRestart("muffleMessage") })
  list(value = value, warnings = unique(warns), seconds = proc.time()[["elapsed"]] - t0)
}

## Like eval_capturing(), but an error becomes list(error = message, warnings = ...).
try_capturing <- function(call, env = globalenv()) {
  tryCatch(eval_capturing(call, env), error = function(e)
    list(value = NULL, error = conditionMessage(e), warnings = character(0)))
}
