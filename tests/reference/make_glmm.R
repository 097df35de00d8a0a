#!/usr/bin/env Rscript
## Second references for the GLMM (glmer) tests, and lme4's printed glmer summaries.
##
## Usage:  Rscript tests/reference/make_glmm.R [DATA_DIR]
##   DATA_DIR defaults to ../../../shared/data relative to this script.
##
## Writes into tests/reference/glmm/:
##   <case>_tight.json    lme4 again, with PIRLS and optimizer tolerances tightened; its
##                        "default" entry is lme4's default fit (logLik, fixef, se, sd, fitted_head)
##                        (tolPwrss = 1e-12; FtolAbs 1e-12, FtolRel 1e-14, XtolRel 1e-10).
##                        lme4's default PIRLS tolerance (1e-7) leaves its Laplace deviance
##                        about 1e-4..1e-3 too high and its finite-difference Hessian (hence
##                        the SEs) off by up to a few per cent; this is the same model,
##                        computed to convergence.
##   <case>_glmmtmb.json  glmmTMB (TMB: Laplace with automatic differentiation), an
##                        independent implementation, for canonical links only: for other
##                        links glmmTMB's Laplace uses the observed information where lme4
##                        uses the expected (Fisher) weights, a slightly different approximation.
##   summary_<case>.txt   print(summary(m)) of lme4's default fit (layout tests).
## Each JSON: call, logLik, fixef_names, fixef, se, sd and sd_names (random-effect SDs and
## their grouping factors), versions; the tight fits also hold theta, sigma, the optimizer
## message and fit warnings.  (optCtrl uses Nelder_Mead's names, which stage 2 takes; stage 1's
## nloptwrap ignores them with an "unused control arguments" warning.  tolPwrss applies to both.)

suppressPackageStartupMessages({
  library(lme4)
  library(glmmTMB)
  library(jsonlite)
})

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f) == 1L) dirname(normalizePath(f)) else normalizePath(".")
})
source(file.path(script_dir, "common.R"))   # num, read_dataset, write_reference_json, ...
data_dir <- reference_data_dir()
out_dir <- file.path(script_dir, "glmm")
dir.create(out_dir, showWarnings = FALSE)

cbpp        <- read_dataset("cbpp")
grouseticks <- read_dataset("grouseticks")
VerbAgg     <- read_dataset("VerbAgg")
sleepstudy  <- read_dataset("sleepstudy")

versions <- package_versions("lme4", "glmmTMB", "TMB")
tight <- glmerControl(tolPwrss = 1e-12,
                      optCtrl = list(FtolAbs = 1e-12, FtolRel = 1e-14, XtolRel = 1e-10, maxfun = 1e5))

cases <- list(
  cbpp_binomial = list(
    call = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial%s)", tmb = TRUE),
  cbpp_binomial_agq25 = list(
    call = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial, nAGQ = 25%s)", tmb = FALSE),
  cbpp_cloglog = list(
    call = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial(link = \"cloglog\")%s)", tmb = FALSE),
  cbpp_nagq0 = list(
    call = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial, nAGQ = 0%s)", tmb = FALSE),
  grouseticks_poisson = list(
    call = "glmer(TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION), grouseticks, family = poisson%s)", tmb = TRUE),
  grouseticks_poisson_sqrt = list(
    call = "glmer(TICKS ~ YEAR + scale(HEIGHT) + (1 | LOCATION), grouseticks, family = poisson(link = \"sqrt\")%s)", tmb = FALSE),
  verbagg_binomial = list(
    call = "glmer(r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item), VerbAgg, family = binomial%s)", tmb = TRUE),
  verbagg_probit = list(
    call = "glmer(r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item), VerbAgg, family = binomial(link = \"probit\")%s)", tmb = FALSE),
  sleepstudy_gamma_log = list(
    call = "glmer(Reaction ~ Days + (1 | Subject), sleepstudy, family = Gamma(link = \"log\")%s)", tmb = FALSE),
  cbpp_poisson_offset = list(
    call = "glmer(incidence ~ period + offset(log(size)) + (1 | herd), cbpp, family = poisson%s)", tmb = TRUE),
  sleepstudy_gamma_inverse = list(
    call = "glmer(Reaction ~ Days + (1 | Subject), sleepstudy, family = Gamma%s)", tmb = FALSE),
  sleepstudy_inverse_gaussian_log = list(
    call = "glmer(Reaction ~ Days + (1 | Subject), sleepstudy, family = inverse.gaussian(link = \"log\")%s)", tmb = FALSE),
  sleepstudy_gaussian_log = list(
    call = "glmer(Reaction ~ Days + (1 | Subject), sleepstudy, family = gaussian(link = \"log\")%s)", tmb = FALSE)
)

fit_json <- function(call, m, sds, se, extra = list()) {
  ll <- logLik(m)
  c(list(call = call, logLik = as.numeric(ll), df = attr(ll, "df"),
         fixef_names = names(se), fixef = num(fixef_of(m)), se = num(se), sd = num(sds),
         sd_names = names(sds)),
    extra, list(versions = versions))
}
fixef_of <- function(m) if (inherits(m, "glmmTMB")) fixef(m)$cond else fixef(m)

for (name in names(cases)) {
  case <- cases[[name]]
  cat(name, "\n")
  m <- eval(parse(text = sprintf(case$call, "")))
  writeLines(capture.output(print(summary(m))), file.path(out_dir, paste0("summary_", name, ".txt")))
  warns <- character(0)
  tcall <- sprintf(case$call, ", control = tight")
  mt <- withCallingHandlers(eval(parse(text = tcall)),
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") })
  vc <- as.data.frame(VarCorr(mt))
  keep <- is.na(vc$var2) & vc$grp != "Residual"
  sds <- setNames(vc$sdcor[keep], vc$grp[keep])
  se <- sqrt(diag(as.matrix(vcov(mt))))
  names(se) <- names(fixef(mt))
  vc0 <- as.data.frame(VarCorr(m))
  keep0 <- is.na(vc0$var2) & vc0$grp != "Residual"
  default <- list(logLik = as.numeric(logLik(m)), fixef = num(fixef(m)),
                  se = num(sqrt(diag(as.matrix(vcov(m))))), sd = num(vc0$sdcor[keep0]),
                  theta = num(getME(m, "theta")), fitted_head = num(head(fitted(m), 10)),
                  linpred_head = num(head(predict(m, type = "link"), 10)))
  extra <- list(theta = num(getME(mt, "theta")), sigma = sigma(mt),
                fit_warnings = warns, optimizer_message = mt@optinfo$message, default = default)
  write_reference_json(fit_json(tcall, mt, sds, se, extra), file.path(out_dir, paste0(name, "_tight.json")))
  if (isTRUE(case$tmb)) {
    tmbcall <- sub("^glmer", "glmmTMB", sprintf(case$call, ""))
    mt2 <- eval(parse(text = tmbcall))
    sds2 <- unlist(lapply(VarCorr(mt2)$cond, function(v) attr(v, "stddev")))
    names(sds2) <- names(VarCorr(mt2)$cond)
    se2 <- sqrt(diag(vcov(mt2)$cond))
    write_reference_json(fit_json(tmbcall, mt2, sds2, se2), file.path(out_dir, paste0(name, "_glmmtmb.json")))
  }
}
writeLines(c(R.version.string, paste("lme4", packageVersion("lme4")), paste("glmmTMB", packageVersion("glmmTMB"))),
           file.path(out_dir, "VERSIONS"))
