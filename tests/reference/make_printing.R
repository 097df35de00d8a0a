# Printed model-comparison and test tables (lme4's anova, lmerTest's ranova and anova), for the
# layout and printed-digit tests of tables.py.
# Usage: Rscript tests/reference/make_printing.R [data_dir]   (writes tests/reference/printing/*.txt)
suppressPackageStartupMessages({library(lme4); library(lmerTest)})
script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f) == 1L) dirname(normalizePath(f)) else normalizePath(".")
})
source(file.path(script_dir, "common.R"))   # read_dataset
data_dir <- reference_data_dir()
out <- file.path(script_dir, "printing")
dir.create(out, showWarnings = FALSE)
save_print <- function(name, x) writeLines(capture.output(print(x)), file.path(out, paste0(name, ".txt")))
sleepstudy <- read_dataset("sleepstudy")
m0 <- lmer(Reaction ~ Days + (1 | Subject), sleepstudy)
m1 <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
l0 <- lm(Reaction ~ Days, sleepstudy)
save_print("anova_m0_m1", suppressMessages(anova(m0, m1)))
save_print("anova_l0_m1", suppressMessages(anova(m1, l0)))
save_print("ranova_m1", ranova(m1))
save_print("anova_type3_satterthwaite", anova(m1))
save_print("anova_type3_kenward_roger", anova(m1, ddf = "Kenward-Roger"))
writeLines(c(R.version.string, paste("lme4", packageVersion("lme4")), paste("lmerTest", packageVersion("lmerTest"))),
           file.path(out, "VERSIONS"))
