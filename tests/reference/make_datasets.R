#!/usr/bin/env Rscript
## Export the data sets that the R references of issues #19 and #20 need, and that
## mixedmodels bundles, as <name>.csv + <name>.schema.json in the package's data folder
## (src/mixedmodels/datasets/data), in the same format as the project's shared/data:
## write.csv(row.names = FALSE) (15 significant digits, text quoted) and a schema with
## each column's type (factor / numeric / integer / logical / character) and, for factors,
## the levels in R's order and whether the factor is ordered.
##
## Usage:  Rscript tests/reference/make_datasets.R [OUT_DIR]
##   OUT_DIR defaults to src/mixedmodels/datasets/data relative to the repository root.
##
## Data sets (the R objects are exported as they are, no columns added or recoded;
## nlme's groupedData objects become plain data frames):
##   Orthodont   nlme     108 rows  distance, age, Subject (ordered, nlme's order), Sex
##   BodyWeight  nlme     176 rows  weight, Time, Rat (ordered), Diet
##   Ovary       nlme     308 rows  Mare (ordered), Time, follicles
##   Owls        glmmTMB  599 rows  Nest, FoodTreatment, SexParent, ArrivalTime,
##                                  SiblingNegotiation, BroodSize, NegPerChick, logBroodSize
##   iris        datasets 150 rows  Sepal.Length, Sepal.Width, Petal.Length, Petal.Width, Species

suppressPackageStartupMessages({
  library(nlme)
  library(glmmTMB)
  library(jsonlite)
})

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f) == 1L) dirname(normalizePath(f)) else normalizePath(".")
})
args <- commandArgs(trailingOnly = TRUE)
out_dir <- if (length(args) >= 1L) args[[1L]] else
  file.path(script_dir, "..", "..", "src", "mixedmodels", "datasets", "data")
out_dir <- normalizePath(out_dir, mustWork = TRUE)

column_schema <- function(x) {
  if (is.factor(x)) return(list(type = "factor", ordered = is.ordered(x), levels = I(levels(x))))
  if (is.integer(x)) return(list(type = "integer"))
  if (is.numeric(x)) return(list(type = "numeric"))
  if (is.logical(x)) return(list(type = "logical"))
  if (is.character(x)) return(list(type = "character"))
  stop("unsupported column class ", class(x)[1L])
}

export <- function(name, d) {
  d <- as.data.frame(d, stringsAsFactors = FALSE)
  attr(d, "formula") <- NULL   # groupedData leftovers
  rownames(d) <- NULL
  write.csv(d, file.path(out_dir, paste0(name, ".csv")), row.names = FALSE)
  schema <- lapply(d, column_schema)
  writeLines(toJSON(schema, auto_unbox = TRUE, pretty = TRUE, digits = NA),
             file.path(out_dir, paste0(name, ".schema.json")), useBytes = TRUE)
  cat("wrote", name, nrow(d), "rows\n")
}

if (length(args) >= 2L && args[[2L]] == "--check-format") {
  ## Re-export sleepstudy from lme4 to check that the format matches shared/data byte for byte.
  export("sleepstudy", lme4::sleepstudy)
  quit(save = "no")
}

export("Orthodont", nlme::Orthodont)
export("BodyWeight", nlme::BodyWeight)
export("Ovary", nlme::Ovary)
export("Owls", glmmTMB::Owls)
export("iris", datasets::iris)
