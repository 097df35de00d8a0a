# Printed lme4 summaries, for the layout and printed-digit tests of summary.py.
# Usage: Rscript tests/reference/make_summaries.R [data_dir]   (writes tests/reference/summaries/*.txt)
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
here <- dirname(sub("--file=", "", grep("--file=", commandArgs(), value = TRUE)))
data_dir <- if (length(args) >= 1) args[1] else file.path(here, "..", "..", "..", "shared", "data")
load_data <- function(name) {
  d <- read.csv(file.path(data_dir, paste0(name, ".csv")), colClasses = "character")
  schema <- jsonlite::fromJSON(file.path(data_dir, paste0(name, ".schema.json")), simplifyVector = FALSE)
  for (col in names(schema)) {
    s <- schema[[col]]
    d[[col]] <- switch(s$type,
      factor = factor(d[[col]], levels = unlist(s$levels), ordered = isTRUE(s$ordered)),
      numeric = as.numeric(d[[col]]), integer = as.integer(d[[col]]),
      logical = as.logical(d[[col]]), d[[col]])
  }
  d
}
out <- file.path(here, "summaries")
dir.create(out, showWarnings = FALSE)
save_summary <- function(name, fit) writeLines(capture.output(print(summary(fit))), file.path(out, paste0(name, ".txt")))
sleepstudy <- load_data("sleepstudy")
Penicillin <- load_data("Penicillin")
Dyestuff2 <- load_data("Dyestuff2")
save_summary("sleepstudy_reml", lmer(Reaction ~ Days + (Days | Subject), sleepstudy))
save_summary("sleepstudy_ml", lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = FALSE))
save_summary("penicillin", lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin))
save_summary("dyestuff2", lmer(Yield ~ 1 + (1 | Batch), Dyestuff2))
writeLines(c(R.version.string, paste("lme4", packageVersion("lme4"))), file.path(out, "VERSIONS"))
